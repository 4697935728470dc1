// The Daemon on an MQTT broker (picoflowd.yaml `mqtt:`, docs/fleet.md): makes
// the Fleet, keeps its subscriptions in step with the registry, starts the
// runs fleet requests ask for and the runs of `mqtt:` triggers, and says
// what the node's retained status holds.

#include <unistd.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "picoflowd/daemon.h"
#include "picoflowd/engine/run_manager.h"
#include "picoflowd/fleet.h"
#include "picoflowd/rpc/rpc_json.h"
#include "picoflowd/store/group_commit.h"
#include "picoflowd/store/store.h"
#include "picoflowd/util/logging.h"

namespace picoflow {

namespace {

using json = nlohmann::json;

// The node's id: mqtt.client_id, else the host name.
Result<std::string> NodeId(const MqttSettings& settings) {
  if (!settings.client_id.empty()) return settings.client_id;
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0 || !IsFleetName(host)) {
    return Err(ErrorCode::kInvalid,
               "mqtt: the host name '" + std::string(host) +
                   "' cannot be a node id (1-64 letters, digits, '_', '-', '.'): set "
                   "mqtt.client_id");
  }
  return std::string(host);
}

}  // namespace

Status Daemon::StartFleet() {
  if (!config_.mqtt.enabled()) return {};
  auto node = NodeId(config_.mqtt);
  if (!node.ok()) return node.error();
  Fleet::Callbacks callbacks;
  callbacks.start_run = [this](const std::string& workflow, const ParamValues& params,
                               const std::string& source) {
    return StartFleetRun(workflow, params, source);
  };
  callbacks.trigger = [this](const std::string& workflow, TriggerEvent event) {
    // StartEventRun logs what it did.
    (void)StartEventRun(workflow, RunTrigger::kMqtt, std::move(event));
  };
  callbacks.status = [this] { return FleetStatus(); };
  fleet_ = std::make_unique<Fleet>(&loop_, config_.mqtt, *node,
                                   config_.state_dir + "/mqtt-subscriptions", std::move(callbacks));
  if (Status s = fleet_->Start(); !s.ok()) return s;
  engine_.observers.push_back(fleet_.get());
  return {};
}

void Daemon::SyncFleet() {
  if (!fleet_) return;
  std::map<std::string, std::vector<MqttTrigger>> workflows;
  for (const auto& [name, entry] : registry_.entries()) {
    if (!entry.version) continue;
    std::vector<MqttTrigger>& mqtt = workflows[name];
    for (const WorkflowTrigger& t : entry.version->workflow->triggers) {
      if (t.kind == TriggerKind::kMqtt) mqtt.push_back(t.mqtt);
    }
  }
  fleet_->SetWorkflows(workflows);
}

Result<EventRun> Daemon::StartFleetRun(const std::string& workflow, const ParamValues& params,
                                       const std::string& source) {
  const auto* entry = registry_.Find(workflow);
  if (entry == nullptr || !entry->version) {
    return Err(ErrorCode::kNotFound, "node has no workflow '" + workflow + "'");
  }
  if (stopping_) return Err(ErrorCode::kUnavailable, "the node is stopping");
  RunRequest request;
  request.trigger = RunTrigger::kFleet;
  request.params = params;
  request.event.source = source;
  if (Status checked = RunManager::Check(*entry->version, request); !checked.ok()) {
    return checked.error();
  }
  // A fleet request is a run asked for by hand, from afar: held back only
  // by max_active_runs, as run.start is (docs/scheduling.md).
  const std::vector<std::int64_t> running = runs_->RunningIds(workflow);
  const AdmissionDecision admit = AdmitManualRun(
      LimitsFor(registry_, *entry->version->workflow), running,
      runs_->WaitingIds(workflow).size() + (scheduler_ ? scheduler_->QueuedCount(workflow) : 0),
      false);
  if (admit.action == Admission::kRefuse) return Err(ErrorCode::kConflict, admit.why);
  EventRun out;
  LogFields f;
  f.event = "fleet.run";
  f.workflow = workflow;
  if (admit.action == Admission::kQueue) {
    auto id = runs_->QueueRun(entry->version, request, "queued: " + admit.why);
    if (!id.ok()) return id.error();
    out.run_id = *id;
    out.queued = true;
    out.reason = admit.why;
  } else {
    auto id = runs_->StartRun(entry->version, request);
    if (!id.ok()) return id.error();
    out.run_id = *id;
  }
  f.run = out.run_id;
  LogInfo(f, source + ": run " + (out.queued ? "queued" : "started"));
  group_commit_->CommitNow();  // the answer's run is stored
  return out;
}

json Daemon::MqttState() const {
  if (!fleet_) return nullptr;
  return {{"broker", config_.mqtt.broker},
          {"node", fleet_->node()},
          {"group", config_.mqtt.group},
          {"connected", fleet_->connected()}};
}

json Daemon::FleetStatus() {
  json workflows = json::array();
  json last = json::object();
  for (const auto& [name, entry] : registry_.entries()) {
    if (!entry.version) continue;
    workflows.push_back(name);
    auto latest = store_->LatestRun(name);
    if (latest.ok() && latest->has_value()) {
      const RunRecord& r = **latest;
      last[name] = {{"run_id", r.id},
                    {"status", RunStatusName(r.status)},
                    {"trigger", RunTriggerName(r.trigger)},
                    {"ended_at", r.ended_at ? json(TimeString(*r.ended_at)) : json(nullptr)}};
    }
  }
  return {{"version", PICOFLOW_VERSION},
          {"workflows", std::move(workflows)},
          {"active_runs", runs_->active()},
          {"last_runs", std::move(last)}};
}

}  // namespace picoflow
