#pragma once
// RpcCall: one request in flight, from dispatch until its single reply, and
// RpcChannel: what a call needs of the connection it came on. A call holds
// only a weak reference to its channel: replies to a client that left are
// dropped, never a crash.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "common/result.h"
#include "picoflowd/rpc/rpc_peer.h"
#include "protocol/jsonrpc.h"

namespace picoflow {

/// The connection side of a call: a line sink with close notification. The
/// control-socket connection implements it; tests use a fake.
class RpcChannel {
 public:
  virtual ~RpcChannel() = default;

  /// Who is at the other end and what they may do.
  virtual const Peer& peer() const = 0;
  /// Queues one complete line ('\n' included) for writing, in call order.
  /// Ignored once the channel is closed.
  virtual void Send(std::string line) = 0;
  /// Queues the line `head` + `*body` + `tail` as Send would; `body` is
  /// shared, not copied (a cached result sent to many clients). This default
  /// copies it into one line; the connection writes the three parts.
  virtual void SendShared(std::string head, std::shared_ptr<const std::string> body,
                          std::string_view tail) {
    head += *body;
    head += tail;
    Send(std::move(head));
  }
  /// Stops reading; closes once everything queued has been written.
  virtual void CloseAfterFlush() = 0;
  /// True until the channel has closed.
  virtual bool open() const = 0;

  /// Runs `hook` once when the channel closes (loop thread). Returns a token
  /// for RemoveCloseHook. On a closed channel the hook runs at once and the
  /// token is 0.
  std::uint64_t AddCloseHook(std::function<void()> hook);
  /// Forgets a hook; unknown or used tokens are ignored.
  void RemoveCloseHook(std::uint64_t token);

  /// A call on this channel began (made by the dispatcher), and, once each,
  /// it was answered or dropped: while a call is open (a run.wait, a follow)
  /// the connection is not idle. No-ops unless the channel cares.
  virtual void CallBegan() {}
  virtual void CallEnded() {}

 protected:
  /// Runs and forgets every hook; the implementation calls this when it
  /// closes. A throwing hook is logged and the others still run.
  void RunCloseHooks() noexcept;

 private:
  std::map<std::uint64_t, std::function<void()>> hooks_;
  std::uint64_t next_token_ = 1;
};

/// Thrown by RpcCall::Param on a missing or ill-typed param; the dispatcher
/// turns it into -32602 with this message.
class ParamError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// One request being served. Handlers get it by reference; an asynchronous
/// handler keeps it with Hold() and answers later. Exactly one of Reply/Fail
/// takes effect; later ones are ignored. Loop thread only.
class RpcCall : public std::enable_shared_from_this<RpcCall> {
 public:
  /// Made by the dispatcher. Replies longer than `max_reply` are replaced by
  /// an internal error. `serial` tags the call's log lines.
  RpcCall(std::weak_ptr<RpcChannel> channel, Request request, Peer peer, std::size_t max_reply,
          std::uint64_t serial);
  /// A request dropped without an answer gets -32603 so the client never hangs.
  ~RpcCall();
  RpcCall(const RpcCall&) = delete;
  RpcCall& operator=(const RpcCall&) = delete;

  const std::string& method() const { return request_.method; }
  /// The request id (null for a notification).
  const json& id() const { return request_.id; }
  /// Object or array; {} when the request had none.
  const json& params() const { return request_.params; }
  /// True for a request without id: replies are not sent.
  bool is_notification() const { return request_.notification; }
  const Peer& peer() const { return peer_; }

  /// The longest line a reply or notification may take ('\n' excluded).
  std::size_t max_reply() const { return max_reply_; }

  /// Keeps the call alive past the handler's return, for a later reply.
  std::shared_ptr<RpcCall> Hold() { return shared_from_this(); }

  /// Answers with `result`. No-op if already answered or the client left.
  void Reply(json result);
  /// Answers with a result already serialised (DumpCompact), shared with
  /// other replies rather than copied: the same line as Reply(the parsed
  /// result), and the same -32603 if it is over the reply limit.
  void ReplySerialized(std::shared_ptr<const std::string> result);
  /// Answers with ToRpcError(error).
  void Fail(const Error& error);
  /// Answers with a ready-made error (e.g. InvalidWorkflowError).
  void Fail(RpcError error);
  /// Sends a notification to the caller, any number of times before the
  /// reply. Dropped after the reply, once the client left, or if it is
  /// longer than the line limit (logged).
  void Notify(std::string_view method, const json& params);

  /// Runs `hook` if the connection closes before this call is answered (at
  /// once if it is already gone); forgotten once the call is answered. For
  /// handlers that subscribed to something and must unsubscribe.
  void OnClose(std::function<void()> hook);

  /// True once Reply/Fail took effect (or was dropped).
  bool finished() const { return finished_; }
  /// True while the connection is open.
  bool connected() const;

  /// The named param converted to T (bool, std::string, an integer type,
  /// double, json). Throws ParamError naming the param if params are not an
  /// object, the param is missing, or has another type or range.
  template <class T>
  T Param(std::string_view name) const;
  /// The same, but `fallback` when the param is absent or null.
  template <class T>
  T Param(std::string_view name, T fallback) const;

 private:
  const json* FindParam(std::string_view name) const;
  template <class T>
  static T Convert(std::string_view name, const json& value);
  [[noreturn]] static void Wrong(std::string_view name, const char* expected);
  /// The -32603 line of a result line of `bytes` bytes, over the limit.
  std::string OversizeLine(std::size_t bytes) const;
  void Finish(std::string line, std::string_view outcome);
  /// Finish with the line head + *body + tail; body may be null (head is the line).
  void Finish(std::string head, std::shared_ptr<const std::string> body, std::string_view tail,
              std::string_view outcome);

  std::weak_ptr<RpcChannel> channel_;
  Request request_;
  Peer peer_;
  std::size_t max_reply_;
  std::uint64_t serial_;
  std::chrono::steady_clock::time_point started_;
  std::vector<std::uint64_t> hook_tokens_;
  bool finished_ = false;
};

template <class T>
T RpcCall::Convert(std::string_view name, const json& v) {
  if constexpr (std::is_same_v<T, json>) {
    return v;
  } else if constexpr (std::is_same_v<T, bool>) {
    if (!v.is_boolean()) Wrong(name, "a boolean");
    return v.get<bool>();
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (!v.is_string()) Wrong(name, "a string");
    return v.get<std::string>();
  } else if constexpr (std::is_integral_v<T>) {
    if (!v.is_number_integer()) Wrong(name, "an integer");
    const bool fits = v.is_number_unsigned() ? std::in_range<T>(v.get<std::uint64_t>())
                                             : std::in_range<T>(v.get<std::int64_t>());
    if (!fits) Wrong(name, "an integer in range");
    return v.get<T>();
  } else if constexpr (std::is_floating_point_v<T>) {
    if (!v.is_number()) Wrong(name, "a number");
    return v.get<T>();
  } else {
    try {
      return v.get<T>();
    } catch (const json::exception&) {
      Wrong(name, "of another shape");
    }
  }
}

template <class T>
T RpcCall::Param(std::string_view name) const {
  const json* v = FindParam(name);
  if (v == nullptr) throw ParamError("missing param '" + std::string(name) + "'");
  return Convert<T>(name, *v);
}

template <class T>
T RpcCall::Param(std::string_view name, T fallback) const {
  const json* v = FindParam(name);
  if (v == nullptr || v->is_null()) return fallback;
  return Convert<T>(name, *v);
}

}  // namespace picoflow
