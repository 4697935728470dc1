#include "picoflowd/daemon_config_file.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <span>

#include "common/notify.h"
#include "common/workflow_fields.h"
#include "common/workflow_load.h"
#include "common/yaml_tree.h"

namespace picoflow {

const std::vector<std::string_view> kDaemonConfigKeys = [] {
  // The table is constant-initialised, so it is complete before this runs.
  std::vector<std::string_view> keys;
  for (const DaemonSetting& s : DaemonSettings()) keys.push_back(s.key);
  return keys;
}();

namespace {

// The daemon's targets have no `secrets:` to name: their URLs are written as
// they are (this file is not stored; keep it readable by root only).
void RefuseSecretRefs(FieldReader& r, const YamlNode& node) {
  if (node.IsScalar()) {
    if (node.text.find("${secret:") != std::string::npos) {
      r.Report(node.pos,
               "notify: ${secret:NAME} is expanded in a workflow's notify targets "
               "only (they name its secrets); in picoflowd.yaml write the value "
               "itself (the file is not stored: keep it readable by root only), or "
               "give the workflow its own notify: and secrets:");
    }
    return;
  }
  for (const YamlNode& child : node.children) RefuseSecretRefs(r, child);
}

// Flags that choose which file is read, or are not daemon settings.
std::string ExplainKey(std::string_view key) {
  if (key == "system" || key == "config" || key == "once" || key == "version") {
    return "'" + std::string(key) + "' is a command-line flag only (--" + std::string(key) + ")";
  }
  return "";
}

bool OnlyComments(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    const std::size_t eol = std::min(text.find('\n', i), text.size());
    const std::string_view line = text.substr(i, eol - i);
    const std::size_t first = line.find_first_not_of(" \t\r");
    if (first != std::string_view::npos && line[first] != '#') return false;
    i = eol + 1;
  }
  return true;
}

std::string Join(const Diagnostics& diagnostics) {
  std::string out;
  for (const Diagnostic& d : diagnostics) {
    if (!out.empty()) out += '\n';
    out += d.ToString();
  }
  return out;
}

// One entry of the root map into `out`; unknown keys were reported by CheckKeys.
void ReadKey(FieldReader& reader, const YamlNode& key, const YamlNode& v, DaemonConfigFile& out) {
  const DaemonSetting* setting = FindSettingByKey(key.text);
  if (setting == nullptr) return;
  if (std::optional<SettingValue> value = ReadSettingValue(reader, *setting, v, setting->key)) {
    setting->access.store(out.config, *value);
    out.set.push_back(setting);
  }
}

}  // namespace

Result<DaemonConfigFile> ParseDaemonConfigFile(std::string_view text, const std::string& label) {
  DaemonConfigFile out;
  if (OnlyComments(text)) return out;
  YamlParse parse = ParseYaml(text, label);
  if (!parse.ok()) return Err(ErrorCode::kInvalid, Join(parse.diagnostics));
  const YamlNode& root = *parse.root;
  if (root.IsNull()) return out;
  FieldReader reader(label);
  if (!root.IsMap()) {
    reader.Report(root.pos,
                  "a daemon config file must be a map of settings, got " + DescribeYamlNode(root));
    return Err(ErrorCode::kInvalid, Join(reader.Take()));
  }
  // `notify:` is a list of targets, not a setting of the table: it has no flag.
  std::vector<std::string_view> keys = kDaemonConfigKeys;
  for (const DaemonSetting& s : DaemonSettings()) {
    if (!s.alias.empty()) keys.push_back(s.alias);  // an older name still read
  }
  keys.push_back("notify");
  keys.push_back("mqtt");  // a map of its own (fleet_config.h), no flags either
  reader.CheckKeys(root, std::span<const std::string_view>(keys), "", "key", ExplainKey);
  for (std::size_t i = 0; i < root.entry_count(); ++i) {
    if (root.key(i).text == "notify") {
      LoadNotifyTargets(reader, root.value(i), out.config.notify);
      RefuseSecretRefs(reader, root.value(i));
      out.sets_notify = true;
      continue;
    }
    if (root.key(i).text == "mqtt") {
      LoadMqttSettings(reader, root.value(i), out.config.mqtt);
      out.sets_mqtt = true;
      continue;
    }
    ReadKey(reader, root.key(i), root.value(i), out);
  }
  if (reader.problems() > 0) return Err(ErrorCode::kInvalid, Join(reader.Take()));
  return out;
}

Result<DaemonConfigFile> LoadDaemonConfigFile(const std::string& path) {
  auto text = ReadWorkflowFile(path);  // size limit, no FIFOs, no directories
  if (!text.ok()) return Err(text.error().code, path + ": " + text.error().message);
  return ParseDaemonConfigFile(*text, path);
}

std::string DefaultDaemonConfigFile(bool system) {
  std::string path;
  if (system) {
    path = "/etc/picoflow/picoflowd.yaml";
  } else {
    const char* xdg = std::getenv("XDG_CONFIG_HOME");
    const char* home = std::getenv("HOME");
    if (xdg != nullptr && xdg[0] == '/') {
      path = std::string(xdg) + "/picoflow/picoflowd.yaml";
    } else if (home != nullptr && home[0] != '\0') {
      path = std::string(home) + "/.config/picoflow/picoflowd.yaml";
    } else {
      return "";
    }
  }
  struct stat st {};
  return stat(path.c_str(), &st) == 0 ? path : "";
}

bool DaemonConfigFile::Sets(std::string_view key) const {
  return std::any_of(set.begin(), set.end(),
                     [key](const DaemonSetting* s) { return s->key == key; });
}

void ApplyDaemonConfigFile(const DaemonConfigFile& file,
                           const std::function<bool(std::string_view flag)>& flag_given,
                           DaemonConfig& config) {
  for (const DaemonSetting* setting : file.set) {
    if (!flag_given(setting->flag)) setting->access.copy(config, file.config);
  }
  if (file.sets_notify) config.notify = file.config.notify;
  if (file.sets_mqtt) config.mqtt = file.config.mqtt;
}

}  // namespace picoflow
