#include "picoflowd/fleet.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <utility>

#include "common/private_file.h"
#include "picoflowd/mqtt/mqtt_client.h"
#include "picoflowd/rpc/rpc_json.h"
#include "picoflowd/util/logging.h"

namespace picoflow {
namespace {

using json = nlohmann::json;

// The system's CA bundle, for mqtts:// without a ca_file (Debian's
// ca-certificates).
constexpr const char* kSystemCa = "/etc/ssl/certs/ca-certificates.crt";

// A status change waits this long for others before it is published.
constexpr std::uint64_t kStatusCoalesceMs = 500;

// Answers wait on the broker this long for a requester that is gone.
constexpr std::uint32_t kAnswerExpiryS = 3600;

std::vector<std::string> Levels(const std::string& topic) {
  std::vector<std::string> out;
  std::size_t start = 0;
  for (;;) {
    const std::size_t slash = topic.find('/', start);
    out.push_back(topic.substr(start, slash == std::string::npos ? slash : slash - start));
    if (slash == std::string::npos) return out;
    start = slash + 1;
  }
}

std::string Now() { return TimeString(std::chrono::system_clock::now()); }

LogFields FleetLog(std::string_view event) {
  LogFields f;
  f.event = std::string(event);
  return f;
}

}  // namespace

std::string FleetTopics::GroupRun(const std::string& group, const std::string& workflow) {
  return "picoflow/" + group + "/run/" + workflow;
}
std::string FleetTopics::NodeRun(const std::string& node, const std::string& workflow) {
  return "picoflow/node/" + node + "/run/" + workflow;
}
std::string FleetTopics::AllRun(const std::string& workflow) {
  return "picoflow/all/run/" + workflow;
}
std::string FleetTopics::Events(const std::string& node) {
  return "picoflow/node/" + node + "/events";
}
std::string FleetTopics::Status(const std::string& node) {
  return "picoflow/node/" + node + "/status";
}

Fleet::Fleet(uv_loop_t* loop, MqttSettings settings, std::string node, std::string held_file,
             Callbacks callbacks)
    : loop_(loop),
      settings_(std::move(settings)),
      node_(std::move(node)),
      callbacks_(std::move(callbacks)),
      status_timer_(this),
      held_file_(std::move(held_file)) {}

Fleet::~Fleet() = default;

bool Fleet::connected() const { return client_ && client_->connected(); }

Status Fleet::Start() {
  MqttOptions o;
  o.url = settings_.broker;
  o.client_id = node_;
  o.username = settings_.username;
  if (!settings_.password_file.empty()) {
    Result<std::string> password = ReadPrivateFile(settings_.password_file);
    if (!password.ok()) {
      return Err(password.error().code, "mqtt: password_file: " + password.error().message);
    }
    o.password = std::move(*password);
  }
  o.ca_file = settings_.ca_file.empty() && settings_.broker.starts_with("mqtts://")
                  ? kSystemCa
                  : settings_.ca_file;
  for (const std::string* file : {&o.ca_file, &settings_.cert_file, &settings_.key_file}) {
    if (!file->empty() && access(file->c_str(), R_OK) != 0) {
      return Err(ErrorCode::kInvalid, "mqtt: cannot read " + *file + ": " + std::strerror(errno));
    }
  }
  o.cert_file = settings_.cert_file;
  o.key_file = settings_.key_file;
  o.keepalive_s = static_cast<int>(settings_.keepalive.count());
  o.session_expiry_s = static_cast<std::uint32_t>(settings_.session_expiry.count());
  o.will = MqttOptions::Will{FleetTopics::Status(node_),
                             json{{"v", kFleetPayloadVersion},
                                  {"node", node_},
                                  {"group", settings_.group},
                                  {"online", false}}
                                 .dump(),
                             1, true};
  auto made = MqttClient::Create(loop_, std::move(o));
  if (!made.ok()) return Err(made.error().code, "mqtt: " + made.error().message);
  client_ = std::move(*made);
  client_->on_message = [this](const MqttMessage& m) { OnMessage(m); };
  client_->on_connection = [this](bool up, const std::string& why) { OnConnection(up, why); };
  if (int rc = uv_timer_init(loop_, status_timer_.get()); rc != 0) {
    return Err(ErrorCode::kIo, std::string("uv_timer_init: ") + uv_strerror(rc));
  }
  status_timer_.MarkInitialized();
  std::ifstream held(held_file_);
  for (std::string line; std::getline(held, line);) {
    if (!line.empty()) stale_.insert(line);
  }
  Want({});
  client_->Start();
  std::string accepts;
  for (const std::string& a : settings_.accept_runs) accepts += (accepts.empty() ? "" : ", ") + a;
  LogInfo(FleetLog("fleet.start"), "mqtt: node '" + node_ + "' of group '" + settings_.group +
                                       "' connecting to " + settings_.broker +
                                       "; fleet runs accepted: " +
                                       (accepts.empty()  ? "none (mqtt.accept_runs)"
                                        : accepts == "*" ? "every workflow"
                                                         : accepts));
  return {};
}

void Fleet::SetWorkflows(const std::map<std::string, std::vector<MqttTrigger>>& workflows) {
  triggers_.clear();
  std::map<std::string, int> filters;  // filter -> QoS
  for (const auto& [name, triggers] : workflows) {
    if (settings_.Accepts(name)) {
      filters["$share/" + settings_.group + "/" + FleetTopics::GroupRun(settings_.group, name)] = 1;
    }
    for (const MqttTrigger& t : triggers) {
      triggers_[t.topic].push_back(name);
      int& qos = filters.try_emplace(t.topic, t.qos).first->second;
      qos = std::max(qos, t.qos);  // the highest any workflow asks for
    }
  }
  if (client_) Want(std::move(filters));
  StatusChanged();
}

void Fleet::Want(std::map<std::string, int> filters) {
  // Always: requests to this node and to every node (the answer says when
  // a workflow is not accepted).
  filters["picoflow/node/" + node_ + "/run/+"] = 1;
  filters["picoflow/all/run/+"] = 1;
  for (const auto& [f, qos] : subscribed_) {
    if (filters.count(f) == 0) client_->Unsubscribe(f);
  }
  // Held by the session an earlier process left; wanted again later, a
  // filter is subscribed again (MqttClient::Subscribe drops the unsubscribe).
  for (const std::string& f : stale_) {
    if (filters.count(f) == 0 && subscribed_.count(f) == 0) client_->Unsubscribe(f);
  }
  stale_.clear();
  const bool changed = filters != subscribed_;
  for (const auto& [f, qos] : filters) {
    auto held = subscribed_.find(f);
    if (held == subscribed_.end() || held->second != qos) client_->Subscribe(f, qos);
  }
  subscribed_ = std::move(filters);
  if (changed) SaveHeld();
}

void Fleet::SaveHeld() {
  // Written whole and renamed: a crash leaves the old list or the new one.
  const std::string tmp = held_file_ + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    for (const auto& [f, qos] : subscribed_) out << f << '\n';
    if (!out.flush()) {
      LogWarn(FleetLog("fleet.subscriptions"), "cannot write " + tmp);
      return;
    }
  }
  if (std::rename(tmp.c_str(), held_file_.c_str()) != 0) {
    LogWarn(FleetLog("fleet.subscriptions"), "cannot rename " + tmp + " to " + held_file_);
  }
}

void Fleet::OnConnection(bool up, const std::string& /*why*/) {
  // The client logs each connect and each failure itself.
  if (up) PublishStatus();
}

void Fleet::OnMessage(const MqttMessage& m) {
  const std::vector<std::string> levels = Levels(m.topic);
  if (levels[0] == "picoflow") {
    if (levels.size() == 4 && levels[1] == settings_.group && levels[2] == "run") {
      OnRequest(m, levels[3], "group");
    } else if (levels.size() == 5 && levels[1] == "node" && levels[2] == node_ &&
               levels[3] == "run") {
      OnRequest(m, levels[4], "node");
    } else if (levels.size() == 4 && levels[1] == "all" && levels[2] == "run") {
      OnRequest(m, levels[3], "all");
    }
    return;  // the fleet's other topics start nothing
  }
  // A retained message is an old state, sent again at each subscribe: not
  // an event.
  if (m.retain) return;
  std::set<std::string> workflows;
  for (const auto& [filter, names] : triggers_) {
    if (TopicMatches(filter, m.topic)) workflows.insert(names.begin(), names.end());
  }
  if (workflows.empty()) return;
  if (m.payload.size() > kMaxTriggerPayload) {
    LogWarn(FleetLog("trigger.error"), "mqtt message on " + m.topic + " dropped: its payload (" +
                                           std::to_string(m.payload.size()) +
                                           " bytes) is larger than 64 KiB");
    return;
  }
  for (const std::string& workflow : workflows) {
    TriggerEvent event;
    event.topic = m.topic;
    event.payload = m.payload;
    callbacks_.trigger(workflow, std::move(event));
  }
}

void Fleet::OnRequest(const MqttMessage& m, const std::string& workflow, const char* target) {
  json answer = {{"v", kFleetPayloadVersion}, {"node", node_}, {"workflow", workflow}};
  const auto fail = [&](const std::string& message) {
    answer["ok"] = false;
    answer["error"] = message;
    LogFields f = FleetLog("fleet.request");
    f.workflow = workflow;
    LogWarn(f, std::string("fleet request (") + target + ") refused: " + message);
    Answer(m, std::move(answer));
  };
  if (m.payload.size() > kMaxTriggerPayload) return fail("the request is larger than 64 KiB");
  const json body = json::parse(m.payload, nullptr, false);
  if (!body.is_object()) return fail("the request must be a JSON object like {\"v\": 1}");
  if (body.contains("id")) answer["id"] = body["id"];
  if (body.value("v", json(1)) != json(kFleetPayloadVersion)) {
    return fail("version " + body["v"].dump() + " is not known here (this node speaks v 1)");
  }
  ParamValues params;
  if (body.contains("params")) {
    if (!body["params"].is_object()) return fail("'params' must be an object of name: value");
    for (const auto& [name, value] : body["params"].items()) {
      params.emplace_back(name, value.is_string() ? value.get<std::string>() : value.dump());
    }
  }
  if (!settings_.Accepts(workflow)) {
    return fail("node '" + node_ + "' does not accept fleet runs of '" + workflow +
                "' (mqtt.accept_runs)");
  }
  std::string source = std::string("fleet ") + target;
  if (body.contains("id") && body["id"].is_string()) source += " " + body["id"].get<std::string>();
  Result<EventRun> started = callbacks_.start_run(workflow, params, source);
  if (!started.ok()) return fail(started.error().message);
  answer["ok"] = !started->skipped;
  answer["run_id"] = started->run_id;
  answer["queued"] = started->queued;
  if (started->skipped) answer["error"] = "skipped: " + started->reason;
  Answer(m, std::move(answer));
}

void Fleet::Answer(const MqttMessage& request, json body) {
  if (request.response_topic.empty()) {
    LogInfo(FleetLog("fleet.request"),
            "a request on " + request.topic + " had no response topic: not answered");
    return;
  }
  MqttPublish p;
  p.topic = request.response_topic;
  p.payload = body.dump(-1, ' ', false, json::error_handler_t::replace);
  p.qos = 1;
  p.correlation_data = request.correlation_data;
  p.message_expiry_s = kAnswerExpiryS;
  LogIfFailed(FleetLog("fleet.publish"), client_->Publish(std::move(p)));
}

void Fleet::Publish(const std::string& topic, const json& body, bool retain) {
  if (!client_) return;
  MqttPublish p;
  p.topic = topic;
  p.payload = body.dump(-1, ' ', false, json::error_handler_t::replace);
  p.qos = 1;
  p.retain = retain;
  LogIfFailed(FleetLog("fleet.publish"), client_->Publish(std::move(p)));
}

void Fleet::StatusChanged() {
  if (!status_timer_.initialized() || status_due_) return;
  status_due_ = true;
  uv_timer_start(
      status_timer_.get(),
      [](uv_timer_t* h) noexcept {
        auto* self = OwnerOf<Fleet>(h);
        if (self == nullptr) return;
        GuardCallback("fleet status", [self] { self->PublishStatus(); });
      },
      kStatusCoalesceMs, 0);
}

void Fleet::PublishStatus() {
  status_due_ = false;
  if (status_timer_.initialized()) uv_timer_stop(status_timer_.get());
  if (!connected()) return;  // published at the next connect
  json status = callbacks_.status ? callbacks_.status() : json::object();
  status["v"] = kFleetPayloadVersion;
  status["node"] = node_;
  status["group"] = settings_.group;
  status["online"] = true;
  status["at"] = Now();
  Publish(FleetTopics::Status(node_), status, true);
}

void Fleet::OnRunStarted(std::int64_t run_id, const Workflow& workflow, bool resumed) {
  live_[run_id] = workflow.name;
  Publish(FleetTopics::Events(node_),
          json{{"v", kFleetPayloadVersion},
               {"node", node_},
               {"event", "run.started"},
               {"workflow", workflow.name},
               {"run_id", run_id},
               {"resumed", resumed},
               {"at", Now()}},
          false);
  StatusChanged();
}

void Fleet::OnRunFinished(std::int64_t run_id, RunStatus status) {
  std::string workflow;
  if (auto it = live_.find(run_id); it != live_.end()) {
    workflow = it->second;
    live_.erase(it);
  }
  Publish(FleetTopics::Events(node_),
          json{{"v", kFleetPayloadVersion},
               {"node", node_},
               {"event", "run.finished"},
               {"workflow", workflow},
               {"run_id", run_id},
               {"status", RunStatusName(status)},
               {"at", Now()}},
          false);
  StatusChanged();
}

void Fleet::Stop(std::function<void()> done) {
  status_timer_.Close();
  status_due_ = false;
  if (!client_) {
    done();
    return;
  }
  // Said before the DISCONNECT, which keeps the broker from publishing the
  // will: the fleet sees a node that stopped cleanly as offline too. And
  // the node leaves its group's shares: the broker keeps a persistent
  // session in a share while it is offline, and would hand it a share of
  // the group's requests until it returns (docs/fleet.md, "Offline nodes").
  // The next start subscribes again (the subscriptions file still names them).
  if (client_->connected()) {
    for (const auto& [filter, qos] : subscribed_) {
      if (filter.starts_with("$share/")) client_->Unsubscribe(filter);
    }
    Publish(FleetTopics::Status(node_),
            json{{"v", kFleetPayloadVersion},
                 {"node", node_},
                 {"group", settings_.group},
                 {"online", false},
                 {"at", Now()}},
            true);
  }
  client_->Stop(std::move(done));
}

}  // namespace picoflow
