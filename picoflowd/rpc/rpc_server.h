#pragma once
// RpcServer: the daemon's control socket. Owns the listening pipe handle and
// every accepted connection; each connection's request lines go to the
// Dispatcher. Loop thread only.
//
// Connection policy, one place to read it:
// - peers are identified once (SO_PEERCRED); a peer without access gets
//   -32005 for its first request and the connection is closed (Dispatcher);
// - answers are written in the order they are produced (sync handlers: in
//   request order; an async reply when it comes; clients match ids);
// - a request line over max_line gets -32600 (id null), then the connection
//   closes once that is written: the rest of the line is never read;
// - a client whose unwritten output passes max_pending_output is closed at
//   once (it is not reading; its memory is freed);
// - EOF from a client: answers already produced are flushed, then it closes;
//   calls still pending are dropped and their close hooks run;
// - past max_connections a new connection gets -32004 (id null) and closes.

#include <sys/types.h>
#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "common/result.h"
#include "picoflowd/rpc/rpc_connection.h"
#include "picoflowd/rpc/rpc_peer.h"
#include "picoflowd/util/uv_handle.h"
#include "protocol/jsonrpc.h"

namespace picoflow {

class Dispatcher;

/// Where and how the control socket listens.
struct RpcServerOptions {
  std::string socket_path;                           ///< for Listen(); unused by Adopt()
  std::optional<gid_t> group;                        ///< read-only group (0750 dir, 0660 socket)
  std::size_t max_line = kMaxLineBytes;              ///< longest request line
  std::size_t max_connections = 256;                 ///< more are answered -32004 and closed
  std::size_t max_pending_output = 8 * 1024 * 1024;  ///< per connection, then it is closed
  int backlog = 128;                                 ///< listen() backlog
  /// Called before anything is written to a client (a reply or a
  /// notification): the daemon commits its store's open group there, so a
  /// client never sees state that a crash could still take back.
  std::function<void()> before_send;
};

/// Counters for daemon.status and metrics.
struct RpcServerStats {
  std::uint64_t accepted = 0;            ///< connections accepted (refused ones included)
  std::uint64_t refused_busy = 0;        ///< closed because max_connections was reached
  std::uint64_t closed_slow_reader = 0;  ///< closed because their output exceeded the bound
  std::uint64_t closed_overlong = 0;     ///< closed after an over-long request line
};

class RpcServer {
 public:
  /// Nothing happens until Listen() or Adopt(). `loop` and `dispatcher`
  /// must outlive the server.
  RpcServer(uv_loop_t* loop, RpcServerOptions options, Dispatcher& dispatcher);
  /// Close()s.
  ~RpcServer();
  RpcServer(const RpcServer&) = delete;
  RpcServer& operator=(const RpcServer&) = delete;

  /// Binds and listens on options.socket_path: checks the path length,
  /// prepares the directory (created 0700/0750; refused if not ours or
  /// writable by others), replaces a stale socket file, refuses a live one
  /// ("another picoflowd is already listening on PATH"), sets the socket to
  /// 0600/0660. Sets SIGPIPE to ignored if it is at its default (libuv
  /// writes with write(2)). Returns a one-line Error naming the path and the
  /// fix.
  Status Listen();

  /// Listens on an inherited listening Unix stream socket (socket
  /// activation). The server owns `fd` from then on, but never unlinks its
  /// path. Ignores SIGPIPE as Listen() does. Returns kInvalid if `fd` is
  /// not a listening Unix stream socket.
  Status Adopt(int fd);

  /// Stops accepting, closes every connection (their pending calls' close
  /// hooks run) and removes the socket file it created. Handles are freed
  /// in their close callbacks: run the loop afterwards. Idempotent.
  void Close();

  /// True between a successful Listen()/Adopt() and Close().
  bool listening() const { return listener_ != nullptr; }
  /// Open connections.
  std::size_t connection_count() const { return connections_.size(); }
  const RpcServerStats& stats() const { return stats_; }

 private:
  static void OnConnection(uv_stream_t* server, int status) noexcept;
  void AcceptOne();
  /// Ignores SIGPIPE and makes the listener's pipe handle (not yet bound).
  Status MakeListener();
  Status StartListening(uv_pipe_t* pipe);
  void Forget(RpcConnection* connection, CloseReason reason);
  void RemoveSocketFile();

  uv_loop_t* loop_;
  RpcServerOptions options_;
  Dispatcher& dispatcher_;
  AccessPolicy policy_;
  std::unique_ptr<UvHandle<uv_pipe_t>> listener_;
  std::unordered_map<RpcConnection*, std::shared_ptr<RpcConnection>> connections_;
  RpcServerStats stats_;
  std::optional<std::pair<dev_t, ino_t>> bound_file_;  // the socket file we created
};

}  // namespace picoflow
