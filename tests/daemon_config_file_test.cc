#include "picoflowd/daemon_config_file.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

namespace picoflow {
namespace {

using namespace std::chrono_literals;

DaemonConfigFile Ok(std::string_view text) {
  auto file = ParseDaemonConfigFile(text, "picoflowd.yaml");
  INFO(text);
  REQUIRE_MESSAGE(file.ok(), (file.ok() ? "" : file.error().message));
  return *file;
}

std::string Error(std::string_view text) {
  auto file = ParseDaemonConfigFile(text, "picoflowd.yaml");
  INFO(text);
  REQUIRE_FALSE(file.ok());
  CHECK(file.error().code == ErrorCode::kInvalid);
  return file.error().message;
}

TEST_CASE("a file with every key sets every setting") {
  const DaemonConfigFile f = Ok(R"(
socket: /run/x/picoflowd.sock
state_dir: /var/lib/x
workflows_dir: /etc/x/workflows
workflows: [/srv/a.yaml, /srv/b.yaml]
log_level: debug
log_format: json
read_group: adm
sync_full: true
output_cap: 4096
shutdown_grace: 1m30s
)");
  CHECK(f.config.socket_path == "/run/x/picoflowd.sock");
  CHECK(f.config.state_dir == "/var/lib/x");
  CHECK(f.config.workflows_dir == "/etc/x/workflows");
  CHECK(f.config.files == std::vector<std::string>{"/srv/a.yaml", "/srv/b.yaml"});
  CHECK(f.config.log_level == "debug");
  CHECK(f.config.log_format == LogFormat::kJson);
  CHECK(f.config.read_group == "adm");
  CHECK(f.config.synchronous_full == true);
  CHECK(f.config.output_cap == 4096u);
  CHECK(f.config.shutdown_grace == 90s);
}

TEST_CASE("a file of only comments, an empty file and keys without values set nothing") {
  for (std::string_view text :
       {"", "# nothing\n\n   # here either\n", "---\n", "socket:\nsync_full:\n"}) {
    const DaemonConfigFile f = Ok(text);
    CHECK_FALSE(f.Sets("socket"));
    CHECK_FALSE(f.Sets("sync_full"));
    CHECK_FALSE(f.Sets("shutdown_grace"));
  }
}

TEST_CASE("an unknown key is reported at its line and column with a did-you-mean hint") {
  CHECK(Error("socket: /s\nstate-dir: /x\n") ==
        "picoflowd.yaml:2:1: unknown key 'state-dir' (did you mean 'state_dir'?)");
  CHECK(Error("# c\n  shutdown_grase: 5s\n") ==
        "picoflowd.yaml:2:3: unknown key 'shutdown_grase' (did you mean 'shutdown_grace'?)");
  CHECK(Error("frobnicate: x\n") == "picoflowd.yaml:1:1: unknown key 'frobnicate'");
}

TEST_CASE("flags that choose the mode or the file are refused as keys, saying why") {
  CHECK(Error("system: true\n") ==
        "picoflowd.yaml:1:1: 'system' is a command-line flag only (--system)");
  CHECK(Error("config: /x\n") ==
        "picoflowd.yaml:1:1: 'config' is a command-line flag only (--config)");
}

TEST_CASE("values of the wrong type or out of range are reported, every one of them") {
  CHECK(Error("output_cap: lots\nsync_full: yes\n") ==
        "picoflowd.yaml:1:13: 'output_cap' must be an integer from 0 to 1073741824, got 'lots'\n"
        "picoflowd.yaml:2:12: 'sync_full' must be true or false, got 'yes' "
        "(yes/no/on/off are not booleans here)");
  CHECK(Error("output_cap: 2147483648\n").find("picoflowd.yaml:1:13: 'output_cap'") == 0);
  CHECK(Error("shutdown_grace: 5x\n").find("picoflowd.yaml:1:17: 'shutdown_grace': ") == 0);
  CHECK(Error("shutdown_grace: 2h\n") ==
        "picoflowd.yaml:1:17: 'shutdown_grace' must be at most 1h, got 2h");
  CHECK(Error("log_level: debg\n") ==
        "picoflowd.yaml:1:12: 'log_level' must be one of trace, debug, info, warn, error, "
        "got 'debg' (did you mean 'debug'?)");
  CHECK(Error("log_format: xml\n") ==
        "picoflowd.yaml:1:13: 'log_format' must be text or json, got 'xml'");
  CHECK(Error("workflows: /a.yaml\n").find("picoflowd.yaml:1:12: 'workflows' must be a list") == 0);
  CHECK(Error("socket: [a, b]\n").find("picoflowd.yaml:1:9: 'socket' must be") == 0);
}

TEST_CASE("retention and metrics keys set their settings and are range-checked") {
  const DaemonConfigFile f =
      Ok("retention_max_runs: 50\nretention_max_age: 7d\nretention_max_output_bytes: 0\n"
         "metrics_listen: 127.0.0.1:9464\n");
  DaemonConfig config;
  ApplyDaemonConfigFile(
      f, [](std::string_view) { return false; }, config);
  CHECK(config.retention_max_runs == 50);
  CHECK(config.retention_max_age == std::chrono::hours(24 * 7));
  CHECK(config.retention_max_output_bytes == 0);
  CHECK(config.http_listen == "127.0.0.1:9464");  // metrics_listen: http_listen's older name
  DaemonConfig http;
  ApplyDaemonConfigFile(
      Ok("http_listen: '[::1]:8080'\nhttp_allow_remote: true\n"),
      [](std::string_view) { return false; }, http);
  CHECK(http.http_listen == "[::1]:8080");
  CHECK(http.http_allow_remote);
  CHECK(Error("retention_max_runs: -1\n").find("picoflowd.yaml:1:21: ") == 0);
  CHECK(Error("retention_max_age: soon\n").find("picoflowd.yaml:1:20: ") == 0);
}

TEST_CASE("a file that is not a map, or not YAML, is refused") {
  CHECK(Error("- socket\n") ==
        "picoflowd.yaml:1:1: a daemon config file must be a map of settings, got a list");
  CHECK(Error("socket: [\n").find("picoflowd.yaml:") == 0);
  CHECK(Error("a: 1\na: 2\n").find("picoflowd.yaml:2:1: ") == 0);
}

TEST_CASE("notify: is the default notify targets of every workflow, checked as in a workflow") {
  const DaemonConfigFile f =
      Ok("log_level: info\nnotify:\n  - ping: https://hc.example/u\n"
         "  - webhook: {url: \"https://hooks.example/x\", format: teams}\n");
  CHECK(f.sets_notify);
  DaemonConfig config;
  ApplyDaemonConfigFile(
      f, [](std::string_view) { return false; }, config);
  REQUIRE(config.notify.size() == 2);
  CHECK(config.notify[0].name == "ping-1");
  CHECK(config.notify[1].format == WebhookFormat::kTeams);
  CHECK(Error("notify:\n  - webhook: {url: \"https://x\", metod: PUT}\n") ==
        "picoflowd.yaml:2:33: notify 'webhook-1': webhook: unknown key 'metod' (did you mean "
        "'method'?)");
  CHECK(Error("notfy: []\n") == "picoflowd.yaml:1:1: unknown key 'notfy' (did you mean 'notify'?)");
  CHECK_FALSE(Ok("log_level: info\n").sets_notify);
  CHECK(Error("notify:\n  - ping: \"https://hc.example/${secret:HC}\"\n") ==
        "picoflowd.yaml:2:11: notify: ${secret:NAME} is expanded in a workflow's notify targets "
        "only (they name its secrets); in picoflowd.yaml write the value itself (the file is not "
        "stored: keep it readable by root only), or give the workflow its own notify: and "
        "secrets:");
}

TEST_CASE("flags given on the command line win over the file") {
  const DaemonConfigFile f =
      Ok("socket: /file.sock\nstate_dir: /file-state\nworkflows: [/f.yaml]\nlog_format: json\n"
         "sync_full: true\noutput_cap: 10\nshutdown_grace: 3s\n");
  DaemonConfig config;
  config.socket_path = "/flag.sock";
  const std::set<std::string, std::less<>> given = {"--socket", "--output-cap"};
  ApplyDaemonConfigFile(
      f, [&](std::string_view flag) { return given.count(flag) > 0; }, config);
  CHECK(config.socket_path == "/flag.sock");
  CHECK(config.state_dir == "/file-state");
  CHECK(config.files == std::vector<std::string>{"/f.yaml"});
  CHECK(config.log_format == LogFormat::kJson);
  CHECK(config.synchronous_full);
  CHECK(config.output_cap == (1u << 20));
  CHECK(config.shutdown_grace == 3000ms);
  CHECK(config.log_level == "info");  // not in the file: untouched
}

TEST_CASE("the shipped default config file parses and sets nothing but the defaults") {
  auto f = LoadDaemonConfigFile(DEFAULT_CONFIG_FILE);
  REQUIRE_MESSAGE(f.ok(), (f.ok() ? "" : f.error().message));
  DaemonConfig defaults;
  DaemonConfig config;
  ApplyDaemonConfigFile(
      *f, [](std::string_view) { return false; }, config);
  CHECK(config.output_cap == defaults.output_cap);
  CHECK(config.shutdown_grace == defaults.shutdown_grace);
  CHECK(config.log_level == defaults.log_level);
  CHECK(config.synchronous_full == defaults.synchronous_full);
  CHECK(config.files.empty());
}

TEST_CASE("a missing file is an error naming the path; the user default is found under XDG") {
  auto f = LoadDaemonConfigFile("/nonexistent/picoflowd.yaml");
  REQUIRE_FALSE(f.ok());
  CHECK(f.error().message.find("/nonexistent/picoflowd.yaml: ") == 0);

  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("pf-config-" + std::to_string(::getpid()));
  fs::create_directories(dir / "picoflow");
  const char* old = std::getenv("XDG_CONFIG_HOME");
  const std::string saved = old ? old : "";
  setenv("XDG_CONFIG_HOME", dir.c_str(), 1);
  CHECK(DefaultDaemonConfigFile(false).empty());
  std::ofstream(dir / "picoflow" / "picoflowd.yaml") << "log_level: warn\n";
  CHECK(DefaultDaemonConfigFile(false) == (dir / "picoflow" / "picoflowd.yaml").string());
  if (old) {
    setenv("XDG_CONFIG_HOME", saved.c_str(), 1);
  } else {
    unsetenv("XDG_CONFIG_HOME");
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace picoflow
