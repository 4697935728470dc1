#include "picoflowd/sched/scheduler.h"

#include <date/tz.h>
#include <doctest/doctest.h>

#include <cstdio>
#include <map>
#include <string>
#include <vector>

namespace picoflow {
namespace {

using namespace std::chrono_literals;
using Strings = std::vector<std::string>;

// "2024-03-30 12:00:00 +0100" -> the instant.
SysSeconds At(const std::string& text) {
  int year = 0, hour = 0, minute = 0, second = 0, oh = 0, om = 0;
  unsigned month = 0, day = 0;
  char sign = 0;
  const int n = std::sscanf(text.c_str(), "%d-%u-%u %d:%d:%d %c%2d%2d", &year, &month, &day, &hour,
                            &minute, &second, &sign, &oh, &om);
  REQUIRE_MESSAGE(n == 9, "bad time '" << text << "'");
  const std::chrono::minutes offset{(sign == '-' ? -1 : 1) * (oh * 60 + om)};
  const date::sys_days days{date::year{year} / date::month{month} / date::day{day}};
  return days + std::chrono::hours{hour} + std::chrono::minutes{minute} +
         std::chrono::seconds{second} - offset;
}

const date::time_zone* Zone(const std::string& name) {
  auto zone = FindZone(name);
  REQUIRE_MESSAGE(zone.ok(), zone.error().message);
  return *zone;
}

std::string Show(SysSeconds t, const std::string& zone = "UTC") {
  return date::format("%F %T %z", date::make_zoned(Zone(zone), t));
}

// A wall clock that moves only when told; SetWall() is a jump (the elapsed
// clock does not follow), Advance() is time passing.
class FakeClock final : public WallClock {
 public:
  explicit FakeClock(SysSeconds start) : wall_(start) {}
  TimePoint Now() const override { return wall_; }
  std::chrono::nanoseconds Elapsed() const override { return elapsed_; }
  void Advance(std::chrono::seconds d) {
    wall_ += d;
    elapsed_ += d;
  }
  void AdvanceTo(SysSeconds t) { Advance(t - std::chrono::floor<std::chrono::seconds>(wall_)); }
  void SetWall(SysSeconds t) { wall_ = t; }

 private:
  TimePoint wall_;
  std::chrono::nanoseconds elapsed_{1000s};
};

ScheduleSpec Spec(const std::string& name, const Strings& exprs, const std::string& zone = "UTC",
                  OverlapPolicy overlap = OverlapPolicy::kSkip,
                  CatchupPolicy catchup = CatchupPolicy::kLatest,
                  std::chrono::seconds window = 24h) {
  ScheduleSpec spec;
  spec.workflow = name;
  for (const std::string& e : exprs) {
    auto expr = CronExpr::Parse(e);
    REQUIRE_MESSAGE(expr.ok(), expr.error().message);
    spec.exprs.push_back(*expr);
  }
  spec.zone = Zone(zone);
  spec.overlap = overlap;
  spec.catchup = catchup;
  spec.catchup_window = window;
  return spec;
}

const char* ActionName(FireAction a) {
  switch (a) {
    case FireAction::kStart: return "start";
    case FireAction::kQueue: return "queue";
    case FireAction::kSkip: return "skip";
  }
  return "?";
}

// "name TIME trigger action" per fire, times shown in `zone`.
Strings Describe(const std::vector<Fire>& fires, const std::string& zone = "UTC") {
  Strings out;
  for (const Fire& f : fires) {
    out.push_back(f.workflow + " " + Show(f.scheduled_at, zone) + " " + RunTriggerName(f.trigger) +
                  " " + ActionName(f.action));
  }
  return out;
}

// Plays the daemon: sleeps (fake) to each deadline up to `until`, evaluates,
// and collects the fires. Runs end at once unless `running` says otherwise.
struct Sim {
  FakeClock clock;
  Scheduler scheduler{clock};
  std::map<std::string, int> running;
  RunningFn running_fn = [this](const std::string& w) {
    auto it = running.find(w);
    return it == running.end() ? 0 : it->second;
  };
  int wakeups = 0;

  explicit Sim(const std::string& start) : clock(At(start)) {}

  std::vector<Fire> RunUntil(const std::string& until) {
    std::vector<Fire> fires;
    const SysSeconds end = At(until);
    while (auto deadline = scheduler.NextDeadline()) {
      if (*deadline > end) break;
      clock.AdvanceTo(std::max(*deadline, std::chrono::floor<std::chrono::seconds>(clock.Now())));
      ++wakeups;
      SchedulerTick tick = scheduler.Evaluate(running_fn);
      fires.insert(fires.end(), tick.fires.begin(), tick.fires.end());
    }
    clock.AdvanceTo(end);
    return fires;
  }

  std::vector<Fire> Evaluate() { return scheduler.Evaluate(running_fn).fires; }

  // The queued fire of `w` that starts now (none or one), as the daemon
  // takes it when a run of `w` ends.
  std::vector<Fire> Take(const std::string& w) {
    std::vector<Fire> out;
    if (auto fire = scheduler.TakeQueued(w, running_fn(w))) out.push_back(std::move(*fire));
    return out;
  }
};

TEST_CASE("a workflow fires at each cron time, waking only at those times") {
  Sim sim("2024-01-01 00:00:00 +0000");
  sim.scheduler.Set(Spec("w", {"*/15 * * * *"}));
  CHECK(Show(*sim.scheduler.NextDeadline()) == "2024-01-01 00:15:00 +0000");
  CHECK(Describe(sim.RunUntil("2024-01-01 01:00:00 +0000")) ==
        Strings{"w 2024-01-01 00:15:00 +0000 cron start", "w 2024-01-01 00:30:00 +0000 cron start",
                "w 2024-01-01 00:45:00 +0000 cron start",
                "w 2024-01-01 01:00:00 +0000 cron start"});
  CHECK(sim.wakeups == 4);
  CHECK(Show(*sim.scheduler.NextDeadline()) == "2024-01-01 01:15:00 +0000");
}

TEST_CASE("nothing scheduled means no deadline at all") {
  Sim sim("2024-01-01 00:00:00 +0000");
  CHECK_FALSE(sim.scheduler.NextDeadline());
  sim.scheduler.Set(Spec("w", {"0 * * * *"}));
  CHECK(sim.scheduler.Remove("w"));
  CHECK_FALSE(sim.scheduler.NextDeadline());
}

TEST_CASE("Europe/Berlin spring-forward: 02:30 fires once at 03:00 CEST, fall-back 02:30 once") {
  Sim sim("2024-03-30 12:00:00 +0100");
  sim.scheduler.Set(Spec("w", {"30 2 * * *"}, "Europe/Berlin"));
  CHECK(
      Describe(sim.RunUntil("2024-04-01 12:00:00 +0200"), "Europe/Berlin") ==
      Strings{"w 2024-03-31 03:00:00 +0200 cron start", "w 2024-04-01 02:30:00 +0200 cron start"});

  Sim fall("2024-10-26 12:00:00 +0200");
  fall.scheduler.Set(Spec("w", {"30 2 * * *"}, "Europe/Berlin"));
  CHECK(
      Describe(fall.RunUntil("2024-10-28 12:00:00 +0100"), "Europe/Berlin") ==
      Strings{"w 2024-10-27 02:30:00 +0200 cron start", "w 2024-10-28 02:30:00 +0100 cron start"});
}

TEST_CASE("America/New_York DST: an hourly job skips no hour forward and repeats none back") {
  Sim spring("2024-03-10 00:30:00 -0500");
  spring.scheduler.Set(Spec("w", {"0 * * * *"}, "America/New_York"));
  CHECK(Describe(spring.RunUntil("2024-03-10 04:00:00 -0400"), "America/New_York") ==
        Strings{"w 2024-03-10 01:00:00 -0500 cron start", "w 2024-03-10 03:00:00 -0400 cron start",
                "w 2024-03-10 04:00:00 -0400 cron start"});

  Sim fall("2024-11-03 00:30:00 -0400");
  fall.scheduler.Set(Spec("w", {"30 1 * * *"}, "America/New_York"));
  CHECK(
      Describe(fall.RunUntil("2024-11-04 12:00:00 -0500"), "America/New_York") ==
      Strings{"w 2024-11-03 01:30:00 -0400 cron start", "w 2024-11-04 01:30:00 -0500 cron start"});
}

TEST_CASE("day-of-month and day-of-week combine with OR when both are restricted") {
  // 2024-09-13 is a Friday; 2024-09-06 and -20 are Fridays too.
  Sim sim("2024-09-01 00:00:00 +0000");
  sim.scheduler.Set(Spec("or", {"0 0 13 * FRI"}));
  sim.scheduler.Set(Spec("and", {"0 0 * * FRI"}));
  CHECK(Describe(sim.RunUntil("2024-09-21 00:00:00 +0000")) ==
        Strings{
            "and 2024-09-06 00:00:00 +0000 cron start", "or 2024-09-06 00:00:00 +0000 cron start",
            "and 2024-09-13 00:00:00 +0000 cron start", "or 2024-09-13 00:00:00 +0000 cron start",
            "and 2024-09-20 00:00:00 +0000 cron start", "or 2024-09-20 00:00:00 +0000 cron start"});
  Sim dom("2024-10-01 00:00:00 +0000");
  dom.scheduler.Set(Spec("or", {"0 0 13 * FRI"}));
  CHECK(Describe(dom.RunUntil("2024-10-14 00:00:00 +0000")) ==
        Strings{"or 2024-10-04 00:00:00 +0000 cron start",
                "or 2024-10-11 00:00:00 +0000 cron start",
                "or 2024-10-13 00:00:00 +0000 cron start"});
}

TEST_CASE("a list of expressions fires at the union of their times, a shared instant once") {
  Sim sim("2024-01-01 00:00:00 +0000");
  sim.scheduler.Set(Spec("w", {"0 */2 * * *", "0 */3 * * *"}));
  CHECK(Describe(sim.RunUntil("2024-01-01 06:00:00 +0000")) ==
        Strings{"w 2024-01-01 02:00:00 +0000 cron start", "w 2024-01-01 03:00:00 +0000 cron start",
                "w 2024-01-01 04:00:00 +0000 cron start",
                "w 2024-01-01 06:00:00 +0000 cron start"});
}

TEST_CASE("many workflows due at the same instant fire in one wakeup") {
  Sim sim("2024-01-01 00:00:30 +0000");
  for (int i = 0; i < 200; ++i)
    sim.scheduler.Set(Spec("w" + std::to_string(1000 + i), {"0 * * * *"}));
  const auto fires = sim.RunUntil("2024-01-01 01:00:00 +0000");
  CHECK(sim.wakeups == 1);
  REQUIRE(fires.size() == 200);
  for (const Fire& f : fires) {
    CHECK(Show(f.scheduled_at) == "2024-01-01 01:00:00 +0000");
    CHECK(f.action == FireAction::kStart);
  }
}

TEST_CASE("overlap skip records a skipped fire with its reason and counts it") {
  Sim sim("2024-01-01 00:00:00 +0000");
  sim.scheduler.Set(Spec("w", {"*/10 * * * *"}));
  sim.running["w"] = 1;
  const auto fires = sim.RunUntil("2024-01-01 00:20:00 +0000");
  CHECK(Describe(fires) ==
        Strings{"w 2024-01-01 00:10:00 +0000 cron skip", "w 2024-01-01 00:20:00 +0000 cron skip"});
  CHECK(fires[0].reason == "the previous run was still in progress (overlap: skip)");
  CHECK(sim.scheduler.SkippedCount("w") == 2);
  sim.running["w"] = 0;
  CHECK(Describe(sim.RunUntil("2024-01-01 00:30:00 +0000")) ==
        Strings{"w 2024-01-01 00:30:00 +0000 cron start"});
}

TEST_CASE("overlap queue keeps one fire waiting and skips the rest until the run ends") {
  Sim sim("2024-01-01 00:00:00 +0000");
  sim.scheduler.Set(Spec("w", {"*/10 * * * *"}, "UTC", OverlapPolicy::kQueue));
  sim.running["w"] = 1;
  const auto fires = sim.RunUntil("2024-01-01 00:20:00 +0000");
  CHECK(Describe(fires) ==
        Strings{"w 2024-01-01 00:10:00 +0000 cron queue", "w 2024-01-01 00:20:00 +0000 cron skip"});
  CHECK(fires[1].reason == "a fire was already queued behind the running run (overlap: queue)");
  CHECK(sim.scheduler.QueuedCount("w") == 1);
  CHECK(sim.Take("w").empty());  // still running
  sim.running["w"] = 0;
  CHECK(Describe(sim.Take("w")) == Strings{"w 2024-01-01 00:10:00 +0000 cron start"});
  CHECK(sim.scheduler.QueuedCount("w") == 0);
}

TEST_CASE("overlap allow starts every fire even while runs are in progress") {
  Sim sim("2024-01-01 00:00:00 +0000");
  sim.scheduler.Set(Spec("w", {"*/10 * * * *"}, "UTC", OverlapPolicy::kAllow));
  sim.running["w"] = 3;
  CHECK(
      Describe(sim.RunUntil("2024-01-01 00:20:00 +0000")) ==
      Strings{"w 2024-01-01 00:10:00 +0000 cron start", "w 2024-01-01 00:20:00 +0000 cron start"});
}

ScheduleSpec Limited(OverlapPolicy overlap, int max_active_runs,
                     CatchupPolicy catchup = CatchupPolicy::kLatest) {
  ScheduleSpec spec = Spec("w", {"*/10 * * * *"}, "UTC", overlap, catchup);
  spec.max_active_runs = max_active_runs;
  return spec;
}

TEST_CASE("max_active_runs 2 with overlap skip starts fires until two runs are live") {
  Sim sim("2024-01-01 00:00:00 +0000");
  sim.scheduler.Set(Limited(OverlapPolicy::kSkip, 2));
  sim.running["w"] = 1;
  CHECK(Describe(sim.RunUntil("2024-01-01 00:10:00 +0000")) ==
        Strings{"w 2024-01-01 00:10:00 +0000 cron start"});
  sim.running["w"] = 2;
  const auto fires = sim.RunUntil("2024-01-01 00:20:00 +0000");
  CHECK(Describe(fires) == Strings{"w 2024-01-01 00:20:00 +0000 cron skip"});
  CHECK(fires[0].reason == "max_active_runs 2 reached (overlap: skip)");
  CHECK(sim.scheduler.SkippedCount("w") == 1);
  // Runs started by hand and waiting for a place count as the daemon's
  // RunningFn reports them: three is past two as well.
  sim.running["w"] = 3;
  CHECK(Describe(sim.RunUntil("2024-01-01 00:30:00 +0000")) ==
        Strings{"w 2024-01-01 00:30:00 +0000 cron skip"});
  sim.running["w"] = 0;
  CHECK(Describe(sim.RunUntil("2024-01-01 00:40:00 +0000")) ==
        Strings{"w 2024-01-01 00:40:00 +0000 cron start"});
}

TEST_CASE("max_active_runs 1 names itself in the reason of a skipped fire") {
  Sim sim("2024-01-01 00:00:00 +0000");
  sim.scheduler.Set(Limited(OverlapPolicy::kSkip, 1));
  sim.running["w"] = 1;
  const auto fires = sim.RunUntil("2024-01-01 00:10:00 +0000");
  REQUIRE(fires.size() == 1);
  CHECK(fires[0].action == FireAction::kSkip);
  CHECK(fires[0].reason == "max_active_runs 1 reached (overlap: skip)");
}

TEST_CASE("max_active_runs 2 with overlap queue keeps one fire waiting until fewer than two run") {
  Sim sim("2024-01-01 00:00:00 +0000");
  sim.scheduler.Set(Limited(OverlapPolicy::kQueue, 2));
  sim.running["w"] = 2;
  const auto fires = sim.RunUntil("2024-01-01 00:20:00 +0000");
  CHECK(Describe(fires) ==
        Strings{"w 2024-01-01 00:10:00 +0000 cron queue", "w 2024-01-01 00:20:00 +0000 cron skip"});
  CHECK(fires[1].reason ==
        "max_active_runs 2 reached and a fire was already queued (overlap: queue)");
  REQUIRE(sim.scheduler.FirstQueued("w") != nullptr);
  CHECK(Show(sim.scheduler.FirstQueued("w")->scheduled_at) == "2024-01-01 00:10:00 +0000");
  CHECK(sim.Take("w").empty());  // two still run
  sim.running["w"] = 1;
  CHECK(Describe(sim.Take("w")) == Strings{"w 2024-01-01 00:10:00 +0000 cron start"});
  CHECK(sim.scheduler.FirstQueued("w") == nullptr);
  CHECK(sim.Take("w").empty());
}

TEST_CASE("with max_active_runs 2 two catch-up fires of all start at once and the rest wait") {
  Sim sim("2024-01-01 00:35:00 +0000");
  sim.scheduler.Set(Limited(OverlapPolicy::kSkip, 2, CatchupPolicy::kAll),
                    At("2024-01-01 00:00:00 +0000"));
  CHECK(Describe(sim.Evaluate()) == Strings{"w 2024-01-01 00:10:00 +0000 catchup start",
                                            "w 2024-01-01 00:20:00 +0000 catchup start",
                                            "w 2024-01-01 00:30:00 +0000 catchup queue"});
  sim.running["w"] = 2;
  CHECK(sim.Take("w").empty());
  sim.running["w"] = 1;
  CHECK(Describe(sim.Take("w")) == Strings{"w 2024-01-01 00:30:00 +0000 catchup start"});
}

TEST_CASE("a paused workflow's queued fire neither shows nor starts") {
  Sim sim("2024-01-01 00:00:00 +0000");
  sim.scheduler.Set(Limited(OverlapPolicy::kQueue, 1));
  sim.running["w"] = 1;
  sim.RunUntil("2024-01-01 00:10:00 +0000");
  REQUIRE(sim.scheduler.FirstQueued("w") != nullptr);
  sim.scheduler.SetPaused("w", true);
  CHECK(sim.scheduler.FirstQueued("w") == nullptr);
  sim.running["w"] = 0;
  CHECK(sim.Take("w").empty());
  CHECK(sim.scheduler.FirstQueued("other") == nullptr);
  CHECK_FALSE(sim.scheduler.TakeQueued("other", 0).has_value());
}

TEST_CASE("after downtime catchup latest runs the most recent missed fire once") {
  Sim sim("2024-01-01 10:30:00 +0000");
  sim.scheduler.Set(Spec("w", {"0 * * * *"}), At("2024-01-01 06:00:00 +0000"));
  CHECK(sim.scheduler.NextDeadline() <= At("2024-01-01 10:30:00 +0000"));
  SchedulerTick tick = sim.scheduler.Evaluate(sim.running_fn);
  CHECK(Describe(tick.fires) == Strings{"w 2024-01-01 10:00:00 +0000 catchup start"});
  REQUIRE(tick.handled.size() == 1);
  CHECK(Show(tick.handled[0].second) == "2024-01-01 10:00:00 +0000");
  CHECK(Show(*sim.scheduler.NextDeadline()) == "2024-01-01 11:00:00 +0000");
  CHECK(Describe(sim.RunUntil("2024-01-01 11:00:00 +0000")) ==
        Strings{"w 2024-01-01 11:00:00 +0000 cron start"});
}

TEST_CASE("after downtime catchup all runs each missed fire in order, one after another") {
  Sim sim("2024-01-01 03:30:00 +0000");
  sim.scheduler.Set(Spec("w", {"0 * * * *"}, "UTC", OverlapPolicy::kSkip, CatchupPolicy::kAll),
                    At("2024-01-01 00:00:00 +0000"));
  CHECK(Describe(sim.Evaluate()) == Strings{"w 2024-01-01 01:00:00 +0000 catchup start",
                                            "w 2024-01-01 02:00:00 +0000 catchup queue",
                                            "w 2024-01-01 03:00:00 +0000 catchup queue"});
  sim.running["w"] = 1;  // the first one runs
  CHECK(sim.Take("w").empty());
  sim.running["w"] = 0;
  CHECK(Describe(sim.Take("w")) == Strings{"w 2024-01-01 02:00:00 +0000 catchup start"});
  CHECK(Describe(sim.Take("w")) == Strings{"w 2024-01-01 03:00:00 +0000 catchup start"});
  CHECK(sim.Take("w").empty());
}

TEST_CASE("catch-up is capped at 100 runs and bounded by catchup_window") {
  Sim sim("2024-01-02 00:00:30 +0000");
  sim.scheduler.Set(Spec("w", {"* * * * *"}, "UTC", OverlapPolicy::kAllow, CatchupPolicy::kAll),
                    At("2024-01-01 00:00:00 +0000"));
  SchedulerTick tick = sim.scheduler.Evaluate(sim.running_fn);
  REQUIRE(tick.fires.size() == 100);
  CHECK(Show(tick.fires.front().scheduled_at) == "2024-01-01 22:21:00 +0000");
  CHECK(Show(tick.fires.back().scheduled_at) == "2024-01-02 00:00:00 +0000");

  Sim window("2024-01-01 10:30:00 +0000");
  window.scheduler.Set(
      Spec("w", {"0 * * * *"}, "UTC", OverlapPolicy::kAllow, CatchupPolicy::kAll, 2h),
      At("2024-01-01 00:00:00 +0000"));
  CHECK(Describe(window.Evaluate()) == Strings{"w 2024-01-01 09:00:00 +0000 catchup start",
                                               "w 2024-01-01 10:00:00 +0000 catchup start"});
}

TEST_CASE("catchup none runs nothing but still records the missed fires as handled") {
  Sim sim("2024-01-01 10:30:00 +0000");
  sim.scheduler.Set(Spec("w", {"0 * * * *"}, "UTC", OverlapPolicy::kSkip, CatchupPolicy::kNone),
                    At("2024-01-01 06:00:00 +0000"));
  SchedulerTick tick = sim.scheduler.Evaluate(sim.running_fn);
  CHECK(tick.fires.empty());
  REQUIRE(tick.handled.size() == 1);
  CHECK(Show(tick.handled[0].second) == "2024-01-01 10:00:00 +0000");
}

TEST_CASE("a workflow never fired before starts from now, without catch-up") {
  Sim sim("2024-01-01 10:30:00 +0000");
  sim.scheduler.Set(Spec("w", {"0 * * * *"}));
  CHECK(sim.Evaluate().empty());
  CHECK(Show(*sim.scheduler.NextDeadline()) == "2024-01-01 11:00:00 +0000");
}

TEST_CASE("a clock jump forward beyond catchup_window is a correction, not missed runs") {
  // An RTC-less board: boots in 1970, NTP sets 2024 a minute later.
  Sim sim("1970-01-01 00:00:10 +0000");
  sim.scheduler.Set(Spec("w", {"*/5 * * * *"}));
  sim.clock.Advance(60s);
  sim.clock.SetWall(At("2024-06-01 12:03:00 +0000"));
  SchedulerTick tick = sim.scheduler.Evaluate(sim.running_fn);
  CHECK(tick.fires.empty());
  CHECK(tick.notes.size() == 2);  // the jump, and the correction of w
  CHECK(Show(*sim.scheduler.NextDeadline()) == "2024-06-01 12:05:00 +0000");
  CHECK(
      Describe(sim.RunUntil("2024-06-01 12:10:00 +0000")) ==
      Strings{"w 2024-06-01 12:05:00 +0000 cron start", "w 2024-06-01 12:10:00 +0000 cron start"});
}

TEST_CASE("a board booting in 1970 with last fires in the future waits for the real clock") {
  Sim sim("1970-01-01 00:00:10 +0000");
  sim.scheduler.Set(Spec("w", {"0 * * * *"}), At("2024-06-01 11:00:00 +0000"));
  CHECK(sim.Evaluate().empty());
  CHECK(Show(*sim.scheduler.NextDeadline()) == "2024-06-01 12:00:00 +0000");
  sim.clock.Advance(30s);
  sim.clock.SetWall(At("2024-06-01 15:20:00 +0000"));
  CHECK(sim.Evaluate().empty());  // a correction: 12:00..15:00 are not run
  CHECK(Show(*sim.scheduler.NextDeadline()) == "2024-06-01 16:00:00 +0000");
}

TEST_CASE("a clock jump forward within catchup_window catches up like downtime") {
  Sim sim("2024-01-01 10:10:00 +0000");
  sim.scheduler.Set(Spec("w", {"0 * * * *"}));
  sim.clock.Advance(5s);
  sim.clock.SetWall(At("2024-01-01 13:30:00 +0000"));
  CHECK(Describe(sim.Evaluate()) == Strings{"w 2024-01-01 13:00:00 +0000 catchup start"});
  CHECK(Show(*sim.scheduler.NextDeadline()) == "2024-01-01 14:00:00 +0000");
}

TEST_CASE("drift of the wall clock against the elapsed clock is not a jump") {
  Sim sim("2024-01-01 00:00:00 +0000");
  sim.scheduler.Set(Spec("w", {"0 0 * * *"}));
  sim.clock.Advance(24h - 40s);
  sim.clock.SetWall(At("2024-01-02 00:00:00 +0000"));  // 40 s ahead after a day: slew, 0.05%
  SchedulerTick tick = sim.scheduler.Evaluate(sim.running_fn);
  CHECK(Describe(tick.fires) == Strings{"w 2024-01-02 00:00:00 +0000 cron start"});
  CHECK(tick.notes.empty());
}

TEST_CASE("a clock jump back never repeats fires already done") {
  Sim sim("2024-01-01 09:50:00 +0000");
  sim.scheduler.Set(Spec("w", {"0 * * * *"}));
  CHECK(
      Describe(sim.RunUntil("2024-01-01 11:30:00 +0000")) ==
      Strings{"w 2024-01-01 10:00:00 +0000 cron start", "w 2024-01-01 11:00:00 +0000 cron start"});
  sim.clock.SetWall(At("2024-01-01 09:30:00 +0000"));  // an admin sets the clock back 2 h
  CHECK(sim.Evaluate().empty());
  CHECK(Show(*sim.scheduler.NextDeadline()) == "2024-01-01 12:00:00 +0000");
  CHECK(Describe(sim.RunUntil("2024-01-01 12:00:00 +0000")) ==
        Strings{"w 2024-01-01 12:00:00 +0000 cron start"});
}

TEST_CASE("a clock jump back before any fire schedules from the new now") {
  Sim sim("2024-01-01 10:30:00 +0000");
  sim.scheduler.Set(Spec("w", {"0 * * * *"}));
  sim.clock.SetWall(At("2024-01-01 08:30:00 +0000"));
  CHECK(sim.Evaluate().empty());
  CHECK(Show(*sim.scheduler.NextDeadline()) == "2024-01-01 09:00:00 +0000");
}

TEST_CASE("reload: a new version neither catches up nor loses its last fire; removal unschedules") {
  Sim sim("2024-01-01 00:00:00 +0000");
  sim.scheduler.Set(Spec("a", {"0 * * * *"}));
  sim.scheduler.Set(Spec("b", {"30 * * * *"}));
  CHECK(
      Describe(sim.RunUntil("2024-01-01 01:00:00 +0000")) ==
      Strings{"b 2024-01-01 00:30:00 +0000 cron start", "a 2024-01-01 01:00:00 +0000 cron start"});
  sim.clock.Advance(10min);
  sim.scheduler.Set(Spec("a", {"*/5 * * * *"}));  // replaced: 01:05 passed, not caught up
  sim.scheduler.Remove("b");
  sim.scheduler.Set(Spec("c", {"20 * * * *"}));  // added
  CHECK(Describe(sim.RunUntil("2024-01-01 01:25:00 +0000")) ==
        Strings{"a 2024-01-01 01:15:00 +0000 cron start", "a 2024-01-01 01:20:00 +0000 cron start",
                "c 2024-01-01 01:20:00 +0000 cron start",
                "a 2024-01-01 01:25:00 +0000 cron start"});
}

TEST_CASE("a paused workflow does not fire and resumes from now without catch-up") {
  Sim sim("2024-01-01 00:00:00 +0000");
  sim.scheduler.Set(Spec("w", {"0 * * * *"}));
  CHECK(sim.scheduler.SetPaused("w", true));
  CHECK_FALSE(sim.scheduler.NextDeadline());
  CHECK(Show(*sim.scheduler.NextFire("w")) == "2024-01-01 01:00:00 +0000");
  sim.clock.AdvanceTo(At("2024-01-01 03:30:00 +0000"));
  CHECK(sim.Evaluate().empty());
  CHECK(sim.scheduler.SetPaused("w", false));
  CHECK(sim.Evaluate().empty());
  CHECK(Show(*sim.scheduler.NextDeadline()) == "2024-01-01 04:00:00 +0000");
  CHECK_FALSE(sim.scheduler.SetPaused("nope", true));
}

TEST_CASE("upcoming lists the next fires in order from now") {
  Sim sim("2024-01-01 00:07:00 +0000");
  sim.scheduler.Set(Spec("w", {"*/20 * * * *"}));
  Strings shown;
  for (SysSeconds t : sim.scheduler.Upcoming("w", 3)) shown.push_back(Show(t));
  CHECK(shown == Strings{"2024-01-01 00:20:00 +0000", "2024-01-01 00:40:00 +0000",
                         "2024-01-01 01:00:00 +0000"});
  CHECK(sim.scheduler.Upcoming("nope", 3).empty());
}

TEST_CASE("a spec is made from a workflow only if it has a schedule") {
  Workflow w;
  w.name = "x";
  auto none = ScheduleSpec::FromWorkflow(w);
  REQUIRE(none.ok());
  CHECK_FALSE(none->has_value());
  w.schedule = {"*/2 * * * * *", "0 0 * * *"};
  w.timezone = "Europe/Berlin";
  auto spec = ScheduleSpec::FromWorkflow(w);
  REQUIRE(spec.ok());
  REQUIRE(spec->has_value());
  CHECK((*spec)->exprs.size() == 2);
  CHECK_FALSE((*spec)->max_active_runs.has_value());
  w.max_active_runs = 3;
  CHECK((*ScheduleSpec::FromWorkflow(w))->max_active_runs == 3);
  w.timezone = "Mars/Olympus";
  CHECK_FALSE(ScheduleSpec::FromWorkflow(w).ok());
}

}  // namespace
}  // namespace picoflow
