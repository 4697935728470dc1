#pragma once
// DaemonHarness: one real picoflowd per test, on a socket in a private
// temporary directory, driven through protocol/Client and picoflowctl. Owns
// the directory, the daemon process and everything the daemon started: the
// destructor stops the daemon, kills any process left with this test's
// environment marker, and removes the directory. When the test case failed,
// it prints the daemon's log first.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/result.h"
#include "protocol/client.h"
#include "protocol/jsonrpc.h"
#include "tests/test_util.h"

namespace picoflow::test {

using namespace std::chrono_literals;
using Millis = std::chrono::milliseconds;

/// Polls `predicate` every `interval` until it returns true or `timeout`
/// passes. Returns the predicate's last value. Every timeout in these tests
/// only ends a hang: it is far longer than any machine needs, and a wait
/// that succeeds returns at once.
bool WaitUntil(const std::function<bool()>& predicate, Millis timeout, Millis interval = 20ms);

/// The outcome of a child program: its exit code (128 + signal if killed,
/// -1 if it was still running at the deadline and had to be killed), and what
/// it wrote.
struct ProcessResult {
  int code = -1;
  std::string out;
  std::string err;
  bool timed_out = false;
};

/// A process state letter from /proc/PID/stat ('R', 'S', 'Z', ...), or '\0'
/// when the pid does not exist.
char ProcessState(pid_t pid);

/// True if `pid` is gone or a zombie (this container's pid 1 does not reap
/// orphans, so a killed orphan may stay a zombie for ever).
bool ProcessGoneOrZombie(pid_t pid);

/// True if any process of group `pgid` is alive and not a zombie.
bool ProcessGroupAlive(pid_t pgid);

/// VmRSS of `pid` in kB, or -1.
long ResidentKb(pid_t pid);

/// Reads a whole file; empty if it does not exist.
std::string ReadFileText(const std::string& path);

/// One interval a task recorded with trace.sh (see DaemonHarness::WriteTraceScript).
struct Span {
  std::string task;
  int attempt = 0;
  double start = 0;  ///< seconds since the epoch
  double end = 0;    ///< 0 if the task never wrote its end line
};

/// Reads the trace file, spans in the order they started.
std::vector<Span> ReadTrace(const std::string& path);

/// The largest number of spans open at the same instant.
int MaxOverlap(const std::vector<Span>& spans);

/// From a run.get result: task name -> status.
std::map<std::string, std::string> TaskStatuses(const json& run);
/// From a run.get result: task name -> its whole record.
std::map<std::string, json> TasksByName(const json& run);
/// From a run.get result: the attempts of one task, in order.
std::vector<json> AttemptsOf(const json& run, const std::string& task);
/// From a run.get result: attempt statuses of one task, in order.
std::vector<std::string> AttemptStatuses(const json& run, const std::string& task);
/// From a run.get result: task names in the order their first attempt began.
std::vector<std::string> StartOrder(const json& run);

class DaemonHarness {
 public:
  /// Makes the private directory (/tmp/pfit-XXXXXX); starts nothing.
  DaemonHarness();
  /// Stops the daemon (SIGKILL if SIGTERM is not enough), kills every process
  /// that still carries this harness's PFIT_DIR, removes the directory; dumps
  /// the daemon log first if the current test case has failed.
  ~DaemonHarness();
  DaemonHarness(const DaemonHarness&) = delete;
  DaemonHarness& operator=(const DaemonHarness&) = delete;

  /// The private directory; also `$PFIT_DIR` in every child's environment.
  const std::string& dir() const { return dir_; }
  /// DIR/s.sock.
  std::string socket() const { return dir_ + "/s.sock"; }
  /// DIR/state.
  std::string state_dir() const { return dir_ + "/state"; }
  /// DIR/NAME.
  std::string Path(const std::string& name) const { return dir_ + "/" + name; }
  /// Writes DIR/NAME and returns its path.
  std::string WriteFile(const std::string& name, const std::string& content) const;
  /// Writes DIR/trace.sh; a task running `sh "$PFIT_DIR/trace.sh" SECONDS
  /// [EXIT]` appends "TASK ATTEMPT start|end EPOCH" lines to DIR/trace
  /// around a sleep of SECONDS, then exits with EXIT (default 0).
  void WriteTraceScript() const;
  /// ReadTrace(DIR/trace).
  std::vector<Span> Trace() const { return ReadTrace(Path("trace")); }

  /// Starts picoflowd with `--socket DIR/s.sock --state-dir DIR/state
  /// --log-format json` (unless `extra_args` give a --log-format) plus `extra_args`, stderr
  /// appended to DIR/daemon.log, and waits (deadline `timeout`) until daemon.version answers.
  /// Returns an Error if the daemon exited or never answered (the log is in log()).
  Status Start(const std::vector<std::string>& extra_args = {}, Millis timeout = 60s);
  /// Starts the next daemons in cgroup v2 directory `dir` (they move
  /// themselves into it before they exec, as systemd starts a unit), or
  /// where the test runs with "".
  void set_cgroup(std::string dir) { cgroup_ = std::move(dir); }
  /// SIGTERM, then waits up to `timeout` for the exit. Returns the exit code
  /// (128 + signal if killed by one), or -1 if it did not exit in time (it is
  /// SIGKILLed then). Returns 0 if no daemon runs.
  int Stop(Millis timeout = 60s);
  /// SIGKILL and reap: a crash, leaving the socket file and running tasks.
  void Kill9();
  /// Stop() then Start() with the same arguments. Returns Start's result, or
  /// an Error if the stop did not exit 0.
  Status Restart(Millis timeout = 60s);
  /// The daemon's pid, or -1.
  pid_t pid() const { return pid_; }
  /// True while the daemon process has not exited (reaps it if it has).
  bool Alive();

  /// Calls a method on the harness's own connection (reconnecting if it
  /// broke). Errors as Client::Call; kUnavailable after `timeout`.
  Result<json> Call(const std::string& method, const json& params = json::object(),
                    Millis timeout = 60s);
  /// The error object of the last failed Call, if it was an RPC error.
  std::optional<RpcError> last_rpc_error() const { return client_.last_rpc_error(); }

  /// run.start of inline YAML; returns the run id (0 on error, with a failed
  /// doctest CHECK).
  std::int64_t StartRun(const std::string& yaml);
  /// Waits for a run to end (run.wait, bounded by `timeout`) and returns it as
  /// run.get does; a null json on timeout or error (with a failed CHECK).
  json WaitRun(std::int64_t run_id, Millis timeout = 120s);
  /// run.get; null json on error.
  json GetRun(std::int64_t run_id);
  /// Polls run.get until `predicate(run)` holds; returns the last run.
  json WaitRunState(std::int64_t run_id, const std::function<bool(const json&)>& predicate,
                    Millis timeout = 60s);

  /// Runs picoflowctl `--socket DIR/s.sock ARGS...` (stdin /dev/null),
  /// killed at the deadline.
  ProcessResult RunCtl(const std::vector<std::string>& args, Millis timeout = 60s);
  /// RunCtl on a pseudo-terminal (stdin, stdout and stderr all on it, so
  /// `out` holds both; "\r\n" read back as "\n"), with child_env() less
  /// NO_COLOR, TERM=xterm, and `extra_env` ("NAME=value", replacing those of
  /// the same name): what a person at a terminal sees.
  ProcessResult RunCtlInTerminal(const std::vector<std::string>& args,
                                 const std::vector<std::string>& extra_env = {},
                                 Millis timeout = 60s);
  /// RunCtl with `input` on its standard input.
  ProcessResult RunCtlWithInput(const std::string& input, const std::vector<std::string>& args,
                                Millis timeout = 60s);
  /// A picoflowctl started in the background (StartCtl): its pid and the
  /// files its output goes to, readable while it runs.
  struct Background {
    pid_t pid = -1;
    std::string out_path;
    std::string err_path;
  };
  /// Starts picoflowctl `--socket DIR/s.sock ARGS...` (stdin /dev/null) and
  /// returns at once; end it with FinishCtl (the destructor kills it too).
  Background StartCtl(const std::vector<std::string>& args);
  /// Waits for a StartCtl program to exit (SIGKILL at the deadline) and
  /// returns its result, as RunCtl does.
  ProcessResult FinishCtl(const Background& program, Millis timeout = 60s);
  /// Runs any program with this harness's environment, optionally as `uid`
  /// (with that account's primary group and no supplementary groups), its
  /// standard input read from `stdin_path`.
  ProcessResult RunProgram(const std::string& path, const std::vector<std::string>& args,
                           Millis timeout = 60s, std::optional<uid_t> uid = std::nullopt,
                           const std::string& stdin_path = "/dev/null");

  /// Everything the daemon(s) wrote to stderr so far.
  std::string log() const;
  /// Prints the daemon log to stderr, framed with the directory name.
  void DumpLog() const;

  /// The environment children get: ours, with HOME/XDG_* pointing into dir(),
  /// PFIT_DIR=dir(), and no PICOFLOW_SOCKET / NOTIFY_SOCKET / LISTEN_*.
  const std::vector<std::string>& child_env() const { return env_; }

 private:
  int WaitExit(Millis timeout);
  void KillLeftovers();

  std::string dir_;
  std::vector<std::string> env_;
  std::vector<std::string> args_;  ///< extra args of the last Start()
  std::string cgroup_;             ///< set_cgroup()
  pid_t pid_ = -1;
  Client client_;
  int spawned_ = 0;  ///< numbers the output files of RunProgram
};

/// Returns the path of the picoflowd / picoflowctl binaries meson passed in.
const char* PicoflowdPath();
const char* PicoflowctlPath();

/// The command that runs this build's programs, split at spaces from
/// $PICOFLOW_TEST_EXEC_WRAPPER (its first word an absolute path; cross/test.sh
/// sets it to the qemu-user emulator of an ARM build); empty when they run
/// natively. The harness puts it before picoflowd and picoflowctl.
const std::vector<std::string>& ExecWrapper();

}  // namespace picoflow::test
