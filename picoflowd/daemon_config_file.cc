#include "picoflowd/daemon_config_file.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <span>

#include "common/duration.h"
#include "common/workflow_fields.h"
#include "common/workflow_load.h"
#include "common/yaml_tree.h"

namespace picoflow {

const std::vector<std::string_view> kDaemonConfigKeys = {
    "socket",    "state_dir",  "workflows_dir", "workflows",  "log_level",
    "log_format", "read_group", "sync_full",     "output_cap", "shutdown_grace",
    "retention_max_runs", "retention_max_age", "retention_max_output_bytes",
    "metrics_listen",
};

namespace {

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

// One entry of the root map into `out`.
void ReadKey(FieldReader& reader, const YamlNode& key, const YamlNode& v, DaemonConfigFile& out) {
  static const std::string kNoPrefix;
  const Where w{kNoPrefix, key.text};
  const std::string& k = key.text;
  if (k == "socket") {
    out.socket = reader.Text(v, w);
  } else if (k == "state_dir") {
    out.state_dir = reader.Text(v, w);
  } else if (k == "workflows_dir") {
    out.workflows_dir = reader.Text(v, w);
  } else if (k == "workflows") {
    std::vector<std::string> files;
    if (!v.IsNull() && reader.TextList(v, w, false, files)) out.workflows = std::move(files);
  } else if (k == "log_level") {
    out.log_level = reader.Text(v, w);
    static constexpr std::string_view kLevels[] = {"trace", "debug", "info", "warn", "error"};
    if (out.log_level && std::find(std::begin(kLevels), std::end(kLevels), *out.log_level) ==
                             std::end(kLevels)) {
      reader.Report(v.pos, "'log_level' must be one of trace, debug, info, warn, error, got '" +
                               *out.log_level + "'" + DidYouMean(ClosestMatch(*out.log_level, kLevels)));
    }
  } else if (k == "log_format") {
    if (auto text = reader.Text(v, w)) {
      out.log_format = ParseLogFormat(*text);
      if (!out.log_format) {
        reader.Report(v.pos, "'log_format' must be text or json, got '" + *text + "'");
      }
    }
  } else if (k == "read_group") {
    out.read_group = reader.Text(v, w);
  } else if (k == "sync_full") {
    out.sync_full = reader.Bool(v, w);
  } else if (k == "output_cap") {
    if (auto n = reader.Int(v, w, 0, std::int64_t{1} << 30)) {
      out.output_cap = static_cast<std::uint64_t>(*n);
    }
  } else if (k == "metrics_listen") {
    out.metrics_listen = reader.Text(v, w);
  } else if (k == "retention_max_runs") {
    out.retention_max_runs = reader.Int(v, w, 0, 10'000'000);
  } else if (k == "retention_max_age") {
    out.retention_max_age = reader.Duration(v, w, std::chrono::seconds(0));
  } else if (k == "retention_max_output_bytes") {
    if (auto n = reader.Int(v, w, 0, std::int64_t{1} << 50)) {
      out.retention_max_output_bytes = static_cast<std::uint64_t>(*n);
    }
  } else if (k == "shutdown_grace") {
    out.shutdown_grace = reader.Duration(v, w, std::chrono::seconds(0));
    if (out.shutdown_grace && *out.shutdown_grace > std::chrono::hours(1)) {
      reader.Report(v.pos, "'shutdown_grace' must be at most 1h, got " +
                               FormatDuration(*out.shutdown_grace));
    }
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
    reader.Report(root.pos, "a daemon config file must be a map of settings, got " +
                                DescribeYamlNode(root));
    return Err(ErrorCode::kInvalid, Join(reader.Take()));
  }
  reader.CheckKeys(root, std::span<const std::string_view>(kDaemonConfigKeys), "", "key",
                   ExplainKey);
  for (std::size_t i = 0; i < root.entry_count(); ++i) {
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

void ApplyDaemonConfigFile(const DaemonConfigFile& file,
                           const std::function<bool(std::string_view flag)>& flag_given,
                           DaemonConfig& config) {
  auto set = [&](const auto& value, std::string_view flag, auto& target) {
    if (value && !flag_given(flag)) target = *value;
  };
  set(file.socket, "--socket", config.socket_path);
  set(file.state_dir, "--state-dir", config.state_dir);
  set(file.workflows_dir, "--workflows-dir", config.workflows_dir);
  set(file.workflows, "files", config.files);
  set(file.log_level, "--log-level", config.log_level);
  set(file.log_format, "--log-format", config.log_format);
  set(file.read_group, "--read-group", config.read_group);
  set(file.sync_full, "--sync-full", config.synchronous_full);
  set(file.output_cap, "--output-cap", config.output_cap);
  set(file.metrics_listen, "--metrics-listen", config.metrics_listen);
  set(file.retention_max_runs, "--retention-max-runs", config.retention_max_runs);
  set(file.retention_max_age, "--retention-max-age", config.retention_max_age);
  set(file.retention_max_output_bytes, "--retention-max-output-bytes",
      config.retention_max_output_bytes);
  if (file.shutdown_grace && !flag_given("--shutdown-grace")) {
    config.shutdown_grace = std::chrono::duration_cast<std::chrono::milliseconds>(*file.shutdown_grace);
  }
}

}  // namespace picoflow
