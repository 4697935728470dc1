// The task keys trigger, retry_on_exit_codes and retry_jitter (and
// config.retry_jitter): read, defaulted, and every bad value reported at its
// line and column (common/workflow_task_rules.cc).

#include "common/workflow_task_rules.h"

#include <doctest/doctest.h>

#include "tests/workflow_test_util.h"

namespace picoflow::test {
namespace {

// Task `t` depends on task `up`; `extra` is added to t's keys.
std::string AfterUp(std::string_view extra) {
  return "name: w\ntasks:\n  - name: up\n    type: shell\n    config: {command: \"true\"}\n"
         "  - name: t\n    type: shell\n    depends_on: [up]\n    config: {command: \"true\"}\n" +
         std::string(extra);
}

}  // namespace

TEST_CASE("without the new keys a task keeps today's behaviour") {
  auto w = Valid(OneShellTask(""));
  CHECK(w->tasks[0].trigger == TriggerRule::kAllSuccess);
  CHECK(w->tasks[0].retry_on_exit_codes.empty());
  CHECK(w->tasks[0].retry_jitter == 0);
  CHECK(w->config.retry_jitter == 0);
}

TEST_CASE("trigger takes each rule's name") {
  for (std::size_t i = 0; i < std::size(kTriggerRuleNames); ++i) {
    const std::string name(kTriggerRuleNames[i]);
    CAPTURE(name);
    auto w = Valid(AfterUp("    trigger: " + name + "\n"));
    CHECK(w->tasks[1].trigger == static_cast<TriggerRule>(i));
    CHECK(TriggerRuleName(w->tasks[1].trigger) == name);
  }
}

TEST_CASE("a misspelt trigger rule or key is reported with a did-you-mean") {
  CHECK(Errors(AfterUp("    trigger: one_sucess\n")) ==
        Lines{"wf.yaml:10:14: task 't': 'trigger' must be all_success, all_done, all_failed, "
              "one_failed, one_success, none_failed or always, got 'one_sucess' (did you mean "
              "'one_success'?)"});
  CHECK(Errors(AfterUp("    trigger: [all_done]\n    triger: all_done\n")) ==
        Lines{"wf.yaml:10:14: task 't': 'trigger' must be a string, got a list",
              "wf.yaml:11:5: task 't': unknown key 'triger' (did you mean 'trigger'?)"});
  CHECK(Errors(AfterUp("    config_x: 1\n    trigger: whenever\n")).at(1) ==
        "wf.yaml:11:14: task 't': 'trigger' must be all_success, all_done, all_failed, "
        "one_failed, one_success, none_failed or always, got 'whenever'");
}

TEST_CASE("a trigger on a task without dependencies is valid, with a warning") {
  CHECK(Warnings(OneShellTask("    trigger: one_failed\n")) ==
        Lines{"wf.yaml:6:14: warning: task 't': 'trigger' has no effect without 'depends_on': "
              "the task starts at once"});
  CHECK(Warnings(AfterUp("    trigger: one_failed\n")).empty());
}

TEST_CASE("the new task keys written inside config are pointed to the task") {
  CHECK(Errors("name: w\ntasks:\n  - name: t\n    type: shell\n"
               "    config: {command: \"true\", trigger: all_done}\n") ==
        Lines{"wf.yaml:5:31: task 't': 'trigger' is not a shell config key; set it on the task "
              "itself (task-level 'trigger:')"});
}

TEST_CASE("retry_on_exit_codes is a non-empty list of exit codes from 0 to 255") {
  CHECK(Valid(OneShellTask("    retry_on_exit_codes: [1, 75, 0, 255, 1]\n"))
            ->tasks[0]
            .retry_on_exit_codes == std::vector<int>{1, 75, 0, 255, 1});
  CHECK(Valid(OneShellTask("    retry_on_exit_codes:\n"))->tasks[0].retry_on_exit_codes.empty());
  CHECK(Errors(OneShellTask("    retry_on_exit_codes: []\n")) ==
        Lines{"wf.yaml:6:26: task 't': 'retry_on_exit_codes' must be a non-empty list of exit "
              "codes, got a list"});
  CHECK(Errors(OneShellTask("    retry_on_exit_codes: 75\n")) ==
        Lines{"wf.yaml:6:26: task 't': 'retry_on_exit_codes' must be a non-empty list of exit "
              "codes, got '75' (write it as a list: [75])"});
  CHECK(Errors(OneShellTask("    retry_on_exit_codes: [256, -1, \"3\", x, 1.5, [2]]\n")) ==
        Lines{
            "wf.yaml:6:27: task 't': each item of 'retry_on_exit_codes' must be an integer from "
            "0 to 255, got '256'",
            "wf.yaml:6:32: task 't': each item of 'retry_on_exit_codes' must be an integer from "
            "0 to 255, got '-1'",
            "wf.yaml:6:36: task 't': each item of 'retry_on_exit_codes' must be an integer from "
            "0 to 255, got the quoted string '3' (write it without quotes)",
            "wf.yaml:6:41: task 't': each item of 'retry_on_exit_codes' must be an integer from "
            "0 to 255, got 'x'",
            "wf.yaml:6:44: task 't': each item of 'retry_on_exit_codes' must be an integer from "
            "0 to 255, got '1.5'",
            "wf.yaml:6:49: task 't': each item of 'retry_on_exit_codes' must be an integer from "
            "0 to 255, got a list",
        });
}

TEST_CASE("an http task's retry_on_exit_codes lists HTTP statuses, its exit codes") {
  const std::string http =
      "name: w\ntasks:\n  - name: t\n    type: http\n    config: {url: \"http://x/\"}\n";
  CHECK(Valid(http + "    retry_on_exit_codes: [502, 503]\n")->tasks[0].retry_on_exit_codes ==
        std::vector<int>{502, 503});
  CHECK(Errors(http + "    retry_on_exit_codes: [1]\n") ==
        Lines{"wf.yaml:6:27: task 't': each item of 'retry_on_exit_codes' must be an integer from "
              "100 to 599, got '1'"});
}

TEST_CASE("retry_jitter is a number from 0 to 1, on the task or as config's default") {
  CHECK(Valid(OneShellTask("    retry_jitter: 0.2\n"))->tasks[0].retry_jitter == 0.2);
  CHECK(Valid(OneShellTask("    retry_jitter: 1\n"))->tasks[0].retry_jitter == 1);
  CHECK(Valid(OneShellTask("    retry_jitter: .5\n"))->tasks[0].retry_jitter == 0.5);
  auto w = Valid(AfterUp("    retry_jitter: 0\nconfig: {retry_jitter: 0.3}\n"));
  CHECK(w->config.retry_jitter == 0.3);
  CHECK(w->tasks[0].retry_jitter == 0.3);  // config's default
  CHECK(w->tasks[1].retry_jitter == 0);    // its own
  CHECK(Errors(OneShellTask(R"(    retry_jitter: 1.5
    retry_jitterr: 0
config:
  retry_jitter: "0.2"
)")) == Lines{
            "wf.yaml:6:19: task 't': 'retry_jitter' must be a number from 0 to 1, got '1.5'",
            "wf.yaml:7:5: task 't': unknown key 'retry_jitterr' (did you mean 'retry_jitter'?)",
            "wf.yaml:9:17: config: 'retry_jitter' must be a number from 0 to 1, got the quoted "
            "string '0.2' (write it without quotes)",
        });
  CHECK(Errors(OneShellTask("    retry_jitter: 20%\n")) ==
        Lines{"wf.yaml:6:19: task 't': 'retry_jitter' must be a number from 0 to 1, got '20%' (a "
              "fraction: 0.2 for 20%)"});
  CHECK(Errors(OneShellTask("    retry_jitter: -0.1\n")) ==
        Lines{"wf.yaml:6:19: task 't': 'retry_jitter' must be a number from 0 to 1, got '-0.1'"});
  CHECK(Errors(OneShellTask("    retry_jitter: [0.1]\n")) ==
        Lines{"wf.yaml:6:19: task 't': 'retry_jitter' must be a number from 0 to 1, got a list"});
}

}  // namespace picoflow::test
