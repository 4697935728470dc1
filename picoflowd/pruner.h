#pragma once
// Pruner: applies retention to the store from the loop. After a run finishes
// it waits for a quiet moment (a debounced one-shot timer), then deletes in
// small batches, each one short transaction, yielding to the loop between
// batches: runs past their workflow's max_runs / max_age, then the oldest
// output while the total exceeds the cap, then gives freed pages back with
// PRAGMA incremental_vacuum. Nothing is armed while idle.

#include <uv.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "common/result.h"
#include "picoflowd/engine/run_observer.h"
#include "picoflowd/store/store.h"
#include "picoflowd/util/uv_handle.h"

namespace picoflow {

/// The daemon-wide retention settings.
struct RetentionConfig {
  RunRetention runs{1000, std::chrono::hours(24 * 30)};       ///< per workflow, unless it says
  std::uint64_t max_output_bytes = std::uint64_t{256} << 20;  ///< all output; 0: no cap
  std::chrono::milliseconds quiet{2000};                      ///< wait after a run finishes
  int batch_runs = 50;     ///< runs per transaction (their rows cascade)
  int batch_chunks = 200;  ///< output chunks per transaction
  int vacuum_pages = 256;  ///< pages freed per step
};

/// The retention of one workflow (its `retention:` over the defaults).
using RetentionLookup = std::function<RunRetention(const std::string& workflow)>;

class Pruner : public RunObserver {
 public:
  Pruner(uv_loop_t* loop, Store& store, RetentionConfig config, RetentionLookup lookup);
  ~Pruner() override;
  Pruner(const Pruner&) = delete;
  Pruner& operator=(const Pruner&) = delete;

  /// A run ended: prune once the daemon has been quiet for `quiet`.
  void OnRunFinished(std::int64_t run_id, RunStatus status) override;
  /// Starts a background prune at once (as after a quiet period).
  void Schedule(std::chrono::milliseconds delay);
  /// Prunes everything due now, batch after batch, before returning (the
  /// `store.prune` method); with dry_run only counts. Returns an Error on a
  /// store failure.
  Result<PruneCounts> PruneNow(bool dry_run);
  /// What background pruning deleted so far.
  const PruneCounts& total() const { return total_; }
  /// Stops the timer; nothing runs afterwards.
  void Close();

 private:
  enum class Phase { kIdle, kRuns, kOutput, kVacuum };
  void OnTimer();
  /// One batch of the current phase; false once a full pass is done.
  Result<bool> Step(bool dry_run, PruneCounts& counts);

  Store& store_;
  RetentionConfig config_;
  RetentionLookup lookup_;
  UvHandle<uv_timer_t> timer_;
  Phase phase_ = Phase::kIdle;
  std::optional<std::string> workflow_;  ///< the workflow kRuns is on
  PruneCounts total_;
};

}  // namespace picoflow
