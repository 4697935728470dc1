#include "picoflowd/engine/run_retry.h"

#include <doctest/doctest.h>

#include <string>
#include <utility>
#include <vector>

#include "common/workflow_load.h"
#include "tests/workflow_test_util.h"

namespace picoflow {
namespace {

using test::Lines;

// extract -> clean -> load, and `side` on its own.
constexpr const char* kEtl = R"(
name: etl
tasks:
  - { name: extract, type: shell, config: { command: "true" } }
  - { name: clean, type: shell, depends_on: [extract], config: { command: "true" } }
  - { name: load, type: shell, depends_on: [clean], config: { command: "true" } }
  - { name: side, type: shell, config: { command: "true" } }
)";

LoadedWorkflow Loaded(const char* yaml) {
  LoadedWorkflow loaded = test::Load(yaml);
  for (const Diagnostic& d : loaded.diagnostics) MESSAGE(d.ToString());
  REQUIRE(loaded.ok());
  return loaded;
}

// A task of the run retried, its outputs `name_out=<status>`.
TaskRecord Record(const std::string& name, TaskStatus status) {
  TaskRecord t;
  t.name = name;
  t.status = status;
  t.outputs = {{name + "_out", TaskStatusName(status)}};
  return t;
}

RunDetail Original(std::vector<TaskRecord> tasks) {
  RunDetail run;
  run.run.id = 7;
  run.run.workflow = "etl";
  run.run.status = RunStatus::kFailed;
  run.tasks = std::move(tasks);
  return run;
}

// "task: key=value, ..." for each task PlanRetry takes as done, in order.
Lines Plan(const char* yaml, const RunDetail& original) {
  LoadedWorkflow loaded = Loaded(yaml);
  Lines out;
  for (const auto& [name, outputs] : PlanRetry(*loaded.workflow, *loaded.dag, original)) {
    std::string line = name + ":";
    for (const auto& [key, value] : outputs) line += " " + key + "=" + value;
    out.push_back(line);
  }
  return out;
}

TEST_CASE("a retry takes as done what succeeded or was reused, with its outputs") {
  for (TaskStatus status : {TaskStatus::kSucceeded, TaskStatus::kReused}) {
    INFO(TaskStatusName(status));
    const RunDetail original =
        Original({Record("extract", TaskStatus::kSucceeded), Record("clean", status),
                  Record("load", TaskStatus::kFailed), Record("side", TaskStatus::kSucceeded)});
    CHECK(Plan(kEtl, original) == Lines{"extract: extract_out=succeeded",
                                        "clean: clean_out=" + std::string(TaskStatusName(status)),
                                        "side: side_out=succeeded"});
  }
}

TEST_CASE("a retry runs again a task that did not succeed, and everything after it") {
  // The statuses of a task in an ended run that did not succeed: pending
  // and running are those of a task whose attempt was interrupted in a run
  // that could not be resumed (RunManager::RecoverUnfinished).
  for (TaskStatus status :
       {TaskStatus::kFailed, TaskStatus::kTimedOut, TaskStatus::kCancelled, TaskStatus::kSkipped,
        TaskStatus::kPending, TaskStatus::kRunning, TaskStatus::kRetryWait}) {
    INFO(TaskStatusName(status));
    // load succeeded, but after a clean that runs again it must run too.
    const RunDetail original =
        Original({Record("extract", TaskStatus::kSucceeded), Record("clean", status),
                  Record("load", TaskStatus::kSucceeded), Record("side", TaskStatus::kSucceeded)});
    CHECK(Plan(kEtl, original) ==
          Lines{"extract: extract_out=succeeded", "side: side_out=succeeded"});
  }
}

TEST_CASE("a task the retried run did not have runs, and so do its dependents") {
  // The run retried had no `clean`: it ran an older version.
  const RunDetail original =
      Original({Record("extract", TaskStatus::kSucceeded), Record("load", TaskStatus::kSucceeded),
                Record("side", TaskStatus::kSucceeded), Record("gone", TaskStatus::kSucceeded)});
  CHECK(Plan(kEtl, original) ==
        Lines{"extract: extract_out=succeeded", "side: side_out=succeeded"});
}

TEST_CASE("a retry of a run where nothing succeeded takes nothing as done") {
  const RunDetail original =
      Original({Record("extract", TaskStatus::kFailed), Record("clean", TaskStatus::kSkipped),
                Record("load", TaskStatus::kSkipped), Record("side", TaskStatus::kCancelled)});
  CHECK(Plan(kEtl, original).empty());
}

TEST_CASE("a changed workflow is described by the tasks added and removed, else its source") {
  LoadedWorkflow before = Loaded(kEtl);
  LoadedWorkflow now = Loaded(R"(
name: etl
tasks:
  - { name: extract, type: shell, config: { command: "true" } }
  - { name: load, type: shell, depends_on: [extract], config: { command: "true" } }
  - { name: publish, type: shell, depends_on: [load], config: { command: "true" } }
  - { name: archive, type: shell, config: { command: "true" } }
)");
  CHECK(DescribeChange(*before.workflow, *now.workflow) ==
        "task 'publish' added, task 'archive' added, task 'clean' removed, task 'side' removed");
  CHECK(DescribeChange(*now.workflow, *before.workflow) ==
        "task 'clean' added, task 'side' added, task 'publish' removed, task 'archive' removed");
  LoadedWorkflow edited = Loaded(R"(
name: etl
tasks:
  - { name: extract, type: shell, config: { command: "echo changed" } }
  - { name: clean, type: shell, depends_on: [extract], config: { command: "true" } }
  - { name: load, type: shell, depends_on: [clean], config: { command: "true" } }
  - { name: side, type: shell, config: { command: "true" } }
)");
  CHECK(DescribeChange(*before.workflow, *edited.workflow) == "its source changed");
}

}  // namespace
}  // namespace picoflow
