// The Daemon's cron side: keeps the Scheduler in step with the registry,
// arms the one ScheduleTimer for the earliest next fire, carries out what
// the scheduler decides (start, queue, record a skipped fire), and starts
// what waits for a place when a run ends (queued fires, and runs started by
// hand past max_active_runs).

#include <chrono>
#include <string>

#include "picoflowd/daemon.h"
#include "picoflowd/engine/run.h"
#include "picoflowd/engine/run_admission.h"
#include "picoflowd/engine/run_controller.h"
#include "picoflowd/engine/run_manager.h"
#include "picoflowd/notifier.h"
#include "picoflowd/rpc/rpc_json.h"
#include "picoflowd/sched/schedule_timer.h"
#include "picoflowd/sched/scheduler.h"
#include "picoflowd/store/store.h"
#include "picoflowd/util/logging.h"

namespace picoflow {

void Daemon::Schedule(const std::string& name, std::optional<TimePoint> last_fire) {
  if (!scheduler_) return;
  const auto* entry = registry_.Find(name);
  std::optional<ScheduleSpec> spec;
  if (entry != nullptr && entry->version) {
    auto made = ScheduleSpec::FromWorkflow(*entry->version->workflow);
    if (made.ok()) {
      spec = std::move(*made);
    } else {
      LogFields f;
      f.event = "schedule.error";
      f.workflow = name;
      LogError(f, made.error().message);
    }
  }
  if (!spec) {
    scheduler_->Remove(name);
  } else {
    std::optional<SysSeconds> last;
    if (last_fire) last = std::chrono::floor<std::chrono::seconds>(*last_fire);
    scheduler_->Set(std::move(*spec), last);
    scheduler_->SetPaused(name, entry->paused);
  }
  RearmSchedule();
  SyncTriggers(name);
  // A new version may allow more runs at once: what waits may start.
  StartWaiting(name);
}

Status Daemon::SetPaused(const std::string& name, bool paused) {
  if (!registry_.SetPaused(name, paused)) {
    return Err(ErrorCode::kNotFound, "no workflow '" + name + "'");
  }
  if (Status s = store_->SetPaused(name, paused); !s.ok()) return s;
  // Resuming refuses what fell due while paused: kept as the last fire, so a
  // restart does not catch it up either.
  if (!paused && scheduler_ && scheduler_->Has(name)) {
    const auto now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
    LogFields f;
    f.workflow = name;
    LogIfFailed(f, store_->SetLastFire(name, TimePoint(now)));
  }
  if (scheduler_) scheduler_->SetPaused(name, paused);
  LogFields f;
  f.event = paused ? "workflow.paused" : "workflow.resumed";
  f.workflow = name;
  LogInfo(f, paused ? "paused: scheduled fires are not run" : "resumed");
  RearmSchedule();
  return {};
}

Status Daemon::StartScheduling() {
  schedule_timer_ = std::make_unique<ScheduleTimer>(&loop_, [this](ScheduleTimer::Wake wake) {
    OnScheduleWake(wake == ScheduleTimer::Wake::kClockSet);
  });
  if (Status s = schedule_timer_->Open(); !s.ok()) return s;
  // Catch up what was missed while the daemon was down, then arm.
  OnScheduleWake(false);
  return {};
}

void Daemon::OnRunFinished(std::int64_t run_id, RunStatus /*status*/) {
  if (once_) {
    FinishShutdown();
    return;
  }
  // The controller of the run that ended is destroyed on the next loop
  // turn: it still knows its workflow.
  StartWaiting(runs_->WorkflowOf(run_id));
}

void Daemon::StartWaiting(const std::string& workflow) {
  if (stopping_ || !runs_ || workflow.empty()) return;
  // In the order they were queued: a fire by its cron instant, a run started
  // by hand by the time it was asked for. Under one max_active_runs both
  // need the same room; if the first may not start, the other may only when
  // a reload removed the limit (a run by hand then always may, a fire only
  // once no run goes).
  for (;;) {
    const int running = runs_->CountRunning(workflow);
    const RunManager::Waiting* manual = runs_->FirstWaiting(workflow);
    const Fire* fire = scheduler_ ? scheduler_->FirstQueued(workflow) : nullptr;
    const bool fire_first = fire != nullptr && (manual == nullptr ||
                                                TimePoint(fire->scheduled_at) <= manual->queued_at);
    auto take_fire = [&] {
      auto taken = scheduler_->TakeQueued(workflow, running);
      if (taken) StartFire(*taken);
      return taken.has_value();
    };
    if (fire_first && take_fire()) continue;
    if (manual != nullptr) {
      const RunController* waiting = runs_->Find(manual->id);
      RunLimits limits;
      if (waiting != nullptr) limits = LimitsFor(registry_, waiting->run().workflow());
      if (manual->event) limits = EventLimits(limits);  // docs/triggers.md
      if (waiting != nullptr && HasRoom(limits, static_cast<std::size_t>(running))) {
        const Status started = runs_->StartWaiting(manual->id);
        LogIfFailed(LogEvent("run.dequeued"), started);
        if (started.ok()) continue;
        return;
      }
    }
    if (!fire_first && fire != nullptr && take_fire()) continue;
    return;
  }
}

RunningFn Daemon::RunningCounter() const {
  // Runs started by hand that wait for a place count as going: a fire does
  // not pass them.
  return [this](const std::string& workflow) {
    return runs_->CountRunning(workflow) + static_cast<int>(runs_->WaitingIds(workflow).size());
  };
}

void Daemon::RearmSchedule() {
  if (!schedule_timer_ || stopping_) return;
  if (Status s = schedule_timer_->Arm(scheduler_->NextDeadline()); !s.ok()) {
    LogFields f;
    f.event = "schedule.error";
    LogError(f, s.error().message);
  }
}

void Daemon::OnScheduleWake(bool clock_set) {
  if (stopping_ || !scheduler_) return;
  if (clock_set) {
    LogFields f;
    f.event = "schedule.clock_set";
    LogInfo(f, "the wall clock was set: next fires recomputed");
  }
  const SchedulerTick tick = scheduler_->Evaluate(RunningCounter());
  for (const std::string& note : tick.notes) {
    LogFields f;
    f.event = "schedule.note";
    LogWarn(f, note);
  }
  // The instant is kept before the run starts: a crash in between never
  // fires it twice.
  for (const auto& [name, instant] : tick.handled) {
    if (Status s = store_->SetLastFire(name, TimePoint(instant)); !s.ok()) {
      LogFields f;
      f.event = "schedule.error";
      f.workflow = name;
      LogError(f, s.error().message);
    }
  }
  for (const Fire& fire : tick.fires) StartFire(fire);
  RearmSchedule();
}

void Daemon::StartFire(const Fire& fire) {
  const auto* entry = registry_.Find(fire.workflow);
  if (entry == nullptr || !entry->version) return;
  LogFields f;
  f.workflow = fire.workflow;
  const std::string at = TimeString(TimePoint(fire.scheduled_at));
  switch (fire.action) {
    case FireAction::kStart: {
      RunRequest request;
      request.trigger = fire.trigger;
      request.scheduled_at = TimePoint(fire.scheduled_at);
      auto id = runs_->StartRun(entry->version, request);
      f.event = "schedule.fired";
      if (!id.ok()) {
        LogError(f, "fire of " + at + " not started: " + id.error().message);
        return;
      }
      f.run = *id;
      LogInfo(f, std::string(RunTriggerName(fire.trigger)) + " run for " + at);
      return;
    }
    case FireAction::kQueue:
      f.event = "schedule.queued";
      LogInfo(f, "fire of " + at + " waits for the running run to end");
      return;
    case FireAction::kSkip: {
      NewRun record;
      record.workflow = fire.workflow;
      record.source = entry->version->source;
      record.base_dir = entry->version->base_dir;
      record.trigger = fire.trigger;
      record.status = RunStatus::kSkipped;
      record.scheduled_at = TimePoint(fire.scheduled_at);
      record.created_at = std::chrono::system_clock::now();
      record.reason = fire.reason;
      auto id = store_->CreateRun(record);
      f.event = "schedule.skipped";
      if (id.ok()) f.run = *id;
      if (id.ok() && notify_) notify_->OnSkippedFire(*entry->version->workflow, *id, fire.reason);
      LogWarn(f, "fire of " + at + " skipped: " + fire.reason);
      return;
    }
  }
}

}  // namespace picoflow
