#include "picoflowd/exec/process_tree.h"

#include <doctest/doctest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace picoflow {
namespace {

using namespace std::chrono_literals;

// `/bin/sh -c command` as our child, with `env` (ours if empty).
pid_t Spawn(const std::string& command, std::vector<std::string> env = {}) {
  std::vector<char*> envp;
  for (std::string& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  const char* argv[] = {"/bin/sh", "-c", command.c_str(), nullptr};
  pid_t pid = 0;
  REQUIRE(::posix_spawn(&pid, "/bin/sh", nullptr, nullptr, const_cast<char**>(argv),
                        env.empty() ? environ : envp.data()) == 0);
  return pid;
}

void KillAndReap(pid_t pid) {
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
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

std::vector<pid_t> Sorted(std::vector<pid_t> pids) {
  std::sort(pids.begin(), pids.end());
  return pids;
}

TEST_CASE("a process's children and its whole subtree are found, each parent before its children") {
  bool scan = false;
  SUBCASE("from the children files") { scan = false; }
  SUBCASE("from a scan of /proc, as without CONFIG_PROC_CHILDREN") { scan = true; }
  // sh -> (sh -> sleep), sleep: two children, one grandchild.
  const pid_t top = Spawn("sh -c 'sleep 300; true' & sleep 300 & wait");
  std::vector<pid_t> subtree;
  REQUIRE(Eventually([&] {
    subtree = ProcessTree(scan).Subtree(top);
    return subtree.size() == 4;
  }));
  CHECK(subtree.front() == top);
  ProcessTree tree(scan);
  const std::vector<pid_t> children = tree.ChildrenOf(top);
  CHECK(children.size() == 2);
  for (pid_t child : children) {
    // Every child comes after `top` and before its own children.
    const auto at = std::find(subtree.begin(), subtree.end(), child);
    REQUIRE(at != subtree.end());
    for (pid_t grandchild : tree.ChildrenOf(child)) {
      CHECK(std::find(at, subtree.end(), grandchild) != subtree.end());
    }
  }
  CHECK(tree.ChildrenOf(subtree.back()).empty());
  for (auto it = subtree.rbegin(); it != subtree.rend(); ++it) ::kill(*it, SIGKILL);
  ::waitpid(top, nullptr, 0);
}

TEST_CASE("our own children are every process we spawned and not reaped yet") {
  bool scan = false;
  SUBCASE("from the children file") { scan = false; }
  SUBCASE("from a scan of /proc, as without CONFIG_PROC_CHILDREN") { scan = true; }
  const std::vector<pid_t> before = Sorted(ProcessTree(scan).OwnChildren());
  const pid_t a = Spawn("exec sleep 300");
  const pid_t b = Spawn("exec sleep 300");
  std::vector<pid_t> want = before;
  want.push_back(a);
  want.push_back(b);
  CHECK(Sorted(ProcessTree(scan).OwnChildren()) == Sorted(want));
  KillAndReap(a);
  KillAndReap(b);
  CHECK(Sorted(ProcessTree(scan).OwnChildren()) == before);
  CHECK(ProcessTree(scan).ChildrenOf(a).empty());  // gone: no children, no error
}

TEST_CASE("a task's marks are read from its environment; without PICOFLOW_RUN_ID there are none") {
  const pid_t marked = Spawn("exec sleep 300", {"PICOFLOW_RUN_ID=42", "PICOFLOW_TASK=load",
                                                "PICOFLOW_ATTEMPT=3", "PICOFLOW_STATE_DIR=/s"});
  const pid_t bare = Spawn("exec sleep 300", {"PICOFLOW_TASK=load", "PICOFLOW_ATTEMPT=3"});
  // The environment is the one of the program now running: wait for sleep.
  std::optional<TaskMark> mark;
  REQUIRE(Eventually([&] { return (mark = ReadTaskMark(marked)).has_value(); }));
  CHECK(*mark == TaskMark{"/s", 42, "load", 3});
  CHECK_FALSE(ReadTaskMark(bare).has_value());
  KillAndReap(marked);
  KillAndReap(bare);
  CHECK_FALSE(ReadTaskMark(marked).has_value());  // gone
}

TEST_CASE("a process's state is its /proc letter, a zombie's Z, a reaped one's nothing") {
  const pid_t pid = Spawn("exit 0");
  REQUIRE(Eventually([&] { return ReadProcessState(pid) == 'Z'; }));
  ::waitpid(pid, nullptr, 0);
  CHECK(ReadProcessState(pid) == '\0');
  CHECK(ReadProcessState(::getpid()) == 'R');
}

}  // namespace
}  // namespace picoflow
