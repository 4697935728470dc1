#include "picoflowd/engine/run_manager.h"

#include <algorithm>
#include <string>

#include "common/workflow_params.h"
#include "picoflowd/engine/run_admission.h"
#include "picoflowd/engine/run_observer.h"
#include "picoflowd/engine/workflow_registry.h"
#include "picoflowd/exec/process_info.h"
#include "picoflowd/util/logging.h"

namespace picoflow {
namespace {

using Clock = std::chrono::system_clock;

}  // namespace

RunManager::RunManager(EngineContext& ctx) : ctx_(ctx), destroy_timer_(this) {
  if (uv_timer_init(ctx_.loop, destroy_timer_.get()) == 0) destroy_timer_.MarkInitialized();
}

RunManager::~RunManager() { runs_.clear(); }

std::unique_ptr<Run> RunManager::MakeRun(std::int64_t id, const WorkflowVersion& version) {
  return std::make_unique<Run>(id, version.workflow, version.dag, [this] {
    return std::uniform_real_distribution<double>(0, 1)(random_);
  });
}

RunController& RunManager::Add(std::unique_ptr<Run> run, ParamValues params) {
  const std::int64_t id = run->id();
  auto controller =
      std::make_unique<RunController>(ctx_, std::move(run), std::move(params),
                                      [this, id](RunStatus status) { RunFinished(id, status); });
  RunController& ref = *controller;
  runs_[id] = std::move(controller);
  return ref;
}

namespace {

// A request's param values and what each task does in it (`only`), or
// every problem with them in one kInvalid.
Result<std::pair<ParamValues, std::vector<TaskRole>>> Resolve(const WorkflowVersion& version,
                                                              const RunRequest& request) {
  const Workflow& w = *version.workflow;
  Result<ParamValues> params = ResolveParams(w, request.params);
  Result<std::vector<TaskRole>> roles =
      request.only
          ? PlanSelection(w, *version.dag, *request.only)
          : Result<std::vector<TaskRole>>(std::vector<TaskRole>(w.tasks.size(), TaskRole::kRun));
  if (!params.ok() || !roles.ok()) {
    std::string problems = params.ok() ? "" : params.error().message;
    if (!roles.ok()) problems += (problems.empty() ? "" : "; ") + roles.error().message;
    return Err(ErrorCode::kInvalid, problems);
  }
  return std::make_pair(std::move(*params), std::move(*roles));
}

// "(only 'load' and what depends on it)", as reasons say an --only run's selection.
std::string OnlyText(const std::optional<RunSelection>& only) {
  return only ? "(only " + DescribeSelection(*only) + ")" : "";
}

}  // namespace

Status RunManager::Check(const WorkflowVersion& version, const RunRequest& request) {
  auto resolved = Resolve(version, request);
  if (!resolved.ok()) return resolved.error();
  return {};
}

Result<RunController*> RunManager::Create(std::shared_ptr<const WorkflowVersion> version,
                                          const RunRequest& request, const std::string& reason,
                                          std::vector<int>* latest) {
  const Workflow& w = *version->workflow;
  auto resolved = Resolve(*version, request);
  if (!resolved.ok()) return resolved.error();
  auto& [params, roles] = *resolved;
  auto presets = Presets(w, roles, request);
  if (!presets.ok()) return presets.error();
  NewRun record;
  record.workflow = w.name;
  record.source = version->source;
  record.base_dir = version->base_dir;
  record.trigger = request.trigger;
  record.status = RunStatus::kPending;
  record.scheduled_at = request.scheduled_at;
  record.params = params;
  record.retry_of = request.retry_of;
  record.only = request.only;
  record.event = request.event;
  record.created_at = Clock::now();
  record.reason = reason;
  record.tasks.reserve(w.tasks.size());
  for (const Task& t : w.tasks) record.tasks.push_back(t.name);
  auto id = ctx_.store->CreateRun(record);
  if (!id.ok()) return id.error();
  std::unique_ptr<Run> run = MakeRun(*id, *version);
  // What the presets' ends skip (a one_failed task after tasks taken as
  // done) is stored too, unless it is a preset itself.
  std::vector<bool> preset(w.tasks.size(), false);
  std::vector<int> skipped;
  for (const PresetTask& p : *presets) {
    preset[p.task] = true;
    for (int task : run->Restore(p.task, p.status, 0)) skipped.push_back(task);
  }
  RunController& ref = Add(std::move(run), std::move(params));
  ref.SetEvent(request.event);
  for (const PresetTask& p : *presets) {
    ref.Preset(p.task, p.outputs, p.why);
    if (latest && p.latest) latest->push_back(p.task);
  }
  for (int task : skipped) {
    if (!preset[task]) ref.PresetSkipped(task);
  }
  return &ref;
}

Result<std::int64_t> RunManager::StartRun(std::shared_ptr<const WorkflowVersion> version,
                                          const RunRequest& request) {
  auto made = Create(std::move(version), request, "");
  if (!made.ok()) return made.error();
  RunController& ref = **made;
  const std::int64_t id = ref.run().id();
  if (on_count_changed_) on_count_changed_(active());
  if (request.on_created) request.on_created(id);
  ref.Start();
  return id;
}

Result<std::int64_t> RunManager::QueueRun(std::shared_ptr<const WorkflowVersion> version,
                                          const RunRequest& request, const std::string& reason) {
  std::vector<int> latest;
  auto made = Create(std::move(version), request, reason, &latest);
  if (!made.ok()) return made.error();
  const Run& run = (*made)->run();
  waiting_.push_back({run.id(), run.workflow().name, Clock::now(), request.on_started,
                      std::move(latest), OnlyText(request.only), IsEventTrigger(request.trigger)});
  LogFields f;
  f.event = "run.queued";
  f.workflow = run.workflow().name;
  f.run = run.id();
  LogInfo(f, reason);
  if (request.on_created) request.on_created(run.id());
  return run.id();
}

const RunManager::Waiting* RunManager::FirstWaiting(const std::string& workflow) const {
  for (const Waiting& w : waiting_) {
    if (w.workflow == workflow) return &w;
  }
  return nullptr;
}

std::vector<std::int64_t> RunManager::WaitingIds(const std::string& workflow) const {
  std::vector<std::int64_t> ids;
  for (const Waiting& w : waiting_) {
    if (w.workflow == workflow) ids.push_back(w.id);
  }
  return ids;
}

std::vector<std::string> RunManager::WaitingWorkflows() const {
  std::vector<std::string> names;
  for (const Waiting& w : waiting_) {
    if (std::find(names.begin(), names.end(), w.workflow) == names.end()) {
      names.push_back(w.workflow);
    }
  }
  return names;
}

Status RunManager::StartWaiting(std::int64_t run_id) {
  auto it = std::find_if(waiting_.begin(), waiting_.end(),
                         [run_id](const Waiting& w) { return w.id == run_id; });
  RunController* controller = FindMutable(run_id);
  if (it == waiting_.end() || controller == nullptr) {
    return Err(ErrorCode::kNotFound, "run " + std::to_string(run_id) + " is not waiting");
  }
  auto on_started = std::move(it->on_started);
  for (int task : it->taken_as_done) {
    auto p = TakenAsDone(controller->run().workflow(), task, it->only);
    if (p.ok()) {
      controller->Preset(task, p->outputs, p->why);
    } else {
      // Starts with what it was queued with, which its reason says.
      LogIfFailed(LogEvent("run.dequeued"), Status(p.error()));
    }
  }
  waiting_.erase(it);
  if (on_count_changed_) on_count_changed_(active());
  if (on_started) on_started(run_id);
  controller->Start();
  return {};
}

std::string RunManager::WorkflowOf(std::int64_t run_id) const {
  const RunController* c = Find(run_id);
  return c == nullptr ? std::string() : c->run().workflow().name;
}

Result<std::vector<RunManager::PresetTask>> RunManager::Presets(const Workflow& w,
                                                                const std::vector<TaskRole>& roles,
                                                                const RunRequest& request) {
  std::vector<const TaskOutputs*> reused(w.tasks.size(), nullptr);
  for (const auto& [name, outputs] : request.reuse) {
    const int index = w.FindTask(name);
    if (index >= 0) reused[index] = &outputs;  // PlanRetry names only tasks of this version
  }
  const std::string retry_of = request.retry_of ? std::to_string(*request.retry_of) : "";
  const std::string only = OnlyText(request.only);
  std::vector<PresetTask> presets;
  for (std::size_t i = 0; i < roles.size(); ++i) {
    const int task = static_cast<int>(i);
    if (roles[i] == TaskRole::kNotSelected) {
      presets.push_back({task, TaskStatus::kSkipped, {}, "not selected " + only});
    } else if (roles[i] == TaskRole::kRun && reused[i]) {
      presets.push_back(
          {task, TaskStatus::kReused, *reused[i], "reused: it succeeded in run " + retry_of});
    } else if (roles[i] == TaskRole::kTakenAsDone && reused[i]) {
      // A retry of an --only run: what that run took as done, as it had it.
      presets.push_back({task, TaskStatus::kReused, *reused[i],
                         "taken as done " + only + ", with the outputs it had in run " + retry_of});
    } else if (roles[i] == TaskRole::kTakenAsDone) {
      auto p = TakenAsDone(w, task, only);
      if (!p.ok()) return p.error();
      presets.push_back(std::move(*p));
    }
  }
  return presets;
}

Result<RunManager::PresetTask> RunManager::TakenAsDone(const Workflow& w, int task,
                                                       const std::string& only) {
  // A selected task sees the outputs it would have seen after a whole run:
  // those of the task's latest success.
  auto success = ctx_.store->LatestSuccess(w.name, w.tasks[task].name);
  if (!success.ok()) return success.error();
  PresetTask p{task, TaskStatus::kReused, {}, "taken as done " + only, /*latest=*/true};
  if (*success) {
    p.outputs = std::move((*success)->outputs);
    p.why += ", with the outputs of its success in run " + std::to_string((*success)->run_id);
  } else {
    p.why += ", without outputs: no success of it is stored";
  }
  return p;
}

int RunManager::RecoverUnfinished() {
  auto unfinished = ctx_.store->UnfinishedRuns();
  if (!unfinished.ok()) {
    LogError({}, unfinished.error().message);
    return 0;
  }
  int resumed = 0;
  for (const UnfinishedRun& u : *unfinished) {
    LogFields f;
    f.event = "run.recovering";
    f.workflow = u.run.workflow;
    f.run = u.run.id;
    const bool queued = u.run.status == RunStatus::kPending && !u.run.started_at;
    if (queued) {
      LogInfo(f, "a run queued before the daemon stopped waits again (" + u.run.reason + ")");
    } else {
      LogWarn(f, "resuming a run left unfinished by a previous daemon");
    }
    if (Status s = Resume(u); !s.ok()) {
      LogError(f, "cannot resume run: " + s.error().message);
      LogIfFailed(f, ctx_.store->SetRunStatus(u.run.id, RunStatus::kFailed, Clock::now(),
                                              "could not be resumed: " + s.error().message));
      continue;
    }
    if (!queued) ++resumed;
  }
  return resumed;
}

Status RunManager::Resume(const UnfinishedRun& u) {
  // 1. What is left of the interrupted attempts dies, if it is still the
  //    process group we started (boot id + leader start time match).
  for (const AttemptRecord& a : u.running_attempts) {
    if (a.process && a.process->pgid > 0) {
      KillProcessGroupIfSame(a.process->pgid, a.process->start_time, a.process->boot_id);
    }
    LogFields f;
    f.workflow = u.run.workflow;
    f.run = u.run.id;
    f.task = a.task;
    f.attempt = a.number;
    LogIfFailed(f,
                ctx_.store->MarkAttemptInterrupted(AttemptKey{a.run_id, a.seq}, Clock::now(),
                                                   "interrupted: the daemon stopped while it ran"));
    for (RunObserver* o : ctx_.observers) o->OnAttemptInterrupted(u.run.workflow, a.task);
  }
  // 2. The run continues on the version it started with, relative paths
  //    resolved against the same directory.
  CompiledWorkflow compiled = CompileWorkflow(u.source, u.run.workflow, "recovered", u.base_dir);
  if (!compiled.version) {
    return Err(ErrorCode::kInvalid, "its workflow source no longer loads");
  }
  const Workflow& w = *compiled.version->workflow;
  auto run = MakeRun(u.run.id, *compiled.version);
  std::vector<std::pair<int, const TaskRecord*>> restored;
  for (const TaskRecord& t : u.tasks) {
    const int index = w.FindTask(t.name);
    if (index < 0) return Err(ErrorCode::kInvalid, "task '" + t.name + "' is gone");
    // Interrupted (running) and retry-waiting tasks start over at once with
    // their attempt count kept: an interruption never fails a task, but the
    // attempts it cost count against the retries if a later one fails.
    const TaskStatus status = IsTerminal(t.status) ? t.status : TaskStatus::kPending;
    run->Restore(index, status, t.attempts);
    restored.push_back({index, &t});
  }
  RunController& ref = Add(std::move(run), u.run.params);
  ref.SetEvent(u.run.event);
  for (auto [index, t] : restored) ref.RestoreTask(index, *t);
  // A run that never started was queued (max_active_runs): it waits again,
  // in its place, for the daemon to start it when there is room.
  if (u.run.status == RunStatus::kPending && !u.run.started_at) {
    Waiting waiting{u.run.id,
                    u.run.workflow,
                    u.run.created_at,
                    nullptr,
                    {},
                    OnlyText(u.run.only),
                    IsEventTrigger(u.run.trigger)};
    if (u.run.only && !u.run.retry_of) {
      // What the selection takes as done; a retry's were fixed by the run it retries.
      auto roles = PlanSelection(w, *compiled.version->dag, *u.run.only);
      for (std::size_t i = 0; roles.ok() && i < roles->size(); ++i) {
        if ((*roles)[i] == TaskRole::kTakenAsDone)
          waiting.taken_as_done.push_back(static_cast<int>(i));
      }
    }
    waiting_.push_back(std::move(waiting));
    return {};
  }
  // 3. A task interrupted max_interruptions times fails instead of starting
  //    over: a daemon that dies while it runs (out of memory, a crash loop)
  //    would otherwise run it forever.
  for (auto [index, t] : restored) {
    // Ended already: stored so, or skipped here by an earlier give-up's
    // fail_fast (its status in the run, not the store's, says which).
    if (IsTerminal(ref.run().task_status(index))) continue;
    int times = 0;
    if (auto it = u.interruptions.find(t->name); it != u.interruptions.end()) times = it->second;
    for (const AttemptRecord& a : u.running_attempts) times += a.task == t->name ? 1 : 0;
    const int max = w.tasks[index].max_interruptions;
    if (times == 0 || times < max) continue;
    ref.GiveUp(index, "interrupted " + std::to_string(times) + (times == 1 ? " time" : " times") +
                          " (max_interruptions: " + std::to_string(max) +
                          "): is picoflowd restarting in a loop? (journalctl -u picoflowd)");
  }
  ref.Start();
  return {};
}

Status RunManager::Cancel(std::int64_t run_id) {
  auto it = runs_.find(run_id);
  if (it == runs_.end() || it->second->finished()) {
    return Err(ErrorCode::kNotFound, "run " + std::to_string(run_id) + " is not running");
  }
  // A run that waits for a place ends without starting: its handlers
  // (on_cancel, on_exit) are not called either.
  RunController& c = *it->second;
  c.Cancel(RunController::kCancelledOnRequest, /*handlers=*/!c.started());
  return {};
}

void RunManager::CancelAll(std::function<void()> done) {
  all_done_ = std::move(done);
  // Cancel() may finish a run synchronously and re-enter RunFinished: iterate
  // over a snapshot of ids, the waiting runs first (none may take the place
  // of a cancelled one).
  std::vector<std::int64_t> ids;
  for (const Waiting& w : waiting_) ids.push_back(w.id);
  for (auto& [id, c] : runs_) {
    if (c->started()) ids.push_back(id);
  }
  for (std::int64_t id : ids) {
    auto it = runs_.find(id);
    if (it != runs_.end()) it->second->Cancel(kStoppedReason, /*handlers=*/true);  // not at a stop
  }
  DoneIfEmpty();
}

void RunManager::InterruptAll(std::function<void()> done) {
  all_done_ = std::move(done);
  // A stopped run is destroyed like a finished one, on the next loop turn,
  // but its end is not told to the observers: it has not ended. A waiting
  // run waits again at the next start: its controller just goes.
  for (const Waiting& w : waiting_) finished_.push_back(w.id);
  waiting_.clear();
  if (!finished_.empty()) {
    StartOneShot<RunManager, &RunManager::DestroyFinished>(destroy_timer_, 0);
  }
  for (auto& [id, controller] : runs_) {
    if (!controller->started()) continue;
    controller->Interrupt([this, run_id = id] {
      finished_.push_back(run_id);
      StartOneShot<RunManager, &RunManager::DestroyFinished>(destroy_timer_, 0);
    });  // never adds or removes a live run: iterating is safe
  }
  DoneIfEmpty();
}

void RunManager::AbandonAll() {
  for (auto& [_, controller] : runs_) {
    if (controller->started()) controller->Abandon();
  }
  waiting_.clear();
  runs_.clear();
  finished_.clear();
}

const RunController* RunManager::Find(std::int64_t run_id) const {
  auto it = runs_.find(run_id);
  return it == runs_.end() ? nullptr : it->second.get();
}

RunController* RunManager::FindMutable(std::int64_t run_id) {
  auto it = runs_.find(run_id);
  return it == runs_.end() ? nullptr : it->second.get();
}

int RunManager::CountRunning(const std::string& workflow) const {
  return static_cast<int>(RunningIds(workflow).size());
}

std::vector<std::int64_t> RunManager::RunningIds(const std::string& workflow) const {
  std::vector<std::int64_t> ids;
  for (auto& [id, c] : runs_) {
    if (c->started() && !c->finished() && c->run().workflow().name == workflow) ids.push_back(id);
  }
  return ids;
}

int RunManager::ActiveAttempts() const {
  int n = 0;
  for (auto& [_, c] : runs_) n += c->active_attempts();
  return n;
}

void RunManager::RunFinished(std::int64_t run_id, RunStatus status) {
  // A waiting run that was cancelled never starts.
  std::erase_if(waiting_, [run_id](const Waiting& w) { return w.id == run_id; });
  for (RunObserver* o : ctx_.observers) o->OnRunFinished(run_id, status);
  // Called from inside the controller: destroy it on the next loop turn.
  finished_.push_back(run_id);
  StartOneShot<RunManager, &RunManager::DestroyFinished>(destroy_timer_, 0);
}

void RunManager::DestroyFinished() {
  std::vector<std::int64_t> ids;
  ids.swap(finished_);
  for (std::int64_t id : ids) {
    runs_.erase(id);
    if (on_count_changed_) on_count_changed_(active());
  }
  DoneIfEmpty();
}

void RunManager::DoneIfEmpty() {
  if (!runs_.empty() || !all_done_) return;
  auto cb = std::move(all_done_);
  all_done_ = nullptr;
  cb();
}

}  // namespace picoflow
