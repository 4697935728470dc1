#pragma once
// RunManager: the runs alive in the daemon. Creates runs (recorded in the
// store first), owns their controllers until they end, keeps the runs that
// wait for a place (max_active_runs) until they are started, tells the
// observers when a run ended, resumes runs a crash left behind, and stops
// everything at shutdown.

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/run_selection.h"
#include "common/workflow.h"
#include "picoflowd/engine/run_controller.h"
#include "picoflowd/store/store.h"
#include "picoflowd/util/uv_handle.h"

namespace picoflow {

struct WorkflowVersion;

/// What a new run is started with.
struct RunRequest {
  RunTrigger trigger = RunTrigger::kManual;
  std::optional<TimePoint> scheduled_at;  ///< the cron time of a cron or catchup fire
  /// The param values given (docs/workflow-format.md, "Parameters"):
  /// StartRun checks them and adds the defaults.
  ParamValues params;
  /// If set, called with the new id after the run is recorded and before its
  /// first task starts (to subscribe to its events).
  std::function<void(std::int64_t)> on_created;
  /// A queued run (QueueRun): if set, called with its id when it starts,
  /// before its first task does.
  std::function<void(std::int64_t)> on_started;
  /// A retry (run.retry): the run it retries, and the tasks it takes as done
  /// (TaskStatus::kReused) with the outputs they had there (PlanRetry).
  std::optional<std::int64_t> retry_of;
  std::vector<std::pair<std::string, TaskOutputs>> reuse;
  /// A run of part of the workflow (run.start `only`; common/run_selection.h):
  /// the tasks outside the selection that it needs are taken as done
  /// (kReused: as `reuse` has them, else with the outputs of their latest
  /// success in the workflow's history), the others left out (kSkipped).
  /// Recorded with the run.
  std::optional<RunSelection> only;
  /// A run started by an event (docs/triggers.md) or the fleet: what
  /// started it, recorded with the run and given to its tasks (TriggerEnv).
  TriggerEvent event;
};

class RunManager {
 public:
  /// `ctx` must outlive the manager.
  explicit RunManager(EngineContext& ctx);
  ~RunManager();
  RunManager(const RunManager&) = delete;
  RunManager& operator=(const RunManager&) = delete;

  /// Records and starts a run of `version`. Returns the run id, or an
  /// Error if its params or its `only` are not valid (kInvalid, every
  /// problem in the message) or the store refused; nothing is started then.
  Result<std::int64_t> StartRun(std::shared_ptr<const WorkflowVersion> version,
                                const RunRequest& request);
  /// The problems StartRun and QueueRun would refuse `request` for (its
  /// params, its `only`), all in one kInvalid; nothing is recorded.
  static Status Check(const WorkflowVersion& version, const RunRequest& request);
  /// Records a run of `version` as pending with `reason` and keeps it
  /// waiting, in order, until StartWaiting() (docs/scheduling.md, "Manual and
  /// scheduled runs"); a daemon restart finds it waiting again. Returns the
  /// run id, or an Error as StartRun.
  Result<std::int64_t> QueueRun(std::shared_ptr<const WorkflowVersion> version,
                                const RunRequest& request, const std::string& reason);
  /// A run waiting for a place: its id, and when it was queued.
  struct Waiting {
    std::int64_t id = 0;
    std::string workflow;
    TimePoint queued_at;
    std::function<void(std::int64_t)> on_started;
    /// An --only run's tasks taken as done with their latest success's
    /// outputs: looked up again when it starts, as runs ahead of it may
    /// have succeeded since (docs/scheduling.md, "Manual and scheduled runs").
    std::vector<int> taken_as_done;
    std::string only;  ///< its selection, as its reasons say it
    /// Started by an event of `triggers:`: it waits under EventLimits.
    bool event = false;
  };
  /// The first run of `workflow` that waits, or null.
  const Waiting* FirstWaiting(const std::string& workflow) const;
  /// The ids of the runs of `workflow` that wait, in order.
  std::vector<std::int64_t> WaitingIds(const std::string& workflow) const;
  /// The workflows that have runs waiting.
  std::vector<std::string> WaitingWorkflows() const;
  /// Starts a waiting run now. Returns kNotFound if it does not wait.
  Status StartWaiting(std::int64_t run_id);
  /// The workflow the run of a live (or waiting) controller belongs to, or
  /// "" if there is none.
  std::string WorkflowOf(std::int64_t run_id) const;

  /// Crash recovery: for each run the store has left pending/running, kills
  /// what is left of its attempts' process groups (if still the same group),
  /// records those attempts `interrupted`, and resumes the run without
  /// repeating finished tasks; a run that never started (it was queued)
  /// waits again. Returns how many runs were resumed.
  int RecoverUnfinished();

  /// Cancels a live run, or a waiting one (it ends cancelled without
  /// starting, and without calling its handlers). Returns kNotFound if it
  /// is neither.
  Status Cancel(std::int64_t run_id);
  /// Cancels every run for good (shutdown with on_shutdown: cancel), each
  /// with the error kStoppedReason, the waiting ones first; `done` runs once
  /// none is left.
  void CancelAll(std::function<void()> done);
  /// Interrupts every run (shutdown with on_shutdown: interrupt,
  /// RunController::Interrupt): their running attempts are stopped and
  /// recorded `interrupted`, the runs stay unfinished in the store for
  /// RecoverUnfinished at the next start, the waiting ones waiting. `done`
  /// runs once nothing runs.
  void InterruptAll(std::function<void()> done);
  /// Hard stop: kills what still runs; records those runs cancelled, or
  /// after InterruptAll their attempts interrupted.
  void AbandonAll();

  /// The live (or waiting) controller of a run, or null.
  const RunController* Find(std::int64_t run_id) const;
  RunController* FindMutable(std::int64_t run_id);
  /// Live runs by id, the waiting ones (not started()) included.
  const std::map<std::int64_t, std::unique_ptr<RunController>>& runs() const { return runs_; }
  /// Runs started and not yet destroyed: runs().size() less those waiting.
  std::size_t active() const { return runs_.size() - waiting_.size(); }
  /// Live runs of one workflow (started, not ended).
  int CountRunning(const std::string& workflow) const;
  /// The ids of the live runs of one workflow (started, not ended), in order.
  std::vector<std::int64_t> RunningIds(const std::string& workflow) const;
  /// Attempts running across all runs.
  int ActiveAttempts() const;

  /// Called (loop thread) with the number of live runs whenever a run was
  /// added or removed (systemd STATUS= line).
  void SetOnCountChanged(std::function<void(std::size_t live)> hook) {
    on_count_changed_ = std::move(hook);
  }

 private:
  /// A task a new run starts with as ended (Run::Restore before its start).
  struct PresetTask {
    int task = 0;
    TaskStatus status{};  ///< kReused or kSkipped
    TaskOutputs outputs;  ///< what a kReused one passes on
    std::string why;      ///< its reason
    bool latest = false;  ///< kReused with its latest success's outputs (TakenAsDone)
  };
  /// The tasks a new run of `w` starts with as ended: those a retry takes as
  /// done (request.reuse) and, by their `roles` in an --only run, those it
  /// takes as done or leaves out (RunRequest::only). Returns an Error if
  /// the store cannot say what a task taken as done passed on.
  Result<std::vector<PresetTask>> Presets(const Workflow& w, const std::vector<TaskRole>& roles,
                                          const RunRequest& request);
  /// A task an --only run takes as done (`only`: its selection in words),
  /// with the outputs of the task's latest stored success, if any.
  Result<PresetTask> TakenAsDone(const Workflow& w, int task, const std::string& only);
  /// Makes the controller of `run` and keeps it as live.
  RunController& Add(std::unique_ptr<Run> run, ParamValues params);
  /// Records a run of `version` (pending, with `reason`) and makes its
  /// controller, its reused tasks stored; StartRun starts it, QueueRun keeps
  /// it waiting.
  /// `latest`, if given, gets the presets TakenAsDone made.
  Result<RunController*> Create(std::shared_ptr<const WorkflowVersion> version,
                                const RunRequest& request, const std::string& reason,
                                std::vector<int>* latest = nullptr);
  /// A controller's run ended (its end is stored): the observers hear of it
  /// (OnRunFinished, the one way a run's end travels), and the controller is
  /// destroyed on the next loop turn.
  void RunFinished(std::int64_t run_id, RunStatus status);
  void DestroyFinished();
  /// Calls all_done_ (once) if no run is left.
  void DoneIfEmpty();
  Status Resume(const UnfinishedRun& unfinished);
  /// A Run of `version`, its retry jitter drawn from random_.
  std::unique_ptr<Run> MakeRun(std::int64_t id, const WorkflowVersion& version);

  EngineContext& ctx_;
  std::map<std::int64_t, std::unique_ptr<RunController>> runs_;
  std::deque<Waiting> waiting_;         ///< runs not started yet, in the order they were queued
  std::vector<std::int64_t> finished_;  ///< ended runs whose controller is destroyed next turn
  UvHandle<uv_timer_t> destroy_timer_;  ///< zero-delay timer: destroy outside callbacks
  std::function<void()> all_done_;
  std::function<void(std::size_t)> on_count_changed_;
  std::mt19937_64 random_{std::random_device{}()};  ///< retry_jitter's draws, for every run
};

}  // namespace picoflow
