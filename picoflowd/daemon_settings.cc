#include "picoflowd/daemon_settings.h"

#include <algorithm>
#include <cassert>
#include <type_traits>

#include "common/duration.h"
#include "common/workflow_fields.h"
#include "common/yaml_tree.h"
#include "picoflowd/daemon_config.h"

namespace picoflow {
namespace {

using std::chrono::seconds;

constexpr SettingType Text() { return {SettingKind::kText, 0, 0, {}}; }
constexpr SettingType Bool() { return {SettingKind::kBool, 0, 0, {}}; }
constexpr SettingType Files() { return {SettingKind::kFiles, 0, 0, {}}; }
constexpr SettingType Integer(std::int64_t lo, std::int64_t hi) {
  return {SettingKind::kInteger, lo, hi, {}};
}
constexpr SettingType Bytes(std::int64_t lo, std::int64_t hi) {
  return {SettingKind::kBytes, lo, hi, {}};
}
constexpr SettingType Duration(seconds lo, seconds hi) {
  return {SettingKind::kDuration, lo.count(), hi.count(), {}};
}
constexpr SettingType Choice(std::span<const std::string_view> choices) {
  return {SettingKind::kChoice, 0, 0, choices};
}

std::string ShowValue(const std::string& text) { return text; }
std::string ShowValue(bool on) { return on ? "true" : "false"; }
std::string ShowValue(std::int64_t n) { return std::to_string(n); }
std::string ShowValue(std::uint64_t n) { return std::to_string(n); }
std::string ShowValue(seconds d) { return FormatDuration(d); }
std::string ShowValue(std::chrono::milliseconds d) {
  return FormatDuration(std::chrono::duration_cast<seconds>(d));
}
std::string ShowValue(LogFormat format) { return format == LogFormat::kJson ? "json" : "text"; }
std::string ShowValue(ShutdownAction action) {
  return action == ShutdownAction::kCancel ? "cancel" : "interrupt";
}
std::string ShowValue(const std::vector<std::string>& list) {
  std::string out;
  for (const std::string& item : list) out += (out.empty() ? "" : " ") + item;
  return out;
}

// A SettingValue into the field's own type. The table pairs each field with a
// kind whose value fits it; ReadSettingValue has checked the bounds.
template <auto Member>
void Store(DaemonConfig& config, const SettingValue& value) {
  auto& field = config.*Member;
  using T = std::remove_cvref_t<decltype(field)>;
  if constexpr (std::is_same_v<T, LogFormat>) {
    const std::optional<LogFormat> format = ParseLogFormat(std::get<std::string>(value));
    assert(format);
    field = *format;
  } else if constexpr (std::is_same_v<T, ShutdownAction>) {
    field = std::get<std::string>(value) == "cancel" ? ShutdownAction::kCancel
                                                     : ShutdownAction::kInterrupt;
  } else if constexpr (std::is_same_v<T, std::uint64_t>) {
    assert(std::get<std::int64_t>(value) >= 0);
    field = static_cast<std::uint64_t>(std::get<std::int64_t>(value));
  } else if constexpr (std::is_same_v<T, std::chrono::milliseconds>) {
    field = std::get<seconds>(value);
  } else {
    field = std::get<T>(value);
  }
}

template <auto Member>
void Copy(DaemonConfig& to, const DaemonConfig& from) {
  to.*Member = from.*Member;
}

template <auto Member>
std::string Show(const DaemonConfig& config) {
  return ShowValue(config.*Member);
}

template <auto Member>
constexpr SettingAccess Field() {
  return {&Store<Member>, &Copy<Member>, &Show<Member>};
}

constexpr std::string_view kLogLevels[] = {"trace", "debug", "info", "warn", "error"};
constexpr std::string_view kLogFormats[] = {"text", "json"};
constexpr std::string_view kShutdownActions[] = {"interrupt", "cancel"};

// The table. Order: as config/picoflowd.yaml lists the keys (and --help the
// flags). Bounds are the daemon's limits, the same for flag and key
// (docs/operations.md, "The config file").
constexpr DaemonSetting kSettings[] = {
    {"--socket", "socket", "PATH", "Control socket path", Text(),
     Field<&DaemonConfig::socket_path>()},
    {"--state-dir", "state_dir", "DIR", "Directory of the SQLite database", Text(),
     Field<&DaemonConfig::state_dir>()},
    {"--workflows-dir", "workflows_dir", "DIR", "Directory of *.yaml workflows", Text(),
     Field<&DaemonConfig::workflows_dir>()},
    {"files", "workflows", "FILE", "Workflow files to load at start (and on reload)", Files(),
     Field<&DaemonConfig::files>()},
    {"--log-level", "log_level", "LEVEL", "Least severe log lines written", Choice(kLogLevels),
     Field<&DaemonConfig::log_level>()},
    {"--log-format", "log_format", "FORMAT", "Log lines on stderr", Choice(kLogFormats),
     Field<&DaemonConfig::log_format>()},
    {"--read-group", "read_group", "GROUP", "Group whose members may use read-only methods", Text(),
     Field<&DaemonConfig::read_group>()},
    {"--sync-full", "sync_full", "", "SQLite synchronous=FULL (fsync every commit)", Bool(),
     Field<&DaemonConfig::synchronous_full>()},
    {"--output-cap", "output_cap", "BYTES", "Bytes of output kept per task attempt and stream",
     Bytes(0, std::int64_t{1} << 30), Field<&DaemonConfig::output_cap>()},
    {"--shutdown-grace", "shutdown_grace", "DURATION",
     "How long running tasks get to stop on SIGTERM before they are killed",
     Duration(seconds(0), std::chrono::hours(1)), Field<&DaemonConfig::shutdown_grace>()},
    {"--on-shutdown", "on_shutdown", "ACTION",
     "What SIGTERM does with the runs in flight: interrupt them (they resume at the next "
     "start) or cancel them",
     Choice(kShutdownActions), Field<&DaemonConfig::on_shutdown>()},
    {"--retention-max-runs", "retention_max_runs", "N",
     "Runs kept per workflow (0: no limit; a workflow's retention: wins)", Integer(0, 10'000'000),
     Field<&DaemonConfig::retention_max_runs>()},
    {"--retention-max-age", "retention_max_age", "DURATION",
     "Runs created longer ago are deleted (0: no limit; a workflow's retention: wins)",
     Duration(seconds(0), kMaxDuration), Field<&DaemonConfig::retention_max_age>()},
    {"--retention-max-output-bytes", "retention_max_output_bytes", "BYTES",
     "Cap of all stored task output; the oldest goes first (0: no cap)",
     Bytes(0, std::int64_t{1} << 50), Field<&DaemonConfig::retention_max_output_bytes>()},
    {"--http-listen", "http_listen", "ADDR:PORT",
     "Serve the web page, /api/v1/, /metrics and /healthz on ADDR:PORT (off unless given)", Text(),
     Field<&DaemonConfig::http_listen>(), "metrics_listen"},
    {"--http-allow-remote", "http_allow_remote", "",
     "Serve the web page and /api/v1/ on an http_listen address other than loopback (else only "
     "/metrics, /healthz and webhooks there, and a warning)",
     Bool(), Field<&DaemonConfig::http_allow_remote>()},
};

std::string Quoted(std::string_view name) { return "'" + std::string(name) + "'"; }

// `text or json`; `one of trace, debug, info, warn, error`.
std::string ChoiceList(std::span<const std::string_view> choices) {
  if (choices.size() <= 2) return JoinOr(choices);
  std::string out = "one of ";
  for (std::size_t i = 0; i < choices.size(); ++i) {
    out += (i > 0 ? ", " : "");
    out += choices[i];
  }
  return out;
}

template <class T>
std::optional<SettingValue> Wrap(std::optional<T> value) {
  if (!value) return std::nullopt;
  return SettingValue(std::move(*value));
}

std::optional<SettingValue> ReadDuration(FieldReader& reader, const SettingType& type,
                                         const YamlNode& v, Where w) {
  const std::optional<seconds> d = reader.Duration(v, w, seconds(type.min));
  if (d && d->count() > type.max) {
    reader.Report(v.pos, Quoted(w.key) + " must be at most " + FormatDuration(seconds(type.max)) +
                             ", got " + FormatDuration(*d));
    return std::nullopt;
  }
  return Wrap(d);
}

std::optional<SettingValue> ReadChoice(FieldReader& reader, const SettingType& type,
                                       const YamlNode& v, Where w) {
  std::optional<std::string> text = reader.Text(v, w);
  if (!text) return std::nullopt;
  if (std::find(type.choices.begin(), type.choices.end(), *text) != type.choices.end()) {
    return SettingValue(std::move(*text));
  }
  reader.Report(v.pos, Quoted(w.key) + " must be " + ChoiceList(type.choices) + ", got '" + *text +
                           "'" + DidYouMean(ClosestMatch(*text, type.choices)));
  return std::nullopt;
}

std::optional<SettingValue> ReadFiles(FieldReader& reader, const YamlNode& v, Where w) {
  std::vector<std::string> files;
  const std::size_t problems = reader.problems();
  // TextList skips (after reporting) items that are not strings: no partial list.
  if (!reader.TextList(v, w, false, files) || reader.problems() > problems) return std::nullopt;
  return SettingValue(std::move(files));
}

}  // namespace

std::span<const DaemonSetting> DaemonSettings() { return kSettings; }

const DaemonSetting* FindSettingByKey(std::string_view key) {
  for (const DaemonSetting& s : kSettings) {
    if (s.key == key || (!s.alias.empty() && s.alias == key)) return &s;
  }
  return nullptr;
}

bool IsPositional(const DaemonSetting& setting) { return !setting.flag.starts_with("--"); }

std::optional<SettingValue> ReadSettingValue(FieldReader& reader, const DaemonSetting& setting,
                                             const YamlNode& v, std::string_view name) {
  if (v.IsNull()) return std::nullopt;
  static const std::string kNoPrefix;
  const Where w{kNoPrefix, name};
  const SettingType& type = setting.type;
  switch (type.kind) {
    case SettingKind::kText: return Wrap(reader.Text(v, w));
    case SettingKind::kBool: return Wrap(reader.Bool(v, w));
    case SettingKind::kInteger:
    case SettingKind::kBytes: return Wrap(reader.Int(v, w, type.min, type.max));
    case SettingKind::kDuration: return ReadDuration(reader, type, v, w);
    case SettingKind::kChoice: return ReadChoice(reader, type, v, w);
    case SettingKind::kFiles: return ReadFiles(reader, v, w);
  }
  assert(false);
  return std::nullopt;
}

Result<SettingValue> ParseSettingFlag(const DaemonSetting& setting, std::string_view text) {
  assert(setting.type.kind != SettingKind::kBool && setting.type.kind != SettingKind::kFiles);
  // The flag's text is what the key's value would be if written unquoted.
  YamlNode node;
  node.kind = YamlKind::kScalar;
  node.text = std::string(text);
  FieldReader reader("");
  std::optional<SettingValue> value = ReadSettingValue(reader, setting, node, setting.flag);
  if (value) return std::move(*value);
  const Diagnostics problems = reader.Take();
  assert(!problems.empty());
  return Err(ErrorCode::kInvalid, problems.front().message);
}

std::string DescribeSettingValues(const DaemonSetting& setting) {
  const SettingType& type = setting.type;
  std::string values;
  switch (type.kind) {
    case SettingKind::kInteger:
    case SettingKind::kBytes:
      values = std::to_string(type.min) + " to " + std::to_string(type.max);
      break;
    case SettingKind::kDuration:
      values = "seconds, or like 90s, 5m, 1h30m, 30d; at most " + FormatDuration(seconds(type.max));
      break;
    case SettingKind::kChoice: values = JoinOr(type.choices); break;
    case SettingKind::kText:
    case SettingKind::kBool:
    case SettingKind::kFiles: return "";  // their defaults are empty, false, or depend on --system
  }
  return values + "; default " + setting.access.show(DaemonConfig{});
}

}  // namespace picoflow
