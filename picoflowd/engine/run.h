#pragma once
// Run: the mutable state of one run over an immutable Dag — which tasks wait,
// which are ready (in priority order), running, waiting to retry, or done.
// Pure logic: no I/O, no clock, no libuv. RunController drives it.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <queue>
#include <string>
#include <vector>

#include "common/dag.h"
#include "common/run_status.h"
#include "common/workflow.h"
#include "picoflowd/engine/trigger_rule.h"

namespace picoflow {

/// What the caller must do after an attempt finished.
struct FinishOutcome {
  std::optional<std::chrono::milliseconds> retry_after;  ///< set: schedule attempt n+1
  std::vector<int> skipped;  ///< tasks that became kSkipped, in declaration order
  bool stop_run = false;     ///< fail_fast triggered: cancel the running attempts
  /// The task failed for good although retries were left: its
  /// retry_on_exit_codes does not list how the attempt ended.
  bool not_retried = false;
};

/// Why a task was skipped: the task at the origin of the skip (`by`), and the
/// dependency whose end decided it (`via`: `by` itself, another skipped task,
/// or -1 when fail_fast skipped it). `by` is the task itself when its own
/// trigger rule (other than all_success) can no longer be met; else the
/// failed, timed-out or cancelled task, or the task skipped by its own rule,
/// that its all_success chain of dependencies leads to. Both -1 for a task
/// not skipped by this run (Restore()).
struct SkipCause {
  int by = -1;
  int via = -1;
};

class Run {
 public:
  /// A number drawn uniformly from [0, 1], for retry_jitter.
  using Uniform = std::function<double()>;

  /// `uniform` draws each retry delay's jitter (the daemon's is random,
  /// tests pass a fixed one); without it, delays are not jittered.
  Run(std::int64_t id, std::shared_ptr<const Workflow> workflow, std::shared_ptr<const Dag> dag,
      Uniform uniform = {});

  /// Restores a task's state from the store before the run (re)starts: a
  /// terminal status, or the number of attempts already made for a task that
  /// was interrupted. A new run restores so the tasks it starts with as
  /// ended: taken as done (kReused) by a retry or an --only run, or left out
  /// (kSkipped) by an --only run. A terminal one counts for its dependents' trigger
  /// rules as when it ended: whatever order the tasks are restored in, a
  /// pending task whose rule its restored dependencies meet becomes ready,
  /// and one whose rule they can no longer meet is skipped. Returns the
  /// tasks it skipped so (a one_failed task after tasks taken as done), in
  /// declaration order; one of them restored later takes the status it is
  /// restored with.
  /// Must be called before the first PopReady().
  std::vector<int> Restore(int task, TaskStatus status, int attempts_made);

  /// Pops the highest-priority ready task (longest critical path first, then
  /// declaration order) and marks it running; nullopt if none is ready or the
  /// run's max_parallel slots are all taken.
  std::optional<int> PopReady();

  /// Records the end of the running attempt of `task` and updates dependents
  /// by their trigger rules. A task whose last attempt timed out ends
  /// kTimedOut, one whose last attempt failed kFailed. `exit_code` is the
  /// attempt's (AttemptResult::exit_code): a failed attempt is retried only
  /// if its task's retry_on_exit_codes is empty or lists it.
  FinishOutcome AttemptFinished(int task, AttemptStatus status,
                                std::optional<int> exit_code = std::nullopt);

  /// Fails a task that Restore() left to start over, for good and without
  /// another attempt (it was interrupted too often), as an attempt that
  /// fails with no retry left does. Must be called before the first
  /// PopReady().
  FinishOutcome GiveUp(int task);
  /// A task that PopReady() returned and whose `when:` condition ran instead
  /// of an attempt (docs/workflow-format.md, "Conditions") ends `status`
  /// without one: kSkipped (the condition was not met; its SkipCause is
  /// {-1, -1}: the caller says why) or kCancelled (the run was cancelled or
  /// stopped meanwhile). Its dependents follow as for any end.
  FinishOutcome EndUnstarted(int task, TaskStatus status);
  /// The workflow's `when:` was not met: every task (handlers too) ends
  /// kSkipped, and the run kSkipped. Before the first PopReady().
  void SkipAll();
  /// A task in kRetryWait becomes ready again (its delay passed).
  void RetryDue(int task);

  /// Cancels the run: every task not yet started or waiting to retry becomes
  /// kCancelled; running ones are left to the caller to cancel, and end as
  /// kCancelled when AttemptFinished reports them. Returns the tasks changed.
  /// The handlers are left to run after the DAG (on_cancel) unless
  /// `handlers` is set, or they were released already: then they are
  /// cancelled too, and none starts any more.
  std::vector<int> Cancel(bool handlers = false);

  /// The handlers (docs/workflow-format.md, "Handlers"), once every other
  /// task has ended: the one the run's status calls for (on_success,
  /// on_failure, on_cancel) becomes ready, the others end kSkipped; on_exit
  /// becomes ready once that one has ended. Returns the handlers it
  /// skipped. Does nothing before the DAG has ended, nor for a handler
  /// already released or ended (a resumed run); call it after every change.
  std::vector<int> ReleaseHandlers();

  /// Every task has ended, the handlers too.
  bool finished() const { return unfinished_ == 0; }
  /// Whether nothing new may start for `task`: the run is cancelled or
  /// stopped by fail_fast (for a handler: its own cancel).
  bool Stopping(int task) const;
  /// Every task but the handlers has ended.
  bool dag_finished() const { return dag_unfinished_ == 0; }
  /// kSkipped after SkipAll(). Else kRunning until the tasks other than the
  /// handlers have ended; then
  /// cancelled if Cancel() was called before (or the run has cancelled tasks
  /// and no failed one: a resumed cancelled run), else succeeded if every
  /// task succeeded or was skipped, else failed (a skip that a failure
  /// caused comes with that failure). The handlers never change it.
  RunStatus status() const;

  std::int64_t id() const { return id_; }
  const Workflow& workflow() const { return *workflow_; }
  const std::shared_ptr<const Workflow>& workflow_ptr() const { return workflow_; }
  const Dag& dag() const { return *dag_; }
  TaskStatus task_status(int task) const { return tasks_[task].status; }
  /// Attempts started so far for `task` (the next attempt's number is this + 1).
  int attempts(int task) const { return tasks_[task].attempts; }
  /// Why `task` is kSkipped; see SkipCause.
  SkipCause skip_cause(int task) const { return tasks_[task].skipped; }
  int running() const { return running_; }

 private:
  struct TaskState {
    TaskStatus status = TaskStatus::kPending;
    UpstreamCounts up;  ///< how its dependencies stand
    int attempts = 0;   ///< attempts started
    SkipCause skipped;  ///< set when it became kSkipped
  };

  void MakeReady(int task);

  void Finish(int task, TaskStatus status);
  /// `task` has ended: each dependent counts its end; a pending one whose
  /// trigger rule is met becomes ready, one whose rule can no longer be met
  /// is skipped (appended to `skipped`, in declaration order) and settles
  /// its own dependents in turn.
  void Settle(int task, std::vector<int>& skipped);
  /// Why `task` is skipped when the end of its dependency `via` decided it.
  SkipCause CauseThrough(int task, int via) const;
  /// A task's last attempt failed (or it may not start again): it ends
  /// `status`, then its dependents and fail_fast follow.
  void FailForGood(int task, TaskStatus status, FinishOutcome& outcome);
  /// The pause before attempt attempts_made + 1 of `task`, jittered.
  std::chrono::milliseconds RetryDelay(int task, int attempts_made) const;

  struct ByPriority {
    const Dag* dag;
    bool operator()(int a, int b) const {
      if (dag->critical_path(a) != dag->critical_path(b)) {
        return dag->critical_path(a) < dag->critical_path(b);
      }
      return a > b;
    }
  };

  std::int64_t id_;
  std::shared_ptr<const Workflow> workflow_;
  std::shared_ptr<const Dag> dag_;
  Uniform uniform_;
  std::vector<TaskState> tasks_;
  std::priority_queue<int, std::vector<int>, ByPriority> ready_;
  int running_ = 0;         ///< tasks in kRunning
  int unfinished_ = 0;      ///< tasks not in a terminal status
  int dag_unfinished_ = 0;  ///< of those, tasks that are not handlers
  bool cancelled_ = false;  ///< Cancel() before the handlers were released
  bool stopped_ = false;    ///< fail_fast triggered
  bool handlers_released_ = false;
  bool handlers_cancelled_ = false;  ///< no handler starts any more
  bool skipped_all_ = false;         ///< SkipAll()
};

}  // namespace picoflow
