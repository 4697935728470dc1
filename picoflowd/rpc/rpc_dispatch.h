#pragma once
// Dispatcher: the method table of the control socket. Turns one request
// line into one handler call and its answer. It is the only place that
// checks authorisation, checks params against the table, logs the begin of
// each call (RpcCall logs its end) and catches what handlers throw.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "picoflowd/rpc/rpc_call.h"
#include "picoflowd/rpc/rpc_peer.h"
#include "protocol/jsonrpc.h"

namespace picoflow {

/// The JSON type a param must have.
enum class ParamType { kAny, kString, kInteger, kNumber, kBool, kObject, kArray };

/// One named param of a method.
struct ParamSpec {
  std::string name{};
  ParamType type = ParamType::kAny;
  bool required = false;
};

/// Serves one call: answers through call.Reply/Fail now, or Hold()s it and
/// answers later. May throw: ParamError -> -32602, anything else -> -32603.
using RpcHandler = std::function<void(RpcCall& call)>;

/// One row of the table. The field order is stable (positional
/// initialisation is fine).
struct MethodSpec {
  std::string name{};               ///< `noun.verb`, from protocol/methods.h
  Access access = Access::kWrite;   ///< the least access a peer needs
  std::vector<ParamSpec> params{};  ///< named params; others are refused
  bool open_params = false;         ///< true: params are not checked at all
  RpcHandler handler{};
};

class Dispatcher {
 public:
  /// Answers longer than `max_reply` are replaced by -32603. The table
  /// starts with the built-in `daemon.version` (read access; optional param
  /// `protocol`: a differing version gets -32006 naming both; result
  /// {protocol, version}); registering that name again replaces it.
  explicit Dispatcher(std::size_t max_reply = kMaxReplyBytes);

  /// Adds a method. Registering any other name twice is a bug (asserted).
  void Register(MethodSpec spec);

  /// True if `method` is in the table.
  bool Has(std::string_view method) const;
  /// The row of `method`, or nullptr.
  const MethodSpec* Find(std::string_view method) const;

  /// Handles one request line from `channel`: parse (-32700/-32600), peer
  /// with no access (-32005, then the channel closes after the answer),
  /// unknown method (-32601), too little access (-32005), params against
  /// the table (-32602), then the handler. Notifications (no id) run without
  /// any answer. Never throws.
  void HandleLine(const std::shared_ptr<RpcChannel>& channel, std::string_view line) noexcept;

 private:
  void Handle(const std::shared_ptr<RpcChannel>& channel, Request request);
  void Run(const MethodSpec& spec, const std::shared_ptr<RpcCall>& call);
  void Answer(const std::shared_ptr<RpcChannel>& channel, const Request& request,
              const RpcError& error);
  void Refuse(const std::shared_ptr<RpcChannel>& channel,
              const std::variant<Request, RequestFault>& parsed);

  std::map<std::string, MethodSpec, std::less<>> methods_;
  std::size_t max_reply_;
  std::uint64_t next_serial_ = 1;
};

/// Checks `params` against `specs`: an object, no unknown names, required
/// ones present, each of its type. Returns the -32602 message, or "" if ok.
std::string CheckParams(const std::vector<ParamSpec>& specs, const json& params);

}  // namespace picoflow
