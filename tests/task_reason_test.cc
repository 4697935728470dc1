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

}  // namespace picoflow
