#include "common/run_selection.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "common/dag.h"
#include "tests/workflow_test_util.h"

namespace picoflow {
namespace {

using test::Lines;

// extract -> clean -> load -> report, with `audit` beside load (it needs
// clean) feeding report too, and `notify` on its own.
constexpr const char* kEtl = R"(
name: etl
tasks:
  - { name: extract, type: shell, config: { command: "true" } }
  - { name: clean, type: shell, depends_on: [extract], config: { command: "true" } }
  - { name: load, type: shell, depends_on: [clean], config: { command: "true" } }
  - { name: audit, type: shell, depends_on: [clean], config: { command: "true" } }
  - { name: report, type: shell, depends_on: [load, audit], config: { command: "true" } }
  - { name: notify, type: shell, config: { command: "true" } }
)";

// "task=role" for every task, in declaration order.
Lines Roles(const RunSelection& selection) {
  LoadedWorkflow loaded = test::Load(kEtl);
  REQUIRE(loaded.ok());
  auto roles = PlanSelection(*loaded.workflow, *loaded.dag, selection);
  if (!roles.ok()) return {"error: " + roles.error().message};
  Lines out;
  for (std::size_t i = 0; i < roles->size(); ++i) {
    const TaskRole role = (*roles)[i];
    out.push_back(loaded.workflow->tasks[i].name + "=" +
                  (role == TaskRole::kRun           ? "run"
                   : role == TaskRole::kTakenAsDone ? "done"
                                                    : "not"));
  }
  return out;
}

TEST_CASE("a task alone runs; what it needs is taken as done and the rest is not selected") {
  CHECK(Roles({{"load"}, SelectWith::kAlone}) ==
        Lines{"extract=done", "clean=done", "load=run", "audit=not", "report=not", "notify=not"});
  CHECK(Roles({{"extract"}, SelectWith::kAlone}) ==
        Lines{"extract=run", "clean=not", "load=not", "audit=not", "report=not", "notify=not"});
}

TEST_CASE("downstream adds every dependent, and takes as done what those need besides") {
  CHECK(Roles({{"load"}, SelectWith::kDownstream}) ==
        Lines{"extract=done", "clean=done", "load=run", "audit=done", "report=run", "notify=not"});
  CHECK(Roles({{"clean"}, SelectWith::kDownstream}) ==
        Lines{"extract=done", "clean=run", "load=run", "audit=run", "report=run", "notify=not"});
}

TEST_CASE("upstream adds everything the tasks need, so nothing is taken as done") {
  CHECK(Roles({{"load"}, SelectWith::kUpstream}) ==
        Lines{"extract=run", "clean=run", "load=run", "audit=not", "report=not", "notify=not"});
  CHECK(Roles({{"report"}, SelectWith::kUpstream}) ==
        Lines{"extract=run", "clean=run", "load=run", "audit=run", "report=run", "notify=not"});
}

TEST_CASE("several tasks: a gap between two selected ones is taken as done") {
  CHECK(Roles({{"extract", "load"}, SelectWith::kAlone}) ==
        Lines{"extract=run", "clean=done", "load=run", "audit=not", "report=not", "notify=not"});
  CHECK(Roles({{"notify", "audit"}, SelectWith::kDownstream}) ==
        Lines{"extract=done", "clean=done", "load=done", "audit=run", "report=run", "notify=run"});
}

TEST_CASE("unknown names, repeated names and an empty list are refused, every problem at once") {
  CHECK(Roles({{"lod", "load", "load", "zzzzzz"}, SelectWith::kAlone}) ==
        Lines{"error: unknown task 'lod' in 'only' (did you mean 'load'?); task 'load' is given "
              "twice in 'only'; unknown task 'zzzzzz' in 'only'"});
  CHECK(Roles({{}, SelectWith::kDownstream}) == Lines{"error: 'only' names no task"});
}

TEST_CASE("the handlers run in any selection, and may not be selected") {
  LoadedWorkflow loaded = test::Load(R"(
name: handled
tasks:
  - { name: a, type: shell, config: { command: "true" } }
  - { name: b, type: shell, depends_on: [a], config: { command: "true" } }
  - { name: c, type: shell, config: { command: "true" } }
handlers:
  on_failure: { type: shell, config: { command: "true" } }
  on_exit: { type: shell, config: { command: "true" } }
)");
  REQUIRE(loaded.ok());
  auto roles = PlanSelection(*loaded.workflow, *loaded.dag, {{"b"}, SelectWith::kAlone});
  REQUIRE(roles.ok());
  CHECK(*roles == std::vector<TaskRole>{TaskRole::kTakenAsDone, TaskRole::kRun,
                                        TaskRole::kNotSelected, TaskRole::kRun, TaskRole::kRun});
  auto refused =
      PlanSelection(*loaded.workflow, *loaded.dag, {{"on_failure", "on_exi"}, SelectWith::kAlone});
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().message ==
        "'on_failure' in 'only' is a handler: it runs after any run, as the run's end calls for "
        "it; unknown task 'on_exi' in 'only'");
}

TEST_CASE("a selection reads as words") {
  CHECK(DescribeSelection({{"load"}, SelectWith::kAlone}) == "'load'");
  CHECK(DescribeSelection({{"load", "audit"}, SelectWith::kAlone}) == "'load' and 'audit'");
  CHECK(DescribeSelection({{"a", "b", "c"}, SelectWith::kAlone}) == "'a', 'b' and 'c'");
  CHECK(DescribeSelection({{"load"}, SelectWith::kDownstream}) == "'load' and what depends on it");
  CHECK(DescribeSelection({{"a", "b"}, SelectWith::kUpstream}) == "'a', 'b' and what they need");
}

TEST_CASE("with's names read back; other words do not") {
  for (SelectWith w : {SelectWith::kDownstream, SelectWith::kUpstream}) {
    CHECK(ParseSelectWith(SelectWithName(w)) == w);
  }
  CHECK_FALSE(ParseSelectWith("alone").has_value());
  CHECK_FALSE(ParseSelectWith("Downstream").has_value());
}

}  // namespace
}  // namespace picoflow
