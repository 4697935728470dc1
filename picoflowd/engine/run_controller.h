#pragma once
// RunController: drives one Run on the loop — starts ready tasks through the
// executors while slots are free, records every transition in the store,
// schedules retries, caps and batches output, and tells the observers.

#include <uv.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "picoflowd/engine/run.h"
#include "picoflowd/engine/run_observer.h"
#include "picoflowd/util/logging.h"
#include "picoflowd/util/uv_handle.h"

namespace picoflow {

struct AttemptSpec;
class Executor;
class RunObserver;
class Store;
struct TaskRecord;

/// The error of a run cancelled because the daemon stopped (on_shutdown:
/// cancel, docs/operations.md).
inline constexpr char kStoppedReason[] = "cancelled: picoflowd stopped";

/// The services every controller uses; owned and filled by the daemon
/// (Daemon::Open).
struct EngineContext {
  uv_loop_t* loop = nullptr;
  Store* store = nullptr;
  /// The executor of each task type, indexed by TaskType (kTaskTypeNames).
  std::array<Executor*, kTaskTypeCount> executors{};
  std::uint64_t output_cap = 1 << 20;  ///< bytes kept per attempt and stream
  /// Told of every task event and output chunk (by the controllers) and of
  /// every run's end (by the RunManager), each after the store.
  std::vector<RunObserver*> observers;
  /// Commits the store's open group of writes now (GroupCommit::CommitNow):
  /// attempts are committed before their tasks start. Empty when every
  /// write commits on its own.
  std::function<void()> commit;
};

class RunController {
 public:
  /// `on_finished` is called once, when the run has ended and its end is
  /// stored: the owner (RunManager) tells the observers and destroys the
  /// controller later, never from inside this call.
  /// `params`: the run's resolved param values (common/workflow_params.h).
  RunController(EngineContext& ctx, std::unique_ptr<Run> run, ParamValues params,
                std::function<void(RunStatus)> on_finished);
  ~RunController();
  RunController(const RunController&) = delete;
  RunController& operator=(const RunController&) = delete;

  /// Before Start(): the event that started the run (its tasks get
  /// TriggerEnv of it).
  void SetEvent(TriggerEvent event) { event_ = std::move(event); }
  /// Before Start() of a resumed run: what the store knew of a task, so its
  /// record keeps the first start time, last exit code, reason and outputs.
  void RestoreTask(int task, const TaskRecord& record);
  /// Before Start() of a resumed run, after RestoreTask(): fails a task
  /// that may not start again (interrupted max_interruptions times) for good
  /// with `error`, and stores it with what its failure skipped.
  void GiveUp(int task, const std::string& error);
  /// Before Start() of a new run, for a task its Run has as ended already
  /// (Run::Restore): kReused, taken as done by a retry or an --only run, or
  /// kSkipped, left out by an --only run. Keeps `outputs` for its dependents
  /// and `why` as its reason, and stores it so.
  void Preset(int task, const TaskOutputs& outputs, const std::string& why);
  /// Before Start() of a new run, after Preset(): stores `task`, which the
  /// end of a preset task skipped (Run::Restore: its trigger rule can no
  /// longer be met), with why.
  void PresetSkipped(int task);
  /// Records the run as running and starts its ready tasks. Until then the
  /// run waits (RunManager::QueueRun): Cancel() ends it without a start,
  /// Interrupt() leaves it waiting in the store.
  void Start();
  /// Cancels the run: nothing new starts; running attempts get SIGTERM, then
  /// SIGKILL after their grace period; the run ends `cancelled`, `reason`
  /// (why it was cancelled) its error and that of the tasks it cancels.
  /// Idempotent: the first call's reason stays, and so does fail_fast's if
  /// it already stops the run.
  /// The handlers (docs/workflow-format.md, "Handlers") run after the
  /// cancelled DAG (on_cancel, on_exit), unless `handlers` is set: then they
  /// are cancelled too. Once they run, Cancel() stops them (the run's status
  /// stays what the DAG made it).
  void Cancel(const std::string& reason = kCancelledOnRequest, bool handlers = false);
  /// The reason of a Cancel() that run.cancel asked for.
  static constexpr const char* kCancelledOnRequest = "cancelled on request (run.cancel)";
  /// Stops the run for a daemon stop it survives (docs/architecture.md,
  /// "Crash recovery"): nothing new starts, running attempts get SIGTERM then
  /// SIGKILL after their grace period and are recorded `interrupted`; the run
  /// stays unfinished in the store and resumes at the next start. An attempt
  /// that ends on its own meanwhile is recorded as usual (the run may even
  /// end). `stopped` is called once nothing of the run runs any more, at once
  /// if nothing does; not if the run ended (on_finished was called). A run
  /// already cancelled or interrupted is left to end as it does.
  void Interrupt(std::function<void()> stopped);
  /// Hard stop for shutdown past its grace: kills what still runs at once and
  /// records the run cancelled (after Interrupt: the attempts interrupted,
  /// the run left to resume). Nothing is reported to observers afterwards.
  void Abandon();

  /// Writes every attempt's batched output to the store now.
  void FlushOutput();

  const Run& run() const { return *run_; }
  bool finished() const { return finished_; }
  /// Start() was called: the run is no longer waiting for a place.
  bool started() const { return started_; }
  /// Attempts currently running.
  int active_attempts() const { return static_cast<int>(slots_.size()); }

 private:
  class Slot;
  struct RetryTimer;
  class Condition;
  /// The index of the workflow's own `when:` in conditions_.
  static constexpr int kRunCondition = -1;

  void Pump();
  /// Run::ReleaseHandlers, and the store rows of the handlers it skipped.
  void ReleaseHandlers();
  /// Pump's two halves: the attempt's slot and `starting` record, then,
  /// once that is committed, its start through the executor.
  void BeginTask(int task);
  void LaunchTask(int task);
  /// Runs the `when:` of `task` (kRunCondition: of the workflow) before
  /// it starts (docs/workflow-format.md, "Conditions").
  void StartCondition(int task);
  void ConditionEnded(int task, const AttemptResult& result);
  /// Whether anything of the run still runs: attempts or conditions.
  bool Busy() const { return !slots_.empty() || !conditions_.empty(); }
  void AttemptEnded(Slot& slot, const AttemptResult& raw);
  /// Logs each of the attempt's secrets too short to be masked.
  void WarnShortSecrets(int task, int attempt, const EnvList& secrets) const;
  /// Keeps why `task` (whose attempt ended with `result`) and the tasks
  /// its end skipped ended as they did, for their store rows.
  void NoteReasons(int task, const AttemptResult& result, const FinishOutcome& outcome);
  /// The store row of a task as the run has it now.
  TaskRecord TaskRecordOf(int task) const;
  /// Writes one task's state.
  void RecordTask(int task);
  /// Writes an attempt's end and `tasks` in one transaction (or the tasks
  /// alone when the attempt could not be stored).
  void StoreAttemptEnd(const Slot& slot, const AttemptResult& result,
                       const std::vector<TaskRecord>& tasks);
  /// Tells the observers of `event`, with the task's status as the run has it.
  void NotifyTask(int task, int attempt, TaskEventKind event);
  void ArmRetry(int task, std::chrono::milliseconds delay);
  void RetryDue(int task);
  void OutputDirty();
  void FinishIfDone();
  /// After Interrupt: once no attempt runs, tells the owner (`stopped_`).
  void StopIfIdle();
  /// Stores the end of an attempt stopped by Interrupt or Abandon as `interrupted`.
  void StoreInterrupted(const Slot& slot, const AttemptResult& result);
  /// Log fields of this run, and of a task (>= 0) and attempt (> 0).
  LogFields Fields(int task = -1, int attempt = 0, std::string_view event = {}) const;

  /// What a task's store row keeps across attempts.
  struct TaskTimes {
    std::optional<std::chrono::system_clock::time_point> started_at;
    std::optional<int> exit_code;
    std::string error;    ///< why it ended as it did (task_reason.h)
    TaskOutputs outputs;  ///< once it succeeded
  };
  /// What a task's attempt gets on top of its own env: the run's params,
  /// and the outputs of every task it depends on, directly or not (a
  /// handler: the run's end and every output; kRunCondition: the params).
  std::vector<std::pair<std::string, std::string>> RunEnv(int task) const;
  /// Attempt `attempt` of `spec` run for `task` (its own spec, or the shell
  /// task a condition runs as, attempt 0), with RunEnv(task).
  AttemptSpec AttemptSpecFor(int task, const Task& spec, int attempt) const;

  EngineContext& ctx_;
  std::unique_ptr<Run> run_;
  ParamValues params_;
  TriggerEvent event_;
  std::function<void(RunStatus)> on_finished_;
  std::vector<TaskTimes> task_times_;
  std::map<int, std::unique_ptr<Slot>> slots_;  ///< running attempts by task
  std::map<int, std::unique_ptr<RetryTimer>> retries_;
  std::map<int, std::unique_ptr<Condition>> conditions_;  ///< running `when:` by task
  UvHandle<uv_timer_t> flush_timer_;
  bool flush_armed_ = false;
  bool finished_ = false;
  bool started_ = false;
  bool abandoned_ = false;
  bool cancelling_ = false;          ///< Cancel() was called
  bool handlers_cancelled_ = false;  ///< Cancel() stopped the handlers too
  bool interrupting_ = false;        ///< Interrupt() was called
  std::function<void()> stopped_;    ///< Interrupt's callback; empty once called
  /// Why the run stops starting tasks: Cancel()'s reason, or fail_fast's
  /// (the first one stays). The error of the tasks it cancels, and of the
  /// run if it ends cancelled.
  std::string stop_reason_;
  int pumping_ = 0;  ///< re-entrancy guard: Pump() from inside an attempt's start
};

}  // namespace picoflow
