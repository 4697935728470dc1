#include "picoflowd/exec/task_spawn.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace picoflow {
namespace {

// The child gets fds 0-2 and nothing else only if every other fd is
// close-on-exec; anything the daemon inherited or a library opened without O_CLOEXEC would
// leak into every task. Marking every fd >= 3 close-on-exec right before the
// fork closes that hole; the daemon never passes fds to tasks implicitly.
void MarkInheritableFdsCloexec() {
  static bool have_close_range = true;
  if (have_close_range && ::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) == 0) return;
  have_close_range = false;  // kernel < 5.11: walk /proc/self/fd instead
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return;
  while (dirent* d = ::readdir(dir)) {
    int fd = std::atoi(d->d_name);
    if (fd < 3 || fd == ::dirfd(dir)) continue;
    int flags = ::fcntl(fd, F_GETFD);
    if (flags >= 0 && (flags & FD_CLOEXEC) == 0) ::fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
  }
  ::closedir(dir);
}

// posix_spawn's attributes and file actions for one spawn: a new session
// (pgid == pid), an empty signal mask and every signal at its default
// disposition, as a freshly exec'ed program expects.
struct SpawnAttributes {
  posix_spawnattr_t attr;
  posix_spawn_file_actions_t actions;
  int error = 0;

  SpawnAttributes() {
    ::posix_spawnattr_init(&attr);
    ::posix_spawn_file_actions_init(&actions);
    sigset_t none;
    sigemptyset(&none);
    // Every bit, not sigfillset(): that leaves out glibc's internal signals
    // 32 and 33, which the spawn child then sets to SIG_IGN, and an ignored
    // signal stays ignored across exec (a Go or musl program may use them).
    sigset_t all;
    std::memset(&all, 0xff, sizeof all);
    error = ::posix_spawnattr_setflags(
        &attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    if (error == 0) error = ::posix_spawnattr_setsigmask(&attr, &none);
    if (error == 0) error = ::posix_spawnattr_setsigdefault(&attr, &all);
  }
  ~SpawnAttributes() {
    ::posix_spawn_file_actions_destroy(&actions);
    ::posix_spawnattr_destroy(&attr);
  }
  SpawnAttributes(const SpawnAttributes&) = delete;
  SpawnAttributes& operator=(const SpawnAttributes&) = delete;
};

// posix_spawn, which glibc implements with clone(CLONE_VM | CLONE_VFORK),
// instead of fork(): copying the daemon's page tables for every task and
// tearing them down again at exec was most of the daemon's own cost per task
// (bench/results.md). A failed chdir or exec comes back as the return value.
int PosixSpawn(const TaskSpawn& s, pid_t* pid) {
  SpawnAttributes attrs;
  if (attrs.error != 0) return uv_translate_sys_error(attrs.error);
  int rc = 0;
  posix_spawn_file_actions_t* fa = &attrs.actions;
  if (s.workdir != nullptr && *s.workdir != '\0') {
    rc = ::posix_spawn_file_actions_addchdir_np(fa, s.workdir);
  }
  if (rc == 0) rc = ::posix_spawn_file_actions_addopen(fa, 0, "/dev/null", O_RDONLY, 0);
  if (rc == 0) rc = ::posix_spawn_file_actions_adddup2(fa, s.stdout_fd, 1);
  if (rc == 0) rc = ::posix_spawn_file_actions_adddup2(fa, s.stderr_fd, 2);
  if (rc != 0) return uv_translate_sys_error(rc);
  rc = ::posix_spawn(pid, s.program, fa, &attrs.attr, s.argv, s.envp);
  return rc == 0 ? 0 : uv_translate_sys_error(rc);
}

// The vfork child. It shares the parent's memory (the parent waits until it
// execs or exits), so it makes system calls only, on what the parent
// prepared, and reports a failure in `*error` before it exits. Out of line,
// so that its frame lies below the parent's. The cgroup move comes first:
// nothing of the task runs outside its cgroup. Signals are blocked (the
// parent blocked them) until every handler is back to its default, so none
// of the daemon's handlers runs here.
[[noreturn]] __attribute__((noinline)) void ExecChild(const TaskSpawn& s, volatile int* error) {
  struct sigaction dfl;
  std::memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigset_t none;
  sigemptyset(&none);
  int in = -1;
  if (::write(s.cgroup_procs_fd, "0", 1) != 1 || ::setsid() < 0) goto fail;
  // Fails harmlessly for SIGKILL, SIGSTOP and glibc's own two (whose
  // handlers, if any, exec resets).
  for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &dfl, nullptr);
  if (s.workdir != nullptr && *s.workdir != '\0' && ::chdir(s.workdir) != 0) goto fail;
  in = ::open("/dev/null", O_RDONLY);  // >= 3: the daemon's 0-2 are open
  if (in < 0 || ::dup2(in, 0) < 0 || ::dup2(s.stdout_fd, 1) < 0 || ::dup2(s.stderr_fd, 2) < 0) {
    goto fail;
  }
  ::close(in);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::execve(s.program, s.argv, s.envp);
fail:
  *error = errno != 0 ? errno : EIO;
  ::_exit(127);
}

int VforkIntoCgroup(const TaskSpawn& s, pid_t* pid) {
  sigset_t all, old;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  volatile int child_error = 0;
  const pid_t child = ::vfork();
  if (child == 0) ExecChild(s, &child_error);
  const int vfork_errno = errno;
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (child < 0) return uv_translate_sys_error(vfork_errno);
  if (child_error != 0) {
    while (::waitpid(child, nullptr, 0) < 0 && errno == EINTR) {
    }
    return uv_translate_sys_error(child_error);
  }
  *pid = child;
  return 0;
}

}  // namespace

int SpawnTask(const TaskSpawn& spawn, pid_t* pid) {
  MarkInheritableFdsCloexec();
  return spawn.cgroup_procs_fd >= 0 ? VforkIntoCgroup(spawn, pid) : PosixSpawn(spawn, pid);
}

}  // namespace picoflow
