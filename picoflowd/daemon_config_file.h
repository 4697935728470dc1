#pragma once
// DaemonConfigFile: picoflowd.yaml, the daemon's configuration file. One key
// per command-line flag; a flag given on the command line wins over the
// file. Parsed with the workflow loader's YAML tree and field readers, so
// mistakes are reported as `FILE:LINE:COL: message (did you mean ...)`.

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/diagnostic.h"
#include "common/result.h"
#include "picoflowd/daemon_config.h"

namespace picoflow {

/// The keys a file sets; an absent key (or one with no value) is nullopt.
struct DaemonConfigFile {
  std::optional<std::string> socket;
  std::optional<std::string> state_dir;
  std::optional<std::string> workflows_dir;
  std::optional<std::vector<std::string>> workflows;  ///< like the FILES arguments
  std::optional<std::string> log_level;               ///< trace debug info warn error
  std::optional<LogFormat> log_format;
  std::optional<std::string> read_group;
  std::optional<bool> sync_full;
  std::optional<std::uint64_t> output_cap;                ///< bytes, at most 1 GiB
  std::optional<std::chrono::seconds> shutdown_grace;     ///< at most 1h
  std::optional<std::int64_t> retention_max_runs;         ///< 0..10,000,000; 0: no limit
  std::optional<std::chrono::seconds> retention_max_age;  ///< 0: no limit
  std::optional<std::uint64_t> retention_max_output_bytes;  ///< 0: no cap
  std::optional<std::string> metrics_listen;              ///< ADDR:PORT
};

/// Every key the file accepts, in the order the shipped file lists them.
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
