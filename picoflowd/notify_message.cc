#include "picoflowd/notify_message.h"

#include <algorithm>
#include <ctime>
#include <nlohmann/json.hpp>

#include "common/duration.h"

namespace picoflow {
namespace {

// Discord refuses a message past 2000 characters; a longer one keeps its
// first kDiscordHead bytes and its end.
constexpr std::size_t kDiscordMax = 1900;
constexpr std::size_t kDiscordHead = 600;

// A header value may not end the header: CR and LF become spaces.
std::string HeaderValue(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c == '\r' || c == '\n') c = ' ';
  }
  return out;
}

std::string Crlf(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 16);
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\n' && (i == 0 || text[i - 1] != '\r')) out += '\r';
    out += text[i];
  }
  return out;
}

// The first character boundary of UTF-8 `text` at or after `at`.
std::size_t CharStart(const std::string& text, std::size_t at) {
  while (at < text.size() && (static_cast<unsigned char>(text[at]) & 0xC0) == 0x80) ++at;
  return at;
}

// At most `max` bytes of `text`: its head (the summary and the run's facts,
// `head` bytes at most) and its end (the last lines of output, where the
// error usually is), cut at character boundaries, "[...]" between.
std::string Shorten(const std::string& text, std::size_t max, std::size_t head) {
  if (text.size() <= max) return text;
  const std::string gap = "\n[...]\n";
  std::size_t head_end = std::min(head, text.size());
  while (head_end > 0 && (static_cast<unsigned char>(text[head_end]) & 0xC0) == 0x80) --head_end;
  const std::size_t tail_start = CharStart(text, text.size() - (max - head_end - gap.size()));
  return text.substr(0, head_end) + gap + text.substr(tail_start);
}

// `text` with &, < and > (and with `quotes`, " and ') written as entities.
// Slack reads &, < and > as markup (<!channel> notifies a channel); a Teams
// card's text is HTML: escaped, output is shown as written.
std::string EscapeMarkup(std::string_view text, bool quotes) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += quotes ? "&quot;" : "\""; break;
      case '\'': out += quotes ? "&#39;" : "'"; break;
      default: out += c;
    }
  }
  return out;
}

}  // namespace

std::string LastLines(std::string_view text, int lines, std::size_t max_bytes) {
  std::size_t start = text.size();
  if (start > 0 && text[start - 1] == '\n') --start;  // the last line's own newline
  for (int n = 0; start > 0;) {
    const std::size_t nl = text.rfind('\n', start - 1);
    if (nl == std::string_view::npos) {
      start = 0;
    } else if (++n == lines) {
      start = nl + 1;
      break;
    } else {
      start = nl;
    }
  }
  std::string_view tail = text.substr(start);
  if (tail.size() > max_bytes) {
    tail = tail.substr(tail.size() - max_bytes);
    if (const std::size_t nl = tail.find('\n');
        nl != std::string_view::npos && nl + 1 < tail.size())
      tail = tail.substr(nl + 1);
  }
  return std::string(tail);
}

std::string NotifySubject(const NotifyMessage& m) {
  std::string what;
  if (m.event == "test") {
    what = "test notification";
  } else if (m.event == "retry") {
    what = "run " + std::to_string(m.run_id) + ": a task is retried";
  } else if (m.event == "skipped_fire") {
    what = "run " + std::to_string(m.run_id) + " skipped (a scheduled fire)";
  } else if (m.event == "recovered") {
    what = "run " + std::to_string(m.run_id) + " succeeded again";
  } else if (m.event == "timeout") {
    what = "run " + std::to_string(m.run_id) + " timed out";
  } else {
    what = "run " + std::to_string(m.run_id) + " " + m.status;
  }
  return "picoflow: " + m.workflow + " " + what + (m.host.empty() ? "" : " on " + m.host);
}

std::string NotifyText(const NotifyMessage& m) {
  std::string text = NotifySubject(m) + "\n\n";
  text += "workflow: " + m.workflow + "\n";
  if (m.run_id > 0) text += "run: " + std::to_string(m.run_id) + "\n";
  text += "event: " + m.event + "\n";
  if (!m.status.empty()) text += "status: " + m.status + "\n";
  if (m.duration) {
    text += "duration: " +
            (*m.duration < std::chrono::seconds(1)
                 ? std::to_string(m.duration->count()) + "ms"
                 : FormatDuration(std::chrono::duration_cast<std::chrono::seconds>(*m.duration))) +
            "\n";
  }
  if (!m.host.empty()) text += "host: " + m.host + "\n";
  if (!m.detail.empty()) text += m.detail + "\n";
  for (const NotifyFailedTask& t : m.failed) {
    text += "\ntask " + t.name + ": " + t.status + (t.reason.empty() ? "" : ": " + t.reason) + "\n";
    if (!t.last_output.empty()) {
      text += "last output:\n" + t.last_output;
      if (t.last_output.back() != '\n') text += '\n';
    }
  }
  return text;
}

std::string WebhookBody(const NotifyMessage& m, WebhookFormat format) {
  using nlohmann::json;
  const auto dump = [](const json& j) {
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
  };
  switch (format) {
    case WebhookFormat::kSlack: return dump(json{{"text", EscapeMarkup(NotifyText(m), false)}});
    case WebhookFormat::kDiscord:
      // No mention in the output (@everyone) pings anyone.
      return dump(json{{"content", Shorten(NotifyText(m), kDiscordMax, kDiscordHead)},
                       {"allowed_mentions", {{"parse", json::array()}}}});
    case WebhookFormat::kTeams:
      return dump(json{{"@type", "MessageCard"},
                       {"@context", "https://schema.org/extensions"},
                       {"summary", NotifySubject(m)},
                       {"title", EscapeMarkup(NotifySubject(m), true)},
                       {"text", "<pre>" + EscapeMarkup(NotifyText(m), true) + "</pre>"}});
    case WebhookFormat::kJson: break;
  }
  json failed = json::array();
  for (const NotifyFailedTask& t : m.failed) {
    failed.push_back({{"task", t.name},
                      {"status", t.status},
                      {"reason", t.reason},
                      {"last_output", t.last_output}});
  }
  json body = {{"workflow", m.workflow},
               {"event", m.event},
               {"host", m.host},
               {"summary", NotifySubject(m)},
               {"failed_tasks", failed}};
  body["run_id"] = m.run_id > 0 ? json(m.run_id) : json(nullptr);
  body["status"] = m.status.empty() ? json(nullptr) : json(m.status);
  body["duration_ms"] = m.duration ? json(m.duration->count()) : json(nullptr);
  if (!m.detail.empty()) body["detail"] = m.detail;
  return dump(body);
}

std::string PingBody(const NotifyMessage& m) {
  std::string body;
  for (const NotifyFailedTask& t : m.failed) {
    body += "task " + t.name + ": " + t.status + (t.reason.empty() ? "" : ": " + t.reason) + "\n";
    body += t.last_output;
    if (!body.empty() && body.back() != '\n') body += '\n';
  }
  if (body.size() > kNotifyTailBytes) body = body.substr(body.size() - kNotifyTailBytes);
  return body;
}

std::string MailMessage(const NotifyMessage& m, const NotifyTarget& target,
                        std::chrono::system_clock::time_point now) {
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char date[64];
  std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
  std::string to;
  for (const std::string& addr : target.to) to += (to.empty() ? "" : ", ") + HeaderValue(addr);
  std::string mail;
  mail += "Date: " + std::string(date) + "\r\n";
  mail += "From: " + HeaderValue(target.from) + "\r\n";
  mail += "To: " + to + "\r\n";
  mail += "Subject: " + HeaderValue(NotifySubject(m)) + "\r\n";
  // Unique per message: the time to the microsecond, the run and the event.
  const auto us =
      std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count();
  mail += "Message-ID: <picoflow." + std::to_string(us) + "." + std::to_string(m.run_id) + "." +
          HeaderValue(m.event) + "@" + HeaderValue(m.host.empty() ? "localhost" : m.host) + ">\r\n";
  mail += "MIME-Version: 1.0\r\n";
  mail += "Content-Type: text/plain; charset=utf-8\r\n";
  mail += "Content-Transfer-Encoding: 8bit\r\n";
  mail += "\r\n";
  mail += Crlf(NotifyText(m));
  return mail;
}

}  // namespace picoflow
