#pragma once
// RequestSender: sends one outbound request (an HTTP call or an e-mail over
// SMTP) on the loop and says how it went. Made by the http module
// (picoflow-http.so, which links libcurl) and loaded on first use by
// LazyRequestSender (exec/request_module.h): what notifications send
// (docs/notifications.md).

#include <chrono>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace picoflow {

/// One request. An `http://`/`https://` url makes an HTTP request of
/// `method` with `headers` and `body`; an `smtp://`/`smtps://` url sends
/// `body` (a whole e-mail) from `mail_from` to `mail_to`.
struct OutboundRequest {
  std::string url;
  std::string method = "POST";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::chrono::milliseconds timeout{10'000};
  std::string mail_from;
  std::vector<std::string> mail_to;
  std::string username;  ///< SMTP login, if any
  std::string password;
};

/// How a request went: `ok` for an HTTP status 2xx or a mail the server took.
struct RequestOutcome {
  bool ok = false;
  long status = 0;    ///< the HTTP status or the SMTP reply code, 0 if none came
  std::string error;  ///< why not ok (never holds the password or the body)
};

class RequestSender {
 public:
  using Done = std::function<void(const RequestOutcome&)>;
  virtual ~RequestSender() = default;
  /// Starts `request`; `done` is called exactly once, on the loop, maybe
  /// from inside Send when it cannot start. Destroying the sender drops the
  /// requests still going without calling their `done`. Never throws.
  virtual void Send(OutboundRequest request, Done done) = 0;
};

}  // namespace picoflow
