// Integration: controlling a run on a real picoflowd (docs/workflow-format.md,
// "Parameters"): params given through picoflowctl and raw JSON-RPC, refused
// when they do not fit, stored with the run, kept across a crash, and the
// defaults for a scheduled fire. Tasks write what they saw under $PFIT_DIR.

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>

#include "protocol/methods.h"
#include "tests/daemon_harness.h"

namespace picoflow::test {
namespace {

constexpr char kGreet[] = R"(name: greet
params:
  who: world
  level: { default: info, choices: [debug, info, warn] }
  token: { required: true, description: API token }
tasks:
  - name: say
    type: shell
    retry: 0
    config:
      command: 'printf "%s|%s|%s\n" "$PICOFLOW_PARAM_WHO" "$PICOFLOW_PARAM_LEVEL" "$PICOFLOW_PARAM_TOKEN" >> "$PFIT_DIR/said"'
)";

std::int64_t RunCount(DaemonHarness& h, const std::string& workflow) {
  auto r = h.Call(method::kRunList, {{"workflow", workflow}, {"limit", 1000}});
  REQUIRE(r.ok());
  return static_cast<std::int64_t>((*r)["runs"].size());
}

}  // namespace

TEST_CASE("params reach the tasks from picoflowctl and JSON-RPC, and are stored and shown") {
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  const std::string file = h.WriteFile("greet.yaml", kGreet);
  REQUIRE(h.RunCtl({"submit", file}).code == 0);

  // -p wins over --params-file; the rest take their defaults.
  h.WriteFile("values.json", R"({"token": "t1", "who": "file"})");
  ProcessResult run = h.RunCtl(
      {"run", "greet", "-p", "who=big world", "--params-file", h.Path("values.json"), "--wait"});
  CHECK_MESSAGE(run.code == 0, run.err);
  CHECK(Contains(run.out, "params:  level=info  token=t1  who=big world\n"));
  CHECK(ReadFileText(h.Path("said")) == "big world|info|t1\n");

  // Over the socket: a number and a boolean are their JSON text.
  auto started = h.Call(
      method::kRunStart,
      {{"workflow", "greet"}, {"params", {{"token", 42}, {"level", "warn"}, {"who", true}}}});
  REQUIRE(started.ok());
  const json second = h.WaitRun((*started)["run_id"].get<std::int64_t>());
  CHECK(second["status"] == "succeeded");
  CHECK(second["params"] == json{{"level", "warn"}, {"token", "42"}, {"who", "true"}});
  CHECK(ReadFileText(h.Path("said")) == "big world|info|t1\ntrue|warn|42\n");

  // Shown by status and history --json.
  ProcessResult status = h.RunCtl({"status", "greet"});
  CHECK(Contains(status.out, "params:  level=warn  token=42  who=true\n"));
  ProcessResult history = h.RunCtl({"--json", "history", "greet"});
  REQUIRE(history.code == 0);
  const json runs = json::parse(history.out)["runs"];
  REQUIRE(runs.size() == 2);
  CHECK(runs[1]["params"] == json{{"level", "info"}, {"token", "t1"}, {"who", "big world"}});
}

TEST_CASE("params that do not fit are refused, every problem at once, and nothing runs") {
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  REQUIRE(h.RunCtl({"submit", h.WriteFile("greet.yaml", kGreet)}).code == 0);

  ProcessResult bad = h.RunCtl({"run", "greet", "-p", "hwo=x", "-p", "level=wran"});
  CHECK(bad.code == 2);
  CHECK(bad.err ==
        "picoflowctl: run.start: unknown param 'hwo' (did you mean 'who'?); param 'level' must "
        "be 'debug', 'info' or 'warn', got 'wran' (did you mean 'warn'?); param 'token' is "
        "required (API token)\n");
  CHECK(h.RunCtl({"run", "greet", "-p", "token"}).err ==
        "picoflowctl: -p 'token': expected KEY=VALUE\n");
  CHECK(h.RunCtl({"run", "greet", "-p", "token=a", "-p", "token=b"}).err ==
        "picoflowctl: -p: param 'token' is given twice\n");
  h.WriteFile("list.json", "[1, 2]");
  CHECK(h.RunCtl({"run", "greet", "--params-file", h.Path("list.json")}).err ==
        "picoflowctl: --params-file " + h.Path("list.json") +
            ": must hold a JSON object of param names to values\n");

  auto nested = h.Call(method::kRunStart, {{"workflow", "greet"}, {"params", {{"token", {1}}}}});
  REQUIRE_FALSE(nested.ok());
  CHECK(h.last_rpc_error()->code == -32602);
  CHECK(nested.error().message ==
        "run.start: param 'params': the value of 'token' must be a string, a number or a "
        "boolean, got array");
  auto missing = h.Call(method::kRunStart, {{"workflow", "greet"}});
  REQUIRE_FALSE(missing.ok());
  CHECK(h.last_rpc_error()->code == -32602);
  CHECK(missing.error().message == "run.start: param 'token' is required (API token)");
  CHECK(RunCount(h, "greet") == 0);
  CHECK_FALSE(std::filesystem::exists(h.Path("said")));
}

TEST_CASE("a run resumed after a crash keeps its params") {
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  // The first attempt waits to be interrupted; the one after the restart
  // writes what it sees.
  const auto id = h.StartRun(R"(
name: resumed
params: { who: default }
tasks:
  - name: a
    type: shell
    config:
      command: |
        if [ -e "$PFIT_DIR/started" ]; then echo "$PICOFLOW_PARAM_WHO" > "$PFIT_DIR/who"; exit 0; fi
        touch "$PFIT_DIR/started"
        exec sleep 300
)");
  REQUIRE(WaitUntil([&] { return std::filesystem::exists(h.Path("started")); }, 60s));
  h.Kill9();
  REQUIRE(h.Start().ok());
  const json run = h.WaitRun(id);
  CHECK(run["status"] == "succeeded");
  CHECK(run["params"] == json{{"who", "default"}});
  CHECK(ReadFileText(h.Path("who")) == "default\n");
}

TEST_CASE("a scheduled fire runs with the defaults") {
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  const std::string file = h.WriteFile("ticker.yaml", R"(name: ticker
schedule: "* * * * * *"
overlap: skip
params:
  who: { default: the schedule, description: shown in the run }
tasks:
  - name: t
    type: shell
    config: { command: 'echo "$PICOFLOW_PARAM_WHO" > "$PFIT_DIR/who"' }
)");
  REQUIRE(h.RunCtl({"submit", file}).code == 0);
  json fired;
  REQUIRE(WaitUntil(
      [&] {
        auto r = h.Call(method::kRunList, {{"workflow", "ticker"}, {"limit", 10}});
        if (!r.ok()) return false;
        for (const json& run : (*r)["runs"]) {
          if (run["trigger"] == "cron" && run["status"] == "succeeded") fired = run;
        }
        return fired.is_object();
      },
      60s));
  REQUIRE(h.RunCtl({"remove", "ticker"}).code == 0);
  CHECK(fired["params"] == json{{"who", "the schedule"}});
  CHECK(ReadFileText(h.Path("who")) == "the schedule\n");
}

TEST_CASE("outputs flow down a diamond to every task that depends on their task") {
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  // Each task writes the PICOFLOW_OUT_ variables it sees, sorted.
  const std::string seen =
      R"s(for v in $(env | grep -o "^PICOFLOW_OUT_[A-Z_]*=" | tr -d = | sort); do )s"
      R"s(printf "%s=%s\n" "$v" "$(printenv "$v")"; done > "$PFIT_DIR/$PICOFLOW_TASK.seen")s";
  const auto id = h.StartRun(R"y(
name: diamond
tasks:
  - name: top
    type: shell
    config:
      command: |
        echo "rows=12" >> "$PICOFLOW_OUTPUT"
        printf 'note<<END\nfirst line\nsecond = line\nEND\n' >> "$PICOFLOW_OUTPUT"
  - name: left-side
    type: shell
    depends_on: [top]
    config:
      command: |
        )y" + seen + R"y(
        echo "sum=$((PICOFLOW_OUT_TOP_ROWS + 1))" >> "$PICOFLOW_OUTPUT"
  - name: right
    type: shell
    depends_on: [top]
    config: { command: ')y" + seen +
                             R"y(' }
  - name: join
    type: shell
    depends_on: [left-side, right]
    config: { command: ')y" + seen +
                             R"y(' }
)y");
  const json run = h.WaitRun(id);
  REQUIRE(run["status"] == "succeeded");
  const std::string top =
      "PICOFLOW_OUT_TOP_NOTE=first line\nsecond = line\nPICOFLOW_OUT_TOP_ROWS=12\n";
  CHECK(ReadFileText(h.Path("left-side.seen")) == top);
  CHECK(ReadFileText(h.Path("right.seen")) == top);  // not left-side's: not upstream
  CHECK(ReadFileText(h.Path("join.seen")) == "PICOFLOW_OUT_LEFT_SIDE_SUM=13\n" + top);
  CHECK(run["tasks"][0]["outputs"] == json{{"note", "first line\nsecond = line"}, {"rows", "12"}});
  CHECK(run["tasks"][1]["outputs"] == json{{"sum", "13"}});
  CHECK(run["tasks"][3]["outputs"] == json::object());

  ProcessResult table = h.RunCtl({"outputs", std::to_string(id)});
  CHECK(table.code == 0);
  CHECK(table.out ==
        "TASK       KEY   VALUE\n"
        "left-side  sum   13\n"
        "top        note  first line\\nsecond = line\n"
        "top        rows  12\n");
  ProcessResult one = h.RunCtl({"--json", "outputs", "diamond", "--task", "left-side"});
  CHECK(one.code == 0);
  CHECK(json::parse(one.out) ==
        json{{"run_id", id}, {"outputs", {{"left-side", {{"sum", "13"}}}}}});
  CHECK(h.RunCtl({"outputs", "diamond", "--task", "nope"}).err ==
        "picoflowctl: run " + std::to_string(id) + " has no task 'nope'\n");
  // Nothing is left of the attempts' files.
  CHECK(std::filesystem::is_empty(h.socket() + ".outputs"));
}

TEST_CASE("outputs that cannot be read fail the attempt, saying why") {
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  const auto id = h.StartRun(R"(
name: bad-outputs
config: { retry_default: 0 }
tasks:
  - name: big
    type: shell
    config: { command: 'head -c 70000 /dev/zero | tr "\\0" x | sed "s/^/k=/" >> "$PICOFLOW_OUTPUT"' }
  - name: odd
    type: shell
    config: { command: 'echo "a=1" >> "$PICOFLOW_OUTPUT"; echo "not an output" >> "$PICOFLOW_OUTPUT"' }
  - name: after
    type: shell
    depends_on: [odd]
    config: { command: 'true' }
  - name: fifo
    type: shell
    config: { command: 'mkfifo "$PICOFLOW_OUTPUT"' }
)");
  const json run = h.WaitRun(id);
  CHECK(run["status"] == "failed");
  CHECK(run["tasks"][0]["status"] == "failed");
  CHECK(run["tasks"][0]["error"] ==
        "its outputs (PICOFLOW_OUTPUT): more than 65536 bytes (the limit of a task's outputs)");
  CHECK(run["tasks"][1]["error"] ==
        "its outputs (PICOFLOW_OUTPUT): line 2: expected KEY=VALUE or KEY<<DELIMITER");
  CHECK(run["tasks"][1]["outputs"] == json::object());
  CHECK(run["tasks"][2]["status"] == "skipped");
  // A FIFO in the file's place: refused, and the loop never blocked on it.
  CHECK(run["tasks"][3]["error"] == "its outputs (PICOFLOW_OUTPUT): is not a regular file");
}

TEST_CASE("a retry runs exactly what did not succeed and what depends on it, reusing the rest") {
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  // a -> b -> c, a -> d, e, f -> (nothing). b and e fail while $PFIT_DIR/broken
  // exists; every task counts its attempts in $PFIT_DIR/NAME.
  const std::string count = R"(echo x >> "$PFIT_DIR/$PICOFLOW_TASK"; )";
  const std::string flaky = count + R"(if [ -e "$PFIT_DIR/broken" ]; then exit 1; fi)";
  const std::string file = h.WriteFile(
      "six.yaml", R"(name: six
params: { who: first }
config: { retry_default: 0 }
tasks:
  - { name: a, type: shell, config: { command: ')" +
                      count + R"(echo "n=7" >> "$PICOFLOW_OUTPUT"' } }
  - { name: b, type: shell, depends_on: [a], config: { command: ')" +
                      flaky + R"(' } }
  - { name: c, type: shell, depends_on: [b], config: { command: ')" +
                      count +
                      R"(echo "$PICOFLOW_OUT_A_N $PICOFLOW_PARAM_WHO" > "$PFIT_DIR/c.saw"' } }
  - { name: d, type: shell, depends_on: [a], config: { command: ')" +
                      count + R"(' } }
  - { name: e, type: shell, config: { command: ')" +
                      flaky + R"(' } }
  - { name: f, type: shell, config: { command: ')" +
                      count + R"(' } }
)");
  REQUIRE(h.RunCtl({"submit", file}).code == 0);
  h.WriteFile("broken", "");
  ProcessResult first = h.RunCtl({"run", "six", "-p", "who=second", "--wait"});
  REQUIRE(first.code == 1);
  const auto runs = h.Call(method::kRunList, {{"workflow", "six"}});
  REQUIRE(runs.ok());
  const std::int64_t failed = (*runs)["runs"][0]["id"];
  std::filesystem::remove(h.Path("broken"));  // b and e succeed from now on

  ProcessResult retry = h.RunCtl({"retry", std::to_string(failed)});
  CHECK_MESSAGE(retry.code == 0, retry.err);
  CHECK(retry.out == "run " + std::to_string(failed + 1) +
                         " started (workflow 'six', retry of run " + std::to_string(failed) +
                         "; reused: a, d, f)\n");
  const json run = h.WaitRun(failed + 1);
  CHECK(run["status"] == "succeeded");
  CHECK(run["retry_of"] == failed);
  CHECK(run["params"] == json{{"who", "second"}});
  std::map<std::string, std::string> status;
  for (const json& t : run["tasks"]) status[t["name"]] = t["status"];
  CHECK(status == std::map<std::string, std::string>{{"a", "reused"},
                                                     {"b", "succeeded"},
                                                     {"c", "succeeded"},
                                                     {"d", "reused"},
                                                     {"e", "succeeded"},
                                                     {"f", "reused"}});
  CHECK(run["tasks"][0]["error"] == "reused: it succeeded in run " + std::to_string(failed));
  CHECK(run["tasks"][0]["attempts"] == 0);
  CHECK(run["tasks"][0]["outputs"] == json{{"n", "7"}});
  // Only b, c and e ran again: one more attempt each; c saw a's output.
  for (const auto& [task, times] :
       std::map<std::string, int>{{"a", 1}, {"b", 2}, {"c", 1}, {"d", 1}, {"e", 2}, {"f", 1}}) {
    const std::string lines = ReadFileText(h.Path(task));
    CHECK_MESSAGE(std::count(lines.begin(), lines.end(), '\n') == times, task);
  }
  CHECK(ReadFileText(h.Path("c.saw")) == "7 second\n");

  // A run that succeeded, one still going, one of a changed workflow.
  CHECK(h.RunCtl({"retry", std::to_string(failed + 1)}).err ==
        "picoflowctl: run " + std::to_string(failed + 1) +
            " succeeded: there is nothing to retry\n");
  h.WriteFile("six.yaml",
              ReadFileText(file) + R"(  - { name: g, type: shell, config: { command: 'true' } }
)");
  REQUIRE(h.RunCtl({"submit", file}).code == 0);
  ProcessResult changed = h.RunCtl({"retry", std::to_string(failed)});
  CHECK(changed.code == 1);
  CHECK(Contains(changed.err, "workflow 'six' changed since run " + std::to_string(failed) +
                                  " (task 'g' added): retry it with `latest`"));
  ProcessResult latest =
      h.RunCtl({"--json", "retry", std::to_string(failed), "--latest", "--wait"});
  CHECK_MESSAGE(latest.code == 0, latest.err);
  const json newest = json::parse(latest.out);
  CHECK(newest["tasks"][0]["status"] == "reused");     // a
  CHECK(newest["tasks"][1]["status"] == "succeeded");  // b: failed in the run retried
  CHECK(newest["tasks"][6]["name"] == "g");
  CHECK(newest["tasks"][6]["status"] == "succeeded");  // new in this version
}

}  // namespace picoflow::test
