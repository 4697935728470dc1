#pragma once
// Run admission: whether a run started by hand starts now, waits for a
// place, or is refused, under its workflow's max_active_runs and overlap
// (docs/scheduling.md, "Manual and scheduled runs"). Pure logic; the
// scheduler decides for the fires of a schedule, RunManager keeps the runs
// that wait.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/run_status.h"
#include "common/workflow.h"

namespace picoflow {

class WorkflowRegistry;

/// What bounds the runs of one workflow name.
struct RunLimits {
  std::optional<int> max_active_runs;  ///< unset: runs started by hand are not limited
  OverlapPolicy overlap = OverlapPolicy::kSkip;
};

/// The limits that hold for runs named as `own` is: those of the version the
/// registry has loaded under that name, or `own`'s if none is (a one-off
/// run, a removed workflow).
RunLimits LimitsFor(const WorkflowRegistry& registry, const Workflow& own);

/// The limits of a run started by an event of `triggers:` (docs/triggers.md):
/// as for the fires of a schedule, a workflow without max_active_runs runs
/// one at a time unless its overlap is `allow`.
RunLimits EventLimits(RunLimits limits);

/// True for the triggers of `triggers:` events: file, webhook, mqtt.
bool IsEventTrigger(RunTrigger trigger);

/// True if one more run fits beside `running` live runs under `limits`.
bool HasRoom(const RunLimits& limits, std::size_t running);

enum class Admission {
  kStart,   ///< start it now
  kQueue,   ///< record it pending and start it when a run ends (overlap: queue)
  kRefuse,  ///< start nothing (overlap: skip)
};

struct AdmissionDecision {
  Admission action = Admission::kStart;
  /// kQueue and kRefuse: the state of the workflow, e.g. "max_active_runs 1
  /// reached (run 12 running)"; the queued run's reason is "queued: " + this.
  std::string why;
  int limit = 0;  ///< kQueue and kRefuse: the max_active_runs reached
};

/// What became of a run an event or a fleet request asked for: started,
/// queued, or recorded skipped (docs/triggers.md, docs/fleet.md).
struct EventRun {
  std::int64_t run_id = 0;
  bool queued = false;
  bool skipped = false;
  std::string reason;  ///< queued or skipped: why
};

/// A run started by hand starts if `force`, if the workflow has no
/// max_active_runs, or if fewer than that many runs are `running` and
/// nothing of it waits (`waiting`: runs and fires); otherwise it is queued
/// with overlap: queue and refused with overlap: skip.
AdmissionDecision AdmitManualRun(const RunLimits& limits, const std::vector<std::int64_t>& running,
                                 std::size_t waiting, bool force);

/// AdmitManualRun under EventLimits(limits); when the limit is the implied
/// one (no max_active_runs), `why` says "one run at a time (overlap: skip)"
/// rather than naming a setting the workflow does not have.
AdmissionDecision AdmitEventRun(const RunLimits& limits, const std::vector<std::int64_t>& running,
                                std::size_t waiting);

}  // namespace picoflow
