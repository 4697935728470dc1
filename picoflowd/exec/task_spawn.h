#pragma once
// SpawnTask: starts one task process as the local executor wants it — a new
// session and process group, an empty signal mask, every signal at its
// default disposition, stdin /dev/null, stdout and stderr on the given fds
// and no other fd — with posix_spawn; or, to start it inside a cgroup, with
// vfork and a child that moves itself there before it runs anything.

#include <sys/types.h>

namespace picoflow {

/// What to start. Every pointer must stay valid until SpawnTask returns.
struct TaskSpawn {
  const char* program = nullptr;  ///< a path: already looked up
  char* const* argv = nullptr;    ///< NULL-terminated
  char* const* envp = nullptr;    ///< NULL-terminated
  const char* workdir = nullptr;  ///< null or "": the daemon's own
  int stdout_fd = -1;             ///< becomes the child's fd 1
  int stderr_fd = -1;             ///< becomes the child's fd 2
  int cgroup_procs_fd = -1;       ///< >= 0: a cgroup.procs the child enters first
};

/// Starts the process; returns 0 with its pid in `*pid`, or a libuv error
/// code. A failed chdir, cgroup move or exec in the child comes back here
/// as an error, not as an exit status (except under qemu-user, whose vfork
/// is a fork: then it shows as exit 127). Every fd >= 3 of this process is
/// marked close-on-exec first.
int SpawnTask(const TaskSpawn& spawn, pid_t* pid);

}  // namespace picoflow
