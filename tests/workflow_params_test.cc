// Params (docs/workflow-format.md, "Parameters"): what the loader accepts and
// refuses, and how a run's values are checked and completed.

#include "common/workflow_params.h"

#include <doctest/doctest.h>

#include "tests/workflow_test_util.h"

namespace picoflow {
namespace {

using test::Errors;
using test::Lines;
using test::Valid;

constexpr std::string_view kTasks = R"(
tasks:
  - name: t
    type: shell
    config: { command: "true" }
)";

std::string WithParams(std::string_view params, std::string_view top = "") {
  return "name: w\n" + std::string(top) + "params:\n" + std::string(params) +
         std::string(kTasks.substr(1));
}

std::shared_ptr<const Workflow> Backup() {
  return Valid(WithParams(R"(  target: /mnt/backup
  keep: 7
  empty:
  mode:
    default: incremental
    choices: [full, incremental]
    description: what to copy
  token: { required: true, description: API token }
)"));
}

std::string Problem(const Result<ParamValues>& r) {
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::kInvalid);
  return r.error().message;
}

TEST_CASE("params load in declaration order with their defaults") {
  auto w = Backup();
  REQUIRE(w->params.size() == 5);
  CHECK(w->params[0].name == "target");
  CHECK(w->params[0].default_value == "/mnt/backup");
  CHECK(w->params[1].default_value == "7");
  CHECK(w->params[2].name == "empty");
  CHECK(w->params[2].default_value.empty());
  CHECK_FALSE(w->params[2].required);
  CHECK(w->params[3].choices == std::vector<std::string>{"full", "incremental"});
  CHECK(w->params[3].description == "what to copy");
  CHECK(w->params[4].required);
  CHECK(w->params[0].pos.line == 3);
  CHECK(Valid(std::string("name: w\n") + std::string(kTasks.substr(1)))->params.empty());
}

TEST_CASE("a run's values: given ones win, the rest take their defaults, in declaration order") {
  auto w = Backup();
  auto values = ResolveParams(*w, {{"token", "s3cret"}, {"keep", "3"}});
  REQUIRE(values.ok());
  CHECK(*values == ParamValues{{"target", "/mnt/backup"},
                               {"keep", "3"},
                               {"empty", ""},
                               {"mode", "incremental"},
                               {"token", "s3cret"}});
  CHECK(ParamEnvName("target") == "PICOFLOW_PARAM_TARGET");
  CHECK(ParamEnvName("dbHost_2") == "PICOFLOW_PARAM_DBHOST_2");
}

TEST_CASE("every problem of a run's values is in the one error") {
  auto w = Backup();
  CHECK(Problem(ResolveParams(*w, {{"targte", "x"}, {"mode", "ful"}})) ==
        "unknown param 'targte' (did you mean 'target'?); param 'mode' must be 'full' or "
        "'incremental', got 'ful' (did you mean 'full'?); param 'token' is required (API token)");
  CHECK(Problem(ResolveParams(*w, {{"token", "a"}, {"token", "b"}})) ==
        "param 'token' is given twice");
  CHECK(Problem(ResolveParams(*w, {{"token", std::string("a\0b", 3)}})) ==
        "param 'token' contains a NUL byte");
  CHECK(Problem(ResolveParams(*w, {{"token", std::string(kMaxParamValueBytes + 1, 'x')}})) ==
        "param 'token' is too long (16385 bytes; the limit is 16384)");
  CHECK(ResolveParams(*w, {{"token", std::string(kMaxParamValueBytes, 'x')}}).ok());
  // Short values are all a typo apart: no guess.
  auto levels = Valid(WithParams("  n: { default: '1', choices: ['1', '2'] }\n"));
  CHECK(Problem(ResolveParams(*levels, {{"n", "3"}})) == "param 'n' must be '1' or '2', got '3'");
  auto none = Valid(std::string("name: w\n") + std::string(kTasks.substr(1)));
  CHECK(Problem(ResolveParams(*none, {{"x", "1"}})) ==
        "unknown param 'x': workflow 'w' has no params");
  CHECK(ResolveParams(*none, {})->empty());
}

TEST_CASE("bad params are reported at their place, all at once") {
  CHECK(
      Errors(WithParams(R"(  1st: a
  ok-not: b
  Env: x
  ENV: y
  mode: { default: z, choices: [a, b] }
  need: { required: true, default: q }
  pick: { choices: [a, b] }
  none: { choices: [] }
  deep: { default: [1, 2] }
  typo: { defualt: 1, required: yes }
)")) ==
      Lines{
          "wf.yaml:3:3: param name '1st' is not valid (1-64 letters, digits and '_', not "
          "starting with a digit: it names the variable PICOFLOW_PARAM_1ST)",
          "wf.yaml:4:3: param name 'ok-not' is not valid (1-64 letters, digits and '_', not "
          "starting with a digit: it names the variable PICOFLOW_PARAM_OK-NOT)",
          "wf.yaml:6:3: param 'ENV' and param 'Env' (line 5) would both be "
          "PICOFLOW_PARAM_ENV",
          "wf.yaml:7:20: param 'mode': 'default' 'z' is not one of its 'choices'",
          "wf.yaml:8:21: param 'need': 'required: true' and a 'default' contradict each "
          "other: a required param must be given by every run",
          "wf.yaml:9:9: param 'pick': a param with 'choices' needs a 'default' among them, "
          "or 'required: true'",
          "wf.yaml:10:20: param 'none': 'choices' must not be empty (leave it out to allow "
          "any value)",
          "wf.yaml:11:20: param 'deep': 'default' must be a string, got a list",
          "wf.yaml:12:11: param 'typo': unknown key 'defualt' (did you mean 'default'?)",
          "wf.yaml:12:33: param 'typo': 'required' must be true or false, got 'yes' (yes/no/on/off "
          "are not booleans here)",
      });
  CHECK(Errors(WithParams("  - a\n")) ==
        Lines{"wf.yaml:3:3: 'params' must be a map of param names to defaults, got a list"});
}

TEST_CASE("a scheduled workflow cannot have a required param") {
  CHECK(Errors(WithParams("  token: { required: true }\n", "schedule: '@daily'\n")) ==
        Lines{"wf.yaml:4:3: param 'token': a scheduled or triggered workflow cannot have a "
              "required param: its fires and events run with the defaults (give it a 'default')"});
  CHECK(Errors(WithParams("  token: { required: true }\n",
                          "triggers: [{webhook: {token_file: /etc/t}}]\n")) ==
        Lines{"wf.yaml:4:3: param 'token': a scheduled or triggered workflow cannot have a "
              "required param: its fires and events run with the defaults (give it a 'default')"});
  CHECK(Valid(WithParams("  token: abc\n", "schedule: '@daily'\n"))->params.size() == 1);
}

TEST_CASE("too many params are refused") {
  std::string params;
  for (std::size_t i = 0; i <= kMaxParams; ++i) params += "  p" + std::to_string(i) + ": x\n";
  CHECK(Errors(WithParams(params)) ==
        Lines{"wf.yaml:3:3: too many params (101; the limit is 100)"});
}

}  // namespace
}  // namespace picoflow
