#pragma once
// picoflowd.yaml `mqtt:` (docs/fleet.md): the daemon's connection to an MQTT
// broker, for `mqtt:` triggers (docs/triggers.md) and the fleet. Off unless
// `broker` is set.

#include <chrono>
#include <string>
#include <vector>

namespace picoflow {

class FieldReader;
struct YamlNode;

struct MqttSettings {
  std::string broker;     ///< mqtt://host[:1883], mqtts://host[:8883]; empty: off
  std::string client_id;  ///< the node's id in the fleet; empty: the host name
  std::string username;
  std::string password_file;  ///< read at each connect (0600, like a secret's file)
  std::string ca_file;        ///< mqtts: the CA to check the broker with (else the system's)
  std::string cert_file;      ///< mqtts: a client certificate, with key_file
  std::string key_file;
  std::chrono::seconds keepalive{60};
  /// How long the broker keeps the node's session (its subscriptions and
  /// the QoS 1 requests sent to it) while it is offline.
  std::chrono::seconds session_expiry{7 * 24 * 3600};
  std::string group = "default";  ///< the node's fleet group
  /// The workflows a fleet request may start here: names, or "*" for every
  /// one; empty: none (`accept_runs: false`, the default).
  std::vector<std::string> accept_runs;

  bool enabled() const { return !broker.empty(); }
  /// True if a fleet request may start `workflow`.
  bool Accepts(const std::string& workflow) const;
};

/// Reads the `mqtt:` map into `out`, reporting every problem to `r`.
void LoadMqttSettings(FieldReader& r, const YamlNode& v, MqttSettings& out);

/// True if `name` may be a fleet group or node id: 1-64 letters, digits,
/// '_', '-' and '.' (it becomes a topic level).
bool IsFleetName(const std::string& name);

}  // namespace picoflow
