// Integration: retention on a real picoflowd — a workflow's `retention:`
// prunes its history in the background after runs finish, and
// `picoflowctl prune` applies it on demand.

#include <doctest/doctest.h>

#include <string>

#include "protocol/methods.h"
#include "tests/daemon_harness.h"

namespace picoflow::test {
namespace {

std::string Workflow(int max_runs) {
  return "name: kept\nretention: { max_runs: " + std::to_string(max_runs) +
         ", max_age: 1d }\ntasks:\n"
         "  - { name: hello, type: shell, config: { command: 'echo hello' } }\n";
}

std::size_t CountRuns(DaemonHarness& h) {
  auto runs = h.Call(method::kRunList, {{"workflow", "kept"}, {"limit", 100}});
  REQUIRE(runs.ok());
  return (*runs)["runs"].size();
}

void RunTimes(DaemonHarness& h, int n) {
  for (int i = 0; i < n; ++i) {
    auto started = h.Call(method::kRunStart, {{"workflow", "kept"}});
    REQUIRE(started.ok());
    const json run = h.WaitRun((*started)["run_id"].get<std::int64_t>());
    REQUIRE(run.is_object());
    CHECK(run["status"] == "succeeded");
  }
}

}  // namespace

TEST_CASE("a workflow with max_runs 3 keeps its 3 newest runs after 6 runs") {
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  REQUIRE(h.Call(method::kWorkflowSubmit, {{"source", Workflow(3)}}).ok());
  RunTimes(h, 6);
  auto newest = h.Call(method::kRunList, {{"workflow", "kept"}, {"limit", 3}});
  REQUIRE(newest.ok());
  // Pruned at the next quiet moment (2 s after the last run ended).
  CHECK(WaitUntil([&] { return CountRuns(h) == 3; }, 60s, 100ms));
  auto kept = h.Call(method::kRunList, {{"workflow", "kept"}, {"limit", 100}});
  REQUIRE(kept.ok());
  CHECK((*kept)["runs"] == (*newest)["runs"]);
}

TEST_CASE("picoflowctl prune counts with --dry-run and then deletes what retention drops") {
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  REQUIRE(h.Call(method::kWorkflowSubmit, {{"source", Workflow(10)}}).ok());
  RunTimes(h, 4);
  // A background pass comes only at a quiet moment after a run ends: the
  // restarted daemon, which runs nothing, makes none, however long the
  // commands below take (without the restart, the pass the last run armed
  // could come between them).
  REQUIRE(h.Restart().ok());
  REQUIRE(h.Call(method::kWorkflowSubmit, {{"source", Workflow(1)}}).ok());
  ProcessResult dry = h.RunCtl({"--json", "prune", "--dry-run"});
  REQUIRE(dry.code == 0);
  const json counts = json::parse(dry.out);
  CHECK(counts["dry_run"] == true);
  CHECK(counts["runs"] == 3);
  CHECK(counts["output_bytes"] == 3 * 6);  // "hello\n" each
  CHECK(CountRuns(h) == 4);
  ProcessResult done = h.RunCtl({"prune"});
  CHECK(done.code == 0);
  CHECK(done.out == "deleted 3 runs and 18 bytes of output\n");
  CHECK(CountRuns(h) == 1);
}

}  // namespace picoflow::test
