#include "picoflowd/fleet_config.h"

#include <algorithm>
#include <iterator>

#include "common/workflow_fields.h"
#include "common/yaml_tree.h"
#include "protocol/broker_url.h"

namespace picoflow {
namespace {

using namespace std::chrono_literals;

constexpr std::string_view kMqttKeys[] = {
    "broker",   "client_id", "username", "password_file", "ca_file",       "cert_file",
    "key_file", "keepalive", "group",    "accept_runs",   "session_expiry"};

// The url as the client will parse it: a wrong port or host is reported
// with the file's line, not at connect.
std::string BrokerUrlProblem(const std::string& url) {
  auto parsed = ParseBrokerUrl(url);
  return parsed.ok() ? "" : parsed.error().message;
}

}  // namespace

bool IsFleetName(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.';
  });
}

bool MqttSettings::Accepts(const std::string& workflow) const {
  return std::any_of(accept_runs.begin(), accept_runs.end(),
                     [&](const std::string& a) { return a == "*" || a == workflow; });
}

void LoadMqttSettings(FieldReader& r, const YamlNode& v, MqttSettings& out) {
  const std::string p = "mqtt: ";
  if (v.IsNull()) return;
  if (!v.IsMap()) {
    r.Report(v.pos,
             "'mqtt' must be a map {broker: mqtt://HOST:1883, ...}, got " + DescribeYamlNode(v));
    return;
  }
  r.CheckKeys(v, kMqttKeys, p, "key");
  const auto text = [&](std::string_view key, std::string& field) {
    if (const YamlNode* n = v.Find(key)) field = r.Text(*n, {p, key}).value_or(field);
  };
  text("broker", out.broker);
  text("client_id", out.client_id);
  text("username", out.username);
  text("password_file", out.password_file);
  text("ca_file", out.ca_file);
  text("cert_file", out.cert_file);
  text("key_file", out.key_file);
  text("group", out.group);
  if (const YamlNode* n = v.Find("broker"); n != nullptr && !BrokerUrlProblem(out.broker).empty()) {
    r.Report(n->pos, p + "'broker': " + BrokerUrlProblem(out.broker));
  } else if (n == nullptr) {
    r.Report(v.pos, p + "missing required key 'broker'");
  }
  if (!out.client_id.empty() && !IsFleetName(out.client_id)) {
    r.Report(v.Find("client_id")->pos,
             p +
                 "'client_id' must be 1-64 letters, digits, '_', '-' and '.' (it is a topic "
                 "level of the fleet), got '" +
                 out.client_id + "'");
  }
  if (!IsFleetName(out.group) || out.group == "node" || out.group == "all") {
    r.Report(v.Find("group")->pos,
             p +
                 "'group' must be 1-64 letters, digits, '_', '-' and '.', and not 'node' or "
                 "'all' (topic levels of the fleet), got '" +
                 out.group + "'");
  }
  if (out.password_file.empty() != true && out.username.empty()) {
    r.Report(v.Find("password_file")->pos, p + "'password_file' needs a 'username'");
  }
  if (out.cert_file.empty() != out.key_file.empty()) {
    r.Report(v.pos, p + "'cert_file' and 'key_file' go together");
  }
  if (const YamlNode* n = v.Find("keepalive")) {
    out.keepalive = r.Duration(*n, {p, "keepalive"}, 5s).value_or(out.keepalive);
    if (out.keepalive > 65535s) r.Report(n->pos, p + "'keepalive' must be at most 65535s");
  }
  if (const YamlNode* n = v.Find("session_expiry")) {
    out.session_expiry = r.Duration(*n, {p, "session_expiry"}, 0s).value_or(out.session_expiry);
  }
  if (const YamlNode* n = v.Find("accept_runs")) {
    out.accept_runs.clear();
    static constexpr std::string_view kBools[] = {"true",  "True",  "TRUE",
                                                  "false", "False", "FALSE"};
    const bool boolean = n->IsScalar() && std::find(std::begin(kBools), std::end(kBools),
                                                    n->text) != std::end(kBools);
    if (boolean) {
      if (n->text[0] == 't' || n->text[0] == 'T') out.accept_runs.push_back("*");
    } else if (n->IsScalar() &&
               (n->text == "yes" || n->text == "no" || n->text == "on" || n->text == "off")) {
      r.Report(n->pos, p + "'accept_runs' must be true, false or a list of workflow names, got '" +
                           n->text + "' (a workflow of that name? write [" + n->text + "])");
    } else {
      std::vector<SourcePos> positions;
      r.TextList(*n, {p, "accept_runs"}, true, out.accept_runs, &positions);
    }
  }
}

}  // namespace picoflow
