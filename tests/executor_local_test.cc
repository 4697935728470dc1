#include "picoflowd/exec/executor_local.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "common/workflow.h"
#include "picoflowd/exec/containment.h"
#include "picoflowd/util/uv_handle.h"
#include "tests/executor_test_util.h"
#include "tests/test_cgroup.h"
#include "tests/test_util.h"

namespace picoflow {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

// True when the tests run under qemu-user.
bool UnderEmulation() { return !test::ExecWrapperCommand().empty(); }

// qemu-user runs posix_spawn's CLONE_VFORK child as a plain fork, so
// posix_spawn returns before the exec: a failed exec (or chdir) then shows as
// exit 127 of a started process instead of an error from posix_spawn.
constexpr const char* kNoSpawnErrorsUnderQemu =
    "skipped under qemu-user: its posix_spawn cannot report exec/chdir failures";

using test::Recorder;
using test::TempDir;
using test::TestLoop;

// How long a test waits for an attempt's events: only ends a hang.
constexpr milliseconds kWait = 60s;

// A task that runs `command` through /bin/sh -c.
Task ShellTask(std::string command) {
  Task t;
  t.name = "t";
  t.type = TaskType::kShell;
  ShellConfig config;
  config.command = std::move(command);
  t.config = std::move(config);
  return t;
}

// A task that runs `program` directly with `args`.
Task ProgramTask(std::string program, std::vector<std::string> args) {
  Task t = ShellTask(std::move(program));
  std::get<ShellConfig>(t.config).args = std::move(args);
  return t;
}

ShellConfig& Config(Task& task) { return std::get<ShellConfig>(task.config); }

AttemptSpec Spec(const Task& task, milliseconds timeout = 0ms, milliseconds grace = 300ms) {
  AttemptSpec spec;
  spec.task = &task;
  spec.workflow = "wf";
  spec.run_id = 42;
  spec.attempt = 2;
  spec.timeout = timeout;
  spec.kill_grace = grace;
  return spec;
}

// Starts an attempt and runs the loop until it finished; the recorder holds the results.
void RunToEnd(TestLoop& loop, const AttemptSpec& spec, Recorder& rec) {
  LocalExecutor executor(loop.get());
  rec.attempt = executor.Start(spec, rec);
  CHECK(rec.finished_calls == 0);  // never from inside Start
  REQUIRE(loop.RunUntil([&] { return rec.finished_calls > 0; }, kWait));
}

// The state letter of /proc/PID/stat ('R', 'S', 'Z', ...), or 0 if there is no such process.
char ProcessState(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return 0;
  std::size_t paren = line.rfind(')');
  return paren + 2 < line.size() ? line[paren + 2] : 0;
}

// True once `pid` no longer runs. An orphan becomes a zombie until init reaps
// it, and some inits (containers, this test VM) never do: a zombie counts.
bool ProcessGone(pid_t pid) {
  char state = ProcessState(pid);
  return state == 0 || state == 'Z' || state == 'X';
}

// Polls (10 ms steps) until `pid` is gone or the deadline (a hang detector) passes.
bool WaitGone(pid_t pid, milliseconds limit = 30s) {
  auto deadline = SteadyClock::now() + limit;
  while (!ProcessGone(pid)) {
    if (SteadyClock::now() > deadline) return false;
    timespec ts{0, 10 * 1000 * 1000};
    ::nanosleep(&ts, nullptr);
  }
  return true;
}

pid_t FirstLinePid(const std::string& text) { return static_cast<pid_t>(std::stol(text)); }

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::map<std::string, std::string> ParseEnv(const std::string& text) {
  std::map<std::string, std::string> env;
  for (const std::string& line : Lines(text)) {
    std::size_t eq = line.find('=');
    if (eq != std::string::npos) env[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return env;
}

long VmHwmKib() {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

double Seconds(SteadyClock::duration d) { return std::chrono::duration<double>(d).count(); }

// An upper bound on how long an attempt that a timer (timeout, kill grace,
// drain period) ends may take, on any machine: it only tells "ended by that
// timer" from "ran to its end", which the tasks below put 300 s away.
constexpr double kEndedByTimerS = 30.0;

TEST_CASE("exit code 0 succeeds and any other exit code fails with that code") {
  TestLoop loop;
  Recorder ok, bad;
  Task zero = ShellTask("exit 0");
  Task three = ShellTask("exit 3");
  RunToEnd(loop, Spec(zero), ok);
  RunToEnd(loop, Spec(three), bad);

  CHECK(ok.result->status == AttemptStatus::kSucceeded);
  CHECK(ok.result->exit_code == 0);
  CHECK(ok.result->error.empty());
  CHECK(bad.result->status == AttemptStatus::kFailed);
  CHECK(bad.result->exit_code == 3);
  CHECK_FALSE(bad.result->signal.has_value());
  CHECK(bad.result->error == "exited with code 3");
  CHECK(ok.finished_calls == 1);
  CHECK(ok.started_calls == 1);
}

TEST_CASE("the process is its own group leader in a new session and OnStarted identifies it") {
  TestLoop loop;
  Recorder rec;
  Task task = ShellTask("ps -o pid=,pgid=,sid= -p $$");
  RunToEnd(loop, Spec(task), rec);

  REQUIRE(rec.started.has_value());
  pid_t pid = rec.started->pid;
  CHECK(rec.started->pgid == pid);
  CHECK(rec.started->start_time > 0);
  CHECK(rec.started->boot_id.size() == 36);
  std::istringstream fields(rec.out);
  long p = 0, g = 0, s = 0;
  fields >> p >> g >> s;
  CHECK(std::vector<long>{p, g, s} == std::vector<long>{pid, pid, pid});
}

TEST_CASE("stdout and stderr arrive on their own streams, each in order") {
  TestLoop loop;
  Recorder rec;
  Task task = ShellTask("for i in 1 2 3 4 5; do echo out$i; echo err$i >&2; done; printf tail");
  RunToEnd(loop, Spec(task), rec);

  CHECK(rec.out == "out1\nout2\nout3\nout4\nout5\ntail");
  CHECK(rec.err == "err1\nerr2\nerr3\nerr4\nerr5\n");
  CHECK(rec.result->status == AttemptStatus::kSucceeded);
}

TEST_CASE("a task can open /dev/stdout and /dev/stderr, which are pipes, not sockets") {
  TestLoop loop;
  Recorder rec;
  Task task = ShellTask("echo a > /dev/stdout; echo b > /dev/stderr; echo c | tee /dev/stderr");
  RunToEnd(loop, Spec(task), rec);

  CHECK(rec.out == "a\nc\n");
  CHECK(rec.err == "b\nc\n");
  CHECK(rec.result->status == AttemptStatus::kSucceeded);
}

TEST_CASE(
    "command alone runs through /bin/sh; command with args runs the program without a shell") {
  TestLoop loop;
  Recorder shell, direct;
  Task via_shell = ShellTask("echo $((1+2)) \"a  b\"; exit 4");
  Task no_shell = ProgramTask("printf", {"%s|", "$HOME", "a  b", ";", "exit 4"});
  RunToEnd(loop, Spec(via_shell), shell);
  RunToEnd(loop, Spec(no_shell), direct);

  CHECK(shell.out == "3 a  b\n");
  CHECK(shell.result->exit_code == 4);
  CHECK(direct.out == "$HOME|a  b|;|exit 4|");  // found on PATH, argv untouched
  CHECK(direct.result->status == AttemptStatus::kSucceeded);
}

TEST_CASE("the task gets its env and PICOFLOW_* but not the daemon's systemd variables") {
  const char* daemon_only[] = {"NOTIFY_SOCKET", "WATCHDOG_PID", "WATCHDOG_USEC",
                               "LISTEN_FDS",    "LISTEN_PID",   "LISTEN_FDNAMES"};
  for (const char* name : daemon_only) ::setenv(name, "daemon", 1);
  ::setenv("PICOFLOW_TEST_SHARED", "daemon", 1);
  ::setenv("PICOFLOW_TEST_INHERITED", "yes", 1);
  TestLoop loop;
  Recorder rec;
  Task task = ProgramTask("env", {});
  Config(task).env = {{"FOO", "bar baz"},
                      {"PICOFLOW_TEST_SHARED", "task"},
                      {"PICOFLOW_TASK", "spoofed"},
                      {"PICOFLOW_PARAM_WHO", "the task's"}};
  AttemptSpec spec = Spec(task);
  spec.env = {{"PICOFLOW_PARAM_WHO", "the run's $HOME"}};  // a run's params win over `env`
  RunToEnd(loop, spec, rec);
  for (const char* name : daemon_only) ::unsetenv(name);
  ::unsetenv("PICOFLOW_TEST_SHARED");
  ::unsetenv("PICOFLOW_TEST_INHERITED");

  std::map<std::string, std::string> env = ParseEnv(rec.out);
  CHECK(env["FOO"] == "bar baz");
  CHECK(env["PICOFLOW_TEST_SHARED"] == "task");  // the task's value replaces the daemon's
  CHECK(env["PICOFLOW_TEST_INHERITED"] == "yes");
  CHECK(env["PICOFLOW_WORKFLOW"] == "wf");
  CHECK(env["PICOFLOW_RUN_ID"] == "42");
  CHECK(env["PICOFLOW_TASK"] == "t");  // ours win over the task's
  CHECK(env["PICOFLOW_ATTEMPT"] == "2");
  CHECK(env["PICOFLOW_PARAM_WHO"] == "the run's $HOME");  // not expanded
  for (const char* name : daemon_only) CHECK_MESSAGE(env.count(name) == 0, name);
  auto lines = Lines(rec.out);
  CHECK(std::count_if(lines.begin(), lines.end(), [](const std::string& l) {
          return l.rfind("PICOFLOW_TEST_SHARED=", 0) == 0;
        }) == 1);
}

TEST_CASE("env values expand ${NAME} and $NAME from the daemon's environment, $$ to $") {
  ::setenv("PICOFLOW_TEST_BASE", "/daemon/bin", 1);
  ::unsetenv("PICOFLOW_TEST_UNSET");
  TestLoop loop;
  Recorder rec;
  Task task = ProgramTask("env", {});
  Config(task).env = {{"PICOFLOW_TEST_BASE", "/task/bin:${PICOFLOW_TEST_BASE}"},
                      {"PICOFLOW_TEST_AFTER", "$PICOFLOW_TEST_BASE"},
                      {"PICOFLOW_TEST_UNSET", "[${PICOFLOW_TEST_UNSET}]"},
                      {"PICOFLOW_TEST_LITERAL", "$$5 $ ${ $1"}};
  RunToEnd(loop, Spec(task), rec);
  ::unsetenv("PICOFLOW_TEST_BASE");

  std::map<std::string, std::string> env = ParseEnv(rec.out);
  CHECK(env["PICOFLOW_TEST_BASE"] == "/task/bin:/daemon/bin");
  // The daemon's value, not the one the task sets just before.
  CHECK(env["PICOFLOW_TEST_AFTER"] == "/daemon/bin");
  CHECK(env["PICOFLOW_TEST_UNSET"] == "[]");
  CHECK(env["PICOFLOW_TEST_LITERAL"] == "$5 $ ${ $1");
}

TEST_CASE("workdir becomes the task's current directory") {
  TempDir dir;
  TestLoop loop;
  Recorder rec;
  Task task = ShellTask("pwd -P");
  Config(task).workdir = dir.path();
  RunToEnd(loop, Spec(task), rec);

  CHECK(rec.out == std::filesystem::canonical(dir.path()).string() + "\n");
}

TEST_CASE("a missing program fails on a later loop iteration with a clear error") {
  TestLoop loop;
  Recorder by_path, on_path;
  Task absolute = ProgramTask("/nope", {});
  Task searched = ProgramTask("picoflow-no-such-program", {"x"});
  RunToEnd(loop, Spec(absolute), by_path);
  RunToEnd(loop, Spec(searched), on_path);

  CHECK(on_path.result->error ==
        "cannot start 'picoflow-no-such-program': no such file or directory (not found in the "
        "task's PATH)");
  if (UnderEmulation()) {
    MESSAGE(kNoSpawnErrorsUnderQemu);
    return;
  }
  CHECK(by_path.result->status == AttemptStatus::kFailed);
  CHECK(by_path.result->error == "cannot start '/nope': no such file or directory");
  CHECK_FALSE(by_path.result->exit_code.has_value());
  CHECK(by_path.started_calls == 0);
}

TEST_CASE("a program with args is looked up in the task's own PATH, not the daemon's") {
  TempDir dir;
  const std::string bin = dir.path() + "/bin";
  const std::string nox = dir.path() + "/nox";
  std::filesystem::create_directories(bin);
  std::filesystem::create_directories(nox);
  std::ofstream(bin + "/picoflow-hello") << "#!/bin/sh\necho hello \"$1\"\n";
  std::filesystem::permissions(bin + "/picoflow-hello", std::filesystem::perms::owner_all);
  std::ofstream(nox + "/picoflow-hello") << "#!/bin/sh\necho wrong\n";  // not executable
  TestLoop loop;
  Recorder found, denied;
  Task task = ProgramTask("picoflow-hello", {"x"});
  Config(task).env = {{"PATH", nox + "::" + bin}};  // skips the non-executable match
  RunToEnd(loop, Spec(task), found);
  Task only_nox = ProgramTask("picoflow-hello", {"x"});
  Config(only_nox).env = {{"PATH", nox}};
  RunToEnd(loop, Spec(only_nox), denied);

  CHECK(found.out == "hello x\n");
  CHECK(found.result->status == AttemptStatus::kSucceeded);
  CHECK(denied.result->error ==
        "cannot start 'picoflow-hello': permission denied (is it executable? chmod +x "
        "'picoflow-hello')");
}

TEST_CASE("destroying an attempt whose start failed reports nothing and leaks no handle") {
  TestLoop loop;
  Recorder rec;
  rec.destroy_on_finish = false;
  Task task = ProgramTask("/nope", {});
  LocalExecutor executor(loop.get());
  rec.attempt = executor.Start(Spec(task), rec);
  rec.attempt.reset();
  loop.RunUntil([] { return false; }, 50ms);

  CHECK(rec.finished_calls == 0);
}

TEST_CASE("a missing workdir fails with an error that names the workdir") {
  if (UnderEmulation()) {
    MESSAGE(kNoSpawnErrorsUnderQemu);
    return;
  }
  TempDir dir;
  TestLoop loop;
  Recorder rec;
  std::string missing = dir.path() + "/gone";
  Task task = ShellTask("true");
  Config(task).workdir = missing;
  RunToEnd(loop, Spec(task), rec);

  CHECK(rec.result->status == AttemptStatus::kFailed);
  CHECK(rec.result->error ==
        "cannot start '/bin/sh': workdir '" + missing + "': no such file or directory");
  CHECK(rec.started_calls == 0);
}

TEST_CASE("a task killed by a signal fails with that signal") {
  TestLoop loop;
  Recorder rec;
  Task task = ShellTask("kill -KILL $$");
  RunToEnd(loop, Spec(task), rec);

  CHECK(rec.result->status == AttemptStatus::kFailed);
  CHECK(rec.result->signal == SIGKILL);
  CHECK_FALSE(rec.result->exit_code.has_value());
  CHECK(rec.result->error == "killed by SIGKILL");
}

TEST_CASE("a timeout terminates the whole group, the shell's sleep grandchild included") {
  TestLoop loop;
  Recorder rec;
  Task task = ShellTask("sleep 300 & echo $!; wait");
  auto begin = SteadyClock::now();
  RunToEnd(loop, Spec(task, 400ms, 300ms), rec);

  CHECK(rec.result->status == AttemptStatus::kTimeout);
  // "(SIGTERM)", or "(SIGTERM, then SIGKILL after 300ms grace)" when the
  // dying group outlived the grace on a slow machine.
  CHECK(rec.result->error.rfind("timed out after 400ms (SIGTERM", 0) == 0);
  CHECK(rec.result->signal == SIGTERM);  // the shell died of the TERM, not the KILL
  CHECK(Seconds(SteadyClock::now() - begin) < kEndedByTimerS);
  pid_t grandchild = FirstLinePid(rec.out);
  CHECK(WaitGone(grandchild));
}

TEST_CASE("a group that exits on SIGTERM finishes at once, without waiting for the grace period") {
  TestLoop loop;
  Recorder rec;
  Task task = ProgramTask("sleep", {"300"});
  auto begin = SteadyClock::now();
  // A grace far longer than any machine needs to end `sleep` with a TERM.
  RunToEnd(loop, Spec(task, 200ms, 300s), rec);

  CHECK(rec.result->status == AttemptStatus::kTimeout);
  CHECK(rec.result->signal == SIGTERM);
  CHECK(Seconds(SteadyClock::now() - begin) < kEndedByTimerS);
}

TEST_CASE(
    "a member still dying when the leader exits on SIGTERM is waited for, not the whole grace") {
  TestLoop loop;
  Recorder rec;
  rec.destroy_on_finish = false;
  TempDir dir;
  const std::string go = dir.File("go");
  // The leader (sleep, exec'd) dies of the TERM at once; the background
  // member takes the TERM and lingers, with the pipes closed, until the test
  // lets it go: past the leader's exit, as a member slow to die under load.
  Task task = ShellTask("(trap 'while [ ! -e " + go +
                        " ]; do sleep 0.01; done; exit 0' TERM; echo ready; "
                        "exec >/dev/null 2>&1; while :; do sleep 0.01; done) & exec sleep 300");
  LocalExecutor executor(loop.get());
  rec.attempt = executor.Start(Spec(task, 0ms, 300s), rec);  // a grace no test waits out
  REQUIRE(loop.RunUntil([&] { return rec.out == "ready\n"; }, kWait));
  REQUIRE(rec.started.has_value());
  const pid_t leader = rec.started->pid;
  rec.attempt->Cancel();
  // The leader is reaped (its exit seen, the member alive) before the member may end.
  REQUIRE(loop.RunUntil([&] { return ProcessState(leader) == 0; }, kWait));
  CHECK(!rec.result);
  std::ofstream(go) << "";
  // Without re-checking the group, the attempt would wait out the 300 s grace.
  REQUIRE(loop.RunUntil([&] { return rec.finished_calls > 0; }, kWait));
  CHECK(rec.result->status == AttemptStatus::kCancelled);
  CHECK(rec.result->signal == SIGTERM);
  CHECK(rec.finished_calls == 1);
}

TEST_CASE("a task that ignores SIGTERM gets SIGKILL when the grace period ends") {
  TestLoop loop;
  Recorder rec;
  Task task = ShellTask("trap '' TERM; sleep 300");
  auto begin = SteadyClock::now();
  RunToEnd(loop, Spec(task, 300ms, 400ms), rec);

  CHECK(rec.result->status == AttemptStatus::kTimeout);
  CHECK(rec.result->signal == SIGKILL);
  CHECK(Seconds(SteadyClock::now() - begin) >= 0.6);  // 0.3 without the grace
  CHECK(rec.result->error == "timed out after 300ms (SIGTERM, then SIGKILL after 400ms grace)");
}

TEST_CASE("cancel terminates the group and reports cancelled; later cancels change nothing") {
  TestLoop loop;
  Recorder rec;
  rec.destroy_on_finish = false;
  Task task = ShellTask("echo ready; sleep 30");
  LocalExecutor executor(loop.get());
  rec.attempt = executor.Start(Spec(task), rec);
  REQUIRE(loop.RunUntil([&] { return rec.out == "ready\n"; }, kWait));
  rec.attempt->Cancel();
  rec.attempt->Cancel();
  REQUIRE(loop.RunUntil([&] { return rec.finished_calls > 0; }, kWait));
  rec.attempt->Cancel();
  loop.RunUntil([] { return false; }, 50ms);

  CHECK(rec.result->status == AttemptStatus::kCancelled);
  CHECK(rec.result->error == "cancelled");
  CHECK(rec.result->signal == SIGTERM);
  CHECK(rec.finished_calls == 1);
}

TEST_CASE("a background grandchild holding stdout open is killed when the drain period ends") {
  TestLoop loop;
  Recorder rec;
  Task task = ShellTask("sleep 300 & echo $!; echo done");
  auto begin = SteadyClock::now();
  RunToEnd(loop, Spec(task), rec);
  double took = Seconds(SteadyClock::now() - begin);

  CHECK(rec.result->status == AttemptStatus::kSucceeded);
  CHECK(Lines(rec.out).size() == 2);
  CHECK(Lines(rec.out).back() == "done");
  CHECK(took >= 0.45);  // the drain period (0.5 s) was waited out
  CHECK(took < kEndedByTimerS);
  CHECK(WaitGone(FirstLinePid(rec.out)));
}

TEST_CASE("50 MB of output is drained in chunks as it arrives, never buffered by the executor") {
  TestLoop loop;
  Recorder rec;
  rec.keep_output = false;
  Task task = ShellTask("head -c 1048576 /dev/zero >&2 & head -c 52428800 /dev/zero; wait");
  long hwm_before = VmHwmKib();
  RunToEnd(loop, Spec(task), rec);

  CHECK(rec.result->status == AttemptStatus::kSucceeded);
  CHECK(rec.out_bytes == 52428800u);
  CHECK(rec.err_bytes == 1048576u);
  CHECK(rec.max_chunk <= 64u * 1024u);
  CHECK(VmHwmKib() - hwm_before < 16 * 1024);
}

TEST_CASE("the task sees only fds 0-2, even fds the daemon left inheritable") {
  int leaked = ::open("/dev/null", O_RDONLY);  // no O_CLOEXEC, on purpose
  REQUIRE(leaked >= 3);
  int high = ::dup2(leaked, 200);  // dup2 never sets FD_CLOEXEC
  REQUIRE(high == 200);
  TestLoop loop;
  Recorder rec;
  rec.destroy_on_finish = false;
  // Looked at once the shell runs its script: a program that is still
  // starting (ld.so, locale files) has fds of its own open for a moment.
  Task task = ShellTask("echo ready; sleep 30; true");
  LocalExecutor executor(loop.get());
  rec.attempt = executor.Start(Spec(task), rec);
  REQUIRE(loop.RunUntil([&] { return rec.out == "ready\n"; }, kWait));

  std::set<std::string> fds;
  std::string dir = "/proc/" + std::to_string(rec.started->pid) + "/fd";
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    fds.insert(entry.path().filename().string());
  }
  std::string listed;
  for (const std::string& fd : fds) listed += fd + " ";
  CHECK_MESSAGE(listed == "0 1 2 ", "fds: ", listed);
  CHECK(std::filesystem::read_symlink(dir + "/0") == "/dev/null");
  rec.attempt->Cancel();
  REQUIRE(loop.RunUntil([&] { return rec.finished_calls > 0; }, kWait));
  ::close(leaked);
  ::close(high);
}

TEST_CASE("the task starts with an empty signal mask and default signal dispositions") {
  sigset_t block, old_mask;
  sigemptyset(&block);
  sigaddset(&block, SIGTERM);
  sigaddset(&block, SIGUSR1);
  REQUIRE(::sigprocmask(SIG_BLOCK, &block, &old_mask) == 0);
  auto old_pipe = ::signal(SIGPIPE, SIG_IGN);
  auto old_hup = ::signal(SIGHUP, SIG_IGN);
  TestLoop loop;
  Recorder rec;
  Task task = ProgramTask("grep", {"^Sig", "/proc/self/status"});
  RunToEnd(loop, Spec(task), rec);
  ::signal(SIGPIPE, old_pipe);
  ::signal(SIGHUP, old_hup);
  ::sigprocmask(SIG_SETMASK, &old_mask, nullptr);

  std::map<std::string, std::string> sig;
  for (const std::string& line : Lines(rec.out)) {
    std::size_t colon = line.find(':');
    sig[line.substr(0, colon)] = line.substr(line.find_first_not_of(" \t", colon + 1));
  }
  CHECK(sig["SigBlk"] == "0000000000000000");
  CHECK(sig["SigIgn"] == "0000000000000000");
}

TEST_CASE("destroying an attempt mid-run kills its group, reaps it and reports nothing more") {
  TestLoop loop;
  Recorder rec;
  rec.destroy_on_finish = false;
  Task task = ShellTask("sleep 30 & echo $!; wait");
  LocalExecutor executor(loop.get());
  rec.attempt = executor.Start(Spec(task), rec);
  REQUIRE(loop.RunUntil([&] { return rec.out.find('\n') != std::string::npos; }, kWait));
  pid_t leader = rec.started->pid;
  pid_t grandchild = FirstLinePid(rec.out);
  rec.attempt.reset();

  // The reaper still reaps the leader after the attempt is gone: no zombie is left.
  CHECK(loop.RunUntil([&] { return ProcessState(leader) == 0; }, kWait));
  CHECK(WaitGone(grandchild));
  CHECK(rec.finished_calls == 0);
}

TEST_CASE("the loop stays alive while a task runs with its output already closed") {
  TestLoop loop;
  Recorder rec;
  Task task = ShellTask("exec >/dev/null 2>&1; sleep 0.3");
  LocalExecutor executor(loop.get());
  rec.attempt = executor.Start(Spec(task), rec);
  uv_run(loop.get(), UV_RUN_DEFAULT);  // returns once nothing keeps the loop alive

  CHECK(rec.finished_calls == 1);
  REQUIRE(rec.result.has_value());
  CHECK(rec.result->status == AttemptStatus::kSucceeded);
}

// The escapee of the tests below: a shell that leaves the task's session
// and process group (setsid), writes its pid to `pid_file` from there and
// sleeps. The task prints that pid, and only once it is written, so no kill
// of the group can come first however slowly the escapee starts. With
// `hold_output` it keeps the task's stdout open (so the drain period ends
// the attempt), else its stdio is /dev/null. `prefix` goes before setsid.
std::string EscapeeCommand(const std::string& pid_file, bool hold_output,
                           const std::string& prefix = "") {
  return prefix + "setsid sh -c 'echo $$ > " + pid_file + "; exec sleep 300'" +
         (hold_output ? "" : " </dev/null >/dev/null 2>&1") + " & until [ -s " + pid_file +
         " ]; do sleep 0.01; done; cat " + pid_file;
}

// A subreaper containment, as the daemon sets one up without a delegated cgroup.
std::unique_ptr<Containment> Subreaper() {
  auto containment = SubreaperContainment("", "no cgroup in this test");
  REQUIRE(containment->mode() == ContainmentMode::kSubreaper);
  return containment;
}

// Runs `loop` until `pid` no longer exists: killed, and reaped by us (a
// subreaper's reaper) or by init. A zombie is not gone here.
bool RunUntilReaped(TestLoop& loop, pid_t pid) {
  return loop.RunUntil([pid] { return ProcessState(pid) == 0; }, kWait);
}

TEST_CASE(
    "without containment, a process that leaves the group with setsid escapes the kill, yet "
    "the attempt finishes") {
  TempDir dir;
  TestLoop loop;
  Recorder rec;
  // The escapee holds stdout open: the drain period ends the attempt, and
  // the group kill cannot reach it in its own session.
  Task task = ShellTask(EscapeeCommand("escapee.pid", true));
  Config(task).workdir = dir.path();
  auto begin = SteadyClock::now();
  RunToEnd(loop, Spec(task), rec);
  pid_t escapee = FirstLinePid(rec.out);

  CHECK(rec.result->status == AttemptStatus::kSucceeded);
  CHECK(Seconds(SteadyClock::now() - begin) < kEndedByTimerS);
  CHECK_FALSE(ProcessGone(escapee));
  ::kill(escapee, SIGKILL);  // what the executor cannot do
  CHECK(WaitGone(escapee));
}

TEST_CASE("as a subreaper, a setsid escapee holding the output is killed when its attempt ends") {
  TempDir dir;
  TestLoop loop;
  Recorder rec;
  Task task = ShellTask(EscapeeCommand("escapee.pid", true));
  Config(task).workdir = dir.path();
  LocalExecutor executor(loop.get(), "", Subreaper());
  rec.attempt = executor.Start(Spec(task), rec);
  REQUIRE(loop.RunUntil([&] { return rec.finished_calls > 0; }, kWait));
  const pid_t escapee = FirstLinePid(rec.out);

  CHECK(rec.result->status == AttemptStatus::kSucceeded);
  // Killed at the attempt's end and, re-parented to us, reaped by our reaper.
  CHECK(RunUntilReaped(loop, escapee));
}

TEST_CASE("as a subreaper, a setsid escapee that let go of the output dies with its attempt") {
  TempDir dir;
  TestLoop loop;
  Recorder rec;
  Task task = ShellTask(EscapeeCommand("escapee.pid", false));
  Config(task).workdir = dir.path();
  LocalExecutor executor(loop.get(), "", Subreaper());
  rec.attempt = executor.Start(Spec(task), rec);
  REQUIRE(loop.RunUntil([&] { return rec.finished_calls > 0; }, kWait));
  const pid_t escapee = FirstLinePid(rec.out);

  CHECK(rec.result->status == AttemptStatus::kSucceeded);
  CHECK(RunUntilReaped(loop, escapee));
}

TEST_CASE("as a subreaper, an attempt's end spares what another live attempt left its group") {
  TempDir dir;
  TestLoop loop;
  LocalExecutor executor(loop.get(), "", Subreaper());
  // `long` keeps running after its escapee is out; `short` ends at once.
  Task long_task = ShellTask(EscapeeCommand("long.pid", false) + "; exec sleep 300");
  long_task.name = "long";
  Config(long_task).workdir = dir.path();
  Task short_task = ShellTask(EscapeeCommand("short.pid", false));
  short_task.name = "short";
  Config(short_task).workdir = dir.path();
  Recorder long_rec, short_rec;
  long_rec.attempt = executor.Start(Spec(long_task), long_rec);
  REQUIRE(loop.RunUntil([&] { return long_rec.out.find('\n') != std::string::npos; }, kWait));
  short_rec.attempt = executor.Start(Spec(short_task), short_rec);
  REQUIRE(loop.RunUntil([&] { return short_rec.finished_calls > 0; }, kWait));
  const pid_t long_escapee = FirstLinePid(long_rec.out);
  const pid_t short_escapee = FirstLinePid(short_rec.out);

  CHECK(RunUntilReaped(loop, short_escapee));
  CHECK_FALSE(ProcessGone(long_escapee));  // its attempt lives
  long_rec.attempt->Cancel();
  REQUIRE(loop.RunUntil([&] { return long_rec.finished_calls > 0; }, kWait));
  CHECK(long_rec.result->status == AttemptStatus::kCancelled);
  CHECK(RunUntilReaped(loop, long_escapee));
}

TEST_CASE("as a subreaper, an escapee without the marks dies once no attempt lives") {
  TempDir dir;
  TestLoop loop;
  LocalExecutor executor(loop.get(), "", Subreaper());
  Task keeper = ShellTask("echo started; exec sleep 300");
  keeper.name = "keeper";
  // env -u: the escapee carries no PICOFLOW_RUN_ID, so no attempt is known
  // to be its; while `keeper` lives, it could be keeper's.
  Task task = ShellTask(EscapeeCommand("escapee.pid", false, "env -u PICOFLOW_RUN_ID "));
  Config(task).workdir = dir.path();
  Recorder keeper_rec, rec;
  keeper_rec.attempt = executor.Start(Spec(keeper), keeper_rec);
  REQUIRE(loop.RunUntil([&] { return keeper_rec.out == "started\n"; }, kWait));
  rec.attempt = executor.Start(Spec(task), rec);
  REQUIRE(loop.RunUntil([&] { return rec.finished_calls > 0; }, kWait));
  const pid_t escapee = FirstLinePid(rec.out);

  CHECK_FALSE(ProcessGone(escapee));
  keeper_rec.attempt->Cancel();
  REQUIRE(loop.RunUntil([&] { return keeper_rec.finished_calls > 0; }, kWait));
  CHECK(RunUntilReaped(loop, escapee));
}

TEST_CASE("as a subreaper, destroying a running attempt kills its escapee too") {
  TempDir dir;
  TestLoop loop;
  LocalExecutor executor(loop.get(), "", Subreaper());
  Recorder rec;
  rec.destroy_on_finish = false;
  Task task = ShellTask(EscapeeCommand("escapee.pid", false) + "; exec sleep 300");
  Config(task).workdir = dir.path();
  rec.attempt = executor.Start(Spec(task), rec);
  REQUIRE(loop.RunUntil([&] { return rec.out.find('\n') != std::string::npos; }, kWait));
  const pid_t leader = rec.started->pid;
  const pid_t escapee = FirstLinePid(rec.out);
  rec.attempt.reset();  // as the daemon does when its shutdown grace is over

  CHECK(RunUntilReaped(loop, escapee));
  CHECK(RunUntilReaped(loop, leader));
  CHECK(rec.finished_calls == 0);
}

TEST_CASE("in a cgroup of its own, an attempt runs there and its escapee dies with the cgroup") {
  std::string why;
  const std::optional<std::string> mount = test::WritableCgroup2(why);
  if (!mount) {
    MESSAGE("skipped: ", why);
    return;
  }
  test::TestCgroup base(*mount, false);
  TempDir dir;
  TestLoop loop;
  Recorder rec;
  // The task prints its escapee's pid, then its own cgroup.
  Task task = ShellTask(EscapeeCommand("escapee.pid", true) + "; grep ^0:: /proc/self/cgroup");
  Config(task).workdir = dir.path();
  {
    LocalExecutor executor(loop.get(), "", CgroupContainment(loop.get(), base.path(), "test"));
    REQUIRE(executor.containment()->mode() == ContainmentMode::kCgroup);
    rec.attempt = executor.Start(Spec(task), rec);
    REQUIRE(loop.RunUntil([&] { return rec.finished_calls > 0; }, kWait));
    CHECK(rec.result->status == AttemptStatus::kSucceeded);
    const std::vector<std::string> lines = Lines(rec.out);
    REQUIRE(lines.size() == 2);
    const std::string cgroup = base.relative(*mount) + "/attempt-42-t-2";
    CHECK(lines[1] == "0::" + cgroup);
    const pid_t escapee = FirstLinePid(lines[0]);
    CHECK(WaitGone(escapee));  // its parent is init, which may not reap it
    // The attempt's cgroup goes once it is empty.
    CHECK(loop.RunUntil([&] { return test::TestCgroup::Children(base.path()).empty(); }, kWait));
  }
}

}  // namespace
}  // namespace picoflow
