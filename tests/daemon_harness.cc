#include "tests/daemon_harness.h"

#include <dirent.h>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pty.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "protocol/methods.h"

extern char** environ;

namespace picoflow::test {
namespace {

using Clock = std::chrono::steady_clock;

// Set by the listener below when an assertion of the current test case
// fails; the harness destructor then prints the daemon log.
bool g_test_failed = false;

/// Watches assertions so a harness knows whether its test case failed.
struct FailureListener final : doctest::IReporter {
  explicit FailureListener(const doctest::ContextOptions&) {}
  void report_query(const doctest::QueryData&) override {}
  void test_run_start() override {}
  void test_run_end(const doctest::TestRunStats&) override {}
  void test_case_start(const doctest::TestCaseData&) override { g_test_failed = false; }
  void test_case_reenter(const doctest::TestCaseData&) override {}
  void test_case_end(const doctest::CurrentTestCaseStats&) override {}
  void test_case_exception(const doctest::TestCaseException&) override { g_test_failed = true; }
  void subcase_start(const doctest::SubcaseSignature&) override {}
  void subcase_end() override {}
  void log_assert(const doctest::AssertData& ad) override {
    if (ad.m_failed) g_test_failed = true;
  }
  void log_message(const doctest::MessageData&) override {}
  void test_case_skipped(const doctest::TestCaseData&) override {}
};

REGISTER_LISTENER("pfit_failure_listener", 1, FailureListener);

std::vector<char*> CStrings(const std::vector<std::string>& v) {
  std::vector<char*> out;
  out.reserve(v.size() + 1);
  for (const std::string& s : v) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

bool StartsWithAny(const std::string& entry, std::initializer_list<const char*> prefixes) {
  for (const char* p : prefixes) {
    if (entry.rfind(p, 0) == 0) return true;
  }
  return false;
}

/// fork + execve with stdin /dev/null and stdout/stderr to files. The child
/// dies with us (PDEATHSIG), so a crashed test leaves nothing behind.
pid_t Spawn(const std::string& path, const std::vector<std::string>& argv,
            const std::vector<std::string>& env, const std::string& out_path,
            const std::string& err_path, bool append, std::optional<uid_t> uid,
            const std::string& in_path = "/dev/null", const std::string& cgroup = "") {
  const int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC);
  const int in = ::open(in_path.c_str(), O_RDONLY | O_CLOEXEC);
  // The child moves itself there before it execs, as systemd starts a unit.
  const int procs =
      cgroup.empty() ? -1 : ::open((cgroup + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
  const int out = ::open(out_path.c_str(), flags, 0644);
  const int err = ::open(err_path.c_str(), flags, 0644);
  // Under emulation this build's programs are foreign binaries that only the
  // emulator can run; host programs (/bin/sh, ...) run as they are.
  std::vector<std::string> full_argv;
  if (path == PicoflowdPath() || path == PicoflowctlPath()) full_argv = ExecWrapper();
  full_argv.push_back(path);
  full_argv.insert(full_argv.end(), argv.begin(), argv.end());
  const std::string exe = full_argv.front();
  std::vector<char*> c_argv = CStrings(full_argv);
  std::vector<char*> c_env = CStrings(env);
  gid_t gid = 0;
  if (uid) {
    const passwd* pw = ::getpwuid(*uid);
    gid = pw != nullptr ? pw->pw_gid : static_cast<gid_t>(*uid);
  }
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(126);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    if (in < 0 || out < 0 || err < 0 || ::dup2(in, 0) < 0 || ::dup2(out, 1) < 0 ||
        ::dup2(err, 2) < 0) {
      ::_exit(125);
    }
    if (!cgroup.empty() && (procs < 0 || ::write(procs, "0", 1) != 1)) ::_exit(123);
    if (uid) {
      if (::setgroups(0, nullptr) != 0 || ::setgid(gid) != 0 || ::setuid(*uid) != 0) {
        ::_exit(124);
      }
    }
    ::execve(exe.c_str(), c_argv.data(), c_env.data());
    const std::string msg = "exec " + exe + ": " + std::strerror(errno) + "\n";
    (void)!::write(2, msg.data(), msg.size());
    ::_exit(127);
  }
  for (int fd : {in, out, err, procs}) {
    if (fd >= 0) ::close(fd);
  }
  return pid;
}

int DecodeStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

/// Waits for `pid` until `deadline`; its exit code (as DecodeStatus), or
/// nullopt if it still runs.
std::optional<int> WaitPid(pid_t pid, Clock::time_point deadline) {
  for (;;) {
    int status = 0;
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return DecodeStatus(status);
    if (r < 0 && errno != EINTR) return -1;
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(5ms);
  }
}

/// Fields of /proc/PID/stat after the command name: [0] is the state.
std::vector<std::string> StatFields(pid_t pid) {
  const std::string text = ReadFileText("/proc/" + std::to_string(pid) + "/stat");
  const auto close = text.rfind(')');
  if (close == std::string::npos) return {};
  std::istringstream in(text.substr(close + 1));
  std::vector<std::string> fields;
  for (std::string f; in >> f;) fields.push_back(f);
  return fields;
}

std::vector<pid_t> AllPids() {
  std::vector<pid_t> pids;
  DIR* d = ::opendir("/proc");
  if (d == nullptr) return pids;
  while (dirent* e = ::readdir(d)) {
    char* end = nullptr;
    const long pid = std::strtol(e->d_name, &end, 10);
    if (end != e->d_name && *end == '\0' && pid > 0) pids.push_back(static_cast<pid_t>(pid));
  }
  ::closedir(d);
  return pids;
}

}  // namespace

// ---- free helpers ----

const char* PicoflowdPath() { return PICOFLOWD_PATH; }
const char* PicoflowctlPath() { return PICOFLOWCTL_PATH; }

const std::vector<std::string>& ExecWrapper() {
  static const std::vector<std::string> words = [] {
    std::vector<std::string> out;
    const char* env = std::getenv("PICOFLOW_TEST_EXEC_WRAPPER");
    std::istringstream in(env != nullptr ? env : "");
    for (std::string w; in >> w;) out.push_back(w);
    return out;
  }();
  return words;
}

bool WaitUntil(const std::function<bool()>& predicate, Millis timeout, Millis interval) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    if (predicate()) return true;
    if (Clock::now() >= deadline) return predicate();
    std::this_thread::sleep_for(interval);
  }
}

char ProcessState(pid_t pid) {
  const auto fields = StatFields(pid);
  return fields.empty() || fields[0].empty() ? '\0' : fields[0][0];
}

bool ProcessGoneOrZombie(pid_t pid) {
  const char state = ProcessState(pid);
  return state == '\0' || state == 'Z' || state == 'X';
}

bool ProcessGroupAlive(pid_t pgid) {
  for (pid_t pid : AllPids()) {
    const auto fields = StatFields(pid);
    // After ")": state ppid pgrp ...
    if (fields.size() < 3 || fields[0] == "Z" || fields[0] == "X") continue;
    if (std::atol(fields[2].c_str()) == pgid) return true;
  }
  return false;
}

long ResidentKb(pid_t pid) {
  std::istringstream in(ReadFileText("/proc/" + std::to_string(pid) + "/status"));
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return -1;
}

std::string ReadFileText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::vector<Span> ReadTrace(const std::string& path) {
  std::istringstream in(ReadFileText(path));
  std::vector<Span> spans;
  std::map<std::pair<std::string, int>, std::size_t> open;
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    Span s;
    std::string what;
    double at = 0;
    if (!(fields >> s.task >> s.attempt >> what >> at)) continue;
    const auto key = std::make_pair(s.task, s.attempt);
    if (what == "start") {
      s.start = at;
      open[key] = spans.size();
      spans.push_back(s);
    } else if (auto it = open.find(key); it != open.end()) {
      spans[it->second].end = at;
    }
  }
  return spans;
}

int MaxOverlap(const std::vector<Span>& spans) {
  // Sweep: +1 at each start, -1 at each end; ends sort before starts at the
  // same instant (touching intervals do not overlap).
  std::vector<std::pair<double, int>> events;
  for (const Span& s : spans) {
    events.push_back({s.start, +1});
    events.push_back({s.end, -1});
  }
  std::sort(events.begin(), events.end());
  int open = 0;
  int most = 0;
  for (const auto& [at, delta] : events) {
    open += delta;
    most = std::max(most, open);
  }
  return most;
}

std::map<std::string, json> TasksByName(const json& run) {
  std::map<std::string, json> out;
  if (!run.is_object()) return out;
  for (const json& t : run["tasks"]) out[t["name"].get<std::string>()] = t;
  return out;
}

std::map<std::string, std::string> TaskStatuses(const json& run) {
  std::map<std::string, std::string> out;
  if (!run.is_object()) return out;
  for (const json& t : run["tasks"]) out[t["name"].get<std::string>()] = t["status"];
  return out;
}

std::vector<json> AttemptsOf(const json& run, const std::string& task) {
  std::vector<json> out;
  if (!run.is_object()) return out;
  for (const json& a : run["attempts"]) {
    if (a["task"] == task) out.push_back(a);
  }
  return out;
}

std::vector<std::string> AttemptStatuses(const json& run, const std::string& task) {
  std::vector<std::string> out;
  for (const json& a : AttemptsOf(run, task)) out.push_back(a["status"]);
  return out;
}

std::vector<std::string> StartOrder(const json& run) {
  // Attempt ids grow in the order attempts began.
  std::vector<std::string> out;
  if (!run.is_object()) return out;
  for (const json& a : run["attempts"]) {
    const std::string task = a["task"];
    if (std::find(out.begin(), out.end(), task) == out.end()) out.push_back(task);
  }
  return out;
}

// ---- DaemonHarness ----

DaemonHarness::DaemonHarness() {
  char tmpl[] = "/tmp/pfit-XXXXXX";
  REQUIRE_MESSAGE(::mkdtemp(tmpl) != nullptr, "mkdtemp: ", std::string(std::strerror(errno)));
  dir_ = tmpl;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry = *e;
    if (StartsWithAny(entry, {"HOME=", "XDG_", "PICOFLOW_", "NOTIFY_SOCKET=", "LISTEN_",
                              "WATCHDOG_", "PFIT_DIR="})) {
      continue;
    }
    env_.push_back(entry);
  }
  for (const char* sub : {"home", "run", "state-home", "config", "cache"}) {
    std::filesystem::create_directories(dir_ + "/" + sub);
  }
  ::chmod((dir_ + "/run").c_str(), 0700);
  env_.push_back("HOME=" + dir_ + "/home");
  env_.push_back("XDG_RUNTIME_DIR=" + dir_ + "/run");
  env_.push_back("XDG_STATE_HOME=" + dir_ + "/state-home");
  env_.push_back("XDG_CONFIG_HOME=" + dir_ + "/config");
  env_.push_back("XDG_CACHE_HOME=" + dir_ + "/cache");
  env_.push_back("PFIT_DIR=" + dir_);
}

DaemonHarness::~DaemonHarness() {
  if (g_test_failed || std::uncaught_exceptions() > 0) DumpLog();
  client_.Close();
  if (pid_ > 0 && Stop() < 0) Kill9();
  KillLeftovers();
  if (std::getenv("PFIT_KEEP") == nullptr) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

std::string DaemonHarness::WriteFile(const std::string& name, const std::string& content) const {
  const std::string path = Path(name);
  std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
  return path;
}

void DaemonHarness::WriteTraceScript() const {
  WriteFile("trace.sh", R"sh(# usage: sh "$PFIT_DIR/trace.sh" SECONDS [EXIT]
echo "$PICOFLOW_TASK $PICOFLOW_ATTEMPT start $(date +%s.%N)" >> "$PFIT_DIR/trace"
sleep "$1"
echo "$PICOFLOW_TASK $PICOFLOW_ATTEMPT end $(date +%s.%N)" >> "$PFIT_DIR/trace"
exit "${2:-0}"
)sh");
}

Status DaemonHarness::Start(const std::vector<std::string>& extra_args, Millis timeout) {
  if (pid_ > 0)
    return Err(ErrorCode::kConflict, "a daemon already runs (pid " + std::to_string(pid_) + ")");
  args_ = extra_args;
  std::vector<std::string> argv = {"--socket", socket(), "--state-dir", state_dir()};
  if (std::find(extra_args.begin(), extra_args.end(), "--log-format") == extra_args.end()) {
    argv.insert(argv.end(), {"--log-format", "json"});
  }
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  pid_ = Spawn(PicoflowdPath(), argv, env_, Path("daemon.out"), Path("daemon.log"), true,
               std::nullopt, "/dev/null", cgroup_);
  if (pid_ < 0) return Err(ErrorCode::kIo, std::string("fork: ") + std::strerror(errno));
  const auto deadline = Clock::now() + timeout;
  client_.Close();
  while (Clock::now() < deadline) {
    if (!Alive()) {
      std::fprintf(stderr, "picoflowd exited during start (%s)\n", dir_.c_str());
      return Err(ErrorCode::kUnavailable, "picoflowd exited during start");
    }
    // A daemon that accepts but answers slowly (an emulator, a loaded
    // machine) gets the rest of the deadline to answer.
    const auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now());
    if (client_.Connect(socket(), 200ms).ok() && client_.Handshake(std::max(left, 1000ms)).ok()) {
      return {};
    }
    client_.Close();
    std::this_thread::sleep_for(20ms);
  }
  std::fprintf(stderr, "picoflowd did not answer daemon.version in %lld ms (%s)\n",
               static_cast<long long>(timeout.count()), dir_.c_str());
  return Err(ErrorCode::kUnavailable, "picoflowd did not answer daemon.version in time");
}

bool DaemonHarness::Alive() {
  if (pid_ <= 0) return false;
  int status = 0;
  if (::waitpid(pid_, &status, WNOHANG) == pid_) {
    pid_ = -1;
    return false;
  }
  return true;
}

int DaemonHarness::WaitExit(Millis timeout) {
  auto code = WaitPid(pid_, Clock::now() + timeout);
  if (!code) return -1;
  pid_ = -1;
  return *code;
}

int DaemonHarness::Stop(Millis timeout) {
  client_.Close();
  if (pid_ <= 0) return 0;
  ::kill(pid_, SIGTERM);
  const int code = WaitExit(timeout);
  if (code < 0) Kill9();
  return code;
}

void DaemonHarness::Kill9() {
  client_.Close();
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  (void)WaitExit(30s);
  pid_ = -1;
}

Status DaemonHarness::Restart(Millis timeout) {
  if (int code = Stop(); code != 0) {
    return Err(ErrorCode::kInternal, "picoflowd stop exited " + std::to_string(code));
  }
  return Start(args_, timeout);
}

void DaemonHarness::KillLeftovers() {
  // Every process started by this test carries PFIT_DIR=dir_ in its
  // environment (tasks inherit the daemon's), escapees from the task's
  // process group included.
  const std::string marker = "PFIT_DIR=" + dir_;
  const pid_t self = ::getpid();
  for (int round = 0; round < 5; ++round) {
    bool any = false;
    for (pid_t pid : AllPids()) {
      if (pid == self || ProcessGoneOrZombie(pid)) continue;
      const std::string env = ReadFileText("/proc/" + std::to_string(pid) + "/environ");
      std::size_t pos = 0;
      bool found = false;
      while ((pos = env.find(marker, pos)) != std::string::npos) {
        const bool starts = pos == 0 || env[pos - 1] == '\0';
        const bool ends = pos + marker.size() == env.size() || env[pos + marker.size()] == '\0';
        if (starts && ends) {
          found = true;
          break;
        }
        pos += marker.size();
      }
      if (!found) continue;
      ::kill(pid, SIGKILL);
      any = true;
    }
    if (!any) return;
    // Reap our own children among them; the others are pid 1's business.
    while (::waitpid(-1, nullptr, WNOHANG) > 0) {
    }
    std::this_thread::sleep_for(20ms);
  }
}

Result<json> DaemonHarness::Call(const std::string& method, const json& params, Millis timeout) {
  if (!client_.connected()) {
    if (Status s = client_.Connect(socket(), timeout); !s.ok()) return s.error();
    if (auto h = client_.Handshake(timeout); !h.ok()) return h.error();
  }
  auto r = client_.Call(method, params, timeout);
  // A timed-out call leaves an answer in flight: start afresh next time.
  if (!r.ok() && r.error().code == ErrorCode::kUnavailable) client_.Close();
  return r;
}

std::int64_t DaemonHarness::StartRun(const std::string& yaml) {
  auto r = Call(method::kRunStart, {{"source", yaml}});
  CHECK_MESSAGE(r.ok(), "run.start: ", (r.ok() ? "" : r.error().message));
  if (!r.ok()) return 0;
  return (*r)["run_id"].get<std::int64_t>();
}

json DaemonHarness::WaitRun(std::int64_t run_id, Millis timeout) {
  auto r = Call(method::kRunWait, {{"run_id", run_id}}, timeout);
  CHECK_MESSAGE(r.ok(), "run.wait ", run_id, ": ", (r.ok() ? "" : r.error().message));
  return r.ok() ? *r : json(nullptr);
}

json DaemonHarness::GetRun(std::int64_t run_id) {
  auto r = Call(method::kRunGet, {{"run_id", run_id}});
  return r.ok() ? *r : json(nullptr);
}

json DaemonHarness::WaitRunState(std::int64_t run_id,
                                 const std::function<bool(const json&)>& predicate,
                                 Millis timeout) {
  json run;
  WaitUntil(
      [&] {
        run = GetRun(run_id);
        return !run.is_null() && predicate(run);
      },
      timeout);
  return run;
}

ProcessResult DaemonHarness::RunCtl(const std::vector<std::string>& args, Millis timeout) {
  std::vector<std::string> argv = {"--socket", socket()};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunProgram(PicoflowctlPath(), argv, timeout);
}

ProcessResult DaemonHarness::RunCtlWithInput(const std::string& input,
                                             const std::vector<std::string>& args, Millis timeout) {
  std::vector<std::string> argv = {"--socket", socket()};
  argv.insert(argv.end(), args.begin(), args.end());
  const std::string in = WriteFile("proc-" + std::to_string(spawned_ + 1) + ".in", input);
  return RunProgram(PicoflowctlPath(), argv, timeout, std::nullopt, in);
}

ProcessResult DaemonHarness::RunCtlInTerminal(const std::vector<std::string>& args,
                                              const std::vector<std::string>& extra_env,
                                              Millis timeout) {
  std::vector<std::string> full_argv = ExecWrapper();
  full_argv.push_back(PicoflowctlPath());
  full_argv.push_back("--socket");
  full_argv.push_back(socket());
  full_argv.insert(full_argv.end(), args.begin(), args.end());
  // A plain terminal, whatever the one running the tests is; then the extras.
  std::vector<std::string> env;
  for (const std::string& e : env_) {
    if (e.rfind("TERM=", 0) != 0 && e.rfind("NO_COLOR=", 0) != 0) env.push_back(e);
  }
  env.push_back("TERM=xterm");
  for (const std::string& extra : extra_env) {
    const std::string name = extra.substr(0, extra.find('=') + 1);
    std::erase_if(env, [&](const std::string& e) { return e.rfind(name, 0) == 0; });
    env.push_back(extra);
  }
  std::vector<char*> c_argv = CStrings(full_argv);
  std::vector<char*> c_env = CStrings(env);
  ProcessResult result;
  int master = -1;
  winsize size{};
  size.ws_row = 24;
  size.ws_col = 80;
  const pid_t pid = ::forkpty(&master, nullptr, nullptr, &size);
  if (pid < 0) return result;
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    ::execve(c_argv[0], c_argv.data(), c_env.data());
    ::_exit(127);
  }
  // Read until the child closed the terminal (EIO), then reap it.
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now());
    pollfd p{master, POLLIN, 0};
    if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) == 0) {
      result.timed_out = true;
      ::kill(pid, SIGKILL);
      break;
    }
    char buf[4096];
    const ssize_t n = ::read(master, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    result.out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(master);
  const auto code = WaitPid(pid, Clock::now() + 30s);
  result.code = result.timed_out || !code ? -1 : *code;
  // The terminal turns "\n" into "\r\n".
  std::string out;
  for (std::size_t i = 0; i < result.out.size(); ++i) {
    if (result.out[i] == '\r' && i + 1 < result.out.size() && result.out[i + 1] == '\n') continue;
    out += result.out[i];
  }
  result.out = std::move(out);
  return result;
}

DaemonHarness::Background DaemonHarness::StartCtl(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"--socket", socket()};
  argv.insert(argv.end(), args.begin(), args.end());
  const std::string base = Path("proc-" + std::to_string(++spawned_));
  Background program{-1, base + ".out", base + ".err"};
  program.pid =
      Spawn(PicoflowctlPath(), argv, env_, program.out_path, program.err_path, false, std::nullopt);
  return program;
}

ProcessResult DaemonHarness::FinishCtl(const Background& program, Millis timeout) {
  ProcessResult result;
  if (program.pid < 0) return result;
  auto code = WaitPid(program.pid, Clock::now() + timeout);
  if (!code) {
    ::kill(program.pid, SIGKILL);
    WaitPid(program.pid, Clock::now() + 30s);
    result.timed_out = true;
  } else {
    result.code = *code;
  }
  result.out = ReadFileText(program.out_path);
  result.err = ReadFileText(program.err_path);
  return result;
}

ProcessResult DaemonHarness::RunProgram(const std::string& path,
                                        const std::vector<std::string>& args, Millis timeout,
                                        std::optional<uid_t> uid, const std::string& stdin_path) {
  const std::string base = Path("proc-" + std::to_string(++spawned_));
  ProcessResult result;
  const pid_t pid = Spawn(path, args, env_, base + ".out", base + ".err", false, uid, stdin_path);
  if (pid < 0) return result;
  auto code = WaitPid(pid, Clock::now() + timeout);
  if (!code) {
    ::kill(pid, SIGKILL);
    code = WaitPid(pid, Clock::now() + 30s);
    result.timed_out = true;
    result.code = -1;
  } else {
    result.code = *code;
  }
  result.out = ReadFileText(base + ".out");
  result.err = ReadFileText(base + ".err");
  return result;
}

std::string DaemonHarness::log() const { return ReadFileText(Path("daemon.log")); }

void DaemonHarness::DumpLog() const {
  std::fprintf(stderr, "---- picoflowd log (%s) ----\n%s---- end of picoflowd log ----\n",
               dir_.c_str(), log().c_str());
}

}  // namespace picoflow::test
