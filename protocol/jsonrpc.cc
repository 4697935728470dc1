#include "protocol/jsonrpc.h"

#include <utility>

#include "common/text_escape.h"

namespace picoflow {
namespace {

// nlohmann's parser is iterative but dump() and the destructor of very deep
// values recurse; a 1 MiB line of '[' must not reach them. One pass, outside
// strings, counting open brackets.
bool DeeperThan(std::string_view text, int limit) {
  int depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (char c : text) {
    if (in_string) {
      in_string = escaped || c != '"';
      escaped = !escaped && c == '\\';
    } else if (c == '"') {
      in_string = true;
    } else if ((c == '[' || c == '{') && ++depth > limit) {
      return true;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return false;
}

// Parses JSON text; returns a message naming the fault, or nullopt.
std::optional<std::string> ParseJson(std::string_view text, json& out) {
  // nlohmann's lexer takes a NUL for the end of its input: the rest of the
  // line would be ignored. JSON has no raw NUL (one in a string is \u0000).
  if (const auto nul = text.find('\0'); nul != std::string_view::npos) {
    return "a NUL byte at offset " + std::to_string(nul) + " (JSON has none outside \\u0000)";
  }
  if (DeeperThan(text, kMaxJsonDepth)) {
    return "nested deeper than " + std::to_string(kMaxJsonDepth) + " levels";
  }
  try {
    out = json::parse(text);
  } catch (const json::exception& e) {
    return std::string(e.what());
  }
  return std::nullopt;
}

RequestFault Fault(json id, RpcCode code, std::string message) {
  return RequestFault{std::move(id), RpcErr(code, std::move(message))};
}

// The structural checks of a single request object, in the order a reader
// would fix them.
std::variant<Request, RequestFault> CheckRequestObject(json& msg) {
  json id = nullptr;
  auto id_it = msg.find("id");
  const bool has_id = id_it != msg.end();
  if (has_id && !IsValidId(*id_it)) {
    return Fault(nullptr, RpcCode::kInvalidRequest, "id must be a number, a string or null");
  }
  if (has_id) id = *id_it;
  auto version = msg.find("jsonrpc");
  if (version == msg.end() || *version != "2.0") {
    return Fault(id, RpcCode::kInvalidRequest, "jsonrpc must be \"2.0\"");
  }
  auto method = msg.find("method");
  if (method == msg.end() || !method->is_string()) {
    return Fault(id, RpcCode::kInvalidRequest, "method must be a string");
  }
  Request req;
  req.id = id;
  req.notification = !has_id;
  req.method = method->get<std::string>();
  auto params = msg.find("params");
  if (params != msg.end()) {
    if (!params->is_object() && !params->is_array()) {
      return Fault(id, RpcCode::kInvalidRequest, "params must be an object or an array");
    }
    req.params = std::move(*params);
  }
  return req;
}

std::string Line(const json& value) { return DumpCompact(value) + "\n"; }

// The message is one line for humans (docs/rpc.md, Errors), whatever value
// it names.
json ErrorObject(const RpcError& error) {
  json obj = {{"code", error.code}, {"message", EscapeControls(error.message)}};
  if (!error.data.is_null()) obj["data"] = error.data;
  return obj;
}

Result<RpcError> ParseErrorObject(const json& obj) {
  if (!obj.is_object() || !obj.contains("code") || !obj["code"].is_number_integer() ||
      !obj.contains("message") || !obj["message"].is_string()) {
    return Err(ErrorCode::kIo, "malformed error object from picoflowd: " + DumpCompact(obj));
  }
  RpcError error;
  error.code = obj["code"].get<int>();
  error.message = obj["message"].get<std::string>();
  if (auto d = obj.find("data"); d != obj.end()) error.data = *d;
  return error;
}

Result<ServerMessage> CheckServerObject(const json& msg) {
  if (!msg.is_object() || msg.value("jsonrpc", json()) != "2.0") {
    return Err(ErrorCode::kIo, "not a JSON-RPC 2.0 message from picoflowd");
  }
  if (auto m = msg.find("method"); m != msg.end() && m->is_string()) {
    return ServerMessage(Notification{m->get<std::string>(), msg.value("params", json::object())});
  }
  auto id = msg.find("id");
  if (id == msg.end() || !IsValidId(*id)) {
    return Err(ErrorCode::kIo, "response from picoflowd without a valid id");
  }
  Response resp;
  resp.id = *id;
  if (auto e = msg.find("error"); e != msg.end()) {
    auto error = ParseErrorObject(*e);
    if (!error) return error.error();
    resp.error = std::move(*error);
  } else if (auto r = msg.find("result"); r != msg.end()) {
    resp.result = *r;
  } else {
    return Err(ErrorCode::kIo, "response from picoflowd has neither result nor error");
  }
  return ServerMessage(std::move(resp));
}

}  // namespace

std::string ProtocolMismatchMessage(int client_protocol, int daemon_protocol,
                                    std::string_view daemon_version) {
  return "protocol mismatch: the client speaks protocol " + std::to_string(client_protocol) +
         ", picoflowd " + std::string(daemon_version) + " speaks protocol " +
         std::to_string(daemon_protocol);
}

RpcError RpcErr(RpcCode code, std::string message, json data) {
  return RpcError{static_cast<int>(code), std::move(message), std::move(data)};
}

bool IsValidId(const json& value) {
  return value.is_number() || value.is_string() || value.is_null();
}

std::variant<Request, RequestFault> ParseRequest(std::string_view line) {
  json msg;
  if (auto fault = ParseJson(line, msg)) {
    return Fault(nullptr, RpcCode::kParseError, "parse error: " + *fault);
  }
  if (msg.is_array()) {
    return Fault(nullptr, RpcCode::kInvalidRequest, "batch requests are not supported");
  }
  if (!msg.is_object()) {
    return Fault(nullptr, RpcCode::kInvalidRequest, "a request must be a JSON object");
  }
  return CheckRequestObject(msg);
}

Result<ServerMessage> ParseServerMessage(std::string_view line) {
  json msg;
  if (auto fault = ParseJson(line, msg)) {
    return Err(ErrorCode::kIo, "malformed JSON from picoflowd: " + *fault);
  }
  return CheckServerObject(msg);
}

std::string DumpCompact(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string RequestLine(const json& id, std::string_view method, const json& params) {
  return Line({{"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", params}});
}

std::string ClientNotificationLine(std::string_view method, const json& params) {
  return Line({{"jsonrpc", "2.0"}, {"method", method}, {"params", params}});
}

std::string ResultLine(const json& id, const json& result) {
  return Line({{"jsonrpc", "2.0"}, {"id", id}, {"result", result}});
}

std::string ErrorLine(const json& id, const RpcError& error) {
  return Line({{"jsonrpc", "2.0"}, {"id", id}, {"error", ErrorObject(error)}});
}

std::string NotificationLine(std::string_view method, const json& params) {
  return ClientNotificationLine(method, params);
}

RpcError ToRpcError(const Error& error) {
  switch (error.code) {
    case ErrorCode::kInvalid: return RpcErr(RpcCode::kInvalidParams, error.message);
    case ErrorCode::kNotFound: return RpcErr(RpcCode::kNotFound, error.message);
    case ErrorCode::kConflict: return RpcErr(RpcCode::kConflict, error.message);
    case ErrorCode::kIo:
    case ErrorCode::kDiskFull: return RpcErr(RpcCode::kIo, error.message);
    case ErrorCode::kUnavailable: return RpcErr(RpcCode::kUnavailable, error.message);
    case ErrorCode::kInternal: break;
  }
  return RpcErr(RpcCode::kInternal, error.message);
}

Error FromRpcError(const RpcError& error) {
  switch (static_cast<RpcCode>(error.code)) {
    case RpcCode::kNotFound: return Err(ErrorCode::kNotFound, error.message);
    case RpcCode::kConflict:
    case RpcCode::kProtocolMismatch: return Err(ErrorCode::kConflict, error.message);
    case RpcCode::kUnavailable: return Err(ErrorCode::kUnavailable, error.message);
    case RpcCode::kIo: return Err(ErrorCode::kIo, error.message);
    case RpcCode::kParseError:
    case RpcCode::kInvalidRequest:
    case RpcCode::kMethodNotFound:
    case RpcCode::kInvalidParams:
    case RpcCode::kInvalidWorkflow:
    case RpcCode::kForbidden: return Err(ErrorCode::kInvalid, error.message);
    case RpcCode::kInternal: break;
  }
  return Err(ErrorCode::kInternal, error.message);
}

RpcError InvalidWorkflowError(std::string message, const Diagnostics& diagnostics) {
  json list = json::array();
  for (const Diagnostic& d : diagnostics) {
    list.push_back({{"file", EscapeControls(d.file)},
                    {"line", d.pos.line},
                    {"col", d.pos.col},
                    {"message", EscapeControls(d.message)}});
  }
  return RpcErr(RpcCode::kInvalidWorkflow, std::move(message), {{"diagnostics", list}});
}

}  // namespace picoflow
