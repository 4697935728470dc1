#pragma once
// HttpServer: the daemon's HTTP/1.1 listener on its loop (docs/http-api.md).
// Requests are parsed by nodejs/http-parser (http_parser_lib.h); each whole
// request goes to one handler as an HttpExchange, which answers with one
// response or with a stream (chunked; Server-Sent Events). Connections are
// kept alive and take one request at a time. Limits: 64 connections (more are
// closed at once), a request head of 8 KiB (431) and a body of 1 MiB (413), a
// request whole within 5 s of its first byte (or of the connection) and 30 s
// of silence between requests; a stream whose client reads slower than it is
// written (1 MiB queued) is dropped. Every response carries the security
// headers of kSecurityHeaders.

#include <uv.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"
#include "picoflowd/util/uv_handle.h"

namespace picoflow {

/// A request as the handler sees it.
struct HttpRequest {
  std::string method;  ///< "GET", "POST", ...
  std::string target;  ///< as sent: path and query
  std::string path;    ///< the target's path, percent-decoded
  std::string query;   ///< the target's query, without '?', not decoded
  std::vector<std::pair<std::string, std::string>> headers;  ///< names in lower case
  std::string body;
  bool http10 = false;  ///< an HTTP/1.0 request: no chunked stream
  std::string peer;     ///< the client's address and port ("127.0.0.1:50312")

  /// The value of the first header `name` (lower case), or nullptr.
  const std::string* Header(std::string_view name) const;
};

/// A whole response.
struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::vector<std::pair<std::string, std::string>> headers;  ///< beyond the usual ones
  std::string body;
};

/// The headers every response carries (docs/http-api.md, "Security").
extern const std::pair<const char*, const char*> kSecurityHeaders[4];

/// "OK", "Not Found", ...; "Unknown" for a status it does not know.
const char* HttpReason(int status);

/// Decodes %XX (and, if `plus_is_space`, '+'); nullopt-like false on a bad
/// escape. Writes the result to `out`.
bool PercentDecode(std::string_view in, bool plus_is_space, std::string& out);

/// True for an IPv4 address in 127.0.0.0/8 or the IPv6 ::1, in any of their
/// spellings; false for anything else, names included.
bool IsLoopbackAddress(const std::string& text);

/// Splits "ADDR:PORT" ("127.0.0.1:8080", "[::1]:8080", ":8080" for all IPv4
/// addresses). Returns an Error naming the text if it does not parse.
Result<std::pair<std::string, int>> ParseListenAddress(const std::string& text);

class HttpServer;
struct HttpParserLib;

/// One request being answered. The handler answers now or keeps the
/// shared_ptr and answers later; answering a client that left is a no-op.
class HttpExchange {
 public:
  const HttpRequest& request() const { return request_; }

  /// Sends `response` (no body for HEAD). Only the first answer counts.
  void Respond(HttpResponse response);
  /// Starts a chunked response of `content_type`; Write() its parts, End() it.
  void StartStream(int status, std::string content_type,
                   std::vector<std::pair<std::string, std::string>> headers = {});
  /// Writes one part of a stream (ignored if empty, not streaming or gone).
  void Write(std::string_view data);
  /// Ends a stream; the connection takes its next request.
  void End();
  /// True while the client is connected and the answer is not complete.
  bool open() const;
  /// Runs `hook` if the connection closes before the answer is complete
  /// (at once if it already has).
  void OnClose(std::function<void()> hook);

 private:
  friend class HttpServer;
  class Connection;
  HttpExchange(Connection* connection, HttpRequest request)
      : connection_(connection), request_(std::move(request)) {}
  void Detach();  // the connection closed: run the hooks, forget it

  Connection* connection_;
  HttpRequest request_;
  std::vector<std::function<void()>> close_hooks_;
  bool answered_ = false;
  bool streaming_ = false;
  bool closed_early_ = false;  // the connection closed before the answer was complete
};

class HttpServer {
 public:
  static constexpr std::size_t kMaxHead = 8 * 1024;
  static constexpr std::size_t kMaxBody = 1024 * 1024;
  static constexpr std::size_t kMaxQueued = 1024 * 1024;
  static constexpr std::size_t kMaxConnections = 64;
  static constexpr std::chrono::milliseconds kRequestTimeout{5000};
  static constexpr std::chrono::milliseconds kIdleTimeout{30000};

  using Handler = std::function<void(const std::shared_ptr<HttpExchange>&)>;

  HttpServer(uv_loop_t* loop, Handler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  /// Loads the parser library, binds and listens on ADDR:PORT. Returns an
  /// Error naming the address (or the library) if it cannot.
  Status Listen(const std::string& address);
  /// The bound port (useful with port 0).
  int port() const;
  /// True if bound to a loopback address (127.0.0.0/8, ::1).
  bool loopback() const { return loopback_; }
  /// Connections open now.
  std::size_t connections() const { return connections_.size(); }
  /// Stops listening and closes every connection.
  void Close();

 private:
  friend class HttpExchange::Connection;
  void OnConnection();
  void Drop(HttpExchange::Connection* connection);
  void Reap();

  uv_loop_t* loop_;
  Handler handler_;
  const HttpParserLib* lib_ = nullptr;
  UvHandle<uv_tcp_t> listener_;
  UvHandle<uv_timer_t> reaper_;  // deletes dropped connections on the next loop turn
  bool loopback_ = false;
  std::map<HttpExchange::Connection*, std::unique_ptr<HttpExchange::Connection>> connections_;
  std::vector<std::unique_ptr<HttpExchange::Connection>> dropped_;
};

}  // namespace picoflow
