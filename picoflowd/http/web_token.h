#pragma once
// WebToken: the token that gives an HTTP client write access (run, cancel,
// retry, pause; docs/http-api.md, "Write access"). It lives in the state
// directory as `web-token`, mode 0600; none exists until `picoflowctl
// web-token` makes one, and until then writes over HTTP are off. A request
// carries it as `Authorization: Bearer TOKEN` (a header, never a cookie: a
// page of another site cannot send it), compared in constant time.

#include <string>
#include <string_view>

#include "common/result.h"
#include "picoflowd/http/http_api.h"

namespace picoflow {

class WebToken {
 public:
  /// `path`: the token file (STATE_DIR/web-token).
  explicit WebToken(std::string path) : path_(std::move(path)) {}

  /// Reads the file if there is one (refused if group or others may read
  /// it). No file: writes stay off.
  Status Load();
  /// The token, made (32 random bytes, hex) and stored if there is none or
  /// `rotate` is set: a rotated token replaces the old one at once.
  Result<std::string> Get(bool rotate);
  /// What `request`'s Authorization header is worth.
  TokenCheck Check(const HttpRequest& request) const;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::string token_;  // empty: none
};

/// What `request`'s `Authorization: Bearer` header is worth against `token`
/// (kOff if `token` is empty), compared in constant time. WebToken::Check
/// and the webhooks of `triggers:` (docs/triggers.md) use it.
TokenCheck CheckBearer(const HttpRequest& request, std::string_view token);

/// True if `a` equals `b`; the time taken depends on their lengths only.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

}  // namespace picoflow
