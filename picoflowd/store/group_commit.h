#pragma once
// GroupCommit: the store's writes made while the loop handles one iteration
// share one transaction, committed before the loop blocks again (a
// uv_prepare handle, started only while writes wait, unreferenced so it keeps
// nothing alive). Whoever shows state to a client (a reply, a notification, a
// metrics scrape) commits first: CommitNow(). It also checkpoints the WAL:
// once it holds kCheckpointFrames, when no commit came for kQuiet; at
// kCheckpointForceFrames, at once. See docs/architecture.md. While the store
// is degraded (a full disk, docs/reliability.md) it retries saving what the
// store keeps, with backoff: a timer that runs only then.

#include <uv.h>

#include <chrono>

#include "picoflowd/util/uv_handle.h"

namespace picoflow {

class Store;

class GroupCommit {
 public:
  /// How long without a commit makes a quiet moment for a checkpoint.
  static constexpr std::chrono::milliseconds kQuiet{500};
  /// The first and the longest wait between retries of a degraded store.
  static constexpr std::chrono::milliseconds kFirstRetry{1000};
  static constexpr std::chrono::milliseconds kMaxRetry{30000};

  /// Turns group commit on for `store`; both must outlive this object's Close().
  GroupCommit(uv_loop_t* loop, Store& store);
  ~GroupCommit();
  GroupCommit(const GroupCommit&) = delete;
  GroupCommit& operator=(const GroupCommit&) = delete;

  /// Commits what waits now (before a client sees state). A failure is
  /// logged: the writes of that group are lost, the daemon goes on.
  void CommitNow();
  /// Commits what waits, turns group commit off and closes the handle.
  /// Idempotent.
  void Close();

 private:
  void Armed();
  static void OnPrepare(uv_prepare_t* handle) noexcept;
  /// After a commit: schedules or runs the checkpoint the WAL's size calls for.
  void MaybeCheckpoint();
  void Checkpoint();
  /// While the store is degraded: the next SaveKept() is due.
  void ArmRetry();
  void Retry();

  Store* store_;
  UvHandle<uv_prepare_t> prepare_;
  UvHandle<uv_timer_t> quiet_;  ///< a checkpoint is due once it fires
  UvHandle<uv_timer_t> retry_;  ///< SaveKept() is due once it fires
  std::chrono::milliseconds retry_delay_ = kFirstRetry;
  bool armed_ = false;
};

}  // namespace picoflow
