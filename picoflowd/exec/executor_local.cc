#include "picoflowd/exec/executor_local.h"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "common/duration.h"
#include "common/env_expand.h"
#include "common/task_outputs.h"
#include "common/workflow.h"
#include "picoflowd/exec/child_reaper.h"
#include "picoflowd/exec/containment.h"
#include "picoflowd/exec/process_info.h"
#include "picoflowd/exec/task_spawn.h"
#include "picoflowd/util/callback_guard.h"
#include "picoflowd/util/logging.h"
#include "picoflowd/util/uv_handle.h"

extern char** environ;

namespace picoflow {
namespace {

// When the leader exits during a TERM grace while a member of its group is
// still dying (not yet a zombie), the group is looked at again after these
// delays, doubling, until it is gone or the grace ends: a dying member is
// waited for, not the whole grace.
constexpr std::chrono::milliseconds kGroupRecheckFirst{10};
constexpr std::chrono::milliseconds kGroupRecheckMax{250};

// Output is handed to the sink synchronously from the read callback, so one
// buffer per attempt serves both pipes and no chunk is ever allocated.
constexpr std::size_t kReadBufferSize = 64 * 1024;

// Marks every process of a task as this daemon's (its state directory), so
// that the next start finds what a crash left running (KillLeftovers).
constexpr std::string_view kOwnerVar = "PICOFLOW_STATE_DIR";

// The daemon's own systemd plumbing; a task must not talk to systemd as us.
constexpr std::string_view kStrippedEnv[] = {
    "NOTIFY_SOCKET", "WATCHDOG_PID", "WATCHDOG_USEC", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES",
};

bool HasKey(std::string_view entry, std::string_view key) {
  return entry.size() > key.size() && entry.compare(0, key.size(), key) == 0 &&
         entry[key.size()] == '=';
}

// Replaces `key`'s entry in `env`, or appends one.
void SetVar(std::vector<std::string>& env, std::string_view key, std::string_view value) {
  std::string entry;
  entry.reserve(key.size() + 1 + value.size());
  entry.append(key).append("=").append(value);
  for (std::string& e : env) {
    if (HasKey(e, key)) {
      e = std::move(entry);
      return;
    }
  }
  env.push_back(std::move(entry));
}

bool IsStripped(std::string_view entry) {
  for (std::string_view key : kStrippedEnv) {
    if (HasKey(entry, key)) return true;
  }
  return false;
}

// The program, argv and environment of one attempt, owned, plus the
// NULL-terminated pointer arrays posix_spawn reads.
struct SpawnArgs {
  std::string file;
  std::vector<std::string> argv;
  std::vector<std::string> env;
  std::vector<char*> argv_ptrs;
  std::vector<char*> env_ptrs;
};

std::vector<char*> Pointers(std::vector<std::string>& strings) {
  std::vector<char*> ptrs;
  ptrs.reserve(strings.size() + 1);
  for (std::string& s : strings) ptrs.push_back(s.data());
  ptrs.push_back(nullptr);
  return ptrs;
}

SpawnArgs BuildSpawnArgs(const AttemptSpec& spec, const ShellConfig& shell, std::string_view owner,
                         const std::string& output_path) {
  SpawnArgs a;
  if (shell.args) {
    a.file = shell.command;
    a.argv.push_back(shell.command);
    a.argv.insert(a.argv.end(), shell.args->begin(), shell.args->end());
  } else {
    a.file = "/bin/sh";
    a.argv = {"/bin/sh", "-c", shell.command};
  }
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    if (!IsStripped(*e)) a.env.emplace_back(*e);
  }
  // `${NAME}` in a value is the daemon's variable as the task inherits it,
  // not one the task sets (docs/workflow-format.md, "Variables"): expand all
  // values before setting any.
  const EnvLookup inherited = [&a](std::string_view name) -> std::optional<std::string_view> {
    for (const std::string& e : a.env) {
      if (HasKey(e, name)) return std::string_view(e).substr(name.size() + 1);
    }
    return std::nullopt;
  };
  std::vector<std::string> values;
  values.reserve(shell.env.size());
  for (const auto& entry : shell.env) values.push_back(ExpandEnvValue(entry.second, inherited));
  for (std::size_t i = 0; i < shell.env.size(); ++i) SetVar(a.env, shell.env[i].first, values[i]);
  for (const auto& [name, value] : spec.secrets) SetVar(a.env, name, value);
  for (const auto& [name, value] : spec.env) SetVar(a.env, name, value);
  if (!output_path.empty()) SetVar(a.env, "PICOFLOW_OUTPUT", output_path);
  SetVar(a.env, "PICOFLOW_WORKFLOW", spec.workflow);
  SetVar(a.env, "PICOFLOW_RUN_ID", std::to_string(spec.run_id));
  SetVar(a.env, "PICOFLOW_TASK", spec.task->name);
  SetVar(a.env, "PICOFLOW_ATTEMPT", std::to_string(spec.attempt));
  if (!owner.empty()) SetVar(a.env, kOwnerVar, owner);
  a.argv_ptrs = Pointers(a.argv);
  a.env_ptrs = Pointers(a.env);
  return a;
}

// The program `file` names, searched like execvp does but in the task's own
// PATH (posix_spawnp would search the daemon's). Returns 0 or UV_ENOENT /
// UV_EACCES (a match that is not executable, when nothing later matches).
int ResolveProgram(const std::string& file, const std::vector<std::string>& env,
                   std::string& program) {
  if (file.empty()) return UV_ENOENT;
  if (file.find('/') != std::string::npos) {
    program = file;
    return 0;
  }
  std::string_view path = "/usr/bin:/bin";  // execvp's default, as libuv's
  for (const std::string& e : env) {
    if (HasKey(e, "PATH")) path = std::string_view(e).substr(5);
  }
  int rc = UV_ENOENT;
  while (true) {
    const std::size_t colon = path.find(':');
    const std::string_view dir = path.substr(0, colon);
    std::string candidate = dir.empty() ? std::string(".") : std::string(dir);
    candidate.append("/").append(file);
    struct stat st {};
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
      if (::access(candidate.c_str(), X_OK) == 0) {
        program = std::move(candidate);
        return 0;
      }
      rc = UV_EACCES;
    }
    if (colon == std::string_view::npos) return rc;
    path.remove_prefix(colon + 1);
  }
}

// An error code as words. Spawn's codes are libuv's, which on Linux are
// negated errnos; uv_strerror knows only those libuv names ("Unknown system
// error -8" for ENOEXEC), strerror all of them.
std::string ErrnoText(int uv_err) {
  std::string text = uv_err < 0 ? std::strerror(-uv_err) : uv_strerror(uv_err);
  if (!text.empty()) text[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(text[0])));
  return text;
}

// "ls -la" given as the program with `args`: the split that was meant.
std::string SplitHint(const ShellConfig& shell) {
  std::istringstream words(shell.command);
  std::string program;
  words >> program;
  std::vector<std::string> args;
  for (std::string w; words >> w;) args.push_back(w);
  if (shell.args) args.insert(args.end(), shell.args->begin(), shell.args->end());
  std::string list;
  for (const std::string& a : args) list += (list.empty() ? "" : ", ") + a;
  return " (did you mean command: " + program + ", args: [" + list + "]?)";
}

// What to do about a program that could not be executed (uv_err from
// ResolveProgram or posix_spawn). Without args the program is /bin/sh.
std::string ProgramHint(const ShellConfig& shell, const std::string& file, int uv_err) {
  if (uv_err == UV_ENOENT && shell.args && file.find(' ') != std::string::npos) {
    return SplitHint(shell);
  }
  if (uv_err == UV_ENOENT && file.find('/') == std::string::npos) {
    return " (not found in the task's PATH)";
  }
  if (uv_err == UV_EACCES) return " (is it executable? chmod +x '" + file + "')";
  return "";
}

// Why the spawn failed, naming the workdir when that is the culprit:
// posix_spawn reports a failed chdir with the same errno as a failed exec.
std::string SpawnError(const ShellConfig& shell, const std::string& file, int uv_err) {
  std::string msg = "cannot start '" + file + "': ";
  const std::string& workdir = shell.workdir;
  struct stat st {};
  if (!workdir.empty() && ::stat(workdir.c_str(), &st) != 0) {
    return msg + "workdir '" + workdir + "': " + ErrnoText(uv_translate_sys_error(errno));
  }
  if (!workdir.empty() && !S_ISDIR(st.st_mode)) {
    return msg + "workdir '" + workdir + "': not a directory";
  }
  if (uv_err == -ENOEXEC) {
    return msg + "exec format error: '" + file + "' is not a program (no #! line?)";
  }
  return msg + ErrnoText(uv_err) + ProgramHint(shell, file, uv_err);
}

void CloseFd(uv_file fd) {
  if (fd >= 0) ::close(fd);
}

std::string SignalText(int sig) {
  const char* abbrev = ::sigabbrev_np(sig);
  return abbrev != nullptr ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
}

// Why the attempt is being stopped, if it is.
enum class Ending { kNone, kTimeout, kCancelled };

// What the one timer of an attempt is counting down.
enum class TimerPhase { kNone, kTimeout, kGrace, kGroupRecheck, kDrain, kFinishLater };

// One running shell attempt: the child process, its two output pipes and one
// timer (timeout, then kill grace, in which the group left by the leader is
// rechecked; or the drain period; or the deferred report of a failed start).
class LocalAttempt final : public Attempt, private ChildWatcher {
 public:
  LocalAttempt(uv_loop_t* loop, ChildReaper& reaper, Containment* containment,
               const AttemptSpec& spec, AttemptSink& sink);
  ~LocalAttempt() override;
  LocalAttempt(const LocalAttempt&) = delete;
  LocalAttempt& operator=(const LocalAttempt&) = delete;

  /// Spawns the process, or arranges for the failure to be reported later.
  /// Throws only (std::bad_alloc) before the spawn.
  void Begin(const AttemptSpec& spec, std::string_view owner, const std::string& output_dir);
  /// Reports `error` as a failure to start on a later loop iteration.
  /// Reports `result` on the next loop iteration (never from inside Start):
  /// what is left of a process is killed first.
  void FinishLater(AttemptResult result);
  void Cancel() override { Terminate(Ending::kCancelled); }

  /// The child was reaped. May destroy `this`.
  void OnChildExit(std::int64_t status, int term_signal) override;

 private:
  int OpenPipe(UvHandle<uv_pipe_t>& pipe, uv_file& child_end);
  int Spawn(const SpawnArgs& args, const std::string& workdir, uv_file out, uv_file err);

  void Spawned(const AttemptSpec& spec);
  void StartReading(UvHandle<uv_pipe_t>& pipe);
  void ArmTimer(TimerPhase phase, std::chrono::milliseconds delay);
  void Terminate(Ending why);
  void GraceEnded();
  void RecheckGroup(std::chrono::milliseconds delay);
  std::chrono::milliseconds GraceLeft() const;
  void KillGroup(int sig) const;
  void EndContainment();
  bool GroupAlive() const;
  bool PipesOpen() const { return out_.initialized() || err_.initialized(); }
  void ClosePipes();
  void OnRead(uv_stream_t* stream, ssize_t n, const uv_buf_t* buf);
  void OnTimer();
  void MaybeFinish();
  void Finish();
  AttemptResult Result() const;
  /// A succeeded attempt's outputs from its file, or the attempt fails
  /// saying why they cannot be read. Notes whether the task made the file.
  void ReadOutputs(AttemptResult& result);
  std::string StopText() const;

  static void AllocCb(uv_handle_t* h, std::size_t, uv_buf_t* buf) noexcept;
  static void ReadCb(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) noexcept;
  static void TimerCb(uv_timer_t* t) noexcept;

  uv_loop_t* loop_;
  AttemptSink* sink_;
  std::chrono::milliseconds timeout_;
  std::chrono::milliseconds kill_grace_;
  ChildReaper* reaper_;
  Containment* containment_;                // null: the process group only
  std::unique_ptr<ContainedAttempt> held_;  // while the attempt holds its containment
  UvHandle<uv_pipe_t> out_;
  UvHandle<uv_pipe_t> err_;
  UvHandle<uv_timer_t> timer_;
  TimerPhase phase_ = TimerPhase::kNone;
  Ending ending_ = Ending::kNone;
  std::uint64_t grace_end_ = 0;                // uv_now() when the TERM's grace ends
  std::chrono::milliseconds recheck_delay_{};  // the last kGroupRecheck delay
  pid_t pgid_ = 0;                             // 0 until spawned; the group outlives the leader
  bool watched_ = false;                       // the reaper holds our pid and has not reported it
  std::optional<std::uint64_t> start_ticks_;   // the leader's start time, if the spawn pinned it
  bool exited_ = false;
  bool finished_ = false;
  bool killed_ = false;  // the TERM's grace ran out: the group got the KILL
  std::int64_t exit_status_ = 0;
  int term_signal_ = 0;
  std::optional<AttemptResult> pending_;  // FinishLater's result
  std::string output_path_;               // PICOFLOW_OUTPUT; removed with the attempt
  bool has_output_file_ = false;          // the task made it: ReadOutputs found it
  char buffer_[kReadBufferSize];          // left uninitialized: only read() writes it
};

LocalAttempt::LocalAttempt(uv_loop_t* loop, ChildReaper& reaper, Containment* containment,
                           const AttemptSpec& spec, AttemptSink& sink)
    : loop_(loop),
      sink_(&sink),
      timeout_(spec.timeout),
      kill_grace_(spec.kill_grace),
      reaper_(&reaper),
      containment_(containment),
      out_(this),
      err_(this),
      timer_(this) {
  uv_timer_init(loop_, timer_.get());  // cannot fail
  timer_.MarkInitialized();
}

LocalAttempt::~LocalAttempt() {
  if (!finished_) {
    KillGroup(SIGKILL);
    EndContainment();
  }
  if (watched_) reaper_->Forget(pgid_);  // still reaped, so no zombie is left
  // Ended before it was read (a hard stop): it may have made the file.
  if (has_output_file_ || (!finished_ && !output_path_.empty())) ::unlink(output_path_.c_str());
  // The pipes and the timer close through their UvHandle destructors; with
  // `data` cleared, their pending callbacks find no owner and do nothing.
}

void LocalAttempt::Begin(const AttemptSpec& spec, std::string_view owner,
                         const std::string& output_dir) {
  const auto* shell = spec.task ? std::get_if<ShellConfig>(&spec.task->config) : nullptr;
  if (shell == nullptr) return FinishLater(FailedResult("cannot start: not a shell task"));
  if (!output_dir.empty()) {
    // Task names hold no '/' or '.' (docs/workflow-format.md, "Tasks"). The
    // file is the task's to create (`>>` does): a task that passes nothing
    // on costs one failed open() when it ends. The directory is ours alone
    // (0700) and emptied at start, so no file of that name is there yet.
    output_path_ = output_dir + "/" + std::to_string(spec.run_id) + "." + spec.task->name + "." +
                   std::to_string(spec.attempt);
  }
  SpawnArgs args = BuildSpawnArgs(spec, *shell, owner, output_path_);
  if (containment_ != nullptr) {
    auto held = containment_->Enter(AttemptMark{spec.run_id, spec.task->name, spec.attempt});
    if (!held.ok()) return FinishLater(FailedResult("cannot start: " + held.error().message));
    held_ = std::move(*held);
  }
  uv_file child_out = -1;
  uv_file child_err = -1;
  int rc = OpenPipe(out_, child_out);
  if (rc == 0) rc = OpenPipe(err_, child_err);
  if (rc == 0) rc = Spawn(args, shell->workdir, child_out, child_err);
  CloseFd(child_out);  // the child has its own copies now
  CloseFd(child_err);
  if (rc != 0) return FinishLater(FailedResult(SpawnError(*shell, args.file, rc)));
  Spawned(spec);
}

// A real pipe, not the socketpair that UV_CREATE_PIPE makes in libuv 1.44:
// scripts write to /dev/stdout and /dev/stderr, and open() of those fails
// with ENXIO on a socket. Both ends are O_CLOEXEC, so no other task inherits
// them (a leaked write end would keep this attempt from ever seeing EOF).
int LocalAttempt::OpenPipe(UvHandle<uv_pipe_t>& pipe, uv_file& child_end) {
  int rc = uv_pipe_init(loop_, pipe.get(), 0);
  if (rc != 0) return rc;
  pipe.MarkInitialized();
  uv_file fds[2];
  rc = uv_pipe(fds, UV_NONBLOCK_PIPE, 0);  // the child's end stays blocking
  if (rc != 0) return rc;
  rc = uv_pipe_open(pipe.get(), fds[0]);
  if (rc != 0) {
    CloseFd(fds[0]);
    CloseFd(fds[1]);
    return rc;
  }
  child_end = fds[1];
  return 0;
}

// SpawnTask: posix_spawn, or a vfork child that enters the attempt's cgroup
// first. A failed chdir or exec comes back as the return value. Returns 0 or
// a libuv error code.
int LocalAttempt::Spawn(const SpawnArgs& args, const std::string& workdir, uv_file out,
                        uv_file err) {
  std::string program;
  if (int rc = ResolveProgram(args.file, args.env, program); rc != 0) return rc;
  TaskSpawn spawn;
  spawn.program = program.c_str();
  spawn.argv = args.argv_ptrs.data();
  spawn.envp = args.env_ptrs.data();
  spawn.workdir = workdir.c_str();
  spawn.stdout_fd = out;
  spawn.stderr_fd = err;
  spawn.cgroup_procs_fd = held_ ? held_->cgroup_procs_fd() : -1;
  pid_t pid = 0;
  const std::uint64_t before = BootTicks();
  if (const int rc = SpawnTask(spawn, &pid); rc != 0) return rc;
  if (BootTicks() == before) start_ticks_ = before;  // else read from /proc
  pgid_ = pid;
  reaper_->Watch(pid, this);
  watched_ = true;
  if (held_) held_->Started(pid);
  return 0;
}

void LocalAttempt::Spawned(const AttemptSpec& spec) {
  StartReading(out_);
  StartReading(err_);
  if (spec.timeout.count() > 0) ArmTimer(TimerPhase::kTimeout, timeout_);
  ProcessIdentity identity;
  identity.pid = pgid_;
  identity.pgid = pgid_;
  identity.start_time = start_ticks_ ? *start_ticks_ : ReadProcessStartTime(pgid_).value_or(0);
  identity.boot_id = ReadBootId();
  // The process runs whatever the sink did with it: keep tracking it.
  GuardCallback("local executor: recording a started task", [&] { sink_->OnStarted(identity); });
}

void LocalAttempt::StartReading(UvHandle<uv_pipe_t>& pipe) {
  if (uv_read_start(pipe.stream(), &AllocCb, &ReadCb) != 0) pipe.Close();  // as if at EOF
}

void LocalAttempt::FinishLater(AttemptResult result) {
  KillGroup(SIGKILL);  // only if an allocation failed after the spawn
  ClosePipes();
  pending_ = std::move(result);
  ArmTimer(TimerPhase::kFinishLater, std::chrono::milliseconds(0));
}

// A timeout must never end a task early. libuv counts from the loop time
// cached when this iteration began (stale by the work done since) in whole
// milliseconds, so refresh it and round up by one.
void LocalAttempt::ArmTimer(TimerPhase phase, std::chrono::milliseconds delay) {
  phase_ = phase;
  std::uint64_t ms = static_cast<std::uint64_t>(delay.count());
  if (ms > 0) {
    uv_update_time(loop_);
    ++ms;
  }
  uv_timer_start(timer_.get(), &TimerCb, ms, 0);
}

// TERM now, KILL when the grace ends. Once the process exited, the drain
// period already bounds what is left, so a late Cancel changes nothing.
void LocalAttempt::Terminate(Ending why) {
  if (finished_ || exited_ || pgid_ == 0 || ending_ != Ending::kNone) return;
  ending_ = why;
  KillGroup(SIGTERM);
  ArmTimer(TimerPhase::kGrace, kill_grace_);  // updated the loop time
  grace_end_ = uv_now(loop_) + static_cast<std::uint64_t>(kill_grace_.count());
}

// The TERM's grace ran out: KILL what is left, then finish as usual.
void LocalAttempt::GraceEnded() {
  killed_ = true;
  KillGroup(SIGKILL);
  if (!exited_) return;  // the exit callback follows the KILL
  if (PipesOpen()) return ArmTimer(TimerPhase::kDrain, kLocalDrainPeriod);
  Finish();
}

// Looks at the group again after `delay`, or when the grace ends if sooner.
void LocalAttempt::RecheckGroup(std::chrono::milliseconds delay) {
  recheck_delay_ = delay;
  ArmTimer(TimerPhase::kGroupRecheck, std::min(delay, GraceLeft()));
}

std::chrono::milliseconds LocalAttempt::GraceLeft() const {
  const std::uint64_t now = uv_now(loop_);
  return std::chrono::milliseconds(now >= grace_end_ ? 0 : grace_end_ - now);
}

void LocalAttempt::KillGroup(int sig) const {
  if (pgid_ > 0) ::kill(-pgid_, sig);  // ESRCH: the group is gone, nothing to do
}

// A group whose members are all zombies is gone for our purposes: a zombie
// cannot hold a pipe or do work, and an init that does not reap orphans (some
// containers) would otherwise make every kill wait out the whole grace.
bool LocalAttempt::GroupAlive() const {
  return pgid_ > 0 && ::kill(-pgid_, 0) == 0 && ProcessGroupHasLiveMember(pgid_);
}

void LocalAttempt::ClosePipes() {
  out_.Close();
  err_.Close();
}

void LocalAttempt::OnChildExit(std::int64_t status, int term_signal) {
  watched_ = false;
  exited_ = true;
  exit_status_ = status;
  term_signal_ = term_signal;
  if (phase_ == TimerPhase::kTimeout) {
    uv_timer_stop(timer_.get());
    phase_ = TimerPhase::kNone;
  }
  MaybeFinish();
}

void LocalAttempt::OnRead(uv_stream_t* stream, ssize_t n, const uv_buf_t* buf) {
  bool is_out = stream == out_.stream();
  if (n > 0) {
    sink_->OnOutput(is_out ? OutputStream::kStdout : OutputStream::kStderr,
                    std::string_view(buf->base, static_cast<std::size_t>(n)));
    return;
  }
  if (n == 0) return;              // EAGAIN
  (is_out ? out_ : err_).Close();  // EOF, or a read error that ends the stream alike
  MaybeFinish();
}

void LocalAttempt::OnTimer() {
  TimerPhase phase = phase_;
  phase_ = TimerPhase::kNone;
  switch (phase) {
    case TimerPhase::kTimeout: return Terminate(Ending::kTimeout);
    case TimerPhase::kGrace: return GraceEnded();
    case TimerPhase::kGroupRecheck:
      if (!GroupAlive()) return Finish();
      if (GraceLeft().count() == 0) return GraceEnded();
      return RecheckGroup(std::min(recheck_delay_ * 2, kGroupRecheckMax));
    case TimerPhase::kDrain:
      KillGroup(SIGKILL);  // whatever still holds the pipes, if it is in the group
      ClosePipes();
      return Finish();
    case TimerPhase::kFinishLater: return Finish();
    case TimerPhase::kNone: return;
  }
}

// Finished = exited and both pipes at EOF. While a TERM grace runs, members
// of the group that survived the leader get the rest of it, then the KILL;
// the group is rechecked meanwhile (a member may be dying already: one look
// now would make the attempt wait out the whole grace).
void LocalAttempt::MaybeFinish() {
  if (!exited_ || finished_) return;
  if (PipesOpen()) {
    if (phase_ == TimerPhase::kNone) ArmTimer(TimerPhase::kDrain, kLocalDrainPeriod);
    return;
  }
  if (phase_ == TimerPhase::kGrace && GroupAlive()) return RecheckGroup(kGroupRecheckFirst);
  Finish();
}

// Nothing of an attempt outlives it: what is left of its group, and what
// its containment holds (what left the group too), gets SIGKILL.
void LocalAttempt::EndContainment() {
  if (!held_) return;
  held_->End(exited_ || pgid_ == 0);
  held_.reset();
}

void LocalAttempt::Finish() {
  finished_ = true;
  uv_timer_stop(timer_.get());
  phase_ = TimerPhase::kNone;
  ClosePipes();
  KillGroup(SIGKILL);
  EndContainment();
  AttemptResult result = Result();
  if (!output_path_.empty()) ReadOutputs(result);
  sink_->OnFinished(result);  // last: the sink may destroy `this`
}

void LocalAttempt::ReadOutputs(AttemptResult& result) {
  const auto fail = [&result](const std::string& why) {
    result.status = AttemptStatus::kFailed;
    result.error = "its outputs (PICOFLOW_OUTPUT): " + why;
  };
  // O_NONBLOCK: a FIFO put in the file's place must not block the loop in
  // open() or read(); anything but a regular file is refused below.
  const int fd = ::open(output_path_.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) {
    if (errno != ENOENT && result.status == AttemptStatus::kSucceeded) {
      fail(std::string("cannot open: ") + std::strerror(errno));
    }
    return;  // the task wrote none
  }
  has_output_file_ = true;  // removed with the attempt, whatever it holds
  if (result.status != AttemptStatus::kSucceeded) {
    ::close(fd);
    return;  // a failed attempt passes nothing on
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return fail("is not a regular file");
  }
  // One byte past the limit tells a file that is too large.
  std::string text(kMaxTaskOutputBytes + 1, '\0');
  std::size_t got = 0;
  while (got < text.size()) {
    const ssize_t n = ::read(fd, text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  ::close(fd);
  text.resize(got);
  auto outputs = ParseTaskOutputs(text);
  if (!outputs.ok()) return fail(outputs.error().message);
  result.outputs = std::move(*outputs);
}

AttemptResult LocalAttempt::Result() const {
  if (pending_) return *pending_;
  AttemptResult r;
  if (term_signal_ != 0) {
    r.signal = term_signal_;
  } else {
    r.exit_code = static_cast<int>(exit_status_);
  }
  if (ending_ == Ending::kTimeout) {
    r.status = AttemptStatus::kTimeout;
    r.error = "timed out after " + FormatDuration(timeout_) + " (" + StopText() + ")";
  } else if (ending_ == Ending::kCancelled) {
    r.status = AttemptStatus::kCancelled;
    r.error = "cancelled";
  } else if (term_signal_ != 0) {
    r.error = "killed by " + SignalText(term_signal_);
  } else if (exit_status_ != 0) {
    r.error = "exited with code " + std::to_string(exit_status_);
    // The shell's codes for a command it could not run (POSIX, "Exit Status").
    if (exit_status_ == 127) r.error += " (command not found?)";
    if (exit_status_ == 126) r.error += " (not executable?)";
  } else {
    r.status = AttemptStatus::kSucceeded;
  }
  return r;
}

// How a timed-out attempt was stopped: "SIGTERM", or "SIGTERM, then SIGKILL
// after 5s grace" when the grace ran out.
std::string LocalAttempt::StopText() const {
  if (!killed_) return "SIGTERM";
  return "SIGTERM, then SIGKILL after " + FormatDuration(kill_grace_) + " grace";
}

void LocalAttempt::AllocCb(uv_handle_t* h, std::size_t, uv_buf_t* buf) noexcept {
  auto* self = OwnerOf<LocalAttempt>(h);
  *buf =
      self != nullptr ? uv_buf_init(self->buffer_, sizeof self->buffer_) : uv_buf_init(nullptr, 0);
}

void LocalAttempt::ReadCb(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) noexcept {
  GuardCallback("local executor: reading task output", [&] {
    if (auto* self = OwnerOf<LocalAttempt>(s)) self->OnRead(s, n, buf);
  });
}

void LocalAttempt::TimerCb(uv_timer_t* t) noexcept {
  GuardCallback("local executor: timer", [&] {
    if (auto* self = OwnerOf<LocalAttempt>(t)) self->OnTimer();
  });
}

}  // namespace

LocalExecutor::LocalExecutor(uv_loop_t* loop, std::string owner,
                             std::unique_ptr<Containment> containment)
    : loop_(loop), owner_(std::move(owner)), containment_(std::move(containment)), reaper_(loop) {
  // A subreaper adopts what its tasks leave behind: someone must reap it.
  if (containment_ && containment_->mode() == ContainmentMode::kSubreaper) {
    reaper_.ReapOrphans(true);
  }
}

// Every attempt is gone (they must not outlive the executor): what their
// processes left is killed before the daemon goes.
LocalExecutor::~LocalExecutor() {
  if (containment_) containment_->KillAll();
}

int LocalExecutor::KillLeftovers() const {
  if (containment_) containment_->KillLeftovers();
  if (owner_.empty()) return 0;
  int groups = 0;
  for (pid_t pid : FindProcessesWithEnv(kOwnerVar, owner_)) {
    // Its whole group goes (members that cleared their environment too),
    // unless it shares ours.
    const pid_t pgid = ::getpgid(pid);
    const bool group = pgid > 1 && pgid != ::getpgrp();
    if (::kill(group ? -pgid : pid, SIGKILL) == 0) ++groups;
  }
  return groups;
}

Status LocalExecutor::SetOutputDir(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return Err(ErrorCode::kIo, "cannot create " + dir + ": " + std::strerror(errno));
  }
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != ::geteuid()) {
    return Err(ErrorCode::kIo, dir + " (the directory of task outputs) is not a directory of ours");
  }
  // What attempts of a previous daemon left: they are over (KillLeftovers).
  if (DIR* d = ::opendir(dir.c_str())) {
    while (const dirent* e = ::readdir(d)) {
      if (e->d_name[0] != '.') ::unlinkat(::dirfd(d), e->d_name, 0);
    }
    ::closedir(d);
  }
  output_dir_ = dir;
  return {};
}

std::unique_ptr<Attempt> LocalExecutor::Start(const AttemptSpec& spec, AttemptSink& sink) {
  auto attempt = std::make_unique<LocalAttempt>(loop_, reaper_, containment_.get(), spec, sink);
  try {
    attempt->Begin(spec, owner_, output_dir_);
  } catch (const std::exception& e) {  // out of memory building argv/env: nothing was spawned
    attempt->FinishLater(FailedResult(std::string("cannot start: ") + e.what()));
  }
  return attempt;
}

}  // namespace picoflow
