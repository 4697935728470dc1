#include "picoflowd/engine/run.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <utility>

namespace picoflow {

Run::Run(std::int64_t id, std::shared_ptr<const Workflow> workflow, std::shared_ptr<const Dag> dag,
         Uniform uniform)
    : id_(id),
      workflow_(std::move(workflow)),
      dag_(std::move(dag)),
      uniform_(std::move(uniform)),
      tasks_(dag_->size()),
      ready_(ByPriority{dag_.get()}),
      unfinished_(dag_->size()) {
  for (int i = 0; i < dag_->size(); ++i) {
    tasks_[i].up.pending = static_cast<int>(dag_->deps(i).size());
    if (!workflow_->IsHandler(i)) ++dag_unfinished_;
  }
  // The handlers wait for ReleaseHandlers().
  for (int root : dag_->roots()) {
    if (!workflow_->IsHandler(root)) MakeReady(root);
  }
}

std::vector<int> Run::Restore(int task, TaskStatus status, int attempts_made) {
  assert(running_ == 0);
  TaskState& t = tasks_[task];
  t.attempts = attempts_made;
  if (!IsTerminal(status)) return {};  // stays pending/ready; resumes normally
  // A restored task may already sit in ready_ (a root); PopReady() drops
  // entries whose task is no longer kReady.
  if (IsTerminal(t.status)) {
    // The restored end of a dependency skipped it already, as it did when
    // the run first went: the store's status wins, its end is counted once.
    t.status = status;
    return {};
  }
  // Its dependents count its end as they did when it ended: one it skipped
  // then is skipped again here (or was restored skipped before), one it
  // made ready (stored as pending) becomes ready again.
  --unfinished_;
  if (!workflow_->IsHandler(task)) --dag_unfinished_;
  t.status = status;
  std::vector<int> skipped;
  Settle(task, skipped);
  return skipped;
}

std::optional<int> Run::PopReady() {
  while (!ready_.empty() && running_ < workflow_->config.max_parallel) {
    const int task = ready_.top();
    // Restore(), Cancel() or fail_fast may have ended a task queued as ready.
    if (tasks_[task].status != TaskStatus::kReady) {
      ready_.pop();
      continue;
    }
    if (Stopping(task)) return std::nullopt;
    ready_.pop();
    tasks_[task].status = TaskStatus::kRunning;
    ++tasks_[task].attempts;
    ++running_;
    return task;
  }
  return std::nullopt;
}

FinishOutcome Run::AttemptFinished(int task, AttemptStatus status, std::optional<int> exit_code) {
  TaskState& t = tasks_[task];
  assert(t.status == TaskStatus::kRunning);
  --running_;
  FinishOutcome outcome;
  if (status == AttemptStatus::kSucceeded) {
    Finish(task, TaskStatus::kSucceeded);
    Settle(task, outcome.skipped);
    return outcome;
  }
  if (status == AttemptStatus::kCancelled || Stopping(task)) {
    Finish(task, TaskStatus::kCancelled);
    Settle(task, outcome.skipped);
    return outcome;
  }
  const Task& spec = workflow_->tasks[task];
  if (t.attempts <= spec.retry) {
    // retry_on_exit_codes filters failures only: a timeout is retried
    // (docs/workflow-format.md, "Retries").
    const std::vector<int>& codes = spec.retry_on_exit_codes;
    const bool listed =
        exit_code && std::find(codes.begin(), codes.end(), *exit_code) != codes.end();
    if (status != AttemptStatus::kFailed || codes.empty() || listed) {
      t.status = TaskStatus::kRetryWait;
      outcome.retry_after = RetryDelay(task, t.attempts);
      return outcome;
    }
    outcome.not_retried = true;
  }
  FailForGood(task, status == AttemptStatus::kTimeout ? TaskStatus::kTimedOut : TaskStatus::kFailed,
              outcome);
  return outcome;
}

FinishOutcome Run::GiveUp(int task) {
  assert(running_ == 0 && !IsTerminal(tasks_[task].status));
  FinishOutcome outcome;
  FailForGood(task, TaskStatus::kFailed, outcome);
  return outcome;
}

void Run::FailForGood(int task, TaskStatus status, FinishOutcome& outcome) {
  Finish(task, status);
  Settle(task, outcome.skipped);
  // Trigger rules do not defeat fail_fast: a dependent that this failure
  // made ready (one_failed, all_done, ...) is skipped below with the rest.
  // A handler's failure stops nothing: on_exit still runs after it.
  if (workflow_->tasks[task].continue_on_failure || workflow_->IsHandler(task)) return;
  if (workflow_->config.fail_fast) {
    stopped_ = true;
    outcome.stop_run = true;
    // Nothing new starts; what has not started yet will never run (but the
    // handlers, after it).
    for (int i : dag_->topo_order()) {
      if (workflow_->IsHandler(i)) continue;
      TaskStatus s = tasks_[i].status;
      if (s == TaskStatus::kPending || s == TaskStatus::kReady || s == TaskStatus::kRetryWait) {
        Finish(i, TaskStatus::kSkipped);
        tasks_[i].skipped = {task, -1};
        outcome.skipped.push_back(i);
      }
    }
  }
}

FinishOutcome Run::EndUnstarted(int task, TaskStatus status) {
  TaskState& t = tasks_[task];
  assert(t.status == TaskStatus::kRunning && IsTerminal(status));
  --running_;
  --t.attempts;  // PopReady() counted the attempt that did not start
  FinishOutcome outcome;
  Finish(task, status);
  Settle(task, outcome.skipped);
  return outcome;
}

void Run::SkipAll() {
  assert(running_ == 0);
  skipped_all_ = true;
  for (int i = 0; i < static_cast<int>(tasks_.size()); ++i) {
    if (!IsTerminal(tasks_[i].status)) Finish(i, TaskStatus::kSkipped);
  }
}

void Run::RetryDue(int task) {
  if (tasks_[task].status != TaskStatus::kRetryWait) return;  // cancelled meanwhile
  MakeReady(task);
}

std::vector<int> Run::Cancel(bool handlers) {
  if (handlers || handlers_released_) handlers_cancelled_ = true;
  if (!handlers_released_) cancelled_ = true;
  std::vector<int> changed;
  for (int i : dag_->topo_order()) {
    if (workflow_->IsHandler(i) && !handlers_cancelled_) continue;
    const TaskStatus s = tasks_[i].status;
    if (s == TaskStatus::kPending || s == TaskStatus::kReady || s == TaskStatus::kRetryWait) {
      Finish(i, TaskStatus::kCancelled);
      changed.push_back(i);
    }
  }
  return changed;
}

std::vector<int> Run::ReleaseHandlers() {
  std::vector<int> skipped;
  if (!dag_finished() || handlers_cancelled_) return skipped;
  const int first = static_cast<int>(tasks_.size()) - workflow_->HandlerCount();
  if (first == static_cast<int>(tasks_.size())) return skipped;
  const RunStatus run = status();
  const Handler called = run == RunStatus::kSucceeded ? Handler::kOnSuccess
                         : run == RunStatus::kFailed  ? Handler::kOnFailure
                                                      : Handler::kOnCancel;
  bool first_ended = true;  // the called handler, if any, has ended
  int on_exit = -1;
  for (int i = first; i < static_cast<int>(tasks_.size()); ++i) {
    const Handler h = workflow_->tasks[i].handler;
    if (h == Handler::kOnExit) {
      on_exit = i;
      continue;
    }
    if (tasks_[i].status != TaskStatus::kPending) {
      first_ended = first_ended && IsTerminal(tasks_[i].status);
      continue;
    }
    if (h == called) {
      MakeReady(i);
      first_ended = false;
    } else {
      Finish(i, TaskStatus::kSkipped);
      skipped.push_back(i);
    }
  }
  handlers_released_ = true;
  if (on_exit >= 0 && first_ended && tasks_[on_exit].status == TaskStatus::kPending) {
    MakeReady(on_exit);
  }
  return skipped;
}

RunStatus Run::status() const {
  if (skipped_all_) return RunStatus::kSkipped;
  if (!dag_finished()) return RunStatus::kRunning;
  if (cancelled_) return RunStatus::kCancelled;
  // A task skipped by a trigger rule (a cleanup that only runs on failure)
  // does not fail the run; a failure, and what it skipped, does. Cancelled
  // tasks without a failure: a cancelled run that was resumed.
  bool cancelled = false;
  bool failed = false;
  for (int i = 0; i < static_cast<int>(tasks_.size()); ++i) {
    const TaskStatus s = tasks_[i].status;
    if (workflow_->IsHandler(i) || IsSuccess(s) || s == TaskStatus::kSkipped) continue;
    (s == TaskStatus::kCancelled ? cancelled : failed) = true;
  }
  if (failed) return RunStatus::kFailed;
  return cancelled ? RunStatus::kCancelled : RunStatus::kSucceeded;
}

bool Run::Stopping(int task) const {
  return workflow_->IsHandler(task) ? handlers_cancelled_ : cancelled_ || stopped_;
}

void Run::MakeReady(int task) {
  // Cancel() and fail_fast end every task not started, so none can become
  // ready after them.
  assert(!Stopping(task));
  tasks_[task].status = TaskStatus::kReady;
  ready_.push(task);
}

void Run::Finish(int task, TaskStatus status) {
  assert(IsTerminal(status) && !IsTerminal(tasks_[task].status));
  tasks_[task].status = status;
  --unfinished_;
  if (!workflow_->IsHandler(task)) --dag_unfinished_;
}

void Run::Settle(int task, std::vector<int>& skipped) {
  // Breadth-first over the tasks that end here: `task`, then each dependent
  // its end skips. A dependent that is not pending (ready, running or ended:
  // a rule that fires early, or one decided before) only counts the end.
  std::vector<int> ended{task};
  std::vector<int> found;
  for (std::size_t i = 0; i < ended.size(); ++i) {
    const int done = ended[i];
    const TaskStatus status = tasks_[done].status;
    const bool as_success =
        IsSuccess(status) || (IsFailure(status) && workflow_->tasks[done].continue_on_failure);
    for (int next : dag_->dependents(done)) {
      TaskState& n = tasks_[next];
      --n.up.pending;
      if (as_success) {
        ++n.up.succeeded;
      } else if (IsFailure(status)) {
        ++n.up.failed;
      } else if (status == TaskStatus::kSkipped) {
        ++n.up.skipped;
      } else {
        ++n.up.cancelled;
      }
      if (n.status != TaskStatus::kPending) continue;
      switch (EvaluateTrigger(workflow_->tasks[next].trigger, n.up)) {
        case TriggerVerdict::kWait: break;
        case TriggerVerdict::kRun: MakeReady(next); break;
        case TriggerVerdict::kSkip:
          Finish(next, TaskStatus::kSkipped);
          n.skipped = CauseThrough(next, done);
          found.push_back(next);
          ended.push_back(next);
          break;
      }
    }
  }
  std::sort(found.begin(), found.end());
  skipped.insert(skipped.end(), found.begin(), found.end());
}

SkipCause Run::CauseThrough(int task, int via) const {
  // all_success passes on the origin of a skipped dependency's skip (as a
  // failure's dependents always were); any other rule decided on its own.
  if (workflow_->tasks[task].trigger != TriggerRule::kAllSuccess) return {task, via};
  const TaskState& v = tasks_[via];
  if (v.status == TaskStatus::kSkipped && v.skipped.by >= 0) return {v.skipped.by, via};
  return {via, via};
}

std::chrono::milliseconds Run::RetryDelay(int task, int attempts_made) const {
  // Delay before attempt n+1 = min(base * 2^(n-1), max), times a factor
  // drawn from [1 - jitter, 1 + jitter].
  const auto base =
      std::chrono::duration_cast<std::chrono::milliseconds>(workflow_->config.retry_delay);
  const auto cap =
      std::chrono::duration_cast<std::chrono::milliseconds>(workflow_->config.retry_max_delay);
  auto delay = base;
  for (int i = 1; i < attempts_made && delay < cap; ++i) delay *= 2;
  delay = std::min(delay, cap);
  const double jitter = workflow_->tasks[task].retry_jitter;
  if (jitter <= 0 || !uniform_) return delay;
  const double u = std::clamp(uniform_(), 0.0, 1.0);
  const double factor = 1 - jitter + 2 * jitter * u;
  return std::chrono::milliseconds(std::llround(static_cast<double>(delay.count()) * factor));
}

}  // namespace picoflow
