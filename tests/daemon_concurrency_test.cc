// Integration: max_active_runs on a real picoflowd (docs/scheduling.md,
// "Manual and scheduled runs"): runs started by hand past the limit refused
// (overlap: skip) or queued (overlap: queue), --force, the queue kept across
// a crash, cancelled without a start, two at once with N = 2, a scheduled
// fire sharing the limit, bad values refused. Each task appends "start ID"
// and "end ID" to $PFIT_DIR/trace around a wait for $PFIT_DIR/release-ID
// (or release-all): the test ends a run by creating its file, and the trace
// shows which runs went at once.

#include <doctest/doctest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "protocol/methods.h"
#include "tests/daemon_harness.h"

namespace picoflow::test {
namespace {

// A workflow whose one task runs until the test releases it.
std::string Held(const std::string& name, const std::string& head) {
  return "name: " + name + "\n" + head + R"(
tasks:
  - name: hold
    type: shell
    retry: 0
    config:
      command: |
        echo "start $PICOFLOW_RUN_ID" >> "$PFIT_DIR/trace"
        while [ ! -e "$PFIT_DIR/release-$PICOFLOW_RUN_ID" ] && [ ! -e "$PFIT_DIR/release-all" ]; do sleep 0.05; done
        echo "end $PICOFLOW_RUN_ID" >> "$PFIT_DIR/trace"
)";
}

void Submit(DaemonHarness& h, const std::string& name, const std::string& head) {
  const ProcessResult r = h.RunCtl({"submit", h.WriteFile(name + ".yaml", Held(name, head))});
  REQUIRE_MESSAGE(r.code == 0, r.err);
}

void Release(DaemonHarness& h, const std::string& which) { h.WriteFile("release-" + which, ""); }

// run.start of a submitted workflow: the whole result, or null on error.
json Start(DaemonHarness& h, const std::string& workflow, bool force = false) {
  json params = {{"workflow", workflow}};
  if (force) params["force"] = true;
  auto r = h.Call(method::kRunStart, params);
  return r.ok() ? *r : json();
}

std::string Trace(DaemonHarness& h) { return ReadFileText(h.Path("trace")); }

// The statuses of a workflow's runs, oldest first.
std::vector<std::string> Statuses(DaemonHarness& h, const std::string& workflow) {
  auto r = h.Call(method::kRunList, {{"workflow", workflow}, {"limit", 1000}});
  REQUIRE(r.ok());
  std::vector<std::string> out;
  for (const json& run : (*r)["runs"]) out.insert(out.begin(), run["status"].get<std::string>());
  return out;
}

bool Running(const json& run) { return run["status"] == "running"; }

}  // namespace

TEST_CASE(
    "past max_active_runs with overlap skip a run by hand is refused, and --force starts it") {
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  Submit(h, "one", "max_active_runs: 1\noverlap: skip");

  ProcessResult first = h.RunCtl({"run", "one"});
  CHECK_MESSAGE(first.code == 0, first.err);
  CHECK(first.out == "run 1 started (workflow 'one')\n");

  ProcessResult refused = h.RunCtl({"run", "one", "--wait"});
  CHECK(refused.code == 1);
  CHECK(refused.out.empty());
  CHECK(refused.err ==
        "picoflowctl: run.start: workflow 'one': max_active_runs 1 reached (run 1 running) and "
        "its overlap is skip: not started; start it anyway with force (picoflowctl run --force), "
        "or again once a run has ended\n");
  auto raw = h.Call(method::kRunStart, {{"workflow", "one"}});
  REQUIRE_FALSE(raw.ok());
  REQUIRE(h.last_rpc_error());
  CHECK(h.last_rpc_error()->code == -32002);
  CHECK(h.last_rpc_error()->data == json{{"max_active_runs", 1}, {"running", {1}}});
  CHECK(Statuses(h, "one") == std::vector<std::string>{"running"});  // nothing recorded

  ProcessResult forced = h.RunCtl({"run", "one", "--force"});
  CHECK_MESSAGE(forced.code == 0, forced.err);
  CHECK(forced.out == "run 2 started (workflow 'one')\n");
  CHECK(forced.err ==
        "picoflowctl: warning: workflow 'one' already has 1 run in progress (1); this run goes "
        "alongside (--force)\n");
  CHECK(Running(h.WaitRunState(2, Running)));
  CHECK(Running(h.GetRun(1)));
  // Both tasks go at once (run 1 waits to be let go).
  REQUIRE(WaitUntil([&] { return Contains(Trace(h), "start 2\n"); }, 60s));
  CHECK(Trace(h) == "start 1\nstart 2\n");

  Release(h, "all");
  CHECK(h.WaitRun(1)["status"] == "succeeded");
  CHECK(h.WaitRun(2)["status"] == "succeeded");
}

TEST_CASE(
    "past max_active_runs with overlap queue runs by hand wait, shown pending, and start in turn") {
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  Submit(h, "q", "max_active_runs: 1\noverlap: queue");
  REQUIRE(Start(h, "q")["run_id"] == 1);

  ProcessResult second = h.RunCtl({"run", "q"});
  CHECK_MESSAGE(second.code == 0, second.err);
  CHECK(second.out ==
        "run 2 queued (workflow 'q'): max_active_runs 1 reached (run 1 running); it starts when "
        "a run ends\n");
  CHECK(second.err.empty());
  const json third = Start(h, "q");
  CHECK(third == json{{"run_id", 3},
                      {"workflow", "q"},
                      {"also_running", {1}},
                      {"queued", true},
                      {"reason", "queued: max_active_runs 1 reached (run 1 running, 1 waiting)"}});

  // Queued: pending, never started, its reason shown by status and history.
  const json queued = h.GetRun(2);
  CHECK(queued["status"] == "pending");
  CHECK(queued["started_at"].is_null());
  CHECK(queued["reason"] == "queued: max_active_runs 1 reached (run 1 running)");
  CHECK(TaskStatuses(queued) == std::map<std::string, std::string>{{"hold", "pending"}});
  ProcessResult status = h.RunCtl({"status", "--run", "2"});
  CHECK_MESSAGE(Contains(status.out, "pending"), status.out);
  CHECK_MESSAGE(Contains(status.out, "reason: queued: max_active_runs 1 reached (run 1 running)\n"),
                status.out);
  ProcessResult history = h.RunCtl({"history", "q"});
  CHECK_MESSAGE(
      Contains(history.out, "queued: max_active_runs 1 reached (run 1 running, 1 waiting)"),
      history.out);

  // --follow and --wait wait through the queue.
  const auto followed = h.StartCtl({"run", "q", "--follow"});
  REQUIRE(WaitUntil([&] { return Statuses(h, "q").size() == 4; }, 60s));
  const auto waited = h.StartCtl({"run", "q", "--wait"});
  REQUIRE(WaitUntil([&] { return Statuses(h, "q").size() == 5; }, 60s));
  CHECK(Statuses(h, "q") ==
        std::vector<std::string>{"running", "pending", "pending", "pending", "pending"});

  // Each ends as soon as it is let go: one at a time, in the order queued.
  for (const char* id : {"2", "3", "4", "5"}) Release(h, id);
  Release(h, "1");
  for (std::int64_t id = 1; id <= 5; ++id) CHECK(h.WaitRun(id)["status"] == "succeeded");
  CHECK(Trace(h) ==
        "start 1\nend 1\nstart 2\nend 2\nstart 3\nend 3\nstart 4\nend 4\nstart 5\nend 5\n");

  const ProcessResult follow = h.FinishCtl(followed);
  CHECK_MESSAGE(follow.code == 0, follow.err);
  CHECK_MESSAGE(Contains(follow.out, "run 4 queued (workflow 'q'): max_active_runs 1 reached ("),
                follow.out);
  CHECK_MESSAGE(Contains(follow.out, "run 4 started (workflow 'q')\n"), follow.out);
  CHECK(follow.out.find("queued") < follow.out.find("run 4 started"));
  const ProcessResult wait = h.FinishCtl(waited);
  CHECK_MESSAGE(wait.code == 0, wait.err);
  CHECK_MESSAGE(Contains(wait.err, "picoflowctl: run 5 queued (workflow 'q'): "), wait.err);
  CHECK_MESSAGE(Contains(wait.out, "run 5  q  succeeded"), wait.out);
}

TEST_CASE("a queued run survives a crash and starts only when the resumed run leaves room") {
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  Submit(h, "r", "max_active_runs: 1\noverlap: queue");
  REQUIRE(Start(h, "r")["run_id"] == 1);
  REQUIRE(Start(h, "r")["queued"] == true);
  REQUIRE(WaitUntil([&] { return Trace(h) == "start 1\n"; }, 60s));

  h.Kill9();
  REQUIRE(h.Start().ok());
  // Recovery is done before the daemon answers: run 1 resumed, run 2 still
  // waits (it would be running had recovery started it past the limit).
  CHECK(Running(h.GetRun(1)));
  const json waiting = h.GetRun(2);
  CHECK(waiting["status"] == "pending");
  CHECK(waiting["reason"] == "queued: max_active_runs 1 reached (run 1 running)");
  CHECK_MESSAGE(Contains(h.log(), "waits again"), h.log());

  // run.wait waits through the queue; run 2 starts once run 1 has ended.
  const auto waited = h.StartCtl({"run", "r", "--wait"});  // run 3, behind run 2
  REQUIRE(WaitUntil([&] { return Statuses(h, "r").size() == 3; }, 60s));
  Release(h, "all");
  const ProcessResult wait = h.FinishCtl(waited);
  CHECK_MESSAGE(wait.code == 0, wait.err);
  CHECK(h.WaitRun(2)["status"] == "succeeded");
  CHECK(h.WaitRun(1)["status"] == "succeeded");
  // The first attempt of run 1 died with the daemon; its second ran alone.
  const std::string trace = Trace(h);
  CHECK_MESSAGE(trace.starts_with("start 1\nstart 1\nend 1\nstart 2\nend 2\nstart 3"), trace);
}

// extract holds until released and passes on its run's id; load writes
// what it got to $PFIT_DIR/saw-RUN.
constexpr char kQueuedEtl[] = R"(name: etl
max_active_runs: 1
overlap: queue
tasks:
  - name: extract
    type: shell
    retry: 0
    config:
      command: |
        echo "start $PICOFLOW_RUN_ID" >> "$PFIT_DIR/trace"
        while [ ! -e "$PFIT_DIR/release-$PICOFLOW_RUN_ID" ]; do sleep 0.05; done
        echo "rows=$PICOFLOW_RUN_ID" >> "$PICOFLOW_OUTPUT"
  - name: load
    type: shell
    depends_on: [extract]
    config: { command: 'echo "${PICOFLOW_OUT_EXTRACT_ROWS:-none}" > "$PFIT_DIR/saw-$PICOFLOW_RUN_ID"' }
)";

TEST_CASE("a queued --only run takes as done what succeeded while it waited, after a crash too") {
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  REQUIRE(h.RunCtl({"submit", h.WriteFile("etl.yaml", kQueuedEtl)}).code == 0);
  REQUIRE(Start(h, "etl")["run_id"] == 1);
  REQUIRE(WaitUntil([&] { return Trace(h) == "start 1\n"; }, 60s));

  // Queued behind run 1, when no success of extract is stored yet.
  ProcessResult queued = h.RunCtl({"run", "etl", "--only", "load"});
  CHECK_MESSAGE(queued.code == 0, queued.err);
  CHECK(queued.out ==
        "run 2 queued (workflow 'etl', only 'load'): max_active_runs 1 reached (run 1 running); "
        "it starts when a run ends\n");
  CHECK(TasksByName(h.GetRun(2))["extract"]["error"] ==
        "taken as done (only 'load'), without outputs: no success of it is stored");

  Release(h, "1");
  CHECK(h.WaitRun(1)["status"] == "succeeded");
  const json second = h.WaitRun(2);
  CHECK(second["status"] == "succeeded");
  CHECK(TasksByName(second)["extract"]["status"] == "reused");
  CHECK(TasksByName(second)["extract"]["error"] ==
        "taken as done (only 'load'), with the outputs of its success in run 1");
  CHECK(ReadFileText(h.Path("saw-2")) == "1\n");

  // The same for a run that waits across a crash: run 4 queued behind run 3.
  REQUIRE(Start(h, "etl")["run_id"] == 3);
  REQUIRE(WaitUntil([&] { return Contains(Trace(h), "start 3\n"); }, 60s));
  REQUIRE(h.RunCtl({"run", "etl", "--only", "load"}).code == 0);
  h.Kill9();
  REQUIRE(h.Start().ok());
  CHECK(h.GetRun(4)["status"] == "pending");
  Release(h, "3");
  CHECK(h.WaitRun(3)["status"] == "succeeded");
  CHECK(h.WaitRun(4)["status"] == "succeeded");
  CHECK(TasksByName(h.GetRun(4))["extract"]["error"] ==
        "taken as done (only 'load'), with the outputs of its success in run 3");
  CHECK(ReadFileText(h.Path("saw-4")) == "3\n");
}

TEST_CASE("a queued run cancelled ends cancelled without starting, and the next takes its turn") {
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  Submit(h, "c", "max_active_runs: 1\noverlap: queue");
  REQUIRE(Start(h, "c")["run_id"] == 1);
  REQUIRE(Start(h, "c")["run_id"] == 2);
  REQUIRE(Start(h, "c")["run_id"] == 3);

  const ProcessResult cancel = h.RunCtl({"cancel", "2"});
  CHECK_MESSAGE(cancel.code == 0, cancel.err);
  const json cancelled = h.WaitRun(2);
  CHECK(cancelled["status"] == "cancelled");
  CHECK(cancelled["started_at"].is_null());
  CHECK(cancelled["error"] == "cancelled on request (run.cancel)");
  CHECK(cancelled["attempts"].empty());
  CHECK(TaskStatuses(cancelled) == std::map<std::string, std::string>{{"hold", "cancelled"}});
  CHECK(h.GetRun(3)["status"] == "pending");   // run 1 still holds the place
  CHECK(h.RunCtl({"cancel", "2"}).code == 1);  // it has ended

  Release(h, "1");
  CHECK(Running(h.WaitRunState(3, Running)));
  REQUIRE(WaitUntil([&] { return Contains(Trace(h), "start 3\n"); }, 60s));
  // Cancelling by name takes the queued run first, so it never starts.
  REQUIRE(Start(h, "c")["run_id"] == 4);
  const ProcessResult all = h.RunCtl({"--json", "cancel", "c"});
  CHECK_MESSAGE(all.code == 0, all.err);
  CHECK(json::parse(all.out)["run_ids"] == json{3, 4});
  CHECK(h.WaitRun(3)["status"] == "cancelled");
  const json never = h.WaitRun(4);
  CHECK(never["status"] == "cancelled");
  CHECK(never["started_at"].is_null());
  CHECK(Trace(h) == "start 1\nend 1\nstart 3\n");
}

TEST_CASE("a queued run cancelled calls none of its handlers; a started one does") {
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  Submit(h, "hd", R"(max_active_runs: 1
overlap: queue
handlers:
  on_cancel:
    type: shell
    config: { command: 'echo "$PICOFLOW_RUN_STATUS" > "$PFIT_DIR/handled-$PICOFLOW_RUN_ID"' }
  on_exit:
    type: shell
    config: { command: 'touch "$PFIT_DIR/exited-$PICOFLOW_RUN_ID"' })");
  REQUIRE(Start(h, "hd")["run_id"] == 1);
  REQUIRE(Start(h, "hd")["queued"] == true);

  REQUIRE(h.RunCtl({"cancel", "2"}).code == 0);
  const json queued = h.WaitRun(2);
  CHECK(queued["status"] == "cancelled");
  CHECK(TaskStatuses(queued) == std::map<std::string, std::string>{{"hold", "cancelled"},
                                                                   {"on_cancel", "cancelled"},
                                                                   {"on_exit", "cancelled"}});
  CHECK(queued["attempts"].empty());

  REQUIRE(h.RunCtl({"cancel", "1"}).code == 0);
  CHECK(h.WaitRun(1)["status"] == "cancelled");
  CHECK(ReadFileText(h.Path("handled-1")) == "cancelled\n");
  CHECK(std::filesystem::exists(h.Path("exited-1")));
  CHECK_FALSE(std::filesystem::exists(h.Path("handled-2")));
  CHECK_FALSE(std::filesystem::exists(h.Path("exited-2")));
}

TEST_CASE("max_active_runs 2 lets two runs go at once and queues the third until one ends") {
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  Submit(h, "two", "max_active_runs: 2\noverlap: queue");
  REQUIRE(Start(h, "two")["also_running"] == json::array());
  const json second = Start(h, "two");
  CHECK(second == json{{"run_id", 2}, {"workflow", "two"}, {"also_running", {1}}});
  const json third = Start(h, "two");
  CHECK(third["reason"] == "queued: max_active_runs 2 reached (runs 1, 2 running)");
  CHECK(Statuses(h, "two") == std::vector<std::string>{"running", "running", "pending"});

  Release(h, "2");
  CHECK(h.WaitRun(2)["status"] == "succeeded");
  CHECK(Running(h.WaitRunState(3, Running)));
  CHECK(Running(h.GetRun(1)));
  Release(h, "all");
  CHECK(h.WaitRun(1)["status"] == "succeeded");
  CHECK(h.WaitRun(3)["status"] == "succeeded");
}

TEST_CASE("scheduled fires and runs by hand share max_active_runs") {
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  Submit(h, "tick", "schedule: \"* * * * * *\"\nmax_active_runs: 1\noverlap: queue");
  // A fire holds the one place; a run by hand waits behind it, and further
  // fires find the place taken and one fire already waiting.
  json fired;
  REQUIRE(WaitUntil(
      [&] {
        auto r = h.Call(method::kRunList, {{"workflow", "tick"}, {"limit", 1}});
        if (!r.ok() || (*r)["runs"].empty()) return false;
        fired = (*r)["runs"][0];
        return fired["status"] == "running";
      },
      60s));
  CHECK(fired["trigger"] == "cron");
  const json manual = Start(h, "tick");
  REQUIRE(manual["queued"] == true);
  CHECK_MESSAGE(manual["reason"].get<std::string>().starts_with(
                    "queued: max_active_runs 1 reached (run " +
                    std::to_string(fired["id"].get<int>()) + " running"),
                manual.dump());
  json skipped;
  REQUIRE(WaitUntil(
      [&] {
        auto r = h.Call(method::kRunList, {{"workflow", "tick"}, {"limit", 20}});
        if (!r.ok()) return false;
        for (const json& run : (*r)["runs"]) {
          if (run["status"] == "skipped") skipped = run;
        }
        return skipped.is_object();
      },
      60s));
  CHECK(skipped["reason"] ==
        "max_active_runs 1 reached and a fire was already queued (overlap: queue)");

  Release(h, "all");
  CHECK(h.WaitRun(manual["run_id"].get<std::int64_t>())["status"] == "succeeded");
  REQUIRE(h.RunCtl({"remove", "tick"}).code == 0);
  // One run at a time throughout: every start is followed by its own end.
  REQUIRE(
      WaitUntil([&] { return h.Call(method::kDaemonStatus)->value("active_runs", 1) == 0; }, 60s));
  const std::string trace = Trace(h);
  std::string open;
  std::size_t at = 0;
  while (at < trace.size()) {
    const std::size_t eol = trace.find('\n', at);
    const std::string line = trace.substr(at, eol - at);
    at = eol + 1;
    if (line.starts_with("start ")) {
      CHECK_MESSAGE(open.empty(), trace);
      open = line.substr(6);
    } else {
      CHECK_MESSAGE(line == "end " + open, trace);
      open.clear();
    }
  }
}

TEST_CASE("max_active_runs out of range, or with overlap allow, is refused where it is written") {
  DaemonHarness h;
  const std::string zero = h.WriteFile("zero.yaml", Held("zero", "max_active_runs: 0"));
  const ProcessResult bad = h.RunCtl({"validate", zero});
  CHECK(bad.code == 1);
  CHECK_MESSAGE(Contains(bad.out, zero + ":2:18: 'max_active_runs' must be an integer from 1 to "
                                         "1000, got '0'"),
                bad.out);
  REQUIRE(h.Start().ok());
  const std::string allow =
      h.WriteFile("allow.yaml", Held("allow", "overlap: allow\nmax_active_runs: 3"));
  const ProcessResult refused = h.RunCtl({"submit", allow});
  CHECK(refused.code != 0);
  const std::string said = refused.out + refused.err;
  CHECK_MESSAGE(Contains(said, allow + ":3:18: 'max_active_runs' cannot go with 'overlap: allow'"),
                said);
  CHECK(
      h.RunCtl({"submit", h.WriteFile("many.yaml", Held("many", "max_active_runs: 1001"))}).code !=
      0);
}

}  // namespace picoflow::test
