#include "picoflowd/pruner.h"

#include <algorithm>
#include <utility>

#include "picoflowd/util/logging.h"

namespace picoflow {

Pruner::Pruner(uv_loop_t* loop, Store& store, RetentionConfig config, RetentionLookup lookup)
    : store_(store), config_(std::move(config)), lookup_(std::move(lookup)), timer_(this) {
  if (uv_timer_init(loop, timer_.get()) == 0) timer_.MarkInitialized();
}

Pruner::~Pruner() { Close(); }

void Pruner::Close() { timer_.Close(); }

void Pruner::OnRunFinished(std::int64_t /*run_id*/, RunStatus /*status*/) {
  // A pass in progress picks up the new run when it reaches its workflow;
  // otherwise (re)start the quiet period: a burst of runs prunes once.
  if (phase_ == Phase::kIdle) Schedule(config_.quiet);
}

void Pruner::Schedule(std::chrono::milliseconds delay) {
  StartOneShot<Pruner, &Pruner::OnTimer>(timer_, static_cast<std::uint64_t>(delay.count()));
}

void Pruner::OnTimer() {
  PruneCounts counts;
  auto more = Step(false, counts);
  total_.runs += counts.runs;
  total_.output_bytes += counts.output_bytes;
  if (!more.ok()) {
    // Retried after the next run ends; the store stays consistent.
    LogError({}, "retention: " + more.error().message);
    phase_ = Phase::kIdle;
    workflow_.reset();
    return;
  }
  // A zero timer lets the loop serve I/O and runs between batches.
  if (*more) Schedule(std::chrono::milliseconds(0));
}

Result<PruneCounts> Pruner::PruneNow(bool dry_run) {
  // A background pass in progress starts over after this one.
  phase_ = Phase::kIdle;
  workflow_.reset();
  PruneCounts counts;
  for (;;) {
    auto more = Step(dry_run, counts);
    if (!more.ok()) {
      phase_ = Phase::kIdle;
      return more.error();
    }
    if (!*more) break;
  }
  if (!dry_run) {
    total_.runs += counts.runs;
    total_.output_bytes += counts.output_bytes;
  }
  return counts;
}

Result<bool> Pruner::Step(bool dry_run, PruneCounts& counts) {
  const auto add = [&counts](const PruneCounts& c) {
    counts.runs += c.runs;
    counts.output_bytes += c.output_bytes;
  };
  switch (phase_) {
    case Phase::kIdle:
      phase_ = Phase::kRuns;
      workflow_ = std::string();
      return true;
    case Phase::kRuns: {
      // workflow_ is "" before the first: names are never empty.
      auto next = store_.NextRunWorkflow(*workflow_);
      if (!next.ok()) return next.error();
      if (!*next) {
        phase_ = Phase::kOutput;
        return true;
      }
      const RunRetention keep = lookup_(**next);
      auto pruned = store_.PruneRuns(**next, keep, std::chrono::system_clock::now(),
                                     config_.batch_runs, dry_run);
      if (!pruned.ok()) return pruned.error();
      add(*pruned);
      // A full batch may have left more of this workflow: stay on it.
      if (dry_run || pruned->runs < config_.batch_runs) workflow_ = **next;
      return true;
    }
    case Phase::kOutput: {
      if (config_.max_output_bytes == 0) {
        phase_ = Phase::kVacuum;
        return true;
      }
      if (dry_run) {
        // What the run phase would free counts towards the cap.
        auto stored = store_.OutputBytes();
        if (!stored.ok()) return stored.error();
        const auto left = *stored - std::min<std::uint64_t>(
                                        *stored, static_cast<std::uint64_t>(counts.output_bytes));
        if (left > config_.max_output_bytes) {
          counts.output_bytes += static_cast<std::int64_t>(left - config_.max_output_bytes);
        }
        phase_ = Phase::kVacuum;
        return true;
      }
      auto pruned = store_.PruneOutput(config_.max_output_bytes, config_.batch_chunks, false);
      if (!pruned.ok()) return pruned.error();
      add(*pruned);
      if (pruned->output_bytes == 0) phase_ = Phase::kVacuum;
      return true;
    }
    case Phase::kVacuum: {
      if (dry_run) {
        phase_ = Phase::kIdle;
        return false;
      }
      auto more = store_.VacuumStep(config_.vacuum_pages);
      if (!more.ok()) return more.error();
      if (*more) return true;
      phase_ = Phase::kIdle;
      workflow_.reset();
      return false;
    }
  }
  return false;
}

}  // namespace picoflow
