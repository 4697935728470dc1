// `triggers:` (docs/triggers.md): what the loader accepts and refuses, MQTT
// topic filters, and the variables a triggered run's tasks get.

#include "common/workflow_triggers.h"

#include <doctest/doctest.h>

#include <string>

#include "common/task_paths.h"
#include "common/workflow_load.h"
#include "tests/workflow_test_util.h"

namespace picoflow {
namespace {

using test::Errors;
using test::Lines;
using test::Valid;

std::string WithTriggers(std::string_view triggers) {
  return "name: w\ntriggers:\n" + std::string(triggers) +
         "tasks:\n  - name: t\n    type: shell\n    config: {command: \"true\"}\n";
}

TEST_CASE("each kind of trigger loads with its defaults and its values") {
  auto w = Valid(WithTriggers(R"(  - file: {path: /srv/incoming}
  - file: {path: /srv/in, pattern: "*.jpg", events: [modified], settle: 1m}
  - webhook: {token_file: /etc/picoflow/hook-token}
  - mqtt: {topic: "sensors/+/alarm"}
  - mqtt: {topic: "plant/#", qos: 0}
)"));
  REQUIRE(w->triggers.size() == 5);
  const FileTrigger& plain = w->triggers[0].file;
  CHECK(w->triggers[0].kind == TriggerKind::kFile);
  CHECK(plain.path == "/srv/incoming");
  CHECK(plain.pattern == "*");
  CHECK(plain.events == (kFileCreated | kFileMovedIn));
  CHECK(plain.settle == std::chrono::seconds(2));
  const FileTrigger& jpg = w->triggers[1].file;
  CHECK(jpg.path == "/srv/in");
  CHECK(jpg.pattern == "*.jpg");
  CHECK(jpg.events == kFileModified);
  CHECK(jpg.settle == std::chrono::seconds(60));
  CHECK(w->triggers[2].kind == TriggerKind::kWebhook);
  CHECK(w->triggers[2].webhook.token_file == "/etc/picoflow/hook-token");
  CHECK(w->triggers[3].kind == TriggerKind::kMqtt);
  CHECK(w->triggers[3].mqtt.topic == "sensors/+/alarm");
  CHECK(w->triggers[3].mqtt.qos == 1);
  CHECK(w->triggers[4].mqtt.qos == 0);
}

TEST_CASE("relative paths resolve against the workflow file's directory, which must be known") {
  const std::string yaml = WithTriggers("  - file: {path: in}\n  - webhook: {token_file: ../t}\n");
  LoadedWorkflow loaded = LoadWorkflowText(yaml, "/srv/flows/wf.yaml", PathBase{"/srv/flows", ""});
  REQUIRE(loaded.ok());
  CHECK(loaded.workflow->triggers[0].file.path == "/srv/flows/in");
  CHECK(loaded.workflow->triggers[1].webhook.token_file == "/srv/t");
  CHECK(Errors(WithTriggers("  - file: {path: in}\n")) ==
        Lines{"wf.yaml:3:18: triggers #1: 'path' must be an absolute path when the workflow's "
              "file is not known (submit it from its file), got 'in'"});
}

TEST_CASE("a trigger's mistakes are each reported with where they are") {
  CHECK(Errors(WithTriggers(R"(  - file: {pattern: "a/*.jpg", events: [create], settle: 2h}
  - cron: "* * * * *"
  - webhook: {token_file: ""}
  - webhook: {token_file: /t, token: x}
  - mqtt: {topic: "a/#/b", qos: 2}
  - mqtt: {topic: "picoflow/all/run/w"}
  - {file: {path: /a}, webhook: {token_file: /t}}
)")) == Lines{
            "wf.yaml:3:11: triggers #1: missing required key 'path'",
            "wf.yaml:3:21: triggers #1: 'pattern' must be a file name pattern like '*.jpg' "
            "(no '/'), got 'a/*.jpg'",
            "wf.yaml:3:41: triggers #1: 'events': unknown event 'create' (one of created, "
            "moved_in or modified) (did you mean 'created'?)",
            "wf.yaml:3:58: triggers #1: 'settle' must be at most 1h",
            "wf.yaml:4:5: triggers #2: unknown trigger 'cron' (one of file, webhook or "
            "mqtt); cron fires go in the top-level 'schedule'",
            "wf.yaml:5:27: triggers #3: 'token_file' must not be empty",
            "wf.yaml:6:5: triggers #4: a workflow has one webhook (POST /hooks/<workflow>)",
            "wf.yaml:6:31: triggers #4: unknown key 'token'",
            "wf.yaml:7:19: triggers #5: 'topic' 'a/#/b' is not an MQTT topic filter: '#' "
            "must be the whole last level",
            "wf.yaml:7:33: triggers #5: 'qos' must be an integer from 0 to 1, got '2'",
            "wf.yaml:8:19: triggers #6: 'topic': picoflow/... is the fleet's own "
            "(docs/fleet.md)",
            "wf.yaml:9:5: triggers #7: a trigger must be a map with exactly one of file, "
            "webhook or mqtt, got a map",
        });
  CHECK(Errors("name: w\ntriggers: {file: /a}\n" + WithTriggers("").substr(18)) ==
        Lines{"wf.yaml:2:11: 'triggers' must be a list like [{file: {path: /srv/in}}], got a "
              "map"});
}

TEST_CASE("a trigger's filter starts with a level of its own: '#' would catch the fleet's") {
  CHECK(Errors(WithTriggers("  - mqtt: {topic: \"#\"}\n  - mqtt: {topic: \"+/lab/run/+\"}\n"
                            "  - mqtt: {topic: \"$SYS/#\"}\n")) ==
        Lines{"wf.yaml:3:19: triggers #1: 'topic' must start with a topic level of its own, not "
              "'#' (a wildcard there would also catch picoflow/..., the fleet's requests), got '#'",
              "wf.yaml:4:19: triggers #2: 'topic' must start with a topic level of its own, not "
              "'+' (a wildcard there would also catch picoflow/..., the fleet's requests), got "
              "'+/lab/run/+'",
              "wf.yaml:5:19: triggers #3: 'topic' must start with a topic level of its own, not "
              "'$' (a wildcard there would also catch picoflow/..., the fleet's requests), got "
              "'$SYS/#'"});
}

TEST_CASE("MQTT topic filters: wildcards only as whole levels, '#' last") {
  for (const char* good : {"a", "a/b", "+", "#", "a/+/c", "a/#", "+/+", "/a", "a/", "$share/g/t"}) {
    CHECK_MESSAGE(ValidTopicFilter(good), good);
  }
  std::string why;
  for (const char* bad : {"", "a#", "a/#/b", "a+", "a/b+/c", "##"}) {
    CHECK_MESSAGE(!ValidTopicFilter(bad, &why), bad);
    CHECK(!why.empty());
  }
}

TEST_CASE("a topic matches a filter level by level, '#' also its parent") {
  CHECK(TopicMatches("sensors/+/alarm", "sensors/kitchen/alarm"));
  CHECK_FALSE(TopicMatches("sensors/+/alarm", "sensors/kitchen/ok"));
  CHECK_FALSE(TopicMatches("sensors/+/alarm", "sensors/a/b/alarm"));
  CHECK_FALSE(TopicMatches("sensors/+/alarm", "sensors/alarm"));
  CHECK(TopicMatches("sensors/#", "sensors"));
  CHECK(TopicMatches("sensors/#", "sensors/a/b"));
  CHECK_FALSE(TopicMatches("sensors/#", "sensorsx/a"));
  CHECK(TopicMatches("#", "anything/at/all"));
  CHECK(TopicMatches("+/b", "/b"));  // "" is a level: "+" matches it
  CHECK(TopicMatches("+/b", "a/b"));
  CHECK(TopicMatches("a/b", "a/b"));
  CHECK_FALSE(TopicMatches("a/b", "a/b/c"));
  CHECK_FALSE(TopicMatches("a/b/c", "a/b"));
  // Wildcards at the first level do not match the broker's own $ topics.
  CHECK_FALSE(TopicMatches("#", "$SYS/broker/load"));
  CHECK_FALSE(TopicMatches("+/broker", "$SYS/broker"));
  CHECK(TopicMatches("$SYS/#", "$SYS/broker/load"));
}

TEST_CASE("a triggered run's tasks get each part of its event that is set") {
  CHECK(TriggerEnv({}).empty());
  TriggerEvent file;
  file.file = "/srv/in/a.jpg";
  CHECK(TriggerEnv(file) == std::vector<std::pair<std::string, std::string>>{
                                {"PICOFLOW_TRIGGER_FILE", "/srv/in/a.jpg"}});
  TriggerEvent message;
  message.topic = "sensors/k/alarm";
  message.payload = "{\"t\": 41}";
  message.source = "node-1";  // for humans only
  CHECK(TriggerEnv(message) == std::vector<std::pair<std::string, std::string>>{
                                   {"PICOFLOW_TRIGGER_TOPIC", "sensors/k/alarm"},
                                   {"PICOFLOW_TRIGGER_PAYLOAD", "{\"t\": 41}"}});
}

}  // namespace
}  // namespace picoflow
