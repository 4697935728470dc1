// picoflowctl fleet status | run: the fleet over its MQTT broker
// (docs/fleet.md). Talks to the broker directly, with libmosquitto loaded by
// dlopen (protocol/mosquitto_lib.h) and its own blocking loop: no daemon is
// needed on the machine it runs on.

#include <mqtt_protocol.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "common/duration.h"
#include "common/private_file.h"
#include "picoflowctl/command.h"
#include "picoflowctl/render.h"
#include "protocol/broker_url.h"
#include "protocol/mosquitto_lib.h"

namespace picoflow::ctl {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr const char* kSystemCa = "/etc/ssl/certs/ca-certificates.crt";
// After the last retained status arrived, this long without another ends
// the reading of statuses (they come in one burst after SUBACK).
constexpr std::chrono::milliseconds kQuiet{300};

struct BrokerArgs {
  std::string url;
  std::string username;
  std::string password_file;
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  std::string timeout = "10s";
};

void AddBrokerOptions(CLI::App& c, BrokerArgs& b) {
  c.add_option("--broker", b.url,
               "The fleet's broker: mqtt://HOST[:PORT], mqtts://..., unix:///PATH")
      ->required();
  c.add_option("--username", b.username, "MQTT username");
  c.add_option("--password-file", b.password_file, "A file holding the password (mode 0600)");
  c.add_option("--ca-file", b.ca_file, "mqtts: the broker's CA (default: the system's)");
  c.add_option("--cert-file", b.cert_file, "mqtts: a client certificate");
  c.add_option("--key-file", b.key_file, "mqtts: the client certificate's key");
  c.add_option("--timeout", b.timeout,
               "How long to wait for the broker and for answers: 10s, 1m (1s to 1h)")
      ->check([](const std::string& text) -> std::string {
        auto d = ParseDuration(text);
        if (!d.ok()) return d.error().message;
        return *d >= std::chrono::seconds(1) && *d <= std::chrono::hours(1)
                   ? ""
                   : "--timeout must be 1s to 1h";
      })
      ->capture_default_str();
}

/// One blocking MQTT 5 session with the broker, clean (nothing kept after).
class Session {
 public:
  struct Message {
    std::string topic;
    std::string payload;
    std::string correlation;
  };

  ~Session() {
    if (mosq_ != nullptr) {
      if (connected_) lib_->disconnect_v5(mosq_, 0, nullptr);
      lib_->destroy(mosq_);
    }
  }

  /// Connects; an error message, or "" once the broker accepted.
  std::string Open(const BrokerArgs& b) {
    auto lib = LoadMosquitto();
    if (!lib.ok()) return lib.error().message;
    lib_ = *lib;
    auto url = ParseBrokerUrl(b.url);
    if (!url.ok()) return url.error().message;
    std::random_device rd;
    id_ = "picoflowctl-" + std::to_string(getpid()) + "-" + std::to_string(rd() % 1000000);
    mosq_ = lib_->create(id_.c_str(), true, this);
    if (mosq_ == nullptr) return "cannot make an MQTT client";
    lib_->int_option(mosq_, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
    if (!b.username.empty()) {
      std::string password;
      if (!b.password_file.empty()) {
        auto read = ReadPrivateFile(b.password_file);
        if (!read.ok()) return "--password-file: " + read.error().message;
        password = *read;
      }
      lib_->username_pw_set(mosq_, b.username.c_str(),
                            b.password_file.empty() ? nullptr : password.c_str());
    }
    if (url->scheme == BrokerScheme::kMqtts) {
      const std::string ca = b.ca_file.empty() ? kSystemCa : b.ca_file;
      const int rc = lib_->tls_set(mosq_, ca.c_str(), nullptr,
                                   b.cert_file.empty() ? nullptr : b.cert_file.c_str(),
                                   b.key_file.empty() ? nullptr : b.key_file.c_str(), nullptr);
      if (rc != MOSQ_ERR_SUCCESS) return "TLS files: " + std::string(lib_->strerror(rc));
    }
    lib_->connect_v5_callback_set(
        mosq_, [](mosquitto*, void* obj, int rc, int, const mosquitto_property*) {
          auto* self = static_cast<Session*>(obj);
          self->connack_ = rc;
        });
    lib_->subscribe_v5_callback_set(mosq_, [](mosquitto*, void* obj, int, int count,
                                              const int* granted, const mosquitto_property*) {
      auto* self = static_cast<Session*>(obj);
      ++self->subacks_;
      // A code of 0x80 or more is the broker's refusal (its ACL, say).
      if (count < 1 || granted[0] >= 0x80) ++self->refused_;
    });
    lib_->message_v5_callback_set(
        mosq_, [](mosquitto*, void* obj, const mosquitto_message* m, const mosquitto_property* p) {
          auto* self = static_cast<Session*>(obj);
          Message msg;
          msg.topic = m->topic;
          msg.payload.assign(static_cast<const char*>(m->payload),
                             static_cast<std::size_t>(m->payloadlen));
          void* data = nullptr;
          std::uint16_t len = 0;
          if (self->lib_->property_read_binary(p, MQTT_PROP_CORRELATION_DATA, &data, &len, false) !=
              nullptr) {
            msg.correlation.assign(static_cast<const char*>(data), len);
            std::free(data);
          }
          self->inbox_.push_back(std::move(msg));
        });
    auto timeout = ParseDuration(b.timeout);  // checked by --timeout's validator
    timeout_ = timeout.ok() ? *timeout : std::chrono::seconds(10);
    const int rc = lib_->connect_bind_v5(mosq_, url->host.c_str(), url->port, 30, nullptr, nullptr);
    if (rc != MOSQ_ERR_SUCCESS) {
      return "cannot reach " + b.url + ": " + lib_->strerror(rc);
    }
    const auto end = Clock::now() + timeout_;
    while (connack_ < 0 && Clock::now() < end) {
      if (int l = lib_->loop(mosq_, 100, 1); l != MOSQ_ERR_SUCCESS) {
        return "connection to " + b.url + " lost: " + lib_->strerror(l);
      }
    }
    if (connack_ < 0) return "no answer from " + b.url + " within " + b.timeout;
    if (connack_ != 0) return b.url + " refused the connection: " + lib_->reason_string(connack_);
    connected_ = true;
    return "";
  }

  /// Subscribes to each filter and waits for the broker to grant them.
  bool Subscribe(const std::vector<std::string>& filters) {
    const int want = subacks_ + static_cast<int>(filters.size());
    for (const std::string& f : filters) {
      if (lib_->subscribe_v5(mosq_, nullptr, f.c_str(), 1, 0, nullptr) != MOSQ_ERR_SUCCESS) {
        return false;
      }
    }
    return RunUntil([&] { return subacks_ >= want; }, Clock::now() + timeout_) &&
           subacks_ >= want && refused_ == 0;
  }

  bool Publish(const std::string& topic, const std::string& payload, const std::string& reply_to,
               const std::string& correlation) {
    mosquitto_property* props = nullptr;
    lib_->property_add_string(&props, MQTT_PROP_RESPONSE_TOPIC, reply_to.c_str());
    lib_->property_add_binary(&props, MQTT_PROP_CORRELATION_DATA, correlation.data(),
                              static_cast<std::uint16_t>(correlation.size()));
    const int rc = lib_->publish_v5(mosq_, nullptr, topic.c_str(), static_cast<int>(payload.size()),
                                    payload.data(), 1, false, props);
    lib_->property_free_all(&props);
    return rc == MOSQ_ERR_SUCCESS;
  }

  /// Runs the connection until `done` or `deadline`; false if the
  /// connection dropped. What arrived is in inbox().
  template <class F>
  bool RunUntil(F&& done, Clock::time_point deadline) {
    while (!done() && Clock::now() < deadline) {
      if (lib_->loop(mosq_, 50, 1) != MOSQ_ERR_SUCCESS) return false;
    }
    return true;
  }

  std::vector<Message>& inbox() { return inbox_; }
  const std::string& id() const { return id_; }
  std::chrono::seconds timeout() const { return timeout_; }

 private:
  const MosquittoLib* lib_ = nullptr;
  mosquitto* mosq_ = nullptr;
  std::string id_;
  int connack_ = -1;
  int subacks_ = 0;
  int refused_ = 0;
  bool connected_ = false;
  std::chrono::seconds timeout_{10};
  std::vector<Message> inbox_;
};

/// Every node's retained status, by node id (fleet status; fleet run --all).
std::map<std::string, json> ReadStatuses(Session& s) {
  std::map<std::string, json> nodes;
  s.Subscribe({"picoflow/node/+/status"});
  auto last = Clock::now();
  std::size_t seen = 0;
  s.RunUntil(
      [&] {
        if (s.inbox().size() != seen) {
          seen = s.inbox().size();
          last = Clock::now();
        }
        return Clock::now() - last > kQuiet;
      },
      Clock::now() + s.timeout());
  for (const auto& m : s.inbox()) {
    json status = json::parse(m.payload, nullptr, false);
    if (status.is_object() && status.contains("node")) {
      const std::string node = status.value("node", "");
      nodes[node] = std::move(status);
    }
  }
  s.inbox().clear();
  return nodes;
}

int Fail(const std::string& message, int code) {
  std::fprintf(stderr, "picoflowctl: %s\n", message.c_str());
  return code;
}

class FleetCommand final : public Command {
 public:
  CLI::App* Register(CLI::App& app) override {
    CLI::App* fleet =
        app.add_subcommand("fleet", "A fleet of picoflowd nodes on an MQTT broker (docs/fleet.md)");
    fleet->require_subcommand(1);
    status_ = fleet->add_subcommand(
        "status", "Every node of the fleet: online, version, active runs, last runs");
    AddBrokerOptions(*status_, broker_);
    status_->add_option("--group", group_, "Only the nodes of this group");
    run_ = fleet->add_subcommand("run", "Ask the fleet to run a workflow, and print the answers");
    AddBrokerOptions(*run_, broker_);
    run_->add_option("workflow", workflow_, "Workflow name")->required();
    auto* where = run_->add_option_group("target");
    where->add_option("--group", group_, "Any one free node of this group (default: default)");
    where->add_option("--node", node_, "This node");
    where->add_flag("--all", all_, "Every node");
    where->require_option(0, 1);
    run_->add_option("-p,--param", params_, "A param of the run: NAME=VALUE (repeatable)");
    run_->add_flag("--wait", wait_, "Wait for the runs to end; exit 0 only if all succeeded");
    return fleet;
  }

  int Run(const Globals& globals) override {
    Session s;
    if (std::string error = s.Open(broker_); !error.empty()) return Fail(error, kExitUnreachable);
    return status_->parsed() ? Status(s, globals) : RunWorkflow(s, globals);
  }

 private:
  int Status(Session& s, const Globals& globals) {
    std::map<std::string, json> nodes = ReadStatuses(s);
    json out = json::array();
    Table table({"NODE", "GROUP", "STATE", "VERSION", "ACTIVE", "LAST RUNS"});
    for (auto& [id, st] : nodes) {
      if (!group_.empty() && st.value("group", "") != group_) continue;
      std::string last;
      const json last_runs = st.value("last_runs", json::object());
      for (const auto& [wf, r] : last_runs.items()) {
        if (!last.empty()) last += ", ";
        last += wf + " " + r.value("status", "?") + " (run " +
                std::to_string(r.value("run_id", 0)) + ")";
      }
      const bool online = st.value("online", false);
      table.Add({id, st.value("group", ""), online ? "online" : "offline", st.value("version", "-"),
                 online ? std::to_string(st.value("active_runs", 0)) : "-",
                 last.empty() ? "-" : last});
      out.push_back(st);
    }
    if (globals.json) {
      std::printf("%s\n", json{{"nodes", out}}.dump(2).c_str());
    } else if (out.empty()) {
      std::printf("no node has published its status on this broker%s\n",
                  group_.empty() ? "" : (" in group '" + group_ + "'").c_str());
    } else {
      table.Print(stdout, TerminalWidth(stdout));
    }
    return kExitOk;
  }

  int RunWorkflow(Session& s, const Globals& globals) {
    json params = json::object();
    for (const std::string& p : params_) {
      const auto eq = p.find('=');
      if (eq == std::string::npos || eq == 0)
        return Fail("--param wants NAME=VALUE, got '" + p + "'", kExitUsage);
      params[p.substr(0, eq)] = p.substr(eq + 1);
    }
    std::size_t expected = 1;
    std::set<std::string> online;  // --all: the nodes that should answer
    if (all_) {
      for (const auto& [id, st] : ReadStatuses(s)) {
        if (st.value("online", false)) online.insert(id);
      }
      expected = online.size();
      if (expected == 0) return Fail("no node of the fleet is online", kExitFailed);
    }
    const std::string group = group_.empty() ? "default" : group_;
    const std::string topic = all_             ? "picoflow/all/run/" + workflow_
                              : !node_.empty() ? "picoflow/node/" + node_ + "/run/" + workflow_
                                               : "picoflow/" + group + "/run/" + workflow_;
    const std::string reply_to = "picoflow/responses/" + s.id();
    // --wait: the nodes' events say when runs end, their status when a node
    // goes offline before (its will, or a stop).
    if (!s.Subscribe(wait_ ? std::vector<std::string>{reply_to, "picoflow/node/+/events",
                                                      "picoflow/node/+/status"}
                           : std::vector<std::string>{reply_to})) {
      return Fail("the broker did not grant the subscriptions (its ACL?)", kExitUnreachable);
    }
    const std::string correlation = s.id();
    const json request = {{"v", 1}, {"id", s.id()}, {"params", params}};
    if (!s.Publish(topic, request.dump(), reply_to, correlation)) {
      return Fail("cannot publish to " + topic, kExitUnreachable);
    }
    std::vector<json> answers;
    std::vector<json> events;
    std::map<std::pair<std::string, std::int64_t>, std::string> runs;  // (node, run) -> status
    std::set<std::string> offline;  // nodes whose status said offline since the request
    const auto take = [&] {
      for (auto& m : s.inbox()) {
        json body = json::parse(m.payload, nullptr, false);
        if (!body.is_object()) continue;
        if (m.topic == reply_to && m.correlation == correlation) {
          answers.push_back(body);
          if (body.value("ok", false)) {
            runs[{body.value("node", ""), body.value("run_id", std::int64_t{0})}] = "";
          }
        } else if (body.value("event", "") == "run.finished") {
          events.push_back(std::move(body));
        } else if (m.topic.ends_with("/status") && !body.value("online", true)) {
          offline.insert(body.value("node", ""));
        }
      }
      s.inbox().clear();
      for (const json& e : events) {
        auto it = runs.find({e.value("node", ""), e.value("run_id", std::int64_t{0})});
        if (it != runs.end()) it->second = e.value("status", "");
      }
      // A node that went offline will not tell of its runs' ends now.
      for (auto& [key, status] : runs) {
        if (status.empty() && offline.count(key.first) != 0) status = "unknown (node offline)";
      }
    };
    s.RunUntil(
        [&] {
          take();
          return answers.size() >= expected;
        },
        Clock::now() + s.timeout());
    if (answers.empty()) {
      const std::string who = all_             ? "no node"
                              : !node_.empty() ? "node '" + node_ + "' did not answer"
                                               : "no node of group '" + group + "'";
      return Fail((all_ || node_.empty() ? who + " answered" : who) + " within " +
                      std::to_string(s.timeout().count()) +
                      "s (online, with the workflow in mqtt.accept_runs?). The request stays with "
                      "the broker: a node that is down, or dead but still in the group's share, "
                      "runs it when it returns (docs/fleet.md, \"Offline nodes\")",
                  kExitFailed);
    }
    bool refused = false;
    for (const json& a : answers) {
      refused = refused || !a.value("ok", false);
      if (globals.json) continue;
      if (a.value("ok", false)) {
        std::printf("%s: run %lld %s\n", a.value("node", "?").c_str(),
                    static_cast<long long>(a.value("run_id", std::int64_t{0})),
                    a.value("queued", false) ? "queued" : "started");
      } else {
        std::printf("%s: refused: %s\n", a.value("node", "?").c_str(),
                    a.value("error", "").c_str());
      }
    }
    bool all_ok = !refused;
    for (const json& a : answers) online.erase(a.value("node", ""));
    if (all_ && !online.empty()) {
      all_ok = false;
      std::string missing;
      for (const std::string& n : online) missing += (missing.empty() ? "" : ", ") + n;
      std::fprintf(stderr, "picoflowctl: no answer within %llds from %s\n",
                   static_cast<long long>(s.timeout().count()), missing.c_str());
    }
    if (wait_) {
      s.RunUntil(
          [&] {
            take();
            for (const auto& [key, status] : runs)
              if (status.empty()) return false;
            return true;
          },
          Clock::time_point::max());
      for (const auto& [key, status] : runs) {
        all_ok = all_ok && status == "succeeded";
        if (!globals.json) {
          std::printf("%s: run %lld %s\n", key.first.c_str(), static_cast<long long>(key.second),
                      status.empty() ? "(connection lost)" : status.c_str());
        }
      }
    }
    if (globals.json) {
      json out = {{"answers", answers}};
      if (wait_) {
        json ended = json::array();
        for (const auto& [key, status] : runs) {
          ended.push_back({{"node", key.first}, {"run_id", key.second}, {"status", status}});
        }
        out["runs"] = std::move(ended);
      }
      std::printf("%s\n", out.dump(2).c_str());
    }
    return all_ok ? kExitOk : kExitFailed;
  }

  BrokerArgs broker_;
  CLI::App* status_ = nullptr;
  CLI::App* run_ = nullptr;
  std::string group_;
  std::string node_;
  bool all_ = false;
  std::string workflow_;
  std::vector<std::string> params_;
  bool wait_ = false;
};

}  // namespace

std::vector<std::unique_ptr<Command>> FleetCommands() {
  std::vector<std::unique_ptr<Command>> out;
  out.push_back(std::make_unique<FleetCommand>());
  return out;
}

}  // namespace picoflow::ctl
