#include "picoflowd/notify_message.h"

#include <ctime>
#include <nlohmann/json.hpp>

#include "common/duration.h"

namespace picoflow {
namespace {

// Discord refuses a message past 2000 characters.
constexpr std::size_t kDiscordMax = 1900;

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

// Cuts at a character boundary of UTF-8 text.
std::string Shorten(const std::string& text, std::size_t max) {
  if (text.size() <= max) return text;
  std::size_t end = max;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  return text.substr(0, end) + "\n[...]";
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
    what = "a scheduled run was skipped";
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
            FormatDuration(std::chrono::duration_cast<std::chrono::seconds>(*m.duration)) + "\n";
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
    case WebhookFormat::kSlack: return dump(json{{"text", NotifyText(m)}});
    case WebhookFormat::kDiscord:
      return dump(json{{"content", Shorten(NotifyText(m), kDiscordMax)}});
    case WebhookFormat::kTeams:
      return dump(json{{"@type", "MessageCard"},
                       {"@context", "https://schema.org/extensions"},
                       {"summary", NotifySubject(m)},
                       {"title", NotifySubject(m)},
                       {"text", "<pre>" + NotifyText(m) + "</pre>"}});
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
  mail += "MIME-Version: 1.0\r\n";
  mail += "Content-Type: text/plain; charset=utf-8\r\n";
  mail += "Content-Transfer-Encoding: 8bit\r\n";
  mail += "\r\n";
  mail += Crlf(NotifyText(m));
  return mail;
}

}  // namespace picoflow
