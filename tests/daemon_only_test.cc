// Integration: runs of part of a workflow on a real picoflowd (run.start
// `only` and `with`, picoflowctl run --only [--downstream|--upstream];
// docs/rpc.md, "run.start"): what runs, what is taken as done with the
// outputs of its latest success, what is not selected; refusals; the
// selection stored, shown, kept by a retry and across a crash. Tasks count
// their attempts in $PFIT_DIR/TASK.

#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <string>

#include "protocol/methods.h"
#include "tests/daemon_harness.h"

namespace picoflow::test {
namespace {

// extract -> clean -> load -> report, and notify on its own. extract passes
// on the id of its run, clean what it got from extract; load writes what it
// saw; report fails while $PFIT_DIR/broken exists.
constexpr char kEtl[] = R"(name: etl
params: { who: nobody }
config: { retry_default: 0 }
tasks:
  - name: extract
    type: shell
    config: { command: 'echo x >> "$PFIT_DIR/extract"; echo "rows=$PICOFLOW_RUN_ID" >> "$PICOFLOW_OUTPUT"' }
  - name: clean
    type: shell
    depends_on: [extract]
    config: { command: 'echo x >> "$PFIT_DIR/clean"; echo "from=$PICOFLOW_OUT_EXTRACT_ROWS" >> "$PICOFLOW_OUTPUT"' }
  - name: load
    type: shell
    depends_on: [clean]
    config: { command: 'echo x >> "$PFIT_DIR/load"; echo "${PICOFLOW_OUT_EXTRACT_ROWS:-none} ${PICOFLOW_OUT_CLEAN_FROM:-none} $PICOFLOW_PARAM_WHO" >> "$PFIT_DIR/load.saw"' }
  - name: report
    type: shell
    depends_on: [load]
    config: { command: 'echo x >> "$PFIT_DIR/report"; if [ -e "$PFIT_DIR/broken" ]; then exit 1; fi' }
  - name: notify
    type: shell
    config: { command: 'echo x >> "$PFIT_DIR/notify"' }
)";

using Counts = std::map<std::string, int>;
using Statuses = std::map<std::string, std::string>;

// How many attempts each task of kEtl made so far.
Counts Attempts(DaemonHarness& h) {
  Counts counts;
  for (const char* task : {"extract", "clean", "load", "report", "notify"}) {
    const std::string lines = ReadFileText(h.Path(task));
    counts[task] = static_cast<int>(std::count(lines.begin(), lines.end(), '\n'));
  }
  return counts;
}

// task name -> its error (the reason it ended as it did).
std::map<std::string, std::string> Reasons(const json& run) {
  std::map<std::string, std::string> reasons;
  for (const json& t : run["tasks"]) reasons[t["name"]] = t["error"];
  return reasons;
}

void Submit(DaemonHarness& h) {
  REQUIRE(h.Start().ok());
  REQUIRE(h.RunCtl({"submit", h.WriteFile("etl.yaml", kEtl)}).code == 0);
}

}  // namespace

TEST_CASE("--only runs a task alone: what it needs is taken as done with its latest outputs") {
  DaemonHarness h;
  Submit(h);

  // Nothing succeeded yet: what load needs is taken as done without outputs.
  ProcessResult fresh = h.RunCtl({"run", "etl", "--only", "load", "-p", "who=me"});
  CHECK_MESSAGE(fresh.code == 0, fresh.err);
  CHECK(fresh.out == "run 1 started (workflow 'etl', only 'load')\n");
  json run = h.WaitRun(1);
  CHECK(run["status"] == "succeeded");
  CHECK(TaskStatuses(run) == Statuses{{"extract", "reused"},
                                      {"clean", "reused"},
                                      {"load", "succeeded"},
                                      {"report", "skipped"},
                                      {"notify", "skipped"}});
  const std::string no_outputs =
      "taken as done (only 'load'), without outputs: no success of it "
      "is stored";
  CHECK(Reasons(run) ==
        std::map<std::string, std::string>{{"extract", no_outputs},
                                           {"clean", no_outputs},
                                           {"load", ""},
                                           {"report", "not selected (only 'load')"},
                                           {"notify", "not selected (only 'load')"}});
  CHECK(run["only"] == json{{"tasks", {"load"}}, {"with", nullptr}});
  CHECK(run["params"] == json{{"who", "me"}});
  CHECK(ReadFileText(h.Path("load.saw")) == "none none me\n");

  // A whole run, then load alone again: it sees that run's outputs.
  REQUIRE(h.RunCtl({"run", "etl", "--wait"}).code == 0);
  ProcessResult again = h.RunCtl({"run", "etl", "--only", "load", "--wait"});
  CHECK_MESSAGE(again.code == 0, again.err);
  CHECK(Contains(again.out, "only: 'load'\n"));
  run = h.WaitRun(3);
  CHECK(run["status"] == "succeeded");
  CHECK(run["tasks"][0]["error"] ==
        "taken as done (only 'load'), with the outputs of its success in run 2");
  CHECK(run["tasks"][0]["outputs"] == json{{"rows", "2"}});
  CHECK(run["tasks"][0]["attempts"] == 0);
  CHECK(run["tasks"][1]["outputs"] == json{{"from", "2"}});
  CHECK(ReadFileText(h.Path("load.saw")) == "none none me\n2 2 nobody\n2 2 nobody\n");
  CHECK(Attempts(h) ==
        Counts{{"extract", 1}, {"clean", 1}, {"load", 3}, {"report", 1}, {"notify", 1}});

  // Recorded as such: status, history --json.
  ProcessResult status = h.RunCtl({"status", "etl"});
  CHECK(Contains(status.out, "\nonly: 'load'\n"));
  ProcessResult history = h.RunCtl({"--json", "history", "etl"});
  REQUIRE(history.code == 0);
  const json runs = json::parse(history.out)["runs"];
  REQUIRE(runs.size() == 3);
  CHECK(runs[0]["only"] == json{{"tasks", {"load"}}, {"with", nullptr}});
  CHECK(runs[1]["only"] == nullptr);
}

TEST_CASE("--downstream runs what depends on the tasks, --upstream what they need") {
  DaemonHarness h;
  Submit(h);
  REQUIRE(h.RunCtl({"run", "etl", "--wait"}).code == 0);

  ProcessResult down = h.RunCtl({"run", "etl", "--only", "clean", "--downstream", "--wait"});
  CHECK_MESSAGE(down.code == 0, down.err);
  json run = h.WaitRun(2);
  CHECK(run["status"] == "succeeded");
  CHECK(TaskStatuses(run) == Statuses{{"extract", "reused"},
                                      {"clean", "succeeded"},
                                      {"load", "succeeded"},
                                      {"report", "succeeded"},
                                      {"notify", "skipped"}});
  CHECK(run["tasks"][4]["error"] == "not selected (only 'clean' and what depends on it)");
  CHECK(run["only"] == json{{"tasks", {"clean"}}, {"with", "downstream"}});
  // clean got extract's outputs of run 1, and passed them on.
  CHECK(run["tasks"][1]["outputs"] == json{{"from", "1"}});

  ProcessResult up = h.RunCtl({"run", "etl", "--only", "load", "--upstream", "--wait"});
  CHECK_MESSAGE(up.code == 0, up.err);
  run = h.WaitRun(3);
  CHECK(TaskStatuses(run) == Statuses{{"extract", "succeeded"},
                                      {"clean", "succeeded"},
                                      {"load", "succeeded"},
                                      {"report", "skipped"},
                                      {"notify", "skipped"}});
  CHECK(Contains(up.out, "only: 'load' and what it needs\n"));
  CHECK(Attempts(h) ==
        Counts{{"extract", 2}, {"clean", 3}, {"load", 3}, {"report", 2}, {"notify", 1}});
  CHECK(ReadFileText(h.Path("load.saw")) == "1 1 nobody\n1 1 nobody\n3 3 nobody\n");
}

TEST_CASE("unknown tasks and misused flags are refused, every problem at once, nothing runs") {
  DaemonHarness h;
  Submit(h);

  ProcessResult unknown =
      h.RunCtl({"run", "etl", "--only", "lod", "--only", "report", "-p", "hwo=x"});
  CHECK(unknown.code == 2);
  CHECK(unknown.err ==
        "picoflowctl: run.start: unknown param 'hwo' (did you mean 'who'?); unknown task 'lod' "
        "in 'only' (did you mean 'load'?)\n");
  ProcessResult alone = h.RunCtl({"run", "etl", "--downstream"});
  CHECK(alone.code == 2);
  CHECK(Contains(alone.err, "--downstream requires --only"));
  ProcessResult both = h.RunCtl({"run", "etl", "--only", "load", "--downstream", "--upstream"});
  CHECK(both.code == 2);
  CHECK(Contains(both.err, "--downstream excludes --upstream"));

  const auto refused = [&h](const json& params) {
    json all = params;
    all["workflow"] = "etl";
    auto r = h.Call(method::kRunStart, all);
    REQUIRE_FALSE(r.ok());
    CHECK(h.last_rpc_error()->code == -32602);
    return r.error().message;
  };
  CHECK(refused({{"only", {"load", "load"}}}) == "run.start: task 'load' is given twice in 'only'");
  CHECK(refused({{"only", json::array()}}) == "run.start: 'only' names no task");
  CHECK(refused({{"only", {1}}}) ==
        "run.start: param 'only': each element must be a task name, got number");
  CHECK(refused({{"with", "downstream"}}) ==
        "run.start: 'with' needs 'only': the tasks to run with what depends on them "
        "(downstream) or what they need (upstream)");
  CHECK(refused({{"only", {"load"}}, {"with", "sideways"}}) ==
        "run.start: param 'with' must be 'downstream' or 'upstream', got 'sideways'");
  auto runs = h.Call(method::kRunList, {{"workflow", "etl"}});
  REQUIRE(runs.ok());
  CHECK((*runs)["runs"].empty());
  CHECK(Attempts(h) ==
        Counts{{"extract", 0}, {"clean", 0}, {"load", 0}, {"report", 0}, {"notify", 0}});
}

TEST_CASE("run.start takes only and with over JSON-RPC, and follow counts the tasks it runs") {
  DaemonHarness h;
  Submit(h);
  auto started = h.Call(method::kRunStart,
                        {{"workflow", "etl"}, {"only", {"load", "notify"}}, {"with", "upstream"}});
  REQUIRE(started.ok());
  const json run = h.WaitRun((*started)["run_id"].get<std::int64_t>());
  CHECK(run["status"] == "succeeded");
  CHECK(run["only"] == json{{"tasks", {"load", "notify"}}, {"with", "upstream"}});
  CHECK(TaskStatuses(run) == Statuses{{"extract", "succeeded"},
                                      {"clean", "succeeded"},
                                      {"load", "succeeded"},
                                      {"report", "skipped"},
                                      {"notify", "succeeded"}});

  // Followed: the count is of the one task it runs.
  ProcessResult followed = h.RunCtl({"run", "etl", "--only", "report", "--follow"});
  CHECK_MESSAGE(followed.code == 0, followed.err);
  CHECK(Contains(followed.out, "run 2 started (workflow 'etl', only 'report')\n"));
  CHECK(Contains(followed.out, "[report] finished: succeeded"));
  CHECK(Contains(followed.out, "[1/1 done]"));
}

TEST_CASE("a task that what is taken as done skips by its trigger rule is stored skipped") {
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  // alert runs only if a or b failed: taken as done, they did not.
  const std::string file = h.WriteFile("alerting.yaml", R"(name: alerting
tasks:
  - { name: a, type: shell, config: { command: 'true' } }
  - { name: b, type: shell, depends_on: [a], config: { command: 'true' } }
  - { name: alert, type: shell, depends_on: [a, b], trigger: one_failed, config: { command: 'true' } }
  - { name: after, type: shell, depends_on: [alert], trigger: all_done, config: { command: 'true' } }
)");
  REQUIRE(h.RunCtl({"submit", file}).code == 0);
  ProcessResult run = h.RunCtl({"--json", "run", "alerting", "--only", "alert", "--wait"});
  CHECK_MESSAGE(run.code == 0, run.err);
  const json result = json::parse(run.out);
  CHECK(result["status"] == "succeeded");
  CHECK(TaskStatuses(result) ==
        Statuses{{"a", "reused"}, {"b", "reused"}, {"alert", "skipped"}, {"after", "skipped"}});
  CHECK(Reasons(result) == std::map<std::string, std::string>{
                               {"a",
                                "taken as done (only 'alert'), without outputs: no success "
                                "of it is stored"},
                               {"b",
                                "taken as done (only 'alert'), without outputs: no success "
                                "of it is stored"},
                               {"alert", "trigger one_failed: no dependency failed"},
                               {"after", "not selected (only 'alert')"}});
}

TEST_CASE("the handlers run after an --only run as after any run") {
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  const std::string file = h.WriteFile("handled.yaml", R"(name: handled
config: { retry_default: 0 }
tasks:
  - { name: a, type: shell, config: { command: 'true' } }
  - { name: b, type: shell, depends_on: [a], config: { command: 'exit 1' } }
  - { name: c, type: shell, config: { command: 'true' } }
handlers:
  on_failure: { type: shell, config: { command: 'echo "$PICOFLOW_FAILED_TASKS" > "$PFIT_DIR/failed"' } }
  on_success: { type: shell, config: { command: 'true' } }
)");
  REQUIRE(h.RunCtl({"submit", file}).code == 0);
  ProcessResult run = h.RunCtl({"--json", "run", "handled", "--only", "b", "--wait"});
  CHECK(run.code == 1);
  const json result = json::parse(run.out);
  CHECK(result["status"] == "failed");
  CHECK(TaskStatuses(result) == Statuses{{"a", "reused"},
                                         {"b", "failed"},
                                         {"c", "skipped"},
                                         {"on_failure", "succeeded"},
                                         {"on_success", "skipped"}});
  CHECK(ReadFileText(h.Path("failed")) == "b\n");
  ProcessResult handler = h.RunCtl({"run", "handled", "--only", "on_failure", "--only", "d"});
  CHECK(handler.code == 2);
  CHECK(handler.err ==
        "picoflowctl: run.start: 'on_failure' in 'only' is a handler: it runs after any run, as "
        "the run's end calls for it; unknown task 'd' in 'only' (did you mean 'a'?)\n");
}

TEST_CASE("a retry of an --only run keeps its selection") {
  DaemonHarness h;
  Submit(h);
  REQUIRE(h.RunCtl({"run", "etl", "--wait"}).code == 0);
  h.WriteFile("broken", "");
  ProcessResult failed = h.RunCtl({"run", "etl", "--only", "load", "--downstream", "--wait"});
  REQUIRE(failed.code == 1);
  std::filesystem::remove(h.Path("broken"));

  ProcessResult retry = h.RunCtl({"retry", "2", "--wait"});
  CHECK_MESSAGE(retry.code == 0, retry.err);
  const json run = h.WaitRun(3);
  CHECK(run["retry_of"] == 2);
  CHECK(run["only"] == json{{"tasks", {"load"}}, {"with", "downstream"}});
  CHECK(TaskStatuses(run) == Statuses{{"extract", "reused"},
                                      {"clean", "reused"},
                                      {"load", "reused"},
                                      {"report", "succeeded"},
                                      {"notify", "skipped"}});
  CHECK(Reasons(run) ==
        std::map<std::string, std::string>{
            {"extract",
             "taken as done (only 'load' and what depends on it), with the outputs "
             "it had in run 2"},
            {"clean",
             "taken as done (only 'load' and what depends on it), with the outputs it "
             "had in run 2"},
            {"load", "reused: it succeeded in run 2"},
            {"report", ""},
            {"notify", "not selected (only 'load' and what depends on it)"}});
  CHECK(run["tasks"][0]["outputs"] == json{{"rows", "1"}});
  CHECK(Attempts(h) ==
        Counts{{"extract", 1}, {"clean", 1}, {"load", 2}, {"report", 3}, {"notify", 1}});
}

TEST_CASE("an --only run resumed after a crash keeps its selection") {
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  // b waits to be interrupted the first time; a is taken as done, c is not
  // selected.
  REQUIRE(h.RunCtl({"submit", h.WriteFile("wait.yaml", R"(name: wait
tasks:
  - { name: a, type: shell, config: { command: 'echo x >> "$PFIT_DIR/a"' } }
  - name: b
    type: shell
    depends_on: [a]
    config:
      command: |
        if [ -e "$PFIT_DIR/started" ]; then exit 0; fi
        touch "$PFIT_DIR/started"
        exec sleep 300
  - { name: c, type: shell, depends_on: [b], config: { command: 'echo x >> "$PFIT_DIR/c"' } }
)")})
              .code == 0);
  REQUIRE(h.RunCtl({"run", "wait", "--only", "b"}).code == 0);
  REQUIRE(WaitUntil([&] { return std::filesystem::exists(h.Path("started")); }, 60s));
  h.Kill9();
  REQUIRE(h.Start().ok());
  const json run = h.WaitRun(1);
  CHECK(run["status"] == "succeeded");
  CHECK(run["only"] == json{{"tasks", {"b"}}, {"with", nullptr}});
  CHECK(TaskStatuses(run) == Statuses{{"a", "reused"}, {"b", "succeeded"}, {"c", "skipped"}});
  CHECK(AttemptStatuses(run, "b") == std::vector<std::string>{"interrupted", "succeeded"});
  CHECK_FALSE(std::filesystem::exists(h.Path("a")));
  CHECK_FALSE(std::filesystem::exists(h.Path("c")));
}

}  // namespace picoflow::test
