#pragma once
// NotifyTarget: where a workflow's runs are told about (`notify:`, in a
// workflow or as the daemon's default in picoflowd.yaml), when, and the
// pure decisions around it: which event a run's end is, which targets want
// it, how long before a delivery is tried again (docs/notifications.md).

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace picoflow {

class FieldReader;
struct YamlNode;

/// What a target may be told of, in the order of kNotifyEventNames.
enum class NotifyEvent { kFailure, kSuccess, kTimeout, kRetry, kSkippedFire, kRecovered };
inline constexpr std::string_view kNotifyEventNames[] = {"failure", "success",      "timeout",
                                                         "retry",   "skipped_fire", "recovered"};
/// The name of `event` as written in `on:`.
std::string_view NotifyEventName(NotifyEvent event);

/// How a target is reached.
enum class NotifyKind { kWebhook, kPing, kEmail };
inline constexpr std::string_view kNotifyKindNames[] = {"webhook", "ping", "email"};
std::string_view NotifyKindName(NotifyKind kind);

/// The shape of a webhook's body, in the order of kWebhookFormatNames.
enum class WebhookFormat { kJson, kSlack, kDiscord, kTeams };
inline constexpr std::string_view kWebhookFormatNames[] = {"json", "slack", "discord", "teams"};

/// A set of NotifyEvents.
using NotifyEvents = std::uint32_t;
inline constexpr NotifyEvents Bit(NotifyEvent e) { return 1u << static_cast<unsigned>(e); }
/// `on:` when a target does not say: a run that failed (or timed out) and
/// the first success after failures.
inline constexpr NotifyEvents kDefaultNotifyOn =
    Bit(NotifyEvent::kFailure) | Bit(NotifyEvent::kRecovered);
/// `on:` of a ping target that does not say: every run's end.
inline constexpr NotifyEvents kDefaultPingOn =
    Bit(NotifyEvent::kFailure) | Bit(NotifyEvent::kSuccess);

/// One target of `notify:`.
struct NotifyTarget {
  std::string name;  ///< `name:`, else KIND-N (N: its 1-based place in the list)
  NotifyKind kind = NotifyKind::kWebhook;
  NotifyEvents on = kDefaultNotifyOn;
  // webhook and ping
  std::string url;
  std::string method = "POST";                               ///< webhook only
  std::vector<std::pair<std::string, std::string>> headers;  ///< webhook only
  WebhookFormat format = WebhookFormat::kJson;
  // email
  std::string smtp;  ///< smtp://host[:port] or smtps://host[:port]
  std::string from;
  std::vector<std::string> to;
  std::string username;
  std::string password_file;  ///< absolute; read at send time (ReadPrivateFile)

  bool operator==(const NotifyTarget&) const = default;
};
using NotifyTargets = std::vector<NotifyTarget>;

/// The outcome of one test delivery (notify.test).
struct NotifyTestOutcome {
  std::string target;
  std::string kind;
  bool sent = false;
  std::string error;
};

/// Reads a `notify:` value (a list of targets; `[]` turns the default off)
/// into `out`, reporting each problem at its node (messages start with
/// `notify #N: ` or `notify 'NAME': `).
void LoadNotifyTargets(FieldReader& r, const YamlNode& v, NotifyTargets& out);

/// What a run's end is, to its targets: kTimeout for a failed run one of
/// whose tasks timed out, kFailure for another failed run, kRecovered for a
/// success after the workflow's previous finished run failed, kSuccess for
/// another success; nullopt for a run cancelled or skipped.
std::optional<NotifyEvent> RunEndEvent(bool succeeded, bool failed, bool timed_out,
                                       bool previous_failed);

/// Whether `target` is told of `event`: it is in its `on`, or is covered by
/// one there (a timeout is a failure; a recovery is a success).
bool TargetWants(const NotifyTarget& target, NotifyEvent event);

/// A ping target is told `/start` when a run starts if it is told of the
/// run's end at all (success, failure, timeout or recovered).
bool PingWantsStart(const NotifyTarget& target);

/// Deliveries: the first try and this many more.
inline constexpr int kNotifyRetries = 3;
/// The wait before try `attempt` (2 is the first retry): 2 s, 4 s, 8 s.
std::chrono::milliseconds NotifyRetryDelay(int attempt);
/// A request that takes longer than this fails (and is tried again).
inline constexpr std::chrono::seconds kNotifyTimeout{10};

}  // namespace picoflow
