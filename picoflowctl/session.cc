#include "picoflowctl/session.h"

#include <cstdio>

#include "picoflowctl/render.h"
#include "protocol/jsonrpc.h"

namespace picoflow::ctl {

Session::Session(const Globals& globals)
    : globals_(globals), colour_(UseColour(stdout, !globals.no_colour)) {}

int Session::Connect() {
  if (Status s = client_.Connect(globals_.socket); !s.ok()) {
    std::fprintf(stderr, "picoflowctl: %s\n", s.error().message.c_str());
    if (s.error().code == ErrorCode::kUnavailable) {
      std::fprintf(stderr,
                   "  is picoflowd running? start it with `picoflowd --socket %s` (or `systemctl "
                   "start picoflowd`),\n  or point picoflowctl at its socket with --socket PATH\n",
                   globals_.socket.c_str());
    }
    return exit_code_ = kExitUnreachable;
  }
  if (auto hello = client_.Handshake(); !hello.ok()) {
    std::fprintf(stderr, "picoflowctl: %s\n", hello.error().message.c_str());
    const auto& rpc = client_.last_rpc_error();
    if (rpc && rpc->code == static_cast<int>(RpcCode::kForbidden)) {
      std::fprintf(stderr, "  %s\n", kAccessAdvice);
    }
    return exit_code_ = hello.error().code == ErrorCode::kConflict ? kExitFailed : kExitUnreachable;
  }
  return kExitOk;
}

namespace {

// "FILE:LINE:COL: MESSAGE" from one -32003 diagnostic (which carries the
// parts, not the joined text).
std::string DiagnosticText(const json& d) {
  if (d.contains("text") && d["text"].is_string()) return d["text"];
  std::string where = d.value("file", "");
  const int line = d.value("line", 0);
  if (line > 0) where += ":" + std::to_string(line) + ":" + std::to_string(d.value("col", 0));
  const std::string message = d.value("message", "");
  return where.empty() ? message : where + ": " + message;
}

}  // namespace

std::optional<json> Session::Call(const std::string& method, const json& params,
                                  const Client::NotificationHandler& on_notification) {
  auto result = on_notification ? client_.Call(method, params, on_notification)
                                : client_.Call(method, params);
  if (result.ok()) return std::move(*result);
  if (client_.interrupted()) {
    exit_code_ = kExitInterrupted;
    return std::nullopt;
  }
  const auto& rpc = client_.last_rpc_error();
  if (!rpc) {
    std::fprintf(stderr, "picoflowctl: %s\n", result.error().message.c_str());
    exit_code_ = client_.connected() ? kExitFailed : kExitUnreachable;
    return std::nullopt;
  }
  if (globals_.json) {
    PrintJson({{"error", {{"code", rpc->code}, {"message", rpc->message}, {"data", rpc->data}}}});
  } else {
    std::fprintf(stderr, "picoflowctl: %s\n", rpc->message.c_str());
    if (rpc->data.is_object() && rpc->data.contains("diagnostics")) {
      for (const json& d : rpc->data["diagnostics"]) {
        std::fprintf(stderr, "%s\n", DiagnosticText(d).c_str());
      }
    }
  }
  exit_code_ = rpc->code == static_cast<int>(RpcCode::kInvalidParams) ? kExitUsage : kExitFailed;
  return std::nullopt;
}

void Session::CatchInterrupts() {
  if (interrupts_) return;
  interrupts_ = std::make_unique<InterruptCatcher>();
  client_.SetInterruptFd(interrupts_->fd());
}

void Session::PrintJson(const json& value) {
  std::printf("%s\n", value.dump(2, ' ', false, json::error_handler_t::replace).c_str());
}

}  // namespace picoflow::ctl
