#pragma once
// Command: one picoflowctl subcommand. Each registers its CLI11 subcommand and
// options, and runs once parsed. Exit codes are the contract in README.md
// and man/picoflowctl.1.

#include <memory>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace picoflow::ctl {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;  ///< failed run, invalid file or RPC error
inline constexpr int kExitUsage = 2;
inline constexpr int kExitUnreachable = 3;    ///< the daemon's socket did not answer
inline constexpr int kExitInterrupted = 130;  ///< Ctrl-C ended a wait (128 + SIGINT, as shells do)

/// Options shared by every subcommand.
struct Globals {
  std::string socket;      ///< control socket path; defaulted from the user/system mode
  bool json = false;       ///< machine-readable output
  bool no_colour = false;  ///< --no-color: never colour, even on a terminal
  bool utc = false;        ///< --utc: times in UTC, not the local zone
};

class Command {
 public:
  virtual ~Command() = default;
  /// Adds the subcommand to `app` and binds its options to members.
  virtual CLI::App* Register(CLI::App& app) = 0;
  /// Runs after a successful parse; returns the process exit code.
  virtual int Run(const Globals& globals) = 0;
};

/// Commands that need no daemon: validate, cron.
std::vector<std::unique_ptr<Command>> OfflineCommands();
/// Commands that talk to picoflowd over its socket.
std::vector<std::unique_ptr<Command>> DaemonCommands();
/// `fleet status | run`: the fleet, over its MQTT broker (docs/fleet.md).
std::vector<std::unique_ptr<Command>> FleetCommands();

}  // namespace picoflow::ctl
