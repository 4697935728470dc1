#include "picoflowd/engine/run_controller.h"

#include <fmt/format.h>

#include "common/secret_masker.h"
#include "common/secrets.h"
#include "common/task_outputs.h"
#include "common/workflow_params.h"
#include "picoflowd/engine/output_capture.h"
#include "picoflowd/engine/run_observer.h"
#include "picoflowd/engine/task_reason.h"
#include "picoflowd/exec/executor.h"
#include "picoflowd/exec/executor_unavailable.h"
#include "picoflowd/store/store.h"
#include "picoflowd/util/logging.h"

namespace picoflow {
namespace {

using Clock = std::chrono::system_clock;
using std::chrono::milliseconds;

// Output is written to the store when a stream's batch reaches this size, or
// kFlushDelay after the first unwritten byte, whichever comes first.
constexpr std::size_t kFlushBytes = 64 * 1024;
constexpr milliseconds kFlushDelay{250};

milliseconds Since(Clock::time_point start) {
  return std::chrono::duration_cast<milliseconds>(Clock::now() - start);
}

}  // namespace

/// One running attempt: the executor's sink, the output captures, the ids.
class RunController::Slot final : public AttemptSink {
 public:
  Slot(RunController& owner, int task, int number)
      : owner_(owner),
        task_(task),
        number_(number),
        stdout_(owner.ctx_.output_cap),
        stderr_(owner.ctx_.output_cap) {}

  /// A local process runs: its identity goes with the next commit.
  void OnStarted(const ProcessIdentity& identity) override { NoteStarted(&identity); }

  /// Stores the attempt as `starting`, before anything runs.
  void Begin() {
    const Run& run = *owner_.run_;
    auto key = owner_.ctx_.store->BeginAttempt(run.id(), run.workflow().tasks[task_].name, number_,
                                               started_);
    if (key.ok()) {
      key_ = *key;
    } else {
      LogError(Fields(), key.error().message);
    }
  }

  /// The attempt runs (once), as `process` if it is one.
  void NoteStarted(const ProcessIdentity* process) {
    if (noted_) return;
    noted_ = true;
    if (key_) owner_.ctx_.store->NoteAttemptStarted(*key_, process);
  }

  /// The attempt's secret values: from now on they are masked in its
  /// output, error and outputs (docs/workflow-format.md, "Secrets").
  void SetSecrets(const EnvList& secrets) {
    std::vector<std::string> values;
    for (const auto& [_, value] : secrets) values.push_back(value);
    for (auto& mask : masks_) mask = std::make_unique<SecretMasker>(values);
    if (masks_[0]->empty()) masks_ = {};
  }

  // Every chunk of output passes here first: what reaches the capture (and
  // so the store, the followers and the observers) is masked. Each stream
  // has its own masker: a value is never pieced together across streams.
  void OnOutput(OutputStream stream, std::string_view data) override {
    SecretMasker* mask = masks_[static_cast<std::size_t>(stream)].get();
    if (mask == nullptr) return Keep(stream, data);
    Keep(stream, mask->Add(data));
  }

  /// The end of the attempt's output: what the maskers held back.
  void FinishOutput() {
    for (OutputStream stream : {OutputStream::kStdout, OutputStream::kStderr}) {
      if (SecretMasker* mask = masks_[static_cast<std::size_t>(stream)].get()) {
        Keep(stream, mask->Finish());
      }
    }
  }

  /// `result` with the secret values masked in its error and outputs;
  /// nullopt if the attempt has no secret to mask.
  std::optional<AttemptResult> Masked(const AttemptResult& result) const {
    const SecretMasker* mask = masks_[0].get();
    if (mask == nullptr) return std::nullopt;
    AttemptResult out = result;
    out.error = mask->MaskAll(out.error);
    for (auto& [_, value] : out.outputs) value = mask->MaskAll(value);
    return out;
  }

  void Keep(OutputStream stream, std::string_view data) {
    if (data.empty()) return;
    OutputCapture& capture = stream == OutputStream::kStdout ? stdout_ : stderr_;
    const std::string_view kept = capture.Add(data);
    if (kept.empty()) return;
    const Run& run = *owner_.run_;
    OutputEvent event{run.id(), run.workflow().tasks[task_].name, number_, stream, kept};
    for (RunObserver* o : owner_.ctx_.observers) o->OnOutput(event);
    if (capture.BatchFull(kFlushBytes)) {
      Flush();
    } else {
      owner_.OutputDirty();
    }
  }

  void OnFinished(const AttemptResult& result) override {
    owner_.AttemptEnded(*this, result);  // destroys *this: nothing after
  }

  /// Writes what is batched to the store.
  void Flush() {
    for (auto [stream, capture] :
         {std::pair{OutputStream::kStdout, &stdout_}, std::pair{OutputStream::kStderr, &stderr_}}) {
      if (!capture->has_batch()) continue;
      const std::string batch = capture->TakeBatch();
      if (!key_) continue;
      if (Status s = owner_.ctx_.store->AppendOutput(*key_, stream, batch); !s.ok()) {
        LogError(Fields(), s.error().message);
      }
    }
  }

  OutputCounts Counts() const {
    return {stdout_.total(), stderr_.total(), stdout_.dropped(), stderr_.dropped()};
  }

  LogFields Fields() const { return owner_.Fields(task_, number_); }

  RunController& owner_;
  const int task_;
  const int number_;               ///< the attempt's 1-based number
  std::optional<AttemptKey> key_;  ///< its store row once recorded (never if the store failed)
  bool noted_ = false;             ///< NoteStarted ran
  const Clock::time_point started_ = Clock::now();
  OutputCapture stdout_;
  OutputCapture stderr_;
  /// The maskers of stdout and stderr (indexed by OutputStream); null when
  /// the attempt has no secret of kMinMaskedSecret bytes or more.
  std::array<std::unique_ptr<SecretMasker>, 2> masks_;
  std::unique_ptr<Attempt> attempt_;  ///< the executor's running attempt
};

/// A task waiting out its retry delay.
struct RunController::RetryTimer {
  RetryTimer(RunController* owner, int task) : owner(owner), task(task), timer(this) {}
  void Fire() { owner->RetryDue(task); }  // destroys *this
  RunController* owner;
  int task;
  UvHandle<uv_timer_t> timer;
};

/// A `when:` condition running: its process's end decides whether its task
/// (or the run) starts. Its output is not kept.
class RunController::Condition final : public AttemptSink {
 public:
  Condition(RunController& owner, int task, Task spec)
      : owner_(owner), task_(task), spec_(std::move(spec)) {}
  void OnStarted(const ProcessIdentity&) override {}
  void OnOutput(OutputStream, std::string_view) override {}
  void OnFinished(const AttemptResult& result) override {
    owner_.ConditionEnded(task_, result);  // destroys *this: nothing after
  }

  RunController& owner_;
  const int task_;
  const Task spec_;  ///< what the executor runs: the task's name, the condition as a shell task
  std::unique_ptr<Attempt> attempt_;
};

RunController::RunController(EngineContext& ctx, std::unique_ptr<Run> run, ParamValues params,
                             std::function<void(RunStatus)> on_finished)
    : ctx_(ctx),
      run_(std::move(run)),
      params_(std::move(params)),
      on_finished_(std::move(on_finished)),
      task_times_(run_->dag().size()),
      flush_timer_(this) {
  if (uv_timer_init(ctx_.loop, flush_timer_.get()) == 0) flush_timer_.MarkInitialized();
}

RunController::~RunController() {
  // Normally empty by now; at a hard stop the attempts' destructors SIGKILL
  // their process groups.
  conditions_.clear();
  slots_.clear();
  retries_.clear();
}

void RunController::RestoreTask(int task, const TaskRecord& record) {
  task_times_[task] = {record.started_at, record.exit_code, record.error, record.outputs};
}

void RunController::Preset(int task, const TaskOutputs& outputs, const std::string& why) {
  task_times_[task].outputs = outputs;
  task_times_[task].error = why;
  RecordTask(task);
}

void RunController::PresetSkipped(int task) {
  task_times_[task].error = SkipReason(*run_, task);
  RecordTask(task);
}

void RunController::GiveUp(int task, const std::string& error) {
  const FinishOutcome outcome = run_->GiveUp(task);
  NoteReasons(task, FailedResult(error), outcome);
  LogError(Fields(task, 0, "task.interrupted_too_often"), error);
  // No attempt ended: the attempt metrics and feeds are not told (the
  // interruptions were, as they were recorded).
  RecordTask(task);
  for (int skipped : outcome.skipped) RecordTask(skipped);
  for (int skipped : outcome.skipped) {
    NotifyTask(skipped, run_->attempts(skipped), TaskEventKind::kSkipped);
  }
}

void RunController::Start() {
  started_ = true;
  if (Status s = ctx_.store->SetRunStatus(run_->id(), RunStatus::kRunning, Clock::now()); !s.ok()) {
    LogError(Fields(), s.error().message);
  }
  LogInfo(Fields(-1, 0, "run.started"), "run started");
  // The workflow's `when:` runs once, before any task: not again for a run
  // resumed after its first task started.
  bool fresh = true;
  for (int i = 0; i < run_->dag().size(); ++i) {
    fresh = fresh && run_->task_status(i) != TaskStatus::kRunning && run_->attempts(i) == 0 &&
            !IsTerminal(run_->task_status(i));
  }
  // A run whose `when:` skips it has not started for the observers: they
  // hear of its start once the condition is met.
  if (run_->workflow().when && fresh) {
    StartCondition(kRunCondition);
    return;
  }
  for (RunObserver* o : ctx_.observers) o->OnRunStarted(run_->id(), run_->workflow(), !fresh);
  Pump();
  FinishIfDone();  // a resumed run may have nothing left to do
}

LogFields RunController::Fields(int task, int attempt, std::string_view event) const {
  LogFields f;
  f.event = event;
  f.workflow = run_->workflow().name;
  f.run = run_->id();
  if (task >= 0) f.task = run_->workflow().tasks[task].name;
  f.attempt = attempt;
  return f;
}

void RunController::Pump() {
  if (pumping_ > 0 || interrupting_) return;
  ++pumping_;
  ReleaseHandlers();
  // Every attempt about to start is committed as `starting` before any of
  // them is spawned, in one commit: no task runs without its record (a crash
  // after the spawn leaves an attempt to mark interrupted, and the task's
  // processes carry their mark; docs/architecture.md, "Crash recovery").
  std::vector<int> starting;
  while (auto task = run_->PopReady()) {
    // A `when:` runs before the first attempt (a resumed task interrupted
    // in an attempt has passed it).
    if (run_->workflow().tasks[*task].when && run_->attempts(*task) == 1) {
      StartCondition(*task);
      continue;
    }
    BeginTask(*task);
    starting.push_back(*task);
  }
  if (!starting.empty() && ctx_.commit) ctx_.commit();
  for (int task : starting) LaunchTask(task);
  --pumping_;
}

void RunController::ReleaseHandlers() {
  const std::vector<int> skipped = run_->ReleaseHandlers();
  if (skipped.empty()) return;
  const RunStatus status = run_->status();
  const std::string why =
      std::string("not called: the run ") +
      (status == RunStatus::kCancelled ? "was cancelled" : RunStatusName(status));
  for (int task : skipped) {
    task_times_[task].error = why;
    RecordTask(task);
  }
  for (int task : skipped) NotifyTask(task, run_->attempts(task), TaskEventKind::kSkipped);
}

void RunController::BeginTask(int task) {
  if (!task_times_[task].started_at) task_times_[task].started_at = Clock::now();
  auto slot = std::make_unique<Slot>(*this, task, run_->attempts(task));
  slot->Begin();
  slots_[task] = std::move(slot);
}

void RunController::StartCondition(int task) {
  const Workflow& workflow = run_->workflow();
  const Task* of = task == kRunCondition ? nullptr : &workflow.tasks[task];
  Task spec;
  spec.name = of ? of->name : "when";
  spec.type = TaskType::kShell;
  spec.timeout = of ? of->timeout : workflow.config.timeout_default;
  ShellConfig shell = of ? *of->when : *workflow.when;
  if (of && of->type == TaskType::kShell) {
    shell.workdir = std::get<ShellConfig>(of->config).workdir;  // where the task runs
  }
  spec.config = std::move(shell);
  auto condition = std::make_unique<Condition>(*this, task, std::move(spec));
  Condition& ref = *condition;
  conditions_[task] = std::move(condition);

  LogInfo(Fields(task, 0, "task.condition"), "checking its condition (when:)");
  ref.attempt_ = ctx_.executors[static_cast<std::size_t>(TaskType::kShell)]->Start(
      AttemptSpecFor(task, ref.spec_, /*attempt=*/0), ref);
}

void RunController::ConditionEnded(int task, const AttemptResult& result) {
  auto node = conditions_.extract(task);  // alive to the end of this function
  const bool met = result.status == AttemptStatus::kSucceeded;
  std::string why = "condition (when:) ";
  if (result.exit_code) {
    why += "exited " + std::to_string(*result.exit_code);
  } else {
    why += AttemptReason(result);
  }
  LogInfo(Fields(task, 0, "task.condition"), met ? "condition met" : why);
  if (abandoned_) return;
  if (interrupting_) {
    // Nothing of the task was stored: it checks its condition again when
    // the run resumes.
    StopIfIdle();
    return;
  }
  if (task == kRunCondition) {
    if (cancelling_) {
      // Cancelled before any task started: they all end cancelled.
      Pump();  // on_cancel
      FinishIfDone();
      return;
    }
    if (met) {
      for (RunObserver* o : ctx_.observers) o->OnRunStarted(run_->id(), run_->workflow(), false);
      Pump();
      FinishIfDone();
      return;
    }
    stop_reason_ = why;
    run_->SkipAll();
    for (int i = 0; i < run_->dag().size(); ++i) {
      task_times_[i].error = "the run's " + why;
      RecordTask(i);
    }
    FinishIfDone();
    return;
  }
  FinishOutcome outcome;
  if (cancelling_ || result.status == AttemptStatus::kCancelled || run_->Stopping(task)) {
    outcome = run_->EndUnstarted(task, TaskStatus::kCancelled);
    task_times_[task].error = stop_reason_.empty() ? AttemptReason(result) : stop_reason_;
  } else if (!met) {
    outcome = run_->EndUnstarted(task, TaskStatus::kSkipped);
    task_times_[task].error = why;
  } else {
    BeginTask(task);
    if (ctx_.commit) ctx_.commit();
    LaunchTask(task);
    return;
  }
  for (int skipped : outcome.skipped) task_times_[skipped].error = SkipReason(*run_, skipped);
  RecordTask(task);
  for (int skipped : outcome.skipped) RecordTask(skipped);
  NotifyTask(task, 0,
             run_->task_status(task) == TaskStatus::kSkipped ? TaskEventKind::kSkipped
                                                             : TaskEventKind::kCancelled);
  for (int skipped : outcome.skipped) {
    NotifyTask(skipped, run_->attempts(skipped), TaskEventKind::kSkipped);
  }
  Pump();
  FinishIfDone();
}

void RunController::LaunchTask(int task) {
  const Task& spec = run_->workflow().tasks[task];
  const int attempt = run_->attempts(task);
  Slot& ref = *slots_.at(task);

  AttemptSpec attempt_spec = AttemptSpecFor(task, spec, attempt);
  // Secrets are read now, for this attempt only (docs/workflow-format.md,
  // "Secrets"); one that cannot be read fails the attempt, which is retried
  // as any failed attempt is.
  std::optional<Error> unreadable;
  if (!spec.secrets.empty()) {
    Result<EnvList> secrets = ReadSecrets(spec.secrets);
    if (secrets.ok()) {
      WarnShortSecrets(task, attempt, *secrets);
      ref.SetSecrets(*secrets);
      attempt_spec.secrets = std::move(*secrets);
    } else {
      unreadable = secrets.error();
    }
  }
  Executor* executor = ctx_.executors[static_cast<std::size_t>(spec.type)];
  ref.attempt_ = unreadable
                     ? StartFailedAttempt(ctx_.loop, ref, "cannot start: " + unreadable->message)
                     : executor->Start(attempt_spec, ref);
  ref.NoteStarted(nullptr);  // no process (http, ssh) or it failed to start
  // Observers hear of the start once the attempt is stored (as RunObserver
  // promises); its process identity follows with the next commit.
  LogInfo(Fields(task, attempt, "task.started"), "task started");
  NotifyTask(task, attempt, TaskEventKind::kStarted);
}

void RunController::WarnShortSecrets(int task, int attempt, const EnvList& secrets) const {
  const Task& spec = run_->workflow().tasks[task];
  for (std::size_t i = 0; i < secrets.size(); ++i) {
    const std::string& value = secrets[i].second;
    if (value.empty() || value.size() >= kMinMaskedSecret) continue;
    LogWarn(Fields(task, attempt, "task.secret_short"),
            "secret '" + spec.secrets[i].name + "' (" + SecretSourceText(spec.secrets[i]) +
                ") is shorter than " + std::to_string(kMinMaskedSecret) +
                " bytes: it is not masked in the task's output");
  }
}

void RunController::AttemptEnded(Slot& slot, const AttemptResult& raw) {
  // Keep the slot alive to the end of this function; the executor allows
  // destroying the attempt from inside OnFinished.
  auto node = slots_.extract(slot.task_);
  std::unique_ptr<Slot> owned = std::move(node.mapped());
  // From here on only the masked result: an error may quote a secret (an
  // http error names its url), and outputs go to the store and to tasks.
  const std::optional<AttemptResult> masked = owned->Masked(raw);
  const AttemptResult& result = masked ? *masked : raw;
  owned->FinishOutput();
  owned->Flush();
  const int task = owned->task_;
  LogFields fields = owned->Fields();
  fields.event = "task.attempt_finished";
  fields.duration_ms = Since(owned->started_).count();
  fields.exit_code = result.exit_code;
  std::string message = std::string("attempt ") + AttemptStatusName(result.status);
  if (!result.error.empty()) message += ": " + result.error;
  Log(result.status == AttemptStatus::kSucceeded ? spdlog::level::info : spdlog::level::warn,
      fields, message);

  if (abandoned_) {
    StoreAttemptEnd(*owned, result, {});
    return;
  }
  if (interrupting_ && result.status == AttemptStatus::kCancelled) {
    // Stopped by Interrupt: the task stays running in the store, as after a
    // crash, and the resumed run starts it again.
    StoreInterrupted(*owned, result);
    StopIfIdle();
    return;
  }
  const std::string& name = run_->workflow().tasks[task].name;
  task_times_[task].exit_code = result.exit_code;
  const FinishOutcome outcome = run_->AttemptFinished(task, result.status, result.exit_code);
  if (run_->task_status(task) == TaskStatus::kSucceeded) task_times_[task].outputs = result.outputs;
  NoteReasons(task, result, outcome);
  // The attempt's end, its task's new state and the tasks it skipped: one
  // state transition, one transaction.
  std::vector<TaskRecord> records;
  records.reserve(1 + outcome.skipped.size());
  records.push_back(TaskRecordOf(task));
  for (int skipped : outcome.skipped) records.push_back(TaskRecordOf(skipped));
  StoreAttemptEnd(*owned, result, records);
  TaskEvent event{run_->id(),
                  run_->workflow().name,
                  name,
                  owned->number_,
                  TaskEventKind::kFinished,
                  AttemptStatusName(result.status),
                  result.exit_code,
                  result.signal,
                  result.error,
                  Since(owned->started_),
                  std::nullopt,
                  run_->workflow().IsHandler(task)};
  // A last attempt that retry_on_exit_codes did not retry says so where it
  // is followed, as the task's record does.
  if (outcome.not_retried) event.error = task_times_[task].error;
  if (outcome.retry_after) {
    event.event = TaskEventKind::kRetrying;
    event.retry_in = *outcome.retry_after;
    if (!interrupting_) ArmRetry(task, *outcome.retry_after);  // else: retried on resume
  }
  for (RunObserver* o : ctx_.observers) o->OnTaskEvent(event);
  for (int skipped : outcome.skipped) {
    NotifyTask(skipped, run_->attempts(skipped), TaskEventKind::kSkipped);
  }
  if (outcome.stop_run) {
    for (auto& [_, other] : slots_) other->attempt_->Cancel();
    for (auto& [_, condition] : conditions_) condition->attempt_->Cancel();
  }
  Pump();
  FinishIfDone();
  StopIfIdle();
}

void RunController::StoreAttemptEnd(const Slot& slot, const AttemptResult& result,
                                    const std::vector<TaskRecord>& tasks) {
  if (slot.key_) {
    Status s = ctx_.store->FinishAttempt(*slot.key_, result, slot.Counts(), Clock::now(), tasks);
    if (s.ok()) return;
    LogError(slot.Fields(), s.error().message);
  }
  for (const TaskRecord& record : tasks) {  // without the attempt, or after it failed
    if (Status s = ctx_.store->SetTaskStatus(run_->id(), record); !s.ok()) {
      LogError(Fields(), s.error().message);
    }
  }
}

void RunController::NoteReasons(int task, const AttemptResult& result,
                                const FinishOutcome& outcome) {
  const TaskStatus status = run_->task_status(task);
  if (outcome.stop_run && stop_reason_.empty()) {
    stop_reason_ = "cancelled: '" + run_->workflow().tasks[task].name + "' " +
                   OutcomeText(TaskStatusName(status), "") + " and fail_fast stops the run";
  }
  std::string& error = task_times_[task].error;
  if (status == TaskStatus::kCancelled && !stop_reason_.empty()) {
    error = stop_reason_;
  } else if (outcome.not_retried) {
    error = NotRetriedReason(result);
  } else if (IsTerminal(status)) {
    error = AttemptReason(result);
  }
  for (int skipped : outcome.skipped) task_times_[skipped].error = SkipReason(*run_, skipped);
}

AttemptSpec RunController::AttemptSpecFor(int task, const Task& spec, int attempt) const {
  AttemptSpec a;
  a.task = &spec;
  a.workflow = run_->workflow().name;
  a.run_id = run_->id();
  a.attempt = attempt;
  a.timeout = std::chrono::duration_cast<milliseconds>(spec.timeout);
  a.kill_grace = std::chrono::duration_cast<milliseconds>(run_->workflow().config.kill_grace);
  a.env = RunEnv(task);
  return a;
}

std::vector<std::pair<std::string, std::string>> RunController::RunEnv(int task) const {
  std::vector<std::pair<std::string, std::string>> env;
  for (const auto& [name, value] : params_) env.emplace_back(ParamEnvName(name), value);
  for (auto& variable : TriggerEnv(event_)) env.push_back(std::move(variable));
  if (task == kRunCondition) return env;  // the run's when: comes before every task
  const Dag& dag = run_->dag();
  const Workflow& workflow = run_->workflow();
  if (workflow.IsHandler(task)) {
    // A handler sees how the run ended and every task's outputs
    // (docs/workflow-format.md, "Handlers").
    std::string failed;
    for (int i = 0; i < dag.size(); ++i) {
      if (workflow.IsHandler(i) || !IsFailure(run_->task_status(i))) continue;
      failed += (failed.empty() ? "" : " ") + workflow.tasks[i].name;
    }
    env.emplace_back("PICOFLOW_RUN_STATUS", RunStatusName(run_->status()));
    env.emplace_back("PICOFLOW_FAILED_TASKS", failed);
    for (int i = 0; i < dag.size(); ++i) {
      for (const auto& [key, value] : task_times_[i].outputs) {
        env.emplace_back(OutputEnvName(workflow.tasks[i].name, key), value);
      }
    }
    return env;
  }
  // Every task it depends on, directly or not, in declaration order.
  std::vector<bool> upstream(dag.size(), false);
  std::vector<int> stack(dag.deps(task).begin(), dag.deps(task).end());
  while (!stack.empty()) {
    const int dep = stack.back();
    stack.pop_back();
    if (upstream[dep]) continue;
    upstream[dep] = true;
    stack.insert(stack.end(), dag.deps(dep).begin(), dag.deps(dep).end());
  }
  for (int dep = 0; dep < dag.size(); ++dep) {
    if (!upstream[dep]) continue;
    const std::string& name = run_->workflow().tasks[dep].name;
    for (const auto& [key, value] : task_times_[dep].outputs) {
      env.emplace_back(OutputEnvName(name, key), value);
    }
  }
  return env;
}

TaskRecord RunController::TaskRecordOf(int task) const {
  const Task& spec = run_->workflow().tasks[task];
  TaskRecord record;
  record.name = spec.name;
  record.status = run_->task_status(task);
  record.attempts = run_->attempts(task);
  // The store replaces the whole row: pass what it must keep.
  const TaskTimes& times = task_times_[task];
  record.started_at = times.started_at;
  if (IsTerminal(record.status)) record.ended_at = Clock::now();
  record.exit_code = times.exit_code;
  if (IsTerminal(record.status)) record.error = times.error;
  record.outputs = times.outputs;
  return record;
}

void RunController::RecordTask(int task) {
  if (Status s = ctx_.store->SetTaskStatus(run_->id(), TaskRecordOf(task)); !s.ok()) {
    LogError(Fields(task), s.error().message);
  }
}

void RunController::NotifyTask(int task, int attempt, TaskEventKind event) {
  TaskEvent e;
  e.run_id = run_->id();
  e.workflow = run_->workflow().name;
  e.task = run_->workflow().tasks[task].name;
  e.attempt = attempt;
  e.event = event;
  e.status = TaskStatusName(run_->task_status(task));
  if (IsTerminal(run_->task_status(task))) e.error = task_times_[task].error;
  e.handler = run_->workflow().IsHandler(task);
  for (RunObserver* o : ctx_.observers) o->OnTaskEvent(e);
}

void RunController::ArmRetry(int task, milliseconds delay) {
  auto retry = std::make_unique<RetryTimer>(this, task);
  if (uv_timer_init(ctx_.loop, retry->timer.get()) != 0) {
    RetryDue(task);
    return;
  }
  retry->timer.MarkInitialized();
  StartOneShot<RetryTimer, &RetryTimer::Fire>(retry->timer,
                                              static_cast<std::uint64_t>(delay.count()));
  retries_[task] = std::move(retry);
}

void RunController::RetryDue(int task) {
  retries_.erase(task);
  run_->RetryDue(task);
  Pump();
  FinishIfDone();
}

void RunController::Cancel(const std::string& reason, bool handlers) {
  if (finished_) return;
  // Once the handlers run, a cancel stops them (a second one, if the
  // first cancelled the run and so called on_cancel).
  const bool in_handlers = run_->dag_finished();
  if (in_handlers || handlers ? handlers_cancelled_ : cancelling_) return;
  cancelling_ = true;
  handlers_cancelled_ = in_handlers || handlers;
  // A run fail_fast already stops keeps that reason.
  if (stop_reason_.empty()) stop_reason_ = reason;
  const std::vector<int> changed = run_->Cancel(handlers);
  std::vector<int> stopped;  // the attempts to cancel: all, or the handlers'
  for (auto& [task, _] : slots_) {
    if (!in_handlers || run_->workflow().IsHandler(task)) stopped.push_back(task);
  }
  for (auto it = retries_.begin(); it != retries_.end();) {
    it = run_->task_status(it->first) == TaskStatus::kCancelled ? retries_.erase(it) : ++it;
  }
  const std::string& why = in_handlers ? reason : stop_reason_;
  for (int task : changed) {
    task_times_[task].error = why;
    RecordTask(task);
    NotifyTask(task, run_->attempts(task), TaskEventKind::kCancelled);
  }
  LogInfo(Fields(-1, 0, "run.cancelling"),
          in_handlers ? "cancelling the run's handlers" : "cancelling run");
  for (int task : stopped) slots_.at(task)->attempt_->Cancel();
  for (auto& [_, condition] : conditions_) condition->attempt_->Cancel();
  Pump();  // the handlers a cancel calls for (on_cancel, on_exit)
  FinishIfDone();
}

void RunController::Abandon() {
  if (finished_) return;
  abandoned_ = true;
  retries_.clear();
  conditions_.clear();  // kills them; nothing of them is stored
  flush_timer_.Close();
  for (auto& [task, slot] : slots_) {
    slot->FinishOutput();
    slot->Flush();
    AttemptResult result;
    result.status = AttemptStatus::kCancelled;
    result.error = "killed: the daemon stopped before the task ended";
    if (interrupting_) {
      StoreInterrupted(*slot, result);
    } else {
      StoreAttemptEnd(*slot, result, {});
    }
  }
  slots_.clear();  // SIGKILLs the groups
  finished_ = true;
  if (interrupting_) return;  // the run stays unfinished: it resumes at the next start
  run_->Cancel();
  LogIfFailed(Fields(), ctx_.store->SetRunStatus(run_->id(), RunStatus::kCancelled, Clock::now(),
                                                 kStoppedReason));
}

void RunController::Interrupt(std::function<void()> stopped) {
  // A run being cancelled ends cancelled, as it was asked to.
  if (finished_ || interrupting_ || cancelling_) return;
  interrupting_ = true;
  stopped_ = std::move(stopped);
  // Tasks waiting to retry stay retry_wait in the store; the resumed run
  // starts them again.
  retries_.clear();
  LogInfo(Fields(-1, 0, "run.interrupting"), "interrupting run: it resumes at the next start");
  for (auto& [_, slot] : slots_) slot->attempt_->Cancel();
  for (auto& [_, condition] : conditions_) condition->attempt_->Cancel();
  StopIfIdle();
}

void RunController::StopIfIdle() {
  if (!interrupting_ || finished_ || Busy() || !stopped_) return;
  flush_timer_.Close();  // AttemptEnded flushed each attempt's output
  auto stopped = std::move(stopped_);
  stopped_ = nullptr;
  stopped();
}

void RunController::StoreInterrupted(const Slot& slot, const AttemptResult& result) {
  AttemptResult interrupted = result;
  interrupted.status = AttemptStatus::kInterrupted;
  interrupted.error =
      "interrupted: picoflowd stopped while it ran; the run resumes at its next start";
  StoreAttemptEnd(slot, interrupted, {});
  for (RunObserver* o : ctx_.observers) {
    o->OnAttemptInterrupted(run_->workflow().name, run_->workflow().tasks[slot.task_].name);
  }
}

void RunController::OutputDirty() {
  if (flush_armed_ || !flush_timer_.initialized()) return;
  flush_armed_ = true;
  StartOneShot<RunController, &RunController::FlushOutput>(
      flush_timer_, static_cast<std::uint64_t>(kFlushDelay.count()));
}

void RunController::FlushOutput() {
  flush_armed_ = false;
  for (auto& [_, slot] : slots_) slot->Flush();
}

void RunController::FinishIfDone() {
  if (finished_ || !run_->finished() || Busy()) return;
  finished_ = true;
  flush_timer_.Close();
  const RunStatus status = run_->status();
  std::vector<std::string> reasons;
  for (const TaskTimes& t : task_times_) reasons.push_back(t.error);
  const std::string error = RunError(*run_, reasons, stop_reason_);
  if (Status s = ctx_.store->SetRunStatus(run_->id(), status, Clock::now(), error); !s.ok()) {
    LogError(Fields(), s.error().message);
  }
  LogInfo(Fields(-1, 0, "run.finished"), std::string("run ") + RunStatusName(status));
  on_finished_(status);
}

}  // namespace picoflow
