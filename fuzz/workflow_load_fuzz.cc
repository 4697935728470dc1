// Fuzz target: a workflow file's text through the loader and its validation
// (common/workflow_load.h), the Dag it builds, and the Run (engine/run.h)
// that a daemon would drive over it, once with every attempt succeeding and
// once with every attempt failing. The input is the YAML text.
//
// Checked beyond "no crash, no leak, no undefined behaviour": a workflow is
// returned exactly when there is no error; the Dag is consistent (deps and
// dependents mirror each other, topo_order puts every task after its
// dependencies, roots, leaves and critical paths are what the edges say); a
// run only starts a task whose trigger rule its dependencies' statuses meet
// (engine/trigger_rule.h) and always ends.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/dag.h"
#include "common/workflow.h"
#include "common/workflow_load.h"
#include "fuzz/fuzz_check.h"
#include "picoflowd/engine/run.h"
#include "picoflowd/engine/trigger_rule.h"

namespace picoflow::fuzz {
namespace {

void CheckDag(const Workflow& workflow, const Dag& dag) {
  const int n = dag.size();
  Require(n == static_cast<int>(workflow.tasks.size()), "one Dag node per task");
  std::vector<int> position(n, -1);
  const std::vector<int>& topo = dag.topo_order();
  Require(static_cast<int>(topo.size()) == n, "topo_order holds every task");
  for (int at = 0; at < n; ++at) {
    Require(topo[at] >= 0 && topo[at] < n && position[topo[at]] < 0, "topo_order is a permutation");
    position[topo[at]] = at;
  }
  std::vector<int> roots, leaves;
  for (int i = 0; i < n; ++i) {
    int longest_after = 0;
    for (int d : dag.deps(i)) {
      Require(position[d] < position[i], "a task comes after its dependencies in topo_order");
      bool mirrored = false;
      for (int back : dag.dependents(d)) mirrored = mirrored || back == i;
      Require(mirrored, "a dependency lists the task among its dependents");
    }
    for (int w : dag.dependents(i)) {
      if (dag.critical_path(w) > longest_after) longest_after = dag.critical_path(w);
    }
    Require(dag.critical_path(i) == 1 + longest_after,
            "critical_path is 1 + its dependents' longest");
    if (dag.deps(i).empty()) roots.push_back(i);
    if (dag.dependents(i).empty()) leaves.push_back(i);
  }
  Require(roots == dag.roots(), "roots are the tasks without dependencies");
  Require(leaves == dag.leaves(), "leaves are the tasks nothing depends on");
}

// How `task`'s dependencies stand in `run`, counted as the rules count them.
UpstreamCounts Upstream(const Run& run, int task) {
  UpstreamCounts up;
  for (int d : run.dag().deps(task)) {
    const TaskStatus s = run.task_status(d);
    if (s == TaskStatus::kSucceeded ||
        (IsFailure(s) && run.workflow().tasks[d].continue_on_failure)) {
      ++up.succeeded;
    } else if (IsFailure(s)) {
      ++up.failed;
    } else if (s == TaskStatus::kSkipped) {
      ++up.skipped;
    } else if (s == TaskStatus::kCancelled) {
      ++up.cancelled;
    } else {
      ++up.pending;
    }
  }
  return up;
}

// Drives a Run as RunController would: every ready task starts while slots
// are free, then their attempts all end `outcome`; retries are due at once.
// Checks that tasks start only when their rule is met and that the run ends.
void RunThrough(const LoadedWorkflow& loaded, AttemptStatus outcome) {
  Run run(1, loaded.workflow, loaded.dag);
  // Each round ends an attempt or makes retries due: a run that needs more
  // rounds than twice the attempts its tasks may make does not end.
  std::size_t rounds = 2;
  for (const Task& t : loaded.workflow->tasks) {
    rounds += 2 * (static_cast<std::size_t>(t.retry) + 1);
  }
  std::vector<int> retrying;
  while (!run.finished()) {
    Require(rounds-- > 0, "a run ends after every attempt of its tasks");
    std::vector<int> started;
    while (auto task = run.PopReady()) {
      Require(EvaluateTrigger(loaded.workflow->tasks[*task].trigger, Upstream(run, *task)) ==
                  TriggerVerdict::kRun,
              "a task starts only when its dependencies meet its trigger rule");
      started.push_back(*task);
    }
    Require(run.running() <= loaded.workflow->config.max_parallel, "max_parallel holds");
    if (started.empty()) {
      Require(!retrying.empty(), "an unfinished run has a task ready, running or retrying");
      for (int task : retrying) run.RetryDue(task);
      retrying.clear();
      continue;
    }
    for (int task : started) {
      if (run.AttemptFinished(task, outcome).retry_after) retrying.push_back(task);
    }
  }
  Require(run.running() == 0, "nothing runs in a finished run");
  if (outcome == AttemptStatus::kSucceeded) {
    Require(run.status() == RunStatus::kSucceeded, "a run whose attempts all succeed succeeds");
  }
}

}  // namespace
}  // namespace picoflow::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace picoflow;
  using namespace picoflow::fuzz;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  LoadedWorkflow loaded = LoadWorkflowText(text, "fuzz.yaml", PathBase{"/srv/flows", "/home/fuzz"});
  for (const Diagnostic& d : loaded.diagnostics) {
    Require(!d.ToString().empty(), "an error says what");
  }
  for (const Diagnostic& d : loaded.warnings) {
    Require(!d.ToString().empty(), "a warning says what");
  }
  Require(loaded.ok() == loaded.diagnostics.empty(), "a workflow is returned exactly when valid");
  if (!loaded.ok()) return 0;
  Require(loaded.dag != nullptr, "a valid workflow has its Dag");
  CheckDag(*loaded.workflow, *loaded.dag);
  RunThrough(loaded, AttemptStatus::kSucceeded);
  RunThrough(loaded, AttemptStatus::kFailed);
  return 0;
}
