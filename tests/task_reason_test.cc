#include "picoflowd/engine/task_reason.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "common/workflow_load.h"
#include "picoflowd/engine/run.h"

namespace picoflow {
namespace {

std::unique_ptr<Run> MakeRun(const char* yaml) {
  LoadedWorkflow loaded = LoadWorkflowText(yaml, "test.yaml");
  REQUIRE(loaded.ok());
  return std::make_unique<Run>(1, loaded.workflow, loaded.dag);
}

// Ends the running attempts of `run`, in the order they are popped, with
// `status` for the task named `name` and success for every other.
void Drive(Run& run, const std::string& name, AttemptStatus status) {
  while (auto task = run.PopReady()) {
    const bool chosen = run.workflow().tasks[*task].name == name;
    run.AttemptFinished(*task, chosen ? status : AttemptStatus::kSucceeded);
  }
}

std::vector<std::string> SkipReasons(const Run& run) {
  std::vector<std::string> out;
  for (int i = 0; i < run.dag().size(); ++i) {
    out.push_back(run.workflow().tasks[i].name + ": " + SkipReason(run, i));
  }
  return out;
}

constexpr const char* kChain = R"(
name: chain
config: { retry_default: 0 }
tasks:
  - { name: fetch, type: shell, config: { command: "true" } }
  - { name: load, type: shell, depends_on: [fetch], config: { command: "true" } }
  - { name: report, type: shell, depends_on: [load], config: { command: "true" } }
  - { name: other, type: shell, config: { command: "true" } }
)";

}  // namespace

TEST_CASE("a skipped task names the dependency it waited for, and what failed behind it") {
  auto run = MakeRun(kChain);
  Drive(*run, "fetch", AttemptStatus::kTimeout);
  CHECK(SkipReasons(*run) ==
        std::vector<std::string>{"fetch: ", "load: dependency 'fetch' timed out",
                                 "report: dependency 'load' was skipped ('fetch' timed out)",
                                 "other: "});
}

TEST_CASE("a task skipped by fail_fast says so, whether or not it depends on the failure") {
  auto run = MakeRun(R"(
name: fast
config: { retry_default: 0, fail_fast: true, max_parallel: 1 }
tasks:
  - { name: first, type: shell, config: { command: "true" } }
  - { name: second, type: shell, config: { command: "true" } }
)");
  Drive(*run, "first", AttemptStatus::kFailed);
  CHECK(SkipReasons(*run) ==
        std::vector<std::string>{"first: ", "second: 'first' failed and fail_fast stops the run"});
}

TEST_CASE(
    "a run's error names its first failed task, how many more failed, or why it was cancelled") {
  auto run = MakeRun(kChain);
  Drive(*run, "fetch", AttemptStatus::kFailed);
  CHECK(RunError(*run, {"exited with code 2", "", "", ""}, "") ==
        "task 'fetch' failed: exited with code 2");

  auto two = MakeRun(R"(
name: two
config: { retry_default: 0 }
tasks:
  - { name: a, type: shell, config: { command: "true" } }
  - { name: b, type: shell, config: { command: "true" } }
)");
  while (auto task = two->PopReady()) two->AttemptFinished(*task, AttemptStatus::kTimeout);
  CHECK(RunError(*two, {"timed out after 1s (SIGTERM)", "timed out after 1s (SIGTERM)"}, "") ==
        "task 'a' timed out after 1s (SIGTERM) (and 1 more)");

  auto cancelled = MakeRun(kChain);
  cancelled->Cancel();
  CHECK(RunError(*cancelled, {"", "", "", ""}, "cancelled: picoflowd stopped") ==
        "cancelled: picoflowd stopped");
}

TEST_CASE("an attempt's reason is its executor's error, else its exit code or signal") {
  CHECK(AttemptReason({AttemptStatus::kFailed, 3, std::nullopt, "", {}}) == "exited with code 3");
  CHECK(AttemptReason({AttemptStatus::kFailed, std::nullopt, 9, "", {}}) == "killed by signal 9");
  CHECK(AttemptReason({AttemptStatus::kFailed, 1, std::nullopt, "cannot start 'x': why", {}}) ==
        "cannot start 'x': why");
  CHECK(AttemptReason({AttemptStatus::kSucceeded, 0, std::nullopt, "", {}}).empty());
}

TEST_CASE("a task skipped by its own trigger rule says which rule and why it cannot be met") {
  auto run = MakeRun(R"(
name: rules
config: { retry_default: 0, max_parallel: 1 }
tasks:
  - { name: fetch, type: shell, config: { command: "true" } }
  - { name: alert, type: shell, depends_on: [fetch], trigger: one_failed, config: { command: "true" } }
  - { name: fallback, type: shell, depends_on: [fetch], trigger: all_failed, config: { command: "true" } }
  - { name: page, type: shell, depends_on: [alert], config: { command: "true" } }
  - { name: log, type: shell, depends_on: [page], config: { command: "true" } }
)");
  Drive(*run, "none", AttemptStatus::kFailed);
  CHECK(SkipReasons(*run) ==
        std::vector<std::string>{
            "fetch: ", "alert: trigger one_failed: no dependency failed",
            "fallback: trigger all_failed: dependency 'fetch' succeeded",
            "page: dependency 'alert' was skipped (its trigger one_failed: no dependency failed)",
            "log: dependency 'page' was skipped ('alert' was skipped by its trigger one_failed: no "
            "dependency failed)"});
}

TEST_CASE("one_success and none_failed name what their dependencies did") {
  auto run = MakeRun(R"(
name: rules
config: { retry_default: 0, max_parallel: 1 }
tasks:
  - { name: mirror, type: shell, config: { command: "false" } }
  - { name: tolerated, type: shell, continue_on_failure: true, config: { command: "false" } }
  - { name: use, type: shell, depends_on: [mirror], trigger: one_success, config: { command: "true" } }
  - { name: check, type: shell, depends_on: [mirror], trigger: none_failed, config: { command: "true" } }
  - { name: all_bad, type: shell, depends_on: [tolerated], trigger: all_failed, config: { command: "true" } }
)");
  while (auto task = run->PopReady()) run->AttemptFinished(*task, AttemptStatus::kFailed, 1);
  CHECK(SkipReasons(*run) ==
        std::vector<std::string>{
            "mirror: ", "tolerated: ", "use: trigger one_success: no dependency succeeded",
            "check: trigger none_failed: dependency 'mirror' failed",
            "all_bad: trigger all_failed: dependency 'tolerated' failed "
            "(continue_on_failure: it counts as succeeded)"});
}

TEST_CASE("a task not retried because of retry_on_exit_codes says so") {
  CHECK(NotRetriedReason({AttemptStatus::kFailed, 2, std::nullopt, "", {}}) ==
        "exited with code 2; not retried: exit code 2 is not in retry_on_exit_codes");
  CHECK(NotRetriedReason({AttemptStatus::kFailed, std::nullopt, 9, "", {}}) ==
        "killed by signal 9; not retried: retry_on_exit_codes retries only an attempt that "
        "exited with one of its codes");
}

}  // namespace picoflow
