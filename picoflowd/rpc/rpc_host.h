#pragma once
// RpcHost: what the RPC methods need of the daemon — the parts they read
// (workflows, store, live runs, schedule, the run feed) and the operations
// that change several parts at once (submit, remove, reload, pause, prune).
// The Daemon implements it; the rpc layer never includes the daemon's own
// headers (docs/architecture.md).

#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/diagnostic.h"
#include "common/notify.h"
#include "common/result.h"
#include "picoflowd/store/store.h"

namespace picoflow {

class RpcServer;
class RunFeed;
class RunManager;
class Scheduler;
class WorkflowRegistry;
struct WorkflowVersion;

/// What a reload changed.
struct ReloadReport {
  std::vector<std::string> added;
  std::vector<std::string> replaced;
  std::vector<std::string> removed;
  std::vector<std::string> unchanged;
  std::vector<Diagnostic> errors;  ///< of files that did not load
};

/// Where the daemon lives and since when, for daemon.status.
struct HostFacts {
  std::string socket_path;
  std::string state_dir;
  std::string workflows_dir;
  std::chrono::steady_clock::time_point started_at;
  /// How task processes are kept together and ended (exec/containment.h):
  /// "cgroup", "subreaper" or "process-group", and why that mode.
  std::string containment = "process-group";
  std::string containment_reason;
};

class RpcHost {
 public:
  virtual ~RpcHost() = default;

  /// The node's connection to its broker ({broker, node, group,
  /// connected}), or null without picoflowd.yaml `mqtt:` (docs/fleet.md).
  virtual nlohmann::json MqttState() const { return nullptr; }

  // ---- the parts ----
  virtual WorkflowRegistry& registry() = 0;
  virtual Store& store() = 0;
  virtual RunManager& runs() = 0;
  virtual const Scheduler& scheduler() const = 0;
  /// The observer that lets calls follow runs (registered with the engine).
  virtual RunFeed& feed() = 0;
  /// The control socket's server, or null before it exists.
  virtual const RpcServer* server() const = 0;
  virtual const HostFacts& facts() const = 0;
  /// Errors of workflow files that define no loaded workflow (last reload).
  virtual const Diagnostics& load_errors() const = 0;

  // ---- the operations ----
  /// Stores and registers a submitted workflow (replacing an earlier version
  /// without touching its runs in progress). Returns true if it replaced one.
  /// Returns kConflict, naming the file, if a workflow file defines the name
  /// (the files own their names, docs/rpc.md); an Error if the store refused.
  virtual Result<bool> Submit(std::shared_ptr<const WorkflowVersion> version) = 0;
  /// Forgets a workflow (its history stays). Returns kNotFound if unknown.
  virtual Status Remove(const std::string& name) = 0;
  /// Re-reads the workflows directory and the files given at start.
  virtual ReloadReport Reload() = 0;
  /// Pauses or resumes a workflow's schedule (kept in the store). Returns
  /// kNotFound if there is no such workflow.
  virtual Status SetPaused(const std::string& name, bool paused) = 0;
  /// Applies retention now; with dry_run only counts. Returns an Error on a
  /// store failure.
  virtual Result<PruneCounts> PruneNow(bool dry_run) = 0;
  /// Sends a test notification to every notify target of `workflow` and
  /// calls `done` with their outcomes once all are known. Returns an Error
  /// (and never calls `done`) if there is no such workflow or it has no
  /// target.
  virtual Status NotifyTest(const std::string& workflow,
                            std::function<void(std::vector<NotifyTestOutcome>)> done) = 0;
};

}  // namespace picoflow
