// The settings table (picoflowd/daemon_settings.h): every flag and key comes
// from it, the docs list what it lists, and a flag takes exactly what its key
// takes, through the library and through the real picoflowd.
#include "picoflowd/daemon_settings.h"

#include <doctest/doctest.h>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "common/duration.h"
#include "picoflowd/daemon_config.h"
#include "picoflowd/daemon_config_file.h"
#include "tests/daemon_harness.h"

namespace picoflow {
namespace {

using namespace std::chrono_literals;
using test::Contains;
using test::DaemonHarness;
using test::PicoflowdPath;
using test::ProcessResult;

std::string SourceFile(const std::string& relative) {
  std::ifstream in(std::string(SOURCE_ROOT) + "/" + relative, std::ios::binary);
  REQUIRE_MESSAGE(in.good(), relative);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string Replace(std::string text, const std::string& from, const std::string& to) {
  for (std::size_t at = text.find(from); at != std::string::npos;
       at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

// Texts to try as each setting's value: good ones and bad ones around its bounds.
std::vector<std::string> Probes(const DaemonSetting& s) {
  const SettingType& t = s.type;
  switch (t.kind) {
    case SettingKind::kInteger:
    case SettingKind::kBytes:
      return {std::to_string(t.min),
              std::to_string(t.max),
              std::to_string(t.min - 1),
              std::to_string(t.max + 1),
              "99999999999999999999",
              "lots",
              "0x10",
              "1.5",
              "1k",
              "007"};
    case SettingKind::kDuration:
      return {"0",
              "300",
              "90s",
              "1h30m",
              FormatDuration(std::chrono::seconds(t.max)),
              FormatDuration(std::chrono::seconds(t.max + 1)),
              "5x",
              "1.5h",
              "500ms",
              "-1",
              "30m1h"};
    case SettingKind::kChoice: {
      std::vector<std::string> probes(t.choices.begin(), t.choices.end());
      probes.push_back(std::string(t.choices.front()) + "x");
      probes.push_back("bogus");
      return probes;
    }
    case SettingKind::kText: return {"/some/where", "adm", "127.0.0.1:9464"};
    case SettingKind::kBool:
    case SettingKind::kFiles: return {};  // a flag without a value, and the FILE arguments
  }
  return {};
}

TEST_CASE(
    "the config file's keys are the table's, in its order, and each flag is its key spelled as a flag") {
  std::vector<std::string_view> keys;
  std::set<std::string_view> flags;
  for (const DaemonSetting& s : DaemonSettings()) {
    keys.push_back(s.key);
    CHECK_MESSAGE(flags.insert(s.flag).second, s.flag);
    CHECK(FindSettingByKey(s.key) == &s);
    if (!IsPositional(s)) CHECK(s.flag == "--" + Replace(std::string(s.key), "_", "-"));
    CHECK_FALSE(s.help.empty());
    CHECK(s.value_name.empty() == (s.type.kind == SettingKind::kBool));
  }
  CHECK(kDaemonConfigKeys == keys);
  CHECK(std::set<std::string_view>(keys.begin(), keys.end()).size() == keys.size());
}

TEST_CASE("the shipped config file shows every key in the table's order, each with its default") {
  const std::string text = SourceFile("config/picoflowd.yaml");
  const std::regex setting_line(R"(^#([a-z_]+):(.*)$)");
  std::vector<std::string_view> listed;
  std::string uncommented;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    std::smatch m;
    if (std::regex_match(line, m, setting_line)) {
      listed.push_back(FindSettingByKey(m[1].str()) ? FindSettingByKey(m[1].str())->key : "?");
      uncommented += line.substr(1) + "\n";
    } else if (line.starts_with("#  - ")) {
      uncommented += line.substr(1) + "\n";  // the items of `workflows`
    }
  }
  CHECK(listed == kDaemonConfigKeys);
  // With every setting uncommented the file still parses, and shows the
  // defaults (paths and groups are examples: system mode's, or made up).
  auto file = ParseDaemonConfigFile(uncommented, "picoflowd.yaml");
  REQUIRE_MESSAGE(file.ok(), (file.ok() ? "" : file.error().message));
  for (const DaemonSetting& s : DaemonSettings()) {
    CHECK_MESSAGE(file->Sets(s.key), s.key);
    if (s.type.kind == SettingKind::kText || s.type.kind == SettingKind::kFiles) continue;
    CHECK_MESSAGE(s.access.show(file->config) == s.access.show(DaemonConfig{}), s.key);
  }
}

TEST_CASE("docs/operations.md, man/picoflowd.8 and README.md name every setting") {
  const std::string operations = SourceFile("docs/operations.md");
  const std::string man = Replace(SourceFile("man/picoflowd.8"), "\\-", "-");
  const std::string readme = SourceFile("README.md");
  for (const DaemonSetting& s : DaemonSettings()) {
    const std::string key(s.key);
    const std::string flag(s.flag);
    INFO(key);
    const std::string row =
        "| `" + key + "` | " + (IsPositional(s) ? "`FILE...` arguments" : "`" + flag + "`") + " |";
    CHECK(Contains(operations, row));
    CHECK((Contains(man, "\n.BR " + key + " ") || Contains(man, "\n.BR " + key + "\n")));
    if (IsPositional(s)) {
      CHECK(Contains(man, "\n.I " + std::string(s.value_name) + " ...\n"));
      continue;
    }
    const std::string entry = s.value_name.empty()
                                  ? "\n.B " + flag + "\n"
                                  : "\n.BI " + flag + " \" " + std::string(s.value_name) + "\"\n";
    CHECK(Contains(man, entry));
    CHECK(Contains(readme, "`" + flag));
  }
}

TEST_CASE(
    "a flag accepts what its key accepts and refuses what it refuses, with the same message") {
  for (const DaemonSetting& s : DaemonSettings()) {
    for (const std::string& text : Probes(s)) {
      INFO(s.flag << " " << text);
      const Result<SettingValue> flag = ParseSettingFlag(s, text);
      const std::string line = std::string(s.key) + ": " + text + "\n";
      const auto file = ParseDaemonConfigFile(line, "picoflowd.yaml");
      REQUIRE(flag.ok() == file.ok());
      if (flag.ok()) {
        DaemonConfig config;
        s.access.store(config, *flag);
        CHECK(s.access.show(config) == s.access.show(file->config));
        continue;
      }
      const std::string at = "picoflowd.yaml:1:" + std::to_string(s.key.size() + 3) + ": ";
      const std::string as_key = Replace(flag.error().message, "'" + std::string(s.flag) + "'",
                                         "'" + std::string(s.key) + "'");
      CHECK(file.error().message == at + as_key);
      CHECK(Contains(flag.error().message, "'" + std::string(s.flag) + "'"));
      CHECK(Contains(flag.error().message, text.substr(0, 3)));
    }
  }
}

TEST_CASE(
    "durations read the same from a flag as from a key, whole seconds stored as milliseconds") {
  const DaemonSetting& grace = *FindSettingByKey("shutdown_grace");
  DaemonConfig config;
  // Not a structured binding: clang 14 cannot capture one (INFO does).
  for (const auto& entry : std::vector<std::pair<std::string, std::chrono::milliseconds>>{
           {"30s", 30s}, {"30", 30s}, {"1m30s", 90s}, {"1h", 1h}, {"0", 0s}}) {
    const std::string& text = entry.first;
    const std::chrono::milliseconds expected = entry.second;
    INFO(text);
    auto value = ParseSettingFlag(grace, text);
    REQUIRE(value.ok());
    grace.access.store(config, *value);
    CHECK(config.shutdown_grace == expected);
  }
  auto age = ParseSettingFlag(*FindSettingByKey("retention_max_age"), "30d");
  REQUIRE(age.ok());
  CHECK(std::get<std::chrono::seconds>(*age) == std::chrono::hours(24 * 30));
}

TEST_CASE("the help of each setting gives its bounds and default") {
  CHECK(DescribeSettingValues(*FindSettingByKey("output_cap")) ==
        "0 to 1073741824; default 1048576");
  CHECK(DescribeSettingValues(*FindSettingByKey("shutdown_grace")) ==
        "seconds, or like 90s, 5m, 1h30m, 30d; at most 1h; default 10s");
  CHECK(DescribeSettingValues(*FindSettingByKey("log_format")) == "text or json; default text");
  CHECK(DescribeSettingValues(*FindSettingByKey("socket")).empty());
}

// Through the real picoflowd, in a harness directory (HOME and XDG_* inside
// it, so no config file of the machine's is read).

constexpr const char* kWorkflow = R"(
name: once
config: { retry_default: 0 }
tasks:
  - { name: a, type: shell, config: { command: 'true' } }
)";

TEST_CASE("picoflowd --help lists every setting's flag with its value name") {
  DaemonHarness h;
  const ProcessResult help = h.RunProgram(PicoflowdPath(), {"--help"}, 10s);
  REQUIRE(help.code == 0);
  for (const DaemonSetting& s : DaemonSettings()) {
    std::string shown = std::string(s.flag);
    if (!s.value_name.empty()) shown += " " + std::string(s.value_name);
    CHECK_MESSAGE(Contains(help.out, "  " + shown), shown);
  }
}

TEST_CASE("picoflowd --shutdown-grace takes a duration, as the key does") {
  DaemonHarness h;
  const std::string wf = h.WriteFile("once.yaml", kWorkflow);
  for (const char* grace : {"30s", "2m", "1h", "45"}) {
    const ProcessResult r =
        h.RunProgram(PicoflowdPath(), {"--once", wf, "--shutdown-grace", grace}, 60s);
    CHECK_MESSAGE(r.code == 0, grace, ": ", r.err);
  }
  const std::string config = h.WriteFile("picoflowd.yaml", "shutdown_grace: 30s\n");
  const ProcessResult r = h.RunProgram(PicoflowdPath(), {"--config", config, "--once", wf}, 60s);
  CHECK_MESSAGE(r.code == 0, r.err);
}

TEST_CASE("picoflowd refuses an out-of-range value the same way as flag and as key, exit 2") {
  DaemonHarness h;
  const std::string wf = h.WriteFile("once.yaml", kWorkflow);
  struct Case {
    std::string flag, key, value, message;
  };
  const std::vector<Case> cases = {
      {"--shutdown-grace", "shutdown_grace", "2h", "must be at most 1h, got 2h"},
      {"--output-cap", "output_cap", "2147483648",
       "must be an integer from 0 to 1073741824, got '2147483648'"},
      {"--retention-max-runs", "retention_max_runs", "-1",
       "must be an integer from 0 to 10000000, got '-1'"},
      {"--retention-max-age", "retention_max_age", "1.5d", ": invalid duration '1.5d': fractions"},
      {"--log-level", "log_level", "debg", "must be one of trace, debug, info, warn, error"},
  };
  for (const Case& c : cases) {
    INFO(c.flag << " " << c.value);
    const ProcessResult by_flag =
        h.RunProgram(PicoflowdPath(), {"--once", wf, c.flag + "=" + c.value}, 30s);
    CHECK(by_flag.code == 2);
    CHECK_MESSAGE(Contains(by_flag.err, "picoflowd: '" + c.flag + "'" +
                                            (c.message[0] == ':' ? "" : " ") + c.message),
                  by_flag.err);
    const std::string config = h.WriteFile("bad.yaml", c.key + ": " + c.value + "\n");
    const ProcessResult by_key =
        h.RunProgram(PicoflowdPath(), {"--config", config, "--once", wf}, 30s);
    CHECK(by_key.code == 2);
    CHECK_MESSAGE(
        Contains(by_key.err, config + ":1:" + std::to_string(c.key.size() + 3) + ": '" + c.key +
                                 "'" + (c.message[0] == ':' ? "" : " ") + c.message),
        by_key.err);
  }
}

TEST_CASE("picoflowd: a flag on the command line wins over its key in the config file") {
  DaemonHarness h;
  const std::string wf = h.WriteFile("once.yaml", kWorkflow);
  const std::string config = h.WriteFile("picoflowd.yaml", "log_format: json\n");
  const ProcessResult from_file =
      h.RunProgram(PicoflowdPath(), {"--config", config, "--once", wf}, 60s);
  REQUIRE_MESSAGE(from_file.code == 0, from_file.err);
  CHECK(from_file.err.starts_with("{"));
  const ProcessResult flag_wins = h.RunProgram(
      PicoflowdPath(), {"--config", config, "--log-format", "text", "--once", wf}, 60s);
  REQUIRE_MESSAGE(flag_wins.code == 0, flag_wins.err);
  CHECK_FALSE(flag_wins.err.starts_with("{"));
  CHECK(Contains(flag_wins.err, "run started"));
}

}  // namespace
}  // namespace picoflow
