#pragma once
// RpcTurns: how the control socket shares the loop between its clients. Owns
// the round-robin queue of connections with requests waiting, a uv_check
// handle that serves them right after the loop's poll, and a uv_idle handle
// that keeps the next poll from waiting while requests are left: both are
// active only while the queue is not empty (an idle daemon gets no wakeup
// from them). Each loop iteration serves the queue in order, one request per
// connection per turn, until a time budget is spent, then yields to the
// loop: reads, writes, timers and task events come in between, and a client
// that sends one cheap request waits for one request of each busy
// connection, never for all of them.
//
// A turn's share of time is small (1 ms in the daemon). A connection whose
// request took longer owes the rest: it sits out one turn per share owed,
// while connections that owe nothing are served. So many clients of slow
// requests (a large workflow.validate) cost a cheap request about one slow
// request of waiting, not one of each of them; when nobody else waits, the
// debt is written off at once. Loop thread only.

#include <uv.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>

#include "picoflowd/util/uv_handle.h"

namespace picoflow {

/// What RpcTurns serves: a connection with requests waiting.
class RpcTurnTaker {
 public:
  virtual ~RpcTurnTaker() = default;
  /// Serves one waiting request. Returns true if more are waiting: the
  /// taker goes to the back of the queue for another turn.
  virtual bool TakeTurn() noexcept = 0;

 private:
  friend class RpcTurns;
  std::uint64_t owed_ns_ = 0;  // time served beyond its shares, not yet sat out
};

class RpcTurns {
 public:
  /// Monotonic nanoseconds (uv_hrtime by default; tests pass their own).
  using Clock = std::function<std::uint64_t()>;

  /// Makes the (inactive) handles on `loop`. A loop iteration's turns end
  /// once `budget` has passed, after the request in progress: a request
  /// that takes longer is never cut, but the next one waits for the loop.
  /// A request that takes more than `share` makes its connection sit out a
  /// turn per share beyond (at least 1 ns).
  RpcTurns(uv_loop_t* loop, std::chrono::nanoseconds budget, std::chrono::nanoseconds share,
           Clock clock = {});
  /// Closes the handles; what is queued is forgotten.
  ~RpcTurns();
  RpcTurns(const RpcTurns&) = delete;
  RpcTurns& operator=(const RpcTurns&) = delete;

  /// Queues `taker` at the back for a turn. The caller adds a taker only
  /// when it is not queued already (TakeTurn's result says if it stays).
  /// A taker that is gone by its turn is skipped.
  void Add(std::weak_ptr<RpcTurnTaker> taker);

  /// Takers waiting for a turn.
  std::size_t queued() const { return queue_.size(); }
  /// True while the handles are active (something is queued).
  bool active() const;
  /// Loop iterations that served at least one request.
  std::uint64_t turns() const { return turns_; }

 private:
  static void OnCheck(uv_check_t* handle) noexcept;
  void Serve();

  UvHandle<uv_check_t> check_;
  UvHandle<uv_idle_t> idle_;
  std::chrono::nanoseconds budget_;
  std::uint64_t share_ns_;
  Clock clock_;
  std::deque<std::weak_ptr<RpcTurnTaker>> queue_;
  std::uint64_t turns_ = 0;
};

}  // namespace picoflow
