#pragma once
// A workflow's `triggers:` (docs/triggers.md): the events that start its
// runs besides the clock — a file landing in a directory, a webhook call, an
// MQTT message — and what a run started by one is told of it.

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/diagnostic.h"

namespace picoflow {

class FieldReader;
struct PathBase;
struct YamlNode;

/// What a webhook body or an MQTT payload may weigh (docs/triggers.md).
inline constexpr std::size_t kMaxTriggerPayload = 64 * 1024;

enum class TriggerKind { kFile, kWebhook, kMqtt };
/// The keys of a trigger, indexed by TriggerKind.
inline constexpr std::string_view kTriggerKindNames[] = {"file", "webhook", "mqtt"};

/// The file events a `file:` trigger reports, as bits.
enum FileEventBits : unsigned {
  kFileCreated = 1,  ///< a file created in the directory
  kFileMovedIn = 2,  ///< a file renamed or moved into it
  kFileModified = 4  ///< a file already there written to
};
inline constexpr std::string_view kFileEventNames[] = {"created", "moved_in", "modified"};

/// `file: {path, pattern, events, settle}`.
struct FileTrigger {
  std::string path;           ///< the directory watched, absolute once loaded
  std::string pattern = "*";  ///< a glob (fnmatch) on the file's name
  unsigned events = kFileCreated | kFileMovedIn;
  /// A file is reported once nothing happened to it for this long.
  std::chrono::seconds settle{2};
};

/// `webhook: {token_file}`: POST /hooks/<workflow> on the HTTP listener.
struct WebhookTrigger {
  std::string token_file;  ///< absolute once loaded
};

/// `mqtt: {topic, qos}`: a message on a matching topic of the daemon's broker.
struct MqttTrigger {
  std::string topic;  ///< an MQTT topic filter (`+` and `#` wildcards)
  int qos = 1;
};

/// One entry of `triggers:`; only the member of its kind is set.
struct WorkflowTrigger {
  TriggerKind kind = TriggerKind::kFile;
  FileTrigger file;
  WebhookTrigger webhook;
  MqttTrigger mqtt;
  SourcePos pos;
};

/// Reads `triggers:` into `out`, reporting every problem to `r`. Relative
/// paths resolve as a shell task's workdir does (common/task_paths.h).
void LoadTriggers(FieldReader& r, const YamlNode* v, const PathBase& paths,
                  std::vector<WorkflowTrigger>& out);

/// True if `filter` is a valid MQTT topic filter: not empty, `+` only as a
/// whole level, `#` only as the whole last level, no NUL. Empty `why`
/// otherwise says what is wrong.
bool ValidTopicFilter(std::string_view filter, std::string* why = nullptr);
/// True if `topic` (a topic name, no wildcards) matches `filter`.
bool TopicMatches(std::string_view filter, std::string_view topic);

/// What started a run besides its RunTrigger: the file, the topic, the
/// payload. Empty for runs started any other way. Stored with the run, so
/// a resumed run's tasks see it again.
struct TriggerEvent {
  std::string file;     ///< a file trigger's file (absolute)
  std::string topic;    ///< an MQTT message's topic
  std::string payload;  ///< a webhook's body or an MQTT message's payload
  std::string source;   ///< who asked: an address, a client id (for humans)

  bool empty() const { return file.empty() && topic.empty() && payload.empty() && source.empty(); }
  bool operator==(const TriggerEvent&) const = default;
};

/// The variables a task of a run started by `event` gets:
/// PICOFLOW_TRIGGER_FILE, PICOFLOW_TRIGGER_TOPIC, PICOFLOW_TRIGGER_PAYLOAD,
/// each when it has a value.
std::vector<std::pair<std::string, std::string>> TriggerEnv(const TriggerEvent& event);

}  // namespace picoflow
