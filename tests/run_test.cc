#include "picoflowd/engine/run.h"

#include <doctest/doctest.h>

#include <cstdint>
#include <map>
#include <set>

#include "common/workflow_load.h"

namespace picoflow {
namespace {

using std::chrono::milliseconds;

std::shared_ptr<Run> MakeRun(const char* yaml) {
  LoadedWorkflow loaded = LoadWorkflowText(yaml, "test.yaml");
  if (!loaded.ok()) {
    for (auto& d : loaded.diagnostics) MESSAGE(d.ToString());
  }
  REQUIRE(loaded.ok());
  return std::make_shared<Run>(1, loaded.workflow, loaded.dag);
}

// A fake executor over a virtual clock: each task takes `duration[name]`
// (default 10) time units and fails its first `failures[name]` attempts.
// Returns the order in which attempts started, as "name@time".
struct Simulation {
  std::map<std::string, int> duration;
  std::map<std::string, int> failures;
  std::map<std::string, AttemptStatus> failure_kind;
  std::vector<std::string> started;
  std::vector<std::pair<std::string, std::int64_t>> retry_delays;
  int max_running = 0;

  void Go(Run& run) {
    std::int64_t now = 0;
    std::multimap<std::int64_t, std::pair<int, bool>> events;  // time -> (task, is_retry_due)
    auto start_ready = [&] {
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
        FinishOutcome outcome = run.AttemptFinished(task, status);
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

}  // namespace
}  // namespace picoflow
