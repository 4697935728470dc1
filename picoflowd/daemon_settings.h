#pragma once
// DaemonSetting: the table of picoflowd's settings, each defined once with its
// command-line flag, config-file key, help text, kind of value and bounds, and
// where it lives in DaemonConfig. main.cc registers a flag per row and the
// config file reader (daemon_config_file.h) reads a key per row, both through
// ReadSettingValue, so a flag and its key accept the same values
// (docs/operations.md, "The config file").

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/result.h"

namespace picoflow {

struct DaemonConfig;
class FieldReader;
struct YamlNode;

/// What a setting's value is, which decides how its text is read.
enum class SettingKind {
  kText,      ///< any string
  kBool,      ///< a flag without a value; true or false as a key
  kInteger,   ///< a decimal integer in [min, max]
  kBytes,     ///< a decimal number of bytes in [min, max]
  kDuration,  ///< a duration (common/duration.h) of [min, max] seconds
  kChoice,    ///< one of `choices`
  kFiles,     ///< a list of paths: the FILE arguments, a YAML list as a key
};

/// A value read from a flag or a key, before DaemonSetting::store puts it in
/// a DaemonConfig: text and choices are strings, integers and byte counts
/// int64, durations seconds, files a list.
using SettingValue =
    std::variant<std::string, bool, std::int64_t, std::chrono::seconds, std::vector<std::string>>;

/// The kind of a setting's value and its bounds; build it with the helpers below.
struct SettingType {
  SettingKind kind = SettingKind::kText;
  std::int64_t min = 0;  ///< kInteger, kBytes; seconds for kDuration
  std::int64_t max = 0;
  std::span<const std::string_view> choices;  ///< kChoice
};

/// Where a setting lives in DaemonConfig; build it with SettingField<&DaemonConfig::x>().
struct SettingAccess {
  /// Stores a value that ReadSettingValue accepted for the setting.
  void (*store)(DaemonConfig& config, const SettingValue& value);
  /// Copies the setting from `from` into `to`.
  void (*copy)(DaemonConfig& to, const DaemonConfig& from);
  /// The value as a config file would write it (`10s`, `1048576`, `json`;
  /// a list as its items separated by spaces).
  std::string (*show)(const DaemonConfig& config);
};

/// One daemon setting: one row of the table.
struct DaemonSetting {
  std::string_view flag;        ///< `--state-dir`; `files` for the FILE arguments
  std::string_view key;         ///< `state_dir`, its key in picoflowd.yaml
  std::string_view value_name;  ///< `DIR`, shown in --help
  std::string_view help;        ///< one line for --help, without bounds or default
  SettingType type;
  SettingAccess access;
  /// An older name of the setting, still accepted: `metrics_listen` (its
  /// flag is `--` + the key with '-' for '_'); empty: none.
  std::string_view alias{};
};

/// Every setting, in the order the shipped config file lists them.
std::span<const DaemonSetting> DaemonSettings();

/// The setting whose key is `key`, or nullptr.
const DaemonSetting* FindSettingByKey(std::string_view key);

/// True for the FILE arguments: a setting with no `--` flag of its own.
bool IsPositional(const DaemonSetting& setting);

/// Reads `v` as a value of `setting`, naming it `name` in messages (its key
/// for the config file, its flag for the command line): `'NAME' must be an
/// integer from 0 to 1073741824, got 'lots'`. Returns nullopt for a null `v`
/// (not set) and, after reporting the problem to `reader`, for a value of the
/// wrong type or out of bounds.
std::optional<SettingValue> ReadSettingValue(FieldReader& reader, const DaemonSetting& setting,
                                             const YamlNode& v, std::string_view name);

/// Reads a flag's text as ReadSettingValue reads a plain YAML scalar, so a
/// flag accepts exactly what its key does (`--shutdown-grace 30s`). Returns a
/// kInvalid Error naming the flag, the value and what is accepted. Not for
/// kBool or kFiles settings, whose values come from the command line parser.
Result<SettingValue> ParseSettingFlag(const DaemonSetting& setting, std::string_view text);

/// What values the setting accepts and its default, for --help:
/// `0 to 1073741824; default 1048576`. Empty for settings with neither.
std::string DescribeSettingValues(const DaemonSetting& setting);

}  // namespace picoflow
