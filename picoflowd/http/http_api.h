#pragma once
// HttpApi: /api/v1/, the control socket's JSON-RPC methods over HTTP
// (docs/http-api.md). A request becomes one JSON-RPC call on the daemon's
// Dispatcher, so a method behaves, checks its params and is refused exactly
// as on the socket:
//   GET  /api/v1/METHOD?PARAM=VALUE...  a read method; each value is read as
//        its param's type (integer, bool, number; JSON for objects/arrays)
//   POST /api/v1/METHOD  with a JSON object of params as the body; a write
//        method needs `Authorization: Bearer TOKEN`
// The answer is the call's result as JSON (200), or {"error":{code,message,
// data}} with a status for its code. With `Accept: text/event-stream` every
// message of the call (its notifications, then its response) is one
// Server-Sent Event, and the stream ends after the response.

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "picoflowd/http/http_server.h"

namespace picoflow {

class Dispatcher;

/// What a request's token is worth.
enum class TokenCheck {
  kOff,      ///< no token is configured: writes are off (403)
  kMissing,  ///< none was sent (401)
  kWrong,    ///< one was sent, not the token (401)
  kValid,    ///< write access
};

/// Every JSON answer of the listener (the API's, the webhooks'): compact,
/// never cached.
HttpResponse JsonResponse(int status, const nlohmann::json& body);

/// The HTTP status of a JSON-RPC error code (-32001 -> 404, ...).
int HttpStatusOf(int rpc_code);

class HttpApi {
 public:
  static constexpr const char* kPrefix = "/api/v1/";

  /// The write methods the daemon offers over HTTP: what the page's buttons
  /// do, on workflows already submitted. The others (submit, remove, reload,
  /// prune, web.token; and run.start of a `source`, always refused) would
  /// let a token holder run any command: they stay on the control socket.
  static const std::vector<std::string> kDaemonWrites;

  /// `writes`: the write methods offered (others answer 403); `check`
  /// judges a request's Authorization header; `before_send` runs before any
  /// byte of an answer is written (the store commits: what a client sees is
  /// on disk).
  HttpApi(Dispatcher& dispatcher, std::vector<std::string> writes,
          std::function<TokenCheck(const HttpRequest&)> check,
          std::function<void()> before_send = {});

  /// Answers a request whose path starts with kPrefix.
  void Serve(const std::shared_ptr<HttpExchange>& exchange);

 private:
  Dispatcher& dispatcher_;
  std::vector<std::string> writes_;
  std::function<TokenCheck(const HttpRequest&)> check_;
  std::function<void()> before_send_;
};

}  // namespace picoflow
