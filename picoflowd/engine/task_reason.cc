#include "picoflowd/engine/task_reason.h"

#include "picoflowd/engine/run.h"

namespace picoflow {
namespace {

// "failed", "timed out", "was cancelled": what a task's status says of it.
std::string Verb(TaskStatus status) {
  switch (status) {
    case TaskStatus::kTimedOut: return "timed out";
    case TaskStatus::kCancelled: return "was cancelled";
    case TaskStatus::kSkipped: return "was skipped";
    default: return TaskStatusName(status);
  }
}

std::string Quoted(const Run& run, int task) { return "'" + run.workflow().tasks[task].name + "'"; }

// Why `task`'s own trigger rule can no longer be met, the end of `via`
// having decided it: "trigger one_success: no dependency succeeded".
std::string RuleReason(const Run& run, int task, int via) {
  const TriggerRule rule = run.workflow().tasks[task].trigger;
  const std::string head = std::string("trigger ") + TriggerRuleName(rule) + ": ";
  switch (rule) {
    case TriggerRule::kOneFailed: return head + "no dependency failed";
    case TriggerRule::kOneSuccess: return head + "no dependency succeeded";
    default: break;
  }
  if (via < 0) return head + "not met";
  std::string dep = "dependency " + Quoted(run, via) + " " + Verb(run.task_status(via));
  if (IsFailure(run.task_status(via)) && run.workflow().tasks[via].continue_on_failure) {
    dep += " (continue_on_failure: it counts as succeeded)";
  }
  return head + dep;
}

}  // namespace

std::string AttemptReason(const AttemptResult& result) {
  if (result.status == AttemptStatus::kSucceeded) return "";
  if (!result.error.empty()) return result.error;
  if (result.exit_code) return "exited with code " + std::to_string(*result.exit_code);
  if (result.signal) return "killed by signal " + std::to_string(*result.signal);
  return AttemptStatusName(result.status);
}

std::string SkipReason(const Run& run, int task) {
  const SkipCause cause = run.skip_cause(task);
  if (cause.by < 0) return "";
  if (cause.by == task) return RuleReason(run, task, cause.via);
  const std::string by = Quoted(run, cause.by) + " " + Verb(run.task_status(cause.by));
  if (cause.via < 0) return by + " and fail_fast stops the run";
  // The origin is a task its own rule skipped, or one that ended badly.
  const SkipCause origin = run.skip_cause(cause.by);
  const bool by_rule = run.task_status(cause.by) == TaskStatus::kSkipped && origin.by == cause.by;
  const std::string rule = by_rule ? RuleReason(run, cause.by, origin.via) : "";
  if (cause.via == cause.by) return "dependency " + by + (by_rule ? " (its " + rule + ")" : "");
  return "dependency " + Quoted(run, cause.via) + " was skipped (" + by +
         (by_rule ? " by its " + rule : "") + ")";
}

std::string NotRetriedReason(const AttemptResult& result) {
  std::string out = AttemptReason(result) + "; not retried: ";
  if (result.exit_code) {
    return out + "exit code " + std::to_string(*result.exit_code) +
           " is not in retry_on_exit_codes";
  }
  return out + "retry_on_exit_codes retries only an attempt that exited with one of its codes";
}

std::string RunError(const Run& run, const std::vector<std::string>& reasons,
                     const std::string& stop_reason) {
  const RunStatus status = run.status();
  if (status == RunStatus::kCancelled || status == RunStatus::kSkipped) return stop_reason;
  if (status != RunStatus::kFailed) return "";
  int first = -1;
  int more = 0;
  for (int i = 0; i < run.dag().size(); ++i) {
    // A handler's end is its own (docs/workflow-format.md, "Handlers").
    if (!IsFailure(run.task_status(i)) || run.workflow().IsHandler(i)) continue;
    if (first < 0) {
      first = i;
    } else {
      ++more;
    }
  }
  if (first < 0) return "";
  std::string error = "task " + Quoted(run, first) + " " +
                      OutcomeText(TaskStatusName(run.task_status(first)), reasons[first]);
  if (more > 0) error += " (and " + std::to_string(more) + " more)";
  return error;
}

}  // namespace picoflow
