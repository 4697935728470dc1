#pragma once
// Containment: how the local executor keeps all of a task's processes, even
// those that leave its process group (setsid), and ends them with their
// attempt. Three modes, the best one this process can have chosen at start
// (SetUpContainment):
//
// - cgroup: the daemon's own cgroup v2 is delegated to it (systemd's
//   Delegate=yes) and writable: the daemon moves itself into its leaf
//   `daemon/`, each attempt runs in its own `attempt-RUN-TASK-N/` beside it,
//   and the attempt's end writes 1 to its cgroup.kill, then removes it.
// - subreaper: the daemon is a child subreaper (PR_SET_CHILD_SUBREAPER), so
//   what a task leaves behind is re-parented to the daemon instead of init;
//   at an attempt's end what descends from the daemon and carries that
//   attempt's marks (or no live attempt's) is SIGKILLed, and the executor's
//   reaper reaps the orphans.
// - process group: neither is possible; only the task's process group is
//   killed, and a process that left it outlives its task.

#include <sys/types.h>
#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>

#include "common/result.h"

namespace picoflow {

enum class ContainmentMode { kCgroup, kSubreaper, kProcessGroup };

/// "cgroup", "subreaper", "process-group": as daemon.status reports it.
const char* ContainmentModeName(ContainmentMode mode);

/// Which attempt a process belongs to, as its PICOFLOW_* variables say.
struct AttemptMark {
  std::int64_t run_id = 0;
  std::string task;
  int attempt = 0;
};

/// One attempt's hold on its containment, from before its spawn until it
/// ends. Destroying it ends it (End), if nobody did.
class ContainedAttempt {
 public:
  virtual ~ContainedAttempt() = default;
  /// An open cgroup.procs of the attempt's cgroup: the spawned child writes
  /// "0" to it (moves itself there) before it runs anything. -1 if none.
  virtual int cgroup_procs_fd() const { return -1; }
  /// The attempt's process runs: `pid`, its process group's leader.
  virtual void Started(pid_t /*pid*/) {}
  /// The attempt is over (its group already got SIGKILL): kills every process
  /// it left. `leader_gone`: its leader was reaped (else it may still be
  /// dying, its children not yet re-parented). Idempotent.
  virtual void End(bool leader_gone) = 0;
};

/// The containment of one daemon's tasks (or one test's). Used on the loop's
/// thread only; outlives every ContainedAttempt it made.
class Containment {
 public:
  virtual ~Containment() = default;
  ContainmentMode mode() const { return mode_; }
  /// Why this mode (and not a better one), in words, for daemon.status and
  /// the log: "cgroup /sys/fs/cgroup/x is not delegated to picoflowd ...".
  const std::string& reason() const { return reason_; }

  /// Holds an attempt before its spawn; null when the mode needs nothing
  /// (process group). Returns an Error if its cgroup cannot be made.
  virtual Result<std::unique_ptr<ContainedAttempt>> Enter(const AttemptMark& key) = 0;
  /// At a start, before any task runs: kills what a previous daemon's
  /// attempts left in this containment. Returns how many attempts' remains
  /// were killed.
  virtual int KillLeftovers() { return 0; }
  /// At the end, once no attempt is held any more: kills whatever is left.
  virtual void KillAll() {}

 protected:
  Containment(ContainmentMode mode, std::string reason) : mode_(mode), reason_(std::move(reason)) {}

 private:
  ContainmentMode mode_;
  std::string reason_;
};

/// The process-group mode: nothing beyond the group kill, for `reason`.
std::unique_ptr<Containment> ProcessGroupContainment(std::string reason);

/// The subreaper mode. Makes this process a child subreaper; `owner` is the
/// state directory that marks our tasks' processes ("" for tests: any
/// PICOFLOW_RUN_ID). Returns the process-group mode, saying why, if the
/// kernel refuses. `why_not_cgroup` becomes part of the reason.
std::unique_ptr<Containment> SubreaperContainment(std::string owner,
                                                  const std::string& why_not_cgroup);

/// The cgroup mode in `dir`, a cgroup v2 directory this process may manage
/// (its delegated cgroup, or one a test made); this process is not moved.
/// `loop` hears when a killed attempt's cgroup is empty, to remove it.
std::unique_ptr<Containment> CgroupContainment(uv_loop_t* loop, std::string dir,
                                               std::string reason);

/// This process's own cgroup v2 directory, if it is delegated to us (the
/// `trusted.delegate` or `user.delegate` attribute systemd sets for
/// Delegate=yes), writable, has cgroup.kill (Linux 5.14) and holds no other
/// process; this process then moves itself into its leaf `daemon/` (the
/// no-internal-processes rule), unless it is there already. Returns the
/// directory, or an Error whose message says what ruled it out.
Result<std::string> AdoptDelegatedCgroup();

/// The daemon's choice, made once at start: cgroup if its own cgroup v2 is
/// delegated and writable (it then moves itself into `daemon/` there), else
/// subreaper, else process group; the reason says what ruled the better
/// modes out.
std::unique_ptr<Containment> SetUpContainment(uv_loop_t* loop, std::string owner);

}  // namespace picoflow
