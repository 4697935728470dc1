#include "picoflowd/sched/scheduler.h"

#include <date/tz.h>
#include <time.h>

#include <algorithm>

#include "common/duration.h"
#include "common/time_format.h"

namespace picoflow {
namespace {

using std::chrono::seconds;

}  // namespace

TimePoint SystemWallClock::Now() const { return std::chrono::system_clock::now(); }

std::chrono::nanoseconds SystemWallClock::Elapsed() const {
  timespec ts{};
  clock_gettime(CLOCK_BOOTTIME, &ts);
  return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}

Result<std::optional<ScheduleSpec>> ScheduleSpec::FromWorkflow(const Workflow& workflow) {
  if (workflow.schedule.empty()) return std::optional<ScheduleSpec>{};
  ScheduleSpec spec;
  spec.workflow = workflow.name;
  for (const std::string& text : workflow.schedule) {
    auto expr = CronExpr::Parse(text);
    if (!expr.ok()) {
      return Err(ErrorCode::kInvalid, "workflow '" + workflow.name + "': schedule '" + text +
                                          "': " + expr.error().message);
    }
    spec.exprs.push_back(*expr);
  }
  auto zone = FindZone(workflow.timezone);
  if (!zone.ok()) {
    return Err(ErrorCode::kInvalid, "workflow '" + workflow.name + "': " + zone.error().message);
  }
  spec.zone = *zone;
  spec.overlap = workflow.overlap;
  spec.max_active_runs = workflow.max_active_runs;
  spec.catchup = workflow.catchup;
  spec.catchup_window = workflow.catchup_window;
  return std::optional<ScheduleSpec>{std::move(spec)};
}

Scheduler::Scheduler(const WallClock& clock)
    : clock_(clock), last_wall_(clock.Now()), last_elapsed_(clock.Elapsed()) {}

SysSeconds Scheduler::NowSeconds() const { return std::chrono::floor<seconds>(clock_.Now()); }

std::optional<SysSeconds> Scheduler::NextOf(const ScheduleSpec& spec, SysSeconds after) const {
  std::optional<SysSeconds> best;
  for (const CronExpr& expr : spec.exprs) {
    auto t = expr.NextAfter(after, spec.zone);
    if (t && (!best || *t < *best)) best = t;
  }
  return best;
}

void Scheduler::Set(ScheduleSpec spec, std::optional<SysSeconds> last_fire) {
  const SysSeconds now = NowSeconds();
  auto it = entries_.find(spec.workflow);
  if (it != entries_.end()) {
    // A new version never catches up: fires of the new expressions before
    // now were never due.
    // (A catch-up still pending from the store stays pending.)
    Entry& e = it->second;
    e.spec = std::move(spec);
    if (!e.from_store) e.anchor = std::max(e.anchor, now);
    e.next = NextOf(e.spec, std::max(e.anchor, now));
    if (e.spec.overlap == OverlapPolicy::kAllow) e.queue.clear();
    return;
  }
  Entry e;
  e.spec = std::move(spec);
  if (last_fire) {
    e.anchor = *last_fire;
    e.anchor_is_fire = true;
    e.from_store = true;
  } else {
    e.anchor = now;
  }
  e.next = NextOf(e.spec, std::max(e.anchor, now));
  const std::string name = e.spec.workflow;
  entries_.emplace(name, std::move(e));
}

bool Scheduler::Remove(const std::string& workflow) { return entries_.erase(workflow) != 0; }

bool Scheduler::SetPaused(const std::string& workflow, bool paused) {
  auto it = entries_.find(workflow);
  if (it == entries_.end()) return false;
  Entry& e = it->second;
  if (e.paused == paused) return true;
  e.paused = paused;
  if (paused) {
    e.queue.clear();
  } else {
    // Resume from now: what fell due while paused was refused, not missed.
    e.anchor = std::max(e.anchor, NowSeconds());
    e.from_store = false;
    e.next = NextOf(e.spec, e.anchor);
  }
  return true;
}

SchedulerTick Scheduler::Evaluate(const RunningFn& running) {
  const TimePoint wall = clock_.Now();
  const std::chrono::nanoseconds elapsed = clock_.Elapsed();
  // How far the wall clock moved beyond the time that really passed.
  seconds jump =
      std::chrono::duration_cast<seconds>((wall - last_wall_) - (elapsed - last_elapsed_));
  // Below the threshold (or 0.2% of the time passed, far above any NTP slew)
  // it is drift: no jump.
  const auto tolerance =
      std::max<std::chrono::nanoseconds>(kJumpThreshold, (elapsed - last_elapsed_) / 500);
  if (jump < tolerance && jump > -tolerance) jump = seconds{0};
  last_wall_ = wall;
  last_elapsed_ = elapsed;
  SchedulerTick tick;
  if (jump != seconds{0}) {
    tick.notes.push_back("wall clock jumped " + std::string(jump.count() > 0 ? "forward" : "back") +
                         " by " + FormatDuration(jump.count() > 0 ? jump : -jump));
  }
  const SysSeconds now = std::chrono::floor<seconds>(wall);
  for (auto& [name, e] : entries_) EvaluateEntry(e, now, jump, running, tick);
  return tick;
}

// The phases: a jump forward past the window is a correction; otherwise the
// instants in (anchor, now] within the window are due: the one the timer was
// armed for fires as `cron`, the others were missed and follow `catchup`.
void Scheduler::EvaluateEntry(Entry& e, SysSeconds now, seconds jump, const RunningFn& running,
                              SchedulerTick& tick) {
  if (e.paused) return;
  e.started_now = 0;
  // The common case, and O(1): no jump, nothing pending, not due yet.
  if (jump == seconds{0} && !e.from_store && e.next && *e.next > now) return;
  const std::string& name = e.spec.workflow;
  // Nothing fired yet and the clock went back: "from now" is now.
  if (!e.anchor_is_fire && e.anchor > now) e.anchor = now;
  const seconds window = e.spec.catchup_window;

  if (jump > window && !e.from_store) {
    const auto first = NextOf(e.spec, e.anchor);
    if (first && *first <= now) {
      tick.notes.push_back("workflow '" + name + "': the clock jump is more than catchup_window (" +
                           FormatDuration(window) + "): a correction; fires from " +
                           FormatIso8601(*first) + " to now are not run");
      e.anchor = now;
      e.anchor_is_fire = true;
      tick.handled.emplace_back(name, now);
    }
    e.next = NextOf(e.spec, std::max(e.anchor, now));
    return;
  }

  // Collect the due instants, keeping the newest kMaxCatchup + 1.
  const SysSeconds from = std::max(e.anchor, now - window);
  std::deque<SysSeconds> due;
  std::int64_t total = 0;
  for (auto t = NextOf(e.spec, from); t && *t <= now; t = NextOf(e.spec, *t)) {
    due.push_back(*t);
    if (due.size() > static_cast<std::size_t>(kMaxCatchup) + 1) due.pop_front();
    ++total;
  }
  if (e.anchor < from) {
    if (auto old = NextOf(e.spec, e.anchor); old && *old <= from) {
      tick.notes.push_back("workflow '" + name + "': fires before " + FormatIso8601(from) +
                           " are older than catchup_window (" + FormatDuration(window) +
                           ") and are not run");
    }
  }
  if (due.empty()) {
    e.from_store = false;
    e.next = NextOf(e.spec, std::max(e.anchor, now));
    return;
  }
  const SysSeconds last = due.back();

  // The fire the timer was armed for, on time (give or take a loop turn).
  const bool on_time = !e.from_store && jump <= seconds{0} && e.next && due.front() == *e.next;
  if (on_time) {
    Decide(e, Fire{name, due.front(), RunTrigger::kCron, FireAction::kStart, {}}, false, running,
           tick);
    due.pop_front();
    --total;
  }

  // What is left was missed: downtime, a stalled loop, a jump within the window.
  if (!due.empty()) {
    switch (e.spec.catchup) {
      case CatchupPolicy::kNone:
        tick.notes.push_back("workflow '" + name + "': " + std::to_string(total) +
                             " missed fire(s) not run (catchup: none)");
        break;
      case CatchupPolicy::kLatest:
        Decide(e, Fire{name, due.back(), RunTrigger::kCatchup, FireAction::kStart, {}}, false,
               running, tick);
        if (total > 1) {
          tick.notes.push_back("workflow '" + name + "': " + std::to_string(total) +
                               " missed fires, the latest runs (catchup: latest)");
        }
        break;
      case CatchupPolicy::kAll: {
        while (due.size() > static_cast<std::size_t>(kMaxCatchup)) due.pop_front();
        if (total > kMaxCatchup) {
          tick.notes.push_back("workflow '" + name + "': " + std::to_string(total) +
                               " missed fires, only the latest " + std::to_string(kMaxCatchup) +
                               " run (catchup: all)");
        }
        bool first = true;
        for (SysSeconds t : due) {
          Decide(e, Fire{name, t, RunTrigger::kCatchup, FireAction::kStart, {}}, !first, running,
                 tick);
          first = false;
        }
        break;
      }
    }
  }
  e.anchor = last;
  e.anchor_is_fire = true;
  e.from_store = false;
  tick.handled.emplace_back(name, last);
  e.next = NextOf(e.spec, now);
}

// Applies the overlap policy with the workflow's limit of live runs.
// `queue_always`: a catch-up fire of `all` after the first waits its turn
// rather than being skipped.
void Scheduler::Decide(Entry& e, Fire fire, bool queue_always, const RunningFn& running,
                       SchedulerTick& tick) {
  const int limit = e.spec.max_active_runs.value_or(1);
  const bool busy = running(e.spec.workflow) + e.started_now >= limit || !e.queue.empty();
  if (!busy || e.spec.overlap == OverlapPolicy::kAllow) {
    fire.action = FireAction::kStart;
    ++e.started_now;
  } else if (queue_always || (e.spec.overlap == OverlapPolicy::kQueue && e.queue.empty())) {
    fire.action = FireAction::kQueue;
    e.queue.push_back(fire);
  } else {
    fire.action = FireAction::kSkip;
    fire.reason = SkipReason(e.spec);
    ++e.skipped;
  }
  tick.fires.push_back(std::move(fire));
}

std::string Scheduler::SkipReason(const ScheduleSpec& spec) {
  const bool skip = spec.overlap == OverlapPolicy::kSkip;
  if (!spec.max_active_runs) {
    return skip ? "the previous run was still in progress (overlap: skip)"
                : "a fire was already queued behind the running run (overlap: queue)";
  }
  const std::string reached =
      "max_active_runs " + std::to_string(*spec.max_active_runs) + " reached";
  return skip ? reached + " (overlap: skip)"
              : reached + " and a fire was already queued (overlap: queue)";
}

const Fire* Scheduler::FirstQueued(const std::string& workflow) const {
  auto it = entries_.find(workflow);
  if (it == entries_.end() || it->second.paused || it->second.queue.empty()) return nullptr;
  return &it->second.queue.front();
}

std::optional<Fire> Scheduler::TakeQueued(const std::string& workflow, int running) {
  auto it = entries_.find(workflow);
  if (it == entries_.end()) return std::nullopt;
  Entry& e = it->second;
  if (e.paused || e.queue.empty() || running >= e.spec.max_active_runs.value_or(1)) {
    return std::nullopt;
  }
  Fire fire = std::move(e.queue.front());
  e.queue.pop_front();
  fire.action = FireAction::kStart;
  return fire;
}

std::optional<SysSeconds> Scheduler::NextDeadline() const {
  std::optional<SysSeconds> best;
  for (const auto& [name, e] : entries_) {
    if (e.paused || !e.next) continue;
    // A workflow loaded with a last fire is due at once for its catch-up.
    const SysSeconds t = e.from_store ? std::min(*e.next, e.anchor) : *e.next;
    if (!best || t < *best) best = t;
  }
  return best;
}

std::optional<SysSeconds> Scheduler::NextFire(const std::string& workflow) const {
  auto it = entries_.find(workflow);
  if (it == entries_.end()) return std::nullopt;
  const Entry& e = it->second;
  if (e.paused) return NextOf(e.spec, std::max(e.anchor, NowSeconds()));
  return e.next;
}

std::vector<SysSeconds> Scheduler::Upcoming(const std::string& workflow, int count) const {
  std::vector<SysSeconds> out;
  auto it = entries_.find(workflow);
  if (it == entries_.end()) return out;
  const Entry& e = it->second;
  SysSeconds t = std::max(e.anchor, NowSeconds());
  for (int i = 0; i < count; ++i) {
    auto next = NextOf(e.spec, t);
    if (!next) break;
    out.push_back(*next);
    t = *next;
  }
  return out;
}

std::int64_t Scheduler::SkippedCount(const std::string& workflow) const {
  auto it = entries_.find(workflow);
  return it == entries_.end() ? 0 : it->second.skipped;
}

std::size_t Scheduler::QueuedCount(const std::string& workflow) const {
  auto it = entries_.find(workflow);
  return it == entries_.end() ? 0 : it->second.queue.size();
}

}  // namespace picoflow
