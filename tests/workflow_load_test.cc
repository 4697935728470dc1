#include "common/workflow_load.h"

#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>

#include "common/yaml_tree.h"
#include "tests/test_util.h"
#include "tests/workflow_test_util.h"

namespace picoflow {
namespace {

using namespace picoflow::test;
using std::chrono::seconds;

TEST_CASE("the original PicoFlow example loads with every default resolved") {
  auto w = Valid(R"(
name: backup-workflow
description: "Daily database backup"
schedule: "0 2 * * *"
config:
  max_parallel: 2
  retry_default: 3
  timeout_default: 300
tasks:
  - name: health_check
    type: http
    config: { url: "https://api.server.com/health", method: GET }
    retry: 2
  - name: backup_database
    type: ssh
    depends_on: [health_check]
    config: { host: "db.server.com", user: backup, command: "pg_dump mydb | gzip > /backup/db.sql.gz" }
    retry: 3
    timeout: 600
  - name: verify_backup
    type: shell
    depends_on: [backup_database]
    config: { command: "ssh backup@db.server.com 'test -f /backup/db.sql.gz'" }
)");
  CHECK(w->name == "backup-workflow");
  CHECK(w->description == "Daily database backup");
  CHECK(w->schedule == std::vector<std::string>{"0 2 * * *"});
  CHECK(w->config.max_parallel == 2);
  REQUIRE(w->tasks.size() == 3);
  const Task& http = w->tasks[0];
  CHECK(http.type == TaskType::kHttp);
  CHECK(http.retry == 2);
  CHECK(http.timeout == seconds(300));
  CHECK((http.pos.line == 9 && http.pos.col == 5));
  CHECK(std::get<HttpConfig>(http.config).method == "GET");
  const Task& ssh = w->tasks[1];
  CHECK(ssh.timeout == seconds(600));
  CHECK(ssh.depends_on == std::vector<std::string>{"health_check"});
  const auto& sc = std::get<SshConfig>(ssh.config);
  CHECK(sc.host == "db.server.com");
  CHECK(sc.user == "backup");
  CHECK(sc.port == 22);
  CHECK(sc.verify_host_key);
  const Task& shell = w->tasks[2];
  CHECK(shell.retry == 3);
  CHECK_FALSE(std::get<ShellConfig>(shell.config).args.has_value());
}

TEST_CASE("config defaults apply even when config comes after the tasks") {
  auto w = Valid(R"(
name: w
tasks:
  - name: a
    type: shell
    config: {command: "true"}
  - name: b
    type: shell
    retry: 0
    timeout: 1h30m
    config: {command: "true"}
config:
  retry_default: 7
  timeout_default: 2m
)");
  CHECK(w->tasks[0].retry == 7);
  CHECK(w->tasks[0].timeout == seconds(120));
  CHECK_FALSE(w->tasks[0].retry_set);
  CHECK_FALSE(w->tasks[0].timeout_set);
  CHECK(w->tasks[1].retry == 0);
  CHECK(w->tasks[1].timeout == seconds(5400));
  CHECK(w->tasks[1].retry_set);
  CHECK(w->tasks[1].timeout_set);
}

TEST_CASE("without a config block the documented defaults apply") {
  auto w = Valid(OneShellTask(""));
  CHECK(w->config.max_parallel == 4);
  CHECK(w->config.retry_default == 3);
  CHECK(w->config.timeout_default == seconds(300));
  CHECK_FALSE(w->config.fail_fast);
  CHECK(w->config.retry_delay == seconds(1));
  CHECK(w->config.retry_max_delay == seconds(60));
  CHECK(w->config.kill_grace == seconds(5));
  CHECK(w->tasks[0].retry == 3);
  CHECK(w->tasks[0].timeout == seconds(300));
  CHECK(w->overlap == OverlapPolicy::kSkip);
  CHECK(w->catchup == CatchupPolicy::kLatest);
  CHECK(w->schedule.empty());
  CHECK(w->timezone.empty());
}

TEST_CASE("every workflow-level key is read") {
  auto w = Valid(R"(
name: nightly.etl-v2
description: all keys
schedule: ["0 2 * * *", "*/30 * * * * *", "@hourly"]
timezone: Europe/Berlin
overlap: queue
catchup: all
catchup_window: 6h
config:
  max_parallel: 256
  retry_default: 0
  timeout_default: 1d
  fail_fast: true
  retry_delay: 10s
  retry_max_delay: 10m
  kill_grace: 0
tasks:
  - {name: t, type: shell, config: {command: "true"}}
)");
  CHECK(w->name == "nightly.etl-v2");
  CHECK(w->schedule.size() == 3);
  CHECK(w->timezone == "Europe/Berlin");
  CHECK(w->overlap == OverlapPolicy::kQueue);
  CHECK(w->catchup == CatchupPolicy::kAll);
  CHECK(w->catchup_window == seconds(6 * 3600));
  CHECK(w->config.max_parallel == 256);
  CHECK(w->config.timeout_default == seconds(86400));
  CHECK(w->config.fail_fast);
  CHECK(w->config.retry_delay == seconds(10));
  CHECK(w->config.retry_max_delay == seconds(600));
  CHECK(w->config.kill_grace == seconds(0));
}

TEST_CASE("every problem in a file is reported in one pass at its line and column") {
  CHECK(
      Errors(R"(
name: w
tasks:
  - name: extract
    type: shel
    config: {command: "true"}
  - name: load
    type: shell
    timout: 30
    config: {command: "true"}
  - name: report
    type: shell
    retry: many
    config: {command: "true"}
)") ==
      Lines{
          "wf.yaml:4:11: task 'extract': 'type' must be shell, ssh or http, got 'shel' (did you mean 'shell'?)",
          "wf.yaml:8:5: task 'load': unknown key 'timout' (did you mean 'timeout'?)",
          "wf.yaml:12:12: task 'report': 'retry' must be an integer from 0 to 100, got 'many'",
      });
}

TEST_CASE("the workflow name is required and limited to 64 characters of [A-Za-z0-9_.-]") {
  CHECK(Errors("tasks:\n  - {name: t, type: shell, config: {command: x}}\n") ==
        Lines{"wf.yaml:1:1: missing required key 'name'"});
  CHECK(
      Errors(OneShellTask("").replace(0, 7, "name: my flow")) ==
      Lines{
          "wf.yaml:1:7: workflow name 'my flow' is not valid (1-64 letters, digits, '_', '.' and '-')"});
  const std::string long_name(65, 'n');
  CHECK(Errors(OneShellTask("").replace(0, 7, "name: " + long_name)) ==
        Lines{"wf.yaml:1:7: workflow name '" + long_name +
              "' is not valid (1-64 letters, digits, '_', '.' and '-')"});
  CHECK(Errors(OneShellTask("").replace(0, 7, "name:")) ==
        Lines{"wf.yaml:1:1: 'name' has no value"});
  CHECK(Errors(OneShellTask("").replace(0, 7, "name: [a]")) ==
        Lines{"wf.yaml:1:7: 'name' must be a string, got a list"});
}

TEST_CASE("the top level must be a map with non-empty tasks") {
  CHECK(
      Errors("- a\n- b\n") ==
      Lines{
          "wf.yaml:1:1: a workflow file must be a map with 'name' and 'tasks' at the top level, got a list"});
  CHECK(Errors("just text\n") ==
        Lines{"wf.yaml:1:1: a workflow file must be a map with 'name' and 'tasks' at "
              "the top level, got 'just text'"});
  CHECK(Errors("name: w\n") == Lines{"wf.yaml:1:1: missing required key 'tasks'"});
  CHECK(Errors("name: w\ntasks: []\n") == Lines{"wf.yaml:2:8: 'tasks' must not be empty"});
  CHECK(Errors("name: w\ntasks: {a: 1}\n") ==
        Lines{"wf.yaml:2:8: 'tasks' must be a list of tasks, got a map"});
  CHECK(
      Errors("name: w\ntasks:\n  - just a string\n") ==
      Lines{
          "wf.yaml:3:5: task #1: a task must be a map with 'name', 'type' and 'config', got 'just a string'"});
}

TEST_CASE("unknown top-level and config keys are errors with a did-you-mean") {
  CHECK(Errors(OneShellTask("descripton: x\nconfig:\n  max_paralel: 2\n  colour: red\n")) ==
        Lines{
            "wf.yaml:6:1: unknown key 'descripton' (did you mean 'description'?)",
            "wf.yaml:8:3: config: unknown key 'max_paralel' (did you mean 'max_parallel'?)",
            "wf.yaml:9:3: config: unknown key 'colour'",
        });
}

TEST_CASE("config values are range-checked") {
  CHECK(
      Errors(OneShellTask(R"(config:
  max_parallel: 0
  retry_default: 101
  timeout_default: 0
  fail_fast: yes
  retry_delay: -1
  kill_grace: 5ms
)")) ==
      Lines{
          "wf.yaml:7:17: config: 'max_parallel' must be an integer from 1 to 256, got '0'",
          "wf.yaml:8:18: config: 'retry_default' must be an integer from 0 to 100, got '101'",
          "wf.yaml:9:20: config: 'timeout_default' must be at least 1s, got 0s",
          "wf.yaml:10:14: config: 'fail_fast' must be true or false, got 'yes' (yes/no/on/off are not "
          "booleans here)",
          "wf.yaml:11:16: config: 'retry_delay': duration '-1' must not be negative",
          "wf.yaml:12:15: config: 'kill_grace': invalid duration '5ms': sub-second units are not supported; "
          "the smallest unit is s",
      });
  CHECK(Errors(OneShellTask("config: [1]\n")) ==
        Lines{"wf.yaml:6:9: 'config' must be a map, got a list"});
}

TEST_CASE("retry_max_delay shorter than retry_delay is an error when both are set") {
  CHECK(
      Errors(OneShellTask("config: {retry_delay: 2m, retry_max_delay: 1m}\n")) ==
      Lines{
          "wf.yaml:6:44: config: 'retry_max_delay' (1m) must not be shorter than 'retry_delay' (2m)"});
  auto w = Valid(OneShellTask("config: {retry_delay: 2m}\n"));
  CHECK(w->config.retry_max_delay == seconds(120));
}

TEST_CASE("numbers: negative, huge, fractional and quoted values are refused without overflow") {
  CHECK(Errors(OneShellTask("    retry: -1\n")) ==
        Lines{"wf.yaml:6:12: task 't': 'retry' must be an integer from 0 to 100, got '-1'"});
  CHECK(
      Errors(OneShellTask("    retry: 99999999999999999999999999\n")) ==
      Lines{
          "wf.yaml:6:12: task 't': 'retry' must be an integer from 0 to 100, got '99999999999999999999999999'"});
  CHECK(
      Errors(OneShellTask("    retry: -9223372036854775809\n")) ==
      Lines{
          "wf.yaml:6:12: task 't': 'retry' must be an integer from 0 to 100, got '-9223372036854775809'"});
  CHECK(Errors(OneShellTask("    retry: 1.5\n")) ==
        Lines{"wf.yaml:6:12: task 't': 'retry' must be an integer from 0 to 100, got '1.5'"});
  CHECK(Errors(OneShellTask("    retry: 0x10\n")) ==
        Lines{"wf.yaml:6:12: task 't': 'retry' must be an integer from 0 to 100, got '0x10'"});
  CHECK(
      Errors(OneShellTask("    retry: \"2\"\n")) ==
      Lines{
          "wf.yaml:6:12: task 't': 'retry' must be an integer from 0 to 100, got the quoted string '2' "
          "(write it without quotes)"});
  CHECK(Errors(OneShellTask("    retry: [2]\n")) ==
        Lines{"wf.yaml:6:12: task 't': 'retry' must be an integer from 0 to 100, got a list"});
  CHECK(
      Errors(OneShellTask("    timeout: 99999999999999999999\n")) ==
      Lines{
          "wf.yaml:6:14: task 't': 'timeout': duration '99999999999999999999' is too long (the maximum is 365d)"});
  CHECK(Errors(OneShellTask("    timeout: -30\n")) ==
        Lines{"wf.yaml:6:14: task 't': 'timeout': duration '-30' must not be negative"});
  CHECK(
      Errors(OneShellTask("    timeout: {s: 1}\n")) ==
      Lines{
          "wf.yaml:6:14: task 't': 'timeout' must be a duration (seconds, or like 90s, 5m, 1h30m), got a map"});
}

TEST_CASE("max_interruptions defaults to 3 and is an integer from 1 to 1000") {
  CHECK(Valid(OneShellTask(""))->tasks[0].max_interruptions == 3);
  CHECK(Valid(OneShellTask("    max_interruptions: 1\n"))->tasks[0].max_interruptions == 1);
  CHECK(Errors(OneShellTask("    max_interruptions: 0\n")) ==
        Lines{"wf.yaml:6:24: task 't': 'max_interruptions' must be an integer from 1 to 1000,"
              " got '0'"});
}

TEST_CASE("booleans are true or false; yes, no and quoted strings are refused") {
  auto w = Valid(OneShellTask("    continue_on_failure: True\n"));
  CHECK(w->tasks[0].continue_on_failure);
  CHECK(Valid(OneShellTask("    continue_on_failure: FALSE\n"))->tasks[0].continue_on_failure ==
        false);
  CHECK(
      Errors(OneShellTask("    continue_on_failure: no\n")) ==
      Lines{
          "wf.yaml:6:26: task 't': 'continue_on_failure' must be true or false, got 'no' (yes/no/on/off are "
          "not booleans here)"});
  CHECK(
      Errors(OneShellTask("    continue_on_failure: \"true\"\n")) ==
      Lines{
          "wf.yaml:6:26: task 't': 'continue_on_failure' must be true or false, got the quoted string "
          "'true' (write it without quotes)"});
  CHECK(Errors(OneShellTask("    continue_on_failure: 1\n")) ==
        Lines{"wf.yaml:6:26: task 't': 'continue_on_failure' must be true or false, got '1'"});
}

TEST_CASE("a key with no value means the key is not set when it is optional") {
  auto w = Valid(OneShellTask("    retry:\n    depends_on:\ndescription:\nschedule:\n"));
  CHECK(w->tasks[0].retry == 3);
  CHECK(w->tasks[0].depends_on.empty());
  CHECK(w->schedule.empty());
}

TEST_CASE("task names are required, valid and unique") {
  CHECK(
      Errors(R"(
name: w
tasks:
  - type: shell
    config: {command: x}
  - name: "bad name"
    type: shell
    config: {command: x}
  - name: ""
    type: shell
    config: {command: x}
  - name: a
    type: shell
    config: {command: x}
  - name: a
    type: shell
    config: {command: x}
)") ==
      Lines{
          "wf.yaml:3:5: task #1: missing required key 'name'",
          "wf.yaml:5:11: task 'bad name': task name 'bad name' is not valid (1-64 letters, digits, '_' and '-')",
          "wf.yaml:8:11: task #3: task name '' is not valid (1-64 letters, digits, '_' and '-')",
          "wf.yaml:14:11: duplicate task name 'a' (first defined at line 11)",
      });
}

TEST_CASE("a duplicate task name does not hide the other problems of the file") {
  CHECK(
      Errors(R"(
name: w
tasks:
  - {name: a, type: shell, config: {command: x}}
  - {name: a, type: shell, config: {command: x}}
  - {name: b, type: shell, depends_on: [a, nope], config: {command: x}}
  - {name: c, type: shell, depends_on: [d], config: {command: x}}
  - {name: d, type: shell, depends_on: [c], config: {command: x}}
  - {name: "bad name", type: shell, config: {command: x}}
  - {name: e, type: shell, depends_on: [bad name, b], config: {command: x}}
)") ==
      Lines{
          "wf.yaml:4:12: duplicate task name 'a' (first defined at line 3)",
          "wf.yaml:5:44: task 'b': depends on unknown task 'nope'",
          "wf.yaml:6:5: cycle: c -> d -> c",
          "wf.yaml:8:12: task 'bad name': task name 'bad name' is not valid (1-64 letters, digits, "
          "'_' and '-')",
      });
}

TEST_CASE("a task needs a known type and a config map") {
  CHECK(Errors(R"(
name: w
tasks:
  - name: a
    config: {command: x}
  - name: b
    type: docker
    config: {command: x}
  - name: c
    type: shell
  - name: d
    type: shell
    config: echo hi
)") == Lines{
           "wf.yaml:3:5: task 'a': missing required key 'type'",
           "wf.yaml:6:11: task 'b': 'type' must be shell, ssh or http, got 'docker'",
           "wf.yaml:8:5: task 'c': missing required key 'config'",
           "wf.yaml:12:13: task 'd': 'config' must be a map, got 'echo hi'",
       });
}

TEST_CASE("a config key written at task level is pointed to config") {
  CHECK(Errors(OneShellTask("    command: ls\n    args: [x]\n")) ==
        Lines{"wf.yaml:6:5: task 't': 'command' is a config key; put it under the task's 'config:'",
              "wf.yaml:7:5: task 't': 'args' is a config key; put it under the task's 'config:'"});
  // Keys of another type's config are simply unknown.
  CHECK(Errors(OneShellTask("    url: x\n")) == Lines{"wf.yaml:6:5: task 't': unknown key 'url'"});
}

TEST_CASE("depends_on takes a list or a single name and every name must exist") {
  auto w = Valid(R"(
name: w
tasks:
  - {name: a, type: shell, config: {command: x}}
  - {name: b, type: shell, depends_on: a, config: {command: x}}
  - {name: c, type: shell, depends_on: [a, b, a], config: {command: x}}
)");
  CHECK(w->tasks[1].depends_on == std::vector<std::string>{"a"});
  CHECK(w->tasks[2].depends_on == std::vector<std::string>{"a", "b", "a"});

  CHECK(Errors(R"(
name: w
tasks:
  - {name: extract, type: shell, config: {command: x}}
  - {name: load, type: shell, depends_on: [extrct, nothing_like_it, load], config: {command: x}}
  - {name: c, type: shell, depends_on: {a: 1}, config: {command: x}}
  - {name: d, type: shell, depends_on: [[a]], config: {command: x}}
)") == Lines{
           "wf.yaml:4:44: task 'load': depends on unknown task 'extrct' (did you mean 'extract'?)",
           "wf.yaml:4:52: task 'load': depends on unknown task 'nothing_like_it'",
           "wf.yaml:4:69: task 'load': depends on itself",
           "wf.yaml:5:40: task 'c': 'depends_on' must be a string or a list of strings, got a map",
           "wf.yaml:6:41: task 'd': items of 'depends_on' must be strings, got a list",
       });
}

TEST_CASE("a cycle is reported once at the first task on it") {
  CHECK(Errors(R"(
name: w
tasks:
  - {name: start, type: shell, config: {command: x}}
  - {name: a, type: shell, depends_on: [start, c], config: {command: x}}
  - {name: b, type: shell, depends_on: [a], config: {command: x}}
  - {name: c, type: shell, depends_on: [b], config: {command: x}}
)") == Lines{"wf.yaml:4:5: cycle: a -> c -> b -> a"});
}

TEST_CASE("a cycle is reported along with the other problems of the file") {
  CHECK(Errors(R"(
name: w
tasks:
  - {name: a, type: shell, depends_on: [b], retry: -1, config: {command: x}}
  - {name: b, type: shell, depends_on: [a, nope], config: {command: x}}
)") == Lines{
           "wf.yaml:3:5: cycle: a -> b -> a",
           "wf.yaml:3:52: task 'a': 'retry' must be an integer from 0 to 100, got '-1'",
           "wf.yaml:4:44: task 'b': depends on unknown task 'nope'",
       });
}

TEST_CASE("schedule entries are parsed as cron and errors point at the entry") {
  const std::vector<std::string> errors =
      Errors(OneShellTask("schedule: [\"0 2 * * *\", \"0 25 * * *\"]\n"));
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].rfind("wf.yaml:6:25: schedule '0 25 * * *': ", 0) == 0);
  CHECK(errors[0].find("25") != std::string::npos);
  CHECK(Errors(OneShellTask("schedule: {a: 1}\n")) ==
        Lines{"wf.yaml:6:11: 'schedule' must be a string or a list of strings, got a map"});
}

TEST_CASE("a 6-field schedule that reads as 5 fields plus one more is valid, with a warning") {
  CHECK(Warnings(OneShellTask("schedule: [\"0 2 * * * *\", \"0 0 2 * * *\"]\n")) ==
        Lines{"wf.yaml:6:12: warning: schedule '0 2 * * * *': 6 fields mean seconds first (second "
              "minute hour day-of-month month day-of-week), so this fires at minute 2 of every "
              "hour; for minute 0 of hour 2, write the 5 fields '0 2 * * *' (a year field is not "
              "supported)"});
  // Warnings come with the errors of an invalid file too.
  LoadedWorkflow loaded = Load(OneShellTask("schedule: \"0 2 * * * *\"\nretry: x\n"));
  CHECK_FALSE(loaded.ok());
  CHECK(loaded.diagnostics.size() == 1);
  REQUIRE(loaded.warnings.size() == 1);
  CHECK(loaded.warnings[0].severity == Severity::kWarning);
  CHECK(loaded.warnings[0].pos.line == 6);
  CHECK(Warnings(OneShellTask("schedule: \"0 2 * * *\"\n")).empty());
}

TEST_CASE("retention is read, unset fields stay unset, and bad values are reported") {
  auto w = Valid(OneShellTask("retention: {max_runs: 50, max_age: 7d}\n"));
  CHECK(w->retention.max_runs == std::optional<std::int64_t>(50));
  CHECK(w->retention.max_age == std::optional<Seconds>(seconds(7 * 86400)));
  auto partial = Valid(OneShellTask("retention: {max_runs: 0}\n"));
  CHECK(partial->retention.max_runs == std::optional<std::int64_t>(0));
  CHECK_FALSE(partial->retention.max_age.has_value());
  CHECK_FALSE(Valid(OneShellTask(""))->retention.max_runs.has_value());
  const std::vector<std::string> errors =
      Errors(OneShellTask("retention: {max_run: 5, max_runs: -1, max_age: later}\n"));
  REQUIRE(errors.size() == 3);
  CHECK(errors[0] == "wf.yaml:6:13: retention: unknown key 'max_run' (did you mean 'max_runs'?)");
  CHECK(errors[1].rfind("wf.yaml:6:35: retention: 'max_runs' must be", 0) == 0);
  CHECK(errors[2].rfind("wf.yaml:6:48: retention: 'max_age': invalid duration 'later'", 0) == 0);
  CHECK(Errors(OneShellTask("retention: 5\n")) ==
        Lines{"wf.yaml:6:12: 'retention' must be a map, got '5'"});
}

TEST_CASE("timezone, overlap and catchup are checked") {
  const std::vector<std::string> errors = Errors(OneShellTask(
      "timezone: Europe/Berln\noverlap: skp\ncatchup: some\ncatchup_window: forever\n"));
  REQUIRE(errors.size() == 4);
  CHECK(errors[0].rfind("wf.yaml:6:11: 'timezone': ", 0) == 0);
  CHECK(errors[0].find("Europe/Berln") != std::string::npos);
  CHECK(errors[1] ==
        "wf.yaml:7:10: 'overlap' must be skip, queue or allow, got 'skp' (did you mean 'skip'?)");
  CHECK(errors[2] == "wf.yaml:8:10: 'catchup' must be none, latest or all, got 'some'");
  CHECK(errors[3] ==
        "wf.yaml:9:17: 'catchup_window': invalid duration 'forever': write seconds like 300, or a "
        "number and unit like 90s, 5m, 1h30m, 1d");
  CHECK(
      Errors(OneShellTask("timezone: \"\"\n")) ==
      Lines{
          "wf.yaml:6:11: 'timezone' must not be empty (leave it out to use the daemon's local time zone)"});
}

TEST_CASE("max_active_runs is an integer from 1 to 1000 and cannot go with overlap: allow") {
  CHECK_FALSE(Valid(OneShellTask(""))->max_active_runs.has_value());
  CHECK(Valid(OneShellTask("max_active_runs: 2\n"))->max_active_runs == 2);
  auto queued = Valid(OneShellTask("max_active_runs: 1000\noverlap: queue\n"));
  CHECK(queued->max_active_runs == 1000);
  CHECK(queued->overlap == OverlapPolicy::kQueue);
  CHECK(Errors(OneShellTask("max_active_runs: 0\n")) ==
        Lines{"wf.yaml:6:18: 'max_active_runs' must be an integer from 1 to 1000, got '0'"});
  CHECK(Errors(OneShellTask("max_active_runs: two\n")) ==
        Lines{"wf.yaml:6:18: 'max_active_runs' must be an integer from 1 to 1000, got 'two'"});
  CHECK(Errors(OneShellTask("max_active_run: 2\n")) ==
        Lines{"wf.yaml:6:1: unknown key 'max_active_run' (did you mean 'max_active_runs'?)"});
  // In either order: allow starts every fire, which no limit can go with.
  const Lines allow = {
      "wf.yaml:7:18: 'max_active_runs' cannot go with 'overlap: allow', which starts every fire "
      "however many runs are going: use overlap: skip (runs past the limit are refused or "
      "skipped) or overlap: queue (they wait)"};
  CHECK(Errors(OneShellTask("overlap: allow\nmax_active_runs: 2\n")) == allow);
  Lines swapped = allow;
  swapped[0].replace(8, 1, "6");
  CHECK(Errors(OneShellTask("max_active_runs: 2\noverlap: allow\n")) == swapped);
}

TEST_CASE("more than 10,000 tasks are refused") {
  std::string yaml = "name: w\ntasks:\n";
  for (int i = 0; i <= 10000; ++i)
    yaml += "- {name: t" + std::to_string(i) + ", type: shell, config: {command: x}}\n";
  CHECK(Errors(yaml) == Lines{"wf.yaml:3:1: too many tasks (10001; the limit is 10000)"});
}

TEST_CASE("parse errors from the YAML layer come through as diagnostics") {
  CHECK(
      Errors("name: w\ntasks: [\n") ==
      Lines{
          "wf.yaml:3:1: YAML syntax error: end of sequence flow not found (a '[' is not closed)"});
  CHECK(Errors("") == Lines{"wf.yaml: empty file"});
  CHECK(Errors("name: w\nname: v\ntasks:\n  - {name: t, type: shell, config: {command: x}}\n") ==
        Lines{"wf.yaml:2:1: duplicate key 'name' (first defined at line 1)"});
  CHECK(
      Errors("x: &a [1, *a]\n") ==
      Lines{
          "wf.yaml:1:4: anchors and aliases (&name, *name) are not supported in workflow files; write the "
          "value out"});
}

TEST_CASE(
    "hostile inputs each give one clear diagnostic, for what a harmless file costs, and never a crash") {
  const std::size_t deep = 100'000;
  std::string dashes;
  for (std::size_t i = 0; i < deep; ++i) dashes += "- ";
  std::string laughs = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n";
  for (char c = 'b'; c <= 'j'; ++c) {
    laughs += std::string(1, c) + ": &" + c + " [";
    for (int i = 0; i < 9; ++i) laughs += std::string(i ? ", *" : "*") + char(c - 1);
    laughs += "]\n";
  }
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"name: w\ntasks: " + std::string(deep, '[') + std::string(deep, ']') + "\n",
       "wf.yaml:2:71: nesting is too deep (more than 64 levels)"},
      {dashes + "x\n", "wf.yaml:1:129: nesting is too deep (more than 64 levels)"},
      {laughs,
       "wf.yaml:1:4: anchors and aliases (&name, *name) are not supported in workflow files; write the "
       "value out"},
      {"name: w\ntasks: &t [*t]\n",
       "wf.yaml:2:8: anchors and aliases (&name, *name) are not supported in "
       "workflow files; write the value out"},
      {"name: caf\xE9\n", "wf.yaml:1:10: invalid UTF-8 (byte 0xE9); save the file as UTF-8"},
      {std::string("name: w\0tasks", 13),
       "wf.yaml:1:8: NUL byte: this looks like a binary file, not YAML"},
      {std::string(kMaxWorkflowFileBytes + 1, '#'),
       "wf.yaml: file is too large (1048577 bytes; the limit is 1048576)"},
  };
  // The calibration: a harmless YAML list as long as the longest input that
  // is parsed at all (the oversized one is refused by its size), parsed in
  // full. No refusal may cost a multiple of it, as an expanding alias or a
  // recursion 100,000 deep would.
  std::string flat = "a: [";
  for (std::size_t i = 0; i < deep; ++i) flat += "1,";
  flat += "1]\n";
  bool flat_ok = false;
  const double flat_ms = FastestMs([&] { flat_ok = ParseYaml(flat, "flat.yaml").ok(); });
  REQUIRE(flat_ok);
  for (const auto& entry : cases) {
    // Not a structured binding: clang 14 cannot capture one (INFO and FastestMs do).
    const std::string& input = entry.first;
    const std::string& expected = entry.second;
    LoadedWorkflow loaded;
    const double ms = FastestMs([&] { loaded = LoadWorkflowText(input, "wf.yaml"); });
    INFO(input.size() << " bytes refused in " << ms << " ms; " << flat.size()
                      << " harmless bytes parsed in " << flat_ms << " ms");
    CHECK(ms < 10 * flat_ms);
    CHECK_FALSE(loaded.ok());
    REQUIRE(loaded.diagnostics.size() == 1);
    if (!expected.empty()) CHECK(loaded.diagnostics[0].ToString() == expected);
  }
}

TEST_CASE("past 100 problems the rest are counted, not listed") {
  std::string yaml = "name: w\ntasks:\n";
  for (int i = 0; i < 150; ++i)
    yaml += "- {name: t" + std::to_string(i) + ", type: shel, config: {command: x}}\n";
  const std::vector<std::string> errors = Errors(yaml);
  REQUIRE(errors.size() == 101);
  CHECK(
      errors[0] ==
      "wf.yaml:3:20: task 't0': 'type' must be shell, ssh or http, got 'shel' (did you mean 'shell'?)");
  CHECK(errors[100] == "wf.yaml: ... and 50 more problems not shown");
}

TEST_CASE("LoadWorkflowFile reads a file and names it in diagnostics") {
  TempDir dir;
  const std::string good = dir.Write("good.yaml", OneShellTask(""));
  CHECK(LoadWorkflowFile(good).ok());
  const std::string bad = dir.Write("bad.yaml", OneShellTask("    retry: x\n"));
  LoadedWorkflow loaded = LoadWorkflowFile(bad);
  REQUIRE(loaded.diagnostics.size() == 1);
  CHECK(loaded.diagnostics[0].ToString() ==
        bad + ":6:12: task 't': 'retry' must be an integer from 0 to 100, got 'x'");
}

TEST_CASE(
    "LoadWorkflowFile refuses directories, missing, special and oversized files with one diagnostic") {
  TempDir dir;
  auto only = [](const std::string& path) {
    LoadedWorkflow loaded = LoadWorkflowFile(path);
    CHECK_FALSE(loaded.ok());
    REQUIRE(loaded.diagnostics.size() == 1);
    return loaded.diagnostics[0].ToString();
  };
  CHECK(only(dir.path()) == dir.path() + ": is a directory, not a workflow file");
  CHECK(only(dir.path() + "/none.yaml") ==
        dir.path() + "/none.yaml: cannot open: No such file or directory");
  const std::string fifo = dir.path() + "/fifo";
  REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
  CHECK(only(fifo) == fifo + ": is not a regular file");
  const std::string big =
      dir.Write("big.yaml", "a: \"" + std::string(2 * 1024 * 1024, 'x') + "\"\n");
  CHECK(only(big) == big + ": file is too large (2097158 bytes; the limit is 1048576)");
  const std::string binary = dir.Write("bin.yaml", std::string("\x7F"
                                                               "ELF\x02\x01\x01\x00\x00",
                                                               9));
  CHECK(only(binary) ==
        binary + ":1:1: control character 0x7F is not allowed in YAML (is this a binary file?)");
  const std::string empty = dir.Write("empty.yaml", "");
  CHECK(only(empty) == empty + ": empty file");
}

TEST_CASE("ReadWorkflowFile returns the text, or an error with a code and no path in the message") {
  TempDir dir;
  const std::string file = dir.Write("w.yaml", "name: w\n");
  Result<std::string> text = ReadWorkflowFile(file);
  REQUIRE(text.ok());
  CHECK(*text == "name: w\n");
  Result<std::string> missing = ReadWorkflowFile(dir.path() + "/none.yaml");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().code == ErrorCode::kNotFound);
  CHECK(missing.error().message == "cannot open: No such file or directory");
  Result<std::string> directory = ReadWorkflowFile(dir.path());
  REQUIRE_FALSE(directory.ok());
  CHECK(directory.error().code == ErrorCode::kInvalid);
  const std::string big =
      dir.Write("big.yaml", std::string(600'000, '#') + "\n" + std::string(600'000, '#'));
  Result<std::string> too_big = ReadWorkflowFile(big);
  REQUIRE_FALSE(too_big.ok());
  CHECK(too_big.error().message == "file is too large (1200001 bytes; the limit is 1048576)");
  const std::string medium = dir.Write("medium.yaml", std::string(700'000, '#'));
  CHECK(ReadWorkflowFile(medium)->size() == 700'000);
}

// How fast it loads is bench/load_bench's to measure (bench/bench.py), not a test's.
TEST_CASE("a 10,000-task workflow loads, validates and builds its DAG") {
  std::string yaml = "name: big\nconfig: {max_parallel: 8}\ntasks:\n";
  for (int i = 0; i < 10000; ++i) {
    yaml += "  - {name: t" + std::to_string(i) + ", type: shell";
    if (i > 0) yaml += ", depends_on: [t" + std::to_string(i / 2) + "]";
    yaml += ", config: {command: \"echo " + std::to_string(i) + "\"}}\n";
  }
  REQUIRE(yaml.size() < kMaxWorkflowFileBytes);
  LoadedWorkflow loaded = LoadWorkflowText(yaml, "big.yaml");
  REQUIRE(loaded.ok());
  CHECK(loaded.dag->size() == 10000);
  CHECK(loaded.dag->critical_path(0) == 15);  // t0 -> t1 -> t2 -> t4 ... -> t8192
}

TEST_CASE("handlers load as tasks after the others, in the order of Handler") {
  auto w = Valid(R"(
name: h
config: { retry_default: 2 }
tasks:
  - { name: a, type: shell, config: { command: "true" } }
handlers:
  on_exit: { type: shell, retry: 0, config: { command: "echo bye" } }
  on_failure: { type: http, timeout: 30s, config: { url: "http://127.0.0.1:9/x" } }
)");
  REQUIRE(w->tasks.size() == 3);
  CHECK(w->HandlerCount() == 2);
  CHECK_FALSE(w->IsHandler(0));
  CHECK(w->tasks[1].name == "on_failure");
  CHECK(w->tasks[1].handler == Handler::kOnFailure);
  CHECK(w->tasks[1].type == TaskType::kHttp);
  CHECK(w->tasks[1].retry == 2);  // config's default, as for a task
  CHECK(w->tasks[1].timeout == std::chrono::seconds(30));
  CHECK(w->tasks[2].name == "on_exit");
  CHECK(w->tasks[2].retry == 0);
  CHECK(w->FindTask("on_exit") == 2);
}

TEST_CASE("bad handlers are reported with every other problem") {
  CHECK(Errors(R"(
name: h
tasks:
  - { name: on_exit, type: shell, config: { command: "true" } }
  - { name: b, type: shell, depends_on: [on_failure], config: { command: "true" } }
handlers:
  on_exit: { type: shell, config: { command: "true" } }
  on_failure:
    name: oops
    type: shell
    depends_on: [b]
    trigger: all_done
    config: { command: "true" }
  on_fail: { type: shell, config: { command: "true" } }
  on_cancel: "echo cancelled"
  on_success: { type: shel, config: { command: "true" } }
)") == Lines{
           "wf.yaml:4:42: task 'b': depends on unknown task 'on_failure'",
           "wf.yaml:6:3: handler 'on_exit': a task has the same name (line 3); handlers and "
           "tasks share names (rename the task)",
           "wf.yaml:8:11: handler 'on_failure': 'name' is not a handler key: a handler's name "
           "is its key ('on_failure')",
           "wf.yaml:10:17: handler 'on_failure': 'depends_on' is not a handler key: a handler "
           "runs once the run's tasks have all ended",
           "wf.yaml:11:14: handler 'on_failure': 'trigger' is not a handler key: a handler "
           "runs once the run's tasks have all ended",
           "wf.yaml:13:3: handlers: unknown handler 'on_fail'",
           "wf.yaml:14:14: handler 'on_cancel': a handler must be a task map with 'type' and "
           "'config', got the quoted string 'echo cancelled'",
           "wf.yaml:15:23: handler 'on_success': 'type' must be shell, ssh or http, got 'shel' "
           "(did you mean 'shell'?)",
       });
  CHECK(Errors("name: h\ntasks:\n  - {name: a, type: shell, config: {command: x}}\n"
               "handlers: [on_exit]\n") ==
        Lines{"wf.yaml:4:11: 'handlers' must be a map of on_success, on_failure, "
              "on_cancel and on_exit to tasks, got a list"});
}

TEST_CASE("when: a command or a map of command and args, on a task or the workflow") {
  auto w = Valid(R"(
name: c
when: test -e /mnt/usb
tasks:
  - { name: a, type: shell, when: '[ -n "$X" ]', config: { command: "true" } }
  - { name: b, type: http, when: { command: /bin/check, args: [-q, x] }, config: { url: "http://127.0.0.1:9/" } }
  - { name: c, type: shell, config: { command: "true" } }
)");
  REQUIRE(w->when);
  CHECK(w->when->command == "test -e /mnt/usb");
  REQUIRE(w->tasks[0].when);
  CHECK(w->tasks[0].when->command == "[ -n \"$X\" ]");
  CHECK_FALSE(w->tasks[0].when->args);
  REQUIRE(w->tasks[1].when);
  CHECK(w->tasks[1].when->args == std::vector<std::string>{"-q", "x"});
  CHECK_FALSE(w->tasks[2].when);
  CHECK(Errors(R"(
name: c
when: [test, x]
tasks:
  - { name: a, type: shell, when: "", config: { command: "true" } }
  - { name: b, type: shell, when: { args: [x], comand: y }, config: { command: "true" } }
)") == Lines{
           "wf.yaml:2:7: 'when' must be a command, or a map of 'command' and 'args', got a list",
           "wf.yaml:4:35: task 'a': 'when' must not be empty",
           "wf.yaml:5:35: task 'b': when: missing required key 'command'",
           "wf.yaml:5:48: task 'b': when: unknown key 'comand' (did you mean 'command'?)",
       });
}

}  // namespace
}  // namespace picoflow
