#include "picoflowd/metrics_server.h"

#include <arpa/inet.h>

#include <cstdlib>
#include <cstring>
#include <utility>

#include "picoflowd/util/callback_guard.h"
#include "picoflowd/util/logging.h"

namespace picoflow {

// One scraper's connection: reads one request head (bounded in size and
// time), writes one response and closes.
class MetricsServer::Connection {
 public:
  explicit Connection(MetricsServer& server) : server_(server), tcp_(this), timer_(this) {}

  bool Start() {
    if (uv_tcp_init(server_.loop_, tcp_.get()) != 0) return false;
    tcp_.MarkInitialized();
    if (uv_accept(server_.listener_.stream(), tcp_.stream()) != 0) return false;
    if (uv_timer_init(server_.loop_, timer_.get()) != 0) return false;
    timer_.MarkInitialized();
    StartOneShot<Connection, &Connection::OnTimeout>(
        timer_, static_cast<std::uint64_t>(kRequestTimeout.count()));
    return uv_read_start(tcp_.stream(), Alloc, OnRead) == 0;
  }

 private:
  struct WriteReq {
    uv_write_t req{};
    std::string data;
  };

  static void Alloc(uv_handle_t* handle, std::size_t, uv_buf_t* buf) noexcept {
    auto* self = OwnerOf<Connection>(handle);
    if (self == nullptr) {
      *buf = uv_buf_init(nullptr, 0);
      return;
    }
    *buf = uv_buf_init(self->chunk_, sizeof self->chunk_);
  }

  static void OnRead(uv_stream_t* stream, ssize_t n, const uv_buf_t*) noexcept {
    auto* self = OwnerOf<Connection>(stream);
    if (self == nullptr) return;
    if (!GuardCallback("metrics: reading a request", [&] { self->Read(n); })) {
      self->server_.Drop(self);
    }
  }

  void Read(ssize_t n) {
    if (n < 0) {
      server_.Drop(this);  // EOF or error before a whole request
      return;
    }
    if (n == 0 || responded_) return;
    head_.append(chunk_, static_cast<std::size_t>(n));
    const auto end = head_.find("\r\n\r\n");
    if (end == std::string::npos && head_.size() < kMaxRequest) return;
    if (end == std::string::npos || end + 4 > kMaxRequest) {
      Send("400 Bad Request", "text/plain; charset=utf-8", "request too large\n", true);
      return;
    }
    const std::string response = server_.Respond(head_.substr(0, end));
    SendRaw(response);
  }

  void Send(const char* status, const char* type, const std::string& body, bool with_body) {
    std::string r = std::string("HTTP/1.1 ") + status + "\r\nContent-Type: " + type +
                    "\r\nContent-Length: " + std::to_string(body.size()) +
                    "\r\nConnection: close\r\n\r\n";
    if (with_body) r += body;
    SendRaw(r);
  }

  void SendRaw(const std::string& response) {
    // Reading goes on (discarding) until the client closes: closing with
    // unread bytes would reset the connection and lose the response.
    responded_ = true;
    auto* w = new WriteReq;
    w->data = response;
    uv_buf_t buf = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
    if (uv_write(&w->req, tcp_.stream(), &buf, 1, OnWritten) != 0) {
      delete w;
      server_.Drop(this);
    }
  }

  // The response is out: half-close; the client's EOF (or the request
  // timer) ends the connection.
  static void OnWritten(uv_write_t* req, int status) noexcept {
    auto* w = reinterpret_cast<WriteReq*>(req);
    auto* self = OwnerOf<Connection>(req->handle);
    delete w;
    if (self == nullptr) return;
    auto* shutdown = new uv_shutdown_t{};
    if (status != 0 || uv_shutdown(shutdown, self->tcp_.stream(),
                                   [](uv_shutdown_t* r, int) noexcept { delete r; }) != 0) {
      delete shutdown;
      self->server_.Drop(self);
    }
  }

  void OnTimeout() { server_.Drop(this); }

  MetricsServer& server_;
  UvHandle<uv_tcp_t> tcp_;
  UvHandle<uv_timer_t> timer_;
  std::string head_;
  bool responded_ = false;
  char chunk_[4096];
};

Result<HttpRequestLine> ParseHttpRequestLine(const std::string& head) {
  const std::string line = head.substr(0, head.find("\r\n"));
  const auto sp1 = line.find(' ');
  const auto sp2 = sp1 == std::string::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string::npos || line.find(' ', sp2 + 1) != std::string::npos) {
    return Err(ErrorCode::kInvalid, "malformed request line");
  }
  HttpRequestLine r;
  r.method = line.substr(0, sp1);
  std::string target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string version = line.substr(sp2 + 1);
  if (r.method.empty() || target.empty() || target[0] != '/' ||
      (version != "HTTP/1.1" && version != "HTTP/1.0")) {
    return Err(ErrorCode::kInvalid, "malformed request line");
  }
  r.path = target.substr(0, target.find('?'));
  return r;
}

Result<std::pair<std::string, int>> ParseListenAddress(const std::string& text) {
  const auto colon = text.rfind(':');
  const auto bad = [&text] {
    return Err(ErrorCode::kInvalid,
               "metrics address '" + text + "' is not ADDR:PORT (e.g. 127.0.0.1:9464)");
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

MetricsServer::MetricsServer(uv_loop_t* loop, std::function<std::string()> render)
    : loop_(loop), render_(std::move(render)), listener_(this) {}

MetricsServer::~MetricsServer() { Close(); }

Status MetricsServer::Listen(const std::string& address) {
  auto parsed = ParseListenAddress(address);
  if (!parsed.ok()) return parsed.error();
  sockaddr_storage addr{};
  const auto& [host, port] = *parsed;
  if (uv_ip4_addr(host.c_str(), port, reinterpret_cast<sockaddr_in*>(&addr)) != 0 &&
      uv_ip6_addr(host.c_str(), port, reinterpret_cast<sockaddr_in6*>(&addr)) != 0) {
    return Err(ErrorCode::kInvalid, "metrics address '" + address + "': not an IP address");
  }
  if (uv_tcp_init(loop_, listener_.get()) != 0) {
    return Err(ErrorCode::kIo, "metrics: cannot create a TCP handle");
  }
  listener_.MarkInitialized();
  int rc = uv_tcp_bind(listener_.get(), reinterpret_cast<const sockaddr*>(&addr), 0);
  if (rc == 0) {
    rc = uv_listen(listener_.stream(), 128, [](uv_stream_t* s, int status) noexcept {
      auto* self = OwnerOf<MetricsServer>(s);
      if (self == nullptr || status != 0) return;
      GuardCallback("metrics: accepting a connection", [self] { self->OnConnection(); });
    });
  }
  if (rc != 0) {
    return Err(ErrorCode::kIo, "metrics: cannot listen on " + address + ": " + uv_strerror(rc));
  }
  return {};
}

int MetricsServer::port() const {
  if (!listener_.initialized()) return 0;
  sockaddr_storage addr{};
  int len = sizeof addr;
  if (uv_tcp_getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) return 0;
  if (addr.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
  return ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
}

void MetricsServer::Close() {
  listener_.Close();
  connections_.clear();
}

void MetricsServer::OnConnection() {
  auto connection = std::make_unique<Connection>(*this);
  Connection* raw = connection.get();
  // Past the limit the connection is accepted and closed at once.
  const bool ok = raw->Start() && connections_.size() < kMaxConnections;
  if (ok) connections_.emplace(raw, std::move(connection));
}

void MetricsServer::Drop(Connection* connection) { connections_.erase(connection); }

std::string MetricsServer::Respond(const std::string& head) const {
  const auto reply = [](const char* status, const std::string& body, bool with_body,
                        const char* type = "text/plain; charset=utf-8") {
    return std::string("HTTP/1.1 ") + status + "\r\nContent-Type: " + type +
           "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" +
           (with_body ? body : std::string());
  };
  auto line = ParseHttpRequestLine(head);
  if (!line.ok()) return reply("400 Bad Request", "bad request\n", true);
  const bool head_only = line->method == "HEAD";
  if (line->method != "GET" && !head_only) {
    return reply("405 Method Not Allowed", "only GET\n", true);
  }
  if (line->path == "/metrics") {
    return reply("200 OK", render_(), !head_only, "text/plain; version=0.0.4; charset=utf-8");
  }
  if (line->path == "/healthz") {
    const std::string problem = health_ ? health_() : std::string();
    if (!problem.empty()) return reply("503 Service Unavailable", problem + "\n", !head_only);
    return reply("200 OK", "ok\n", !head_only);
  }
  return reply("404 Not Found", "not found\n", true);
}

}  // namespace picoflow
