#pragma once
// LocalExecutor: runs `type: shell` tasks as child processes of the daemon,
// each in its own session and process group, on the daemon's loop.

#include <uv.h>

#include <chrono>
#include <memory>
#include <string>

#include "common/result.h"
#include "picoflowd/exec/child_reaper.h"
#include "picoflowd/exec/containment.h"
#include "picoflowd/exec/executor.h"

namespace picoflow {

/// How long an attempt waits, after its process exited, for the output pipes
/// to reach EOF. A background grandchild can hold them open forever; when this
/// passes, what is left of the task's process group is SIGKILLed, the pipes
/// are closed and the attempt finishes.
inline constexpr std::chrono::milliseconds kLocalDrainPeriod{500};

/// Starts shell-task attempts with posix_spawn on one loop; a ChildReaper
/// reports their exits.
///
/// Each attempt: `command` alone runs as `/bin/sh -c command`; `command` with
/// `args` runs the program directly (looked up as execvp does, in the task's PATH). The child gets
/// a new session and process group (pgid == pid), cwd `workdir`, the daemon's environment minus
/// NOTIFY_SOCKET, WATCHDOG_*, LISTEN_* plus the task's `env` plus
/// PICOFLOW_WORKFLOW/RUN_ID/TASK/ATTEMPT and, with an owner, PICOFLOW_STATE_DIR=owner (these
/// win), stdin /dev/null, stdout and stderr on real
/// pipes (so /dev/stdout can be opened), no other fds (every daemon fd >= 3 is marked close-on-exec
/// before each spawn), default dispositions for every signal and an empty signal mask.
///
/// Events: OnStarted is called from inside Start once the process runs (so the
/// identity is recorded before anything else can happen); OnOutput per chunk
/// as read; OnFinished exactly once, never from inside Start, when the process
/// exited and both pipes reached EOF (or kLocalDrainPeriod after the exit).
///
/// Results: exit 0 -> kSucceeded; other exit codes and deaths by signal ->
/// kFailed; a failure to start (missing program, missing workdir) -> kFailed
/// with `error` "cannot start 'PROG': REASON"; spec.timeout > 0 elapsed ->
/// SIGTERM to the group, SIGKILL after spec.kill_grace, kTimeout; Cancel() ->
/// the same, kCancelled. Cancel() once the process has exited, or during a
/// timeout's grace, changes nothing: the drain period or the grace bounds it.
///
/// The end: once an attempt finished (or is destroyed), what is left of its
/// process group gets SIGKILL, and so does what its Containment holds: with
/// the cgroup or subreaper mode, processes that left the group (setsid) too;
/// with none, or the process-group mode, those are out of reach. The attempt
/// finishes once the pipes close or the drain period ends either way. After
/// the leader is reaped its pgid could in theory be reused by an unrelated
/// group before a late kill(-pgid); pid reuse needs the whole pid space to
/// wrap within the drain or grace period, so it is ignored.
///
/// The loop must outlive the executor, and the executor every attempt it
/// started.
class LocalExecutor final : public Executor {
 public:
  /// Attempts run on `loop`, which must outlive every attempt. `owner` (the
  /// daemon's state directory, canonical) marks their processes; "" marks
  /// none. `containment` keeps each attempt's processes together (null: the
  /// process group only); a subreaper one makes the reaper reap orphans.
  explicit LocalExecutor(uv_loop_t* loop, std::string owner = {},
                         std::unique_ptr<Containment> containment = nullptr);
  /// Kills what the containment still holds (KillAll).
  ~LocalExecutor() override;
  LocalExecutor(const LocalExecutor&) = delete;
  LocalExecutor& operator=(const LocalExecutor&) = delete;

  /// At a start, before any task of ours runs: kills what the containment
  /// holds of a previous daemon (its attempts' cgroups), and SIGKILLs the
  /// process group of every process of our uid marked with our owner — what
  /// tasks of a previous daemon of this state directory left running (a
  /// crash loses the record of a task started just before it; a task may
  /// leave its group). Returns how many groups were signalled; none without
  /// an owner.
  int KillLeftovers() const;

  /// Gives each attempt an output file in `dir` (PICOFLOW_OUTPUT,
  /// docs/workflow-format.md "Outputs"), read into AttemptResult::outputs
  /// when the attempt succeeds and removed when it ends. Creates `dir`
  /// (0700) and removes what is in it. Without a call, attempts have none.
  Status SetOutputDir(const std::string& dir);

  /// How attempts are contained; null if only by their process group.
  const Containment* containment() const { return containment_.get(); }

  /// Starts one attempt of spec.task, which must be a shell task. Never throws;
  /// every failure is reported through sink.OnFinished on a later iteration.
  std::unique_ptr<Attempt> Start(const AttemptSpec& spec, AttemptSink& sink) override;

 private:
  uv_loop_t* loop_;
  std::string owner_;
  std::string output_dir_;
  std::unique_ptr<Containment> containment_;
  ChildReaper reaper_;
};

}  // namespace picoflow
