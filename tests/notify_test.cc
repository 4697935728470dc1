// common/notify.cc: `notify:` loading with its diagnostics, which targets
// hear which event (recovered included), the retry schedule.

#include "common/notify.h"

#include <doctest/doctest.h>

#include "tests/workflow_test_util.h"

namespace picoflow {
namespace {

using test::Errors;
using test::Lines;
using test::Valid;
using namespace std::chrono_literals;

std::string WithNotify(std::string_view notify) {
  return "name: w\ntasks:\n  - name: t\n    type: shell\n    config: {command: \"true\"}\n"
         "notify:\n" +
         std::string(notify);
}

TEST_CASE("notify targets load with their defaults and names") {
  auto w = Valid(WithNotify(R"(
  - webhook: {url: "https://hooks.example/x", format: slack, headers: {X-Token: abc}}
  - ping: https://hc.example/uuid/
  - name: ops
    on: [failure, retry]
    email: {smtp: "smtps://mail.example:465", from: a@example.org, to: [b@example.org],
            username: a, password_file: /etc/picoflow/smtp}
)"));
  REQUIRE(w->notify);
  const NotifyTargets& t = *w->notify;
  REQUIRE(t.size() == 3);
  CHECK(t[0].name == "webhook-1");
  CHECK(t[0].kind == NotifyKind::kWebhook);
  CHECK(t[0].format == WebhookFormat::kSlack);
  CHECK(t[0].method == "POST");
  CHECK(t[0].on == kDefaultNotifyOn);
  CHECK(t[0].headers == std::vector<std::pair<std::string, std::string>>{{"X-Token", "abc"}});
  CHECK(t[1].name == "ping-2");
  CHECK(t[1].url == "https://hc.example/uuid");  // the trailing slash goes
  CHECK(t[1].on == kDefaultPingOn);
  CHECK(t[2].name == "ops");
  CHECK(t[2].on == (Bit(NotifyEvent::kFailure) | Bit(NotifyEvent::kRetry)));
  CHECK(t[2].to == std::vector<std::string>{"b@example.org"});
}

TEST_CASE("a workflow without notify inherits; notify: [] turns it off") {
  CHECK_FALSE(Valid(test::OneShellTask(""))->notify.has_value());
  auto off = Valid(WithNotify("  []\n"));
  REQUIRE(off->notify);
  CHECK(off->notify->empty());
}

TEST_CASE("notify mistakes are reported at their place") {
  const Lines errors = Errors(WithNotify(R"(
  - webhook: {url: "ftp://x", format: slak}
    on: [failure, sucess]
  - ping: https://hc.example/u
    on: [retry]
  - email: {smtp: "mail.example", from: a@x, to: []}
  - webhook: {url: "http://a"}
    ping: "http://b"
  - webhook: {url: "http://exa mple.com/h", headers: {"Bad Header": x}}
    on: [failed]
  - ping: "http://"
)"));
  CHECK(errors ==
        Lines{
            "wf.yaml:8:20: notify 'webhook-1': webhook: 'url' must start with http:// or "
            "https://, got 'ftp://x'",
            "wf.yaml:8:39: notify 'webhook-1': webhook: 'format' must be json, slack, discord or "
            "teams, got 'slak' (did you mean 'slack'?)",
            "wf.yaml:9:19: notify 'webhook-1': 'on': unknown event 'sucess' (one of failure, "
            "success, timeout, retry, skipped_fire or recovered) (did you mean 'success'?)",
            "wf.yaml:11:10: notify 'ping-2': 'on': a ping is told only of a run's start and end "
            "(failure, success, timeout, recovered), not 'retry'",
            "wf.yaml:12:19: notify 'email-3': email: 'smtp' must start with smtp:// or smtps:// "
            "(smtps://host:465 for TLS from the start)",
            "wf.yaml:12:50: notify 'email-3': email: 'to' must name at least one address",
            "wf.yaml:13:5: notify #4: a target must have exactly one of webhook, ping or email (it "
            "has 2)",
            "wf.yaml:15:20: notify 'webhook-5': webhook: 'url' must not contain spaces or control "
            "characters (percent-encode them), got 'http://exa mple.com/h'",
            "wf.yaml:15:55: notify 'webhook-5': webhook: 'headers': 'Bad Header' is not a valid "
            "HTTP header name",
            "wf.yaml:16:10: notify 'webhook-5': 'on': unknown event 'failed' (one of failure, "
            "success, timeout, retry, skipped_fire or recovered) (did you mean 'failure'?)",
            "wf.yaml:17:11: notify 'ping-6': 'ping' has no host, got 'http://'",
        });
}

TEST_CASE("a run's end is failure, timeout, success or recovered") {
  CHECK(RunEndEvent(false, true, false, false) == NotifyEvent::kFailure);
  CHECK(RunEndEvent(false, true, true, false) == NotifyEvent::kTimeout);
  CHECK(RunEndEvent(true, false, false, false) == NotifyEvent::kSuccess);
  CHECK(RunEndEvent(true, false, false, true) == NotifyEvent::kRecovered);
  CHECK_FALSE(RunEndEvent(false, false, false, true).has_value());  // cancelled or skipped
}

TEST_CASE("a target hears its events and those they cover") {
  NotifyTarget t;  // the default on: failure, recovered
  CHECK(TargetWants(t, NotifyEvent::kFailure));
  CHECK(TargetWants(t, NotifyEvent::kTimeout));  // a timeout is a failure
  CHECK(TargetWants(t, NotifyEvent::kRecovered));
  CHECK_FALSE(TargetWants(t, NotifyEvent::kSuccess));
  CHECK_FALSE(TargetWants(t, NotifyEvent::kRetry));
  t.on = Bit(NotifyEvent::kSuccess);
  CHECK(TargetWants(t, NotifyEvent::kRecovered));  // a recovery is a success
  CHECK_FALSE(TargetWants(t, NotifyEvent::kFailure));
  t.on = Bit(NotifyEvent::kTimeout);
  CHECK(TargetWants(t, NotifyEvent::kTimeout));
  CHECK_FALSE(TargetWants(t, NotifyEvent::kFailure));
  CHECK_FALSE(PingWantsStart(t));  // not a ping
  t.kind = NotifyKind::kPing;
  CHECK(PingWantsStart(t));
}

TEST_CASE("failed deliveries are tried again after 2, 4 and 8 seconds") {
  CHECK(NotifyRetryDelay(2) == 2s);
  CHECK(NotifyRetryDelay(3) == 4s);
  CHECK(NotifyRetryDelay(4) == 8s);
  CHECK(kNotifyRetries == 3);
}

}  // namespace
}  // namespace picoflow
