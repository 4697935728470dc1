// Integration: cron scheduling on a real picoflowd — seconds-field schedules
// firing for real, overlap skips recorded, pause/resume, catch-up after a
// restart, `picoflowctl next`, and an idle daemon that does not wake up.

#include <date/date.h>
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include "protocol/methods.h"
#include "tests/daemon_harness.h"

namespace picoflow::test {
namespace {

std::string Workflow(const std::string& name, const std::string& schedule,
                     const std::string& command, const std::string& extra = "") {
  return "name: " + name + "\nschedule: \"" + schedule + "\"\ntimezone: UTC\n" + extra +
         "config: { retry_default: 0 }\ntasks:\n  - { name: t, type: shell, config: { command: '" +
         command + "' } }\n";
}

void Submit(DaemonHarness& h, const std::string& yaml) {
  auto r = h.Call(method::kWorkflowSubmit, {{"source", yaml}});
  REQUIRE_MESSAGE(r.ok(), r.error().message);
}

json Runs(DaemonHarness& h, const std::string& workflow) {
  auto r = h.Call(method::kRunList, {{"workflow", workflow}, {"limit", 100}});
  REQUIRE_MESSAGE(r.ok(), r.error().message);
  return (*r)["runs"];
}

// voluntary_ctxt_switches of the main thread of `pid`, or -1.
long VoluntarySwitches(pid_t pid) {
  std::istringstream in(ReadFileText("/proc/" + std::to_string(pid) + "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("voluntary_ctxt_switches:", 0) == 0) return std::atol(line.c_str() + 24);
  }
  return -1;
}

// The seconds field of an ISO time "....T12:34:56.000Z".
int SecondOf(const std::string& iso) { return std::atoi(iso.substr(17, 2).c_str()); }

// The instant of an ISO time "2026-01-02T12:34:56.000Z", to the second.
std::chrono::sys_seconds InstantOf(const std::string& iso) {
  int year = 0, hour = 0, minute = 0, second = 0;
  unsigned month = 0, day = 0;
  const int n =
      std::sscanf(iso.c_str(), "%d-%u-%uT%d:%d:%d", &year, &month, &day, &hour, &minute, &second);
  REQUIRE_MESSAGE(n == 6, "bad time '" << iso << "'");
  return date::sys_days{date::year{year} / date::month{month} / date::day{day}} +
         std::chrono::hours{hour} + std::chrono::minutes{minute} + std::chrono::seconds{second};
}

std::size_t CountSkipped(const json& runs) {
  return static_cast<std::size_t>(std::count_if(
      runs.begin(), runs.end(), [](const json& r) { return r["status"] == "skipped"; }));
}

}  // namespace

TEST_CASE("a */2 seconds schedule fires every two seconds on a live daemon, on time") {
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  const auto begin = std::chrono::system_clock::now();
  Submit(h, Workflow("tick", "*/2 * * * * *", "true"));
  // A slow one: its fires overlap its own runs and are skipped (overlap: skip).
  Submit(h, Workflow("slow", "*/2 * * * * *", "sleep 3"));
  // Watched until tick fired three times and slow skipped a fire (the
  // deadline only ends a hang), then both paused, so that no fire comes
  // between the lists compared below.
  REQUIRE(
      WaitUntil([&] { return Runs(h, "tick").size() >= 3 && CountSkipped(Runs(h, "slow")) >= 1; },
                60s, 100ms));
  for (const char* name : {"tick", "slow"}) {
    REQUIRE(h.Call(method::kWorkflowPause, {{"name", name}}).ok());
  }
  const auto end = std::chrono::system_clock::now();

  // Every fire at an even second between the submit and the pause, each
  // once, none missed in between, each started before the next was due.
  const json ticks = Runs(h, "tick");
  CHECK(ticks.size() >= 3);
  std::set<std::string> instants;
  for (const json& r : ticks) {
    CHECK(r["trigger"] == "cron");
    REQUIRE(r["scheduled_at"].is_string());
    const std::string at = r["scheduled_at"];
    CHECK(SecondOf(at) % 2 == 0);
    CHECK(InstantOf(at) >= std::chrono::floor<std::chrono::seconds>(begin));
    CHECK(InstantOf(at) <= end);
    CHECK(instants.insert(at).second);  // each instant once
    REQUIRE(r["late_ms"].is_number());
    CHECK(r["late_ms"].get<long long>() >= 0);
    // One period: the timer's precision is schedule_timer_test's to check,
    // with a calibration; here only "not a whole fire late", on any machine.
    CHECK(r["late_ms"].get<long long>() < 2000);
  }
  REQUIRE_FALSE(instants.empty());
  CHECK(InstantOf(*instants.rbegin()) - InstantOf(*instants.begin()) ==
        std::chrono::seconds(2 * (static_cast<long>(instants.size()) - 1)));

  int skipped = 0;
  int started = 0;
  for (const json& r : Runs(h, "slow")) {
    if (r["status"] == "skipped") {
      ++skipped;
      CHECK(r["reason"] == "the previous run was still in progress (overlap: skip)");
      CHECK(r["trigger"] == "cron");
    } else {
      ++started;
    }
  }
  CHECK(started >= 1);
  CHECK(skipped >= 1);
  const ProcessResult history = h.RunCtl({"history", "slow"});
  CHECK_MESSAGE(history.out.find("skipped") != std::string::npos, history.out);
  CHECK_MESSAGE(history.out.find("(overlap: skip)") != std::string::npos, history.out);
  auto list = h.Call(method::kWorkflowList);
  REQUIRE(list.ok());
  for (const json& w : (*list)["workflows"]) {
    REQUIRE(w["next_fire"].is_string());
    if (w["name"] == "slow") CHECK(w["skipped_fires"].get<int>() == skipped);
  }
}

TEST_CASE("pause stops the fires, resume restarts them, next lists upcoming fires") {
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  Submit(h, Workflow("tick", "*/2 * * * * *", "true"));

  ProcessResult next = h.RunCtl({"next", "tick", "-n", "3"});
  CHECK(next.code == 0);
  CHECK(next.out.find("tick (zone UTC)") == 0);
  CHECK(std::count(next.out.begin(), next.out.end(), '\n') == 4);

  ProcessResult paused = h.RunCtl({"pause", "tick"});
  CHECK(paused.code == 0);
  const std::size_t before = Runs(h, "tick").size();
  std::this_thread::sleep_for(3s);  // a fire falls due in any 3 s: none may come
  CHECK(Runs(h, "tick").size() == before);
  ProcessResult table = h.RunCtl({"workflows"});
  CHECK(table.out.find("NEXT FIRE") != std::string::npos);
  CHECK(table.out.find("yes") != std::string::npos);

  CHECK(h.RunCtl({"resume", "tick"}).code == 0);
  CHECK(WaitUntil([&] { return Runs(h, "tick").size() > before; }, 60s));
  CHECK(h.RunCtl({"pause", "nope"}).code == 1);
}

TEST_CASE("fires missed while the daemon was down are caught up once (catchup: latest)") {
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  Submit(h, Workflow("tick", "*/2 * * * * *", "true"));
  REQUIRE(WaitUntil([&] { return Runs(h, "tick").size() >= 1; }, 60s));
  REQUIRE(h.Stop() == 0);
  std::this_thread::sleep_for(5s);  // down long enough to miss two fires
  REQUIRE(h.Start().ok());
  json runs;
  REQUIRE(WaitUntil(
      [&] {
        runs = Runs(h, "tick");
        for (const json& r : runs) {
          if (r["trigger"] == "catchup") return true;
        }
        return false;
      },
      60s));
  int catchups = 0;
  for (const json& r : runs) catchups += r["trigger"] == "catchup" ? 1 : 0;
  CHECK(catchups == 1);
}

TEST_CASE("a reload adds and removes schedules from the workflows directory") {
  DaemonHarness h;
  const std::string dir = h.Path("wf");
  std::filesystem::create_directories(dir);
  h.WriteFile("wf/a.yaml", Workflow("a", "0 0 1 1 *", "true"));
  REQUIRE(h.Start({"--workflows-dir", dir}).ok());
  auto next_fires = [&] {
    std::map<std::string, json> out;
    auto list = h.Call(method::kWorkflowList);
    REQUIRE(list.ok());
    for (const json& w : (*list)["workflows"]) out[w["name"]] = w["next_fire"];
    return out;
  };
  auto fires = next_fires();
  REQUIRE(fires.size() == 1);
  CHECK(fires["a"].get<std::string>().substr(5) == "01-01T00:00:00.000Z");

  h.WriteFile("wf/b.yaml", Workflow("b", "30 12 * * *", "true"));
  std::filesystem::remove(dir + "/a.yaml");
  REQUIRE(h.Call(method::kDaemonReload).ok());
  fires = next_fires();
  REQUIRE(fires.size() == 1);
  CHECK(fires["b"].get<std::string>().substr(10) == "T12:30:00.000Z");

  h.WriteFile("wf/b.yaml", Workflow("b", "15 6 * * *", "true"));
  REQUIRE(h.Call(method::kDaemonReload).ok());
  CHECK(next_fires()["b"].get<std::string>().substr(10) == "T06:15:00.000Z");
}

TEST_CASE("an idle daemon with 20 workflows due in an hour does not wake up") {
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  // The current minute of the next hour, UTC: about an hour away.
  const auto now = std::chrono::floor<std::chrono::minutes>(std::chrono::system_clock::now());
  const auto tod = date::make_time(now - std::chrono::floor<date::days>(now));
  const std::string schedule = std::to_string(tod.minutes().count()) + " " +
                               std::to_string((tod.hours().count() + 1) % 24) + " * * *";
  for (int i = 0; i < 20; ++i) {
    Submit(h, Workflow("idle" + std::to_string(i), schedule, "true"));
  }
  std::this_thread::sleep_for(500ms);  // let the answers and the loop settle
  const long before = VoluntarySwitches(h.pid());
  REQUIRE(before >= 0);
  std::this_thread::sleep_for(10s);
  const long after = VoluntarySwitches(h.pid());
  CHECK(after - before <= 2);
  auto list = h.Call(method::kWorkflowList);
  REQUIRE(list.ok());
  CHECK((*list)["workflows"].size() == 20);
}

}  // namespace picoflow::test
