#pragma once
// Client: a blocking JSON-RPC 2.0 connection to picoflowd over its Unix
// socket, for picoflowctl, scripts' helpers and tests. Owns one socket fd.
// Not thread-safe; no libuv.

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "protocol/jsonrpc.h"
#include "protocol/line_buffer.h"

namespace picoflow {

/// How access to picoflowd's socket is given (docs/rpc.md, Access): for
/// messages about a refused connection.
inline constexpr char kAccessAdvice[] =
    "picoflowd lets in root and its own user; members of the group given to "
    "`picoflowd --read-group GROUP` may use the read-only commands: ask to be added to that "
    "group, or run as root (sudo)";

class Client {
 public:
  /// No value: wait for ever.
  using Timeout = std::optional<std::chrono::milliseconds>;
  /// Receives notifications that arrive while a call is waiting.
  using NotificationHandler = std::function<void(const Notification&)>;

  /// Lines from the daemon longer than `max_line` are a connection error;
  /// the daemon's replies may be up to kMaxReplyBytes long.
  explicit Client(std::size_t max_line = kMaxReplyBytes);
  ~Client();
  Client(Client&& other) noexcept;
  Client& operator=(Client&& other) noexcept;
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  /// Connects to the daemon's socket, dropping any previous connection.
  /// Returns kUnavailable when the daemon is unreachable (no socket file,
  /// connection refused, backlog still full after `timeout`); kInvalid for a
  /// path too long for a Unix socket, a directory or another file that is
  /// not a socket; kIo for anything else (permission denied: with
  /// kAccessAdvice). Every message names the path.
  Status Connect(const std::string& socket_path,
                 std::chrono::milliseconds timeout = std::chrono::seconds(5));

  /// True between a successful Connect() and Close() or a broken connection.
  bool connected() const { return fd_ >= 0; }

  /// Closes the socket; idempotent.
  void Close();

  /// Calls daemon.version with this client's protocol version and returns
  /// the daemon's {protocol, version}. Returns kConflict naming both versions
  /// on a protocol mismatch (detected by either side), else Call's errors.
  Result<json> Handshake(Timeout timeout = std::chrono::seconds(10));

  /// Sends a request and waits for its response. Notifications arriving in
  /// the meantime are queued for ReadNotification(). Returns the result; an
  /// error response as FromRpcError(...) (the full error, data included, is
  /// in last_rpc_error()), including an error without id that the daemon
  /// sent before closing the connection (-32004 too many connections);
  /// kIo if the connection broke or the daemon sent garbage; kUnavailable
  /// if `timeout` passed.
  Result<json> Call(std::string_view method, const json& params = json::object(),
                    Timeout timeout = std::nullopt);

  /// Like Call, but hands each notification arriving before the response to
  /// `on_notification` (run.logs with follow, run.wait progress).
  Result<json> Call(std::string_view method, const json& params,
                    const NotificationHandler& on_notification, Timeout timeout = std::nullopt);

  /// Sends a request without waiting; returns its id for Await().
  Result<std::int64_t> Send(std::string_view method, const json& params = json::object(),
                            Timeout timeout = std::nullopt);

  /// Waits for the response to request `id` (see Call for the errors).
  /// Notifications go to `on_notification`, or to the queue if it is empty;
  /// responses to other ids are kept for their own Await().
  Result<json> Await(std::int64_t id, const NotificationHandler& on_notification = {},
                     Timeout timeout = std::nullopt);

  /// Sends a notification: a request the daemon executes but never answers.
  Status Notify(std::string_view method, const json& params = json::object(),
                Timeout timeout = std::nullopt);

  /// Returns the next notification from the daemon: queued ones first, then
  /// read from the socket (responses read meanwhile are kept for Await()).
  /// Errors as Call.
  Result<Notification> ReadNotification(Timeout timeout = std::nullopt);

  /// Writes raw bytes (a line, half a line, garbage: for tests and tools).
  /// Returns kIo if the daemon closed the connection (what it sent before
  /// closing can still be read), kUnavailable on timeout.
  Status SendRaw(std::string_view bytes, Timeout timeout = std::nullopt);

  /// Half-closes the connection: the daemon reads the end of the stream
  /// (EOF) after what was sent, and answers can still be read. Returns kIo if
  /// not connected or the OS refuses.
  Status ShutdownSending();

  /// Reads one raw line (without '\n'). Returns kIo at end of stream, on an
  /// over-long line or a socket error; kUnavailable on timeout.
  Result<std::string> ReadLine(Timeout timeout = std::nullopt);

  /// The error object of the last Call/Await that got an error response;
  /// empty after a success or a transport failure.
  const std::optional<RpcError>& last_rpc_error() const { return last_rpc_error_; }

  /// The path given to the last Connect().
  const std::string& socket_path() const { return path_; }

  /// Makes every wait of this client also watch `fd` (-1: none, the
  /// default), which the caller does not give up: once it is readable, the
  /// call or read in progress returns kIo and interrupted() becomes true (a
  /// self-pipe written by a signal handler lets Ctrl-C end a blocking call
  /// without a race). The connection stays open.
  void SetInterruptFd(int fd) { interrupt_fd_ = fd; }
  /// True once a wait ended because the interrupt fd was readable.
  bool interrupted() const { return interrupted_; }

 private:
  using Clock = std::chrono::steady_clock;
  using Deadline = std::optional<Clock::time_point>;

  static Deadline DeadlineFrom(Timeout timeout);
  Status WaitFor(short events, Deadline deadline);
  Status WriteAll(std::string_view bytes, Deadline deadline);
  Result<std::string> ReadLineUntil(Deadline deadline);
  Status Fill(Deadline deadline);
  Result<Response> NextResponse(std::int64_t id, const NotificationHandler& on_notification,
                                Deadline deadline);
  Result<json> Finish(Response response);
  Error Broken(std::string what);

  int fd_ = -1;
  std::string path_;
  LineBuffer inbox_;
  std::size_t max_line_;
  std::int64_t next_id_ = 1;
  std::deque<Notification> notifications_;
  std::map<std::int64_t, Response> early_responses_;
  std::optional<RpcError> last_rpc_error_;
  int interrupt_fd_ = -1;
  bool interrupted_ = false;
};

}  // namespace picoflow
