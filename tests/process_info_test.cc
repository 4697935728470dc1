#include "picoflowd/exec/process_info.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <string>

extern char** environ;

namespace picoflow {
namespace {

// Clock ticks since boot, now: an upper bound for every start time.
std::uint64_t UptimeTicks() {
  std::ifstream in("/proc/uptime");
  double seconds = 0;
  in >> seconds;
  return static_cast<std::uint64_t>(seconds * static_cast<double>(::sysconf(_SC_CLK_TCK))) + 1;
}

// `/bin/sh -c command` in a new session (pid == pgid == sid), as the local
// executor starts tasks; its stdout goes to `stdout_fd` if that is >= 0.
pid_t SpawnGroupLeader(const char* command, int stdout_fd = -1) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (stdout_fd >= 0) posix_spawn_file_actions_adddup2(&actions, stdout_fd, 1);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID);
  const char* argv[] = {"/bin/sh", "-c", command, nullptr};
  pid_t pid = 0;
  int rc = ::posix_spawn(&pid, "/bin/sh", &actions, &attr, const_cast<char**>(argv), environ);
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&actions);
  REQUIRE(rc == 0);
  // posix_spawn returns after the child's setsid() and exec, except under
  // qemu-user (cross/test.sh), which runs the CLONE_VFORK child as a plain
  // fork: wait for the new group, or a group kill could come before it exists
  // (for 30 s at least: the bound only ends a hang).
  for (int i = 0; i < 300000 && ::getpgid(pid) != pid; ++i) ::usleep(100);
  REQUIRE(::getpgid(pid) == pid);
  return pid;
}

// True once `pid` is gone or a zombie, polling for 30 s at least (the bound
// only ends a hang): the orphan is init's to reap, and some inits
// (containers, this test VM) never do.
bool WaitGone(pid_t pid) {
  for (int i = 0; i < 3000; ++i) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(in, line)) return true;
    char state = line[line.rfind(')') + 2];
    if (state == 'Z' || state == 'X') return true;
    ::usleep(10000);
  }
  return false;
}

// Waits for our child `pid`; returns the signal that killed it, or 0.
int ReapSignal(pid_t pid) {
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  return WIFSIGNALED(status) ? WTERMSIG(status) : 0;
}

TEST_CASE("the start time of a live process lies between our own start and now") {
  std::optional<std::uint64_t> self = ReadProcessStartTime(::getpid());
  REQUIRE(self.has_value());
  CHECK(*self > 0);
  CHECK(*self <= UptimeTicks());
  CHECK(ReadProcessStartTime(::getpid()) == self);  // stable
  CHECK_FALSE(ReadProcessStartTime(0x7ffffff0).has_value());
  CHECK_FALSE(ReadProcessStartTime(-1).has_value());
}

// Checks that `pid`, created between the BootTicks readings `before` and
// `after`, started within them, and at that tick if they are equal; reaps it.
// Returns whether they were equal.
bool CheckStartedBetween(pid_t pid, std::uint64_t before, std::uint64_t after) {
  CHECK(before <= after);
  const std::optional<std::uint64_t> start = ReadProcessStartTime(pid);  // a zombie still has it
  REQUIRE(start.has_value());
  CHECK(*start >= before);
  CHECK(*start <= after);
  if (before == after) CHECK(*start == before);
  CHECK(ReapSignal(pid) == 0);
  return before == after;
}

TEST_CASE("a process spawned between two equal BootTicks readings started at that tick") {
  // The local executor relies on this instead of reading /proc/PID/stat.
  int pinned = 0;
  for (int i = 0; i < 200; ++i) {
    // As the executor spawns; on a slow machine (or under qemu-user, which
    // makes it a fork and then waits for the new group) it may span a tick.
    std::uint64_t before = BootTicks();
    pid_t pid = SpawnGroupLeader("exit 0");
    pinned += CheckStartedBetween(pid, before, BootTicks());
    // A bare fork, whose start time is set the same way: it spans a
    // fraction of a tick (10 ms) on any machine, so some readings are equal
    // and the "at that tick" case is exercised.
    before = BootTicks();
    pid = ::fork();
    if (pid == 0) ::_exit(0);
    REQUIRE(pid > 0);
    pinned += CheckStartedBetween(pid, before, BootTicks());
  }
  CHECK(pinned > 0);
}

TEST_CASE("the start time is read correctly when the command name holds spaces and parentheses") {
  int ready[2];
  REQUIRE(::pipe(ready) == 0);
  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::prctl(PR_SET_NAME, "x) 1 2 (y z)", 0, 0, 0);
    char c = 'r';
    (void)!::write(ready[1], &c, 1);
    ::pause();
    ::_exit(0);
  }
  char c;
  REQUIRE(::read(ready[0], &c, 1) == 1);
  std::optional<std::uint64_t> self = ReadProcessStartTime(::getpid());
  std::optional<std::uint64_t> start = ReadProcessStartTime(child);
  ::kill(child, SIGKILL);
  ReapSignal(child);
  ::close(ready[0]);
  ::close(ready[1]);

  REQUIRE(start.has_value());
  CHECK(*start >= *self);  // a naive split would return field 20 (num_threads, 1)
  CHECK(*start <= UptimeTicks());
}

TEST_CASE("the boot id is a UUID without its newline, the same on every call") {
  const std::string& id = ReadBootId();
  CHECK(id.size() == 36);
  CHECK(id.find('\n') == std::string::npos);
  CHECK(&ReadBootId() == &id);
}

TEST_CASE("a process group is killed only if boot id and the leader's start time both match") {
  pid_t leader = SpawnGroupLeader("sleep 30 & wait");
  std::optional<std::uint64_t> start = ReadProcessStartTime(leader);
  REQUIRE(start.has_value());

  CHECK_FALSE(KillProcessGroupIfSame(leader, *start, "00000000-0000-0000-0000-000000000000"));
  CHECK_FALSE(
      KillProcessGroupIfSame(leader, *start + 1, ReadBootId()));  // as if the pid was reused
  CHECK(::kill(leader, 0) == 0);                                  // untouched so far
  CHECK(KillProcessGroupIfSame(leader, *start, ReadBootId()));
  CHECK(ReapSignal(leader) == SIGKILL);
  // The leader is gone now: nothing with that pgid can be proven to be ours.
  CHECK_FALSE(KillProcessGroupIfSame(leader, *start, ReadBootId()));
}

TEST_CASE("the group kill reaches the leader's children too") {
  int out[2];
  REQUIRE(::pipe2(out, O_CLOEXEC) == 0);  // dup2 in the child clears it on fd 1
  pid_t leader = SpawnGroupLeader("sleep 30 & echo $!; wait", out[1]);
  ::close(out[1]);
  char buf[32] = {};
  REQUIRE(::read(out[0], buf, sizeof buf - 1) > 0);
  ::close(out[0]);
  pid_t grandchild = static_cast<pid_t>(std::stol(buf));

  CHECK(KillProcessGroupIfSame(leader, *ReadProcessStartTime(leader), ReadBootId()));
  CHECK(ReapSignal(leader) == SIGKILL);
  CHECK(WaitGone(grandchild));  // killed with its group; init may leave it a zombie
}

TEST_CASE("processes are found by one exact entry of their environment") {
  const std::string mark = "pf-" + std::to_string(::getpid());
  const std::string exact = "PICOFLOW_TEST_MARK=" + mark + " exec sleep 30";
  const std::string longer = "PICOFLOW_TEST_MARK=" + mark + "x exec sleep 30";
  const std::string inside = "OTHER=PICOFLOW_TEST_MARK=" + mark + " exec sleep 30";
  const pid_t marked = SpawnGroupLeader(exact.c_str());
  const pid_t other = SpawnGroupLeader(longer.c_str());
  const pid_t nested = SpawnGroupLeader(inside.c_str());
  // The shell's environment becomes the one given once it execs sleep.
  std::vector<pid_t> found;
  for (int i = 0; i < 3000 && found.empty(); ++i) {
    found = FindProcessesWithEnv("PICOFLOW_TEST_MARK", mark);
    if (found.empty()) ::usleep(10000);
  }
  CHECK(found == std::vector<pid_t>{marked});
  CHECK(FindProcessesWithEnv("PICOFLOW_TEST_MARK", "pf-nobody").empty());
  for (pid_t pid : {marked, other, nested}) {
    ::kill(pid, SIGKILL);
    CHECK(ReapSignal(pid) == SIGKILL);
  }
}

}  // namespace
}  // namespace picoflow
