#pragma once
// Trigger rules: whether a task may start, from how its direct dependencies
// ended so far (docs/workflow-format.md, "Trigger rules"). A pure function
// over counts, so that every rule and every mix of upstream states can be
// checked as a table (tests/trigger_rule_test.cc).

#include "common/workflow.h"

namespace picoflow {

/// How a task's direct dependencies stand. Each dependency is in exactly one
/// count.
struct UpstreamCounts {
  int succeeded = 0;  ///< succeeded, or failed with continue_on_failure
  int failed = 0;     ///< failed or timed out (without continue_on_failure)
  int skipped = 0;
  int cancelled = 0;
  int pending = 0;  ///< not ended yet (waiting, ready, running, retrying)

  int total() const { return succeeded + failed + skipped + cancelled + pending; }
};

/// What a rule says of a pending task.
enum class TriggerVerdict {
  kWait,  ///< not decided until more dependencies end
  kRun,   ///< met: the task becomes ready
  kSkip,  ///< can no longer be met: the task is skipped
};

/// The verdict of `rule` over `up`. A task without dependencies (total() 0)
/// runs, whatever its rule. Once a verdict is kRun or kSkip, no later end of
/// another dependency changes it.
TriggerVerdict EvaluateTrigger(TriggerRule rule, const UpstreamCounts& up);

}  // namespace picoflow
