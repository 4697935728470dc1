#pragma once
// MetricsServer: a minimal HTTP/1.1 responder on the daemon's loop for
// Prometheus. GET /metrics answers the exposition, GET /healthz "ok"; any
// other path 404, any other method 405, a malformed or oversized (8 KiB)
// request 400. Every response carries Connection: close and the connection
// closes once it is written; a client that has not sent a whole request
// within 5 s is dropped. Off unless --metrics-listen is given.

#include <uv.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "common/result.h"
#include "picoflowd/util/uv_handle.h"

namespace picoflow {

/// The request line of a whole request head, or an Error (kInvalid) if it is
/// not `METHOD SP TARGET SP HTTP/1.x`.
struct HttpRequestLine {
  std::string method;
  std::string path;  ///< the target without its query string
};
Result<HttpRequestLine> ParseHttpRequestLine(const std::string& head);

/// Splits "ADDR:PORT" ("127.0.0.1:9464", "[::1]:9464", ":9464" for all
/// IPv4 addresses). Returns an Error naming the text if it does not parse.
Result<std::pair<std::string, int>> ParseListenAddress(const std::string& text);

class MetricsServer {
 public:
  static constexpr std::size_t kMaxRequest = 8 * 1024;
  static constexpr std::chrono::milliseconds kRequestTimeout{5000};
  static constexpr std::size_t kMaxConnections = 64;

  /// `render` produces the /metrics body.
  MetricsServer(uv_loop_t* loop, std::function<std::string()> render);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  /// `problem` says what makes the daemon unhealthy ("" when healthy):
  /// /healthz answers 503 with it. Without one /healthz is always ok.
  void SetHealth(std::function<std::string()> problem) { health_ = std::move(problem); }
  /// Binds and listens on ADDR:PORT. Returns an Error naming the address if
  /// it does not parse or cannot be bound.
  Status Listen(const std::string& address);
  /// The bound port (useful with port 0).
  int port() const;
  /// Stops listening and closes every connection.
  void Close();

  class Connection;

 private:
  friend class Connection;
  void OnConnection();
  std::string Respond(const std::string& head) const;

  uv_loop_t* loop_;
  std::function<std::string()> render_;
  std::function<std::string()> health_;
  UvHandle<uv_tcp_t> listener_;
  std::map<Connection*, std::unique_ptr<Connection>> connections_;
  void Drop(Connection* connection);
};

}  // namespace picoflow
