// picoflowd: flags -> DaemonConfig -> Daemon.

#include <fcntl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "common/duration.h"
#include "common/paths.h"
#include "picoflowd/daemon.h"
#include "picoflowd/daemon_config_file.h"
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
  std::string log_format = "text";
  double shutdown_grace_s = 10;
  std::string retention_max_age;
  app.add_option("--config", config_file,
                 "Daemon config file (YAML; flags override it; '' reads none)");
  app.add_option("files", config.files, "Workflow files to load at start (and on reload)");
  app.add_flag("--system", system, "System mode: /run/picoflow, /var/lib/picoflow, /etc/picoflow");
  app.add_option("--socket", config.socket_path, "Control socket path");
  app.add_option("--state-dir", config.state_dir, "Directory of the SQLite database");
  app.add_option("--workflows-dir", config.workflows_dir, "Directory of *.yaml workflows");
  app.add_option("--log-level", config.log_level, "trace, debug, info, warn, error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
  app.add_option("--log-format", log_format, "text or json")->check(CLI::IsMember({"text", "json"}));
  app.add_option("--once", once, "Run this workflow file once in the foreground and exit");
  app.add_option("--read-group", config.read_group, "Group whose members may use read-only methods");
  app.add_flag("--sync-full", config.synchronous_full, "SQLite synchronous=FULL (fsync every commit)");
  app.add_option("--output-cap", config.output_cap, "Bytes of output kept per task attempt and stream")
      ->check(CLI::Range(std::uint64_t{0}, std::uint64_t{1} << 30));
  app.add_option("--shutdown-grace", shutdown_grace_s, "Seconds runs get to stop on SIGTERM")
      ->check(CLI::Range(0.0, 3600.0));
  app.add_option("--metrics-listen", config.metrics_listen,
                 "Serve Prometheus /metrics and /healthz on ADDR:PORT (off unless given)");
  app.add_option("--retention-max-runs", config.retention_max_runs,
                 "Runs kept per workflow (0: no limit; a workflow's retention: wins)")
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{10'000'000}));
  app.add_option("--retention-max-age", retention_max_age,
                 "Runs created longer ago are deleted, e.g. 30d (0: no limit)");
  app.add_option("--retention-max-output-bytes", config.retention_max_output_bytes,
                 "Cap of all stored task output; the oldest goes first (0: no cap)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  config.log_format = *ParseLogFormat(log_format);
  if (!retention_max_age.empty()) {
    auto age = ParseDuration(retention_max_age);
    if (!age.ok()) {
      std::fprintf(stderr, "picoflowd: --retention-max-age: %s\n", age.error().message.c_str());
      return 2;
    }
    config.retention_max_age = *age;
  }
  config.shutdown_grace = std::chrono::milliseconds(static_cast<long long>(shutdown_grace_s * 1000));
  // The config file fills in what no flag set. --once reads one only if asked.
  if (app.count("--config") == 0 && once.empty()) config_file = DefaultDaemonConfigFile(system);
  if (!config_file.empty()) {
    auto file = LoadDaemonConfigFile(config_file);
    if (!file.ok()) {
      std::fprintf(stderr, "picoflowd: %s\n(fix the config file, or choose another with --config)\n",
                   file.error().message.c_str());
      return 2;
    }
    ApplyDaemonConfigFile(
        *file, [&app](std::string_view flag) { return app.count(std::string(flag)) > 0; }, config);
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
