// Integration: how a real picoflowd keeps a task's processes together
// (docs/operations.md, "Task containment") when it is started as systemd
// starts a Delegate=yes unit: in a cgroup v2 of its own, marked delegated.
// These need root and a writable cgroup2 mount; elsewhere they say why and
// skip. The subreaper mode, which every other daemon test runs in, has its
// own tests in daemon_runs_test.cc and daemon_lifecycle_test.cc.

#include <doctest/doctest.h>

#include <optional>
#include <string>
#include <vector>

#include "protocol/methods.h"
#include "tests/daemon_harness.h"
#include "tests/test_cgroup.h"

namespace picoflow::test {
namespace {

pid_t ReadPid(const DaemonHarness& h, const std::string& name) {
  return static_cast<pid_t>(std::atol(ReadFileText(h.Path(name)).c_str()));
}

// The attempt-* cgroups under `dir`.
std::vector<std::string> AttemptCgroups(const std::string& dir) {
  std::vector<std::string> found;
  for (const std::string& name : TestCgroup::Children(dir)) {
    if (name.rfind("attempt-", 0) == 0) found.push_back(name);
  }
  return found;
}

// A task whose escapee leaves its session, writes its cgroup and pid into
// $PFIT_DIR, and sleeps; with `hold`, holding the task's output.
std::string EscapeeTask(const std::string& name, bool hold, const std::string& after) {
  return "  - name: " + name +
         "\n    type: shell\n    config:\n      command: |\n"
         "        setsid sh -c 'grep ^0:: /proc/self/cgroup > \"$PFIT_DIR/" +
         name + ".cgroup\"; echo $$ > \"$PFIT_DIR/" + name + ".pid\"; exec sleep 300'" +
         (hold ? "" : " </dev/null >/dev/null 2>&1") + " &\n        until [ -s \"$PFIT_DIR/" +
         name + ".pid\" ]; do sleep 0.01; done\n" + after;
}

TEST_CASE("in a delegated cgroup each attempt runs in a cgroup of its own, killed at its end") {
  std::string why;
  const std::optional<std::string> mount = WritableCgroup2(why);
  if (!mount) {
    MESSAGE("skipped: ", why);
    return;
  }
  TestCgroup base(*mount, true);  // outlives the daemon
  DaemonHarness h;
  h.set_cgroup(base.path());
  REQUIRE(h.Start().ok());
  auto status = h.Call(method::kDaemonStatus);
  REQUIRE(status.ok());
  CHECK((*status)["containment"]["mode"] == "cgroup");
  CHECK_MESSAGE(Contains((*status)["containment"]["reason"].get<std::string>(),
                         "cgroup " + base.path() + " is delegated to picoflowd"),
                status->dump());
  // It left the delegated cgroup for its leaf (no processes in inner nodes).
  CHECK(CgroupOf(h.pid()) == base.relative(*mount) + "/daemon");
  const ProcessResult shown = h.RunCtl({"daemon", "status"});
  CHECK_MESSAGE(Contains(shown.out, "\ncontainment: cgroup (cgroup " + base.path()), shown.out);

  const auto id = h.StartRun("name: contained\ntasks:\n" + EscapeeTask("held", true, "") +
                             EscapeeTask("free", false, ""));
  const json run = h.WaitRun(id);
  REQUIRE(run.is_object());
  CHECK(run["status"] == "succeeded");
  for (const std::string task : {"held", "free"}) {
    CAPTURE(task);
    const std::string cgroup =
        base.relative(*mount) + "/attempt-" + std::to_string(id) + "-" + task + "-1";
    CHECK(ReadFileText(h.Path(task + ".cgroup")) == "0::" + cgroup + "\n");
    const pid_t escapee = ReadPid(h, task + ".pid");
    REQUIRE(escapee > 0);
    CHECK(WaitUntil([&] { return ProcessGoneOrZombie(escapee); }, 60s));
  }
  CHECK(WaitUntil([&] { return AttemptCgroups(base.path()).empty(); }, 60s));

  // A task still running when the daemon stops: its cgroup goes with it.
  h.StartRun("name: stopped\ntasks:\n" + EscapeeTask("busy", false, "        exec sleep 300\n"));
  const pid_t busy = [&] {
    pid_t pid = 0;
    WaitUntil([&] { return (pid = ReadPid(h, "busy.pid")) > 0; }, 60s);
    return pid;
  }();
  REQUIRE(busy > 0);
  CHECK(AttemptCgroups(base.path()).size() == 1);
  CHECK(h.Stop() == 0);
  CHECK(WaitUntil([&] { return ProcessGoneOrZombie(busy); }, 60s));
  CHECK(AttemptCgroups(base.path()).empty());
}

TEST_CASE("in a cgroup that is not delegated picoflowd is a subreaper and says why") {
  std::string why;
  const std::optional<std::string> mount = WritableCgroup2(why);
  if (!mount) {
    MESSAGE("skipped: ", why);
    return;
  }
  TestCgroup base(*mount, false);
  DaemonHarness h;
  h.set_cgroup(base.path());
  REQUIRE(h.Start().ok());
  auto status = h.Call(method::kDaemonStatus);
  REQUIRE(status.ok());
  CHECK((*status)["containment"]["mode"] == "subreaper");
  CHECK_MESSAGE(Contains((*status)["containment"]["reason"].get<std::string>(),
                         "cgroup " + base.path() +
                             " is not delegated to picoflowd (Delegate=yes in its unit)"),
                status->dump());
  CHECK(CgroupOf(h.pid()) == base.relative(*mount));  // not moved
  CHECK(TestCgroup::Children(base.path()).empty());   // nothing made
}

}  // namespace
}  // namespace picoflow::test
