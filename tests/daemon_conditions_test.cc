// Integration: `when:` conditions on a real picoflowd (docs/workflow-format.md,
// "Conditions"): a task's, with outputs and params in its env, run once
// before its first attempt; the workflow's, which skips a whole run; and a
// cancel while one runs. Tasks write what they saw under $PFIT_DIR.

#include <doctest/doctest.h>

#include <filesystem>
#include <map>
#include <string>

#include "protocol/methods.h"
#include "tests/daemon_harness.h"

namespace picoflow::test {
namespace {

using namespace std::chrono_literals;

}  // namespace

TEST_CASE("a task's condition sees outputs and params, skips it and its all_success dependents") {
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  const std::string file = h.WriteFile("cond.yaml", R"(name: cond
params: { go: "yes" }
config: { retry_default: 0 }
tasks:
  - { name: fetch, type: shell, config: { command: 'echo "rows=0" >> "$PICOFLOW_OUTPUT"' } }
  - name: publish
    type: shell
    depends_on: [fetch]
    when: '[ "$PICOFLOW_OUT_FETCH_ROWS" -gt 0 ]'
    config: { command: 'touch "$PFIT_DIR/published"' }
  - { name: after, type: shell, depends_on: [publish], config: { command: 'touch "$PFIT_DIR/after"' } }
  - { name: tidy, type: shell, depends_on: [publish], trigger: none_failed, config: { command: 'true' } }
  - name: gated
    type: shell
    when: 'test "$PICOFLOW_PARAM_GO" = yes && test "$PICOFLOW_TASK $PICOFLOW_ATTEMPT" = "gated 0"'
    config: { command: 'true' }
  - name: args
    type: shell
    when: { command: /bin/sh, args: ["-c", "exit 3"] }
    config: { command: 'touch "$PFIT_DIR/args"' }
  - name: flaky
    type: shell
    retry: 1
    when: 'echo checked >> "$PFIT_DIR/checked"'
    config: { command: 'test -e "$PFIT_DIR/once" || { touch "$PFIT_DIR/once"; exit 1; }' }
)");
  REQUIRE(h.RunCtl({"submit", file}).code == 0);
  ProcessResult run = h.RunCtl({"run", "cond", "--wait"});
  CHECK_MESSAGE(run.code == 0, run.out << run.err);
  json got = h.GetRun(1);
  CHECK(got["status"] == "succeeded");
  auto tasks = TasksByName(got);
  CHECK(tasks["publish"]["status"] == "skipped");
  CHECK(tasks["publish"]["error"] == "condition (when:) exited 1");
  CHECK(tasks["publish"]["attempts"] == 0);
  CHECK(tasks["after"]["status"] == "skipped");
  CHECK(tasks["after"]["error"] == "dependency 'publish' was skipped");
  CHECK(tasks["tidy"]["status"] == "succeeded");
  CHECK(tasks["gated"]["status"] == "succeeded");
  CHECK(tasks["args"]["error"] == "condition (when:) exited 3");
  // The condition ran before the first attempt only, not before the retry.
  CHECK(tasks["flaky"]["status"] == "succeeded");
  CHECK(tasks["flaky"]["attempts"] == 2);
  CHECK(ReadFileText(h.Path("checked")) == "checked\n");
  CHECK_FALSE(std::filesystem::exists(h.Path("published")));
  CHECK_FALSE(std::filesystem::exists(h.Path("after")));
  CHECK_FALSE(std::filesystem::exists(h.Path("args")));
  CHECK(Contains(run.out,
                 "publish  skipped    0         -         -     condition (when:) exited 1"));

  REQUIRE(h.RunCtl({"run", "cond", "-p", "go=no", "--wait"}).code == 0);
  CHECK(TasksByName(h.GetRun(2))["gated"]["error"] == "condition (when:) exited 1");
}

TEST_CASE("a workflow's condition skips the whole run, with its reason; met, the run goes on") {
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  const std::string file = h.WriteFile("usb.yaml", R"(name: usb
when: 'test -e "$PFIT_DIR/disk"'
config: { retry_default: 0 }
tasks:
  - { name: copy, type: shell, config: { command: 'touch "$PFIT_DIR/copied"' } }
handlers:
  on_exit: { type: shell, config: { command: 'touch "$PFIT_DIR/exit"' } }
)");
  REQUIRE(h.RunCtl({"submit", file}).code == 0);
  ProcessResult skipped = h.RunCtl({"run", "usb", "--wait"});
  CHECK(skipped.code == 0);  // not a failure
  const json run = h.GetRun(1);
  CHECK(run["status"] == "skipped");
  CHECK(run["reason"] == "condition (when:) exited 1");
  CHECK(run["error"] == "");
  auto tasks = TasksByName(run);
  CHECK(tasks["copy"]["status"] == "skipped");
  CHECK(tasks["copy"]["error"] == "the run's condition (when:) exited 1");
  CHECK(tasks["on_exit"]["status"] == "skipped");
  CHECK_FALSE(std::filesystem::exists(h.Path("copied")));
  CHECK_FALSE(std::filesystem::exists(h.Path("exit")));

  h.WriteFile("disk", "");
  REQUIRE(h.RunCtl({"run", "usb", "--wait"}).code == 0);
  CHECK(h.GetRun(2)["status"] == "succeeded");
  CHECK(std::filesystem::exists(h.Path("copied")));
  CHECK(std::filesystem::exists(h.Path("exit")));
}

TEST_CASE("a cancel stops a running condition: its task ends cancelled") {
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  const std::int64_t id = h.StartRun(R"(name: waiting
config: { retry_default: 0 }
tasks:
  - name: gate
    type: shell
    when: 'touch "$PFIT_DIR/checking"; exec sleep 60'
    config: { command: 'touch "$PFIT_DIR/ran"' }
  - { name: next, type: shell, depends_on: [gate], config: { command: 'true' } }
)");
  REQUIRE(WaitUntil([&] { return std::filesystem::exists(h.Path("checking")); }, 30s));
  REQUIRE(h.Call(method::kRunCancel, {{"run_id", id}}).ok());
  const json run = h.WaitRun(id, 30s);
  CHECK(run["status"] == "cancelled");
  auto tasks = TasksByName(run);
  CHECK(tasks["gate"]["status"] == "cancelled");
  CHECK(tasks["gate"]["attempts"] == 0);
  CHECK(tasks["next"]["status"] == "cancelled");
  CHECK_FALSE(std::filesystem::exists(h.Path("ran")));
}

}  // namespace picoflow::test
