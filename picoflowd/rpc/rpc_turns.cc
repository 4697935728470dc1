#include "picoflowd/rpc/rpc_turns.h"

#include <algorithm>
#include <utility>

#include "picoflowd/util/callback_guard.h"

namespace picoflow {

RpcTurns::RpcTurns(uv_loop_t* loop, std::chrono::nanoseconds budget, std::chrono::nanoseconds share,
                   Clock clock)
    : check_(this),
      idle_(this),
      budget_(budget),
      share_ns_(static_cast<std::uint64_t>(std::max<std::int64_t>(share.count(), 1))),
      clock_(std::move(clock)) {
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

// One loop iteration's turns: the queue in order, one request each, while
// the budget lasts. A taker that still has requests goes to the back, behind
// those that were waiting, so every connection gets one request per round;
// one that owes time sits its turn out instead (which takes no time: when
// only debtors wait, their rounds pass at once until one owes nothing).
void RpcTurns::Serve() {
  const std::uint64_t began = clock_();
  const auto budget = static_cast<std::uint64_t>(budget_.count());
  bool served = false;
  while (!queue_.empty()) {
    std::shared_ptr<RpcTurnTaker> taker = queue_.front().lock();
    queue_.pop_front();
    if (!taker) continue;
    if (taker->owed_ns_ > 0) {
      taker->owed_ns_ -= std::min(taker->owed_ns_, share_ns_);
      queue_.push_back(taker);
      continue;
    }
    served = true;
    const std::uint64_t start = clock_();
    const bool more = taker->TakeTurn();
    const std::uint64_t end = clock_();
    if (end - start > share_ns_) taker->owed_ns_ = end - start - share_ns_;
    if (more) queue_.push_back(taker);
    if (end - began >= budget) break;
  }
  if (served) ++turns_;
  if (queue_.empty()) {
    uv_check_stop(check_.get());
    uv_idle_stop(idle_.get());
  }
}

}  // namespace picoflow
