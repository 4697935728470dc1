#include "common/workflow_triggers.h"

#include <algorithm>
#include <iterator>

#include "common/task_paths.h"
#include "common/workflow_fields.h"
#include "common/yaml_tree.h"

namespace picoflow {
namespace {

using namespace std::chrono_literals;

constexpr std::size_t kMaxTriggers = 16;
constexpr std::chrono::seconds kMaxSettle = 1h;
constexpr std::string_view kTriggerKeys[] = {"file", "webhook", "mqtt"};
constexpr std::string_view kFileKeys[] = {"path", "pattern", "events", "settle"};
constexpr std::string_view kWebhookKeys[] = {"token_file"};
constexpr std::string_view kMqttKeys[] = {"topic", "qos"};

// A path of the workflow resolved against its file's directory; it must end
// up absolute, as the daemon's working directory is nothing to rely on.
std::string LoadPath(FieldReader& r, const YamlNode& v, Where w, const PathBase& paths) {
  std::optional<std::string> text = r.Text(v, w);
  if (!text) return "";
  if (text->empty()) {
    r.Report(v.pos, w.prefix + "'" + std::string(w.key) + "' must not be empty");
    return "";
  }
  Result<std::string> path = ResolvePath(*text, paths.dir, paths);
  if (!path.ok()) {
    r.Report(v.pos, w.prefix + "'" + std::string(w.key) + "': " + path.error().message);
    return "";
  }
  if (path->front() != '/') {
    r.Report(v.pos, w.prefix + "'" + std::string(w.key) + "' must be an absolute path when the " +
                        "workflow's file is not known (submit it from its file), got '" + *text +
                        "'");
    return "";
  }
  return *path;
}

void LoadFile(FieldReader& r, const YamlNode& v, const std::string& p, const PathBase& paths,
              FileTrigger& out) {
  if (!v.IsMap()) {
    r.Report(v.pos, p + "'file' must be a map {path, pattern, events, settle}, got " +
                        DescribeYamlNode(v));
    return;
  }
  r.CheckKeys(v, kFileKeys, p, "key");
  const YamlNode* path = v.Find("path");
  if (r.Require(path, {p, "path"}, v.pos)) out.path = LoadPath(r, *path, {p, "path"}, paths);
  if (const YamlNode* n = v.Find("pattern")) {
    std::optional<std::string> pattern = r.Text(*n, {p, "pattern"});
    if (pattern && (pattern->empty() || pattern->find('/') != std::string::npos)) {
      r.Report(n->pos, p + "'pattern' must be a file name pattern like '*.jpg' (no '/'), got '" +
                           *pattern + "'");
    } else if (pattern) {
      out.pattern = *pattern;
    }
  }
  if (const YamlNode* n = v.Find("events")) {
    std::vector<std::string> names;
    std::vector<SourcePos> positions;
    if (r.TextList(*n, {p, "events"}, true, names, &positions)) {
      out.events = 0;
      for (std::size_t i = 0; i < names.size(); ++i) {
        const auto it = std::find(std::begin(kFileEventNames), std::end(kFileEventNames),
                                  std::string_view(names[i]));
        if (it == std::end(kFileEventNames)) {
          r.Report(positions[i], p + "'events': unknown event '" + names[i] + "' (one of " +
                                     JoinOr(kFileEventNames) + ")" +
                                     DidYouMean(ClosestMatch(names[i], kFileEventNames)));
          continue;
        }
        out.events |= 1u << (it - std::begin(kFileEventNames));
      }
      if (names.empty()) r.Report(n->pos, p + "'events' must name at least one event");
    }
  }
  if (const YamlNode* n = v.Find("settle")) {
    if (auto settle = r.Duration(*n, {p, "settle"}, 0s)) {
      if (*settle > kMaxSettle) {
        r.Report(n->pos, p + "'settle' must be at most 1h");
      } else {
        out.settle = *settle;
      }
    }
  }
}

void LoadWebhook(FieldReader& r, const YamlNode& v, const std::string& p, const PathBase& paths,
                 WebhookTrigger& out) {
  if (!v.IsMap()) {
    r.Report(v.pos, p + "'webhook' must be a map {token_file: PATH}, got " + DescribeYamlNode(v));
    return;
  }
  r.CheckKeys(v, kWebhookKeys, p, "key");
  const YamlNode* file = v.Find("token_file");
  if (r.Require(file, {p, "token_file"}, v.pos)) {
    out.token_file = LoadPath(r, *file, {p, "token_file"}, paths);
  }
}

void LoadMqtt(FieldReader& r, const YamlNode& v, const std::string& p, MqttTrigger& out) {
  if (!v.IsMap()) {
    r.Report(v.pos, p + "'mqtt' must be a map {topic, qos}, got " + DescribeYamlNode(v));
    return;
  }
  r.CheckKeys(v, kMqttKeys, p, "key");
  const YamlNode* topic = v.Find("topic");
  if (r.Require(topic, {p, "topic"}, v.pos)) {
    if (std::optional<std::string> text = r.Text(*topic, {p, "topic"})) {
      std::string why;
      if (!ValidTopicFilter(*text, &why)) {
        r.Report(topic->pos, p + "'topic' '" + *text + "' is not an MQTT topic filter: " + why);
      } else if (text->starts_with("picoflow/")) {
        r.Report(topic->pos, p + "'topic': picoflow/... is the fleet's own (docs/fleet.md)");
      } else if (text->front() == '+' || text->front() == '#' || text->front() == '$') {
        // A wildcard first level would also catch the fleet's requests
        // (picoflow/...), outside their shared subscription.
        r.Report(topic->pos, p + "'topic' must start with a topic level of its own, not '" +
                                 text->substr(0, 1) + "' (a wildcard there would also catch " +
                                 "picoflow/..., the fleet's requests), got '" + *text + "'");
      } else {
        out.topic = *text;
      }
    }
  }
  if (const YamlNode* q = v.Find("qos")) {
    out.qos = static_cast<int>(r.Int(*q, {p, "qos"}, 0, 1).value_or(out.qos));
  }
}

void LoadTrigger(FieldReader& r, const YamlNode& item, std::size_t index, const PathBase& paths,
                 WorkflowTrigger& t) {
  const std::string p = "triggers #" + std::to_string(index + 1) + ": ";
  t.pos = item.pos;
  if (!item.IsMap() || item.entry_count() != 1) {
    r.Report(item.pos, p + "a trigger must be a map with exactly one of file, webhook or mqtt, " +
                           "got " + DescribeYamlNode(item));
    return;
  }
  const YamlNode& key = item.key(0);
  const auto it =
      std::find(std::begin(kTriggerKeys), std::end(kTriggerKeys), std::string_view(key.text));
  if (it == std::end(kTriggerKeys)) {
    r.Report(key.pos, p + "unknown trigger '" + key.text + "' (one of " + JoinOr(kTriggerKeys) +
                          ")" + DidYouMean(ClosestMatch(key.text, kTriggerKeys)) +
                          (key.text == "schedule" || key.text == "cron"
                               ? "; cron fires go in the top-level 'schedule'"
                               : ""));
    return;
  }
  t.kind = static_cast<TriggerKind>(it - std::begin(kTriggerKeys));
  const YamlNode& v = item.value(0);
  switch (t.kind) {
    case TriggerKind::kFile: LoadFile(r, v, p, paths, t.file); break;
    case TriggerKind::kWebhook: LoadWebhook(r, v, p, paths, t.webhook); break;
    case TriggerKind::kMqtt: LoadMqtt(r, v, p, t.mqtt); break;
  }
}

}  // namespace

void LoadTriggers(FieldReader& r, const YamlNode* v, const PathBase& paths,
                  std::vector<WorkflowTrigger>& out) {
  out.clear();
  if (v == nullptr || v->IsNull()) return;
  if (!v->IsSequence()) {
    r.Report(v->pos, "'triggers' must be a list like [{file: {path: /srv/in}}], got " +
                         DescribeYamlNode(*v));
    return;
  }
  if (v->children.size() > kMaxTriggers) {
    r.Report(v->pos, "'triggers': too many (" + std::to_string(v->children.size()) +
                         "; the limit is " + std::to_string(kMaxTriggers) + ")");
    return;
  }
  int webhooks = 0;
  for (std::size_t i = 0; i < v->children.size(); ++i) {
    WorkflowTrigger t;
    LoadTrigger(r, v->children[i], i, paths, t);
    if (t.kind == TriggerKind::kWebhook && ++webhooks == 2) {
      r.Report(t.pos, "triggers #" + std::to_string(i + 1) +
                          ": a workflow has one webhook (POST /hooks/<workflow>)");
    }
    out.push_back(std::move(t));
  }
}

bool ValidTopicFilter(std::string_view filter, std::string* why) {
  const auto fail = [why](const char* text) {
    if (why != nullptr) *why = text;
    return false;
  };
  if (filter.empty()) return fail("it is empty");
  if (filter.size() > 65535) return fail("it is longer than 65535 bytes");
  if (filter.find('\0') != std::string_view::npos) return fail("it holds a NUL byte");
  std::size_t start = 0;
  for (;;) {
    const std::size_t slash = filter.find('/', start);
    const std::string_view level =
        filter.substr(start, slash == std::string_view::npos ? filter.npos : slash - start);
    if (level.find('#') != std::string_view::npos &&
        (level != "#" || slash != std::string_view::npos)) {
      return fail("'#' must be the whole last level");
    }
    if (level.find('+') != std::string_view::npos && level != "+") {
      return fail("'+' must be a whole level");
    }
    if (slash == std::string_view::npos) return true;
    start = slash + 1;
  }
}

bool TopicMatches(std::string_view filter, std::string_view topic) {
  // A wildcard at the first level does not match topics starting with '$'
  // (MQTT 3.1.1 and 5, 4.7.2).
  if (!topic.empty() && topic.front() == '$' && !filter.empty() &&
      (filter.front() == '+' || filter.front() == '#')) {
    return false;
  }
  std::size_t f = 0;
  std::size_t t = 0;
  for (;;) {
    const std::size_t fs = filter.find('/', f);
    const std::string_view level =
        filter.substr(f, fs == std::string_view::npos ? filter.npos : fs - f);
    if (level == "#") return true;  // also the parent level: "a/#" matches "a"
    if (t > topic.size()) return false;
    const std::size_t ts = topic.find('/', t);
    const std::string_view name =
        topic.substr(t, ts == std::string_view::npos ? topic.npos : ts - t);
    if (level != "+" && level != name) return false;
    if (fs == std::string_view::npos) return ts == std::string_view::npos;
    if (ts == std::string_view::npos) {
      // The topic ended: only "/#" may follow.
      return filter.substr(fs + 1) == "#";
    }
    f = fs + 1;
    t = ts + 1;
  }
}

std::vector<std::pair<std::string, std::string>> TriggerEnv(const TriggerEvent& event) {
  std::vector<std::pair<std::string, std::string>> env;
  if (!event.file.empty()) env.emplace_back("PICOFLOW_TRIGGER_FILE", event.file);
  if (!event.topic.empty()) env.emplace_back("PICOFLOW_TRIGGER_TOPIC", event.topic);
  if (!event.payload.empty()) env.emplace_back("PICOFLOW_TRIGGER_PAYLOAD", event.payload);
  return env;
}

}  // namespace picoflow
