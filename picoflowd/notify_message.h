#pragma once
// NotifyMessage: what a notification says about a run (workflow, run id,
// status, failed tasks with their reasons and last lines of output, duration,
// host), and the pure builders of what each kind of target is sent: a
// webhook's body in each format, an e-mail, a ping's body
// (docs/notifications.md, "What is sent").

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/notify.h"

namespace picoflow {

/// How many lines of a failed task's stored output a notification quotes.
inline constexpr int kNotifyTailLines = 20;
/// At most this many bytes of them (per task), and of a ping's body.
inline constexpr std::size_t kNotifyTailBytes = 10 * 1024;

/// A task of the run that did not succeed.
struct NotifyFailedTask {
  std::string name;
  std::string status;       ///< failed, timed_out, ...
  std::string reason;       ///< why ("exited with code 1")
  std::string last_output;  ///< its last lines (LastLines)
};

/// One notification, whatever the target.
struct NotifyMessage {
  std::string workflow;
  std::int64_t run_id = 0;  ///< 0: none (a test)
  std::string event;        ///< failure, success, ..., or "test"
  std::string status;       ///< the run's status name (empty for a test)
  std::string host;
  std::optional<std::chrono::milliseconds> duration;
  std::string detail;  ///< a skipped fire's reason, a retried task and its error
  std::vector<NotifyFailedTask> failed;
};

/// The last `lines` lines of `text` (a last line without its newline
/// counts), at most `max_bytes` of them, cut at the start of a line when it
/// can be.
std::string LastLines(std::string_view text, int lines = kNotifyTailLines,
                      std::size_t max_bytes = kNotifyTailBytes);

/// One line: `picoflow: backup run 12 failed on HOST`.
std::string NotifySubject(const NotifyMessage& m);
/// The plain text of a notification: the subject's facts, then each failed
/// task with its reason and its last lines.
std::string NotifyText(const NotifyMessage& m);
/// A webhook's body: the message as a JSON object (`json`), or the chat
/// service's shape with the text (`slack`, `discord`, `teams`).
std::string WebhookBody(const NotifyMessage& m, WebhookFormat format);
/// A ping's body: the last output of the failed tasks (at most kNotifyTailBytes).
std::string PingBody(const NotifyMessage& m);
/// A whole e-mail (headers, blank line, CRLF text) from `target.from` to
/// `target.to`, dated `now`.
std::string MailMessage(const NotifyMessage& m, const NotifyTarget& target,
                        std::chrono::system_clock::time_point now);

}  // namespace picoflow
