#pragma once
// ProcessTree: who is whose child among live processes, read from /proc; and
// TaskMark, the PICOFLOW_* variables a task's processes carry. The subreaper
// containment (containment_subreaper.cc) reads both, only when an attempt
// ends, to find what a task left behind among the daemon's descendants.

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace picoflow {

/// The marks the local executor gives every process of a task (its
/// environment): which daemon, run, task and attempt it belongs to.
struct TaskMark {
  std::string state_dir;    ///< PICOFLOW_STATE_DIR, "" if absent
  std::int64_t run_id = 0;  ///< PICOFLOW_RUN_ID
  std::string task;         ///< PICOFLOW_TASK
  int attempt = 0;          ///< PICOFLOW_ATTEMPT
  bool operator==(const TaskMark& o) const {
    return run_id == o.run_id && attempt == o.attempt && task == o.task && state_dir == o.state_dir;
  }
};

/// The marks in the initial environment (/proc/PID/environ) of `pid`.
/// Returns nullopt if it is unreadable (gone, a zombie, another user's) or
/// has no PICOFLOW_RUN_ID (it, or a program before it, cleared them).
std::optional<TaskMark> ReadTaskMark(pid_t pid);

/// The state letter of /proc/PID/stat ('R', 'S', 'Z', ...), or '\0' if
/// there is no such process.
char ReadProcessState(pid_t pid);

/// A snapshot, taken lazily, of the parent-child relation of processes.
/// With /proc/PID/task/TID/children (CONFIG_PROC_CHILDREN, set by Debian's
/// and most kernels) it reads only the processes asked about; without, one
/// scan of /proc/*/stat serves every question of this snapshot.
/// O(asked-about processes) or O(processes); not for a hot path.
class ProcessTree {
 public:
  /// With `scan`, the scan of /proc serves even where children files exist
  /// (for tests of the older kernels' way).
  explicit ProcessTree(bool scan = false);

  /// The children of `pid`, whatever thread of it is their parent. Empty if
  /// `pid` is gone or has none.
  std::vector<pid_t> ChildrenOf(pid_t pid);
  /// The children of this process that its main thread is the parent of:
  /// every child it spawned from its loop and every orphan re-parented to it
  /// (the kernel gives orphans to a subreaper's first live thread).
  std::vector<pid_t> OwnChildren();
  /// `root` and all its descendants, parents before their children.
  std::vector<pid_t> Subtree(pid_t root);

 private:
  std::optional<std::vector<pid_t>> ReadChildrenFile(pid_t pid, pid_t tid);
  const std::vector<pid_t>& ScannedChildrenOf(pid_t pid);

  bool scan_;
  bool scanned_ = false;
  std::unordered_map<pid_t, std::vector<pid_t>> by_parent_;  // from the scan
};

}  // namespace picoflow
