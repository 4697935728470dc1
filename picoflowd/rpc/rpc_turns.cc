#include "picoflowd/rpc/rpc_turns.h"

#include <utility>

#include "picoflowd/util/callback_guard.h"

namespace picoflow {

RpcTurns::RpcTurns(uv_loop_t* loop, std::chrono::nanoseconds budget, Clock clock)
    : check_(this), idle_(this), budget_(budget), clock_(std::move(clock)) {
  if (!clock_) clock_ = [] { return uv_hrtime(); };
  // Neither can fail.
  if (uv_check_init(loop, check_.get()) == 0) check_.MarkInitialized();
  if (uv_idle_init(loop, idle_.get()) == 0) idle_.MarkInitialized();
}

RpcTurns::~RpcTurns() = default;  // the UvHandles close their handles

bool RpcTurns::active() const { return check_.initialized() && uv_is_active(check_.base()) != 0; }

void RpcTurns::Add(std::weak_ptr<RpcTurnTaker> taker) {
  queue_.push_back(std::move(taker));
  if (active() || !check_.initialized() || !idle_.initialized()) return;
  // The check handle serves right after this iteration's poll (where the
  // reads that queue requests happen); the idle one makes every later poll
  // return at once while requests are left.
  uv_check_start(check_.get(), OnCheck);
  uv_idle_start(idle_.get(), [](uv_idle_t*) noexcept {});
}

void RpcTurns::OnCheck(uv_check_t* handle) noexcept {
  auto* self = OwnerOf<RpcTurns>(handle);
  if (self == nullptr) return;
  GuardCallback("rpc: serving requests", [self] { self->Serve(); });
}

// One turn: the queue in order, one request each, while the budget lasts.
// A taker that still has requests goes to the back, behind those that were
// waiting, so every connection gets one request per round.
void RpcTurns::Serve() {
  const std::uint64_t began = clock_();
  const auto budget = static_cast<std::uint64_t>(budget_.count());
  bool served = false;
  while (!queue_.empty()) {
    std::shared_ptr<RpcTurnTaker> taker = queue_.front().lock();
    queue_.pop_front();
    if (!taker) continue;
    served = true;
    if (taker->TakeTurn()) queue_.push_back(taker);
    if (clock_() - began >= budget) break;
  }
  if (served) ++turns_;
  if (queue_.empty()) {
    uv_check_stop(check_.get());
    uv_idle_stop(idle_.get());
  }
}

}  // namespace picoflow
