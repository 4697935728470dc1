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
  const std::string by = Quoted(run, cause.by) + " " + Verb(run.task_status(cause.by));
  if (cause.via < 0) return by + " and fail_fast stops the run";
  if (cause.via == cause.by) return "dependency " + by;
  return "dependency " + Quoted(run, cause.via) + " was skipped (" + by + ")";
}

std::string RunError(const Run& run, const std::vector<std::string>& reasons,
                     const std::string& stop_reason) {
  const RunStatus status = run.status();
  if (status == RunStatus::kCancelled) return stop_reason;
  if (status != RunStatus::kFailed) return "";
  int first = -1;
  int more = 0;
  for (int i = 0; i < run.dag().size(); ++i) {
    if (!IsFailure(run.task_status(i))) continue;
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
