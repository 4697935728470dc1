#pragma once
// RpcFuzzHost: a daemon core for the RPC fuzz target, with nothing of the
// outside world in it. It owns a loop, a real Store in a private directory,
// group commit, the real RunManager, Pruner, Scheduler, WorkflowRegistry and
// RunFeed, wired as Daemon::Open wires them; what differs from the daemon:
// tasks run nowhere (FakeExecutor: every attempt ends at the next loop turn,
// failing if its task's name contains "fail"), the wall clock stands still
// (2026-01-01T00:00:00Z), there is no socket, no signal, no workflows
// directory (daemon.reload finds nothing) and no timer of the schedule.

#include <uv.h>

#include <array>
#include <memory>
#include <string>

#include "picoflowd/engine/run_controller.h"
#include "picoflowd/engine/workflow_registry.h"
#include "picoflowd/rpc/rpc_host.h"
#include "picoflowd/rpc/run_feed.h"
#include "picoflowd/sched/scheduler.h"

namespace picoflow {

class Executor;
class GroupCommit;
class Pruner;
class RunManager;
class Store;

namespace fuzz {

/// A wall clock that never moves: schedules are computed from one instant.
class FixedClock final : public WallClock {
 public:
  TimePoint Now() const override;
  std::chrono::nanoseconds Elapsed() const override { return {}; }
};

class RpcFuzzHost final : public RpcHost {
 public:
  /// Opens a new store in `dir` (which must exist and hold no database).
  /// Aborts if it cannot: the target has nothing to fuzz without one.
  explicit RpcFuzzHost(const std::string& dir);
  /// Stops everything and closes the loop; aborts unless every handle closed.
  ~RpcFuzzHost();
  RpcFuzzHost(const RpcFuzzHost&) = delete;
  RpcFuzzHost& operator=(const RpcFuzzHost&) = delete;

  /// Lets the loop do what is due now (attempts end, runs move on, group
  /// commit commits): a bounded number of non-blocking turns, never a wait.
  void Turn();
  /// Commits the store's open group, as the daemon does before a client sees
  /// an answer.
  void CommitNow();

  // ---- RpcHost ----
  WorkflowRegistry& registry() override { return registry_; }
  Store& store() override { return *store_; }
  RunManager& runs() override { return *runs_; }
  const Scheduler& scheduler() const override { return scheduler_; }
  RunFeed& feed() override { return feed_; }
  const RpcServer* server() const override { return nullptr; }
  const HostFacts& facts() const override { return facts_; }
  const Diagnostics& load_errors() const override { return load_errors_; }
  Result<bool> Submit(std::shared_ptr<const WorkflowVersion> version) override;
  Status Remove(const std::string& name) override;
  ReloadReport Reload() override { return {}; }
  Status SetPaused(const std::string& name, bool paused) override;
  Result<PruneCounts> PruneNow(bool dry_run) override;
  /// Sends nothing: a fuzzed request never reaches the network.
  Status NotifyTest(const std::string&,
                    std::function<void(std::vector<NotifyTestOutcome>)>) override {
    return Err(ErrorCode::kConflict, "no notify targets in the fuzz host");
  }

 private:
  /// Brings the scheduler in step with the registry entry `name`.
  void Schedule(const std::string& name);

  uv_loop_t loop_{};
  HostFacts facts_;
  Diagnostics load_errors_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<GroupCommit> group_commit_;
  std::unique_ptr<Executor> executor_;
  EngineContext engine_;
  RunFeed feed_;
  WorkflowRegistry registry_;
  FixedClock clock_;
  Scheduler scheduler_{clock_};
  std::unique_ptr<Pruner> pruner_;
  std::unique_ptr<RunManager> runs_;
};

}  // namespace fuzz
}  // namespace picoflow
