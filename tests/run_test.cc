#include "picoflowd/engine/run.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <set>
#include <tuple>

#include "common/workflow_load.h"

namespace picoflow {
namespace {

using std::chrono::milliseconds;

std::shared_ptr<Run> MakeRun(const char* yaml, Run::Uniform uniform = {}) {
  LoadedWorkflow loaded = LoadWorkflowText(yaml, "test.yaml");
  if (!loaded.ok()) {
    for (auto& d : loaded.diagnostics) MESSAGE(d.ToString());
  }
  REQUIRE(loaded.ok());
  return std::make_shared<Run>(1, loaded.workflow, loaded.dag, std::move(uniform));
}

// A fake executor over a virtual clock: each task takes `duration[name]`
// (default 10) time units and fails its first `failures[name]` attempts
// (with exit code `exit_code[name]`, 1 by default, unless killed_by_signal).
// Returns the order in which attempts started, as "name@time".
struct Simulation {
  std::map<std::string, int> duration;
  std::map<std::string, int> failures;
  std::map<std::string, AttemptStatus> failure_kind;
  std::map<std::string, int> exit_code;
  std::set<std::string> killed_by_signal;
  std::vector<std::string> started;
  std::vector<std::string> not_called;  ///< handlers ReleaseHandlers skipped
  std::vector<std::pair<std::string, std::int64_t>> retry_delays;
  int max_running = 0;

  void Go(Run& run) {
    std::int64_t now = 0;
    std::multimap<std::int64_t, std::pair<int, bool>> events;  // time -> (task, is_retry_due)
    auto start_ready = [&] {
      for (int h : run.ReleaseHandlers()) not_called.push_back(run.workflow().tasks[h].name);
      while (auto task = run.PopReady()) {
        const std::string& name = run.workflow().tasks[*task].name;
        started.push_back(name + "@" + std::to_string(now));
        events.insert({now + (duration.count(name) ? duration[name] : 10), {*task, false}});
        max_running = std::max(max_running, run.running());
      }
    };
    start_ready();
    while (!events.empty()) {
      auto [time, ev] = *events.begin();
      events.erase(events.begin());
      now = time;
      auto [task, retry_due] = ev;
      if (retry_due) {
        run.RetryDue(task);
      } else {
        const std::string& name = run.workflow().tasks[task].name;
        bool fail = failures[name] > 0;
        if (fail) --failures[name];
        AttemptStatus status =
            fail ? (failure_kind.count(name) ? failure_kind[name] : AttemptStatus::kFailed)
                 : AttemptStatus::kSucceeded;
        std::optional<int> code;  // none for a timeout or a signal
        if (!fail) {
          code = 0;
        } else if (status == AttemptStatus::kFailed && !killed_by_signal.count(name)) {
          code = exit_code.count(name) ? exit_code[name] : 1;
        }
        FinishOutcome outcome = run.AttemptFinished(task, status, code);
        if (outcome.retry_after) {
          retry_delays.push_back({name, outcome.retry_after->count()});
          events.insert({now + outcome.retry_after->count(), {task, true}});
        }
      }
      start_ready();
    }
  }
};

std::string Join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : " ") + item;
  return out;
}

std::vector<std::string> Statuses(const Run& run) {
  std::vector<std::string> out;
  for (int i = 0; i < run.dag().size(); ++i) {
    out.push_back(run.workflow().tasks[i].name + "=" + TaskStatusName(run.task_status(i)));
  }
  return out;
}

const char* kDiamond = R"(
name: diamond
config: { max_parallel: 2, retry_default: 0 }
tasks:
  - { name: a, type: shell, config: { command: "true" } }
  - { name: b, type: shell, depends_on: [a], config: { command: "true" } }
  - { name: c, type: shell, depends_on: [a], config: { command: "true" } }
  - { name: d, type: shell, depends_on: [b, c], config: { command: "true" } }
)";

TEST_CASE("a diamond runs its two branches in parallel and joins after both") {
  auto run = MakeRun(kDiamond);
  Simulation sim;
  sim.duration = {{"b", 30}, {"c", 5}};
  sim.Go(*run);
  CHECK(Join(sim.started) == "a@0 b@10 c@10 d@40");
  CHECK(sim.max_running == 2);
  CHECK(run->finished());
  CHECK(run->status() == RunStatus::kSucceeded);
}

TEST_CASE("max_parallel bounds the tasks running at once") {
  auto run = MakeRun(R"(
name: wide
config: { max_parallel: 3 }
tasks:
  - { name: t1, type: shell, config: { command: "true" } }
  - { name: t2, type: shell, config: { command: "true" } }
  - { name: t3, type: shell, config: { command: "true" } }
  - { name: t4, type: shell, config: { command: "true" } }
  - { name: t5, type: shell, config: { command: "true" } }
)");
  Simulation sim;
  sim.Go(*run);
  CHECK(Join(sim.started) == "t1@0 t2@0 t3@0 t4@10 t5@10");
  CHECK(sim.max_running == 3);
}

TEST_CASE("among ready tasks the longest critical path starts first, then declaration order") {
  auto run = MakeRun(R"(
name: prio
config: { max_parallel: 1 }
tasks:
  - { name: short, type: shell, config: { command: "true" } }
  - { name: long1, type: shell, config: { command: "true" } }
  - { name: long2, type: shell, depends_on: [long1], config: { command: "true" } }
  - { name: other, type: shell, config: { command: "true" } }
)");
  Simulation sim;
  sim.Go(*run);
  CHECK(Join(sim.started) == "long1@0 short@10 long2@20 other@30");
}

TEST_CASE("a task starts the moment its own dependencies finish, not at a level barrier") {
  auto run = MakeRun(R"(
name: nobarrier
config: { max_parallel: 4 }
tasks:
  - { name: slow, type: shell, config: { command: "true" } }
  - { name: fast, type: shell, config: { command: "true" } }
  - { name: after_fast, type: shell, depends_on: [fast], config: { command: "true" } }
)");
  Simulation sim;
  sim.duration = {{"slow", 100}, {"fast", 5}};
  sim.Go(*run);
  // fast has the longer critical path (fast -> after_fast), so it goes first.
  CHECK(Join(sim.started) == "fast@0 slow@0 after_fast@5");
}

TEST_CASE("a failed task skips its dependents but not its siblings") {
  auto run = MakeRun(R"(
name: skip
config: { retry_default: 0 }
tasks:
  - { name: root, type: shell, config: { command: "true" } }
  - { name: bad, type: shell, depends_on: [root], config: { command: "false" } }
  - { name: child, type: shell, depends_on: [bad], config: { command: "true" } }
  - { name: grandchild, type: shell, depends_on: [child], config: { command: "true" } }
  - { name: sibling, type: shell, depends_on: [root], config: { command: "true" } }
  - { name: sibling_child, type: shell, depends_on: [sibling], config: { command: "true" } }
)");
  Simulation sim;
  sim.failures = {{"bad", 1}};
  sim.Go(*run);
  CHECK(
      Join(Statuses(*run)) ==
      "root=succeeded bad=failed child=skipped grandchild=skipped sibling=succeeded sibling_child=succeeded");
  CHECK(run->status() == RunStatus::kFailed);
}

TEST_CASE("continue_on_failure lets dependents run but the run still fails") {
  auto run = MakeRun(R"(
name: cof
config: { retry_default: 0 }
tasks:
  - { name: optional, type: shell, continue_on_failure: true, config: { command: "false" } }
  - { name: next, type: shell, depends_on: [optional], config: { command: "true" } }
)");
  Simulation sim;
  sim.failures = {{"optional", 1}};
  sim.Go(*run);
  CHECK(Join(Statuses(*run)) == "optional=failed next=succeeded");
  CHECK(run->status() == RunStatus::kFailed);
}

TEST_CASE("retries back off exponentially up to the cap") {
  auto run = MakeRun(R"(
name: retry
config: { retry_delay: 1s, retry_max_delay: 5s }
tasks:
  - { name: flaky, type: shell, retry: 5, config: { command: "true" } }
)");
  Simulation sim;
  sim.failures = {{"flaky", 5}};
  sim.duration = {{"flaky", 0}};
  sim.Go(*run);
  std::vector<std::int64_t> delays;
  for (auto& [name, d] : sim.retry_delays) delays.push_back(d);
  CHECK(delays == std::vector<std::int64_t>{1000, 2000, 4000, 5000, 5000});
  CHECK(Join(sim.started) == "flaky@0 flaky@1000 flaky@3000 flaky@7000 flaky@12000 flaky@17000");
  CHECK(run->attempts(0) == 6);
  CHECK(run->status() == RunStatus::kSucceeded);
}

TEST_CASE(
    "a task fails for good after retry + 1 attempts; a last attempt that timed out ends it timed_out") {
  auto run = MakeRun(R"(
name: exhaust
tasks:
  - { name: t, type: shell, retry: 2, config: { command: "true" } }
)");
  Simulation sim;
  sim.failures = {{"t", 10}};
  sim.failure_kind = {{"t", AttemptStatus::kTimeout}};
  sim.Go(*run);
  CHECK(run->attempts(0) == 3);
  CHECK(run->task_status(0) == TaskStatus::kTimedOut);
  CHECK(run->status() == RunStatus::kFailed);
}

TEST_CASE("the default retry count comes from retry_default") {
  auto run = MakeRun(R"(
name: defaults
config: { retry_default: 1 }
tasks:
  - { name: t, type: shell, config: { command: "true" } }
)");
  Simulation sim;
  sim.failures = {{"t", 10}};
  sim.Go(*run);
  CHECK(run->attempts(0) == 2);
}

TEST_CASE("fail_fast stops starting tasks after the first failure") {
  auto run = MakeRun(R"(
name: ff
config: { max_parallel: 2, retry_default: 0, fail_fast: true }
tasks:
  - { name: bad, type: shell, config: { command: "false" } }
  - { name: long, type: shell, config: { command: "true" } }
  - { name: later, type: shell, config: { command: "true" } }
)");
  Simulation sim;
  sim.failures = {{"bad", 1}};
  sim.duration = {{"bad", 1}, {"long", 50}};
  sim.Go(*run);
  // `long` was running when `bad` failed: the controller cancels it; here it
  // completes before the cancel lands, and keeps its real result.
  CHECK(Join(sim.started) == "bad@0 long@0");
  CHECK(Join(Statuses(*run)) == "bad=failed long=succeeded later=skipped");
  CHECK(run->status() == RunStatus::kFailed);
}

TEST_CASE("cancel marks waiting tasks cancelled and the run ends cancelled") {
  auto run = MakeRun(kDiamond);
  auto a = run->PopReady();
  REQUIRE(a == 0);
  std::vector<int> changed = run->Cancel();
  CHECK(changed == std::vector<int>{1, 2, 3});
  CHECK_FALSE(run->PopReady());
  CHECK_FALSE(run->finished());
  run->AttemptFinished(0, AttemptStatus::kCancelled);
  CHECK(run->finished());
  CHECK(run->status() == RunStatus::kCancelled);
}

TEST_CASE("a resumed run does not repeat finished tasks and keeps attempt counts") {
  auto run = MakeRun(kDiamond);
  run->Restore(0, TaskStatus::kSucceeded, 1);
  run->Restore(1, TaskStatus::kSucceeded, 1);
  run->Restore(2, TaskStatus::kPending, 1);  // was interrupted during attempt 1
  Simulation sim;
  sim.Go(*run);
  CHECK(Join(sim.started) == "c@0 d@10");
  CHECK(run->attempts(2) == 2);
  CHECK(run->status() == RunStatus::kSucceeded);
}

TEST_CASE("a cleanup with trigger all_done runs after a failure, and the run still fails") {
  auto run = MakeRun(R"(
name: cleanup
config: { retry_default: 0 }
tasks:
  - { name: work, type: shell, config: { command: "false" } }
  - { name: report, type: shell, depends_on: [work], config: { command: "true" } }
  - { name: cleanup, type: shell, depends_on: [work, report], trigger: all_done, config: { command: "true" } }
)");
  Simulation sim;
  sim.failures = {{"work", 1}};
  sim.Go(*run);
  CHECK(Join(sim.started) == "work@0 cleanup@10");
  CHECK(Join(Statuses(*run)) == "work=failed report=skipped cleanup=succeeded");
  CHECK(run->status() == RunStatus::kFailed);
}

TEST_CASE("one_success starts as soon as one dependency succeeded, before the others end") {
  auto run = MakeRun(R"(
name: race
config: { retry_default: 0, max_parallel: 4 }
tasks:
  - { name: mirror_a, type: shell, config: { command: "true" } }
  - { name: mirror_b, type: shell, config: { command: "true" } }
  - { name: use, type: shell, depends_on: [mirror_a, mirror_b], trigger: one_success, config: { command: "true" } }
)");
  Simulation sim;
  sim.duration = {{"mirror_a", 50}, {"mirror_b", 5}};
  sim.Go(*run);
  CHECK(Join(sim.started) == "mirror_a@0 mirror_b@0 use@5");
  CHECK(run->status() == RunStatus::kSucceeded);
}

TEST_CASE("one_failed fires at the first failure; unmet, it skips the task and the run succeeds") {
  const char* yaml = R"(
name: alert
config: { retry_default: 0, max_parallel: 4 }
tasks:
  - { name: a, type: shell, config: { command: "true" } }
  - { name: b, type: shell, config: { command: "true" } }
  - { name: alert, type: shell, depends_on: [a, b], trigger: one_failed, config: { command: "true" } }
  - { name: after_alert, type: shell, depends_on: [alert], config: { command: "true" } }
)";
  auto failing = MakeRun(yaml);
  Simulation sim;
  sim.duration = {{"a", 50}, {"b", 5}};
  sim.failures = {{"b", 1}};
  sim.Go(*failing);
  CHECK(Join(sim.started) == "a@0 b@0 alert@5 after_alert@15");
  CHECK(Join(Statuses(*failing)) == "a=succeeded b=failed alert=succeeded after_alert=succeeded");
  CHECK(failing->status() == RunStatus::kFailed);  // b failed: a cleanup does not undo it

  auto fine = MakeRun(yaml);
  Simulation quiet;
  quiet.Go(*fine);
  CHECK(Join(quiet.started) == "a@0 b@0");
  CHECK(Join(Statuses(*fine)) == "a=succeeded b=succeeded alert=skipped after_alert=skipped");
  CHECK(fine->status() == RunStatus::kSucceeded);
}

TEST_CASE("all_failed and none_failed over failed, succeeded and skipped dependencies") {
  auto run = MakeRun(R"(
name: rules
config: { retry_default: 0, max_parallel: 8 }
tasks:
  - { name: ok, type: shell, config: { command: "true" } }
  - { name: bad, type: shell, config: { command: "false" } }
  - { name: bad_too, type: shell, config: { command: "false" } }
  - { name: after_bad, type: shell, depends_on: [bad], config: { command: "true" } }
  - { name: both_failed, type: shell, depends_on: [bad, bad_too], trigger: all_failed, config: { command: "true" } }
  - { name: all_failed_not, type: shell, depends_on: [ok, bad], trigger: all_failed, config: { command: "true" } }
  - { name: none_failed_ok, type: shell, depends_on: [ok, after_bad], trigger: none_failed, config: { command: "true" } }
  - { name: none_failed_not, type: shell, depends_on: [ok, bad], trigger: none_failed, config: { command: "true" } }
)");
  Simulation sim;
  sim.failures = {{"bad", 1}, {"bad_too", 1}};
  sim.Go(*run);
  CHECK(Join(Statuses(*run)) ==
        "ok=succeeded bad=failed bad_too=failed after_bad=skipped both_failed=succeeded "
        "all_failed_not=skipped none_failed_ok=succeeded none_failed_not=skipped");
  CHECK(run->status() == RunStatus::kFailed);
}

TEST_CASE("a task skipped by its rule skips all_success dependents; all_done ones still run") {
  auto run = MakeRun(R"(
name: chain
config: { retry_default: 0 }
tasks:
  - { name: a, type: shell, config: { command: "true" } }
  - { name: on_failure, type: shell, depends_on: [a], trigger: one_failed, config: { command: "true" } }
  - { name: next, type: shell, depends_on: [on_failure], config: { command: "true" } }
  - { name: last, type: shell, depends_on: [next], trigger: all_done, config: { command: "true" } }
)");
  Simulation sim;
  sim.Go(*run);
  CHECK(Join(sim.started) == "a@0 last@10");
  CHECK(Join(Statuses(*run)) == "a=succeeded on_failure=skipped next=skipped last=succeeded");
  CHECK(run->skip_cause(1).by == 1);  // its own rule
  CHECK(run->skip_cause(2).by == 1);  // passed on by all_success
  CHECK(run->skip_cause(2).via == 1);
  CHECK(run->status() == RunStatus::kSucceeded);
}

TEST_CASE("trigger rules do not defeat fail_fast: a one_failed cleanup is skipped too") {
  auto run = MakeRun(R"(
name: ff
config: { retry_default: 0, fail_fast: true }
tasks:
  - { name: bad, type: shell, config: { command: "false" } }
  - { name: cleanup, type: shell, depends_on: [bad], trigger: one_failed, config: { command: "true" } }
)");
  Simulation sim;
  sim.failures = {{"bad", 1}};
  sim.Go(*run);
  CHECK(Join(sim.started) == "bad@0");
  CHECK(Join(Statuses(*run)) == "bad=failed cleanup=skipped");
  CHECK(run->skip_cause(1).by == 0);
  CHECK(run->skip_cause(1).via == -1);  // fail_fast
}

TEST_CASE("a failure with continue_on_failure counts as a success for its dependents' rules") {
  auto run = MakeRun(R"(
name: cof
config: { retry_default: 0 }
tasks:
  - { name: optional, type: shell, continue_on_failure: true, config: { command: "false" } }
  - { name: on_failure, type: shell, depends_on: [optional], trigger: one_failed, config: { command: "true" } }
  - { name: on_success, type: shell, depends_on: [optional], trigger: one_success, config: { command: "true" } }
)");
  Simulation sim;
  sim.failures = {{"optional", 1}};
  sim.Go(*run);
  CHECK(Join(Statuses(*run)) == "optional=failed on_failure=skipped on_success=succeeded");
  CHECK(run->status() == RunStatus::kFailed);
}

TEST_CASE("a resumed run evaluates trigger rules over the restored statuses, in any order") {
  const char* yaml = R"(
name: resume
config: { retry_default: 0, max_parallel: 4 }
tasks:
  - { name: a, type: shell, config: { command: "true" } }
  - { name: b, type: shell, config: { command: "true" } }
  - { name: on_failure, type: shell, depends_on: [a, b], trigger: one_failed, config: { command: "true" } }
  - { name: joined, type: shell, depends_on: [a, b], config: { command: "true" } }
  - { name: done, type: shell, depends_on: [joined, on_failure], trigger: all_done, config: { command: "true" } }
)";
  // The store had: a failed, b running (interrupted), joined skipped by a,
  // on_failure ready (pending in the store), done pending. done waits for
  // joined and on_failure only, not for b.
  for (bool reversed : {false, true}) {
    CAPTURE(reversed);
    auto run = MakeRun(yaml);
    std::vector<std::tuple<int, TaskStatus, int>> rows = {{0, TaskStatus::kFailed, 1},
                                                          {1, TaskStatus::kPending, 1},
                                                          {2, TaskStatus::kPending, 0},
                                                          {3, TaskStatus::kSkipped, 0},
                                                          {4, TaskStatus::kPending, 0}};
    if (reversed) std::reverse(rows.begin(), rows.end());
    for (auto [task, status, attempts] : rows) run->Restore(task, status, attempts);
    Simulation sim;
    sim.duration = {{"b", 30}};
    sim.Go(*run);
    // on_failure does not wait for b: a's restored failure meets its rule.
    CHECK(Join(sim.started) == "b@0 on_failure@0 done@10");
    CHECK(Join(Statuses(*run)) ==
          "a=failed b=succeeded on_failure=succeeded joined=skipped done=succeeded");
    CHECK(run->attempts(1) == 2);
    CHECK(run->status() == RunStatus::kFailed);
  }
}

TEST_CASE("a resumed run skips nothing twice and finishes when a rule's skip was restored") {
  auto run = MakeRun(R"(
name: resumed_skip
config: { retry_default: 0 }
tasks:
  - { name: a, type: shell, config: { command: "true" } }
  - { name: on_failure, type: shell, depends_on: [a], trigger: one_failed, config: { command: "true" } }
  - { name: after, type: shell, depends_on: [on_failure], config: { command: "true" } }
  - { name: last, type: shell, depends_on: [a], config: { command: "true" } }
)");
  run->Restore(2, TaskStatus::kSkipped, 0);
  run->Restore(0, TaskStatus::kSucceeded, 1);
  run->Restore(1, TaskStatus::kSkipped, 0);
  Simulation sim;
  sim.Go(*run);
  CHECK(Join(sim.started) == "last@0");
  CHECK(run->finished());
  CHECK(run->status() == RunStatus::kSucceeded);
}

TEST_CASE("Restore returns the tasks its restored end skips, and a later Restore keeps its own") {
  auto run = MakeRun(R"(
name: presets
tasks:
  - { name: a, type: shell, config: { command: "true" } }
  - { name: b, type: shell, depends_on: [a], config: { command: "true" } }
  - { name: alert, type: shell, depends_on: [a, b], trigger: one_failed, config: { command: "true" } }
  - { name: after, type: shell, depends_on: [alert], config: { command: "true" } }
  - { name: other, type: shell, depends_on: [a], trigger: one_failed, config: { command: "true" } }
)");
  CHECK(run->Restore(0, TaskStatus::kReused, 0) == std::vector<int>{4});
  // b's end decides alert, and alert's skip decides after.
  CHECK(run->Restore(1, TaskStatus::kReused, 0) == std::vector<int>{2, 3});
  CHECK(run->Restore(4, TaskStatus::kSkipped, 0).empty());  // skipped already: kept as restored
  CHECK(run->finished());
  CHECK(run->status() == RunStatus::kSucceeded);
  CHECK(run->skip_cause(2).by == 2);
}

TEST_CASE("retry_on_exit_codes retries the codes it lists and fails at once on any other end") {
  auto run = MakeRun(R"(
name: codes
config: { retry_default: 0, retry_delay: 1s, max_parallel: 8 }
tasks:
  - { name: listed, type: shell, retry: 3, retry_on_exit_codes: [1, 75], config: { command: "true" } }
  - { name: other_code, type: shell, retry: 3, retry_on_exit_codes: [1, 75], config: { command: "true" } }
  - { name: signal, type: shell, retry: 3, retry_on_exit_codes: [1, 75], config: { command: "true" } }
  - { name: timeout, type: shell, retry: 3, retry_on_exit_codes: [1, 75], config: { command: "true" } }
  - { name: any_code, type: shell, retry: 3, config: { command: "true" } }
)");
  Simulation sim;
  sim.failures = {{"listed", 2}, {"other_code", 2}, {"signal", 2}, {"timeout", 2}, {"any_code", 2}};
  sim.exit_code = {{"listed", 75}, {"other_code", 2}, {"any_code", 2}};
  sim.killed_by_signal = {"signal"};
  sim.failure_kind = {{"timeout", AttemptStatus::kTimeout}};
  sim.duration = {{"listed", 0}, {"other_code", 0}, {"signal", 0}, {"timeout", 0}, {"any_code", 0}};
  sim.Go(*run);
  CHECK(Join(Statuses(*run)) ==
        "listed=succeeded other_code=failed signal=failed timeout=succeeded any_code=succeeded");
  std::vector<int> attempts;
  for (int i = 0; i < run->dag().size(); ++i) attempts.push_back(run->attempts(i));
  CHECK(attempts == std::vector<int>{3, 1, 1, 3, 3});
}

TEST_CASE("retry_on_exit_codes reports a task that fails at once with retries left") {
  auto run = MakeRun(R"(
name: once
tasks:
  - { name: t, type: shell, retry: 2, retry_on_exit_codes: [75], config: { command: "true" } }
  - { name: last_try, type: shell, retry: 0, retry_on_exit_codes: [75], config: { command: "true" } }
)");
  auto t = run->PopReady();
  auto last_try = run->PopReady();
  REQUIRE((t == 0 && last_try == 1));
  CHECK(run->AttemptFinished(0, AttemptStatus::kFailed, 2).not_retried);
  // Without retries left, nothing was refused: it is an ordinary failure.
  CHECK_FALSE(run->AttemptFinished(1, AttemptStatus::kFailed, 2).not_retried);
}

TEST_CASE("retry_jitter multiplies each delay by a factor in [1 - j, 1 + j] drawn per retry") {
  const char* yaml = R"(
name: jitter
config: { retry_delay: 1s, retry_max_delay: 4s, retry_jitter: 0.25 }
tasks:
  - { name: t, type: shell, retry: 4, config: { command: "true" } }
  - { name: steady, type: shell, retry: 2, retry_jitter: 0, config: { command: "true" } }
)";
  const auto delays = [&](Run::Uniform uniform) {
    auto run = MakeRun(yaml, std::move(uniform));
    Simulation sim;
    sim.failures = {{"t", 4}, {"steady", 2}};
    sim.duration = {{"t", 0}, {"steady", 0}};
    sim.Go(*run);
    std::vector<std::string> out;
    for (auto& [name, d] : sim.retry_delays) out.push_back(name + "=" + std::to_string(d));
    std::sort(out.begin(), out.end());
    return Join(out);
  };
  const std::string unjittered = "steady=1000 steady=2000 t=1000 t=2000 t=4000 t=4000";
  CHECK(delays({}) == unjittered);
  CHECK(delays([] { return 0.5; }) == unjittered);
  CHECK(delays([] { return 0.0; }) == "steady=1000 steady=2000 t=1500 t=3000 t=3000 t=750");
  CHECK(delays([] { return 1.0; }) == "steady=1000 steady=2000 t=1250 t=2500 t=5000 t=5000");
  // Each retry draws anew.
  int draws = 0;
  const std::string varied = delays([&draws] { return (draws++ % 2) ? 1.0 : 0.0; });
  CHECK(varied == "steady=1000 steady=2000 t=2500 t=3000 t=5000 t=750");
}

const char* kHandled = R"(
name: handled
config: { max_parallel: 4, retry_default: 0 }
tasks:
  - { name: a, type: shell, config: { command: "true" } }
  - { name: b, type: shell, depends_on: [a], config: { command: "true" } }
handlers:
  on_exit: { type: shell, config: { command: "true" } }
  on_success: { type: shell, config: { command: "true" } }
  on_failure: { type: shell, config: { command: "true" } }
  on_cancel: { type: shell, config: { command: "true" } }
)";

TEST_CASE("handlers wait for the DAG; the one its end calls runs, then on_exit") {
  auto run = MakeRun(kHandled);
  // Listed after the tasks, in the order of Handler, whatever the order written.
  CHECK(Join(Statuses(*run)) ==
        "a=ready b=pending on_success=pending on_failure=pending on_cancel=pending "
        "on_exit=pending");
  SUBCASE("success") {
    Simulation sim;
    sim.Go(*run);
    CHECK(Join(sim.started) == "a@0 b@10 on_success@20 on_exit@30");
    CHECK(Join(sim.not_called) == "on_failure on_cancel");
    CHECK(run->status() == RunStatus::kSucceeded);
  }
  SUBCASE("failure: a failing handler changes nothing and on_exit still runs") {
    Simulation sim;
    sim.failures = {{"b", 1}, {"on_failure", 1}};
    sim.Go(*run);
    CHECK(Join(sim.started) == "a@0 b@10 on_failure@20 on_exit@30");
    CHECK(Join(Statuses(*run)) ==
          "a=succeeded b=failed on_success=skipped on_failure=failed on_cancel=skipped "
          "on_exit=succeeded");
    CHECK(run->finished());
    CHECK(run->status() == RunStatus::kFailed);
  }
}

TEST_CASE("a cancelled run runs on_cancel, then on_exit; a cancel in the handlers stops them") {
  auto run = MakeRun(kHandled);
  REQUIRE(run->PopReady() == 0);
  CHECK(run->Cancel() == std::vector<int>{1});  // the handlers are left to run
  CHECK(run->ReleaseHandlers().empty());        // `a` still runs
  run->AttemptFinished(0, AttemptStatus::kCancelled);
  CHECK(run->dag_finished());
  CHECK_FALSE(run->finished());
  CHECK(run->ReleaseHandlers() == std::vector<int>{2, 3});  // on_success, on_failure
  REQUIRE(run->PopReady() == 4);                            // on_cancel
  CHECK_FALSE(run->PopReady());                             // on_exit waits for on_cancel
  SUBCASE("on_exit follows") {
    run->AttemptFinished(4, AttemptStatus::kSucceeded);
    CHECK(run->ReleaseHandlers().empty());
    REQUIRE(run->PopReady() == 5);
    run->AttemptFinished(5, AttemptStatus::kSucceeded);
    CHECK(run->finished());
  }
  SUBCASE("a second cancel stops the handlers; the status stays") {
    CHECK(run->Cancel() == std::vector<int>{5});
    run->AttemptFinished(4, AttemptStatus::kCancelled);
    CHECK(run->ReleaseHandlers().empty());
    CHECK_FALSE(run->PopReady());
    CHECK(run->finished());
    CHECK(Join(Statuses(*run)) ==
          "a=cancelled b=cancelled on_success=skipped on_failure=skipped on_cancel=cancelled "
          "on_exit=cancelled");
  }
  CHECK(run->status() == RunStatus::kCancelled);
}

TEST_CASE("a cancel that includes the handlers (a daemon stop) runs none") {
  auto run = MakeRun(kHandled);
  REQUIRE(run->PopReady() == 0);
  CHECK(run->Cancel(/*handlers=*/true) == std::vector<int>{1, 2, 3, 4, 5});
  run->AttemptFinished(0, AttemptStatus::kCancelled);
  CHECK(run->ReleaseHandlers().empty());
  CHECK_FALSE(run->PopReady());
  CHECK(run->finished());
  CHECK(run->status() == RunStatus::kCancelled);
}

TEST_CASE("fail_fast does not skip the handlers") {
  auto run = MakeRun(R"(
name: ff
config: { retry_default: 0, fail_fast: true }
tasks:
  - { name: bad, type: shell, config: { command: "false" } }
  - { name: later, type: shell, depends_on: [bad], config: { command: "true" } }
handlers:
  on_failure: { type: shell, config: { command: "true" } }
)");
  Simulation sim;
  sim.failures = {{"bad", 1}};
  sim.Go(*run);
  CHECK(Join(sim.started) == "bad@0 on_failure@10");
  CHECK(run->status() == RunStatus::kFailed);
}

TEST_CASE("a resumed run releases only the handlers that have not ended") {
  auto run = MakeRun(kHandled);
  SUBCASE("a cancelled run stays cancelled: on_cancel, not on_failure") {
    run->Restore(0, TaskStatus::kCancelled, 1);
    run->Restore(1, TaskStatus::kCancelled, 0);
    run->Restore(4, TaskStatus::kPending, 1);  // on_cancel was interrupted
    Simulation sim;
    sim.Go(*run);
    CHECK(Join(sim.started) == "on_cancel@0 on_exit@10");
    CHECK(run->attempts(4) == 2);
    CHECK(run->status() == RunStatus::kCancelled);
  }
  SUBCASE("on_success ended before the stop: on_exit alone") {
    run->Restore(0, TaskStatus::kSucceeded, 1);
    run->Restore(1, TaskStatus::kSucceeded, 1);
    run->Restore(2, TaskStatus::kSucceeded, 1);
    run->Restore(3, TaskStatus::kSkipped, 0);
    run->Restore(4, TaskStatus::kSkipped, 0);
    Simulation sim;
    sim.Go(*run);
    CHECK(Join(sim.started) == "on_exit@0");
    CHECK(sim.not_called.empty());
  }
}

}  // namespace
}  // namespace picoflow
