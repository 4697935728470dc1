// picoflowd: flags -> DaemonConfig -> Daemon.

#include <fcntl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "common/paths.h"
#include "picoflowd/daemon.h"
#include "picoflowd/daemon_config_file.h"
#include "picoflowd/daemon_settings.h"
#include "picoflowd/util/logging.h"

namespace {

// A daemon started with 0, 1 or 2 closed (`picoflowd <&- >&- 2>&-`, some init
// scripts) would hand those numbers to its first files: libuv's epoll fd and
// signal pipe, the socket, task pipes. Its log lines (fd 2) would then be
// written into one of them. /dev/null fills the gaps before anything opens.
void EnsureStdioOpen() {
  for (int fd = 0; fd <= 2; ++fd) {
    if (::fcntl(fd, F_GETFD) >= 0 || errno != EBADF) continue;
    // open() takes the lowest free number: fd, as every lower one is open now.
    if (::open("/dev/null", O_RDWR) < 0) std::_Exit(1);  // nothing to report it on
  }
}

// What the command line gave for one setting; CLI11 writes into it.
struct FlagInput {
  CLI::Option* option = nullptr;
  CLI::Option* alias = nullptr;  ///< the setting's older flag, hidden from --help
  bool given() const { return option->count() > 0 || (alias != nullptr && alias->count() > 0); }
  std::string text;
  bool on = false;
  std::vector<std::string> list;
};

// Registers a flag (or the FILE arguments) per row of the settings table.
// The text is kept as given and read by StoreFlags, as the config file reads
// the key (docs/operations.md, "The config file").
std::vector<FlagInput> AddSettingFlags(CLI::App& app) {
  const auto settings = picoflow::DaemonSettings();
  std::vector<FlagInput> inputs(settings.size());  // never resized: CLI11 keeps pointers
  for (std::size_t i = 0; i < settings.size(); ++i) {
    const picoflow::DaemonSetting& s = settings[i];
    const std::string name(s.flag);
    std::string help(s.help);
    if (std::string values = picoflow::DescribeSettingValues(s); !values.empty()) {
      help += " [" + values + "]";
    }
    FlagInput& in = inputs[i];
    switch (s.type.kind) {
      case picoflow::SettingKind::kBool: in.option = app.add_flag(name, in.on, help); break;
      case picoflow::SettingKind::kFiles:
        in.option = app.add_option(name, in.list, help)->type_name(std::string(s.value_name));
        break;
      default:
        in.option = app.add_option(name, in.text, help)->type_name(std::string(s.value_name));
        if (!s.alias.empty()) {  // the older flag: --metrics-listen for metrics_listen
          std::string alias = "--" + std::string(s.alias);
          std::replace(alias.begin(), alias.end(), '_', '-');
          in.alias = app.add_option(alias, in.text)->group("");
        }
        break;
    }
  }
  return inputs;
}

// Stores every setting given on the command line into `config`. Prints one
// line per bad value and returns false if there was any.
bool StoreFlags(const std::vector<FlagInput>& inputs, picoflow::DaemonConfig& config) {
  using picoflow::SettingKind;
  const auto settings = picoflow::DaemonSettings();
  bool ok = true;
  for (std::size_t i = 0; i < settings.size(); ++i) {
    const picoflow::DaemonSetting& s = settings[i];
    const FlagInput& in = inputs[i];
    if (!in.given()) continue;
    if (s.type.kind == SettingKind::kBool) {
      s.access.store(config, in.on);
    } else if (s.type.kind == SettingKind::kFiles) {
      s.access.store(config, in.list);
    } else if (auto value = picoflow::ParseSettingFlag(s, in.text); value.ok()) {
      s.access.store(config, *value);
    } else {
      std::fprintf(stderr, "picoflowd: %s\n", value.error().message.c_str());
      ok = false;
    }
  }
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  EnsureStdioOpen();
  using namespace picoflow;
  CLI::App app{"picoflowd - the picoflow workflow daemon", "picoflowd"};
  app.set_version_flag("--version", PICOFLOW_VERSION);
  DaemonConfig config;
  bool system = false;
  std::string once;
  std::string config_file;
  app.add_option("--config", config_file,
                 "Daemon config file (YAML; flags override it; '' reads none)")
      ->type_name("PATH");
  app.add_flag("--system", system, "System mode: /run/picoflow, /var/lib/picoflow, /etc/picoflow");
  app.add_option("--once", once, "Run this workflow file once in the foreground and exit")
      ->type_name("FILE");
  const std::vector<FlagInput> setting_flags = AddSettingFlags(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (!StoreFlags(setting_flags, config)) return 2;
  // The config file fills in what no flag set. --once reads one only if asked.
  if (app.count("--config") == 0 && once.empty()) config_file = DefaultDaemonConfigFile(system);
  if (!config_file.empty()) {
    auto file = LoadDaemonConfigFile(config_file);
    if (!file.ok()) {
      std::fprintf(stderr,
                   "picoflowd: %s\n(fix the config file, or choose another with --config)\n",
                   file.error().message.c_str());
      return 2;
    }
    ApplyDaemonConfigFile(
        *file,
        [&](std::string_view flag) {
          const auto settings = picoflow::DaemonSettings();
          for (std::size_t i = 0; i < settings.size(); ++i) {
            if (settings[i].flag == flag) return setting_flags[i].given();
          }
          return app.count(std::string(flag)) > 0;
        },
        config);
  }
  if (!InitLogging(config.log_format, config.log_level)) {
    std::fprintf(stderr, "picoflowd: bad --log-level '%s'\n", config.log_level.c_str());
    return 2;
  }
  if (!once.empty()) {
    // --once keeps a private state directory unless one is given.
    Daemon daemon(config);
    return daemon.RunOnce(once);
  }
  const Paths defaults = system ? SystemPaths() : UserPaths();
  if (config.socket_path.empty()) config.socket_path = defaults.socket;
  if (config.state_dir.empty()) config.state_dir = defaults.state_dir;
  if (config.workflows_dir.empty()) config.workflows_dir = defaults.workflows_dir;
  Daemon daemon(config);
  return daemon.Run();
}
