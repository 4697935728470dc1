#pragma once
// Daemon: owns the loop and everything on it — store, executors, workflows,
// runs, control socket, signals — and its lifecycle from start to a clean
// exit; the wiring of every layer (docs/architecture.md). main.cc builds a
// DaemonConfig and calls Run() or RunOnce().

#include <uv.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "picoflowd/daemon_config.h"
#include "picoflowd/engine/run_admission.h"
#include "picoflowd/engine/run_controller.h"
#include "picoflowd/engine/run_observer.h"
#include "picoflowd/engine/workflow_registry.h"
#include "picoflowd/rpc/rpc_host.h"
#include "picoflowd/rpc/run_feed.h"
#include "picoflowd/sched/scheduler.h"
#include "picoflowd/util/uv_handle.h"

namespace picoflow {

class Dispatcher;
class Executor;
class FileTriggers;
class Fleet;
class LocalExecutor;
class GroupCommit;
class HttpApi;
class HttpExchange;
class HttpServer;
class Metrics;
class Notifier;
class Pruner;
class RpcMethods;
class RpcServer;
class RunManager;
class ScheduleTimer;
class SdNotifier;
class Store;
class WebToken;

/// The RpcHost of the RPC methods; hears of every run's end (queued fires
/// start then; --once stops).
class Daemon final : public RpcHost, private RunObserver {
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

  // ---- RpcHost (rpc/rpc_host.h) ----
  WorkflowRegistry& registry() override { return registry_; }
  Store& store() override { return *store_; }
  RunManager& runs() override { return *runs_; }
  const Scheduler& scheduler() const override { return *scheduler_; }
  RunFeed& feed() override { return feed_; }
  const RpcServer* server() const override { return server_.get(); }
  const HostFacts& facts() const override { return facts_; }
  const Diagnostics& load_errors() const override { return load_errors_; }
  Result<bool> Submit(std::shared_ptr<const WorkflowVersion> version) override;
  Status Remove(const std::string& name) override;
  ReloadReport Reload() override;
  Status SetPaused(const std::string& name, bool paused) override;
  nlohmann::json MqttState() const override;
  Result<PruneCounts> PruneNow(bool dry_run) override;
  Status NotifyTest(const std::string& workflow,
                    std::function<void(std::vector<NotifyTestOutcome>)> done) override;

  /// Begins a graceful stop, as SIGTERM does.
  void Shutdown();

 private:
  /// Opens the state directory and the store, makes the engine and registers
  /// every run observer — here and nowhere else. `progress` (--once) is
  /// told of the run's events too.
  Status Open(RunObserver* progress = nullptr);
  /// A run ended: --once stops; otherwise what waits for a place among the
  /// runs of its workflow may start now (StartWaiting).
  void OnRunFinished(std::int64_t run_id, RunStatus status) override;
  Status LoadStoredWorkflows();
  void StartSignals();
  // ---- the HTTP listener (daemon_http.cc) ----
  std::unique_ptr<Metrics> MakeMetrics();
  /// The web token, read from the state directory at its first use.
  WebToken& Token();
  /// Registers web.token, which makes the token of HTTP write access.
  void RegisterWebToken();
  /// --http-listen: loads the token, listens; nothing of it without the flag.
  Status StartHttp();
  /// Routes one request: the page, /api/v1/, /metrics, /healthz.
  void ServeHttp(const std::shared_ptr<HttpExchange>& exchange);
  /// Where shell attempts write their outputs (LocalExecutor::SetOutputDir).
  Status OpenOutputDir();
  void OnSignal(int signum);
  void FinishShutdown();
  /// The shutdown grace period ended: kills what still runs, then finishes.
  void GraceOver();
  /// At a stop, the notifications still going are sent before the store
  /// closes (docs/notifications.md, "Delivery"); true while they are.
  bool DrainNotifications();
  /// Gives the notifications still going up (logged, with `why`): the
  /// next FinishShutdown closes the notifier.
  void DropNotifications(std::string_view why);
  std::vector<std::string> WorkflowFiles() const;
  /// Why a workflow file may not load workflow `name` in this reload (the
  /// names it loaded so far are `names_seen`, which gets `name`); "" if it may.
  std::string FileNameConflict(const std::string& name, std::set<std::string>& names_seen);
  /// The file that defines workflow `name` (loaded, or its last version
  /// broken), or "" if none does.
  std::string FileDefining(const std::string& name) const;
  // ---- events (daemon_triggers.cc, docs/triggers.md) ----
  static constexpr const char* kHookPrefix = "/hooks/";
  /// Brings the file watches in step with the registry entry `name`.
  void SyncTriggers(const std::string& name);
  /// Starts, queues or records skipped a run of `workflow` for an event,
  /// under EventLimits. Errors: no such workflow, paused, stopping, store.
  Result<EventRun> StartEventRun(const std::string& workflow, RunTrigger trigger,
                                 TriggerEvent event);
  /// POST /hooks/<workflow>: a webhook trigger's call.
  void ServeHook(const std::shared_ptr<HttpExchange>& exchange);
  // ---- the fleet (daemon_fleet.cc, docs/fleet.md) ----
  /// picoflowd.yaml `mqtt:`: connects the node to its broker; nothing of it
  /// without the section.
  Status StartFleet();
  /// Brings the fleet's subscriptions in step with the registry.
  void SyncFleet();
  /// A fleet request's run: admitted as a run started by hand.
  Result<EventRun> StartFleetRun(const std::string& workflow, const ParamValues& params,
                                 const std::string& source);
  /// What the node's retained status says of it.
  nlohmann::json FleetStatus();
  // ---- scheduling (daemon_schedule.cc) ----
  // Brings the scheduler in step with the registry entry `name` (added,
  // replaced, removed); `last_fire` from the store at startup.
  void Schedule(const std::string& name, std::optional<TimePoint> last_fire = std::nullopt);
  // Opens the timer, hooks run ends (overlap: queue), catches up, arms.
  Status StartScheduling();
  void RearmSchedule();
  void OnScheduleWake(bool clock_set);
  void StartFire(const Fire& fire);
  // Starts, while `workflow` has room for them, its queued fires and the
  // runs started by hand that wait (max_active_runs), in the order they
  // were queued (docs/scheduling.md, "Manual and scheduled runs").
  void StartWaiting(const std::string& workflow);
  RunningFn RunningCounter() const;

  DaemonConfig config_;
  HostFacts facts_;
  uv_loop_t loop_{};
  bool loop_ready_ = false;
  bool once_ = false;  ///< RunOnce: the daemon stops when its run ends
  enum class Drain { kNotYet, kDraining, kDone };
  Drain notify_drain_ = Drain::kNotYet;
  std::unique_ptr<Store> store_;
  std::unique_ptr<GroupCommit> group_commit_;  ///< one transaction per loop iteration
  std::array<std::unique_ptr<Executor>, kTaskTypeCount> executors_;  ///< by TaskType
  LocalExecutor* local_ = nullptr;                                   ///< executors_'s shell one
  EngineContext engine_;
  RunFeed feed_;
  std::unique_ptr<RunManager> runs_;
  std::unique_ptr<Pruner> pruner_;
  std::unique_ptr<Metrics> metrics_;
  std::unique_ptr<Notifier> notify_;  ///< loads the http module at its first send only
  std::unique_ptr<WebToken> web_token_;
  std::unique_ptr<HttpApi> http_api_;
  std::unique_ptr<HttpServer> http_;
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
  std::unique_ptr<FileTriggers> file_triggers_;  ///< made when a workflow has a file trigger
  std::unique_ptr<Fleet> fleet_;                 ///< made when picoflowd.yaml has `mqtt:`
  bool fleet_stopping_ = false;                  ///< FinishShutdown stopped it (it may run twice)
  std::unique_ptr<SdNotifier> notifier_;         ///< systemd READY/STOPPING/WATCHDOG (sd_notify.h)
};

}  // namespace picoflow
