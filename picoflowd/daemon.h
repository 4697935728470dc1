#pragma once
// Daemon: owns the loop and everything on it — store, executors, workflows,
// runs, control socket, signals — and its lifecycle from start to a clean
// exit. main.cc builds a DaemonConfig and calls Run() or RunOnce().

#include <uv.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "picoflowd/daemon_config.h"
#include "picoflowd/engine/run_controller.h"
#include "picoflowd/sched/scheduler.h"
#include "picoflowd/util/uv_handle.h"
#include "picoflowd/engine/workflow_registry.h"

namespace picoflow {

class Dispatcher;
class Executor;
class Metrics;
class MetricsServer;
class Pruner;
class RpcMethods;
class RpcServer;
class RunManager;
class ScheduleTimer;
class SdNotifier;
class Store;

/// What a reload changed.
struct ReloadReport {
  std::vector<std::string> added;
  std::vector<std::string> replaced;
  std::vector<std::string> removed;
  std::vector<std::string> unchanged;
  std::vector<Diagnostic> errors;  ///< of files that did not load
};

class Daemon {
 public:
  explicit Daemon(DaemonConfig config);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  /// Starts (store, workflows, recovery, socket, signals), serves until
  /// SIGTERM/SIGINT, shuts down cleanly. Returns the process exit code; a
  /// startup failure prints one line with the fix and returns 1.
  int Run();

  /// `picoflowd --once FILE`: runs one workflow in the foreground with no
  /// socket, printing progress; 0 if the run succeeded, 1 if not.
  int RunOnce(const std::string& file);

  // ---- for the RPC methods ----
  WorkflowRegistry& registry() { return registry_; }
  Store& store() { return *store_; }
  RunManager& runs() { return *runs_; }
  EngineContext& engine() { return engine_; }
  const DaemonConfig& config() const { return config_; }
  std::chrono::steady_clock::time_point started_at() const { return started_at_; }
  const RpcServer* server() const { return server_.get(); }
  /// Errors of workflow files that define no loaded workflow (last reload).
  const Diagnostics& load_errors() const { return load_errors_; }

  /// Stores and registers a submitted workflow (replacing an earlier version
  /// without touching its runs in progress). Returns true if it replaced one.
  Result<bool> Submit(std::shared_ptr<const WorkflowVersion> version);
  /// Forgets a workflow (its history stays). Returns kNotFound if unknown.
  Status Remove(const std::string& name);
  /// Re-reads the workflows directory and the files given at start.
  ReloadReport Reload();
  /// Begins a graceful stop, as SIGTERM does.
  void Shutdown();
  /// Pauses or resumes a workflow's schedule (kept in the store). Returns
  /// kNotFound if there is no such workflow.
  Status SetPaused(const std::string& name, bool paused);
  /// Retention: background pruning and `store.prune`.
  Pruner& pruner() { return *pruner_; }
  /// The cron scheduler (next fires, upcoming, counters).
  const Scheduler& scheduler() const { return *scheduler_; }

 private:
  Status Open();
  Status LoadStoredWorkflows();
  void StartSignals();
  Status StartMetrics();
  void OnSignal(int signum);
  void FinishShutdown();
  /// The shutdown grace period ended: kills what still runs, then finishes.
  void GraceOver();
  std::vector<std::string> WorkflowFiles() const;
  // ---- scheduling (daemon_schedule.cc) ----
  // Brings the scheduler in step with the registry entry `name` (added,
  // replaced, removed); `last_fire` from the store at startup.
  void Schedule(const std::string& name, std::optional<TimePoint> last_fire = std::nullopt);
  // Opens the timer, hooks run ends (overlap: queue), catches up, arms.
  Status StartScheduling();
  void RearmSchedule();
  void OnScheduleWake(bool clock_set);
  void StartFire(const Fire& fire);
  RunningFn RunningCounter() const;

  DaemonConfig config_;
  uv_loop_t loop_{};
  bool loop_ready_ = false;
  std::chrono::steady_clock::time_point started_at_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Executor> shell_executor_;
  std::unique_ptr<Executor> ssh_executor_;
  std::unique_ptr<Executor> http_executor_;
  EngineContext engine_;
  std::unique_ptr<RunManager> runs_;
  std::unique_ptr<Pruner> pruner_;
  std::unique_ptr<Metrics> metrics_;
  std::unique_ptr<MetricsServer> metrics_server_;
  WorkflowRegistry registry_;
  Diagnostics load_errors_;
  std::unique_ptr<RpcMethods> methods_;
  std::unique_ptr<Dispatcher> dispatcher_;
  std::unique_ptr<RpcServer> server_;
  std::vector<std::unique_ptr<UvHandle<uv_signal_t>>> signals_;
  UvHandle<uv_timer_t> grace_timer_;
  bool stopping_ = false;
  SystemWallClock wall_clock_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<ScheduleTimer> schedule_timer_;
  std::unique_ptr<SdNotifier> notifier_;  ///< systemd READY/STOPPING/WATCHDOG (sd_notify.h)
};

}  // namespace picoflow
