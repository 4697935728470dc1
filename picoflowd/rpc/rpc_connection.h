#pragma once
// RpcConnection: one accepted control-socket client. Owns its pipe handle,
// its idle timer, the request lines read and not yet served and the output
// libuv has not written yet; frames lines and, one per turn it is given
// (RpcTurns), hands one to the Dispatcher. Owned by the RpcServer through a
// shared_ptr (calls hold weak ones); loop thread only.

#include <uv.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/result.h"
#include "picoflowd/rpc/rpc_call.h"
#include "picoflowd/rpc/rpc_peer.h"
#include "picoflowd/rpc/rpc_turns.h"
#include "picoflowd/util/uv_handle.h"
#include "protocol/line_buffer.h"

namespace picoflow {

class Dispatcher;

/// Why a connection ended early; counted by the server. kPeerGone: the
/// client closed its end (not just its sending side) before all it sent
/// was served.
enum class CloseReason { kNormal, kSlowReader, kOverlongLine, kIdle, kPeerGone, kError };

class RpcConnection final : public RpcChannel,
                            public RpcTurnTaker,
                            public std::enable_shared_from_this<RpcConnection> {
 public:
  /// Bounds of one connection.
  struct Limits {
    std::size_t max_line = 0;  ///< longest request line
    /// Unwritten output of earlier lines that closes the connection at the next line.
    std::size_t max_pending_output = 0;
    /// Closed after this long with no call open, nothing to write and
    /// nothing received; 0: never.
    std::chrono::milliseconds idle_timeout{0};
    /// Reading stops while this many request lines wait to be served, or
    /// while lines wait and read_ahead_bytes are held; it resumes once half
    /// of that is left. (One read may bring more: it is kept.)
    std::size_t read_ahead_lines = 16;
    std::size_t read_ahead_bytes = 64 * 1024;
  };
  /// Called before each write to the peer; may be empty.
  using BeforeSend = std::function<void()>;
  /// Told once, when the connection has closed (its handle is closing).
  using ClosedCallback = std::function<void(RpcConnection*, CloseReason)>;
  /// Told when the connection, not queued for a turn, has requests waiting:
  /// the server queues it (RpcTurns::Add).
  using TurnWanted = std::function<void(RpcConnection*)>;

  /// Allocates the (uninitialised) pipe handle; `dispatcher` must outlive
  /// the connection's reads (the server closes connections first).
  RpcConnection(Dispatcher& dispatcher, Limits limits, ClosedCallback on_closed,
                TurnWanted want_turn, BeforeSend before_send = {});
  ~RpcConnection() override;
  RpcConnection(const RpcConnection&) = delete;
  RpcConnection& operator=(const RpcConnection&) = delete;

  /// Accepts the pending connection of `server` into this one. Returns an
  /// Error (kIo) if libuv refuses.
  Status Accept(uv_loop_t* loop, uv_stream_t* server);

  /// Identifies the peer (SO_PEERCRED): peer() is valid afterwards. Returns
  /// an Error (kIo) if the kernel does not give the credentials.
  Status Identify(const AccessPolicy& policy);

  /// Starts reading requests, and the idle timer. Returns an Error (kIo) if
  /// reading cannot start.
  Status StartReading();

  /// Closes at once: unwritten output and requests not yet served are
  /// dropped, close hooks run, the server is told. Idempotent.
  void Close(CloseReason reason, std::string_view why);

  /// Serves the next request line, unless the client is gone (then it
  /// closes, kPeerGone: what it sent is dropped, not executed); a client
  /// that only stopped sending is served to the end. Returns true while
  /// more lines wait.
  bool TakeTurn() noexcept override;

  /// Complete request lines received and not served (dropped if it closes).
  std::size_t requests_waiting() const { return input_.lines(); }
  /// Times reading stopped because read_ahead_* requests waited.
  std::uint64_t read_pauses() const { return read_pauses_; }

  // RpcChannel
  const Peer& peer() const override { return peer_; }
  void Send(std::string line) override;
  void SendShared(std::string head, std::shared_ptr<const std::string> body,
                  std::string_view tail) override;
  void CloseAfterFlush() override;
  bool open() const override { return state_ != State::kClosed; }
  void CallBegan() override;
  void CallEnded() override;

 private:
  enum class State { kOpen, kDraining, kClosed };
  struct WriteReq;

  static void OnAlloc(uv_handle_t* handle, std::size_t size, uv_buf_t* buf) noexcept;
  static void OnRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) noexcept;
  static void OnWrite(uv_write_t* req, int status) noexcept;
  void UpdateIdleTimer();
  void CloseIdle();
  void HandleRead(ssize_t nread, const uv_buf_t* buf);
  /// True if a request line waits, or a line already over max_line (Next
  /// reports it).
  bool HasRequest() const;
  /// Asks the server for a turn if a request waits and none is asked yet.
  void WantTurn();
  /// Serves one line; returns whether more wait.
  bool ServeOne();
  /// Stops or resumes reading as the lines waiting say (read_ahead_*).
  void UpdateReading();
  /// True once the client has closed its end entirely (hung up or reset),
  /// as opposed to only its sending side.
  bool PeerGone() const;
  /// Queues head + *body + tail; body may be null.
  void Write(std::string head, std::shared_ptr<const std::string> body, std::string_view tail);
  void HandleWriteDone(int status);

  Dispatcher& dispatcher_;
  Limits limits_;
  ClosedCallback on_closed_;
  TurnWanted want_turn_;
  BeforeSend before_send_;
  UvHandle<uv_pipe_t> pipe_;
  UvHandle<uv_timer_t> idle_timer_;
  LineBuffer input_;
  Peer peer_;
  std::size_t writes_in_flight_ = 0;
  std::size_t calls_open_ = 0;  // begun, not yet answered or dropped
  State state_ = State::kOpen;
  bool reading_ = false;      // uv_read_start in effect
  bool eof_ = false;          // the client stopped sending
  bool turn_wanted_ = false;  // queued in RpcTurns
  std::uint64_t read_pauses_ = 0;
  CloseReason drain_reason_ = CloseReason::kNormal;  // reported when a drain ends
};

}  // namespace picoflow
