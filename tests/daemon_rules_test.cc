// Integration: workflow control on a real picoflowd — trigger rules (a
// cleanup after a failure, a rule that fires early, a rule skipped with its
// reason, rules over a run resumed after a crash), retry_on_exit_codes and
// retry_jitter (docs/workflow-format.md, "Trigger rules" and "Retries").
// Nothing here waits for time to pass: tasks wait for files the test or
// other tasks write, and deadlines only end a hang.

#include <doctest/doctest.h>

#include <cstdio>
#include <ctime>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "protocol/client.h"
#include "protocol/methods.h"
#include "tests/daemon_harness.h"

namespace picoflow::test {
namespace {

// task name -> its `error` in a run.get result.
std::map<std::string, std::string> TaskErrors(const json& run) {
  std::map<std::string, std::string> out;
  for (const json& t : run["tasks"]) out[t["name"]] = t["error"];
  return out;
}

// Milliseconds since the epoch of a run.get time ("2026-11-27T03:40:00.123Z").
std::int64_t Ms(const json& time) {
  std::tm tm{};
  int ms = 0;
  const std::string text = time.get<std::string>();
  REQUIRE(std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year, &tm.tm_mon,
                      &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) == 7);
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<std::int64_t>(timegm(&tm)) * 1000 + ms;
}

}  // namespace

TEST_CASE("after a failure an all_done cleanup and a one_failed alert run; the run still fails") {
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  const auto id = h.StartRun(R"(
name: cleanup
config: { retry_default: 0, max_parallel: 8 }
tasks:
  - { name: work, type: shell, config: { command: 'exit 3' } }
  - { name: report, type: shell, depends_on: [work], config: { command: 'true' } }
  - name: cleanup
    type: shell
    depends_on: [work, report]
    trigger: all_done
    config: { command: 'touch "$PFIT_DIR/cleaned"' }
  - { name: alert, type: shell, depends_on: [work], trigger: one_failed, config: { command: 'true' } }
  - { name: on_success, type: shell, depends_on: [work], trigger: one_success, config: { command: 'true' } }
  - { name: after_on_success, type: shell, depends_on: [on_success], config: { command: 'true' } }
)");
  const json run = h.WaitRun(id);
  REQUIRE(run.is_object());
  CHECK(run["status"] == "failed");
  CHECK(run["error"] == "task 'work' failed: exited with code 3");
  CHECK(TaskStatuses(run) == std::map<std::string, std::string>{
                                 {"work", "failed"},
                                 {"report", "skipped"},
                                 {"cleanup", "succeeded"},
                                 {"alert", "succeeded"},
                                 {"on_success", "skipped"},
                                 {"after_on_success", "skipped"},
                             });
  CHECK(std::filesystem::exists(h.Path("cleaned")));
  const auto errors = TaskErrors(run);
  CHECK(errors.at("report") == "dependency 'work' failed");
  CHECK(errors.at("on_success") == "trigger one_success: no dependency succeeded");
  CHECK(errors.at("after_on_success") ==
        "dependency 'on_success' was skipped (its trigger one_success: no dependency succeeded)");
  CHECK(AttemptsOf(run, "on_success").empty());
}

TEST_CASE("a run whose one_failed cleanup is skipped because nothing failed succeeds") {
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  const auto id = h.StartRun(R"(
name: quiet
config: { retry_default: 0 }
tasks:
  - { name: work, type: shell, config: { command: 'true' } }
  - { name: alert, type: shell, depends_on: [work], trigger: one_failed, config: { command: 'true' } }
)");
  const json run = h.WaitRun(id);
  REQUIRE(run.is_object());
  CHECK(run["status"] == "succeeded");
  CHECK(run["error"] == "");
  CHECK(TaskStatuses(run) ==
        std::map<std::string, std::string>{{"work", "succeeded"}, {"alert", "skipped"}});
  CHECK(TaskErrors(run).at("alert") == "trigger one_failed: no dependency failed");
}

TEST_CASE("one_success starts its task while another dependency still runs") {
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  // `slow` ends only once `use` has run: if `use` waited for both, `slow`
  // would hit its timeout and the run would fail.
  const auto id = h.StartRun(R"(
name: early
config: { retry_default: 0, max_parallel: 4 }
tasks:
  - { name: fast, type: shell, config: { command: 'true' } }
  - name: slow
    type: shell
    timeout: 120
    config: { command: 'while [ ! -e "$PFIT_DIR/use.ran" ]; do sleep 0.05; done' }
  - name: use
    type: shell
    depends_on: [fast, slow]
    trigger: one_success
    config: { command: 'touch "$PFIT_DIR/use.ran"' }
)");
  const json run = h.WaitRun(id, 180s);
  REQUIRE(run.is_object());
  CHECK(run["status"] == "succeeded");
  const json use = AttemptsOf(run, "use").at(0);
  const json slow = AttemptsOf(run, "slow").at(0);
  CHECK(Ms(use["started_at"]) <= Ms(slow["ended_at"]));
}

TEST_CASE("retry_on_exit_codes retries a listed exit code and fails at once on any other") {
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  Client client;
  REQUIRE(client.Connect(h.socket()).ok());
  REQUIRE(client.Handshake().ok());
  const std::string yaml = R"(
name: codes
config: { retry_default: 0, retry_delay: 0, max_parallel: 8 }
tasks:
  - name: listed
    type: shell
    retry: 3
    retry_on_exit_codes: [1, 75]
    config: { command: '[ "$PICOFLOW_ATTEMPT" -ge 3 ] || exit 75' }
  - name: unlisted
    type: shell
    retry: 3
    retry_on_exit_codes: [1, 75]
    config: { command: 'exit 2' }
  - name: killed
    type: shell
    retry: 3
    retry_on_exit_codes: [1, 75]
    config: { command: 'kill -9 $$' }
  - name: any_code
    type: shell
    retry: 2
    config: { command: 'exit 2' }
)";
  // The `finished` event of a task not retried says why, as followers see it.
  std::map<std::string, std::string> finished;
  auto done = client.Call(
      method::kRunStart, {{"source", yaml}, {"follow", true}},
      [&](const Notification& n) {
        if (n.method == "run.event" && n.params.value("event", "") == "finished") {
          finished[n.params.at("task")] = n.params.value("error", "");
        }
      },
      120s);
  REQUIRE(done.ok());
  CHECK(finished.at("unlisted") ==
        "exited with code 2; not retried: exit code 2 is not in retry_on_exit_codes");
  CHECK(finished.at("any_code") == "exited with code 2");
  const json run = h.GetRun((*done)["run_id"].get<std::int64_t>());
  REQUIRE(run.is_object());
  CHECK(run["status"] == "failed");
  CHECK(TaskStatuses(run) == std::map<std::string, std::string>{{"listed", "succeeded"},
                                                                {"unlisted", "failed"},
                                                                {"killed", "failed"},
                                                                {"any_code", "failed"}});
  CHECK(AttemptStatuses(run, "listed") ==
        std::vector<std::string>{"failed", "failed", "succeeded"});
  CHECK(AttemptStatuses(run, "unlisted") == std::vector<std::string>{"failed"});
  CHECK(AttemptStatuses(run, "killed") == std::vector<std::string>{"failed"});
  CHECK(AttemptStatuses(run, "any_code").size() == 3);
  const auto errors = TaskErrors(run);
  CHECK(errors.at("unlisted") ==
        "exited with code 2; not retried: exit code 2 is not in retry_on_exit_codes");
  CHECK(errors.at("killed") ==
        "killed by SIGKILL; not retried: retry_on_exit_codes retries only an attempt that exited "
        "with one of its codes");
  CHECK(errors.at("any_code") == "exited with code 2");
}

TEST_CASE("retry_jitter draws each pause within its bounds and the daemon waits it out") {
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  Client client;
  REQUIRE(client.Connect(h.socket()).ok());
  REQUIRE(client.Handshake().ok());
  // Every pause is 1 s before jitter (the cap is the first delay).
  const std::string yaml = R"(
name: jitter
config: { retry_delay: 1s, retry_max_delay: 1s, retry_jitter: 0.5 }
tasks:
  - { name: flaky, type: shell, retry: 3, config: { command: 'exit 1' } }
)";
  std::vector<std::int64_t> pauses;
  auto done = client.Call(
      method::kRunStart, {{"source", yaml}, {"follow", true}},
      [&](const Notification& n) {
        if (n.method == "run.event" && n.params.value("event", "") == "retrying") {
          pauses.push_back(n.params.at("retry_in_ms").get<std::int64_t>());
        }
      },
      120s);
  REQUIRE(done.ok());
  CHECK((*done)["status"] == "failed");
  REQUIRE(pauses.size() == 3);
  for (std::int64_t pause : pauses) {
    CHECK(pause >= 500);
    CHECK(pause <= 1500);
  }
  // Drawn at random: all three exactly 1000 would be a one in a billion chance.
  CHECK_FALSE((pauses[0] == 1000 && pauses[1] == 1000 && pauses[2] == 1000));

  // The store's times show the daemon waited each pause out: the next attempt
  // started no earlier than the pause after the previous one ended (less the
  // millisecond rounding of the stored times and the loop's cached clock).
  const json run = h.GetRun((*done)["run_id"].get<std::int64_t>());
  const std::vector<json> attempts = AttemptsOf(run, "flaky");
  REQUIRE(attempts.size() == 4);
  for (std::size_t i = 0; i + 1 < attempts.size(); ++i) {
    CAPTURE(i);
    const std::int64_t gap = Ms(attempts[i + 1]["started_at"]) - Ms(attempts[i]["ended_at"]);
    CHECK(gap >= pauses[i] - 50);
  }
}

TEST_CASE("a run resumed after a crash evaluates the trigger rules over its stored statuses") {
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  // bad fails at once; slow runs until the test lets it end (its first
  // attempt is killed with the daemon). all_done waits for both; the rules
  // that bad's failure decided are decided before the crash.
  const auto id = h.StartRun(R"(
name: resumed
config: { retry_default: 0, max_parallel: 8 }
tasks:
  - { name: bad, type: shell, config: { command: 'exit 1' } }
  - name: slow
    type: shell
    config: { command: 'while [ ! -e "$PFIT_DIR/go" ]; do sleep 0.05; done' }
  - { name: joined, type: shell, depends_on: [bad, slow], config: { command: 'true' } }
  - { name: alert, type: shell, depends_on: [bad, slow], trigger: one_failed, config: { command: 'true' } }
  - { name: after_all, type: shell, depends_on: [bad, slow], trigger: all_done, config: { command: 'touch "$PFIT_DIR/after_all.ran"' } }
  - { name: all_bad, type: shell, depends_on: [bad, slow], trigger: all_failed, config: { command: 'true' } }
)");
  REQUIRE(id > 0);
  // Before the crash: alert ran on bad's failure, joined was skipped by it,
  // and slow's process identity is stored.
  const json before = h.WaitRunState(id, [](const json& r) {
    const auto slow = AttemptsOf(r, "slow");
    return TaskStatuses(r).at("alert") == "succeeded" && !slow.empty() &&
           slow[0]["pid"].is_number();
  });
  REQUIRE(before.is_object());
  CHECK(TaskStatuses(before).at("joined") == "skipped");
  CHECK(TaskStatuses(before).at("after_all") == "pending");

  h.Kill9();
  REQUIRE(h.Start().ok());
  // The resumed run starts slow over; once it ends, after_all runs over
  // bad's restored failure, and all_failed sees slow's success.
  REQUIRE(WaitUntil([&] { return AttemptsOf(h.GetRun(id), "slow").size() == 2; }, 60s));
  h.WriteFile("go", "");
  const json run = h.WaitRun(id);
  REQUIRE(run.is_object());
  CHECK(run["status"] == "failed");
  CHECK(TaskStatuses(run) == std::map<std::string, std::string>{
                                 {"bad", "failed"},
                                 {"slow", "succeeded"},
                                 {"joined", "skipped"},
                                 {"alert", "succeeded"},
                                 {"after_all", "succeeded"},
                                 {"all_bad", "skipped"},
                             });
  CHECK(AttemptStatuses(run, "slow") == std::vector<std::string>{"interrupted", "succeeded"});
  CHECK(AttemptStatuses(run, "alert") == std::vector<std::string>{"succeeded"});
  CHECK(std::filesystem::exists(h.Path("after_all.ran")));
  const auto errors = TaskErrors(run);
  CHECK(errors.at("joined") == "dependency 'bad' failed");
  CHECK(errors.at("all_bad") == "trigger all_failed: dependency 'slow' succeeded");
}

}  // namespace picoflow::test
