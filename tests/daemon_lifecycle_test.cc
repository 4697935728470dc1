// Integration: picoflowd's lifecycle — persistence across restarts, crash
// recovery after kill -9, graceful shutdown with tasks running (interrupted
// and resumed, or with --on-shutdown cancel cancelled), one daemon
// per socket and state directory, peers of another uid, --once.

#include <doctest/doctest.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <sstream>
#include <thread>

#include "protocol/methods.h"
#include "tests/daemon_harness.h"

namespace picoflow::test {
namespace {

using Clock = std::chrono::steady_clock;

pid_t ReadPid(const DaemonHarness& h, const std::string& name) {
  return static_cast<pid_t>(std::atol(ReadFileText(h.Path(name)).c_str()));
}

pid_t WaitPidFile(const DaemonHarness& h, const std::string& name) {
  pid_t pid = 0;
  WaitUntil([&] { return (pid = ReadPid(h, name)) > 0; }, 60s);
  return pid;
}

long CountLines(const std::string& path) {
  const std::string text = ReadFileText(path);
  return static_cast<long>(std::count(text.begin(), text.end(), '\n'));
}

/// What a forked child reported: its exit code (-1: it hung and was killed)
/// and the text it wrote to the pipe.
struct ChildReport {
  int code = -1;
  std::string text;
};

/// Runs `body` in a forked child as `pw`'s uid/gid, bounded by `timeout` (a
/// hang detector). `body` returns the child's exit code and may append to its
/// message.
ChildReport ForkAs(const passwd& pw, const std::function<int(std::string&)>& body,
                   Millis timeout = 120s) {
  int fds[2];
  REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
  const uid_t uid = pw.pw_uid;
  const gid_t gid = pw.pw_gid;
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    int rc = 99;
    std::string message;
    if (::setgroups(0, nullptr) != 0 || ::setgid(gid) != 0 || ::setuid(uid) != 0) {
      message =
          std::string("cannot become uid ") + std::to_string(uid) + ": " + std::strerror(errno);
    } else {
      rc = body(message);
    }
    (void)!::write(fds[1], message.data(), message.size());
    ::_exit(rc);
  }
  ::close(fds[1]);
  ChildReport report;
  const auto deadline = Clock::now() + timeout;
  int status = 0;
  for (;;) {
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      report.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      break;
    }
    if (Clock::now() >= deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      break;
    }
    std::this_thread::sleep_for(10ms);
  }
  char buf[4096];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;)
    report.text.append(buf, static_cast<std::size_t>(n));
  ::close(fds[0]);
  return report;
}

// Child exit codes of the peer probe below.
constexpr int kConnectDenied = 10;
constexpr int kHandshakeRefused = 20;
constexpr int kHandshakeAccepted = 30;
constexpr int kOtherFailure = 40;

int ProbeDaemon(const std::string& socket, std::string& message) {
  Client client;
  if (Status s = client.Connect(socket, 30s); !s.ok()) {
    message = s.error().message;
    return Contains(message, "ermission denied") ? kConnectDenied : kOtherFailure;
  }
  auto hello = client.Handshake(30s);
  if (hello.ok()) return kHandshakeAccepted;
  message = hello.error().message;
  const auto& rpc = client.last_rpc_error();
  return rpc && rpc->code == static_cast<int>(RpcCode::kForbidden) ? kHandshakeRefused
                                                                   : kOtherFailure;
}

}  // namespace

TEST_CASE("workflows and runs survive a daemon restart") {
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  const std::string source = R"(
name: keeper
description: kept across restarts
config: { retry_default: 0 }
tasks:
  - { name: one, type: shell, config: { command: 'echo one' } }
  - { name: two, type: shell, depends_on: [one], config: { command: 'echo two' } }
)";
  auto submitted = h.Call(method::kWorkflowSubmit, {{"source", source}});
  REQUIRE(submitted.ok());
  auto started = h.Call(method::kRunStart, {{"workflow", "keeper"}});
  REQUIRE(started.ok());
  const std::int64_t id = (*started)["run_id"];
  REQUIRE(h.WaitRun(id)["status"] == "succeeded");

  REQUIRE(h.Restart().ok());

  auto list = h.Call(method::kWorkflowList);
  REQUIRE(list.ok());
  REQUIRE((*list)["workflows"].size() == 1);
  const json& w = (*list)["workflows"][0];
  CHECK(w["name"] == "keeper");
  CHECK(w["description"] == "kept across restarts");
  CHECK(w["last_run"]["id"] == id);
  CHECK(w["last_run"]["status"] == "succeeded");
  auto got = h.Call(method::kWorkflowGet, {{"name", "keeper"}});
  REQUIRE(got.ok());
  CHECK((*got)["source"] == source);

  const json run = h.GetRun(id);
  REQUIRE(run.is_object());
  CHECK(run["status"] == "succeeded");
  CHECK(TaskStatuses(run) ==
        std::map<std::string, std::string>{{"one", "succeeded"}, {"two", "succeeded"}});
  auto logs = h.Call(method::kRunLogs, {{"run_id", id}, {"task", "two"}});
  REQUIRE(logs.ok());
  REQUIRE((*logs)["chunks"].size() == 1);
  CHECK((*logs)["chunks"][0]["data"] == "two\n");

  // The restarted daemon runs it again under a new id.
  auto again = h.Call(method::kRunStart, {{"workflow", "keeper"}});
  REQUIRE(again.ok());
  CHECK((*again)["run_id"].get<std::int64_t>() > id);
  CHECK(h.WaitRun((*again)["run_id"])["status"] == "succeeded");
  auto runs = h.Call(method::kRunList, {{"workflow", "keeper"}});
  REQUIRE(runs.ok());
  CHECK((*runs)["runs"].size() == 2);
}

TEST_CASE(
    "after kill -9 a restart kills the orphaned task, records it interrupted, resumes the run") {
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  // b's first attempt leaves a marker and sleeps; its retry sees the marker
  // and succeeds at once.
  const auto id = h.StartRun(R"(
name: crashy
config: { retry_default: 0, retry_delay: 1s, kill_grace: 1s }
tasks:
  - { name: a, type: shell, config: { command: 'echo once >> "$PFIT_DIR/a.marker"' } }
  - name: b
    type: shell
    depends_on: [a]
    retry: 1
    config:
      command: |
        if [ -e "$PFIT_DIR/b.quick" ]; then echo retried; exit 0; fi
        touch "$PFIT_DIR/b.quick"
        sleep 30 & echo $! > "$PFIT_DIR/b.pid"
        wait
  - { name: c, type: shell, depends_on: [b], config: { command: 'echo c >> "$PFIT_DIR/c.marker"' } }
)");
  const pid_t sleeper = WaitPidFile(h, "b.pid");
  REQUIRE(sleeper > 0);
  // The attempt's identity is recorded before anything else happens.
  const json before = h.WaitRunState(id, [](const json& r) {
    auto b = AttemptsOf(r, "b");
    return !b.empty() && b[0]["pid"].is_number();
  });
  const pid_t leader = AttemptsOf(before, "b").at(0)["pid"].get<pid_t>();

  h.Kill9();
  // The task outlived the daemon, and the socket file is left behind.
  CHECK_FALSE(ProcessGoneOrZombie(sleeper));
  CHECK(ProcessGroupAlive(leader));
  CHECK(std::filesystem::exists(h.socket()));

  REQUIRE(h.Start().ok());
  CHECK(Contains(h.log(), "removed stale socket"));
  const json run = h.WaitRun(id);
  REQUIRE(run.is_object());
  CHECK(run["status"] == "succeeded");
  CHECK(WaitUntil([&] { return ProcessGoneOrZombie(sleeper) && !ProcessGroupAlive(leader); }, 30s));
  CHECK(TaskStatuses(run) == std::map<std::string, std::string>{
                                 {"a", "succeeded"}, {"b", "succeeded"}, {"c", "succeeded"}});
  CHECK(AttemptStatuses(run, "a") == std::vector<std::string>{"succeeded"});
  CHECK(AttemptStatuses(run, "b") == std::vector<std::string>{"interrupted", "succeeded"});
  CHECK(AttemptStatuses(run, "c") == std::vector<std::string>{"succeeded"});
  CHECK(CountLines(h.Path("a.marker")) == 1);
  CHECK(CountLines(h.Path("c.marker")) == 1);
  for (const json& t : run["tasks"]) {
    CHECK_MESSAGE(t["attempts"] == (t["name"] == "b" ? 2 : 1), t["name"].get<std::string>());
  }
}

TEST_CASE(
    "a task interrupted max_interruptions times fails, naming the restart loop, and skips its"
    " dependents") {
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  // Each attempt of b counts itself and sleeps: it never ends on its own.
  const auto id = h.StartRun(R"(
name: loop
tasks:
  - name: b
    type: shell
    config:
      command: |
        n=$(($(cat "$PFIT_DIR/b.count" 2>/dev/null || echo 0) + 1))
        echo $n > "$PFIT_DIR/b.count"
        sleep 60 & echo $! > "$PFIT_DIR/b.$n.pid"
        wait
  - { name: c, type: shell, depends_on: [b], config: { command: 'true' } }
)");
  REQUIRE(id > 0);
  // Three crashes while b runs (its default max_interruptions is 3): after
  // the first two it starts over, after the third it fails.
  for (int n = 1; n <= 3; ++n) {
    INFO("attempt " << n);
    REQUIRE(WaitPidFile(h, "b." + std::to_string(n) + ".pid") > 0);
    // Its identity is stored, so the restart can kill what is left of it.
    h.WaitRunState(id, [n](const json& r) {
      auto b = AttemptsOf(r, "b");
      return static_cast<int>(b.size()) == n && b.back()["pid"].is_number();
    });
    h.Kill9();
    REQUIRE(h.Start().ok());
  }
  const json run = h.WaitRun(id);
  REQUIRE(run.is_object());
  CHECK(run["status"] == "failed");
  CHECK(TaskStatuses(run) == std::map<std::string, std::string>{{"b", "failed"}, {"c", "skipped"}});
  CHECK(AttemptStatuses(run, "b") ==
        std::vector<std::string>{"interrupted", "interrupted", "interrupted"});
  for (const json& t : run["tasks"]) {
    if (t["name"] != "b") continue;
    CHECK(t["error"] ==
          "interrupted 3 times (max_interruptions: 3): is picoflowd restarting in a loop?"
          " (journalctl -u picoflowd)");
    CHECK(t["attempts"] == 3);
  }
  CHECK(ReadFileText(h.Path("b.count")) == "3\n");  // no fourth attempt
  // A task may be told to fail at its first interruption.
  const auto once = h.StartRun(R"(
name: once
tasks:
  - name: b
    type: shell
    max_interruptions: 1
    config: { command: 'sleep 60 & echo $! > "$PFIT_DIR/once.pid"; wait' }
)");
  REQUIRE(WaitPidFile(h, "once.pid") > 0);
  h.WaitRunState(once, [](const json& r) {
    auto b = AttemptsOf(r, "b");
    return !b.empty() && b.back()["pid"].is_number();
  });
  h.Kill9();
  REQUIRE(h.Start().ok());
  const json failed = h.WaitRun(once);
  CHECK(failed["status"] == "failed");
  CHECK(AttemptStatuses(failed, "b") == std::vector<std::string>{"interrupted"});
}

TEST_CASE(
    "two tasks given up at one resume under fail_fast: the first one's failure skips the other") {
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  const auto id = h.StartRun(R"(
name: both
config: { fail_fast: true }
tasks:
  - { name: x, type: shell, max_interruptions: 1, config: { command: 'sleep 60 & echo $! > "$PFIT_DIR/x.pid"; wait' } }
  - { name: y, type: shell, max_interruptions: 1, config: { command: 'sleep 60 & echo $! > "$PFIT_DIR/y.pid"; wait' } }
)");
  REQUIRE(WaitPidFile(h, "x.pid") > 0);
  REQUIRE(WaitPidFile(h, "y.pid") > 0);
  h.WaitRunState(id, [](const json& r) {
    auto x = AttemptsOf(r, "x");
    auto y = AttemptsOf(r, "y");
    return !x.empty() && x.back()["pid"].is_number() && !y.empty() && y.back()["pid"].is_number();
  });
  h.Kill9();
  REQUIRE(h.Start().ok());
  const json run = h.WaitRun(id);
  REQUIRE(run.is_object());
  CHECK(run["status"] == "failed");
  CHECK(TaskStatuses(run) == std::map<std::string, std::string>{{"x", "failed"}, {"y", "skipped"}});
  CHECK(h.Alive());
}

TEST_CASE("a start kills what tasks of a previous daemon left running, found by their mark") {
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  const auto id = h.StartRun(R"(
name: mark
tasks:
  - name: t
    type: shell
    config: { command: 'printf %s "$PICOFLOW_STATE_DIR" > "$PFIT_DIR/mark"' }
)");
  REQUIRE(id > 0);
  CHECK(h.WaitRun(id)["status"] == "succeeded");
  const std::string mark = std::filesystem::canonical(h.state_dir()).string();
  CHECK(ReadFileText(h.Path("mark")) == mark);
  h.Kill9();
  // A crash just after a task's spawn loses its record, and a task may leave
  // its process group: then neither a pid nor a group tells the next start
  // it runs; its mark does. One process with the mark, one with another.
  auto spawn = [&](const std::string& value) {
    const ProcessResult r = h.RunProgram(
        "/bin/sh",
        {"-c", "PICOFLOW_STATE_DIR='" + value + "' setsid sleep 60 >/dev/null 2>&1 & echo $!"});
    const auto pid = static_cast<pid_t>(std::atol(r.out.c_str()));
    // Marked once the shell has exec'd sleep.
    const std::string environ = "/proc/" + std::to_string(pid) + "/environ";
    CHECK(WaitUntil([&] { return Contains(ReadFileText(environ), "PICOFLOW_STATE_DIR=" + value); },
                    30s));
    return pid;
  };
  const pid_t leftover = spawn(mark);
  const pid_t stranger = spawn(mark + "-other");
  REQUIRE(leftover > 0);
  REQUIRE(stranger > 0);

  REQUIRE(h.Start().ok());
  CHECK(WaitUntil([&] { return ProcessGoneOrZombie(leftover); }, 30s));
  CHECK_FALSE(ProcessGoneOrZombie(stranger));
  CHECK(
      Contains(h.log(), "killed 1 process group(s) left running by tasks of a previous picoflowd"));
  ::kill(stranger, SIGKILL);
}

TEST_CASE("a run resumed after kill -9 still resolves relative paths against its file") {
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  std::filesystem::create_directories(h.Path("project/bin"));
  const std::string tool = h.WriteFile("project/bin/mark.sh", "#!/bin/sh\necho marked\n");
  ::chmod(tool.c_str(), 0755);
  // The YAML comes with its file's absolute path, as picoflowctl sends it.
  auto started = h.Call(method::kRunStart, {{"file", h.Path("project/w.yaml")}, {"source", R"(
name: resumed
config: { retry_default: 0, retry_delay: 1s, kill_grace: 1s }
tasks:
  - name: a
    type: shell
    retry: 1
    config:
      command: |
        if [ -e "$PFIT_DIR/a.quick" ]; then exit 0; fi
        touch "$PFIT_DIR/a.quick"
        sleep 30 & echo $! > "$PFIT_DIR/a.pid"
        wait
  - { name: b, type: shell, depends_on: [a], config: { command: ./bin/mark.sh, args: [] } }
)"}});
  REQUIRE(started.ok());
  const std::int64_t id = (*started)["run_id"];
  REQUIRE(WaitPidFile(h, "a.pid") > 0);
  h.WaitRunState(id, [](const json& r) {
    auto a = AttemptsOf(r, "a");
    return !a.empty() && a[0]["pid"].is_number();
  });
  h.Kill9();
  REQUIRE(h.Start().ok());
  const json run = h.WaitRun(id);
  REQUIRE(run.is_object());
  CHECK(TaskStatuses(run) ==
        std::map<std::string, std::string>{{"a", "succeeded"}, {"b", "succeeded"}});
  auto logs = h.Call(method::kRunLogs, {{"run_id", id}, {"task", "b"}});
  REQUIRE(logs.ok());
  REQUIRE((*logs)["chunks"].size() == 1);
  CHECK((*logs)["chunks"][0]["data"] == "marked\n");
}

TEST_CASE(
    "SIGTERM with a task running stops it, records it interrupted, exits 0, and the next start "
    "resumes the run") {
  DaemonHarness h;
  // The task would sleep 300 s and the daemon's grace is 300 s: only the
  // stop (TERM to the task's group) can end it within the bound below.
  REQUIRE(h.Start({"--shutdown-grace", "300"}).ok());
  // `long` sleeps on its first attempt and succeeds at once on the next.
  const auto id = h.StartRun(R"(
name: interrupted
config: { retry_default: 0, retry_delay: 1s, kill_grace: 1s }
tasks:
  - { name: first, type: shell, config: { command: 'echo once >> "$PFIT_DIR/first.marker"' } }
  - name: long
    type: shell
    depends_on: [first]
    retry: 1
    config:
      command: |
        if [ -e "$PFIT_DIR/long.quick" ]; then echo resumed; exit 0; fi
        touch "$PFIT_DIR/long.quick"
        sleep 300 & echo $! > "$PFIT_DIR/long.pid"
        wait
  - { name: last, type: shell, depends_on: [long], config: { command: 'echo last' } }
)");
  const pid_t sleeper = WaitPidFile(h, "long.pid");
  REQUIRE(sleeper > 0);
  const json before = h.WaitRunState(id, [](const json& r) {
    auto a = AttemptsOf(r, "long");
    return !a.empty() && a[0]["pid"].is_number();
  });
  const pid_t leader = AttemptsOf(before, "long").at(0)["pid"].get<pid_t>();

  const auto t0 = Clock::now();
  CHECK(h.Stop(120s) == 0);
  CHECK(Clock::now() - t0 < 60s);
  CHECK(WaitUntil([&] { return ProcessGoneOrZombie(sleeper) && !ProcessGroupAlive(leader); }, 30s));
  CHECK(Contains(h.log(), "interrupting 1 run"));

  // As after a crash: the next daemon resumes the run without repeating
  // what had finished.
  REQUIRE(h.Start().ok());
  const json run = h.WaitRun(id);
  REQUIRE(run.is_object());
  CHECK(run["status"] == "succeeded");
  CHECK(run["error"] == "");
  CHECK(TaskStatuses(run) == std::map<std::string, std::string>{{"first", "succeeded"},
                                                                {"long", "succeeded"},
                                                                {"last", "succeeded"}});
  CHECK(AttemptStatuses(run, "first") == std::vector<std::string>{"succeeded"});
  CHECK(AttemptStatuses(run, "long") == std::vector<std::string>{"interrupted", "succeeded"});
  CHECK(AttemptStatuses(run, "last") == std::vector<std::string>{"succeeded"});
  CHECK_MESSAGE(Contains(AttemptsOf(run, "long").at(0)["error"], "picoflowd stopped"),
                AttemptsOf(run, "long").at(0)["error"]);
  CHECK(CountLines(h.Path("first.marker")) == 1);
  CHECK(Contains(h.log(), "resuming a run left unfinished"));
}

TEST_CASE(
    "with --on-shutdown cancel, SIGTERM cancels the running task and the run for good, saying why") {
  DaemonHarness h;
  REQUIRE(h.Start({"--shutdown-grace", "300", "--on-shutdown", "cancel"}).ok());
  const auto id = h.StartRun(R"(
name: cancelled
config: { retry_default: 0, kill_grace: 1s }
tasks:
  - { name: long, type: shell, config: { command: 'sleep 300 & echo $! > "$PFIT_DIR/long.pid"; wait' } }
)");
  const pid_t sleeper = WaitPidFile(h, "long.pid");
  REQUIRE(sleeper > 0);
  h.WaitRunState(id, [](const json& r) { return !AttemptsOf(r, "long").empty(); });

  const auto t0 = Clock::now();
  CHECK(h.Stop(120s) == 0);
  CHECK(Clock::now() - t0 < 60s);
  CHECK(WaitUntil([&] { return ProcessGoneOrZombie(sleeper); }, 30s));

  // The run is over for good: a new daemon shows it cancelled, not resumed.
  REQUIRE(h.Start().ok());
  const json run = h.GetRun(id);
  REQUIRE(run.is_object());
  CHECK(run["status"] == "cancelled");
  CHECK(run["error"] == "cancelled: picoflowd stopped");
  CHECK(AttemptStatuses(run, "long") == std::vector<std::string>{"cancelled"});
  auto status = h.Call(method::kDaemonStatus);
  REQUIRE(status.ok());
  CHECK((*status)["active_runs"] == 0);
}

TEST_CASE("SIGTERM with a task that ignores TERM exits within --shutdown-grace") {
  std::string grace;
  SUBCASE("given in seconds") { grace = "1"; }
  SUBCASE("given as a duration, as the config key takes it") { grace = "1s"; }
  DaemonHarness h;
  REQUIRE(h.Start({"--shutdown-grace", grace}).ok());
  // The task would sleep 300 s and its kill_grace is 300 s, both far beyond
  // the daemon's grace: only the hard stop can end the stop within the bound.
  // Resumed, it succeeds at once.
  const auto id = h.StartRun(R"(
name: stubborn
config: { retry_default: 1, retry_delay: 1s, kill_grace: 300s }
tasks:
  - name: deaf
    type: shell
    config:
      command: |
        if [ -e "$PFIT_DIR/deaf.quick" ]; then exit 0; fi
        touch "$PFIT_DIR/deaf.quick"
        trap "" TERM; sleep 300 & echo $! > "$PFIT_DIR/deaf.pid"; wait
)");
  const pid_t sleeper = WaitPidFile(h, "deaf.pid");
  REQUIRE(sleeper > 0);
  h.WaitRunState(id, [](const json& r) { return !AttemptsOf(r, "deaf").empty(); });
  const auto t0 = Clock::now();
  CHECK(h.Stop(120s) == 0);
  const auto took = Clock::now() - t0;
  CHECK(took >= 900ms);  // not before the grace (1 s)
  CHECK(took < 60s);
  CHECK(WaitUntil([&] { return ProcessGoneOrZombie(sleeper); }, 30s));
  REQUIRE(h.Start().ok());
  const json run = h.WaitRun(id);
  REQUIRE(run.is_object());
  CHECK(run["status"] == "succeeded");
  CHECK(AttemptStatuses(run, "deaf") == std::vector<std::string>{"interrupted", "succeeded"});
}

TEST_CASE("stopping the daemon kills what a running task left outside its process group") {
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  // The task runs on after its escapee left the group (and its output).
  const auto id = h.StartRun(R"(
name: lingering
tasks:
  - name: runner
    type: shell
    config:
      command: |
        setsid sh -c 'echo $$ > "$PFIT_DIR/escapee.pid"; exec sleep 300' </dev/null >/dev/null 2>&1 &
        until [ -s "$PFIT_DIR/escapee.pid" ]; do sleep 0.01; done
        exec sleep 300
)");
  REQUIRE(id > 0);
  const pid_t escapee = WaitPidFile(h, "escapee.pid");
  REQUIRE(escapee > 0);
  CHECK_FALSE(ProcessGoneOrZombie(escapee));  // its attempt runs
  CHECK(h.Stop() == 0);
  CHECK(WaitUntil([&] { return ProcessGoneOrZombie(escapee); }, 60s));
}

TEST_CASE(
    "a second daemon on a live socket or state directory refuses to start; a stale socket is replaced") {
  DaemonHarness h;
  REQUIRE(h.Start().ok());

  SUBCASE("same socket, another state directory") {
    const ProcessResult second =
        h.RunProgram(PicoflowdPath(), {"--socket", h.socket(), "--state-dir", h.Path("state2")});
    CHECK_FALSE(second.timed_out);
    CHECK(second.code == 1);
    CHECK_MESSAGE(Contains(second.err, "another picoflowd is already listening on " + h.socket()),
                  second.err);
  }
  SUBCASE("same state directory, another socket") {
    const ProcessResult second = h.RunProgram(
        PicoflowdPath(), {"--socket", h.Path("s2.sock"), "--state-dir", h.state_dir()});
    CHECK_FALSE(second.timed_out);
    CHECK(second.code == 1);
    CHECK_MESSAGE(Contains(second.err, "another picoflowd is using the state directory"),
                  second.err);
    CHECK_FALSE(std::filesystem::exists(h.Path("s2.sock")));
  }
  // The first one never noticed.
  CHECK(h.Call(method::kDaemonStatus).ok());

  SUBCASE("a stale socket file is replaced") {
    REQUIRE(h.Stop() == 0);
    // A socket bound and closed without unlink: nobody listens on it.
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, h.socket().c_str(), sizeof addr.sun_path - 1);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    ::close(fd);
    REQUIRE(std::filesystem::is_socket(h.socket()));
    REQUIRE(h.Start().ok());
    CHECK(Contains(h.log(), "removed stale socket " + h.socket()));
  }
  SUBCASE("a regular file in the socket's place is not removed") {
    REQUIRE(h.Stop() == 0);
    h.WriteFile("s.sock", "not a socket");
    const ProcessResult third =
        h.RunProgram(PicoflowdPath(), {"--socket", h.socket(), "--state-dir", h.state_dir()});
    CHECK(third.code == 1);
    CHECK_MESSAGE(Contains(third.err, "exists and is not a socket"), third.err);
    CHECK(ReadFileText(h.socket()) == "not a socket");
  }
}

TEST_CASE("startup failures print one line naming the fix and exit non-zero") {
  DaemonHarness h;
  const std::string long_socket = h.Path(std::string(110, 'x') + ".sock");
  const ProcessResult too_long =
      h.RunProgram(PicoflowdPath(), {"--socket", long_socket, "--state-dir", h.state_dir()});
  CHECK(too_long.code == 1);
  CHECK_MESSAGE(Contains(too_long.err, "choose a shorter path"), too_long.err);

  std::filesystem::create_directory(h.Path("open"));
  REQUIRE(::chmod(h.Path("open").c_str(), 0777) == 0);
  const ProcessResult open_dir = h.RunProgram(
      PicoflowdPath(), {"--socket", h.Path("open/s.sock"), "--state-dir", h.state_dir()});
  CHECK(open_dir.code == 1);
  CHECK_MESSAGE(Contains(open_dir.err, "chmod 0700 " + h.Path("open")), open_dir.err);

  const ProcessResult no_state =
      h.RunProgram(PicoflowdPath(), {"--socket", h.socket(), "--state-dir", "/proc/no/such/dir"});
  CHECK(no_state.code == 1);
  CHECK_MESSAGE(Contains(no_state.err, "--state-dir"), no_state.err);

  const ProcessResult bad_flag = h.RunProgram(PicoflowdPath(), {"--no-such-flag"});
  CHECK(bad_flag.code == 2);
  for (const ProcessResult* r : {&too_long, &open_dir, &no_state}) {
    CHECK_MESSAGE(std::count(r->err.begin(), r->err.end(), '\n') == 1, r->err);
    CHECK(r->err.rfind("picoflowd: ", 0) == 0);
  }
}

// Lines logged through spdlog directly ("listening on ...", the slow-reader
// warning) are wrapped by the log formatter too.
TEST_CASE("with --log-format json every line of the daemon's log is a JSON object") {
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  const auto id = h.StartRun(R"(
name: logged
config: { retry_default: 0 }
tasks:
  - { name: one, type: shell, config: { command: 'echo hi; exit 3' } }
)");
  CHECK(h.WaitRun(id)["status"] == "failed");
  h.Kill9();
  REQUIRE(h.Start().ok());  // replaces the stale socket
  REQUIRE(h.Stop() == 0);
  std::istringstream lines(h.log());
  int count = 0;
  for (std::string line; std::getline(lines, line); ++count) {
    const json j = json::parse(line, nullptr, false);
    CHECK_MESSAGE((j.is_object() && j.contains("msg") && j.contains("level")), line);
  }
  CHECK(count > 5);
}

namespace {

// A text log line is "YYYY-MM-DD HH:MM:SS.mmm LEVEL message fields".
bool IsTextLogLine(const std::string& line) {
  static const std::string kLevels[] = {"trace ",   "debug ", "info ",
                                        "warning ", "error ", "critical "};
  if (line.size() < 24 || line[4] != '-' || line[10] != ' ' || line[19] != '.') return false;
  const std::string rest = line.substr(24);
  return std::any_of(std::begin(kLevels), std::end(kLevels),
                     [&](const std::string& level) { return rest.starts_with(level); });
}

}  // namespace

TEST_CASE("a crafted value cannot forge a line of the daemon's text log") {
  DaemonHarness h;
  REQUIRE(h.Start({"--log-format", "text", "--log-level", "debug"}).ok());
  const std::string forged = "2030-01-01 00:00:00.000 error forged";
  // A method name (logged when refused) and a program (logged when it cannot
  // start) with the forged line after a newline.
  CHECK_FALSE(h.Call("no.such\n" + forged).ok());
  const auto id = h.StartRun(
      "name: forge\nconfig: { retry_default: 0 }\ntasks:\n"
      "  - { name: t, type: shell, config: { command: \"/no/such\\n" +
      forged + "\", args: [] } }\n");
  CHECK(h.WaitRun(id)["status"] == "failed");
  REQUIRE(h.Stop() == 0);
  const std::string log = h.log();
  std::istringstream lines(log);
  int count = 0;
  for (std::string line; std::getline(lines, line); ++count) {
    CHECK_MESSAGE(IsTextLogLine(line), line);
    CHECK_MESSAGE(!line.starts_with("2030-"), line);
  }
  CHECK(count > 5);
  CHECK_MESSAGE(Contains(log, "unknown method 'no.such\\n" + forged + "'"), log);
  CHECK_MESSAGE(Contains(log, "cannot start '/no/such\\n" + forged + "'"), log);
}

TEST_CASE("a client of another uid is refused cleanly, never left hanging") {
  if (::geteuid() != 0) {
    MESSAGE("skipped: needs root to act as another uid");
    return;
  }
  const passwd* found = ::getpwnam("nobody");
  if (found == nullptr) {
    MESSAGE("skipped: no user 'nobody'");
    return;
  }
  const passwd nobody = *found;
  DaemonHarness h;
  REQUIRE(h.Start().ok());
  const std::string socket = h.socket();

  SUBCASE("the 0700 socket directory keeps it from connecting at all") {
    const ChildReport raw = ForkAs(nobody, [&](std::string& m) { return ProbeDaemon(socket, m); });
    CHECK_MESSAGE(raw.code == kConnectDenied, raw.text);
    const ProcessResult ctl = h.RunProgram(
        PicoflowctlPath(), {"--socket", socket, "daemon", "status"}, 60s, nobody.pw_uid);
    if (ctl.code == 127 && Contains(ctl.err, "exec")) {
      MESSAGE("picoflowctl not executable by nobody here: ", ctl.err);
    } else {
      CHECK_FALSE(ctl.timed_out);
      CHECK(ctl.code == 3);
      CHECK_MESSAGE(Contains(ctl.err, "ermission denied"), ctl.err);
    }
  }
  SUBCASE("with the directory opened up, SO_PEERCRED refuses it") {
    REQUIRE(::chmod(h.dir().c_str(), 0711) == 0);
    REQUIRE(::chmod(socket.c_str(), 0666) == 0);
    const ChildReport raw = ForkAs(nobody, [&](std::string& m) { return ProbeDaemon(socket, m); });
    CHECK_MESSAGE(raw.code == kHandshakeRefused, raw.text);
    CHECK_MESSAGE(Contains(raw.text, "permission denied"), raw.text);
    const ProcessResult ctl =
        h.RunProgram(PicoflowctlPath(), {"--socket", socket, "run", "x"}, 60s, nobody.pw_uid);
    if (ctl.code == 127 && Contains(ctl.err, "exec")) {
      MESSAGE("picoflowctl not executable by nobody here: ", ctl.err);
    } else {
      CHECK_FALSE(ctl.timed_out);
      CHECK(ctl.code == 3);
      CHECK_MESSAGE(Contains(ctl.err, "permission denied"), ctl.err);
    }
  }
  // The daemon serves its owner as before.
  auto status = h.Call(method::kDaemonStatus);
  REQUIRE(status.ok());
  CHECK((*status)["active_runs"] == 0);
}

TEST_CASE("picoflowd --once exits 0 for a succeeding workflow and 1 for a failing one") {
  DaemonHarness h;
  const std::string good = h.WriteFile("good.yaml", R"(
name: once-good
config: { retry_default: 0 }
tasks:
  - { name: hello, type: shell, config: { command: 'echo hello from once' } }
  - { name: after, type: shell, depends_on: [hello], config: { command: 'echo err line >&2' } }
)");
  const std::string bad = h.WriteFile("bad.yaml", R"(
name: once-bad
config: { retry_default: 0 }
tasks:
  - { name: boom, type: shell, config: { command: 'exit 4' } }
  - { name: never, type: shell, depends_on: [boom], config: { command: 'true' } }
)");
  const ProcessResult ok = h.RunProgram(PicoflowdPath(), {"--once", good});
  CHECK(ok.code == 0);
  CHECK_MESSAGE(Contains(ok.out, "[hello] started (attempt 1)"), ok.out);
  CHECK_MESSAGE(Contains(ok.out, "hello | hello from once"), ok.out);
  CHECK_MESSAGE(Contains(ok.out, "after ! err line"), ok.out);
  CHECK_MESSAGE(Contains(ok.out, "[after] finished: succeeded"), ok.out);
  CHECK_MESSAGE(Contains(ok.out, "run 1 succeeded"), ok.out);

  const ProcessResult failed = h.RunProgram(PicoflowdPath(), {"--once", bad});
  CHECK(failed.code == 1);
  CHECK_MESSAGE(Contains(failed.out, "[boom] finished: failed, exit code 4"), failed.out);
  CHECK_MESSAGE(Contains(failed.out, "[never] skipped"), failed.out);
  CHECK_MESSAGE(Contains(failed.out, "run 1 failed"), failed.out);

  const std::string invalid = h.WriteFile("invalid.yaml", "name: broken\ntasks: 3\n");
  const ProcessResult refused = h.RunProgram(PicoflowdPath(), {"--once", invalid});
  CHECK(refused.code == 1);
  CHECK_MESSAGE(Contains(refused.err, "invalid.yaml:2:"), refused.err);
}

}  // namespace picoflow::test
