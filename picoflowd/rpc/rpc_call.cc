#include "picoflowd/rpc/rpc_call.h"

#include <fmt/format.h>

#include <utility>

#include "picoflowd/util/callback_guard.h"
#include "picoflowd/util/logging.h"

namespace picoflow {

std::uint64_t RpcChannel::AddCloseHook(std::function<void()> hook) {
  if (!open()) {
    hook();
    return 0;
  }
  std::uint64_t token = next_token_++;
  hooks_.emplace(token, std::move(hook));
  return token;
}

void RpcChannel::RemoveCloseHook(std::uint64_t token) { hooks_.erase(token); }

void RpcChannel::RunCloseHooks() noexcept {
  // Hooks may add or remove hooks (a reply removes its own): run a snapshot.
  auto hooks = std::exchange(hooks_, {});
  for (auto& [token, hook] : hooks) GuardCallback("rpc: a connection's close hook", hook);
}

RpcCall::RpcCall(std::weak_ptr<RpcChannel> channel, Request request, Peer peer,
                 std::size_t max_reply, std::uint64_t serial)
    : channel_(std::move(channel)),
      request_(std::move(request)),
      peer_(peer),
      max_reply_(max_reply),
      serial_(serial),
      started_(std::chrono::steady_clock::now()) {
  if (auto ch = channel_.lock()) ch->CallBegan();
}

RpcCall::~RpcCall() {
  if (finished_) return;
  // A destructor must not throw; if the answer cannot be made, the client
  // sees the connection close.
  GuardCallback("rpc: answering a call left without a reply", [this] {
    Fail(RpcErr(RpcCode::kInternal,
                "internal error: " + request_.method + " finished without a reply"));
  });
}

bool RpcCall::connected() const {
  auto channel = channel_.lock();
  return channel && channel->open();
}

void RpcCall::Reply(json result) {
  if (finished_) return;
  // In parts: ResultLine would copy the whole result into the line's object.
  std::string line = ResultLineHead(request_.id) + DumpCompact(result);
  line += kResultLineTail;
  if (line.size() > max_reply_ + 1) line = OversizeLine(line.size());
  Finish(std::move(line), "ok");
}

void RpcCall::ReplySerialized(std::shared_ptr<const std::string> result) {
  if (finished_) return;
  std::string head = ResultLineHead(request_.id);
  const std::size_t bytes = head.size() + result->size() + kResultLineTail.size();
  if (bytes > max_reply_ + 1) {
    Finish(OversizeLine(bytes), "ok");
    return;
  }
  Finish(std::move(head), std::move(result), kResultLineTail, "ok");
}

std::string RpcCall::OversizeLine(std::size_t bytes) const {
  LogError(LogEvent("rpc.call"),
           fmt::format("rpc #{} {}: result of {} bytes exceeds the reply limit", serial_,
                       request_.method, bytes));
  return ErrorLine(
      request_.id,
      RpcErr(RpcCode::kInternal, "internal error: the result of " + request_.method + " is " +
                                     std::to_string(bytes) + " bytes, over the reply limit of " +
                                     std::to_string(max_reply_)));
}

void RpcCall::Fail(const Error& error) { Fail(ToRpcError(error)); }

void RpcCall::Fail(RpcError error) {
  if (finished_) return;
  const std::string outcome = "error " + std::to_string(error.code) + ": " + error.message;
  Finish(ErrorLine(request_.id, error), outcome);
}

void RpcCall::Finish(std::string line, std::string_view outcome) {
  Finish(std::move(line), nullptr, "", outcome);
}

// The single exit of a call: logs its end, sends the line unless nobody may
// or can receive it, and drops its close hooks.
void RpcCall::Finish(std::string head, std::shared_ptr<const std::string> body,
                     std::string_view tail, std::string_view outcome) {
  finished_ = true;
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started_);
  auto channel = channel_.lock();
  const bool deliver = channel && channel->open() && !request_.notification;
  LogDebug(LogEvent("rpc.call"),
           fmt::format("rpc #{} end {} in {} ms: {}{}", serial_, request_.method, ms.count(),
                       outcome, deliver || request_.notification ? "" : " (dropped: client gone)"));
  if (channel) {
    for (std::uint64_t token : hook_tokens_) channel->RemoveCloseHook(token);
  }
  hook_tokens_.clear();
  if (deliver && body) {
    channel->SendShared(std::move(head), std::move(body), tail);
  } else if (deliver) {
    channel->Send(std::move(head));
  }
  if (channel) channel->CallEnded();
}

void RpcCall::Notify(std::string_view method, const json& params) {
  if (finished_) return;
  auto channel = channel_.lock();
  if (!channel || !channel->open()) return;
  std::string line = NotificationLine(method, params);
  if (line.size() > max_reply_ + 1) {
    LogWarn(LogEvent("rpc.call"),
            fmt::format("rpc #{} {}: dropped a {} notification of {} bytes (over the reply limit)",
                        serial_, request_.method, method, line.size()));
    return;
  }
  channel->Send(std::move(line));
}

void RpcCall::OnClose(std::function<void()> hook) {
  if (finished_) return;
  auto channel = channel_.lock();
  if (!channel) {
    hook();
    return;
  }
  std::uint64_t token = channel->AddCloseHook(std::move(hook));
  if (token != 0) hook_tokens_.push_back(token);
}

const json* RpcCall::FindParam(std::string_view name) const {
  if (!request_.params.is_object()) {
    throw ParamError("params of " + request_.method + " must be an object of named params");
  }
  auto it = request_.params.find(name);
  return it == request_.params.end() ? nullptr : &*it;
}

void RpcCall::Wrong(std::string_view name, const char* expected) {
  throw ParamError("param '" + std::string(name) + "' must be " + expected);
}

}  // namespace picoflow
