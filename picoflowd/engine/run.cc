#include "picoflowd/engine/run.h"

#include <algorithm>
#include <cassert>
#include <utility>

namespace picoflow {

Run::Run(std::int64_t id, std::shared_ptr<const Workflow> workflow, std::shared_ptr<const Dag> dag)
    : id_(id),
      workflow_(std::move(workflow)),
      dag_(std::move(dag)),
      tasks_(dag_->size()),
      ready_(ByPriority{dag_.get()}),
      unfinished_(dag_->size()) {
  for (int i = 0; i < dag_->size(); ++i) {
    tasks_[i].waiting = static_cast<int>(dag_->deps(i).size());
  }
  for (int root : dag_->roots()) MakeReady(root);
}

void Run::Restore(int task, TaskStatus status, int attempts_made) {
  assert(running_ == 0);
  TaskState& t = tasks_[task];
  t.attempts = attempts_made;
  if (!IsTerminal(status)) return;  // stays pending/ready; resumes normally
  // A restored task may already sit in ready_ (a root); PopReady() drops
  // entries whose task is no longer kReady.
  if (!IsTerminal(t.status)) --unfinished_;
  t.status = status;
  if (status == TaskStatus::kSucceeded ||
      (IsFailure(status) && workflow_->tasks[task].continue_on_failure)) {
    ReleaseDependents(task);
  }
}

std::optional<int> Run::PopReady() {
  if (cancelled_ || stopped_) return std::nullopt;
  while (!ready_.empty() && running_ < workflow_->config.max_parallel) {
    const int task = ready_.top();
    ready_.pop();
    // Restore() may have finished a task that was queued as ready.
    if (tasks_[task].status != TaskStatus::kReady) continue;
    tasks_[task].status = TaskStatus::kRunning;
    ++tasks_[task].attempts;
    ++running_;
    return task;
  }
  return std::nullopt;
}

FinishOutcome Run::AttemptFinished(int task, AttemptStatus status) {
  TaskState& t = tasks_[task];
  assert(t.status == TaskStatus::kRunning);
  --running_;
  FinishOutcome outcome;
  if (status == AttemptStatus::kSucceeded) {
    Finish(task, TaskStatus::kSucceeded);
    ReleaseDependents(task);
    return outcome;
  }
  if (status == AttemptStatus::kCancelled || cancelled_ || stopped_) {
    Finish(task, TaskStatus::kCancelled);
    SkipDependents(task, outcome.skipped);
    return outcome;
  }
  const Task& spec = workflow_->tasks[task];
  if (t.attempts <= spec.retry) {
    t.status = TaskStatus::kRetryWait;
    outcome.retry_after = RetryDelay(t.attempts);
    return outcome;
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
  if (workflow_->tasks[task].continue_on_failure) {
    ReleaseDependents(task);
    return;
  }
  SkipDependents(task, outcome.skipped);
  if (workflow_->config.fail_fast) {
    stopped_ = true;
    outcome.stop_run = true;
    // Nothing new starts; what has not started yet will never run.
    for (int i : dag_->topo_order()) {
      TaskStatus s = tasks_[i].status;
      if (s == TaskStatus::kPending || s == TaskStatus::kReady || s == TaskStatus::kRetryWait) {
        Finish(i, TaskStatus::kSkipped);
        tasks_[i].skipped = {task, -1};
        outcome.skipped.push_back(i);
      }
    }
  }
}

void Run::RetryDue(int task) {
  if (tasks_[task].status != TaskStatus::kRetryWait) return;  // cancelled meanwhile
  MakeReady(task);
}

std::vector<int> Run::Cancel() {
  cancelled_ = true;
  std::vector<int> changed;
  for (int i : dag_->topo_order()) {
    const TaskStatus s = tasks_[i].status;
    if (s == TaskStatus::kPending || s == TaskStatus::kReady || s == TaskStatus::kRetryWait) {
      Finish(i, TaskStatus::kCancelled);
      changed.push_back(i);
    }
  }
  return changed;
}

RunStatus Run::status() const {
  if (!finished()) return RunStatus::kRunning;
  if (cancelled_) return RunStatus::kCancelled;
  for (const TaskState& t : tasks_) {
    if (t.status != TaskStatus::kSucceeded) return RunStatus::kFailed;
  }
  return RunStatus::kSucceeded;
}

void Run::MakeReady(int task) {
  tasks_[task].status = TaskStatus::kReady;
  ready_.push(task);
}

void Run::Finish(int task, TaskStatus status) {
  assert(IsTerminal(status) && !IsTerminal(tasks_[task].status));
  tasks_[task].status = status;
  --unfinished_;
}

void Run::ReleaseDependents(int task) {
  for (int next : dag_->dependents(task)) {
    TaskState& n = tasks_[next];
    if (--n.waiting == 0 && n.status == TaskStatus::kPending) MakeReady(next);
  }
}

void Run::SkipDependents(int task, std::vector<int>& skipped) {
  // Depth-first over dependents; every pending dependent (transitively) is
  // skipped. A dependent cannot have started: it waits for `task`. Each
  // entry is a dependent and the task it was reached through.
  std::vector<std::pair<int, int>> stack;
  for (int d : dag_->dependents(task)) stack.emplace_back(d, task);
  std::vector<int> found;
  while (!stack.empty()) {
    const auto [next, via] = stack.back();
    stack.pop_back();
    if (tasks_[next].status != TaskStatus::kPending) continue;
    Finish(next, TaskStatus::kSkipped);
    tasks_[next].skipped = {task, via};
    found.push_back(next);
    for (int d : dag_->dependents(next)) stack.emplace_back(d, next);
  }
  std::sort(found.begin(), found.end());
  skipped.insert(skipped.end(), found.begin(), found.end());
}

std::chrono::milliseconds Run::RetryDelay(int attempts_made) const {
  // Delay before attempt n+1 = min(base * 2^(n-1), max).
  const auto base =
      std::chrono::duration_cast<std::chrono::milliseconds>(workflow_->config.retry_delay);
  const auto cap =
      std::chrono::duration_cast<std::chrono::milliseconds>(workflow_->config.retry_max_delay);
  auto delay = base;
  for (int i = 1; i < attempts_made && delay < cap; ++i) delay *= 2;
  return std::min(delay, cap);
}

}  // namespace picoflow
