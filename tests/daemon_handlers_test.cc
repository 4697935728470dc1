// Integration: a workflow's handlers on a real picoflowd
// (docs/workflow-format.md, "Handlers"): which one a run's end calls, what
// they see, how they are recorded, that they never change the run's status,
// a cancel during them, a daemon stop, and a crash while one runs. Tasks
// write what they saw under $PFIT_DIR.

#include <doctest/doctest.h>

#include <filesystem>
#include <map>
#include <string>

#include "protocol/methods.h"
#include "tests/daemon_harness.h"

namespace picoflow::test {
namespace {

using namespace std::chrono_literals;

constexpr char kNightly[] = R"(name: nightly
params: { who: ops }
config: { retry_default: 0 }
tasks:
  - { name: fetch, type: shell, config: { command: 'echo "rows=12" >> "$PICOFLOW_OUTPUT"' } }
  - { name: load, type: shell, depends_on: [fetch], config: { command: 'test -e "$PFIT_DIR/fixed" || exit 4' } }
  - { name: check, type: shell, config: { command: 'test -e "$PFIT_DIR/fixed" || exit 1' } }
handlers:
  on_exit:
    type: shell
    config: { command: 'echo "exit $PICOFLOW_RUN_STATUS" >> "$PFIT_DIR/seen"' }
  on_failure:
    type: shell
    config:
      command: 'echo "$PICOFLOW_RUN_STATUS|$PICOFLOW_FAILED_TASKS|$PICOFLOW_OUT_FETCH_ROWS|$PICOFLOW_PARAM_WHO" >> "$PFIT_DIR/seen"; echo paged; exit 9'
  on_success:
    type: shell
    config: { command: 'echo "success $PICOFLOW_FAILED_TASKS." >> "$PFIT_DIR/seen"' }
)";

}  // namespace

TEST_CASE(
    "a failed run calls on_failure, then on_exit; a failing handler leaves the run as it was") {
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  REQUIRE(h.RunCtl({"submit", h.WriteFile("nightly.yaml", kNightly)}).code == 0);

  ProcessResult run = h.RunCtl({"run", "nightly", "--wait"});
  CHECK(run.code == 1);  // the run's status: failed, whatever the handlers did
  CHECK(ReadFileText(h.Path("seen")) == "failed|load check|12|ops\nexit failed\n");
  const json failed = h.GetRun(1);
  CHECK(failed["status"] == "failed");
  CHECK(failed["error"] == "task 'load' failed: exited with code 4 (and 1 more)");
  auto tasks = TasksByName(failed);
  CHECK(tasks["on_success"]["status"] == "skipped");
  CHECK(tasks["on_success"]["error"] == "not called: the run failed");
  CHECK(tasks["on_failure"]["status"] == "failed");
  CHECK(tasks["on_failure"]["exit_code"] == 9);
  CHECK(tasks["on_exit"]["status"] == "succeeded");
  // Listed after the tasks, on_failure before on_exit; their logs are kept.
  CHECK(failed["tasks"][3]["name"] == "on_success");
  CHECK(failed["tasks"][5]["name"] == "on_exit");
  CHECK(Contains(run.out, "on_failure  failed"));
  CHECK(h.RunCtl({"logs", "nightly", "--task", "on_failure"}).out == "paged\n");

  // The next run succeeds: on_success, then on_exit; and a retry calls them too.
  h.WriteFile("fixed", "");
  REQUIRE(h.RunCtl({"run", "nightly", "--wait"}).code == 0);
  CHECK(ReadFileText(h.Path("seen")) ==
        "failed|load check|12|ops\nexit failed\nsuccess .\nexit succeeded\n");
  REQUIRE(h.RunCtl({"retry", "1", "--wait"}).code == 0);
  const json retried = h.GetRun(3);
  CHECK(retried["status"] == "succeeded");
  tasks = TasksByName(retried);
  CHECK(tasks["fetch"]["status"] == "reused");
  CHECK(tasks["on_success"]["status"] == "succeeded");
  CHECK(tasks["on_failure"]["status"] == "skipped");

  // The workflow's shape: the handlers are not counted as tasks, and come last.
  auto shape = h.Call(method::kWorkflowGet, {{"name", "nightly"}});
  REQUIRE(shape.ok());
  CHECK((*shape)["order"] == json{"fetch", "load", "check", "on_success", "on_failure", "on_exit"});
  CHECK((*shape)["tasks"][4]["handler"] == "on_failure");
  CHECK_FALSE((*shape)["tasks"][0].contains("handler"));
}

TEST_CASE("a cancelled run calls on_cancel; a cancel while it runs stops it, the status stays") {
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  const std::int64_t id = h.StartRun(R"(name: slow
config: { retry_default: 0 }
tasks:
  - { name: wait, type: shell, config: { command: 'touch "$PFIT_DIR/waiting"; exec sleep 60' } }
handlers:
  on_cancel:
    type: shell
    config: { command: 'echo "$PICOFLOW_RUN_STATUS" > "$PFIT_DIR/cancel"; exec sleep 60' }
  on_exit:
    type: shell
    config: { command: 'touch "$PFIT_DIR/exit"' }
)");
  REQUIRE(WaitUntil([&] { return std::filesystem::exists(h.Path("waiting")); }, 30s));
  REQUIRE(h.Call(method::kRunCancel, {{"run_id", id}}).ok());
  REQUIRE(WaitUntil([&] { return ReadFileText(h.Path("cancel")) == "cancelled\n"; }, 30s));
  CHECK(h.GetRun(id)["status"] == "running");  // until its handlers have ended
  // The second cancel stops on_cancel and what would follow it.
  REQUIRE(h.Call(method::kRunCancel, {{"run_id", id}}).ok());
  const json run = h.WaitRun(id);
  CHECK(run["status"] == "cancelled");
  CHECK(run["error"] == "cancelled on request (run.cancel)");
  auto tasks = TasksByName(run);
  CHECK(tasks["on_cancel"]["status"] == "cancelled");
  CHECK(tasks["on_exit"]["status"] == "cancelled");
  CHECK_FALSE(std::filesystem::exists(h.Path("exit")));
}

TEST_CASE("a stop that cancels runs calls no handler; a crash during one runs it again") {
  constexpr char kOnExit[] = R"(name: tidy
config: { retry_default: 0 }
tasks:
  - { name: work, type: shell, config: { command: 'touch "$PFIT_DIR/working"; exec sleep 60' } }
handlers:
  on_exit:
    type: shell
    config: { command: 'echo x >> "$PFIT_DIR/tidied"; test -e "$PFIT_DIR/go" || exec sleep 60' }
)";
  SUBCASE("on_shutdown: cancel") {
    DaemonHarness h;
    REQUIRE(h.Start({"--on-shutdown", "cancel"}).ok());
    const std::int64_t id = h.StartRun(kOnExit);
    REQUIRE(WaitUntil([&] { return std::filesystem::exists(h.Path("working")); }, 30s));
    CHECK(h.Stop() == 0);
    REQUIRE(h.Start().ok());
    const json run = h.GetRun(id);
    CHECK(run["status"] == "cancelled");
    CHECK(TasksByName(run)["on_exit"]["status"] == "cancelled");
    CHECK_FALSE(std::filesystem::exists(h.Path("tidied")));
  }
  SUBCASE("killed while on_exit runs: it runs again at the next start") {
    DaemonHarness h;
    REQUIRE(h.Start().ok());
    h.WriteFile("working", "");
    const std::int64_t id = h.StartRun(R"(name: tidy
config: { retry_default: 0 }
tasks:
  - { name: work, type: shell, config: { command: 'true' } }
handlers:
  on_exit:
    type: shell
    config: { command: 'echo x >> "$PFIT_DIR/tidied"; test -e "$PFIT_DIR/go" || exec sleep 60' }
)");
    REQUIRE(WaitUntil([&] { return ReadFileText(h.Path("tidied")) == "x\n"; }, 30s));
    h.Kill9();
    h.WriteFile("go", "");
    REQUIRE(h.Start().ok());
    const json run = h.WaitRun(id);
    CHECK(run["status"] == "succeeded");
    const json on_exit = TasksByName(run)["on_exit"];
    CHECK(on_exit["status"] == "succeeded");
    CHECK(on_exit["attempts"] == 2);
    CHECK(ReadFileText(h.Path("tidied")) == "x\nx\n");
  }
}

}  // namespace picoflow::test
