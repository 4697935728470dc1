#pragma once
// Session: one picoflowctl invocation's connection to picoflowd — connect,
// handshake, call — and the uniform reporting of failures as exit codes.

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "picoflowctl/command.h"
#include "protocol/client.h"

namespace picoflow::ctl {

using nlohmann::json;

class Session {
 public:
  explicit Session(const Globals& globals);

  /// Connects and checks the protocol version. On failure prints why and
  /// returns the exit code (3 if the daemon is unreachable); 0 on success.
  int Connect();

  /// Calls `method`; on an RPC or transport error prints it (with a
  /// workflow's diagnostics, if any) and returns nullopt; `exit_code()` then
  /// says which code to exit with.
  std::optional<json> Call(const std::string& method, const json& params = json::object(),
                           const Client::NotificationHandler& on_notification = {});

  int exit_code() const { return exit_code_; }
  const Globals& globals() const { return globals_; }
  bool colour() const { return colour_; }
  /// Prints `value` as indented JSON on stdout.
  static void PrintJson(const json& value);

 private:
  Globals globals_;
  Client client_;
  bool colour_;
  int exit_code_ = kExitOk;
};

}  // namespace picoflow::ctl
