#include "picoflowd/store/group_commit.h"

#include "picoflowd/store/store.h"
#include "picoflowd/util/callback_guard.h"
#include "picoflowd/util/logging.h"

namespace picoflow {

GroupCommit::GroupCommit(uv_loop_t* loop, Store& store) : store_(&store), prepare_(this) {
  if (uv_prepare_init(loop, prepare_.get()) != 0) return;  // cannot fail on Linux
  prepare_.MarkInitialized();
  // A prepare handle keeps a loop alive while started: this one must not.
  uv_unref(prepare_.base());
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
  if (store_ == nullptr || !store_->has_uncommitted()) return;
  LogIfFailed(LogEvent("store.commit"), store_->Commit());
}

void GroupCommit::Close() {
  if (store_ == nullptr) return;
  if (armed_) {
    armed_ = false;
    uv_prepare_stop(prepare_.get());
  }
  LogIfFailed(LogEvent("store.commit"), store_->EndGroupCommit());
  prepare_.Close();
  store_ = nullptr;
}

}  // namespace picoflow
