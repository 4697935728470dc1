#include "picoflowd/rpc/rpc_connection.h"

#include <fmt/format.h>
#include <poll.h>

#include <array>
#include <utility>

#include "picoflowd/rpc/rpc_dispatch.h"
#include "picoflowd/util/callback_guard.h"
#include "picoflowd/util/logging.h"

namespace picoflow {

// A write request that owns its bytes. libuv calls back even when the handle
// is closed under it (UV_ECANCELED), so the request frees itself there, never
// the connection.
struct RpcConnection::WriteReq {
  uv_write_t req{};
  std::string data;
  std::shared_ptr<const std::string> body;  // a shared part, may be null
  std::string tail;                         // after body
};

RpcConnection::RpcConnection(Dispatcher& dispatcher, Limits limits, ClosedCallback on_closed,
                             TurnWanted want_turn, BeforeSend before_send)
    : dispatcher_(dispatcher),
      limits_(limits),
      on_closed_(std::move(on_closed)),
      want_turn_(std::move(want_turn)),
      before_send_(std::move(before_send)),
      pipe_(this),
      idle_timer_(this),
      input_(limits.max_line) {}

RpcConnection::~RpcConnection() {
  if (state_ == State::kClosed) return;
  state_ = State::kClosed;
  pipe_.Close();
  idle_timer_.Close();
  RunCloseHooks();
}

Status RpcConnection::Accept(uv_loop_t* loop, uv_stream_t* server) {
  if (int rc = uv_pipe_init(loop, pipe_.get(), 0); rc != 0) {
    return Err(ErrorCode::kIo, std::string("uv_pipe_init: ") + uv_strerror(rc));
  }
  pipe_.MarkInitialized();
  if (int rc = uv_accept(server, pipe_.stream()); rc != 0) {
    return Err(ErrorCode::kIo, std::string("accept on the control socket: ") + uv_strerror(rc));
  }
  if (limits_.idle_timeout.count() > 0) {
    uv_timer_init(loop, idle_timer_.get());  // cannot fail
    idle_timer_.MarkInitialized();
  }
  return {};
}

Status RpcConnection::Identify(const AccessPolicy& policy) {
  uv_os_fd_t fd = -1;
  if (int rc = uv_fileno(pipe_.base(), &fd); rc != 0) {
    return Err(ErrorCode::kIo, std::string("uv_fileno: ") + uv_strerror(rc));
  }
  auto peer = IdentifyPeer(fd, policy);
  if (!peer) return peer.error();
  peer_ = *peer;
  LogDebug(LogEvent("rpc.connection"), fmt::format("rpc: connection from {} ({} access)",
                                                   peer_.ToString(), AccessName(peer_.access)));
  return {};
}

Status RpcConnection::StartReading() {
  if (int rc = uv_read_start(pipe_.stream(), OnAlloc, OnRead); rc != 0) {
    return Err(ErrorCode::kIo, std::string("uv_read_start: ") + uv_strerror(rc));
  }
  reading_ = true;
  UpdateIdleTimer();
  return {};
}

void RpcConnection::CallBegan() {
  ++calls_open_;
  UpdateIdleTimer();
}

void RpcConnection::CallEnded() {
  if (calls_open_ > 0) --calls_open_;
  UpdateIdleTimer();
}

// Idle = open, no call open, no request waiting, nothing left to write: the
// count starts again from now (each received byte restarts it too). A held
// run.wait or follow is a call open, so it never counts as idle. The timer
// exists only with its connection: nothing wakes a daemon without clients.
void RpcConnection::UpdateIdleTimer() {
  if (!idle_timer_.initialized()) return;
  if (state_ == State::kOpen && calls_open_ == 0 && writes_in_flight_ == 0 && !HasRequest()) {
    StartOneShot<RpcConnection, &RpcConnection::CloseIdle>(
        idle_timer_, static_cast<std::uint64_t>(limits_.idle_timeout.count()));
  } else {
    uv_timer_stop(idle_timer_.get());
  }
}

void RpcConnection::CloseIdle() {
  auto keep = shared_from_this();  // the server drops it in Close()
  Close(CloseReason::kIdle, fmt::format("idle for {} ms", limits_.idle_timeout.count()));
}

void RpcConnection::OnAlloc(uv_handle_t*, std::size_t, uv_buf_t* buf) noexcept {
  // libuv reads into it and calls OnRead at once, which copies what it keeps:
  // one buffer per loop thread serves every connection.
  thread_local std::array<char, 64 * 1024> buffer;
  *buf = uv_buf_init(buffer.data(), static_cast<unsigned>(buffer.size()));
}

void RpcConnection::OnRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) noexcept {
  auto* self = OwnerOf<RpcConnection>(stream);
  if (self == nullptr) return;
  auto keep = self->shared_from_this();  // the server may drop it meanwhile
  if (!GuardCallback("rpc: reading a request", [&] { self->HandleRead(nread, buf); })) {
    self->Close(CloseReason::kError, "exception while reading");
  }
}

void RpcConnection::HandleRead(ssize_t nread, const uv_buf_t* buf) {
  if (nread > 0) {
    input_.Append(std::string_view(buf->base, static_cast<std::size_t>(nread)));
    UpdateIdleTimer();
    UpdateReading();
    WantTurn();
  } else if (nread == UV_EOF) {
    // libuv has stopped reading. The end of the stream ends a last line sent
    // without its '\n': it is answered like any other (docs/rpc.md, "End of
    // a connection"), after those before it.
    reading_ = false;
    eof_ = true;
    if (input_.buffered() > 0) input_.Append("\n");
    if (HasRequest()) {
      WantTurn();
    } else {
      // Answers already produced are flushed; calls still waiting are
      // dropped (their close hooks run).
      CloseAfterFlush();
    }
  } else if (nread < 0) {
    Close(CloseReason::kError, uv_strerror(static_cast<int>(nread)));
  }
}

bool RpcConnection::HasRequest() const {
  return input_.lines() > 0 || input_.buffered() > limits_.max_line;
}

void RpcConnection::WantTurn() {
  if (turn_wanted_ || state_ != State::kOpen || !HasRequest()) return;
  turn_wanted_ = true;
  if (want_turn_) want_turn_(this);
}

// Backpressure: a client that sends faster than its turns come waits in its
// socket (and then in its own write), not in the daemon's memory. Half of
// the bound must be served before reading resumes, so that a pipelining
// client does not toggle reading on every line.
void RpcConnection::UpdateReading() {
  if (state_ != State::kOpen || eof_) return;
  // Bytes count only behind a request: a long line still coming is read on
  // (up to max_line, when it becomes a request: the error to answer).
  const std::size_t lines = input_.lines();
  const bool waiting = HasRequest();
  const bool full = lines >= limits_.read_ahead_lines ||
                    (waiting && input_.buffered() >= limits_.read_ahead_bytes);
  const bool drained = lines <= limits_.read_ahead_lines / 2 &&
                       (!waiting || input_.buffered() < limits_.read_ahead_bytes / 2);
  if (reading_ && full) {
    uv_read_stop(pipe_.stream());
    reading_ = false;
    ++read_pauses_;
  } else if (!reading_ && drained) {
    if (int rc = uv_read_start(pipe_.stream(), OnAlloc, OnRead); rc != 0) {
      Close(CloseReason::kError, std::string("uv_read_start: ") + uv_strerror(rc));
      return;
    }
    reading_ = true;
  }
}

bool RpcConnection::TakeTurn() noexcept {
  if (state_ == State::kClosed) return false;
  auto keep = shared_from_this();  // the server may drop it meanwhile
  bool more = false;
  if (!GuardCallback("rpc: serving a request", [&] { more = ServeOne(); })) {
    Close(CloseReason::kError, "exception while serving a request");
    more = false;
  }
  turn_wanted_ = more;
  return more;
}

bool RpcConnection::ServeOne() {
  if (state_ != State::kOpen) return false;
  // Nobody would read the answer: what the client sent is dropped, not
  // executed (docs/rpc.md, "End of a connection"). While it is read, the
  // loop hears of a hang-up itself (as the end of the stream, then asked
  // here: a client may only have stopped sending); one syscall per request
  // is saved.
  if ((eof_ || !reading_) && PeerGone()) {
    Close(CloseReason::kPeerGone, "the client closed its connection");
    return false;
  }
  std::string line;
  switch (input_.Next(line)) {
    case LineBuffer::Status::kNeedMore: break;
    case LineBuffer::Status::kLine:
      if (!line.empty()) dispatcher_.HandleLine(shared_from_this(), line);
      break;
    case LineBuffer::Status::kTooLong:
      // The stream may still hold the rest of a megabyte we will not read:
      // answer once and end the connection rather than resynchronise.
      Send(ErrorLine(nullptr, RpcErr(RpcCode::kInvalidRequest,
                                     "request line longer than " +
                                         std::to_string(limits_.max_line) + " bytes")));
      drain_reason_ = CloseReason::kOverlongLine;
      CloseAfterFlush();
      return false;
  }
  if (state_ != State::kOpen) return false;
  if (HasRequest()) {
    UpdateReading();
    return true;
  }
  if (eof_) {
    CloseAfterFlush();
    return false;
  }
  UpdateReading();
  UpdateIdleTimer();
  return false;
}

// A client that closed its end entirely leaves our end hung up (POLLHUP), or
// in error if it left answers unread (POLLERR, ECONNRESET); one that only
// shut down its sending side does not: it still reads its answers.
bool RpcConnection::PeerGone() const {
  uv_os_fd_t fd = -1;
  if (uv_fileno(pipe_.base(), &fd) != 0) return false;
  pollfd p{fd, 0, 0};  // hang-ups and errors are reported whatever is asked
  return ::poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLERR)) != 0;
}

void RpcConnection::Send(std::string line) { Write(std::move(line), nullptr, {}); }

void RpcConnection::SendShared(std::string head, std::shared_ptr<const std::string> body,
                               std::string_view tail) {
  Write(std::move(head), std::move(body), tail);
}

void RpcConnection::Write(std::string head, std::shared_ptr<const std::string> body,
                          std::string_view tail) {
  if (state_ == State::kClosed) return;
  // A client that does not read is told by what it left of earlier lines:
  // one line alone may be a whole reply (kMaxReplyBytes), over the bound.
  const std::size_t unread = uv_stream_get_write_queue_size(pipe_.stream());
  if (unread > limits_.max_pending_output) {
    Close(CloseReason::kSlowReader,
          "not reading its answers (" + std::to_string(unread) + " bytes pending)");
    return;
  }
  if (before_send_) before_send_();
  auto* w = new WriteReq;
  w->data = std::move(head);
  w->body = std::move(body);
  w->tail = tail;
  std::array<uv_buf_t, 3> bufs{};
  unsigned n = 0;
  bufs[n++] = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
  if (w->body) {
    // libuv only reads what it writes: the shared bytes are never changed.
    bufs[n++] =
        uv_buf_init(const_cast<char*>(w->body->data()), static_cast<unsigned>(w->body->size()));
    bufs[n++] =
        uv_buf_init(const_cast<char*>(w->tail.data()), static_cast<unsigned>(w->tail.size()));
  }
  if (int rc = uv_write(&w->req, pipe_.stream(), bufs.data(), n, OnWrite); rc != 0) {
    delete w;
    Close(CloseReason::kError, uv_strerror(rc));
    return;
  }
  ++writes_in_flight_;
}

void RpcConnection::OnWrite(uv_write_t* req, int status) noexcept {
  std::unique_ptr<WriteReq> w(reinterpret_cast<WriteReq*>(req));
  auto* self = OwnerOf<RpcConnection>(req->handle);
  if (self == nullptr) return;  // closed: the request only had to be freed
  auto keep = self->shared_from_this();
  if (!GuardCallback("rpc: a write completed", [&] { self->HandleWriteDone(status); })) {
    self->Close(CloseReason::kError, "exception after a write");
  }
}

void RpcConnection::HandleWriteDone(int status) {
  --writes_in_flight_;
  if (status < 0) {
    Close(CloseReason::kError, std::string("write failed: ") + uv_strerror(status));
  } else if (state_ == State::kDraining && writes_in_flight_ == 0) {
    Close(drain_reason_, "flushed");
  } else {
    UpdateIdleTimer();
  }
}

void RpcConnection::CloseAfterFlush() {
  if (state_ != State::kOpen) return;
  state_ = State::kDraining;
  UpdateIdleTimer();  // stops it: the drain ends the connection
  uv_read_stop(pipe_.stream());
  reading_ = false;
  if (writes_in_flight_ == 0) Close(drain_reason_, "done");
}

void RpcConnection::Close(CloseReason reason, std::string_view why) {
  if (state_ == State::kClosed) return;
  state_ = State::kClosed;
  LogDebug(LogEvent("rpc.connection"),
           fmt::format("rpc: closing connection of {}: {}", peer_.ToString(), why));
  pipe_.Close();
  idle_timer_.Close();
  RunCloseHooks();
  if (auto done = std::exchange(on_closed_, nullptr)) done(this, reason);
}

}  // namespace picoflow
