// Integration: picoflowctl against a real picoflowd — the commands, their
// output, and the exit-code contract (0 ok, 1 failed run or RPC error,
// 2 usage, 3 daemon unreachable).

#include <doctest/doctest.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "protocol/methods.h"
#include "tests/daemon_harness.h"

namespace picoflow::test {
namespace {

/// Parses a command's stdout as JSON; null (and a failed CHECK) if it is not.
json ParseOut(const ProcessResult& r) {
  const json j = json::parse(r.out, nullptr, false);
  CHECK_MESSAGE(!j.is_discarded(), "not JSON: ", r.out);
  return j.is_discarded() ? json(nullptr) : j;
}

constexpr const char* kGood = R"(
name: ctl-good
config: { retry_default: 0 }
tasks:
  - { name: hello, type: shell, config: { command: 'echo hello world' } }
  - { name: after, type: shell, depends_on: [hello], config: { command: 'echo to stderr >&2; echo after' } }
)";

constexpr const char* kBad = R"(
name: ctl-bad
config: { retry_default: 0 }
tasks:
  - { name: boom, type: shell, config: { command: 'echo going down; exit 5' } }
)";

}  // namespace

TEST_CASE("picoflowctl run --wait exits 0 when the run succeeds and 1 when it fails") {
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  const std::string good = h.WriteFile("good.yaml", kGood);
  const std::string bad = h.WriteFile("bad.yaml", kBad);

  const ProcessResult ok = h.RunCtl({"run", good, "--wait"});
  CHECK_MESSAGE(ok.code == 0, ok.err);
  CHECK_MESSAGE(Contains(ok.out, "ctl-good  succeeded"), ok.out);
  CHECK_MESSAGE(Contains(ok.out, "hello  succeeded"), ok.out);

  const ProcessResult failed = h.RunCtl({"run", bad, "--wait"});
  CHECK_MESSAGE(failed.code == 1, failed.err);
  CHECK_MESSAGE(Contains(failed.out, "ctl-bad  failed"), failed.out);

  const ProcessResult as_json = h.RunCtl({"--json", "run", good, "--wait"});
  CHECK(as_json.code == 0);
  const json run = ParseOut(as_json);
  CHECK(run["status"] == "succeeded");
  CHECK(TaskStatuses(run) ==
        std::map<std::string, std::string>{{"hello", "succeeded"}, {"after", "succeeded"}});

  // Without --wait it returns at once with the run id.
  const ProcessResult started = h.RunCtl({"--json", "run", bad});
  CHECK(started.code == 0);
  const json id = ParseOut(started)["run_id"];
  REQUIRE(id.is_number());
  CHECK(h.WaitRun(id.get<std::int64_t>())["status"] == "failed");
}

TEST_CASE("picoflowctl run --follow prints every task event and output line as they come") {
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  const std::string good = h.WriteFile("good.yaml", kGood);
  const ProcessResult r = h.RunCtl({"run", good, "--follow"});
  CHECK_MESSAGE(r.code == 0, r.err);
  for (const char* expected :
       {"run 1 started (workflow 'ctl-good')", "[hello] started (attempt 1)", "hello | hello world",
        "[hello] finished: succeeded", "[after] started (attempt 1)", "after | after",
        "after ! to stderr", "[after] finished: succeeded", "ctl-good  succeeded"}) {
    CHECK_MESSAGE(Contains(r.out, expected), "missing '", expected, "' in:\n", r.out);
  }
  CHECK(r.out.find("[hello] started") < r.out.find("hello | hello world"));
  CHECK(r.out.find("hello | hello world") < r.out.find("[after] started"));
  CHECK(r.out.find("[after] finished") < r.out.find("ctl-good  succeeded"));

  // Even a run over in milliseconds misses no event; the exit code is the run's.
  const std::string bad = h.WriteFile("bad.yaml", kBad);
  const ProcessResult failed = h.RunCtl({"run", bad, "-f"});
  CHECK(failed.code == 1);
  for (const char* expected : {"[boom] started (attempt 1)", "boom | going down",
                               "[boom] finished: failed", "boom  failed"}) {
    CHECK_MESSAGE(Contains(failed.out, expected), "missing '", expected, "' in:\n", failed.out);
  }
}

TEST_CASE(
    "Ctrl-C on run --follow, run --wait or logs -f says how to cancel the run, which goes on, and "
    "exits 130") {
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  REQUIRE(h.Call(method::kWorkflowSubmit, {{"source", R"(
name: slow
config: { retry_default: 0, kill_grace: 1s }
tasks:
  - { name: long, type: shell, config: { command: 'echo begun; sleep 300' } }
)"}}).ok());
  std::vector<std::string> args;
  std::string shown;  // what the command has printed once it is waiting
  bool started_by_ctl = true;
  SUBCASE("run --follow") {
    args = {"run", "slow", "--follow"};
    shown = "long | begun";
  }
  SUBCASE("run --wait") { args = {"run", "slow", "--wait"}; }
  SUBCASE("logs -f") {
    args = {"logs", "slow", "-f"};
    shown = "begun";
    started_by_ctl = false;
  }
  if (!started_by_ctl) REQUIRE(h.Call(method::kRunStart, {{"workflow", "slow"}}).ok());
  const DaemonHarness::Background ctl = h.StartCtl(args);
  REQUIRE(ctl.pid > 0);
  // The task has started, and the command waits (it catches Ctrl-C from
  // before it starts the run or reads the logs).
  REQUIRE(WaitUntil(
      [&] {
        auto run = h.Call(method::kRunGet, {{"run_id", 1}});
        return run.ok() && !AttemptsOf(*run, "long").empty() &&
               Contains(ReadFileText(ctl.out_path), shown);
      },
      60s));
  REQUIRE(::kill(ctl.pid, SIGINT) == 0);
  const ProcessResult r = h.FinishCtl(ctl);
  CHECK(r.code == 130);
  CHECK_MESSAGE(Contains(r.err,
                         "picoflowctl: stopped following run 1; it goes on in picoflowd "
                         "(cancel it with `picoflowctl cancel 1`)\n"),
                r.err);
  CHECK(h.GetRun(1)["status"] == "running");
  const ProcessResult cancelled = h.RunCtl({"cancel", "1"});
  CHECK_MESSAGE(cancelled.code == 0, cancelled.err);
  CHECK(h.WaitRun(1)["status"] == "cancelled");
}

TEST_CASE(
    "picoflowctl run of a workflow with a run in progress warns, and starts it all the same") {
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  REQUIRE(h.Call(method::kWorkflowSubmit, {{"source", R"(
name: busy
config: { retry_default: 0, kill_grace: 1s }
tasks:
  - { name: long, type: shell, config: { command: 'sleep 300' } }
)"}}).ok());
  const ProcessResult first = h.RunCtl({"run", "busy"});
  CHECK(first.code == 0);
  CHECK_MESSAGE(first.err.empty(), first.err);
  const ProcessResult second = h.RunCtl({"run", "busy"});
  CHECK(second.code == 0);
  CHECK(second.out == "run 2 started (workflow 'busy')\n");
  CHECK_MESSAGE(Contains(second.err,
                         "picoflowctl: warning: workflow 'busy' already has 1 run in "
                         "progress (1); this run goes alongside"),
                second.err);
  CHECK_MESSAGE(Contains(second.err, "overlap policy"), second.err);
  const ProcessResult third = h.RunCtl({"--json", "run", "busy"});
  CHECK(third.code == 0);
  CHECK(ParseOut(third)["also_running"] == json::array({1, 2}));
  CHECK_MESSAGE(Contains(third.err, "already has 2 runs in progress (1, 2)"), third.err);
  CHECK(h.RunCtl({"cancel", "busy"}).code == 0);
}

TEST_CASE("status, history, logs, workflows and remove show a submitted workflow and its runs") {
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  const std::string good = h.WriteFile("good.yaml", kGood);

  const ProcessResult submitted = h.RunCtl({"submit", good});
  CHECK(submitted.code == 0);
  CHECK_MESSAGE(Contains(submitted.out, "submitted workflow 'ctl-good' (2 tasks)"), submitted.out);
  CHECK(h.RunCtl({"run", "ctl-good", "--wait"}).code == 0);

  const ProcessResult status = h.RunCtl({"status"});
  CHECK(status.code == 0);
  CHECK_MESSAGE(Contains(status.out, "WORKFLOW"), status.out);
  CHECK_MESSAGE(Contains(status.out, "ctl-good"), status.out);
  CHECK_MESSAGE(Contains(status.out, "succeeded"), status.out);

  const ProcessResult one = h.RunCtl({"status", "ctl-good"});
  CHECK(one.code == 0);
  CHECK_MESSAGE(Contains(one.out, "run 1  ctl-good  succeeded"), one.out);
  CHECK_MESSAGE(Contains(one.out, "after  succeeded"), one.out);

  const ProcessResult history = h.RunCtl({"history", "ctl-good"});
  CHECK(history.code == 0);
  CHECK_MESSAGE(Contains(history.out, "RUN"), history.out);
  CHECK_MESSAGE(Contains(history.out, "succeeded"), history.out);

  const ProcessResult logs = h.RunCtl({"logs", "ctl-good", "--task", "hello"});
  CHECK(logs.code == 0);
  CHECK(logs.out == "hello world\n");
  const ProcessResult all_logs = h.RunCtl({"logs", "--run", "1"});
  CHECK(all_logs.code == 0);
  CHECK_MESSAGE(Contains(all_logs.out, "hello | hello world\n"), all_logs.out);
  CHECK_MESSAGE(Contains(all_logs.out, "after | after\n"), all_logs.out);
  CHECK_MESSAGE(Contains(all_logs.out, "after ! to stderr\n"), all_logs.out);
  // --json: one object per chunk, a line each.
  const ProcessResult json_logs = h.RunCtl({"--json", "logs", "ctl-good", "--task", "after"});
  CHECK(json_logs.code == 0);
  std::istringstream lines(json_logs.out);
  std::set<std::string> chunks;
  for (std::string line; std::getline(lines, line);) {
    const json chunk = json::parse(line);
    CHECK(chunk["task"] == "after");
    chunks.insert(chunk["stream"].get<std::string>() + ":" + chunk["data"].get<std::string>());
  }
  CHECK(chunks == std::set<std::string>{"stderr:to stderr\n", "stdout:after\n"});

  const ProcessResult workflows = h.RunCtl({"workflows"});
  CHECK(workflows.code == 0);
  CHECK_MESSAGE(Contains(workflows.out, "ctl-good"), workflows.out);

  const ProcessResult removed = h.RunCtl({"remove", "ctl-good"});
  CHECK(removed.code == 0);
  CHECK_MESSAGE(Contains(removed.out, "removed workflow 'ctl-good'"), removed.out);
  const ProcessResult again = h.RunCtl({"remove", "ctl-good"});
  CHECK(again.code == 1);
  CHECK_MESSAGE(Contains(again.err, "workflow 'ctl-good' is not loaded (only its runs are stored"),
                again.err);
  CHECK_FALSE(Contains(h.RunCtl({"workflows"}).out, "ctl-good"));
  // Its history stays.
  const ProcessResult kept = h.RunCtl({"--json", "history", "ctl-good"});
  CHECK(kept.code == 0);
  CHECK(ParseOut(kept)["runs"].size() == 1);
  const ProcessResult no_runs = h.RunCtl({"logs", "never-submitted"});
  CHECK(no_runs.code == 1);
  CHECK_MESSAGE(Contains(no_runs.err, "no workflow 'never-submitted'"), no_runs.err);
}

TEST_CASE("a workflow that does not exist is said so, with the closest name the daemon knows") {
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  const std::string file = h.WriteFile("web.yaml", R"(
name: web-health
config: { retry_default: 0 }
tasks:
  - { name: check, type: shell, config: { command: 'echo up' } }
  - { name: report, type: shell, depends_on: [check], config: { command: 'echo fine' } }
)");
  REQUIRE(h.RunCtl({"submit", file}).code == 0);
  for (const char* command :
       {"status", "history", "logs", "next", "pause", "resume", "cancel", "remove", "run"}) {
    CAPTURE(command);
    const ProcessResult r = h.RunCtl({command, "web-helth"});
    CHECK(r.code == 1);
    CHECK_MESSAGE(Contains(r.err, "no workflow 'web-helth' (did you mean 'web-health'?)\n"), r.err);
    CHECK_FALSE(Contains(r.err, "has no runs"));
  }
  // It exists but never ran: that is what status and logs say; history is empty.
  const ProcessResult never = h.RunCtl({"status", "web-health"});
  CHECK(never.code == 1);
  CHECK_MESSAGE(Contains(never.err, "workflow 'web-health' has no runs yet"), never.err);
  CHECK(h.RunCtl({"history", "web-health"}).code == 0);

  REQUIRE(h.RunCtl({"run", "web-health", "--wait"}).code == 0);
  const ProcessResult typo = h.RunCtl({"logs", "web-health", "--task", "chek"});
  CHECK(typo.code == 1);
  CHECK_MESSAGE(Contains(typo.err,
                         "run 1 of 'web-health' has no task 'chek' (did you mean "
                         "'check'?); its tasks: check, report\n"),
                typo.err);
  CHECK(h.RunCtl({"logs", "web-health", "--task", "check"}).out == "up\n");

  // A path that names no file is a missing file, not a workflow name.
  const std::string missing = h.Path("wf/pipline.yaml");
  const ProcessResult no_file = h.RunCtl({"run", missing});
  CHECK(no_file.code == 1);
  CHECK_MESSAGE(Contains(no_file.err, "file '" + missing + "' does not exist"), no_file.err);
}

TEST_CASE(
    "pausing a paused workflow and resuming a running one say so; paused ones have no next fire") {
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  const std::string file = h.WriteFile("nightly.yaml", R"(
name: nightly
schedule: "0 2 * * *"
timezone: UTC
tasks:
  - { name: compress, type: shell, config: { command: 'true' } }
)");
  REQUIRE(h.RunCtl({"submit", file}).code == 0);
  CHECK(Contains(h.RunCtl({"--utc", "workflows"}).out, ":00 UTC"));
  const ProcessResult first = h.RunCtl({"pause", "nightly"});
  CHECK(first.code == 0);
  CHECK(first.out == "paused workflow 'nightly'\n");
  const ProcessResult second = h.RunCtl({"pause", "nightly"});
  CHECK(second.code == 0);
  CHECK(second.out == "workflow 'nightly' is already paused\n");
  const ProcessResult listed = h.RunCtl({"--utc", "workflows"});
  CHECK_MESSAGE(Contains(listed.out, "nightly"), listed.out);
  CHECK_MESSAGE(!Contains(listed.out, ":00 UTC"), listed.out);  // no next fire shown
  const ProcessResult status = h.RunCtl({"--utc", "status"});
  CHECK_MESSAGE(Contains(status.out, "paused"), status.out);
  CHECK_MESSAGE(!Contains(status.out, ":00 UTC"), status.out);

  CHECK(Contains(h.RunCtl({"resume", "nightly"}).out, "resumed workflow 'nightly' (next fire "));
  const ProcessResult again = h.RunCtl({"resume", "nightly"});
  CHECK(again.code == 0);
  CHECK_MESSAGE(Contains(again.out, "workflow 'nightly' is not paused (next fire "), again.out);
}

TEST_CASE("picoflowctl cancel WORKFLOW cancels that workflow's runs in progress") {
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  const char* yaml = R"(
name: long-job
config: { retry_default: 0, kill_grace: 1s }
tasks:
  - { name: nap, type: shell, config: { command: 'sleep 30' } }
)";
  const std::string file = h.WriteFile("long.yaml", yaml);
  REQUIRE(h.RunCtl({"submit", file}).code == 0);
  const ProcessResult unknown = h.RunCtl({"cancel", "long-jbo"});
  CHECK(unknown.code == 1);
  CHECK_MESSAGE(Contains(unknown.err, "no workflow 'long-jbo' (did you mean 'long-job'?)"),
                unknown.err);
  const ProcessResult idle = h.RunCtl({"cancel", "long-job"});
  CHECK(idle.code == 1);
  CHECK_MESSAGE(Contains(idle.err, "workflow 'long-job' has no run in progress"), idle.err);

  std::vector<std::int64_t> ids;
  for (int i = 0; i < 2; ++i) {
    const ProcessResult started = h.RunCtl({"--json", "run", "long-job"});
    REQUIRE(started.code == 0);
    ids.push_back(ParseOut(started)["run_id"]);
  }
  const ProcessResult cancel = h.RunCtl({"cancel", "long-job"});
  CHECK_MESSAGE(cancel.code == 0, cancel.err);
  for (std::int64_t id : ids) {
    CHECK_MESSAGE(
        Contains(cancel.out, "cancelling run " + std::to_string(id) + " (workflow 'long-job')\n"),
        cancel.out);
    CHECK(h.WaitRun(id)["status"] == "cancelled");
  }
  // A one-off run is cancelled by its name too.
  const std::string one_off = h.WriteFile("one-off.yaml", R"(
name: one-off-nap
tasks:
  - { name: nap, type: shell, config: { command: 'sleep 30' } }
)");
  const ProcessResult started = h.RunCtl({"--json", "run", one_off});
  REQUIRE(started.code == 0);
  const std::int64_t id = ParseOut(started)["run_id"];
  CHECK(h.RunCtl({"cancel", "one-off-nap"}).code == 0);
  CHECK(h.WaitRun(id)["status"] == "cancelled");
}

TEST_CASE("run FILE then status shows that run, its workflow marked not loaded") {
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  const std::string good = h.WriteFile("good.yaml", kGood);
  REQUIRE(h.RunCtl({"run", good, "--wait"}).code == 0);
  const ProcessResult status = h.RunCtl({"status"});
  CHECK(status.code == 0);
  std::istringstream lines(status.out);
  std::vector<std::string> rows;
  for (std::string line; std::getline(lines, line);) rows.push_back(line);
  REQUIRE_MESSAGE(rows.size() == 2, status.out);
  CHECK_MESSAGE(Contains(rows[1], "ctl-good  1 "), status.out);
  CHECK_MESSAGE(Contains(rows[1], " succeeded "), status.out);
  CHECK_MESSAGE(Contains(rows[1], " not loaded"), status.out);
  const json listed = ParseOut(h.RunCtl({"--json", "status"}));
  REQUIRE(listed["workflows"].size() == 1);
  CHECK(listed["workflows"][0]["loaded"] == false);
  CHECK(listed["workflows"][0]["last_run"]["id"] == 1);
  // `workflows` lists what can be run by name: not this one.
  CHECK_FALSE(Contains(h.RunCtl({"workflows"}).out, "ctl-good"));
  // Submitted, it is an ordinary workflow with that history.
  REQUIRE(h.RunCtl({"submit", good}).code == 0);
  const ProcessResult loaded = h.RunCtl({"status"});
  CHECK_MESSAGE(Contains(loaded.out, "ctl-good  1 "), loaded.out);
  CHECK_FALSE(Contains(loaded.out, "not loaded"));
}

TEST_CASE(
    "show prints a workflow's source as stored; graph its DAG as DOT, or a tree on a terminal") {
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  const std::string source = R"(name: etl
tasks:
  - { name: extract, type: shell, config: { command: 'true' } }
  - { name: transform, type: shell, depends_on: [extract], config: { command: 'true' } }
  - { name: check, type: shell, depends_on: [extract], config: { command: 'true' } }
  - { name: load, type: shell, depends_on: [transform, check], config: { command: 'true' } }
  - { name: alone, type: shell, config: { command: 'true' } }
)";
  REQUIRE(h.RunCtl({"submit", h.WriteFile("etl.yaml", source)}).code == 0);
  const ProcessResult shown = h.RunCtl({"show", "etl"});
  CHECK(shown.code == 0);
  CHECK(shown.out == source);

  const ProcessResult dot = h.RunCtl({"graph", "etl"});
  CHECK(dot.code == 0);
  CHECK(dot.out == R"(digraph "etl" {
  node [shape=box];
  "extract";
  "transform";
  "check";
  "load";
  "alone";
  "extract" -> "transform";
  "extract" -> "check";
  "transform" -> "load";
  "check" -> "load";
}
)");
  const ProcessResult tree = h.RunCtlInTerminal({"graph", "etl"});
  CHECK(tree.code == 0);
  CHECK(tree.out == R"(extract
|-- transform
|   `-- load
`-- check
    `-- load (see above)
alone
)");
  CHECK(h.RunCtlInTerminal({"graph", "etl", "--dot"}).out == dot.out);

  for (const char* command : {"show", "graph"}) {
    const ProcessResult typo = h.RunCtl({command, "elt"});
    CHECK(typo.code == 1);
    CHECK_MESSAGE(Contains(typo.err, "no workflow 'elt' (did you mean 'etl'?)"), typo.err);
  }
}

TEST_CASE(
    "history without a name lists every workflow's runs; status --check exits by the last run") {
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  const std::string good = h.WriteFile("good.yaml", kGood);
  const std::string bad = h.WriteFile("bad.yaml", kBad);
  REQUIRE(h.RunCtl({"submit", good, bad}).code == 0);
  REQUIRE(h.RunCtl({"run", "ctl-good", "--wait"}).code == 0);
  REQUIRE(h.RunCtl({"run", "ctl-bad", "--wait"}).code == 1);

  const ProcessResult all = h.RunCtl({"history"});
  CHECK(all.code == 0);
  std::istringstream lines(all.out);
  std::vector<std::string> rows;
  for (std::string line; std::getline(lines, line);) rows.push_back(line);
  REQUIRE_MESSAGE(rows.size() == 3, all.out);
  CHECK_MESSAGE(rows[0].rfind("RUN  WORKFLOW  STATUS ", 0) == 0, all.out);
  CHECK(rows[1].rfind("2    ctl-bad   failed ", 0) == 0);
  CHECK(rows[2].rfind("1    ctl-good  succeeded ", 0) == 0);

  const ProcessResult ok = h.RunCtl({"status", "ctl-good", "--check"});
  CHECK(ok.code == 0);
  CHECK_MESSAGE(ok.out.rfind("succeeded (run 1, ended ", 0) == 0, ok.out);
  const ProcessResult failed = h.RunCtl({"status", "ctl-bad", "--check"});
  CHECK(failed.code == 1);
  CHECK_MESSAGE(failed.out.rfind("failed (run 2, ended ", 0) == 0, failed.out);
  CHECK(ParseOut(h.RunCtl({"--json", "status", "ctl-bad", "--check"}))["id"] == 2);
  const ProcessResult unknown = h.RunCtl({"status", "ctl-god", "--check"});
  CHECK(unknown.code == 1);
  CHECK_MESSAGE(Contains(unknown.err, "(did you mean 'ctl-good'?)"), unknown.err);

  // A run in progress is passed over: the last one that ended counts.
  const std::string slow = h.WriteFile("slow.yaml", R"(
name: ctl-good
config: { kill_grace: 1s }
tasks:
  - { name: nap, type: shell, config: { command: 'sleep 30' } }
)");
  REQUIRE(h.RunCtl({"submit", slow}).code == 0);
  REQUIRE(h.RunCtl({"run", "ctl-good"}).code == 0);
  const ProcessResult still = h.RunCtl({"status", "ctl-good", "--check"});
  CHECK(still.code == 0);
  CHECK_MESSAGE(still.out.rfind("succeeded (run 1, ", 0) == 0, still.out);
  CHECK(h.RunCtl({"cancel", "ctl-good"}).code == 0);
  CHECK(h.WaitRun(3)["status"] == "cancelled");
  CHECK(h.RunCtl({"status", "ctl-good", "--check"}).code == 1);
}

TEST_CASE("logs -n prints the last lines; logs --since the output of every run since then") {
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  const std::string file = h.WriteFile("lines.yaml", R"(
name: lines
config: { retry_default: 0 }
tasks:
  - { name: out, type: shell, config: { command: 'printf "l1\nl2\nl3\nl4\nl5\n"' } }
  - { name: err, type: shell, depends_on: [out], config: { command: 'printf "e1\ne2" >&2' } }
)");
  REQUIRE(h.RunCtl({"submit", file}).code == 0);
  REQUIRE(h.RunCtl({"run", "lines", "--wait"}).code == 0);

  CHECK(h.RunCtl({"logs", "lines", "--task", "out", "-n", "2"}).out == "l4\nl5\n");
  CHECK(h.RunCtl({"logs", "lines", "-n", "3"}).out == "out | l5\nerr ! e1\nerr ! e2\n");
  CHECK(h.RunCtl({"logs", "lines", "--lines", "100"}).out ==
        "out | l1\nout | l2\nout | l3\nout | l4\nout | l5\nerr ! e1\nerr ! e2\n");
  const ProcessResult last = h.RunCtl({"--json", "logs", "lines", "-n", "1"});
  const json line = ParseOut(last);
  CHECK(line["task"] == "err");
  CHECK(line["stream"] == "stderr");
  CHECK(line["data"] == "e2");

  REQUIRE(h.RunCtl({"run", "lines", "--wait"}).code == 0);
  REQUIRE(h.RunCtl({"run", h.WriteFile("other.yaml", kGood), "--wait"}).code == 0);
  const ProcessResult since =
      h.RunCtl({"logs", "lines", "--since", "1h", "--task", "out", "-n", "7"});
  CHECK(since.code == 0);
  std::istringstream lines(since.out);
  std::vector<std::string> rows;
  for (std::string l; std::getline(lines, l);) rows.push_back(l);
  REQUIRE_MESSAGE(rows.size() == 7, since.out);
  CHECK(rows[0] == "l5");
  CHECK(rows[1].rfind("--- run 2 of 'lines': succeeded, started ", 0) == 0);
  CHECK(rows[2] == "l1");
  CHECK(rows[6] == "l5");
  const ProcessResult tail = h.RunCtl({"logs", "--since", "1h", "-n", "2"});
  // (The order of a task's stdout and stderr lines is the order they were read.)
  CHECK((tail.out == "after ! to stderr\nafter | after\n" ||
         tail.out == "after | after\nafter ! to stderr\n"));
  const ProcessResult everyone = h.RunCtl({"--json", "logs", "--since", "1h"});
  std::istringstream chunks(everyone.out);
  std::set<std::int64_t> runs;
  for (std::string l; std::getline(chunks, l);)
    runs.insert(json::parse(l)["run_id"].get<std::int64_t>());
  CHECK(runs == std::set<std::int64_t>{1, 2, 3});

  const ProcessResult none = h.RunCtl({"logs", "lines", "--since", "2099-01-01"});
  CHECK(none.code == 0);
  CHECK(none.out.empty());
  CHECK_MESSAGE(Contains(none.err, "no run of 'lines' started since 2099-01-01"), none.err);
  const ProcessResult bad = h.RunCtl({"logs", "lines", "--since", "yesterday"});
  CHECK(bad.code == 2);
  CHECK_MESSAGE(Contains(bad.err, "--since 'yesterday' is neither a duration"), bad.err);
  CHECK(h.RunCtl({"logs", "--run", "1", "--since", "1h"}).code == 2);
}

TEST_CASE("picoflowctl cancel stops a running run; cancelling it again fails") {
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  const std::string slow = h.WriteFile("slow.yaml", R"(
name: ctl-slow
config: { retry_default: 0, kill_grace: 1s }
tasks:
  - { name: nap, type: shell, config: { command: 'echo napping; sleep 30' } }
)");
  const ProcessResult started = h.RunCtl({"--json", "run", slow});
  REQUIRE(started.code == 0);
  const std::int64_t id = ParseOut(started)["run_id"];
  h.WaitRunState(id, [](const json& r) { return !AttemptsOf(r, "nap").empty(); });
  const ProcessResult cancel = h.RunCtl({"cancel", std::to_string(id)});
  CHECK(cancel.code == 0);
  CHECK_MESSAGE(Contains(cancel.out, "cancelling run " + std::to_string(id)), cancel.out);
  CHECK(h.WaitRun(id)["status"] == "cancelled");
  const ProcessResult again = h.RunCtl({"cancel", std::to_string(id)});
  CHECK(again.code == 1);
  CHECK_MESSAGE(Contains(again.err, "is not running"), again.err);
  // The follower of a finished run ends at once with its stored output.
  const ProcessResult logs = h.RunCtl({"logs", "--run", std::to_string(id), "--follow"});
  CHECK(logs.code == 0);
  CHECK_MESSAGE(Contains(logs.out, "nap | napping"), logs.out);
}

TEST_CASE("daemon status, call and --json output answer as JSON-RPC does") {
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  const ProcessResult status = h.RunCtl({"daemon", "status"});
  CHECK(status.code == 0);
  CHECK_MESSAGE(Contains(status.out, "(protocol 1), pid " + std::to_string(h.pid())), status.out);
  CHECK_MESSAGE(Contains(status.out, "socket " + h.socket()), status.out);
  // The harness's daemon shares the test's cgroup, which is not delegated to
  // it: a subreaper, saying why not a cgroup.
  CHECK_MESSAGE(Contains(status.out, "\ncontainment: subreaper ("), status.out);

  const ProcessResult js = h.RunCtl({"--json", "daemon", "status"});
  CHECK(js.code == 0);
  CHECK(ParseOut(js)["pid"] == h.pid());
  CHECK(ParseOut(js)["containment"]["mode"] == "subreaper");
  CHECK_MESSAGE(Contains(ParseOut(js)["containment"]["reason"].get<std::string>(), "cgroup"),
                js.out);

  const ProcessResult call = h.RunCtl({"call", "daemon.status"});
  CHECK(call.code == 0);
  const json called = ParseOut(call);
  CHECK(called["pid"] == h.pid());
  CHECK(called["state_dir"] == h.state_dir());

  const ProcessResult with_params = h.RunCtl({"call", "run.list", R"({"limit":5})"});
  CHECK(with_params.code == 0);
  CHECK(ParseOut(with_params)["runs"].is_array());

  for (const auto& args : std::vector<std::vector<std::string>>{
           {"--json", "status"}, {"--json", "workflows"}, {"--json", "history"}}) {
    const ProcessResult r = h.RunCtl(args);
    CAPTURE(args.back());
    CHECK(r.code == 0);
    CHECK(ParseOut(r).is_object());
  }
  const ProcessResult no_such = h.RunCtl({"--json", "history", "none"});
  CHECK(no_such.code == 1);
  CHECK(ParseOut(no_such)["error"]["code"] == static_cast<int>(RpcCode::kNotFound));
  // RPC errors: 1; invalid params: 2; unparsable params: 2.
  CHECK(h.RunCtl({"call", "no.such"}).code == 1);
  CHECK(h.RunCtl({"call", "run.get", R"({"run_id":"x"})"}).code == 2);
  const ProcessResult not_json = h.RunCtl({"call", "run.get", "{oops"});
  CHECK(not_json.code == 2);
  CHECK_MESSAGE(Contains(not_json.err, "params are not JSON"), not_json.err);
  const ProcessResult json_error = h.RunCtl({"--json", "call", "run.get", R"({"run_id":42})"});
  CHECK(json_error.code == 1);
  CHECK(ParseOut(json_error)["error"]["code"] == static_cast<int>(RpcCode::kNotFound));
}

TEST_CASE("daemon version and reload print text unless --json; counts of one are singular") {
  DaemonHarness h;
  const std::string dir = h.Path("wf");
  REQUIRE(mkdir(dir.c_str(), 0700) == 0);
  REQUIRE(h.Start({"--workflows-dir", dir}).ok());
  const ProcessResult version = h.RunCtl({"daemon", "version"});
  CHECK(version.code == 0);
  CHECK_MESSAGE(version.out == std::string("picoflowd ") + PICOFLOW_VERSION + " (protocol 1)\n",
                version.out);
  CHECK(ParseOut(h.RunCtl({"--json", "daemon", "version"}))["protocol"] == kProtocolVersion);

  h.WriteFile("wf/one.yaml", R"(
name: one
tasks:
  - { name: only, type: shell, config: { command: 'true' } }
)");
  h.WriteFile("wf/broken.yaml", "name: broken\ntasks: []\n");
  const ProcessResult reload = h.RunCtl({"daemon", "reload"});
  CHECK(reload.code == 0);
  CHECK_MESSAGE(Contains(reload.out,
                         "reloaded: 1 added, 0 replaced, 0 removed, 0 unchanged\n"
                         "  added: one\n"
                         "workflow files with errors"),
                reload.out);
  CHECK_MESSAGE(Contains(reload.out, "  " + dir + "/broken.yaml:"), reload.out);
  CHECK(ParseOut(h.RunCtl({"--json", "daemon", "reload"}))["unchanged"] == json::array({"one"}));

  const std::string file = h.WriteFile("one-task.yaml", R"(
name: single
tasks:
  - { name: only, type: shell, config: { command: 'true' } }
)");
  const ProcessResult submitted = h.RunCtl({"submit", file});
  CHECK_MESSAGE(Contains(submitted.out, "submitted workflow 'single' (1 task) from "),
                submitted.out);
  const ProcessResult status = h.RunCtl({"daemon", "status"});
  CHECK_MESSAGE(Contains(status.out, "\n2 workflows, 0 active runs, 0 running tasks\n"),
                status.out);
  // A table without rows is its header line, ended.
  const ProcessResult empty = h.RunCtl({"history", "single"});
  CHECK(empty.code == 0);
  CHECK_MESSAGE(empty.out == "RUN  STATUS  TRIGGER  STARTED  DURATION  LATE  REASON\n", empty.out);
}

TEST_CASE(
    "the workflows directory owns its names: submit of a file's name is refused, and a reload "
    "never replaces nor removes a submitted workflow") {
  DaemonHarness h;
  const std::string dir = h.Path("wf");
  REQUIRE(mkdir(dir.c_str(), 0700) == 0);
  const auto workflow = [](const std::string& name, const std::string& description) {
    return "name: " + name + "\ndescription: " + description +
           "\ntasks:\n  - { name: only, type: shell, config: { command: 'true' } }\n";
  };
  const std::string owned_file = h.WriteFile("wf/owned.yaml", workflow("owned", "from the file"));
  REQUIRE(h.Start({"--workflows-dir", dir}).ok());
  const auto origin_and_description = [&](const std::string& name) {
    auto got = h.Call(method::kWorkflowGet, {{"name", name}});
    REQUIRE(got.ok());
    return std::pair<std::string, std::string>{(*got)["origin"], (*got)["description"]};
  };

  // A name a directory file defines cannot be submitted.
  const std::string impostor = h.WriteFile("impostor.yaml", workflow("owned", "submitted"));
  const ProcessResult refused = h.RunCtl({"submit", impostor});
  CHECK(refused.code == 1);
  CHECK_MESSAGE(
      Contains(refused.err, "picoflowctl: workflow 'owned' is defined by the file " + owned_file),
      refused.err);
  CHECK(origin_and_description("owned") ==
        std::pair<std::string, std::string>{owned_file, "from the file"});

  // A file that takes a submitted workflow's name is reported, not loaded.
  const std::string kept = h.WriteFile("kept.yaml", workflow("kept", "submitted"));
  const ProcessResult submitted = h.RunCtl({"submit", kept});
  REQUIRE_MESSAGE(submitted.code == 0, submitted.err);
  const std::string rival = h.WriteFile("wf/kept.yaml", workflow("kept", "from the file"));
  auto reloaded = h.Call(method::kDaemonReload);
  REQUIRE(reloaded.ok());
  CHECK((*reloaded)["added"] == json::array());
  CHECK((*reloaded)["replaced"] == json::array());
  REQUIRE((*reloaded)["errors"].size() == 1);
  const std::string error = (*reloaded)["errors"][0]["text"];
  CHECK_MESSAGE(Contains(error, rival + ": workflow 'kept' was submitted"), error);
  CHECK(origin_and_description("kept") ==
        std::pair<std::string, std::string>{"submitted", "submitted"});
  auto status = h.Call(method::kDaemonStatus);
  REQUIRE(status.ok());
  CHECK_MESSAGE(Contains((*status)["load_errors"].dump(), "workflow 'kept' was submitted"),
                (*status)["load_errors"].dump());
  const ProcessResult shown = h.RunCtl({"daemon", "reload"});
  CHECK(shown.code == 0);
  CHECK_MESSAGE(Contains(shown.out, rival + ": workflow 'kept' was submitted"), shown.out);

  // Deleting that file leaves the submitted workflow alone.
  std::filesystem::remove(rival);
  reloaded = h.Call(method::kDaemonReload);
  REQUIRE(reloaded.ok());
  CHECK((*reloaded)["removed"] == json::array());
  CHECK((*reloaded)["errors"] == json::array());
  CHECK(origin_and_description("kept") ==
        std::pair<std::string, std::string>{"submitted", "submitted"});

  // Deleting the directory's own file unloads its workflow, as before.
  std::filesystem::remove(owned_file);
  reloaded = h.Call(method::kDaemonReload);
  REQUIRE(reloaded.ok());
  CHECK((*reloaded)["removed"] == json::array({"owned"}));
}

TEST_CASE("an unreachable daemon makes picoflowctl exit 3 naming the socket") {
  DaemonHarness h;  // no daemon started
  for (const std::string& socket : {h.Path("nobody-here.sock"), h.Path("missing-dir/s.sock")}) {
    CAPTURE(socket);
    const ProcessResult r = h.RunProgram(PicoflowctlPath(), {"--socket", socket, "status"});
    CHECK(r.code == 3);
    CHECK_MESSAGE(Contains(r.err, "cannot connect to picoflowd at " + socket + ": "), r.err);
    CHECK_MESSAGE(Contains(r.err, "picoflowd --socket " + socket), r.err);
    // Said once.
    CHECK_MESSAGE(r.err.find("start it") == r.err.rfind("start it"), r.err);
  }
  // A directory given as the socket is said to be one.
  const ProcessResult dir = h.RunProgram(PicoflowctlPath(), {"--socket", h.dir(), "status"});
  CHECK(dir.code == 3);
  CHECK_MESSAGE(Contains(dir.err, h.dir() + ": it is a directory, not a socket"), dir.err);
  // A daemon that went away: its stale socket file refuses connections.
  REQUIRE(h.Start().ok());
  h.Kill9();
  const ProcessResult stale = h.RunCtl({"daemon", "status"});
  CHECK(stale.code == 3);
  CHECK_MESSAGE(Contains(stale.err, h.socket()), stale.err);
}

TEST_CASE("a socket picoflowctl may not use says how access is given") {
  const passwd* found = ::getpwnam("nobody");
  if (::geteuid() != 0 || found == nullptr) {
    MESSAGE("skipped: needs root and a user 'nobody' to act as another uid");
    return;
  }
  const uid_t nobody = found->pw_uid;
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  // The socket's directory is 0700: connect() itself is refused.
  const ProcessResult denied =
      h.RunProgram(PicoflowctlPath(), {"--socket", h.socket(), "status"}, 60s, nobody);
  if (denied.code == 127 && Contains(denied.err, "exec")) {
    MESSAGE("skipped: picoflowctl not executable by nobody here: ", denied.err);
    return;
  }
  CHECK(denied.code == 3);
  CHECK_MESSAGE(Contains(denied.err, h.socket() + ": Permission denied\n"), denied.err);
  CHECK_MESSAGE(Contains(denied.err, "picoflowd --read-group GROUP"), denied.err);
  CHECK_FALSE(Contains(denied.err, "start it"));
  // Connected, but refused by the daemon (SO_PEERCRED): the same advice.
  REQUIRE(::chmod(h.dir().c_str(), 0711) == 0);
  REQUIRE(::chmod(h.socket().c_str(), 0666) == 0);
  const ProcessResult refused =
      h.RunProgram(PicoflowctlPath(), {"--socket", h.socket(), "status"}, 60s, nobody);
  CHECK(refused.code == 3);
  CHECK_MESSAGE(Contains(refused.err, "permission denied"), refused.err);
  CHECK_MESSAGE(Contains(refused.err, "picoflowd --read-group GROUP"), refused.err);
}

TEST_CASE("usage errors make picoflowctl exit 2") {
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  for (const auto& args : std::vector<std::vector<std::string>>{
           {},
           {"frobnicate"},
           {"run"},
           {"logs"},
           {"status", "--check"},
           {"cancel"},
           {"cancel", "99999999999999999999999"},
           {"daemon", "bogus"},
           {"history", "x", "-n", "0"},
           {"status", "--no-such-flag"},
           {"cron", "61 * * * *"},
       }) {
    std::string joined;
    for (const auto& a : args) joined += a + " ";
    CAPTURE(joined);
    const ProcessResult r = h.RunCtl(args);
    CHECK(r.code == 2);
    CHECK_FALSE(r.err.empty());
  }
  // --help is not an error.
  CHECK(h.RunCtl({"--help"}).code == 0);
}

TEST_CASE("validate -, submit - and run - read the workflow from standard input") {
  DaemonHarness h;
  const ProcessResult valid = h.RunCtlWithInput(kGood, {"validate", "-"});
  CHECK_MESSAGE(valid.code == 0, valid.err);
  CHECK_MESSAGE(
      valid.out.starts_with("<stdin>: valid: workflow 'ctl-good', 2 tasks, order: hello, after\n"),
      valid.out);
  const ProcessResult invalid = h.RunCtlWithInput(
      "name: x\ntasks:\n  - {name: a, type: shel, config: {command: 'true'}}\n", {"validate", "-"});
  CHECK(invalid.code == 1);
  CHECK_MESSAGE(Contains(invalid.out, "<stdin>:3:"), invalid.out);
  CHECK_MESSAGE(Contains(invalid.out, "(did you mean 'shell'?)"), invalid.out);

  REQUIRE(h.Start().ok());
  const ProcessResult submitted = h.RunCtlWithInput(kGood, {"submit", "-"});
  CHECK_MESSAGE(submitted.code == 0, submitted.err);
  CHECK(submitted.out == "submitted workflow 'ctl-good' (2 tasks) from <stdin>\n");
  CHECK(h.RunCtl({"run", "ctl-good", "--wait"}).code == 0);
  const ProcessResult ran = h.RunCtlWithInput(kBad, {"run", "-", "--wait"});
  CHECK(ran.code == 1);
  CHECK_MESSAGE(Contains(ran.out, "ctl-bad  failed"), ran.out);
}

TEST_CASE("colour only on a terminal, and not with --no-color, NO_COLOR or TERM=dumb") {
  DaemonHarness h;
  const std::string good = h.WriteFile("good.yaml", kGood);
  const std::string green = "\x1b[32mvalid\x1b[0m";
  const ProcessResult coloured = h.RunCtlInTerminal({"validate", good});
  CHECK(coloured.code == 0);
  CHECK_MESSAGE(Contains(coloured.out, green), coloured.out);
  CHECK_FALSE(Contains(h.RunCtl({"validate", good}).out, "\x1b["));
  struct Case {
    std::vector<std::string> args;
    std::vector<std::string> env;
  };
  for (const Case& c : std::vector<Case>{{{"--no-color", "validate", good}, {}},
                                         {{"validate", good, "--no-color"}, {}},
                                         {{"validate", good}, {"NO_COLOR=1"}},
                                         {{"validate", good}, {"TERM=dumb"}}}) {
    CAPTURE(c.args.front());
    CAPTURE(c.env.empty() ? "" : c.env.front());
    const ProcessResult plain = h.RunCtlInTerminal(c.args, c.env);
    CHECK(plain.code == 0);
    CHECK_MESSAGE(Contains(plain.out, ": valid: workflow 'ctl-good'"), plain.out);
    CHECK_FALSE(Contains(plain.out, "\x1b["));
  }
  // The daemon commands too.
  REQUIRE(h.Start().ok());
  REQUIRE(h.RunCtl({"run", good, "--wait"}).code == 0);
  CHECK(Contains(h.RunCtlInTerminal({"status", "ctl-good"}).out, "\x1b[32msucceeded"));
  CHECK_FALSE(Contains(h.RunCtlInTerminal({"status", "ctl-good"}, {"TERM=dumb"}).out, "\x1b["));
  CHECK_FALSE(Contains(h.RunCtlInTerminal({"--no-color", "status", "ctl-good"}).out, "\x1b["));
}

TEST_CASE("an unknown command or option is named as such, with the closest one suggested") {
  DaemonHarness h;  // parsing needs no daemon
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {{"statsu"}, "unknown command 'statsu' (did you mean 'status'?)"},
           {{"start", "x"}, "unknown command 'start' (did you mean 'run'?)"},
           {{"list"}, "unknown command 'list' (did you mean 'workflows'?)"},
           {{"--json", "histroy", "x"}, "unknown command 'histroy' (did you mean 'history'?)"},
           {{"run", "X", "--task", "merge"}, "run: unknown option '--task'"},
           {{"logs", "x", "--tsk", "a"}, "logs: unknown option '--tsk' (did you mean '--task'?)"},
           {{"status", "--bogus"}, "status: unknown option '--bogus'"},
           {{}, "a command is required"},
       }) {
    std::string joined;
    for (const auto& a : c.args) joined += a + " ";
    CAPTURE(joined);
    const ProcessResult r = h.RunCtl(c.args);
    CHECK(r.code == 2);
    CHECK_MESSAGE(Contains(r.err, "picoflowctl: " + c.message + "\n"), r.err);
    CHECK_FALSE(Contains(r.err, "A subcommand is required"));
    CHECK_FALSE(Contains(r.err, "At Most"));
  }
}

TEST_CASE(
    "picoflowctl validate exits 0 for valid files and 1 for invalid ones, with or without a daemon") {
  DaemonHarness h;  // validate needs no daemon: started only at the end
  const std::string good = h.WriteFile("good.yaml", kGood);
  const std::string broken = h.WriteFile("broken.yaml", R"(name: broken
tasks:
  - name: a
    type: shell
    config: { command: 'true' }
    timout: 5
)");
  const ProcessResult ok = h.RunCtl({"validate", good});
  CHECK(ok.code == 0);
  CHECK_MESSAGE(Contains(ok.out, "valid: workflow 'ctl-good', 2 tasks, order: hello, after"),
                ok.out);
  // Each task's effective timeout and retries, and where they come from.
  CHECK_MESSAGE(Contains(ok.out,
                         "\n  task hello: timeout 5m (default), 0 retries (config.retry_default)\n"
                         "  task after: timeout 5m (default), 0 retries (config.retry_default)\n"),
                ok.out);
  const std::string tuned = h.WriteFile("tuned.yaml", R"(name: tuned
config: { timeout_default: 1h }
tasks:
  - { name: tar, type: shell, config: { command: 'true' } }
  - { name: ping, type: shell, timeout: 10s, retry: 1, config: { command: 'true' } }
)");
  const ProcessResult tuned_out = h.RunCtl({"validate", tuned});
  CHECK_MESSAGE(Contains(tuned_out.out,
                         "\n  task tar: timeout 1h (config.timeout_default), 3 retries (default)\n"
                         "  task ping: timeout 10s, 1 retry\n"),
                tuned_out.out);
  // Conditions and max_active_runs, as the loader understood them.
  const std::string gated = h.WriteFile("gated.yaml", R"(name: gated
when: test -d /srv
max_active_runs: 2
overlap: queue
tasks:
  - name: sync
    type: shell
    when: { command: test, args: [-s, /srv/new] }
    config: { command: 'true' }
)");
  const ProcessResult gated_out = h.RunCtl({"validate", gated});
  CHECK_MESSAGE(
      Contains(gated_out.out,
               "valid: workflow 'gated', 1 task, order: sync\n"
               "  when: test -d /srv (the run is skipped unless it exits 0)\n"
               "  max_active_runs 2: past that many runs, runs wait their turn (overlap: queue)\n"
               "  task sync: timeout 5m (default), 3 retries (default), when: test -s /srv/new\n"),
      gated_out.out);
  const json gated_json = json::parse(h.RunCtl({"--json", "validate", gated}).out)[0];
  CHECK(gated_json["when"] == "test -d /srv");
  CHECK(gated_json["max_active_runs"] == 2);
  CHECK(gated_json["task_settings"][0]["when"] == "test -s /srv/new");

  // Secrets by name and source (never a value), notify targets, and a
  // condition's args as shell words: [x, "a b"] is not [x, a, b].
  const std::string told = h.WriteFile("told.yaml", R"(name: told
secrets:
  DB_PASS: {file: /etc/picoflow/secrets/db}
tasks:
  - name: dump
    type: shell
    secrets:
      API: {env: API_TOKEN}
    when: { command: test, args: [-f, "/srv/a b", "it's"] }
    config: { command: 'true' }
notify:
  - webhook: {url: "https://hooks.example/x", format: slack}
  - name: mail
    on: [failure, skipped_fire]
    email: {smtp: "smtp://mail.example:587", from: a@example.org, to: [x@example.org, y@example.org]}
)");
  const ProcessResult told_out = h.RunCtl({"validate", told});
  CHECK_MESSAGE(
      Contains(
          told_out.out,
          "  secret DB_PASS: from file /etc/picoflow/secrets/db (read when a task starts; "
          "every task gets it)\n"
          "  notify webhook-1 (webhook, slack) https://hooks.example/x: on failure, recovered\n"
          "  notify mail (email) smtp://mail.example:587 to x@example.org, y@example.org: on "
          "failure, skipped_fire\n"
          "  task dump: timeout 5m (default), 3 retries (default), when: test -f '/srv/a b' "
          "'it'\\''s', secrets: DB_PASS, API\n"),
      told_out.out);
  const json told_json = json::parse(h.RunCtl({"--json", "validate", told}).out)[0];
  CHECK(told_json["secrets"] ==
        json::parse(R"([{"name": "DB_PASS", "from": "file /etc/picoflow/secrets/db"}])"));
  CHECK(told_json["task_settings"][0]["secrets"][1] ==
        json{{"name", "API"}, {"from", "env API_TOKEN"}});
  CHECK(told_json["notify"][1]["recipients"] == json{"x@example.org", "y@example.org"});
  CHECK(told_json["notify"][0]["on"] == json{"failure", "recovered"});
  CHECK(gated_json["notify"].is_null());  // the daemon's default applies
  const std::string quiet = h.WriteFile(
      "quiet.yaml",
      "name: quiet\nnotify: []\ntasks:\n  - {name: a, type: shell, config: {command: 'true'}}\n");
  CHECK(Contains(h.RunCtl({"validate", quiet}).out, "  notify: none (notify: [])\n"));

  const ProcessResult bad = h.RunCtl({"validate", broken});
  CHECK(bad.code == 1);
  CHECK_MESSAGE(Contains(bad.out, "broken.yaml:6:5"), bad.out);
  CHECK_MESSAGE(Contains(bad.out, "did you mean 'timeout'"), bad.out);

  const ProcessResult both = h.RunCtl({"--json", "validate", good, broken});
  CHECK(both.code == 1);
  const json list = ParseOut(both);
  REQUIRE(list.is_array());
  REQUIRE(list.size() == 2);
  CHECK(list[0]["valid"] == true);
  CHECK(list[0]["order"] == json::array({"hello", "after"}));
  CHECK(list[0]["task_settings"][0] == json{{"name", "hello"},
                                            {"timeout_s", 300},
                                            {"timeout_from", "default"},
                                            {"retry", 0},
                                            {"retry_from", "config"},
                                            {"when", nullptr},
                                            {"secrets", json::array()}});
  CHECK(list[1]["valid"] == false);
  CHECK(list[1]["errors"][0]["line"] == 6);

  const ProcessResult missing = h.RunCtl({"validate", h.Path("missing.yaml")});
  CHECK(missing.code == 1);

  // The daemon refuses the same file with the same located diagnostics.
  REQUIRE(h.Start().ok());
  for (const char* command : {"submit", "run"}) {
    CAPTURE(command);
    const ProcessResult refused = h.RunCtl({command, broken});
    CHECK(refused.code == 1);
    CHECK_MESSAGE(Contains(refused.err, broken + ": invalid workflow (1 error)"), refused.err);
    CHECK_MESSAGE(Contains(refused.err, broken + ":6:5: task 'a': unknown key 'timout'"),
                  refused.err);
  }
}

TEST_CASE(
    "validate and submit show warnings, and validate the next three fires of each schedule in its "
    "zone") {
  DaemonHarness h;
  const std::string hourly = h.WriteFile("hourly.yaml", R"(name: ctl-hourly
schedule: ["0 2 * * * *", "30 1 * * *"]
timezone: Asia/Kolkata
tasks:
  - { name: a, type: shell, config: { command: 'true' } }
)");
  const std::string kWarning =
      hourly +
      ":2:12: warning: schedule '0 2 * * * *': 6 fields mean seconds first (second minute hour "
      "day-of-month month day-of-week), so this fires at minute 2 of every hour; for minute 0 of "
      "hour 2, write the 5 fields '0 2 * * *' (a year field is not supported)\n";
  const ProcessResult ok = h.RunCtl({"--utc", "validate", hourly});
  CHECK(ok.code == 0);
  CHECK_MESSAGE(ok.out.rfind(kWarning + hourly + ": valid: workflow 'ctl-hourly'", 0) == 0, ok.out);
  // Three fires an hour apart at minute 2 in the workflow's zone, which is named; printed
  // as every table prints times, here in UTC (--utc): minute 32, as Kolkata is +05:30.
  const std::string label = "  schedule '0 2 * * * *' (Asia/Kolkata): next ";
  const std::size_t at = ok.out.find(label);
  REQUIRE_MESSAGE(at != std::string::npos, ok.out);
  std::istringstream fires(ok.out.substr(at + label.size(), ok.out.find('\n', at) - at));
  std::vector<std::string> times;
  for (std::string t; std::getline(fires, t, ',');) times.push_back(t.substr(t[0] == ' ' ? 1 : 0));
  REQUIRE(times.size() == 3);
  for (std::size_t i = 0; i < times.size(); ++i) {
    CAPTURE(times[i]);
    CHECK(times[i].substr(13).rfind(":32:00 UTC", 0) == 0);
    if (i > 0)
      CHECK(std::stoi(times[i].substr(11, 2)) == (std::stoi(times[i - 1].substr(11, 2)) + 1) % 24);
  }
  CHECK_MESSAGE(Contains(ok.out, "  schedule '30 1 * * *' (Asia/Kolkata): next "), ok.out);

  const json entry = ParseOut(h.RunCtl({"--json", "validate", hourly}))[0];
  CHECK(entry["warnings"].size() == 1);
  CHECK(entry["warnings"][0]["line"] == 2);
  REQUIRE(entry["schedules"].size() == 2);
  CHECK(entry["schedules"][0]["timezone"] == "Asia/Kolkata");
  CHECK(entry["schedules"][0]["next"].size() == 3);

  // The daemon stores the workflow and says the same; workflow.validate answers it as data.
  REQUIRE(h.Start().ok());
  const ProcessResult submitted = h.RunCtl({"submit", hourly});
  CHECK(submitted.code == 0);
  CHECK_MESSAGE(Contains(submitted.out, "submitted workflow 'ctl-hourly'"), submitted.out);
  CHECK(submitted.err == kWarning);
  auto validated =
      h.Call("workflow.validate", {{"source", ReadFileText(hourly)}, {"file", "hourly.yaml"}});
  REQUIRE(validated.ok());
  CHECK((*validated)["valid"] == true);
  REQUIRE((*validated)["warnings"].size() == 1);
  CHECK((*validated)["warnings"][0]["text"].get<std::string>().rfind(
            "hourly.yaml:2:12: warning: schedule '0 2 * * * *': ", 0) == 0);
}

namespace {

// A project directory with a workflow that uses relative paths: a program
// run without a shell (./bin/tool.sh, ../bin/tool.sh from the workdir), a
// relative workdir, and an env value that extends the daemon's PATH.
std::string WriteRelativeProject(DaemonHarness& h, const std::string& dir,
                                 const std::string& name) {
  std::filesystem::create_directories(h.Path(dir + "/bin"));
  std::filesystem::create_directories(h.Path(dir + "/data"));
  const std::string tool = h.WriteFile(dir + "/bin/tool.sh", "#!/bin/sh\necho \"tool $1\"\n");
  ::chmod(tool.c_str(), 0755);
  return h.WriteFile(dir + "/" + name, R"(name: rel-paths
config: { retry_default: 0 }
tasks:
  - { name: tool, type: shell, config: { command: ./bin/tool.sh, args: [x] } }
  - { name: from_data, type: shell, config: { command: ../bin/tool.sh, args: [y], workdir: data } }
  - { name: cwd, type: shell, config: { command: "pwd -P", workdir: ./data } }
  - name: path
    type: shell
    config: { command: 'echo "$PATH"', env: { PATH: "/picoflow-test:${PATH}" } }
)");
}

// Runs the workflow (a file or a name) to its end; returns each task's output.
std::map<std::string, std::string> RunOutputs(DaemonHarness& h, const std::string& target) {
  const ProcessResult r = h.RunCtl({"--json", "run", target, "--wait"});
  CHECK_MESSAGE(r.code == 0, r.out, r.err);
  const json run = ParseOut(r);
  std::map<std::string, std::string> out;
  if (!run.is_object()) return out;
  const std::string id = std::to_string(run["id"].get<std::int64_t>());
  for (const char* task : {"tool", "from_data", "cwd", "path"}) {
    out[task] = h.RunCtl({"logs", "--run", id, "--task", task}).out;
  }
  return out;
}

void CheckRelativeOutputs(const std::map<std::string, std::string>& out, const std::string& dir) {
  const std::string data = std::filesystem::canonical(dir + "/data").string();
  CHECK(out.at("tool") == "tool x\n");
  CHECK(out.at("from_data") == "tool y\n");
  CHECK(out.at("cwd") == data + "\n");
  CHECK(out.at("path").rfind("/picoflow-test:/", 0) == 0);  // the daemon's PATH follows
}

}  // namespace

TEST_CASE(
    "relative workdir and program paths resolve against the workflow file's directory, for run, "
    "submit and the workflows directory") {
  DaemonHarness h;
  const std::string wfdir = h.Path("wfdir");
  std::filesystem::create_directories(wfdir);
  REQUIRE(h.Start({"--workflows-dir", wfdir}).ok());
  // picoflowctl is given a path relative to its own working directory,
  // which is not the file's directory.
  const std::string file = WriteRelativeProject(h, "project", "job.yaml");
  const std::string relative =
      std::filesystem::relative(file, std::filesystem::current_path()).string();
  REQUIRE(relative.find("project/job.yaml") != std::string::npos);
  REQUIRE(relative.front() != '/');

  SUBCASE("run FILE") { CheckRelativeOutputs(RunOutputs(h, relative), h.Path("project")); }

  SUBCASE("submit FILE, then run by name, also after a restart") {
    const ProcessResult submitted = h.RunCtl({"submit", relative});
    CHECK_MESSAGE(submitted.code == 0, submitted.err);
    CHECK(submitted.err.empty());  // no warning: the file's directory is known
    CheckRelativeOutputs(RunOutputs(h, "rel-paths"), h.Path("project"));
    auto got = h.Call("workflow.get", {{"name", "rel-paths"}});
    REQUIRE(got.ok());
    CHECK((*got)["dir"] == h.Path("project"));
    REQUIRE(h.Restart().ok());
    CheckRelativeOutputs(RunOutputs(h, "rel-paths"), h.Path("project"));
  }

  SUBCASE("a file in the workflows directory") {
    WriteRelativeProject(h, "wfdir", "job.yaml");
    auto reloaded = h.Call("daemon.reload");
    REQUIRE(reloaded.ok());
    CHECK((*reloaded)["added"] == json::array({"rel-paths"}));
    CheckRelativeOutputs(RunOutputs(h, "rel-paths"), wfdir);
  }
}

}  // namespace picoflow::test

namespace picoflow::test {
namespace {

// A failing task of every kind (docs/rpc.md, RunDetail `error`): a program
// given as "program args" with args, a file that is not a program, a
// timeout, a task skipped by it, a refused HTTP connection. NOTAPROG is
// replaced by the path of an executable text file. The TERM ends the
// sleep at once; the long kill_grace only keeps a slow machine from
// reaching the KILL (a reason of its own).
constexpr const char* kWhy = R"(
name: why
config: { retry_default: 0, kill_grace: 60s }
tasks:
  - { name: split, type: shell, config: { command: 'ls -la', args: [] } }
  - { name: notprog, type: shell, config: { command: 'NOTAPROG', args: [] } }
  - { name: slow, type: shell, timeout: 1, config: { command: 'exec sleep 300' } }
  - { name: after, type: shell, depends_on: [slow], config: { command: 'true' } }
  - { name: web, type: http, timeout: 30, config: { url: 'http://127.0.0.1:9/health' } }
  - { name: fine, type: shell, config: { command: 'echo fine' } }
)";

std::string WhyYaml(const DaemonHarness& h) {
  const std::string notprog = h.WriteFile("notprog", "just words\n");
  chmod(notprog.c_str(), 0755);
  std::string yaml = kWhy;
  yaml.replace(yaml.find("NOTAPROG"), 8, notprog);
  return h.WriteFile("why.yaml", yaml);
}

}  // namespace

TEST_CASE("run --wait, status and history say why each task failed, timed out or was skipped") {
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  const std::string file = WhyYaml(h);
  const std::string notprog = h.Path("notprog");
  const ProcessResult r = h.RunCtl({"run", file, "--wait"});
  CHECK(r.code == 1);
  const std::string split =
      "cannot start 'ls -la': no such file or directory (did you mean command: ls, args: [-la]?)";
  const std::string not_a_program = "cannot start '" + notprog + "': exec format error: '" +
                                    notprog + "' is not a program (no #! line?)";
  for (const std::string& expected :
       {std::string("TASK     STATUS     ATTEMPTS  DURATION  EXIT  REASON"),
        "error: task 'split' failed: " + split + " (and 3 more)", split, not_a_program,
        std::string("slow     timed_out  1"), std::string("timed out after 1s (SIGTERM)"),
        std::string("after    skipped    0         -         -     dependency 'slow' timed out"),
        std::string("http: GET http://127.0.0.1:9/health: connection refused")}) {
    CHECK_MESSAGE(Contains(r.out, expected), "missing '", expected, "' in:\n", r.out);
  }
  // The same table for status NAME and status --run ID.
  for (const std::vector<std::string>& args : {std::vector<std::string>{"status", "why"},
                                               std::vector<std::string>{"status", "--run", "1"}}) {
    const ProcessResult status = h.RunCtl(args);
    CHECK(status.code == 0);
    CHECK_MESSAGE(Contains(status.out, "dependency 'slow' timed out"), status.out);
    CHECK_MESSAGE(Contains(status.out, not_a_program), status.out);
  }
  // history: the run's error as its REASON.
  const ProcessResult history = h.RunCtl({"history", "why"});
  CHECK_MESSAGE(Contains(history.out, "REASON"), history.out);
  CHECK_MESSAGE(Contains(history.out, "failed  rpc"), history.out);
  CHECK_MESSAGE(Contains(history.out, "task 'split' failed: " + split), history.out);
  // --json: every reason whole, the timeout a status of its own.
  const json run = ParseOut(h.RunCtl({"--json", "status", "--run", "1"}));
  std::map<std::string, std::string> errors;
  for (const json& t : run["tasks"]) errors[t["name"]] = t["error"];
  CHECK(errors == std::map<std::string, std::string>{
                      {"split", split},
                      {"notprog", not_a_program},
                      {"slow", "timed out after 1s (SIGTERM)"},
                      {"after", "dependency 'slow' timed out"},
                      {"web", "http: GET http://127.0.0.1:9/health: connection refused"},
                      {"fine", ""}});
  CHECK(TaskStatuses(run)["slow"] == "timed_out");
  CHECK(AttemptStatuses(run, "slow") == std::vector<std::string>{"timed_out"});
  // On a terminal (80 columns unless it says otherwise) long reasons are cut.
  const ProcessResult tty = h.RunCtlInTerminal({"--no-color", "status", "--run", "1"});
  CHECK_MESSAGE(Contains(tty.out, "cannot start 'ls -la': no such"), tty.out);
  CHECK_MESSAGE(Contains(tty.out, "\xE2\x80\xA6\n"), tty.out);  // "…" ends a cut reason
  CHECK_FALSE(Contains(tty.out, split));
}

TEST_CASE("logs shows a run task by task, marks attempts and says why a silent task ended") {
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  const std::string file = h.WriteFile("flaky.yaml", R"(
name: flaky
config: { retry_default: 0, retry_delay: 1s }
tasks:
  - { name: flaky, type: shell, retry: 1, config: { command: 'echo try $PICOFLOW_ATTEMPT; exit 1' } }
  - { name: quiet, type: shell, depends_on: [flaky], config: { command: 'true' } }
  - { name: silent, type: shell, config: { command: 'exit 4' } }
)");
  REQUIRE(h.RunCtl({"run", file, "--wait"}).code == 1);
  const ProcessResult all = h.RunCtl({"logs", "flaky"});
  CHECK(all.code == 0);
  CHECK(all.out ==
        "--- task 'flaky': failed: exited with code 1 ---\n"
        "--- attempt 1 (exit 1) ---\n"
        "flaky | try 1\n"
        "--- attempt 2 (exit 1) ---\n"
        "flaky | try 2\n"
        "--- task 'quiet': skipped: dependency 'flaky' failed ---\n"
        "(no output)\n"
        "--- task 'silent': failed: exited with code 4 ---\n"
        "(no output)\n");
  CHECK(h.RunCtl({"logs", "flaky", "--task", "quiet"}).out ==
        "(no output; skipped: dependency 'flaky' failed)\n");
  CHECK(h.RunCtl({"logs", "flaky", "--task", "flaky"}).out ==
        "--- attempt 1 (exit 1) ---\ntry 1\n--- attempt 2 (exit 1) ---\ntry 2\n");
}

namespace {

// Every line of `text` starts with one of `prefixes`; returns the number of lines.
int LinesStartingWith(const std::string& text, const std::vector<std::string>& prefixes) {
  std::istringstream in(text);
  int n = 0;
  for (std::string line; std::getline(in, line); ++n) {
    bool ok = false;
    for (const std::string& p : prefixes) ok = ok || line.starts_with(p);
    CHECK_MESSAGE(ok, "line ", n + 1, " of:\n", text);
  }
  return n;
}

// A task name and a type with a newline in them (YAML decodes "\n").
constexpr const char* kNewlines = R"(name: nl
tasks:
  - name: "bad\nname"
    type: "shel\nl"
    config: { command: 'true' }
)";

}  // namespace

TEST_CASE("a newline in a task name or value is shown escaped: one line per diagnostic and error") {
  DaemonHarness h;
  const ProcessResult validated = h.RunCtlWithInput(kNewlines, {"validate", "-"});
  CHECK(validated.code == 1);
  CHECK(LinesStartingWith(validated.out, {"<stdin>:3:", "<stdin>:4:"}) == 2);
  CHECK_MESSAGE(Contains(validated.out, R"(task 'bad\nname': task name 'bad\nname' is not valid)"),
                validated.out);
  CHECK_MESSAGE(Contains(validated.out, R"('shel\nl')"), validated.out);

  REQUIRE(h.Start().ok());
  // From the daemon: the -32003 message, then its diagnostics, a line each.
  const ProcessResult submitted = h.RunCtlWithInput(kNewlines, {"submit", "-"});
  CHECK(submitted.code == 1);
  CHECK(LinesStartingWith(submitted.err, {"picoflowctl: ", "<stdin>:3:", "<stdin>:4:"}) == 3);
  CHECK_MESSAGE(Contains(submitted.err, R"(task name 'bad\nname' is not valid)"), submitted.err);
  CHECK_FALSE(h.Call(method::kWorkflowSubmit, {{"source", kNewlines}}).ok());
  REQUIRE(h.last_rpc_error().has_value());
  const json diagnostics = h.last_rpc_error()->data["diagnostics"];
  REQUIRE(diagnostics.size() == 2);
  for (const json& d : diagnostics) {
    CHECK(d["message"].get<std::string>().find('\n') == std::string::npos);
  }
  // An RPC error naming the value.
  const ProcessResult shown = h.RunCtl({"show", "no\nsuch"});
  CHECK(shown.code == 1);
  CHECK(LinesStartingWith(shown.err, {"picoflowctl: "}) == 1);
  CHECK_MESSAGE(Contains(shown.err, R"(no workflow 'no\nsuch')"), shown.err);
}

TEST_CASE("a workflow near the file limit reads back whole: workflow.get and show") {
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  std::string yaml = "name: big\ndescription: about 900 KB of tasks\ntasks:\n";
  int tasks = 0;
  for (; yaml.size() < 900 * 1000; ++tasks) {
    yaml += "  - name: t" + std::to_string(tasks) +
            "\n    type: shell\n    config: { command: \"echo " + std::string(200, 'x') + "\" }\n";
  }
  const std::string file = h.WriteFile("big.yaml", yaml);
  const ProcessResult submitted = h.RunCtl({"submit", file});
  REQUIRE_MESSAGE(submitted.code == 0, submitted.err);

  // The answer is well over the 1 MiB of a request line.
  const auto got = h.Call(method::kWorkflowGet, {{"name", "big"}});
  REQUIRE_MESSAGE(got.ok(), got.error().message);
  CHECK(DumpCompact(*got).size() > kMaxLineBytes);
  CHECK((*got)["source"] == yaml);
  CHECK((*got)["tasks"].size() == static_cast<std::size_t>(tasks));

  const ProcessResult shown = h.RunCtl({"show", "big"});
  CHECK_MESSAGE(shown.code == 0, shown.err);
  CHECK(shown.out == yaml);
  const ProcessResult as_json = h.RunCtl({"--json", "show", "big"});
  CHECK_MESSAGE(as_json.code == 0, as_json.err);
  CHECK(ParseOut(as_json)["source"] == yaml);
}

TEST_CASE("workflow.get answers the version and pause state of the moment, however often asked") {
  // Answers are kept per stored version (issue 14): a pause, a resume and a
  // new version must each show at once.
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  const auto version = [](const std::string& description) {
    return "name: kept\ndescription: " + description +
           "\ntasks:\n  - { name: only, type: shell, config: { command: 'true' } }\n";
  };
  const auto get = [&] {
    auto got = h.Call(method::kWorkflowGet, {{"name", "kept"}});
    REQUIRE_MESSAGE(got.ok(), got.error().message);
    return *got;
  };
  REQUIRE(h.Call(method::kWorkflowSubmit, {{"source", version("first")}}).ok());
  const json first = get();
  CHECK(first["description"] == "first");
  CHECK(first["paused"] == false);
  CHECK(get() == first);

  REQUIRE(h.Call(method::kWorkflowPause, {{"name", "kept"}}).ok());
  json paused = first;
  paused["paused"] = true;
  CHECK(get() == paused);
  REQUIRE(h.Call(method::kWorkflowResume, {{"name", "kept"}}).ok());
  CHECK(get() == first);

  REQUIRE(h.Call(method::kWorkflowSubmit, {{"source", version("second")}}).ok());
  const json second = get();
  CHECK(second["description"] == "second");
  CHECK(second["source"] == version("second"));
  CHECK(second["paused"] == false);
  REQUIRE(h.Call(method::kWorkflowRemove, {{"name", "kept"}}).ok());
  CHECK_FALSE(h.Call(method::kWorkflowGet, {{"name", "kept"}}).ok());
}

}  // namespace picoflow::test
