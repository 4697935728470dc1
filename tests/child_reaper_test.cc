#include "picoflowd/exec/child_reaper.h"

#include <doctest/doctest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "tests/executor_test_util.h"
#include "tests/test_util.h"

extern char** environ;

namespace picoflow {
namespace {

using test::TempDir;
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

TEST_CASE("reaping orphans, the reaper reaps unwatched children and still reports watched ones") {
  TempDir dir;
  TestLoop loop;
  ChildReaper reaper(loop.get());
  reaper.ReapOrphans(true);
  int was = 0;
  ::prctl(PR_GET_CHILD_SUBREAPER, &was, 0, 0, 0);
  REQUIRE(::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0);
  Exit exit;
  Watcher w(exit);
  const pid_t watched = SpawnShell("sleep 0.2; exit 5");
  reaper.Watch(watched, &w);
  const pid_t unwatched = SpawnShell("exit 0");
  // Its child outlives it and is re-parented to us, a subreaper: an orphan.
  const std::string pid_file = dir.File("orphan.pid");
  const pid_t parent = SpawnShell(("sleep 0.3 & echo $! > " + pid_file).c_str());

  REQUIRE(loop.RunUntil([&] { return exit.calls == 1 && reaper.orphans_reaped() >= 3; }));
  CHECK(exit.status == 5);
  std::ifstream in(pid_file);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const pid_t orphan = static_cast<pid_t>(std::atol(text.c_str()));
  REQUIRE(orphan > 0);
  for (pid_t pid : {watched, unwatched, parent, orphan}) {
    CAPTURE(pid);
    CHECK(::kill(pid, 0) == -1);  // reaped: no zombie left
  }
  ::prctl(PR_SET_CHILD_SUBREAPER, was, 0, 0, 0);
}

}  // namespace
}  // namespace picoflow
