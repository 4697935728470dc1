// Integration: runs on a real picoflowd — scheduling order and parallelism,
// retries, timeouts, cancel, failure propagation, big and odd task output.
// Tasks record what they did in files under $PFIT_DIR (the test's private
// directory); the tests compare that with what run.get reports.

#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "protocol/methods.h"
#include "tests/daemon_harness.h"
#include "tests/sanitizers.h"

namespace picoflow::test {
namespace {

pid_t ReadPid(const DaemonHarness& h, const std::string& name) {
  return static_cast<pid_t>(std::atol(ReadFileText(h.Path(name)).c_str()));
}

// Waits until a task has written its pid file (it is running).
pid_t WaitPidFile(const DaemonHarness& h, const std::string& name) {
  pid_t pid = 0;
  WaitUntil([&] { return (pid = ReadPid(h, name)) > 0; }, 60s);
  return pid;
}

const Span* Find(const std::vector<Span>& spans, const std::string& task, int attempt = 1) {
  for (const Span& s : spans) {
    if (s.task == task && s.attempt == attempt) return &s;
  }
  return nullptr;
}

}  // namespace

TEST_CASE("a diamond runs its two branches in parallel and the join after both") {
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  h.WriteTraceScript();
  const auto id = h.StartRun(R"(
name: diamond
config: { max_parallel: 4, retry_default: 0 }
tasks:
  - { name: top,   type: shell, config: { command: 'sh "$PFIT_DIR/trace.sh" 0.2' } }
  - { name: left,  type: shell, depends_on: [top], config: { command: 'sh "$PFIT_DIR/trace.sh" 0.8' } }
  - { name: right, type: shell, depends_on: [top], config: { command: 'sh "$PFIT_DIR/trace.sh" 0.8' } }
  - { name: join,  type: shell, depends_on: [left, right], config: { command: 'sh "$PFIT_DIR/trace.sh" 0' } }
)");
  const json run = h.WaitRun(id);
  REQUIRE(run.is_object());
  CHECK(run["status"] == "succeeded");
  CHECK(StartOrder(run) == std::vector<std::string>{"top", "left", "right", "join"});

  const auto spans = h.Trace();
  REQUIRE(spans.size() == 4);
  const Span* top = Find(spans, "top");
  const Span* left = Find(spans, "left");
  const Span* right = Find(spans, "right");
  const Span* join = Find(spans, "join");
  REQUIRE((top && left && right && join));
  CHECK(left->start >= top->end);
  CHECK(right->start >= top->end);
  // The branches overlap: each started before the other ended.
  CHECK(left->start < right->end);
  CHECK(right->start < left->end);
  CHECK(join->start >= left->end);
  CHECK(join->start >= right->end);
}

TEST_CASE("max_parallel 2 never lets three tasks of a wide workflow overlap") {
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  h.WriteTraceScript();
  const auto id = h.StartRun(R"(
name: wide
config: { max_parallel: 2, retry_default: 0 }
tasks:
  - { name: t1, type: shell, config: { command: 'sh "$PFIT_DIR/trace.sh" 0.3' } }
  - { name: t2, type: shell, config: { command: 'sh "$PFIT_DIR/trace.sh" 0.3' } }
  - { name: t3, type: shell, config: { command: 'sh "$PFIT_DIR/trace.sh" 0.3' } }
  - { name: t4, type: shell, config: { command: 'sh "$PFIT_DIR/trace.sh" 0.3' } }
  - { name: t5, type: shell, config: { command: 'sh "$PFIT_DIR/trace.sh" 0.3' } }
  - { name: t6, type: shell, config: { command: 'sh "$PFIT_DIR/trace.sh" 0.3' } }
)");
  const json run = h.WaitRun(id);
  REQUIRE(run.is_object());
  CHECK(run["status"] == "succeeded");
  CHECK(StartOrder(run) == std::vector<std::string>{"t1", "t2", "t3", "t4", "t5", "t6"});
  const auto spans = h.Trace();
  REQUIRE(spans.size() == 6);
  for (const Span& s : spans) CHECK_MESSAGE(s.end > 0, s.task, " never ended");
  // Both slots were used, never a third.
  CHECK(MaxOverlap(spans) == 2);
}

TEST_CASE("a failing task is retried after retry_delay, doubling, each attempt recorded") {
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  h.WriteTraceScript();
  // flaky fails its first attempt only; doomed fails all three.
  const auto id = h.StartRun(R"(
name: retries
config: { retry_default: 0, retry_delay: 1s, kill_grace: 1s }
tasks:
  - name: flaky
    type: shell
    retry: 3
    config: { command: 'sh "$PFIT_DIR/trace.sh" 0 $(( PICOFLOW_ATTEMPT == 1 ? 7 : 0 ))' }
  - name: doomed
    type: shell
    retry: 2
    config: { command: 'sh "$PFIT_DIR/trace.sh" 0 3' }
)");
  const json run = h.WaitRun(id);
  REQUIRE(run.is_object());
  CHECK(run["status"] == "failed");
  CHECK(TaskStatuses(run) ==
        std::map<std::string, std::string>{{"flaky", "succeeded"}, {"doomed", "failed"}});
  CHECK(AttemptStatuses(run, "flaky") == std::vector<std::string>{"failed", "succeeded"});
  CHECK(AttemptStatuses(run, "doomed") == std::vector<std::string>{"failed", "failed", "failed"});
  for (const json& t : run["tasks"]) {
    CHECK(t["attempts"] == (t["name"] == "flaky" ? 2 : 3));
  }
  const auto doomed = AttemptsOf(run, "doomed");
  REQUIRE(doomed.size() == 3);
  for (int i = 0; i < 3; ++i) {
    CHECK(doomed[i]["number"] == i + 1);
    CHECK(doomed[i]["exit_code"] == 3);
  }
  CHECK(AttemptsOf(run, "flaky")[0]["exit_code"] == 7);

  // Delays measured by the tasks themselves: end of attempt n to start of
  // n+1. The daemon's timer starts after it saw the exit, so the gap is at
  // least the delay; 20 ms slack for the loop's cached clock. The exact
  // delays (doubling) are run_test's, with a fake clock; the upper bound here
  // only says the doubled delay was not grossly overshot.
  const auto spans = h.Trace();
  const Span* d1 = Find(spans, "doomed", 1);
  const Span* d2 = Find(spans, "doomed", 2);
  const Span* d3 = Find(spans, "doomed", 3);
  const Span* f1 = Find(spans, "flaky", 1);
  const Span* f2 = Find(spans, "flaky", 2);
  REQUIRE((d1 && d2 && d3 && f1 && f2));
  CHECK(d2->start - d1->end >= 0.98);
  CHECK(d3->start - d2->end >= 1.98);  // doubled
  CHECK(f2->start - f1->end >= 0.98);
  CHECK(d3->start - d2->end < 2.0 + 30.0);
}

TEST_CASE("a timeout kills the task's whole process group, a TERM-ignoring grandchild included") {
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  // plain dies of the SIGTERM; stubborn ignores it (the sleep inherits the
  // ignored disposition) and needs the SIGKILL after kill_grace. Both would
  // sleep 300 s if nothing ended them.
  const auto id = h.StartRun(R"(
name: timeouts
config: { retry_default: 0, kill_grace: 1s }
tasks:
  - name: plain
    type: shell
    timeout: 1
    config: { command: 'sleep 300 & echo $! > "$PFIT_DIR/plain.pid"; wait' }
  - name: stubborn
    type: shell
    timeout: 1
    config: { command: 'trap "" TERM; sleep 300 & echo $! > "$PFIT_DIR/stubborn.pid"; wait' }
)");
  const pid_t plain = WaitPidFile(h, "plain.pid");
  const pid_t stubborn = WaitPidFile(h, "stubborn.pid");
  REQUIRE(plain > 0);
  REQUIRE(stubborn > 0);
  const json run = h.WaitRun(id);
  REQUIRE(run.is_object());
  CHECK(run["status"] == "failed");
  CHECK(TaskStatuses(run) ==
        std::map<std::string, std::string>{{"plain", "timed_out"}, {"stubborn", "timed_out"}});
  CHECK(AttemptStatuses(run, "plain") == std::vector<std::string>{"timed_out"});
  CHECK(AttemptStatuses(run, "stubborn") == std::vector<std::string>{"timed_out"});
  const json p = AttemptsOf(run, "plain").at(0);
  const json s = AttemptsOf(run, "stubborn").at(0);
  // Both end at timeout + grace at the latest (plain's would end at once on
  // a host whose init reaps orphans; here its killed sleep stays a zombie,
  // which kill(-pgid, 0) still counts, so the executor waits out the grace):
  // not before the timeout, and far sooner than the 300 s sleeps. The upper
  // bound only tells those apart, on any machine.
  CHECK(p["duration_ms"].get<long>() >= 1000);
  CHECK(p["duration_ms"].get<long>() < 1000 + 1000 + 30000);
  CHECK(s["duration_ms"].get<long>() >= 1900);  // needed the KILL after the grace
  CHECK(s["duration_ms"].get<long>() < 1000 + 1000 + 30000);
  INFO("plain grandchild state: ", ProcessState(plain), ", stubborn: ", ProcessState(stubborn));
  CHECK(
      WaitUntil([&] { return ProcessGoneOrZombie(plain) && ProcessGoneOrZombie(stubborn); }, 30s));
  CHECK_FALSE(ProcessGroupAlive(p["pid"].get<pid_t>()));
  CHECK_FALSE(ProcessGroupAlive(s["pid"].get<pid_t>()));
}

TEST_CASE("run.cancel stops a running run: its tasks cancelled, its process group gone") {
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  const auto id = h.StartRun(R"(
name: cancellable
config: { retry_default: 0, kill_grace: 1s }
tasks:
  - { name: quick, type: shell, config: { command: 'true' } }
  - name: long
    type: shell
    depends_on: [quick]
    config: { command: 'sleep 300 & echo $! > "$PFIT_DIR/long.pid"; wait' }
  - { name: after, type: shell, depends_on: [long], config: { command: 'touch "$PFIT_DIR/after.ran"' } }
)");
  const pid_t sleeper = WaitPidFile(h, "long.pid");
  REQUIRE(sleeper > 0);
  auto cancelled = h.Call(method::kRunCancel, {{"run_id", id}});
  REQUIRE(cancelled.ok());
  CHECK((*cancelled)["cancelling"] == true);
  const json run = h.WaitRun(id);
  REQUIRE(run.is_object());
  CHECK(run["status"] == "cancelled");
  CHECK(TaskStatuses(run) == std::map<std::string, std::string>{{"quick", "succeeded"},
                                                                {"long", "cancelled"},
                                                                {"after", "cancelled"}});
  CHECK(AttemptStatuses(run, "long") == std::vector<std::string>{"cancelled"});
  CHECK(AttemptsOf(run, "after").empty());
  const pid_t leader = AttemptsOf(run, "long").at(0)["pid"].get<pid_t>();
  CHECK(WaitUntil([&] { return !ProcessGroupAlive(leader) && ProcessGoneOrZombie(sleeper); }, 30s));
  CHECK_FALSE(std::filesystem::exists(h.Path("after.ran")));
  // A second cancel of the ended run is a clean not-found error.
  auto again = h.Call(method::kRunCancel, {{"run_id", id}});
  REQUIRE_FALSE(again.ok());
  REQUIRE(h.last_rpc_error());
  CHECK(h.last_rpc_error()->code == static_cast<int>(RpcCode::kNotFound));
}

TEST_CASE(
    "a failed task skips its dependents; continue_on_failure and independent branches go on") {
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  h.WriteTraceScript();
  const auto id = h.StartRun(R"(
name: failures
config: { retry_default: 0, max_parallel: 8 }
tasks:
  - { name: bad,            type: shell, config: { command: 'sh "$PFIT_DIR/trace.sh" 0 1' } }
  - { name: after_bad,      type: shell, depends_on: [bad], config: { command: 'sh "$PFIT_DIR/trace.sh" 0' } }
  - { name: after_after,    type: shell, depends_on: [after_bad], config: { command: 'sh "$PFIT_DIR/trace.sh" 0' } }
  - name: tolerated
    type: shell
    continue_on_failure: true
    config: { command: 'sh "$PFIT_DIR/trace.sh" 0 2' }
  - { name: after_tolerated, type: shell, depends_on: [tolerated], config: { command: 'sh "$PFIT_DIR/trace.sh" 0' } }
  - { name: sibling,        type: shell, config: { command: 'sh "$PFIT_DIR/trace.sh" 0.6' } }
  - { name: after_sibling,  type: shell, depends_on: [sibling], config: { command: 'sh "$PFIT_DIR/trace.sh" 0' } }
)");
  const json run = h.WaitRun(id);
  REQUIRE(run.is_object());
  CHECK(run["status"] == "failed");
  CHECK(TaskStatuses(run) == std::map<std::string, std::string>{
                                 {"bad", "failed"},
                                 {"after_bad", "skipped"},
                                 {"after_after", "skipped"},
                                 {"tolerated", "failed"},
                                 {"after_tolerated", "succeeded"},
                                 {"sibling", "succeeded"},
                                 {"after_sibling", "succeeded"},
                             });
  CHECK(AttemptsOf(run, "after_bad").empty());
  CHECK(AttemptsOf(run, "after_after").empty());
  const auto spans = h.Trace();
  const Span* bad = Find(spans, "bad");
  const Span* after_sibling = Find(spans, "after_sibling");
  REQUIRE((bad && after_sibling));
  // The independent branch kept going after the failure.
  CHECK(after_sibling->start > bad->end);
  CHECK(Find(spans, "after_bad") == nullptr);
}

TEST_CASE("a task printing 50 MB is drained and capped without hanging or growing the daemon") {
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  const auto id = h.StartRun(R"(
name: firehose
config: { retry_default: 0 }
tasks:
  - { name: flood, type: shell, config: { command: 'head -c 52428800 /dev/zero; echo done >&2' } }
)");
  long max_rss_kb = 0;
  const json run = h.WaitRunState(
      id,
      [&](const json& r) {
        max_rss_kb = std::max(max_rss_kb, ResidentKb(h.pid()));
        return r["status"] != "running" && r["status"] != "pending";
      },
      120s);
  REQUIRE(run.is_object());
  CHECK(run["status"] == "succeeded");
  const auto attempts = AttemptsOf(run, "flood");
  REQUIRE(attempts.size() == 1);
  CHECK(attempts[0]["stdout_bytes"] == 52428800);
  CHECK(attempts[0]["stdout_dropped"] == 52428800 - 1048576);
  CHECK(attempts[0]["stderr_bytes"] == 5);
  CHECK(attempts[0]["stderr_dropped"] == 0);
  max_rss_kb = std::max(max_rss_kb, ResidentKb(h.pid()));
  MESSAGE("daemon peak VmRSS sampled: ", max_rss_kb, " kB");
  CHECK(max_rss_kb > 0);
  if (!kAddressSanitizer) CHECK(max_rss_kb < 64 * 1024);

  // The kept megabyte reads back in pages that fit the protocol's line limit.
  std::size_t kept = 0;
  std::int64_t after = 0;
  for (int page = 0; page < 100; ++page) {
    auto logs = h.Call(method::kRunLogs,
                       {{"run_id", id}, {"task", "flood"}, {"after", after}, {"limit", 1000}});
    REQUIRE_MESSAGE(logs.ok(), (logs.ok() ? "" : logs.error().message));
    if ((*logs)["chunks"].empty()) break;
    for (const json& c : (*logs)["chunks"]) {
      if (c["stream"] == "stdout") kept += c["data"].get<std::string>().size();
    }
    after = (*logs)["next"].get<std::int64_t>();
  }
  CHECK(kept == 1048576);
}

TEST_CASE("a background child holding the output pipe open does not hold up the attempt") {
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  const auto id = h.StartRun(R"(
name: lingering
config: { retry_default: 0, kill_grace: 1s }
tasks:
  - { name: parent, type: shell, config: { command: 'sleep 300 & echo $! > "$PFIT_DIR/child.pid"; exit 0' } }
  - { name: next,   type: shell, depends_on: [parent], config: { command: 'echo next' } }
)");
  const json run = h.WaitRun(id);
  REQUIRE(run.is_object());
  CHECK(run["status"] == "succeeded");
  const json attempt = AttemptsOf(run, "parent").at(0);
  CHECK(attempt["status"] == "succeeded");
  // Ended by the drain period (0.5 s), not by the child's 300 s sleep.
  CHECK(attempt["duration_ms"].get<long>() < 30000);
  // What was left of the task's group after the drain period was killed.
  const pid_t child = ReadPid(h, "child.pid");
  REQUIRE(child > 0);
  CHECK(WaitUntil([&] { return ProcessGoneOrZombie(child); }, 30s));
}

TEST_CASE("a setsid escapee holding the task's output is killed when its attempt ends") {
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  // The escapee starts a new session, so the group kill cannot reach it; it
  // keeps the stdout pipe open, so the attempt ends by the drain period. The
  // task exits only once the escapee wrote its pid from its new session, so
  // the group kill cannot come first, however slowly the escapee starts.
  const auto id = h.StartRun(R"(
name: escapee
config: { retry_default: 0, kill_grace: 1s }
tasks:
  - { name: runaway, type: shell, config: { command: 'setsid sh -c "echo \$\$ > \"$PFIT_DIR/escapee.pid\"; exec sleep 300" & until [ -s "$PFIT_DIR/escapee.pid" ]; do sleep 0.01; done; exit 0' } }
  - { name: next,    type: shell, depends_on: [runaway], config: { command: 'true' } }
)");
  const json run = h.WaitRun(id);
  REQUIRE(run.is_object());
  CHECK(run["status"] == "succeeded");
  // Ended by the drain period (0.5 s), not by the escapee's 300 s sleep.
  CHECK(AttemptsOf(run, "runaway").at(0)["duration_ms"].get<long>() < 30000);
  const pid_t escapee = ReadPid(h, "escapee.pid");
  REQUIRE(escapee > 0);
  // The daemon's containment (here a subreaper: docs/operations.md, "Task
  // containment") killed it with its attempt.
  CHECK(WaitUntil([&] { return ProcessGoneOrZombie(escapee); }, 60s));
}

TEST_CASE("a setsid escapee that let go of the task's output dies when its attempt ends") {
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  // sh + sleep in a session of their own, stdio elsewhere (as in the issue,
  // with a sleep that outlasts the wait below): nothing ties them
  // to the task any more but their environment and their ancestry.
  const auto id = h.StartRun(R"(
name: detached
config: { retry_default: 0 }
tasks:
  - { name: daemonize, type: shell, config: { command: 'setsid sh -c "echo \$\$ > \"$PFIT_DIR/escapee.pid\"; sleep 300 & echo \$! > \"$PFIT_DIR/sleep.pid\"; wait" </dev/null >/dev/null 2>&1 & until [ -s "$PFIT_DIR/sleep.pid" ]; do sleep 0.01; done' } }
)");
  const json run = h.WaitRun(id);
  REQUIRE(run.is_object());
  CHECK(run["status"] == "succeeded");
  const pid_t escapee = ReadPid(h, "escapee.pid");
  const pid_t sleeper = ReadPid(h, "sleep.pid");
  REQUIRE(escapee > 0);
  REQUIRE(sleeper > 0);
  CHECK(WaitUntil([&] { return ProcessGoneOrZombie(escapee); }, 60s));
  CHECK(WaitUntil([&] { return ProcessGoneOrZombie(sleeper); }, 60s));  // and its child
}

TEST_CASE("ssh and http tasks that cannot run fail cleanly and nothing crashes") {
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  // Port 9 (discard) on loopback: nothing listens there.
  const auto id = h.StartRun(R"(
name: remote
config: { retry_default: 0 }
tasks:
  - { name: fetch, type: http, timeout: 5, config: { url: "http://127.0.0.1:9/health" } }
  - { name: login, type: ssh,  config: { host: localhost, user: nobody, command: "true" } }
  - { name: after, type: shell, depends_on: [fetch], config: { command: "true" } }
  - { name: local, type: shell, config: { command: "echo still here" } }
)");
  const json run = h.WaitRun(id);
  REQUIRE(run.is_object());
  CHECK(run["status"] == "failed");
  CHECK(TaskStatuses(run) == std::map<std::string, std::string>{{"fetch", "failed"},
                                                                {"login", "failed"},
                                                                {"after", "skipped"},
                                                                {"local", "succeeded"}});
  for (const char* task : {"fetch", "login"}) {
    const auto attempts = AttemptsOf(run, task);
    REQUIRE(attempts.size() == 1);
    CHECK(attempts[0]["status"] == "failed");
    CHECK_FALSE(attempts[0]["error"].get<std::string>().empty());
  }
  // Both remote executors are loaded on first use (or say why they cannot
  // be); nothing answers ssh on localhost:22 here, or nobody's login fails.
  const std::string ssh_error = AttemptsOf(run, "login").at(0)["error"];
  CHECK_MESSAGE(ssh_error.find("not available yet") == std::string::npos, ssh_error);
  MESSAGE("ssh error: ", ssh_error);
  MESSAGE("http error: ", AttemptsOf(run, "fetch").at(0)["error"].get<std::string>());
  CHECK(h.Alive());
  CHECK(h.Call(method::kDaemonStatus).ok());
}

}  // namespace picoflow::test

namespace picoflow::test {

TEST_CASE("a run cancelled by the daemon's stop says so in its error and its tasks'") {
  DaemonHarness h;
  // By default a stop interrupts runs (they resume at the next start); this
  // one is about a stop that ends them.
  REQUIRE(h.Start({"--on-shutdown", "cancel"}).ok());
  const auto id = h.StartRun(R"(
name: stopped
config: { retry_default: 0, kill_grace: 1s }
tasks:
  - { name: wait, type: shell, config: { command: 'exec sleep 300' } }
  - { name: later, type: shell, depends_on: [wait], config: { command: 'true' } }
)");
  h.WaitRunState(id, [](const json& run) { return TaskStatuses(run)["wait"] == "running"; });
  REQUIRE(h.Stop() == 0);
  REQUIRE(h.Start().ok());
  const json run = h.GetRun(id);
  REQUIRE(run.is_object());
  CHECK(run["status"] == "cancelled");
  CHECK(run["error"] == "cancelled: picoflowd stopped");
  std::map<std::string, std::string> errors;
  for (const json& t : run["tasks"]) errors[t["name"]] = t["error"];
  CHECK(errors == std::map<std::string, std::string>{{"wait", "cancelled: picoflowd stopped"},
                                                     {"later", "cancelled: picoflowd stopped"}});
}

}  // namespace picoflow::test
