#include "picoflowd/rpc/rpc_dispatch.h"

#include <fmt/format.h>

#include <cassert>
#include <utility>

#include "picoflowd/util/callback_guard.h"
#include "picoflowd/util/logging.h"
#include "protocol/methods.h"

#ifndef PICOFLOW_VERSION
#define PICOFLOW_VERSION "unknown"
#endif

namespace picoflow {
namespace {

bool TypeMatches(ParamType type, const json& v) {
  switch (type) {
    case ParamType::kAny: return true;
    case ParamType::kString: return v.is_string();
    case ParamType::kInteger: return v.is_number_integer();
    case ParamType::kNumber: return v.is_number();
    case ParamType::kBool: return v.is_boolean();
    case ParamType::kObject: return v.is_object();
    case ParamType::kArray: return v.is_array();
  }
  return false;
}

const char* TypeName(ParamType type) {
  switch (type) {
    case ParamType::kAny: return "any value";
    case ParamType::kString: return "a string";
    case ParamType::kInteger: return "an integer";
    case ParamType::kNumber: return "a number";
    case ParamType::kBool: return "a boolean";
    case ParamType::kObject: return "an object";
    case ParamType::kArray: return "an array";
  }
  return "?";
}

const ParamSpec* FindSpec(const std::vector<ParamSpec>& specs, const std::string& name) {
  for (const ParamSpec& s : specs) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

// daemon.version: the protocol and program versions; refuses a client that
// announces another protocol, naming both.
void DaemonVersion(RpcCall& call) {
  const int theirs = call.Param<int>("protocol", kProtocolVersion);
  if (theirs != kProtocolVersion) {
    call.Fail(RpcErr(RpcCode::kProtocolMismatch,
                     ProtocolMismatchMessage(theirs, kProtocolVersion, PICOFLOW_VERSION)));
    return;
  }
  call.Reply({{"protocol", kProtocolVersion}, {"version", PICOFLOW_VERSION}});
}

}  // namespace

std::string CheckParams(const std::vector<ParamSpec>& specs, const json& params) {
  if (!params.is_object()) return "params must be an object of named params";
  for (const auto& [name, value] : params.items()) {
    const ParamSpec* spec = FindSpec(specs, name);
    if (spec == nullptr) return "unknown param '" + name + "'";
    if (!TypeMatches(spec->type, value)) {
      return "param '" + name + "' must be " + TypeName(spec->type);
    }
  }
  for (const ParamSpec& spec : specs) {
    if (spec.required && !params.contains(spec.name)) {
      return "missing param '" + spec.name + "'";
    }
  }
  return "";
}

Dispatcher::Dispatcher(std::size_t max_reply) : max_reply_(max_reply) {
  Register(
      {.name = method::kDaemonVersion,
       .access = Access::kRead,
       .params = {{"protocol", ParamType::kInteger, false}, {"client", ParamType::kString, false}},
       .handler = DaemonVersion});
}

void Dispatcher::Register(MethodSpec spec) {
  assert(spec.handler);
  assert(!Has(spec.name) || spec.name == method::kDaemonVersion);
  std::string name = spec.name;
  methods_.insert_or_assign(std::move(name), std::move(spec));
}

bool Dispatcher::Has(std::string_view method) const {
  return methods_.find(method) != methods_.end();
}

const MethodSpec* Dispatcher::Find(std::string_view method) const {
  const auto it = methods_.find(method);
  return it == methods_.end() ? nullptr : &it->second;
}

void Dispatcher::HandleLine(const std::shared_ptr<RpcChannel>& channel,
                            std::string_view line) noexcept {
  GuardCallback("rpc: handling a request line", [&] {
    auto parsed = ParseRequest(line);
    if (channel->peer().access == Access::kNone) {
      Refuse(channel, parsed);
    } else if (auto* fault = std::get_if<RequestFault>(&parsed)) {
      LogDebug(LogEvent("rpc.dispatch"),
               fmt::format("rpc: refused a line from {}: {}", channel->peer().ToString(),
                           fault->error.message));
      channel->Send(ErrorLine(fault->id, fault->error));
    } else {
      Handle(channel, std::move(std::get<Request>(parsed)));
    }
  });
}

// A peer without access gets one answer, whatever it sent, and is closed.
void Dispatcher::Refuse(const std::shared_ptr<RpcChannel>& channel,
                        const std::variant<Request, RequestFault>& parsed) {
  const Peer& peer = channel->peer();
  LogWarn(LogEvent("rpc.dispatch"),
          fmt::format("rpc: refused {}: not root, the daemon's user or in its read group",
                      peer.ToString()));
  const auto* request = std::get_if<Request>(&parsed);
  if (request == nullptr || !request->notification) {
    const json& id = request ? request->id : std::get<RequestFault>(parsed).id;
    channel->Send(ErrorLine(
        id, RpcErr(RpcCode::kForbidden, "permission denied: " + peer.ToString() +
                                            " may not use picoflowd (only root, the daemon's "
                                            "user and its read group may)")));
  }
  channel->CloseAfterFlush();
}

// Answers a request that never reached a handler (nothing for notifications).
void Dispatcher::Answer(const std::shared_ptr<RpcChannel>& channel, const Request& request,
                        const RpcError& error) {
  LogDebug(LogEvent("rpc.dispatch"), fmt::format("rpc: {} from {} refused: {}", request.method,
                                                 channel->peer().ToString(), error.message));
  if (!request.notification) channel->Send(ErrorLine(request.id, error));
}

void Dispatcher::Handle(const std::shared_ptr<RpcChannel>& channel, Request request) {
  const Peer& peer = channel->peer();
  auto it = methods_.find(request.method);
  if (it == methods_.end()) {
    Answer(channel, request,
           RpcErr(RpcCode::kMethodNotFound, "unknown method '" + request.method + "'"));
    return;
  }
  const MethodSpec& spec = it->second;
  if (peer.access < spec.access) {
    Answer(channel, request,
           RpcErr(RpcCode::kForbidden, "permission denied: " + spec.name + " needs " +
                                           AccessName(spec.access) + " access; " + peer.ToString() +
                                           " has " + AccessName(peer.access)));
    return;
  }
  if (!spec.open_params) {
    if (std::string bad = CheckParams(spec.params, request.params); !bad.empty()) {
      Answer(channel, request, RpcErr(RpcCode::kInvalidParams, spec.name + ": " + bad));
      return;
    }
  }
  const std::uint64_t serial = next_serial_++;
  LogDebug(LogEvent("rpc.dispatch"),
           fmt::format("rpc #{} begin {} id={} from {}", serial, spec.name, DumpCompact(request.id),
                       peer.ToString()));
  auto call = std::make_shared<RpcCall>(channel, std::move(request), peer, max_reply_, serial);
  Run(spec, call);
}

// The one catch around handlers. A throw after the handler already answered
// is logged; the answer stands.
void Dispatcher::Run(const MethodSpec& spec, const std::shared_ptr<RpcCall>& call) {
  try {
    spec.handler(*call);
  } catch (const ParamError& e) {
    call->Fail(RpcErr(RpcCode::kInvalidParams, spec.name + ": " + e.what()));
  } catch (const std::exception& e) {
    LogError(LogEvent("rpc.dispatch"),
             fmt::format("rpc: handler of {} threw: {}", spec.name, e.what()));
    call->Fail(RpcErr(RpcCode::kInternal, "internal error in " + spec.name + ": " + e.what()));
  } catch (...) {
    LogError(LogEvent("rpc.dispatch"),
             fmt::format("rpc: handler of {} threw a non-exception", spec.name));
    call->Fail(RpcErr(RpcCode::kInternal, "internal error in " + spec.name));
  }
}

}  // namespace picoflow
