#pragma once
// DaemonConfig: everything picoflowd is told at start, from flags (and later
// a config file). The core takes every path from here, never hard-coded.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "picoflowd/logging.h"

namespace picoflow {

struct DaemonConfig {
  std::string socket_path;
  std::string state_dir;
  std::string workflows_dir;            ///< empty: no directory is loaded
  std::vector<std::string> files;       ///< workflow files given as arguments
  std::string read_group;               ///< members may use read-only methods
  bool synchronous_full = false;        ///< SQLite synchronous=FULL instead of NORMAL
  std::uint64_t output_cap = 1 << 20;   ///< bytes kept per attempt and stream
  std::chrono::milliseconds shutdown_grace{10000};  ///< SIGTERM: runs get this long
  LogFormat log_format = LogFormat::kText;
  std::string log_level = "info";
};

}  // namespace picoflow
