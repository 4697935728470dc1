#include "picoflowd/exec/child_reaper.h"

#include <doctest/doctest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "tests/executor_test_util.h"

extern char** environ;

namespace picoflow {
namespace {

using test::TestLoop;

pid_t SpawnShell(const char* command) {
  const char* argv[] = {"/bin/sh", "-c", command, nullptr};
  pid_t pid = 0;
  REQUIRE(::posix_spawn(&pid, "/bin/sh", nullptr, nullptr, const_cast<char**>(argv), environ) == 0);
  return pid;
}

struct Exit {
  std::int64_t status = -1;
  int signal = -1;
  int calls = 0;
};

class Watcher final : public ChildWatcher {
 public:
  explicit Watcher(Exit& exit) : exit_(exit) {}
  void OnChildExit(std::int64_t status, int term_signal) override {
    exit_.status = status;
    exit_.signal = term_signal;
    ++exit_.calls;
  }

 private:
  Exit& exit_;
};

TEST_CASE(
    "the reaper reports each watched child's exit code or signal once, a forgotten one never") {
  TestLoop loop;
  ChildReaper reaper(loop.get());
  Exit coded, killed, forgotten;
  Watcher w1(coded), w2(killed), w3(forgotten);
  const pid_t a = SpawnShell("exit 7");
  const pid_t b = SpawnShell("kill -TERM $$");
  const pid_t c = SpawnShell("exit 0");
  reaper.Watch(a, &w1);
  reaper.Watch(b, &w2);
  reaper.Watch(c, &w3);
  reaper.Forget(c);
  CHECK(reaper.watched() == 3);

  REQUIRE(loop.RunUntil([&] { return reaper.watched() == 0; }));
  CHECK(coded.calls == 1);
  CHECK(coded.status == 7);
  CHECK(coded.signal == 0);
  CHECK(killed.calls == 1);
  CHECK(killed.signal == SIGTERM);
  CHECK(forgotten.calls == 0);
  // Every one of them was reaped: none is left a zombie.
  for (pid_t pid : {a, b, c}) {
    errno = 0;
    CHECK(::waitpid(pid, nullptr, WNOHANG) == -1);
    CHECK(errno == ECHILD);
  }
}

TEST_CASE("a child that exited before the loop ran is still reported") {
  TestLoop loop;
  ChildReaper reaper(loop.get());
  Exit exit;
  Watcher w(exit);
  const pid_t pid = SpawnShell("exit 3");
  // Wait until it is a zombie, without reaping it: SIGCHLD is already pending.
  siginfo_t info{};
  REQUIRE(::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT) == 0);
  reaper.Watch(pid, &w);

  REQUIRE(loop.RunUntil([&] { return exit.calls > 0; }));
  CHECK(exit.status == 3);
}

}  // namespace
}  // namespace picoflow
