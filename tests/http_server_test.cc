// HttpServer and HttpApi over real TCP on 127.0.0.1: keep-alive and
// pipelining, the limits, streams (Server-Sent Events) and a client that
// leaves one, and the /api/v1/ mapping onto a Dispatcher (typed query params,
// read/write access by token, error statuses). The whole daemon's listener
// is tested in http_test.py and the page in web_browser_test.py.

#include "picoflowd/http/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <optional>

#include "picoflowd/http/http_api.h"
#include "picoflowd/http/web_token.h"
#include "tests/rpc_test_harness.h"

namespace picoflow::test {
namespace {

// One parsed response.
struct Response {
  int status = 0;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;                            // chunked bodies joined
};

// Takes one whole response off the front of `buf`, or nullopt if it is not
// all there yet. `head_only`: a response to HEAD has no body.
std::optional<Response> TakeResponse(std::string& buf, bool head_only = false) {
  const auto end = buf.find("\r\n\r\n");
  if (end == std::string::npos) return std::nullopt;
  Response r;
  r.status = std::atoi(buf.c_str() + 9);
  std::size_t at = buf.find("\r\n") + 2;
  while (at < end) {
    const auto eol = buf.find("\r\n", at);
    const std::string line = buf.substr(at, eol - at);
    const auto colon = line.find(':');
    std::string name = line.substr(0, colon);
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    r.headers[name] = line.substr(colon + 2);
    at = eol + 2;
  }
  std::size_t pos = end + 4;
  if (head_only) {
    buf.erase(0, pos);
    return r;
  }
  if (r.headers.count("transfer-encoding") != 0) {
    while (true) {
      const auto eol = buf.find("\r\n", pos);
      if (eol == std::string::npos) return std::nullopt;
      const std::size_t size = std::stoul(buf.substr(pos, eol - pos), nullptr, 16);
      if (buf.size() < eol + 2 + size + 2) return std::nullopt;
      if (size == 0) {
        buf.erase(0, eol + 4);
        return r;
      }
      r.body += buf.substr(eol + 2, size);
      pos = eol + 2 + size + 2;
    }
  }
  const auto cl = r.headers.find("content-length");  // none: no body (100, 304)
  const std::size_t length = cl == r.headers.end() ? 0 : std::stoul(cl->second);
  if (buf.size() < pos + length) return std::nullopt;
  r.body = buf.substr(pos, length);
  buf.erase(0, pos + length);
  return r;
}

// A blocking TCP client for the client thread; every read has a deadline.
class TcpClient {
 public:
  explicit TcpClient(int port) : fd_(socket(AF_INET, SOCK_STREAM, 0)) {
    timeval tv{10, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~TcpClient() { Close(); }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  bool connected() const { return connected_; }
  void Send(const std::string& data) {
    std::size_t sent = 0;
    while (sent < data.size()) {
      const ssize_t n = ::send(fd_, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return;
      sent += static_cast<std::size_t>(n);
    }
  }
  // The next whole response; nullopt at EOF or the deadline.
  std::optional<Response> Next(bool head_only = false) {
    while (true) {
      if (auto r = TakeResponse(buf_, head_only)) return r;
      if (!Fill()) return std::nullopt;
    }
  }
  // Reads until `text` has arrived (true) or EOF/the deadline (false).
  bool WaitFor(const std::string& text) {
    while (buf_.find(text) == std::string::npos) {
      if (!Fill()) return false;
    }
    return true;
  }
  void ShutdownWrite() { ::shutdown(fd_, SHUT_WR); }
  // Everything left until EOF (or the deadline).
  std::string ReadAll() {
    while (Fill()) {
    }
    return std::exchange(buf_, std::string());
  }
  // True if the server closed the connection (EOF) before the deadline.
  bool Closed() {
    while (Fill()) {
    }
    return eof_;
  }

 private:
  bool Fill() {
    char chunk[65536];
    const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n == 0) eof_ = true;
    if (n <= 0) return false;
    buf_.append(chunk, static_cast<std::size_t>(n));
    return true;
  }
  int fd_;
  bool connected_ = false;
  bool eof_ = false;
  std::string buf_;
};

std::string Get(const std::string& target, const std::string& extra = "") {
  return "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra + "\r\n";
}

std::string Post(const std::string& target, const std::string& body,
                 const std::string& extra = "") {
  return "POST " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" +
         extra + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

// The harness' loop and dispatcher (its test methods), with an HttpServer
// whose handler serves /api/v1/ and echoes anything else.
struct HttpHarness {
  HttpHarness() {
    api = std::make_unique<HttpApi>(h.dispatcher, std::vector<std::string>{"test.write"},
                                    [this](const HttpRequest& r) {
                                      return token.empty() ? TokenCheck::kOff : checker.Check(r);
                                    });
    server = std::make_unique<HttpServer>(&h.loop, [this](const std::shared_ptr<HttpExchange>& e) {
      if (e->request().path.starts_with(HttpApi::kPrefix)) return api->Serve(e);
      HttpResponse r;
      r.body = e->request().method + " " + e->request().path + " q=" + e->request().query +
               " body=" + std::to_string(e->request().body.size());
      e->Respond(std::move(r));
    });
    const Status s = server->Listen("127.0.0.1:0");
    INFO((s.ok() ? std::string() : s.error().message));
    REQUIRE(s.ok());
    port = server->port();
  }
  ~HttpHarness() { server->Close(); }

  Harness h;
  TempDir dir{"pfhttp", "/tmp"};
  std::string token;
  WebToken checker{dir.path() + "/web-token"};
  std::unique_ptr<HttpApi> api;
  std::unique_ptr<HttpServer> server;
  int port = 0;
};

TEST_CASE("a kept-alive connection answers requests in order, pipelined ones too") {
  HttpHarness t;
  std::vector<std::string> bodies;
  t.h.WithClient([&] {
    TcpClient c(t.port);
    REQUIRE(c.connected());
    c.Send(Get("/a"));
    if (auto r = c.Next()) bodies.push_back(r->body);
    c.Send(Get("/b?x=1") + Post("/c", "12345") + Get("/d%20e"));
    for (int i = 0; i < 3; ++i) {
      if (auto r = c.Next()) bodies.push_back(r->body);
    }
    c.Send("HEAD /f HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    auto head = c.Next(true);
    REQUIRE(head);
    CHECK(head->headers["content-length"] == "17");  // "HEAD /f q= body=0", not sent
    CHECK(head->headers["x-content-type-options"] == "nosniff");
    CHECK(head->headers["content-security-policy"].find("script-src 'self'") != std::string::npos);
    c.Send(Get("/g", "Connection: close\r\n"));
    auto last = c.Next();
    REQUIRE(last);
    CHECK(last->headers["connection"] == "close");
    CHECK(c.Closed());
  });
  CHECK(bodies == std::vector<std::string>{"GET /a q= body=0", "GET /b q=x=1 body=0",
                                           "POST /c q= body=5", "GET /d e q= body=0"});
}

TEST_CASE("requests over the limits or malformed are refused and the connection closed") {
  HttpHarness t;
  std::vector<int> statuses;
  bool closed = true;
  t.h.WithClient([&] {
    for (const std::string& request :
         {Get("/" + std::string(9000, 'a')), Post("/x", std::string(HttpServer::kMaxBody + 1, 'b')),
          std::string("garbage\r\n\r\n"), Get("/%zz"), Get("relative")}) {
      TcpClient c(t.port);
      c.Send(request);
      auto r = c.Next();
      statuses.push_back(r ? r->status : 0);
      closed = closed && c.Closed();
    }
  });
  CHECK(statuses == std::vector<int>{431, 413, 400, 400, 400});
  CHECK(closed);
}

TEST_CASE("past 64 connections a new one is closed at once") {
  HttpHarness t;
  bool extra_closed = false;
  bool first_served = false;
  t.h.WithClient([&] {
    std::vector<std::unique_ptr<TcpClient>> held;
    for (std::size_t i = 0; i < HttpServer::kMaxConnections; ++i) {
      held.push_back(std::make_unique<TcpClient>(t.port));
      held.back()->Send(Get("/held"));
      held.back()->Next();  // served: the connection is counted
    }
    TcpClient extra(t.port);
    extra_closed = extra.Closed();
    held.front()->Send(Get("/again"));
    first_served = held.front()->Next().has_value();
  });
  CHECK(extra_closed);
  CHECK(first_served);
}

TEST_CASE("api: read methods over GET with typed params, errors as statuses") {
  HttpHarness t;
  std::vector<Response> got;
  t.h.WithClient([&] {
    TcpClient c(t.port);
    for (const std::string& target :
         {"/api/v1/daemon.version", "/api/v1/test.record?who=a%20b+c", "/api/v1/no.such",
          "/api/v1/test.write", "/api/v1/test.throw", "/api/v1/daemon.version?protocol=x",
          "/api/v1/test.record?who=1&who=2"}) {
      c.Send(Get(target));
      got.push_back(c.Next().value_or(Response{}));
    }
  });
  REQUIRE(got.size() == 7);
  CHECK(got[0].status == 200);
  CHECK(json::parse(got[0].body)["protocol"] == kProtocolVersion);
  CHECK(got[0].headers["content-type"] == "application/json");
  CHECK(got[1].status == 200);
  CHECK(t.h.records == std::vector<std::string>{"a b c"});
  CHECK(got[2].status == 404);
  CHECK(got[3].status == 405);  // a write method is POSTed
  CHECK(got[4].status == 500);
  CHECK(json::parse(got[4].body)["error"]["code"] == -32603);
  CHECK(got[5].status == 400);  // protocol is an integer
  CHECK(json::parse(got[5].body)["error"]["message"].get<std::string>().find("integer") !=
        std::string::npos);
  CHECK(got[6].status == 400);  // a param twice
}

TEST_CASE("api: a write needs the token: off 403, missing or wrong 401, right 200") {
  HttpHarness t;
  std::vector<int> statuses;
  auto post_all = [&] {
    TcpClient c(t.port);
    c.Send(Post("/api/v1/test.write", "{}"));
    statuses.push_back(c.Next().value_or(Response{}).status);
    c.Send(Post("/api/v1/test.write", "{}", "Authorization: Bearer nope\r\n"));
    statuses.push_back(c.Next().value_or(Response{}).status);
    c.Send(Post("/api/v1/test.write", "{}", "Authorization: Bearer " + t.token + "\r\n"));
    statuses.push_back(c.Next().value_or(Response{}).status);
    c.Send(Post("/api/v1/test.write", "[1]", "Authorization: Bearer " + t.token + "\r\n"));
    statuses.push_back(c.Next().value_or(Response{}).status);
  };
  t.h.WithClient(post_all);
  CHECK(statuses == std::vector<int>{403, 403, 403, 403});
  auto made = t.checker.Get(false);
  REQUIRE(made.ok());
  t.token = *made;
  CHECK(t.token.size() == 64);
  statuses.clear();
  t.h.WithClient(post_all);
  CHECK(statuses == std::vector<int>{401, 401, 200, 400});
  // A rotated token replaces the old one; a fresh WebToken reads it back.
  auto rotated = t.checker.Get(true);
  REQUIRE(rotated.ok());
  CHECK(*rotated != t.token);
  WebToken reread(t.checker.path());
  REQUIRE(reread.Load().ok());
  HttpRequest r;
  r.headers = {{"authorization", "Bearer " + *rotated}};
  CHECK(reread.Check(r) == TokenCheck::kValid);
  r.headers = {{"authorization", "Bearer " + t.token}};
  CHECK(reread.Check(r) == TokenCheck::kWrong);
}

TEST_CASE(
    "api: with Accept: text/event-stream each message is an event; the stream ends after the response") {
  HttpHarness t;
  std::optional<Response> r;
  t.h.WithClient([&] {
    TcpClient c(t.port);
    c.Send(Get("/api/v1/test.stream", "Accept: text/event-stream\r\n"));
    r = c.Next();
    c.Send(Get("/after"));  // the connection goes on after the stream
    auto after = c.Next();
    CHECK((after && after->body == "GET /after q= body=0"));
  });
  REQUIRE(r);
  CHECK(r->headers["content-type"] == "text/event-stream");
  CHECK(r->headers["transfer-encoding"] == "chunked");
  std::vector<json> events;
  std::size_t at = 0;
  while ((at = r->body.find("data: ", at)) != std::string::npos) {
    const auto end = r->body.find("\n\n", at);
    events.push_back(json::parse(r->body.substr(at + 6, end - at - 6)));
    at = end;
  }
  REQUIRE(events.size() == 4);
  CHECK(events[0]["method"] == "test.progress");
  CHECK(events[2]["params"]["n"] == 3);
  CHECK(events[3]["result"] == "end");
}

TEST_CASE("api: a client that leaves a stream ends its call (the call's close hooks run)") {
  HttpHarness t;
  t.h.WithClient([&] {
    TcpClient c(t.port);
    c.Send(Get("/api/v1/test.hold", "Accept: text/event-stream\r\n"));
    c.WaitFor("\r\n\r\n");  // the stream's head
  });                       // the client closes here
  CHECK(t.h.LoopUntil([&] { return t.h.hold_close_hooks == 1; }, 10s));
  t.h.held.reset();
  CHECK(t.server->connections() == 0);
}

// --- back-pressure, half-closes, HEAD, clients that leave ---

TEST_CASE("pipelined requests are not answered faster than the client reads them") {
  Harness h;
  int handled = 0;
  HttpServer server(&h.loop, [&](const std::shared_ptr<HttpExchange>& e) {
    ++handled;
    HttpResponse r;
    r.body = std::string(256 * 1024, 'x');
    e->Respond(std::move(r));
  });
  REQUIRE(server.Listen("127.0.0.1:0").ok());
  const int port = server.port();
  std::atomic<bool> sent{false};
  std::atomic<bool> release{false};
  ClientThread client(&h.loop, [&] {
    TcpClient c(port);
    std::string all;
    for (int i = 0; i < 200; ++i) all += Get("/x");  // 200 x 256 KiB = 50 MiB of answers
    c.Send(all);
    sent = true;
    while (!release) std::this_thread::sleep_for(10ms);  // never reads
  });
  // With back-pressure the server stops once the socket buffers and 1 MiB of
  // queue are full (some 10-40 answers), however long it is given; without,
  // it answers all 200 and queues ~50 MiB in libuv's write queue. The window
  // bounds a check that nothing more happens; it is no speed assertion.
  bool window_over = false;
  Later window(&h.loop, 2s, [&] { window_over = true; });
  h.LoopUntil([&] { return window_over; });
  CHECK(handled < 200);
  CHECK(handled > 0);
  release = true;
  h.LoopUntil([&] { return client.done(); });
  server.Close();
}

TEST_CASE("a request followed by the client's half-close still gets its whole answer") {
  Harness h;
  constexpr std::size_t kBig = 8 * 1024 * 1024;
  HttpServer server(&h.loop, [&](const std::shared_ptr<HttpExchange>& e) {
    HttpResponse r;
    r.body = std::string(kBig, 'x');
    e->Respond(std::move(r));
  });
  REQUIRE(server.Listen("127.0.0.1:0").ok());
  const int port = server.port();
  std::size_t got = 0;
  h.WithClient([&] {
    TcpClient c(port);
    c.Send("GET /big HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    c.ShutdownWrite();                   // done sending, as HTTP/1.0 clients may
    std::this_thread::sleep_for(200ms);  // let the server see the EOF before we read
    const std::string all = c.ReadAll();
    const auto at = all.find("\r\n\r\n");
    got = at == std::string::npos ? 0 : all.size() - at - 4;
  });
  CHECK(got == kBig);  // the code before the fix drops the queued rest at the EOF
  server.Close();
}

TEST_CASE("HEAD with Accept: text/event-stream gets no body") {
  HttpHarness t;
  std::string all;
  t.h.WithClient([&] {
    TcpClient c(t.port);
    c.Send(
        "HEAD /api/v1/test.stream HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Accept: text/event-stream\r\n\r\n" +
        Get("/after", "Connection: close\r\n"));
    all = c.ReadAll();
  });
  const auto head_end = all.find("\r\n\r\n");
  REQUIRE(head_end != std::string::npos);
  // Right after the HEAD response's head comes the next response; the
  // code before the fix sends the stream's chunks ("7a\r\ndata: ...") in between.
  CHECK(all.substr(head_end + 4, 9) == "HTTP/1.1 ");
}

TEST_CASE("a client that leaves a held call (no stream) ends it") {
  HttpHarness t;
  t.h.WithClient([&] {
    TcpClient c(t.port);
    c.Send(Get("/api/v1/test.hold"));
  });  // the client closes here, its call still held
  CHECK(t.h.LoopUntil([&] { return t.h.held_count == 1; }, 10s));
  // The hooks never run and the connection stays until the call is answered
  // (run.wait on a run that lasts for days: 64 of them fill the listener).
  CHECK(t.h.LoopUntil([&] { return t.h.hold_close_hooks == 1; }, 3s));
  CHECK(t.server->connections() == 0);
  t.h.held.reset();
}

TEST_CASE("Expect: 100-continue is answered, and a body announced over the limit refused unsent") {
  HttpHarness t;
  bool continued = false;
  std::optional<Response> posted;
  std::optional<Response> too_big;
  t.h.WithClient([&] {
    TcpClient c(t.port);
    c.Send(
        "POST /p HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: 100-continue\r\n"
        "Content-Length: 3\r\n\r\n");
    continued = c.WaitFor("HTTP/1.1 100 Continue\r\n\r\n");
    c.Send("abc");
    posted = c.Next();  // the 100 is a head without a body: skipped below
    if (posted && posted->status == 100) posted = c.Next();
    TcpClient big(t.port);
    big.Send("POST /p HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 99999999\r\n\r\n");
    too_big = big.Next();
  });
  CHECK(continued);
  REQUIRE(posted);
  CHECK(posted->body == "POST /p q= body=3");
  REQUIRE(too_big);
  CHECK(too_big->status == 413);
}

TEST_CASE("percent-decoding, listen addresses and loopback") {
  std::string out;
  CHECK(PercentDecode("a%20b+c%2F", true, out));
  CHECK(out == "a b c/");
  CHECK(PercentDecode("a+b", false, out));
  CHECK(out == "a+b");
  CHECK_FALSE(PercentDecode("%2", false, out));
  CHECK_FALSE(PercentDecode("%g0", false, out));
  CHECK(*ParseListenAddress("127.0.0.1:8080") == std::pair<std::string, int>("127.0.0.1", 8080));
  CHECK(*ParseListenAddress("[::1]:80") == std::pair<std::string, int>("::1", 80));
  CHECK(*ParseListenAddress(":9464") == std::pair<std::string, int>("0.0.0.0", 9464));
  CHECK(ParseListenAddress("9464").error().message ==
        "listen address '9464' is not ADDR:PORT (e.g. 127.0.0.1:8080)");
  CHECK_FALSE(ParseListenAddress("a:b").ok());
  CHECK_FALSE(ParseListenAddress("a:70000").ok());
  for (const char* loop : {"127.0.0.1", "127.8.9.10", "::1", "0:0:0:0:0:0:0:1"}) {
    CAPTURE(loop);
    CHECK(IsLoopbackAddress(loop));
  }
  for (const char* other : {"0.0.0.0", "10.0.0.1", "::", "localhost", "127.0.0.1.evil.example"}) {
    CAPTURE(other);
    CHECK_FALSE(IsLoopbackAddress(other));
  }
  CHECK(ConstantTimeEquals("abc", "abc"));
  CHECK_FALSE(ConstantTimeEquals("abc", "abd"));
  CHECK_FALSE(ConstantTimeEquals("abc", "ab"));
}

}  // namespace
}  // namespace picoflow::test
