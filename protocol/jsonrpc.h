#pragma once
// JSON-RPC 2.0 messages as picoflow speaks them: one compact JSON object per
// line, both ways. Parses requests (server side) and responses/notifications
// (client side), builds every kind of line, and maps picoflow::Error to the
// wire error. No libuv, no I/O.

#include <cstddef>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "common/diagnostic.h"
#include "common/result.h"

namespace picoflow {

using json = nlohmann::json;

/// The protocol version; bumped on any incompatible change to a method.
inline constexpr int kProtocolVersion = 1;

/// The one wording of a version mismatch, used by both sides: `protocol
/// mismatch: the client speaks protocol 2, picoflowd 0.1.0 speaks protocol 1`.
std::string ProtocolMismatchMessage(int client_protocol, int daemon_protocol,
                                    std::string_view daemon_version);

/// The longest request line the daemon accepts, without its '\n'.
inline constexpr std::size_t kMaxLineBytes = 1024 * 1024;

/// The longest line the daemon sends (a response or a notification) and a
/// client must accept, without its '\n': a stored workflow of the largest
/// file (kMaxWorkflowFileBytes) reads back in one workflow.get whose JSON is
/// more than twice its size (docs/rpc.md, "Framing").
inline constexpr std::size_t kMaxReplyBytes = 16 * 1024 * 1024;

/// The deepest nesting of arrays/objects accepted in one message.
inline constexpr int kMaxJsonDepth = 64;

/// Error codes on the wire: the JSON-RPC standard ones, then picoflow's own
/// in -32000..-32099.
enum class RpcCode : int {
  kParseError = -32700,        ///< the line is not JSON
  kInvalidRequest = -32600,    ///< JSON, but not a valid request object
  kMethodNotFound = -32601,    ///< no such method
  kInvalidParams = -32602,     ///< a param is missing, unknown or of the wrong type
  kInternal = -32603,          ///< a bug or an unexpected failure in the daemon
  kNotFound = -32001,          ///< a named workflow/run/file does not exist
  kConflict = -32002,          ///< exists already / busy / wrong state
  kInvalidWorkflow = -32003,   ///< the workflow failed validation; see data.diagnostics
  kUnavailable = -32004,       ///< a capability (executor, daemon slot) is not available
  kForbidden = -32005,         ///< the peer may not call this method
  kProtocolMismatch = -32006,  ///< client and daemon speak different protocol versions
  kIo = -32007,                ///< the OS or the store refused
};

/// One error object: `{"code":..., "message":..., "data":...}`. `data` is
/// omitted from the wire when null.
struct RpcError {
  int code = static_cast<int>(RpcCode::kInternal);
  std::string message;
  json data;  ///< null when absent
};

/// Shorthand: `RpcErr(RpcCode::kNotFound, "no run 42")`.
RpcError RpcErr(RpcCode code, std::string message, json data = nullptr);

/// One request (or notification) from a client.
struct Request {
  json id;                    ///< number, string or null; null for a notification too
  bool notification = false;  ///< true when the request had no "id": never answered
  std::string method;
  json params = json::object();  ///< object or array; {} when absent
};

/// A line that is not a valid request, with the id to answer it under
/// (null unless a valid id could be read from it).
struct RequestFault {
  json id;
  RpcError error;
};

/// Parses one line (without its '\n'). Returns a RequestFault with -32700
/// for anything that is not JSON (invalid UTF-8, deeper than kMaxJsonDepth),
/// or -32600 for a batch (not supported), a non-object, jsonrpc != "2.0", an
/// id that is not a number/string/null, a method that is not a string, or
/// params that are neither an object nor an array.
std::variant<Request, RequestFault> ParseRequest(std::string_view line);

/// A response from the server: a result, or an error.
struct Response {
  json id;
  json result;                    ///< null when `error` is set
  std::optional<RpcError> error;  ///< set for an error response
};

/// A server-to-client notification (streamed output, progress).
struct Notification {
  std::string method;
  json params;
};

/// Either kind of line a server sends.
using ServerMessage = std::variant<Response, Notification>;

/// Parses one line from the server. Returns an Error (kIo) naming the fault
/// if it is not JSON or neither a valid response nor a notification.
Result<ServerMessage> ParseServerMessage(std::string_view line);

/// `{"jsonrpc":"2.0","id":ID,"method":M,"params":P}` + "\n".
std::string RequestLine(const json& id, std::string_view method, const json& params);
/// A request without id: the server never answers it.
std::string ClientNotificationLine(std::string_view method, const json& params);
/// `{"jsonrpc":"2.0","id":ID,"result":R}` + "\n".
std::string ResultLine(const json& id, const json& result);
/// A result line in three parts, for a result serialised once and sent many
/// times (a cached `workflow.get`): ResultLineHead(id) + DumpCompact(result) +
/// kResultLineTail is ResultLine(id, result), byte for byte.
std::string ResultLineHead(const json& id);
inline constexpr std::string_view kResultLineTail = "}\n";
/// `{"jsonrpc":"2.0","id":ID,"error":{...}}` + "\n".
std::string ErrorLine(const json& id, const RpcError& error);
/// `{"jsonrpc":"2.0","method":M,"params":P}` + "\n" (server to client).
std::string NotificationLine(std::string_view method, const json& params);

/// Compact JSON; invalid UTF-8 in strings (task output) is replaced by U+FFFD
/// rather than thrown. Never throws for a json value built in memory.
std::string DumpCompact(const json& value);

/// The one mapping of picoflow errors to the wire: kInvalid -> -32602,
/// kNotFound -> -32001, kConflict -> -32002, kUnavailable -> -32004,
/// kIo -> -32007, kInternal -> -32603. The message is kept as is.
RpcError ToRpcError(const Error& error);

/// The reverse, for clients: -32001 -> kNotFound, -32002 and -32006 ->
/// kConflict, -32004 -> kUnavailable, -32007 -> kIo, -32603 and unknown codes
/// -> kInternal, every other -326xx/-32003/-32005 -> kInvalid.
Error FromRpcError(const RpcError& error);

/// -32003 with `data.diagnostics` = [{file, line, col, message}, ...].
RpcError InvalidWorkflowError(std::string message, const Diagnostics& diagnostics);

/// True if `value` may be a request id: a number, a string or null.
bool IsValidId(const json& value);

}  // namespace picoflow
