#pragma once
// DaemonConfigFile: picoflowd.yaml, the daemon's configuration file. One key
// per setting of the table in daemon_settings.h, read as its command-line
// flag is; a flag given on the command line wins over the file. Parsed with
// the workflow loader's YAML tree and field readers, so mistakes are reported
// as `FILE:LINE:COL: message (did you mean ...)`.

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/diagnostic.h"
#include "common/result.h"
#include "picoflowd/daemon_config.h"
#include "picoflowd/daemon_settings.h"

namespace picoflow {

/// What a file sets: DaemonConfig's defaults with every key the file gives
/// stored in, and which settings those were (a key with no value sets nothing).
struct DaemonConfigFile {
  DaemonConfig config;
  std::vector<const DaemonSetting*> set;  ///< in file order
  bool sets_notify = false;               ///< the file has `notify:` (config.notify)
  bool sets_mqtt = false;                 ///< the file has `mqtt:` (config.mqtt)

  /// True if the file gives a value for `key` (`state_dir`).
  bool Sets(std::string_view key) const;
};

/// Every key the file accepts, in the order the shipped file lists them: the
/// keys of DaemonSettings().
extern const std::vector<std::string_view> kDaemonConfigKeys;

/// Parses the text of a config file; `label` names it in messages. A file
/// of only comments and blank lines sets nothing. Returns every problem (bad
/// YAML, a root that is not a map, unknown keys with a did-you-mean hint,
/// values of the wrong type or out of range) in one kInvalid Error, one
/// `LABEL:LINE:COL: message` line per problem.
Result<DaemonConfigFile> ParseDaemonConfigFile(std::string_view text, const std::string& label);

/// Reads and parses `path`. Returns an Error whose message holds one line
/// per problem (`PATH:LINE:COL: ...`), or names the path if it cannot be read.
Result<DaemonConfigFile> LoadDaemonConfigFile(const std::string& path);

/// The config file used when --config is not given: system mode
/// /etc/picoflow/picoflowd.yaml, user mode
/// $XDG_CONFIG_HOME/picoflow/picoflowd.yaml (else ~/.config/...), each only
/// if it exists; else empty.
std::string DefaultDaemonConfigFile(bool system);

/// Copies every key the file sets into `config`, except those whose flag
/// `flag_given` says was on the command line (called with names like
/// "--state-dir"; "files" for the workflow file arguments).
void ApplyDaemonConfigFile(const DaemonConfigFile& file,
                           const std::function<bool(std::string_view flag)>& flag_given,
                           DaemonConfig& config);

}  // namespace picoflow
