// picoflowd/notify_message.cc: what each kind of target is sent.

#include "picoflowd/notify_message.h"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

namespace picoflow {
namespace {

using nlohmann::json;

NotifyMessage Failed() {
  NotifyMessage m;
  m.workflow = "backup";
  m.run_id = 12;
  m.event = "failure";
  m.status = "failed";
  m.host = "pi";
  m.duration = std::chrono::milliseconds(75'000);
  m.failed.push_back({"upload", "failed", "exited with code 3", "connecting\nrefused\n"});
  return m;
}

TEST_CASE("the last lines of output: at most N lines and at most max bytes") {
  CHECK(LastLines("a\nb\nc\n", 2) == "b\nc\n");
  CHECK(LastLines("a\nb\nc", 2) == "b\nc");
  CHECK(LastLines("a\nb\n", 5) == "a\nb\n");
  CHECK(LastLines("", 5) == "");
  CHECK(LastLines("one line", 1) == "one line");
  // Past max_bytes, cut at the start of a line.
  CHECK(LastLines("aaaa\nbb\ncc\n", 20, 7) == "bb\ncc\n");
  CHECK(LastLines("aaaa\nbb\ncc\n", 20, 5) == "cc\n");
}

TEST_CASE("a json webhook body holds the run, its failed tasks and their output") {
  const json body = json::parse(WebhookBody(Failed(), WebhookFormat::kJson));
  CHECK(body == json{{"workflow", "backup"},
                     {"run_id", 12},
                     {"event", "failure"},
                     {"status", "failed"},
                     {"host", "pi"},
                     {"duration_ms", 75'000},
                     {"summary", "picoflow: backup run 12 failed on pi"},
                     {"failed_tasks",
                      {{{"task", "upload"},
                        {"status", "failed"},
                        {"reason", "exited with code 3"},
                        {"last_output", "connecting\nrefused\n"}}}}});
}

TEST_CASE("slack, discord and teams get the text in their shape") {
  const std::string text = NotifyText(Failed());
  CHECK(text ==
        "picoflow: backup run 12 failed on pi\n\nworkflow: backup\nrun: 12\nevent: failure\n"
        "status: failed\nduration: 1m15s\nhost: pi\n\ntask upload: failed: exited with code 3\n"
        "last output:\nconnecting\nrefused\n");
  CHECK(json::parse(WebhookBody(Failed(), WebhookFormat::kSlack)) == json{{"text", text}});
  CHECK(json::parse(WebhookBody(Failed(), WebhookFormat::kDiscord)) ==
        json{{"content", text}, {"allowed_mentions", {{"parse", json::array()}}}});
  const json teams = json::parse(WebhookBody(Failed(), WebhookFormat::kTeams));
  CHECK(teams["@type"] == "MessageCard");
  CHECK(teams["summary"] == "picoflow: backup run 12 failed on pi");
  CHECK(teams["text"] == "<pre>" + text + "</pre>");
}

TEST_CASE("a discord message stays under its 2000 characters, keeping its head and its end") {
  NotifyMessage m = Failed();
  std::string output;
  for (int i = 0; i < 500; ++i) output += "line " + std::to_string(i) + " \xc3\xa9\n";
  m.failed[0].last_output = output + "the error\n";
  const std::string content =
      json::parse(WebhookBody(m, WebhookFormat::kDiscord))["content"].get<std::string>();
  CHECK(content.size() < 2000);
  CHECK(content.rfind("picoflow: backup run 12 failed on pi\n", 0) == 0);
  CHECK(content.find("\n[...]\n") != std::string::npos);
  CHECK(content.size() > 10);
  CHECK(content.substr(content.size() - 10) == "the error\n");
  CHECK(json::parse(json(content).dump()) == content);  // still valid UTF-8
}

TEST_CASE("output reaches slack and teams as text, never as their markup") {
  NotifyMessage m = Failed();
  m.failed[0].last_output = "<!channel> a & b <script>'\"\n";
  const std::string slack =
      json::parse(WebhookBody(m, WebhookFormat::kSlack))["text"].get<std::string>();
  CHECK(slack.find("&lt;!channel&gt; a &amp; b &lt;script&gt;'\"\n") != std::string::npos);
  CHECK(slack.find('<') == std::string::npos);
  const std::string teams =
      json::parse(WebhookBody(m, WebhookFormat::kTeams))["text"].get<std::string>();
  CHECK(teams.find("&lt;!channel&gt; a &amp; b &lt;script&gt;&#39;&quot;\n") != std::string::npos);
  CHECK(teams.rfind("<pre>", 0) == 0);
}

TEST_CASE("a skipped fire's subject names its run; a short run's duration is in ms") {
  NotifyMessage m;
  m.workflow = "nightly";
  m.run_id = 7;
  m.event = "skipped_fire";
  m.status = "skipped";
  m.host = "pi";
  CHECK(NotifySubject(m) == "picoflow: nightly run 7 skipped (a scheduled fire) on pi");
  m = Failed();
  m.duration = std::chrono::milliseconds(25);
  CHECK(NotifyText(m).find("duration: 25ms\n") != std::string::npos);
}

TEST_CASE("a ping's body is the failed tasks' last output, at most 10 KB") {
  CHECK(PingBody(Failed()) == "task upload: failed: exited with code 3\nconnecting\nrefused\n");
  NotifyMessage m = Failed();
  m.failed[0].last_output = std::string(20'000, 'x');
  CHECK(PingBody(m).size() == kNotifyTailBytes);
}

TEST_CASE("an e-mail has its headers, then the text with CRLF line ends") {
  NotifyTarget t;
  t.from = "picoflow <pf@example.org>";
  t.to = {"a@example.org", "b@example.org\r\nBcc: evil@example.org"};
  const auto at = std::chrono::sys_days{std::chrono::year{2026} / 12 / 5} + std::chrono::hours(3);
  const std::string mail = MailMessage(Failed(), t, at);
  CHECK(mail.rfind("Date: Sat, 05 Dec 2026 03:00:00 +0000\r\n"
                   "From: picoflow <pf@example.org>\r\n"
                   "To: a@example.org, b@example.org  Bcc: evil@example.org\r\n"
                   "Subject: picoflow: backup run 12 failed on pi\r\n"
                   "Message-ID: <picoflow.1796439600000000.12.failure@pi>\r\n",
                   0) == 0);
  CHECK(mail.find("\r\n\r\npicoflow: backup run 12 failed on pi\r\n\r\nworkflow: backup\r\n") !=
        std::string::npos);
  CHECK(mail.find("refused\r\n") != std::string::npos);
}

}  // namespace
}  // namespace picoflow
