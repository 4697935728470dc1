#pragma once
// RpcConnection: one accepted control-socket client. Owns its pipe handle,
// its idle timer, the partial input line and the output libuv has not
// written yet; frames lines and hands each to the Dispatcher. Owned by the
// RpcServer through a shared_ptr (calls hold weak ones); loop thread only.

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
#include "picoflowd/util/uv_handle.h"
#include "protocol/line_buffer.h"

namespace picoflow {

class Dispatcher;

/// Why a connection ended early; counted by the server.
enum class CloseReason { kNormal, kSlowReader, kOverlongLine, kIdle, kError };

class RpcConnection final : public RpcChannel, public std::enable_shared_from_this<RpcConnection> {
 public:
  /// Bounds of one connection.
  struct Limits {
    std::size_t max_line = 0;  ///< longest request line
    /// Unwritten output of earlier lines that closes the connection at the next line.
    std::size_t max_pending_output = 0;
    /// Closed after this long with no call open, nothing to write and
    /// nothing received; 0: never.
    std::chrono::milliseconds idle_timeout{0};
  };
  /// Called before each write to the peer; may be empty.
  using BeforeSend = std::function<void()>;
  /// Told once, when the connection has closed (its handle is closing).
  using ClosedCallback = std::function<void(RpcConnection*, CloseReason)>;

  /// Allocates the (uninitialised) pipe handle; `dispatcher` must outlive
  /// the connection's reads (the server closes connections first).
  RpcConnection(Dispatcher& dispatcher, Limits limits, ClosedCallback on_closed,
                BeforeSend before_send = {});
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

  /// Closes at once: unwritten output is dropped, close hooks run, the
  /// server is told. Idempotent.
  void Close(CloseReason reason, std::string_view why);

  // RpcChannel
  const Peer& peer() const override { return peer_; }
  void Send(std::string line) override;
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
  void HandleLines();
  void HandleWriteDone(int status);

  Dispatcher& dispatcher_;
  Limits limits_;
  ClosedCallback on_closed_;
  BeforeSend before_send_;
  UvHandle<uv_pipe_t> pipe_;
  UvHandle<uv_timer_t> idle_timer_;
  LineBuffer input_;
  Peer peer_;
  std::size_t writes_in_flight_ = 0;
  std::size_t calls_open_ = 0;  // begun, not yet answered or dropped
  State state_ = State::kOpen;
  CloseReason drain_reason_ = CloseReason::kNormal;  // reported when a drain ends
};

}  // namespace picoflow
