#pragma once
// Fleet: the daemon on an MQTT broker (docs/fleet.md) — picoflowd.yaml
// `mqtt:`. Over one MqttClient it
//   - takes run requests on the fleet's topics: picoflow/<group>/run/<wf>
//     (a shared subscription: the broker gives each to one node of the
//     group that has the workflow), picoflow/node/<id>/run/<wf> (this node),
//     picoflow/all/run/<wf> (every node), and answers each on its MQTT 5
//     response topic;
//   - publishes every run's start and end to picoflow/node/<id>/events, and
//     the node's state, retained, to picoflow/node/<id>/status (the will
//     says offline when the connection dies);
//   - hands the messages of `mqtt:` triggers (docs/triggers.md) to the
//     daemon.
// The topics and payloads are a stable contract: JSON with "v": 1.

#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/workflow.h"
#include "common/workflow_triggers.h"
#include "picoflowd/engine/run_admission.h"
#include "picoflowd/engine/run_observer.h"
#include "picoflowd/fleet_config.h"
#include "picoflowd/util/uv_handle.h"

namespace picoflow {

class MqttClient;
struct MqttMessage;

/// The version of the fleet's payloads (their "v").
inline constexpr int kFleetPayloadVersion = 1;

/// The fleet's topics (docs/fleet.md, "Topics").
struct FleetTopics {
  static std::string GroupRun(const std::string& group, const std::string& workflow);
  static std::string NodeRun(const std::string& node, const std::string& workflow);
  static std::string AllRun(const std::string& workflow);
  static std::string Events(const std::string& node);
  static std::string Status(const std::string& node);
};

class Fleet final : public RunObserver {
 public:
  struct Callbacks {
    /// A fleet request: start `workflow` with `params` (kFleet); `source`
    /// says who asked, for the run's event.
    std::function<Result<EventRun>(const std::string& workflow, const ParamValues& params,
                                   const std::string& source)>
        start_run;
    /// A message of an `mqtt:` trigger of `workflow`.
    std::function<void(const std::string& workflow, TriggerEvent event)> trigger;
    /// The node's state for its retained status (workflows, active runs,
    /// last run per workflow); Fleet adds v, node, group, online, version.
    std::function<nlohmann::json()> status;
  };

  /// `node`: the node's id (MqttSettings::client_id, or the host name).
  /// `held_file`: where the filters the broker's session holds are kept
  /// (STATE_DIR/mqtt-subscriptions), so that a restart drops those no
  /// longer wanted (a removed workflow, a changed accept_runs or group): the
  /// session outlives the process.
  Fleet(uv_loop_t* loop, MqttSettings settings, std::string node, std::string held_file,
        Callbacks callbacks);
  ~Fleet() override;
  Fleet(const Fleet&) = delete;
  Fleet& operator=(const Fleet&) = delete;

  /// Reads the password file, loads libmosquitto, connects (and keeps
  /// reconnecting). An Error says what is missing (the library, the file).
  Status Start();
  /// The workflows the node has now: name -> its `mqtt:` triggers.
  /// Subscribes to what is new, unsubscribes from what is gone.
  void SetWorkflows(const std::map<std::string, std::vector<MqttTrigger>>& workflows);
  /// The node's state changed: its status is published soon (coalesced).
  void StatusChanged();
  /// Publishes the offline status and disconnects; `done` after.
  void Stop(std::function<void()> done);

  const std::string& node() const { return node_; }
  bool connected() const;

  // ---- RunObserver: every run's start and end go to the events topic ----
  void OnRunStarted(std::int64_t run_id, const Workflow& workflow, bool resumed) override;
  void OnRunFinished(std::int64_t run_id, RunStatus status) override;

 private:
  void OnConnection(bool up, const std::string& why);
  void OnMessage(const MqttMessage& message);
  void OnRequest(const MqttMessage& message, const std::string& workflow, const char* target);
  void Answer(const MqttMessage& request, nlohmann::json body);
  void PublishStatus();
  void Publish(const std::string& topic, const nlohmann::json& body, bool retain);
  void Want(std::map<std::string, int> filters);
  void SaveHeld();

  uv_loop_t* loop_;
  MqttSettings settings_;
  std::string node_;
  Callbacks callbacks_;
  std::unique_ptr<MqttClient> client_;
  UvHandle<uv_timer_t> status_timer_;  ///< armed only while a status publish waits
  bool status_due_ = false;
  std::map<std::string, int> subscribed_;  ///< topic filters held now -> their QoS
  std::string held_file_;
  std::set<std::string> stale_;  ///< filters an earlier process held, until the first Want
  /// Trigger filter -> the workflows it starts.
  std::map<std::string, std::vector<std::string>> triggers_;
  std::map<std::int64_t, std::string> live_;  ///< run id -> workflow, between start and end
};

}  // namespace picoflow
