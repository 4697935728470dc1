#pragma once
// DaemonConfig: everything picoflowd is told at start, from flags and the
// config file (each setting's flag, key and bounds are a row of the table in
// daemon_settings.cc). The core takes every path from here, never hard-coded.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/notify.h"
#include "picoflowd/fleet_config.h"
#include "picoflowd/util/logging.h"

namespace picoflow {

/// What a graceful stop (SIGTERM, SIGINT) does with the runs in flight
/// (docs/operations.md, "Stopping and restarting").
enum class ShutdownAction {
  kInterrupt,  ///< stop their tasks, record them interrupted, resume at the next start
  kCancel,     ///< cancel them for good
};

/// The daemon's settings, each with its default.
struct DaemonConfig {
  std::string socket_path;
  std::string state_dir;
  std::string workflows_dir;       ///< empty: no directory is loaded
  std::vector<std::string> files;  ///< workflow files given as arguments
  /// picoflowd.yaml `notify:`: the targets of every workflow that has no
  /// `notify:` of its own (docs/notifications.md); empty: none.
  NotifyTargets notify;
  /// picoflowd.yaml `mqtt:`: the broker of `mqtt:` triggers and of the
  /// fleet (docs/fleet.md); off unless its broker is set.
  MqttSettings mqtt;
  std::string read_group;                           ///< members may use read-only methods
  bool synchronous_full = false;                    ///< SQLite synchronous=FULL instead of NORMAL
  std::uint64_t output_cap = 1 << 20;               ///< bytes kept per attempt and stream
  std::chrono::milliseconds shutdown_grace{10000};  ///< SIGTERM: runs get this long
  ShutdownAction on_shutdown = ShutdownAction::kInterrupt;  ///< SIGTERM: the runs in flight
  std::int64_t retention_max_runs = 1000;                   ///< runs kept per workflow; 0: no limit
  std::chrono::seconds retention_max_age{30 * 24 * 3600};   ///< runs older go; 0: no limit
  std::uint64_t retention_max_output_bytes = std::uint64_t{256} << 20;  ///< all output; 0: no cap
  std::string http_listen;  ///< ADDR:PORT of the page, /api/v1/, /metrics, /healthz; empty: off
  bool http_allow_remote = false;  ///< no warning for a listener off loopback
  LogFormat log_format = LogFormat::kText;
  std::string log_level = "info";
};

}  // namespace picoflow
