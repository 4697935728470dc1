#include "picoflowd/exec/containment.h"

#include <doctest/doctest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iterator>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tests/executor_test_util.h"
#include "tests/test_cgroup.h"
#include "tests/test_util.h"

extern char** environ;

namespace picoflow {
namespace {

using namespace std::chrono_literals;
using test::Contains;
using test::TestCgroup;
using test::TestLoop;

// `exec sleep 300` as our child, with `env` added to ours.
pid_t SpawnSleep(const std::vector<std::string>& env) {
  std::vector<std::string> all;
  for (char** e = environ; *e != nullptr; ++e) all.emplace_back(*e);
  all.insert(all.end(), env.begin(), env.end());
  std::vector<char*> envp;
  for (std::string& e : all) envp.push_back(e.data());
  envp.push_back(nullptr);
  const char* argv[] = {"/bin/sh", "-c", "exec sleep 300", nullptr};
  pid_t pid = 0;
  REQUIRE(::posix_spawn(&pid, "/bin/sh", nullptr, nullptr, const_cast<char**>(argv), envp.data()) ==
          0);
  return pid;
}

// Polls until `pred` holds; the bound only ends a hang.
bool Eventually(const std::function<bool()>& pred) {
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

// The signal that ended our child `pid` (0 if it exited), or -1 if it still
// runs after the deadline (it is then killed).
int EndSignal(pid_t pid) {
  int status = 0;
  if (!Eventually([&] { return ::waitpid(pid, &status, WNOHANG) == pid; })) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    return -1;
  }
  return WIFSIGNALED(status) ? WTERMSIG(status) : 0;
}

// True while our child `pid` runs (not yet a zombie).
bool Running(pid_t pid) {
  siginfo_t info{};
  return ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
         info.si_pid == 0;
}

// The command line of `pid`, its arguments separated by NULs.
std::string Cmdline(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline");
  return std::string(std::istreambuf_iterator<char>(in), {});
}

bool Exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

TEST_CASE("the process-group mode holds nothing and says why") {
  auto containment = ProcessGroupContainment("because");
  CHECK(containment->mode() == ContainmentMode::kProcessGroup);
  CHECK(containment->reason() == "because");
  CHECK(std::string(ContainmentModeName(containment->mode())) == "process-group");
  auto held = containment->Enter(AttemptMark{1, "t", 1});
  REQUIRE(held.ok());
  CHECK(*held == nullptr);
}

TEST_CASE("a subreaper kills what an ended attempt left and spares a live one's, marked or not") {
  auto containment = SubreaperContainment("/state", "no cgroup here");
  REQUIRE(containment->mode() == ContainmentMode::kSubreaper);
  CHECK(Contains(containment->reason(), "no cgroup here"));
  int subreaper = 0;
  ::prctl(PR_GET_CHILD_SUBREAPER, &subreaper, 0, 0, 0);
  CHECK(subreaper == 1);

  auto first = containment->Enter(AttemptMark{7, "load", 1});
  auto second = containment->Enter(AttemptMark{7, "load", 2});
  REQUIRE(first.ok());
  REQUIRE(second.ok());
  const std::vector<std::string> marks = {"PICOFLOW_STATE_DIR=/state", "PICOFLOW_RUN_ID=7",
                                          "PICOFLOW_TASK=load"};
  auto with = [&](const char* attempt) {
    std::vector<std::string> env = marks;
    env.push_back(std::string("PICOFLOW_ATTEMPT=") + attempt);
    return env;
  };
  const pid_t of_first = SpawnSleep(with("1"));
  const pid_t of_second = SpawnSleep(with("2"));
  const pid_t unmarked = SpawnSleep({});
  std::vector<std::string> foreign = with("1");
  foreign[0] = "PICOFLOW_STATE_DIR=/another";
  const pid_t of_another = SpawnSleep(foreign);
  // Each is marked once its shell has exec'd sleep.
  for (pid_t pid : {of_first, of_second, of_another}) {
    REQUIRE(Eventually([&] { return Cmdline(pid).rfind("sleep", 0) == 0; }));
  }

  (*first)->End(true);
  CHECK(EndSignal(of_first) == SIGKILL);
  CHECK(Running(of_second));
  CHECK(Running(unmarked));    // could be the live attempt's
  CHECK(Running(of_another));  // another daemon's: as unmarked

  (*second)->End(true);
  CHECK(EndSignal(of_second) == SIGKILL);
  CHECK(EndSignal(unmarked) == SIGKILL);  // no attempt lives
  CHECK(EndSignal(of_another) == SIGKILL);

  containment.reset();
  ::prctl(PR_GET_CHILD_SUBREAPER, &subreaper, 0, 0, 0);
  CHECK(subreaper == 0);  // as it was before
}

TEST_CASE("a subreaper's KillAll kills every descendant it adopted") {
  auto containment = SubreaperContainment("", "test");
  REQUIRE(containment->mode() == ContainmentMode::kSubreaper);
  // A parent that leaves a child behind: the child becomes ours.
  const char* argv[] = {"/bin/sh", "-c", "sleep 300 & echo $!", nullptr};
  int out[2];
  REQUIRE(::pipe(out) == 0);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  pid_t parent = 0;
  REQUIRE(::posix_spawn(&parent, "/bin/sh", &fa, nullptr, const_cast<char**>(argv), environ) == 0);
  posix_spawn_file_actions_destroy(&fa);
  ::close(out[1]);
  char buf[32] = {};
  REQUIRE(::read(out[0], buf, sizeof buf - 1) > 0);
  ::close(out[0]);
  const pid_t orphan = static_cast<pid_t>(std::atol(buf));
  CHECK(EndSignal(parent) == 0);
  REQUIRE(Eventually([&] { return ::getpgid(orphan) >= 0 && Running(orphan); }));

  containment->KillAll();
  CHECK(EndSignal(orphan) == SIGKILL);  // ours to reap: we are its parent now
}

TEST_CASE("an attempt's cgroup is made before its spawn, killed and removed at its end") {
  std::string why;
  const std::optional<std::string> mount = test::WritableCgroup2(why);
  if (!mount) {
    MESSAGE("skipped: ", why);
    return;
  }
  TestCgroup base(*mount, false);
  TestLoop loop;
  {
    auto containment = CgroupContainment(loop.get(), base.path(), "test");
    CHECK(containment->mode() == ContainmentMode::kCgroup);
    auto held = containment->Enter(AttemptMark{7, "load", 2});
    REQUIRE(held.ok());
    const std::string dir = base.path() + "/attempt-7-load-2";
    CHECK(Exists(dir));
    REQUIRE((*held)->cgroup_procs_fd() >= 0);
    // What the spawned child does first: enter it. Then it leaves its session.
    const pid_t child = SpawnSleep({});
    REQUIRE(test::WriteCgroupFile(dir + "/cgroup.procs", std::to_string(child)));
    CHECK(test::CgroupOf(child) == base.relative(*mount) + "/attempt-7-load-2");

    (*held)->End(true);
    CHECK(EndSignal(child) == SIGKILL);
    CHECK(loop.RunUntil([&] { return !Exists(dir); }));
  }
}

TEST_CASE("a start kills what a previous daemon's attempts left in their cgroups") {
  std::string why;
  const std::optional<std::string> mount = test::WritableCgroup2(why);
  if (!mount) {
    MESSAGE("skipped: ", why);
    return;
  }
  TestCgroup base(*mount, false);
  const std::string stale = base.path() + "/attempt-3-t-1";
  REQUIRE(::mkdir(stale.c_str(), 0755) == 0);
  REQUIRE(::mkdir((base.path() + "/keep").c_str(), 0755) == 0);  // not an attempt's
  const pid_t left = SpawnSleep({});
  REQUIRE(test::WriteCgroupFile(stale + "/cgroup.procs", std::to_string(left)));
  TestLoop loop;
  auto containment = CgroupContainment(loop.get(), base.path(), "test");

  CHECK(containment->KillLeftovers() == 1);
  CHECK(EndSignal(left) == SIGKILL);
  CHECK(!Exists(stale));
  CHECK(Exists(base.path() + "/keep"));
}

TEST_CASE(
    "only a delegated cgroup picoflowd has alone is adopted, and picoflowd moves into daemon/") {
  std::string why;
  const std::optional<std::string> mount = test::WritableCgroup2(why);
  if (!mount) {
    MESSAGE("skipped: ", why);
    return;
  }
  const std::string home = test::OwnCgroup(*mount);
  TestCgroup plain(*mount, false);
  TestCgroup delegated(*mount, true);

  REQUIRE(TestCgroup::Enter(plain.path()));
  Result<std::string> refused = AdoptDelegatedCgroup();
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().message ==
        "cgroup " + plain.path() + " is not delegated to picoflowd (Delegate=yes in its unit)");

  REQUIRE(TestCgroup::Enter(delegated.path()));
  const pid_t other = SpawnSleep({});  // born in the delegated cgroup, as we are
  Result<std::string> shared = AdoptDelegatedCgroup();
  REQUIRE_FALSE(shared.ok());
  CHECK(Contains(shared.error().message,
                 "is not picoflowd's alone (process " + std::to_string(other) + " is in it too)"));
  ::kill(other, SIGKILL);
  ::waitpid(other, nullptr, 0);

  Result<std::string> adopted = AdoptDelegatedCgroup();
  REQUIRE_MESSAGE(adopted.ok(), (adopted.ok() ? "" : adopted.error().message));
  CHECK(*adopted == delegated.path());
  CHECK(test::CgroupOf(::getpid()) == delegated.relative(*mount) + "/daemon");
  // Once inside, the same answer (a restart in place).
  Result<std::string> again = AdoptDelegatedCgroup();
  REQUIRE(again.ok());
  CHECK(*again == delegated.path());

  REQUIRE(TestCgroup::Enter(home));
}

}  // namespace
}  // namespace picoflow
