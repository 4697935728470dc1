#include "common/notify.h"

#include <algorithm>
#include <span>

#include "common/workflow_fields.h"
#include "common/workflow_task_config.h"
#include "common/yaml_tree.h"

namespace picoflow {
namespace {

constexpr std::string_view kTargetKeys[] = {"name", "on", "webhook", "ping", "email"};
constexpr std::string_view kWebhookKeys[] = {"url", "method", "headers", "format"};
constexpr std::string_view kEmailKeys[] = {"smtp", "from", "to", "username", "password_file"};
constexpr std::size_t kMaxTargets = 32;

bool HasScheme(std::string_view url, std::initializer_list<std::string_view> schemes) {
  return std::any_of(schemes.begin(), schemes.end(), [&](std::string_view s) {
    return url.size() > s.size() + 3 && url.substr(0, s.size()) == s &&
           url.substr(s.size(), 3) == "://";
  });
}

// A URL that is one secret whole is checked when it is sent (Notifier).
bool FromSecret(std::string_view url) { return url.rfind("${secret:", 0) == 0; }

// A required text value that is not empty.
std::optional<std::string> NonEmpty(FieldReader& r, const YamlNode& map, std::string_view key,
                                    const std::string& prefix) {
  const YamlNode* v = map.Find(key);
  if (!r.Require(v, {prefix, key}, map.pos)) return std::nullopt;
  std::optional<std::string> text = r.Text(*v, {prefix, key});
  if (text && text->empty()) {
    r.Report(v->pos, prefix + "'" + std::string(key) + "' must not be empty");
    return std::nullopt;
  }
  return text;
}

void LoadUrl(FieldReader& r, const YamlNode& map, const std::string& prefix, NotifyTarget& t) {
  std::optional<std::string> url = NonEmpty(r, map, "url", prefix);
  if (!url) return;
  if (const std::string why = FromSecret(*url) ? "" : HttpUrlProblem(*url); !why.empty()) {
    r.Report(map.Find("url")->pos, prefix + "'url' " + why + ", got '" + *url + "'");
  }
  t.url = std::move(*url);
}

void LoadWebhook(FieldReader& r, const YamlNode& v, const std::string& prefix, NotifyTarget& t) {
  if (!v.IsMap()) {
    r.Report(v.pos, prefix + "'webhook' must be a map with 'url', got " + DescribeYamlNode(v));
    return;
  }
  r.CheckKeys(v, kWebhookKeys, prefix + "webhook: ", "key");
  LoadUrl(r, v, prefix + "webhook: ", t);
  if (const YamlNode* m = v.Find("method")) {
    std::optional<std::string> method = r.Text(*m, {prefix, "method"});
    if (method && (*method == "POST" || *method == "PUT")) {
      t.method = *method;
    } else if (method) {
      r.Report(m->pos, prefix + "webhook: 'method' must be POST or PUT, got '" + *method + "'");
    }
  }
  std::vector<SourcePos> at;
  if (const YamlNode* h = v.Find("headers");
      h && r.TextMap(*h, {prefix, "headers"}, t.headers, &at)) {
    for (std::size_t i = 0; i < t.headers.size(); ++i) {
      const auto& [name, value] = t.headers[i];
      if (!IsHeaderName(name)) {
        r.Report(at[i],
                 prefix + "webhook: 'headers': '" + name + "' is not a valid HTTP header name");
      } else if (value.find_first_of("\r\n") != std::string::npos) {
        r.Report(at[i],
                 prefix + "webhook: 'headers': the value of '" + name + "' must be one line");
      }
    }
  }
  if (const YamlNode* f = v.Find("format")) {
    std::optional<std::string> format = r.Text(*f, {prefix, "format"});
    if (!format) return;
    const auto it = std::find(std::begin(kWebhookFormatNames), std::end(kWebhookFormatNames),
                              std::string_view(*format));
    if (it == std::end(kWebhookFormatNames)) {
      r.Report(f->pos, prefix + "webhook: 'format' must be " + JoinOr(kWebhookFormatNames) +
                           ", got '" + *format + "'" +
                           DidYouMean(ClosestMatch(*format, kWebhookFormatNames)));
      return;
    }
    t.format = static_cast<WebhookFormat>(it - std::begin(kWebhookFormatNames));
  }
}

void LoadEmail(FieldReader& r, const YamlNode& v, const std::string& prefix, NotifyTarget& t) {
  if (!v.IsMap()) {
    r.Report(v.pos, prefix + "'email' must be a map with 'smtp', 'from' and 'to', got " +
                        DescribeYamlNode(v));
    return;
  }
  const std::string p = prefix + "email: ";
  r.CheckKeys(v, kEmailKeys, p, "key");
  if (std::optional<std::string> smtp = NonEmpty(r, v, "smtp", p)) {
    if (!HasScheme(*smtp, {"smtp", "smtps"})) {
      r.Report(v.Find("smtp")->pos, p + "'smtp' must start with smtp:// or smtps:// (" +
                                        "smtps://host:465 for TLS from the start)");
    }
    t.smtp = std::move(*smtp);
  }
  t.from = NonEmpty(r, v, "from", p).value_or("");
  if (const YamlNode* to = v.Find("to"); r.Require(to, {p, "to"}, v.pos)) {
    if (r.TextList(*to, {p, "to"}, true, t.to) && t.to.empty()) {
      r.Report(to->pos, p + "'to' must name at least one address");
    }
  }
  if (const YamlNode* u = v.Find("username")) t.username = r.Text(*u, {p, "username"}).value_or("");
  if (const YamlNode* f = v.Find("password_file")) {
    t.password_file = r.Text(*f, {p, "password_file"}).value_or("");
    if (!t.password_file.empty() && t.password_file[0] != '/') {
      r.Report(f->pos, p + "'password_file' must be an absolute path");
    }
  }
  if (!t.password_file.empty() && t.username.empty()) {
    r.Report(v.pos, p + "'password_file' needs a 'username'");
  }
}

// The event a word picoflow prints elsewhere (a status) most likely means.
std::string_view EventFor(std::string_view word) {
  static constexpr std::pair<std::string_view, std::string_view> kWords[] = {
      {"failed", "failure"},    {"fail", "failure"},   {"error", "failure"},
      {"succeeded", "success"}, {"ok", "success"},     {"skipped", "skipped_fire"},
      {"timed_out", "timeout"}, {"retrying", "retry"}, {"recovery", "recovered"}};
  for (const auto& [from, to] : kWords) {
    if (word == from) return to;
  }
  return ClosestMatch(word, kNotifyEventNames);
}

void LoadOn(FieldReader& r, const YamlNode& v, const std::string& prefix, NotifyTarget& t) {
  std::vector<std::string> names;
  std::vector<SourcePos> positions;
  if (!r.TextList(v, {prefix, "on"}, true, names, &positions)) return;
  if (names.empty()) {
    r.Report(v.pos, prefix + "'on' must name at least one event (leave the target out instead)");
    return;
  }
  t.on = 0;
  for (std::size_t i = 0; i < names.size(); ++i) {
    const auto it = std::find(std::begin(kNotifyEventNames), std::end(kNotifyEventNames),
                              std::string_view(names[i]));
    if (it == std::end(kNotifyEventNames)) {
      r.Report(positions[i], prefix + "'on': unknown event '" + names[i] + "' (one of " +
                                 JoinOr(kNotifyEventNames) + ")" + DidYouMean(EventFor(names[i])));
      continue;
    }
    const auto event = static_cast<NotifyEvent>(it - std::begin(kNotifyEventNames));
    if (t.kind == NotifyKind::kPing &&
        (event == NotifyEvent::kRetry || event == NotifyEvent::kSkippedFire)) {
      r.Report(positions[i], prefix + "'on': a ping is told only of a run's start and end " +
                                 "(failure, success, timeout, recovered), not '" + names[i] + "'");
      continue;
    }
    t.on |= Bit(event);
  }
}

void LoadTarget(FieldReader& r, const YamlNode& item, std::size_t index, NotifyTarget& t) {
  std::string prefix = "notify #" + std::to_string(index + 1) + ": ";
  if (!item.IsMap()) {
    r.Report(item.pos, prefix + "a target must be a map with one of webhook, ping or email, got " +
                           DescribeYamlNode(item));
    return;
  }
  r.CheckKeys(item, kTargetKeys, prefix, "key");
  int kinds = 0;
  for (std::size_t k = 0; k < std::size(kNotifyKindNames); ++k) {
    if (item.Find(kNotifyKindNames[k]) == nullptr) continue;
    if (kinds++ == 0) t.kind = static_cast<NotifyKind>(k);
  }
  if (kinds != 1) {
    r.Report(item.pos,
             prefix + "a target must have exactly one of webhook, ping or email" +
                 (kinds == 0 ? std::string() : " (it has " + std::to_string(kinds) + ")"));
    return;
  }
  t.name = std::string(NotifyKindName(t.kind)) + "-" + std::to_string(index + 1);
  if (const YamlNode* n = item.Find("name")) {
    std::optional<std::string> name = r.Text(*n, {prefix, "name"});
    if (name && name->empty()) r.Report(n->pos, prefix + "'name' must not be empty");
    if (name && !name->empty()) t.name = *name;
  }
  prefix = "notify '" + t.name + "': ";
  if (t.kind == NotifyKind::kPing) t.on = kDefaultPingOn;
  switch (t.kind) {
    case NotifyKind::kWebhook: LoadWebhook(r, *item.Find("webhook"), prefix, t); break;
    case NotifyKind::kEmail: LoadEmail(r, *item.Find("email"), prefix, t); break;
    case NotifyKind::kPing: {
      const YamlNode& v = *item.Find("ping");
      std::optional<std::string> url = r.Text(v, {prefix, "ping"});
      if (const std::string why = !url || FromSecret(*url) ? "" : HttpUrlProblem(*url);
          !why.empty()) {
        r.Report(v.pos, prefix + "'ping' " + why + ", got '" + *url + "'");
      }
      t.url = url.value_or("");
      while (t.url.size() > 1 && t.url.back() == '/') t.url.pop_back();
      break;
    }
  }
  if (const YamlNode* on = item.Find("on")) LoadOn(r, *on, prefix, t);
}

}  // namespace

std::string_view NotifyEventName(NotifyEvent event) {
  return kNotifyEventNames[static_cast<std::size_t>(event)];
}

std::string_view NotifyKindName(NotifyKind kind) {
  return kNotifyKindNames[static_cast<std::size_t>(kind)];
}

void LoadNotifyTargets(FieldReader& r, const YamlNode& v, NotifyTargets& out) {
  out.clear();
  if (v.IsNull()) return;
  if (!v.IsSequence()) {
    r.Report(v.pos, "'notify' must be a list of targets ([] for none), got " + DescribeYamlNode(v));
    return;
  }
  if (v.children.size() > kMaxTargets) {
    r.Report(v.pos, "'notify': too many targets (" + std::to_string(v.children.size()) +
                        "; the limit is " + std::to_string(kMaxTargets) + ")");
    return;
  }
  for (std::size_t i = 0; i < v.children.size(); ++i) {
    NotifyTarget t;
    LoadTarget(r, v.children[i], i, t);
    for (const NotifyTarget& before : out) {
      if (before.name == t.name) {
        r.Report(v.children[i].pos, "notify: two targets are named '" + t.name + "'");
      }
    }
    out.push_back(std::move(t));
  }
}

std::optional<NotifyEvent> RunEndEvent(bool succeeded, bool failed, bool timed_out,
                                       bool previous_failed) {
  if (succeeded) return previous_failed ? NotifyEvent::kRecovered : NotifyEvent::kSuccess;
  if (failed) return timed_out ? NotifyEvent::kTimeout : NotifyEvent::kFailure;
  return std::nullopt;
}

bool TargetWants(const NotifyTarget& target, NotifyEvent event) {
  if (target.on & Bit(event)) return true;
  if (event == NotifyEvent::kTimeout) return (target.on & Bit(NotifyEvent::kFailure)) != 0;
  if (event == NotifyEvent::kRecovered) return (target.on & Bit(NotifyEvent::kSuccess)) != 0;
  return false;
}

bool PingWantsStart(const NotifyTarget& target) {
  return target.kind == NotifyKind::kPing &&
         (target.on & (Bit(NotifyEvent::kFailure) | Bit(NotifyEvent::kSuccess) |
                       Bit(NotifyEvent::kTimeout) | Bit(NotifyEvent::kRecovered))) != 0;
}

std::chrono::milliseconds NotifyRetryDelay(int attempt) {
  if (attempt < 2) return std::chrono::milliseconds(0);
  return std::chrono::milliseconds(2000LL << std::min(attempt - 2, 10));
}

}  // namespace picoflow
