#pragma once
// ChildReaper: learns when the daemon's task processes exit. Tasks are started
// with posix_spawn (vfork semantics: no copy of the daemon's page tables per
// task, which uv_spawn's fork() pays), so libuv does not know them; this
// watches SIGCHLD through one uv_signal_t and waitpid()s each watched pid.

#include <sys/types.h>
#include <uv.h>

#include <cstdint>
#include <vector>

#include "picoflowd/util/uv_handle.h"

namespace picoflow {

/// Told once that its child was reaped.
class ChildWatcher {
 public:
  virtual ~ChildWatcher() = default;
  /// `status` is the exit code when `term_signal` is 0. May destroy the
  /// watcher and call back into the reaper (Watch, Forget).
  virtual void OnChildExit(std::int64_t status, int term_signal) = 0;
};

class ChildReaper {
 public:
  /// Starts watching SIGCHLD on `loop`, which must outlive the reaper. The
  /// signal handle keeps the loop alive only while children are watched.
  explicit ChildReaper(uv_loop_t* loop);
  ChildReaper(const ChildReaper&) = delete;
  ChildReaper& operator=(const ChildReaper&) = delete;

  /// Reaps `pid` (a child of this process) when it exits and then calls
  /// watcher->OnChildExit, on a loop iteration after this call. A child that
  /// exited before Watch is still reported: SIGCHLD stays pending in libuv.
  void Watch(pid_t pid, ChildWatcher* watcher);
  /// The watcher of `pid` is going away: the child is still reaped when it
  /// exits (no zombie is left) but nobody is told. Unknown pids are ignored.
  void Forget(pid_t pid);

  /// With `on`, every SIGCHLD also reaps the children nobody watches:
  /// orphans of tasks, re-parented to this process because it is a child
  /// subreaper. A watched pid is never reaped that way: it is reported as
  /// usual. Only for a process that spawns no child behind the reaper's back.
  void ReapOrphans(bool on) { reap_orphans_ = on; }

  /// Children watched and not yet reaped (abandoned ones included).
  std::size_t watched() const { return children_.size(); }

  /// Orphans reaped so far (ReapOrphans).
  std::uint64_t orphans_reaped() const { return orphans_reaped_; }

 private:
  struct Child {
    pid_t pid;
    ChildWatcher* watcher;  // null once forgotten
    bool reaped;
    std::int64_t status;
    int term_signal;
  };

  void OnSigchld();
  void Reaped(Child& c, pid_t r, int wstatus);
  void ReapUnwatched();

  std::vector<Child> children_;
  bool reap_orphans_ = false;
  std::uint64_t orphans_reaped_ = 0;
  UvHandle<uv_signal_t> signal_;
};

}  // namespace picoflow
