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
// - a client whose unwritten output passes max_pending_output is closed when
//   the next line for it comes (it is not reading; its memory is freed); one
//   line alone may be longer (a reply of up to kMaxReplyBytes);
// - request lines are served in turns (RpcTurns): the connections with
//   requests waiting, round-robin, one request each per turn, for at most
//   turn_budget per loop iteration, then the loop runs; a connection whose
//   request took more than turn_share sits out turns for the rest; a
//   connection stops being read while read_ahead_lines (or _bytes) wait;
// - EOF from a client (it stopped sending): its last request without a '\n'
//   is handled too, all it sent is served, answers are flushed, then it
//   closes; calls still pending are dropped and their close hooks run;
// - a client that closed its end entirely: what it sent and was not served
//   yet is dropped, never executed (counted in requests_dropped);
// - a connection with no call open and nothing to write that sends nothing
//   for idle_timeout is closed (its timer exists only while it does);
// - a new connection past its uid's max_connections_per_uid, or from a uid
//   other than root and the daemon's once the connections of such uids reach
//   max_connections, gets -32004 (id null) and closes: root and the daemon's
//   own uid always get a slot, whatever other users hold.

#include <sys/types.h>
#include <uv.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "common/result.h"
#include "picoflowd/rpc/rpc_connection.h"
#include "picoflowd/rpc/rpc_peer.h"
#include "picoflowd/rpc/rpc_turns.h"
#include "picoflowd/util/uv_handle.h"
#include "protocol/jsonrpc.h"

namespace picoflow {

class Dispatcher;

/// Where and how the control socket listens.
struct RpcServerOptions {
  std::string socket_path;               ///< for Listen(); unused by Adopt()
  std::optional<gid_t> group;            ///< read-only group (0750 dir, 0660 socket)
  std::size_t max_line = kMaxLineBytes;  ///< longest request line
  /// Connections of uids other than root and the daemon's, together; more
  /// of them are answered -32004 and closed.
  std::size_t max_connections = 256;
  std::size_t max_connections_per_uid = 64;  ///< of any one uid, root and the daemon's too
  /// A connection with no call open that sends nothing this long is closed.
  std::chrono::milliseconds idle_timeout = std::chrono::seconds(60);
  std::size_t max_pending_output = 8 * 1024 * 1024;  ///< per connection, then it is closed
  /// Request lines read from one connection and not yet served: reading
  /// stops at this many, or at read_ahead_bytes, and resumes at half.
  std::size_t read_ahead_lines = 16;
  std::size_t read_ahead_bytes = 64 * 1024;
  /// How long one loop iteration may serve requests before the loop runs
  /// again (a request is never cut: one that takes longer ends the turn).
  std::chrono::nanoseconds turn_budget = std::chrono::milliseconds(2);
  /// A request's share of a turn: a connection whose request took longer
  /// sits out a turn per share beyond, while others wait (RpcTurns).
  std::chrono::nanoseconds turn_share = std::chrono::milliseconds(1);
  int backlog = 128;  ///< listen() backlog
  /// Called before anything is written to a client (a reply or a
  /// notification): the daemon commits its store's open group there, so a
  /// client never sees state that a crash could still take back.
  std::function<void()> before_send;
};

/// Counters for daemon.status and metrics.
struct RpcServerStats {
  std::uint64_t accepted = 0;            ///< connections accepted (refused ones included)
  std::uint64_t refused_busy = 0;        ///< closed: a connection maximum was reached
  std::uint64_t closed_slow_reader = 0;  ///< closed because their output exceeded the bound
  std::uint64_t closed_overlong = 0;     ///< closed after an over-long request line
  std::uint64_t closed_idle = 0;         ///< closed after idle_timeout with nothing pending
  /// Request lines dropped unserved because their connection closed first
  /// (the client hung up, was too slow a reader, sent an over-long line...).
  std::uint64_t requests_dropped = 0;
  /// Times a connection, now closed, stopped being read while its requests
  /// waited (read_ahead_lines, read_ahead_bytes).
  std::uint64_t read_pauses = 0;
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
  /// The turns requests are served in; null unless listening.
  const RpcTurns* turns() const { return turns_.get(); }

 private:
  static void OnConnection(uv_stream_t* server, int status) noexcept;
  void AcceptOne();
  /// Why `peer` may not have one more connection, or "" if it may.
  std::string Refusal(const Peer& peer) const;
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
  std::unique_ptr<RpcTurns> turns_;  // with the listener
  struct Entry {
    std::shared_ptr<RpcConnection> connection;
    bool admitted = false;  // counted in by_uid_ (and others_)
  };
  std::unordered_map<RpcConnection*, Entry> connections_;
  std::unordered_map<uid_t, std::size_t> by_uid_;  // admitted connections per uid
  std::size_t others_ = 0;  // admitted connections of uids without write access
  RpcServerStats stats_;
  std::optional<std::pair<dev_t, ino_t>> bound_file_;  // the socket file we created
};

}  // namespace picoflow
