#pragma once
// Scheduler: the cron side of the daemon as pure logic — for each scheduled
// workflow its expressions, zone, policies, the last fire handled and the
// next one due; what to do when the timer fires (start, queue, or skip with
// a reason), catch-up after downtime, and wall-clock jumps. No libuv, no
// store: the daemon arms one timer for NextDeadline() and carries out the
// Fires. docs/scheduling.md states the semantics implemented here.

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/cron.h"
#include "common/result.h"
#include "common/workflow.h"
#include "picoflowd/store/store.h"

namespace picoflow {

/// The two clocks the scheduler reads; injected so tests never wait.
class WallClock {
 public:
  virtual ~WallClock() = default;
  /// The wall clock (CLOCK_REALTIME); may jump both ways.
  virtual TimePoint Now() const = 0;
  /// Time elapsed since an arbitrary origin, suspend included, never set
  /// (CLOCK_BOOTTIME): the reference that tells a clock jump from time passing.
  virtual std::chrono::nanoseconds Elapsed() const = 0;
};

/// The system's clocks.
class SystemWallClock final : public WallClock {
 public:
  TimePoint Now() const override;
  std::chrono::nanoseconds Elapsed() const override;
};

/// What the scheduler needs of one workflow.
struct ScheduleSpec {
  std::string workflow;
  std::vector<CronExpr> exprs;  ///< never empty
  const date::time_zone* zone = nullptr;
  OverlapPolicy overlap = OverlapPolicy::kSkip;
  /// Fires start while fewer runs than this are live; unset: 1 (the reasons
  /// of skipped fires then do not name it).
  std::optional<int> max_active_runs;
  CatchupPolicy catchup = CatchupPolicy::kLatest;
  Seconds catchup_window{24 * 3600};

  /// The spec of a workflow, or nullopt if it has no schedule. Returns an
  /// Error naming the workflow if an expression or the zone does not resolve
  /// (the loader checked both, so only a changed tz database gets here).
  static Result<std::optional<ScheduleSpec>> FromWorkflow(const Workflow& workflow);
};

/// What to do with one fire.
enum class FireAction {
  kStart,  ///< start a run now
  kQueue,  ///< a run is in progress: this fire waits (overlap: queue, catch-up)
  kSkip,   ///< recorded as a `skipped` run with `reason`, not run
};

/// One cron instant handled.
struct Fire {
  std::string workflow;
  SysSeconds scheduled_at;
  RunTrigger trigger = RunTrigger::kCron;  ///< kCron or kCatchup
  FireAction action = FireAction::kStart;
  std::string reason;  ///< why a fire was skipped
};

/// The outcome of Evaluate().
struct SchedulerTick {
  std::vector<Fire> fires;  ///< in order; kQueue fires come back from TakeQueued()
  /// The last instant handled per workflow, to keep in the store
  /// (Store::SetLastFire) before starting the runs.
  std::vector<std::pair<std::string, SysSeconds>> handled;
  std::vector<std::string> notes;  ///< corrections and dropped fires, for the log
};

/// Live runs of a workflow, and runs started by hand waiting for a place
/// among them (max_active_runs).
using RunningFn = std::function<int(const std::string& workflow)>;

class Scheduler {
 public:
  /// At most this many catch-up runs per workflow per evaluation.
  static constexpr int kMaxCatchup = 100;
  /// A wall-clock change smaller than this (and than 0.2% of the time passed)
  /// is drift, not a jump.
  static constexpr std::chrono::seconds kJumpThreshold{2};

  /// `clock` must outlive the scheduler.
  explicit Scheduler(const WallClock& clock);

  /// Adds or replaces a workflow's schedule. A new workflow starts from
  /// `last_fire` (the store's, so the next Evaluate() catches up what was
  /// missed since) or, without one, from now. A replaced one keeps its last
  /// fire, its queue and its counters and never catches up.
  void Set(ScheduleSpec spec, std::optional<SysSeconds> last_fire = std::nullopt);
  /// Forgets a workflow and its queued fires; false if unknown.
  bool Remove(const std::string& workflow);
  /// Pauses (no fires, nothing queued starts) or resumes (from now: fires
  /// missed while paused are not caught up). False if unknown.
  bool SetPaused(const std::string& workflow, bool paused);

  /// Handles every fire due at the wall clock's now: on-time fires, catch-up
  /// after downtime, clock jumps (see docs/scheduling.md). `running` says
  /// how many runs each workflow has (overlap policy, max_active_runs).
  SchedulerTick Evaluate(const RunningFn& running);
  /// The first fire of `workflow` waiting for runs to end, or null if none
  /// waits or the workflow is paused.
  const Fire* FirstQueued(const std::string& workflow) const;
  /// Takes that fire, marked kStart, if `running` (the workflow's live runs)
  /// is below its max_active_runs (1 if unset); else nullopt, and it waits on.
  std::optional<Fire> TakeQueued(const std::string& workflow, int running);

  /// The earliest next fire of all unpaused workflows: the one timer's deadline.
  std::optional<SysSeconds> NextDeadline() const;
  /// A workflow's next fire (also while paused), or nullopt.
  std::optional<SysSeconds> NextFire(const std::string& workflow) const;
  /// The next `count` fires of a workflow from now, after its last fire.
  std::vector<SysSeconds> Upcoming(const std::string& workflow, int count) const;
  /// True if the workflow is scheduled here.
  bool Has(const std::string& workflow) const { return entries_.count(workflow) != 0; }
  /// Fires skipped by the overlap policy since the daemon started.
  std::int64_t SkippedCount(const std::string& workflow) const;
  /// Fires waiting for a run of the workflow to end.
  std::size_t QueuedCount(const std::string& workflow) const;

 private:
  struct Entry {
    ScheduleSpec spec;
    SysSeconds anchor{};             ///< instants <= anchor are never fired
    bool anchor_is_fire = false;     ///< anchor is a handled fire, not "from now"
    bool from_store = false;         ///< first Evaluate() catches up since anchor
    std::optional<SysSeconds> next;  ///< the instant the timer is armed for
    bool paused = false;
    std::deque<Fire> queue;  ///< fires waiting for the running one to end
    std::int64_t skipped = 0;
    int started_now = 0;  ///< runs started by the Evaluate() in progress
  };

  std::optional<SysSeconds> NextOf(const ScheduleSpec& spec, SysSeconds after) const;
  void EvaluateEntry(Entry& e, SysSeconds now, std::chrono::seconds jump, const RunningFn& running,
                     SchedulerTick& tick);
  void Decide(Entry& e, Fire fire, bool queue_always, const RunningFn& running,
              SchedulerTick& tick);
  /// Why a fire of `spec` that may not start is skipped.
  static std::string SkipReason(const ScheduleSpec& spec);
  SysSeconds NowSeconds() const;

  const WallClock& clock_;
  std::map<std::string, Entry> entries_;
  TimePoint last_wall_;                    ///< wall clock at the last Evaluate()
  std::chrono::nanoseconds last_elapsed_;  ///< and the elapsed clock then
};

}  // namespace picoflow
