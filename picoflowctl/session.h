#pragma once
// Session: one picoflowctl invocation's connection to picoflowd — connect,
// handshake, call — and the uniform reporting of failures as exit codes.

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "picoflowctl/command.h"
#include "picoflowctl/interrupt.h"
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

  /// From now on Ctrl-C ends the call in progress (and every later one) at
  /// once, instead of killing picoflowctl: the call returns nullopt without
  /// printing anything, interrupted() is true and exit_code() 130, for the
  /// command to say what goes on without it.
  void CatchInterrupts();
  /// True once Ctrl-C ended a call.
  bool interrupted() const { return client_.interrupted(); }

  int exit_code() const { return exit_code_; }
  const Globals& globals() const { return globals_; }
  bool colour() const { return colour_; }
  /// Prints `value` as indented JSON on stdout.
  static void PrintJson(const json& value);

 private:
  Globals globals_;
  std::unique_ptr<InterruptCatcher> interrupts_;  ///< declared before client_: outlives its use
  Client client_;
  bool colour_;
  int exit_code_ = kExitOk;
};

}  // namespace picoflow::ctl
