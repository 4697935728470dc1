#include "picoflowd/http/http_server.h"

#include <arpa/inet.h>
#include <strings.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "picoflowd/http/http_parser_lib.h"
#include "picoflowd/util/callback_guard.h"
#include "picoflowd/util/logging.h"

namespace picoflow {

const std::pair<const char*, const char*> kSecurityHeaders[4] = {
    {"Content-Security-Policy",
     "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
     "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"},
    {"X-Content-Type-Options", "nosniff"},
    {"Referrer-Policy", "no-referrer"},
    {"X-Frame-Options", "DENY"},
};

const char* HttpReason(int status) {
  switch (status) {
    case 200: return "OK";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 421: return "Misdirected Request";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Unknown";
  }
}

const std::string* HttpRequest::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (key == name) return &value;
  }
  return nullptr;
}

bool PercentDecode(std::string_view in, bool plus_is_space, std::string& out) {
  out.clear();
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (c == '+' && plus_is_space) {
      out += ' ';
    } else if (c != '%') {
      out += c;
    } else {
      if (i + 2 >= in.size()) return false;
      const auto hex = [](char h) -> int {
        if (h >= '0' && h <= '9') return h - '0';
        if (h >= 'a' && h <= 'f') return h - 'a' + 10;
        if (h >= 'A' && h <= 'F') return h - 'A' + 10;
        return -1;
      };
      const int hi = hex(in[i + 1]);
      const int lo = hex(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    }
  }
  return true;
}

bool IsLoopbackAddress(const std::string& text) {
  in_addr v4{};
  if (inet_pton(AF_INET, text.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  return inet_pton(AF_INET6, text.c_str(), &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
}

Result<std::pair<std::string, int>> ParseListenAddress(const std::string& text) {
  const auto colon = text.rfind(':');
  const auto bad = [&text] {
    return Err(ErrorCode::kInvalid,
               "listen address '" + text + "' is not ADDR:PORT (e.g. 127.0.0.1:8080)");
  };
  if (colon == std::string::npos) return bad();
  std::string host = text.substr(0, colon);
  const std::string port_text = text.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty()) host = "0.0.0.0";
  char* end = nullptr;
  const long port = std::strtol(port_text.c_str(), &end, 10);
  if (port_text.empty() || *end != '\0' || port < 0 || port > 65535) return bad();
  return std::pair<std::string, int>(host, static_cast<int>(port));
}

// One client's connection: parses its requests one at a time, hands each to
// the server's handler as an HttpExchange and writes the answer. Bytes that
// arrive while a request is being answered wait in `pending_`. The next
// request is parsed on a later loop turn (`resume_`), never from inside the
// answer of the one before (which may come from deep in an observer), at
// most kTurn of them per turn, and only while less than kMaxQueued bytes of
// answers wait to be written: a client that does not read stops being
// served. A connection closes once what it was sent is written.
namespace {

// "127.0.0.1:50312", "[::1]:50312"; "" if the socket cannot say.
std::string PeerOf(const uv_tcp_t* tcp) {
  sockaddr_storage addr{};
  int len = sizeof addr;
  if (uv_tcp_getpeername(tcp, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return "";
  char name[INET6_ADDRSTRLEN] = {};
  if (addr.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&addr);
    uv_ip6_name(a, name, sizeof name);
    return "[" + std::string(name) + "]:" + std::to_string(ntohs(a->sin6_port));
  }
  const auto* a = reinterpret_cast<const sockaddr_in*>(&addr);
  uv_ip4_name(a, name, sizeof name);
  return std::string(name) + ":" + std::to_string(ntohs(a->sin_port));
}

}  // namespace

class HttpExchange::Connection {
 public:
  static constexpr int kTurn = 16;  // requests parsed per loop turn

  Connection(HttpServer& server, const HttpParserLib& lib)
      : server_(server), lib_(lib), tcp_(this), timer_(this), resume_(this) {
    lib_.init(&parser_, HTTP_REQUEST);
    parser_.data = this;
  }
  ~Connection() { Kill(); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  bool Start() {
    if (uv_tcp_init(server_.loop_, tcp_.get()) != 0) return false;
    tcp_.MarkInitialized();
    if (uv_accept(server_.listener_.stream(), tcp_.stream()) != 0) return false;
    peer_ = PeerOf(tcp_.get());
    if (uv_timer_init(server_.loop_, timer_.get()) != 0) return false;
    timer_.MarkInitialized();
    if (uv_timer_init(server_.loop_, resume_.get()) != 0) return false;
    resume_.MarkInitialized();
    Arm(kRequest);
    return uv_read_start(tcp_.stream(), Alloc, OnRead) == 0;
  }

  // Closes the handles and tells the exchange in progress; the server
  // deletes this object later (never inside one of its own callbacks).
  void Kill() {
    if (dead_) return;
    dead_ = true;
    tcp_.Close();
    timer_.Close();
    resume_.Close();
    if (std::shared_ptr<HttpExchange> exchange = std::move(current_)) exchange->Detach();
  }

  void SendResponse(const HttpExchange& exchange, const HttpResponse& response) {
    WriteResponse(response, exchange.request().method == "HEAD");
    Finished();
  }

  void SendStreamHead(const HttpExchange& exchange, int status, const std::string& content_type,
                      const std::vector<std::pair<std::string, std::string>>& headers) {
    chunked_ = !exchange.request().http10;
    if (!chunked_) keep_alive_ = false;  // an HTTP/1.0 stream ends by closing
    std::string out = Head(status, content_type, headers);
    out += chunked_ ? "Transfer-Encoding: chunked\r\n\r\n" : "\r\n";
    WriteRaw(std::move(out));
  }

  void SendChunk(std::string_view data) {
    if (!chunked_) {
      WriteRaw(std::string(data));
    } else {
      char size[24];
      std::snprintf(size, sizeof size, "%zx\r\n", data.size());
      std::string out = size;
      out.append(data);
      out += "\r\n";
      WriteRaw(std::move(out));
    }
    if (!dead_ && Queued() > HttpServer::kMaxQueued) {
      LogWarn(LogEvent("http.server"), "http: a client reading too slowly was dropped");
      server_.Drop(this);
    }
  }

  void EndStream() {
    if (chunked_) WriteRaw("0\r\n\r\n");
    Finished();
  }

 private:
  enum Timeout { kRequest, kIdle };
  struct WriteReq {
    uv_write_t req{};
    std::string data;
  };

  std::size_t Queued() const { return dead_ ? 0 : uv_stream_get_write_queue_size(tcp_.stream()); }

  // kRequest: a request must arrive whole (and a closed connection's client
  // answer with its EOF) within 5 s; kIdle: 30 s without a request, or
  // without a write of its answers completing.
  void Arm(Timeout which) {
    const auto ms = which == kRequest ? HttpServer::kRequestTimeout : HttpServer::kIdleTimeout;
    StartOneShot<Connection, &Connection::OnTimeout>(timer_,
                                                     static_cast<std::uint64_t>(ms.count()));
  }
  void OnTimeout() { server_.Drop(this); }

  void ScheduleResume() { StartOneShot<Connection, &Connection::Pump>(resume_, 0); }

  // A whole response: head, length and body (none for HEAD; 304 and 204 have
  // no body and say no length, RFC 9110 8.6).
  void WriteResponse(const HttpResponse& response, bool head_only) {
    const bool bodiless = response.status == 304 || response.status == 204;
    std::string out = Head(response.status, response.content_type, response.headers);
    if (!bodiless) out += "Content-Length: " + std::to_string(response.body.size()) + "\r\n";
    out += "\r\n";
    if (!bodiless && !head_only) out += response.body;
    WriteRaw(std::move(out));
  }

  std::string Head(int status, const std::string& content_type,
                   const std::vector<std::pair<std::string, std::string>>& headers) const {
    std::string out = "HTTP/1.1 " + std::to_string(status) + " " + HttpReason(status) + "\r\n";
    out += "Content-Type: " + content_type + "\r\n";
    for (const auto& [name, value] : kSecurityHeaders) {
      out += std::string(name) + ": " + value + "\r\n";
    }
    for (const auto& [name, value] : headers) out += name + ": " + value + "\r\n";
    if (!keep_alive_) {
      out += "Connection: close\r\n";
    } else if (http10_) {
      out += "Connection: keep-alive\r\n";  // an HTTP/1.0 client closes unless told
    }
    return out;
  }

  void WriteRaw(std::string data) {
    if (dead_ || data.empty()) return;
    auto* w = new WriteReq;
    w->data = std::move(data);
    uv_buf_t buf = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
    if (uv_write(&w->req, tcp_.stream(), &buf, 1, OnWritten) != 0) {
      delete w;
      server_.Drop(this);
    }
  }

  static void OnWritten(uv_write_t* req, int status) noexcept {
    auto* w = reinterpret_cast<WriteReq*>(req);
    auto* self = OwnerOf<Connection>(req->handle);
    delete w;
    if (self == nullptr) return;
    if (status != 0) {
      self->server_.Drop(self);
      return;
    }
    GuardCallback("http: a write completed", [self] { self->Written(); });
  }

  // A write completed: progress. A closing connection half-closes once all
  // is written; one that stopped for a slow reader goes on below half the
  // limit; a whole answer still going out re-arms the idle timer (a stream
  // has none: its client may wait long for events).
  void Written() {
    if (dead_) return;
    const std::size_t queued = Queued();
    if (closing_) {
      if (queued == 0 && !shutdown_sent_) Shutdown();
      if (!shutdown_sent_) Arm(kIdle);
      return;
    }
    if (!busy_) Arm(kIdle);
    if (stalled_ && queued <= HttpServer::kMaxQueued / 2) {
      stalled_ = false;
      ScheduleResume();
    }
  }

  // The answer is complete: the next request on a later turn, or close.
  void Finished() {
    current_.reset();
    busy_ = false;
    if (dead_) return;
    if (!keep_alive_ || (peer_eof_ && pending_at_ == pending_.size())) {
      CloseWhenFlushed();
      return;
    }
    lib_.pause(&parser_, 0);
    Arm(kIdle);
    if (!pumping_) ScheduleResume();
  }

  // Half-closes once everything queued is written; the client's EOF (or the
  // timer) ends the connection. Reading goes on, discarding: closing with
  // unread bytes would reset the connection and lose the answer.
  void CloseWhenFlushed() {
    closing_ = true;
    if (Queued() == 0) {
      Shutdown();
    } else {
      Arm(kIdle);
    }
  }

  void Shutdown() {
    shutdown_sent_ = true;
    if (peer_eof_) {  // the client is done too: nothing to wait for
      server_.Drop(this);
      return;
    }
    Arm(kRequest);
    auto* req = new uv_shutdown_t{};
    if (uv_shutdown(req, tcp_.stream(), [](uv_shutdown_t* r, int) noexcept { delete r; }) != 0) {
      delete req;
      server_.Drop(this);
    }
  }

  static void Alloc(uv_handle_t* handle, std::size_t, uv_buf_t* buf) noexcept {
    auto* self = OwnerOf<Connection>(handle);
    *buf =
        self == nullptr ? uv_buf_init(nullptr, 0) : uv_buf_init(self->chunk_, sizeof self->chunk_);
  }

  static void OnRead(uv_stream_t* stream, ssize_t n, const uv_buf_t*) noexcept {
    auto* self = OwnerOf<Connection>(stream);
    if (self == nullptr) return;
    if (!GuardCallback("http: reading a request", [&] { self->Read(n); })) {
      self->server_.Drop(self);
    }
  }

  void Read(ssize_t n) {
    if (n == UV_EOF) {
      // The client is done sending. While an answer is being made (a held
      // call, a stream) that means it left: the call ends (its hooks run).
      // Else what it already asked for is answered and written, then the
      // connection closes.
      peer_eof_ = true;
      uv_read_stop(tcp_.stream());
      if (busy_ || shutdown_sent_) {
        server_.Drop(this);
      } else if (closing_ || pending_at_ == pending_.size()) {
        CloseWhenFlushed();
      }
      return;
    }
    if (n < 0) {
      server_.Drop(this);
      return;
    }
    if (n == 0 || closing_) return;
    pending_.append(chunk_, static_cast<std::size_t>(n));
    if (pending_.size() - pending_at_ > HttpServer::kMaxHead + HttpServer::kMaxBody) {
      server_.Drop(this);  // pipelining far ahead of the answers
      return;
    }
    if (!busy_) Pump();
  }

  // Parses what is pending while no request is being answered: at most
  // kTurn requests, then the rest on the next turn. An answer made at once
  // comes back here through the loop below, never by recursion.
  void Pump() {
    if (pumping_) return;
    pumping_ = true;
    int served = 0;
    while (!dead_ && !busy_ && !closing_ && pending_at_ < pending_.size()) {
      if (Queued() > HttpServer::kMaxQueued) {
        stalled_ = true;  // Written() resumes
        break;
      }
      if (served == kTurn) {
        ScheduleResume();
        break;
      }
      const char* data = pending_.data() + pending_at_;
      const std::size_t size = pending_.size() - pending_at_;
      const std::size_t used = lib_.execute(&parser_, &Settings(lib_), data, size);
      const auto err = static_cast<http_errno>(parser_.http_errno);
      if (err == HPE_PAUSED) {
        pending_at_ += used;
        ++served;
        Dispatch();
      } else if (err != HPE_OK) {
        pending_at_ = pending_.size();
        Fail(err);
      } else {
        pending_at_ = pending_.size();  // all fed to the parser: a request in part
      }
    }
    if (pending_at_ == pending_.size()) {
      pending_.clear();
      pending_at_ = 0;
    } else if (pending_at_ > 64 * 1024) {
      pending_.erase(0, pending_at_);
      pending_at_ = 0;
    }
    pumping_ = false;
    if (!dead_ && !busy_ && !closing_ && peer_eof_ && pending_at_ == pending_.size()) {
      CloseWhenFlushed();
    }
  }

  void Fail(http_errno err) {
    if (refusal_ != 0) {
      Reject(refusal_, refusal_ == 431 ? "request head too large\n" : "request body too large\n");
    } else {
      Reject(400, std::string("bad request: ") + lib_.errno_description(err) + "\n");
    }
  }

  void Reject(int status, std::string text) {
    keep_alive_ = false;
    busy_ = true;
    HttpResponse r;
    r.status = status;
    r.body = std::move(text);
    WriteResponse(r, false);
    Finished();
  }

  void Dispatch() {
    uv_timer_stop(timer_.get());  // a held answer may take long; EOF ends it
    busy_ = true;
    keep_alive_ = lib_.should_keep_alive(&parser_) != 0;
    HttpRequest request = std::move(request_);
    request_ = HttpRequest{};
    request.http10 = parser_.http_major == 1 && parser_.http_minor == 0;
    request.peer = peer_;
    http10_ = request.http10;
    request.method = lib_.method_str(static_cast<http_method>(parser_.method));
    const auto q = request.target.find('?');
    const std::string_view raw_path = std::string_view(request.target).substr(0, q);
    if (q != std::string::npos) request.query = request.target.substr(q + 1);
    if (!PercentDecode(raw_path, false, request.path) || request.path.empty() ||
        request.path[0] != '/' || request.path.find('\0') != std::string::npos) {
      Reject(400, "bad request target\n");
      return;
    }
    current_ = std::shared_ptr<HttpExchange>(new HttpExchange(this, std::move(request)));
    std::shared_ptr<HttpExchange> exchange = current_;
    if (!GuardCallback("http: answering a request", [&] { server_.handler_(exchange); })) {
      if (exchange->streaming_) {
        exchange->End();
      } else {
        HttpResponse r;
        r.status = 500;
        r.body = "internal error (logged)\n";
        exchange->Respond(std::move(r));
      }
    }
  }

  // --- parser callbacks (data = this) ---
  static Connection* Of(http_parser* p) { return static_cast<Connection*>(p->data); }

  bool Count(std::size_t n) {
    head_bytes_ += n;
    if (head_bytes_ <= HttpServer::kMaxHead) return true;
    refusal_ = 431;
    return false;
  }

  // The head is complete: a body announced over the limit is refused before
  // it is sent, and a client waiting for `100 Continue` is told to go on.
  int HeadersComplete() {
    if (parser_.content_length != ULLONG_MAX && parser_.content_length > HttpServer::kMaxBody) {
      refusal_ = 413;
      return -1;
    }
    for (auto& [name, value] : request_.headers) {
      if (name == "expect" && value.size() == 12 &&
          strncasecmp(value.c_str(), "100-continue", 12) == 0) {
        WriteRaw("HTTP/1.1 100 Continue\r\n\r\n");
      }
    }
    return 0;
  }

  static const http_parser_settings& Settings(const HttpParserLib& lib) {
    static const http_parser_settings settings = [&lib] {
      http_parser_settings s;
      lib.settings_init(&s);
      s.on_message_begin = [](http_parser* p) {
        Connection* c = Of(p);
        c->request_ = HttpRequest{};
        c->head_bytes_ = 0;
        c->refusal_ = 0;
        c->in_value_ = false;
        c->Arm(kRequest);
        return 0;
      };
      s.on_url = [](http_parser* p, const char* at, size_t n) {
        Connection* c = Of(p);
        c->request_.target.append(at, n);
        return c->Count(n) ? 0 : 1;
      };
      s.on_header_field = [](http_parser* p, const char* at, size_t n) {
        Connection* c = Of(p);
        if (c->in_value_ || c->request_.headers.empty()) c->request_.headers.emplace_back();
        c->in_value_ = false;
        std::string& name = c->request_.headers.back().first;
        for (size_t i = 0; i < n; ++i) {
          name += static_cast<char>(std::tolower(static_cast<unsigned char>(at[i])));
        }
        return c->Count(n) ? 0 : 1;
      };
      s.on_header_value = [](http_parser* p, const char* at, size_t n) {
        Connection* c = Of(p);
        c->in_value_ = true;
        if (c->request_.headers.empty()) return 1;
        c->request_.headers.back().second.append(at, n);
        return c->Count(n) ? 0 : 1;
      };
      s.on_headers_complete = [](http_parser* p) { return Of(p)->HeadersComplete(); };
      s.on_body = [](http_parser* p, const char* at, size_t n) {
        Connection* c = Of(p);
        if (c->request_.body.size() + n > HttpServer::kMaxBody) {
          c->refusal_ = 413;
          return 1;
        }
        c->request_.body.append(at, n);
        return 0;
      };
      s.on_message_complete = [](http_parser* p) {
        Of(p)->lib_.pause(p, 1);
        return 0;
      };
      return s;
    }();
    return settings;
  }

  HttpServer& server_;
  const HttpParserLib& lib_;
  UvHandle<uv_tcp_t> tcp_;
  UvHandle<uv_timer_t> timer_;   // the timeouts (Arm)
  UvHandle<uv_timer_t> resume_;  // parses the next request on a later turn
  http_parser parser_{};
  HttpRequest request_;  // the request being parsed
  std::string peer_;     // the client's address, for HttpRequest::peer
  std::size_t head_bytes_ = 0;
  int refusal_ = 0;  // 431 or 413 once a limit stopped the parser
  bool in_value_ = false;
  std::string pending_;  // bytes received; those before pending_at_ are parsed
  std::size_t pending_at_ = 0;
  std::shared_ptr<HttpExchange> current_;  // the request being answered
  bool busy_ = false;                      // a request is being answered
  bool keep_alive_ = true;
  bool http10_ = false;  // the request being answered is HTTP/1.0
  bool chunked_ = false;
  bool peer_eof_ = false;       // the client sent its EOF
  bool closing_ = false;        // no more requests: close once written
  bool shutdown_sent_ = false;  // our side is half-closed
  bool stalled_ = false;        // parsing waits for the client to read
  bool pumping_ = false;
  bool dead_ = false;
  char chunk_[4096];
};

// --- HttpExchange ---

void HttpExchange::Respond(HttpResponse response) {
  if (answered_ || connection_ == nullptr) return;
  answered_ = true;
  Connection* c = connection_;
  connection_ = nullptr;
  close_hooks_.clear();
  c->SendResponse(*this, response);
}

void HttpExchange::StartStream(int status, std::string content_type,
                               std::vector<std::pair<std::string, std::string>> headers) {
  if (answered_ || connection_ == nullptr) return;
  answered_ = true;
  streaming_ = true;
  connection_->SendStreamHead(*this, status, content_type, headers);
}

void HttpExchange::Write(std::string_view data) {
  if (!streaming_ || connection_ == nullptr || data.empty()) return;
  connection_->SendChunk(data);  // may drop the connection (Detach)
}

void HttpExchange::End() {
  if (!streaming_ || connection_ == nullptr) return;
  Connection* c = connection_;
  connection_ = nullptr;
  close_hooks_.clear();
  c->EndStream();
}

bool HttpExchange::open() const { return connection_ != nullptr; }

void HttpExchange::OnClose(std::function<void()> hook) {
  if (connection_ == nullptr) {
    if (closed_early_) hook();
    return;
  }
  close_hooks_.push_back(std::move(hook));
}

void HttpExchange::Detach() {
  connection_ = nullptr;
  closed_early_ = true;
  std::vector<std::function<void()>> hooks = std::move(close_hooks_);
  close_hooks_.clear();
  for (auto& hook : hooks) {
    GuardCallback("http: a closed request's hook", [&] { hook(); });
  }
}

// --- HttpServer ---

HttpServer::HttpServer(uv_loop_t* loop, Handler handler)
    : loop_(loop), handler_(std::move(handler)), listener_(this), reaper_(this) {}

HttpServer::~HttpServer() { Close(); }

Status HttpServer::Listen(const std::string& address) {
  auto lib = LoadHttpParser();
  if (!lib.ok()) return lib.error();
  lib_ = *lib;
  auto parsed = ParseListenAddress(address);
  if (!parsed.ok()) return parsed.error();
  sockaddr_storage addr{};
  const auto& [host, port] = *parsed;
  if (uv_ip4_addr(host.c_str(), port, reinterpret_cast<sockaddr_in*>(&addr)) != 0 &&
      uv_ip6_addr(host.c_str(), port, reinterpret_cast<sockaddr_in6*>(&addr)) != 0) {
    return Err(ErrorCode::kInvalid, "listen address '" + address + "': not an IP address");
  }
  loopback_ = IsLoopbackAddress(host);
  if (uv_tcp_init(loop_, listener_.get()) != 0 || uv_timer_init(loop_, reaper_.get()) != 0) {
    return Err(ErrorCode::kIo, "http: cannot create a TCP handle");
  }
  listener_.MarkInitialized();
  reaper_.MarkInitialized();
  int rc = uv_tcp_bind(listener_.get(), reinterpret_cast<const sockaddr*>(&addr), 0);
  if (rc == 0) {
    rc = uv_listen(listener_.stream(), 128, [](uv_stream_t* s, int status) noexcept {
      auto* self = OwnerOf<HttpServer>(s);
      if (self == nullptr || status != 0) return;
      GuardCallback("http: accepting a connection", [self] { self->OnConnection(); });
    });
  }
  if (rc != 0) {
    return Err(ErrorCode::kIo, "http: cannot listen on " + address + ": " + uv_strerror(rc));
  }
  return {};
}

int HttpServer::port() const {
  if (!listener_.initialized()) return 0;
  sockaddr_storage addr{};
  int len = sizeof addr;
  if (uv_tcp_getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) return 0;
  if (addr.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
  return ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
}

void HttpServer::Close() {
  listener_.Close();
  reaper_.Close();
  for (auto& [raw, connection] : connections_) connection->Kill();
  connections_.clear();
  dropped_.clear();
}

void HttpServer::OnConnection() {
  auto connection = std::make_unique<HttpExchange::Connection>(*this, *lib_);
  HttpExchange::Connection* raw = connection.get();
  // Past the limit the connection is accepted and closed at once.
  if (raw->Start() && connections_.size() < kMaxConnections) {
    connections_.emplace(raw, std::move(connection));
  }
}

// Kills the connection now and deletes it on the next loop turn: Drop is
// called from inside the connection's own callbacks.
void HttpServer::Drop(HttpExchange::Connection* connection) {
  auto it = connections_.find(connection);
  if (it == connections_.end()) return;
  connection->Kill();
  dropped_.push_back(std::move(it->second));
  connections_.erase(it);
  StartOneShot<HttpServer, &HttpServer::Reap>(reaper_, 0);
}

void HttpServer::Reap() { dropped_.clear(); }

}  // namespace picoflow
