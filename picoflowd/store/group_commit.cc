#include "picoflowd/store/group_commit.h"

#include "picoflowd/store/store.h"
#include "picoflowd/util/callback_guard.h"
#include "picoflowd/util/logging.h"

namespace picoflow {

GroupCommit::GroupCommit(uv_loop_t* loop, Store& store)
    : store_(&store), prepare_(this), quiet_(this), retry_(this) {
  if (uv_prepare_init(loop, prepare_.get()) != 0) return;  // cannot fail on Linux
  prepare_.MarkInitialized();
  // A prepare handle keeps a loop alive while started: this one must not.
  uv_unref(prepare_.base());
  if (uv_timer_init(loop, quiet_.get()) == 0) quiet_.MarkInitialized();
  if (uv_timer_init(loop, retry_.get()) == 0) retry_.MarkInitialized();
  store_->EnableGroupCommit([this] { Armed(); });
}

GroupCommit::~GroupCommit() { Close(); }

void GroupCommit::Armed() {
  if (armed_ || !prepare_.initialized()) return;
  armed_ = true;
  uv_prepare_start(prepare_.get(), &GroupCommit::OnPrepare);
}

void GroupCommit::OnPrepare(uv_prepare_t* handle) noexcept {
  auto* self = OwnerOf<GroupCommit>(handle);
  if (self == nullptr) return;
  GuardCallback("group commit", [self] { self->CommitNow(); });
}

void GroupCommit::CommitNow() {
  if (armed_) {
    armed_ = false;
    uv_prepare_stop(prepare_.get());
  }
  if (store_ == nullptr) return;
  const bool writes = store_->has_uncommitted();
  Status committed = writes ? store_->Commit() : Status{};
  if (store_->degraded()) {
    // The store said why (Store::Degrade), once: not once per commit.
    ArmRetry();
    return;
  }
  if (writes && LogIfFailed(LogEvent("store.commit"), committed)) MaybeCheckpoint();
}

void GroupCommit::ArmRetry() {
  if (!retry_.initialized() || uv_is_active(retry_.base())) return;
  StartOneShot<GroupCommit, &GroupCommit::Retry>(retry_,
                                                 static_cast<std::uint64_t>(retry_delay_.count()));
}

void GroupCommit::Retry() {
  if (store_ == nullptr) return;
  if (store_->SaveKept()) {
    retry_delay_ = kFirstRetry;
    MaybeCheckpoint();
    return;
  }
  retry_delay_ = std::min(retry_delay_ * 2, kMaxRetry);
  ArmRetry();
}

void GroupCommit::MaybeCheckpoint() {
  const int frames = store_->WalFrames();
  if (frames >= kCheckpointForceFrames) {
    Checkpoint();
  } else if (frames >= kCheckpointFrames) {
    // Each commit moves the quiet moment on: a busy stretch checkpoints
    // after it ends, not inside it.
    StartOneShot<GroupCommit, &GroupCommit::Checkpoint>(quiet_,
                                                        static_cast<std::uint64_t>(kQuiet.count()));
  }
}

void GroupCommit::Checkpoint() {
  if (quiet_.initialized()) uv_timer_stop(quiet_.get());
  if (store_ == nullptr) return;
  LogIfFailed(LogEvent("store.checkpoint"), store_->Checkpoint());
}

void GroupCommit::Close() {
  if (store_ == nullptr) return;
  if (armed_) {
    armed_ = false;
    uv_prepare_stop(prepare_.get());
  }
  LogIfFailed(LogEvent("store.commit"), store_->EndGroupCommit());
  prepare_.Close();
  quiet_.Close();
  retry_.Close();
  store_ = nullptr;
}

}  // namespace picoflow
