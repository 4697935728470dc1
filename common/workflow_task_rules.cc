#include "common/workflow_task_rules.h"

#include <charconv>

#include "common/workflow_fields.h"
#include "common/yaml_tree.h"

namespace picoflow {
namespace {

// The exit codes a process can have; an http attempt's exit code is its HTTP
// status (docs/workflow-format.md, "type: http").
constexpr int kMaxExitCode = 255;
constexpr int kMinHttpStatus = 100;
constexpr int kMaxHttpStatus = 599;

// `0.25`, `1`, `.5`: digits with at most one '.', and at least one digit.
bool IsPlainNumber(std::string_view text) {
  int digits = 0;
  int dots = 0;
  for (char c : text) {
    if (c >= '0' && c <= '9') {
      ++digits;
    } else if (c == '.') {
      ++dots;
    } else {
      return false;
    }
  }
  return digits > 0 && dots <= 1;
}

void LoadTrigger(FieldReader& r, const YamlNode& item, const std::string& prefix, Task& task) {
  const YamlNode* v = item.Find("trigger");
  if (!v || task.handler != Handler::kNone) return;  // a handler's is reported by the loader
  const std::optional<std::string> text = r.Text(*v, {prefix, "trigger"});
  if (!text) return;
  for (std::size_t i = 0; i < std::size(kTriggerRuleNames); ++i) {
    if (kTriggerRuleNames[i] == *text) {
      task.trigger = static_cast<TriggerRule>(i);
      // A task without dependencies starts at once: its rule has nothing to
      // look at (docs/workflow-format.md, "Trigger rules").
      if (task.depends_on.empty()) {
        r.Warn(v->pos, prefix + "'trigger' has no effect without 'depends_on': the task starts " +
                           "at once");
      }
      return;
    }
  }
  r.Report(v->pos, prefix + "'trigger' must be " + JoinOr(kTriggerRuleNames) + ", got '" + *text +
                       "'" + DidYouMean(ClosestMatch(*text, kTriggerRuleNames)));
}

void LoadExitCodes(FieldReader& r, const YamlNode& item, const std::string& prefix,
                   std::optional<TaskType> type, Task& task) {
  const YamlNode* v = item.Find("retry_on_exit_codes");
  if (!v || v->IsNull()) return;
  if (!v->IsSequence() || v->children.empty()) {
    const std::string hint = v->IsScalar() ? " (write it as a list: [" + v->text + "])" : "";
    r.Report(v->pos, prefix + "'retry_on_exit_codes' must be a non-empty list of exit codes, got " +
                         DescribeYamlNode(*v) + hint);
    return;
  }
  const bool http = type == TaskType::kHttp;
  const std::string item_prefix = prefix + "each item of ";
  for (const YamlNode& code : v->children) {
    const std::optional<std::int64_t> value =
        r.Int(code, {item_prefix, "retry_on_exit_codes"}, http ? kMinHttpStatus : 0,
              http ? kMaxHttpStatus : kMaxExitCode);
    if (value) task.retry_on_exit_codes.push_back(static_cast<int>(*value));
    if (code.IsNull()) {
      r.Report(code.pos, item_prefix + "'retry_on_exit_codes' must be an exit code, got no value");
    }
  }
}

}  // namespace

std::optional<double> ReadJitter(FieldReader& r, const YamlNode& v, Where w) {
  if (v.IsNull()) return std::nullopt;
  double value = -1;
  if (v.IsScalar() && IsPlainNumber(v.text)) {
    const char* end = v.text.data() + v.text.size();
    if (std::from_chars(v.text.data(), end, value).ptr != end) value = -1;
  }
  if (value < 0 || value > 1 || !v.plain) {
    const char* hint = v.IsScalar() && v.text.ends_with('%') ? " (a fraction: 0.2 for 20%)"
                       : value >= 0 && !v.plain              ? " (write it without quotes)"
                                                             : "";
    r.Report(v.pos, w.prefix + "'" + std::string(w.key) + "' must be a number from 0 to 1, got " +
                        DescribeYamlNode(v) + hint);
    return std::nullopt;
  }
  return value;
}

std::optional<ShellConfig> ReadCondition(FieldReader& r, const YamlNode& v, Where w) {
  const std::string key(w.key);
  if (v.IsScalar() && !v.IsNull()) {
    std::optional<std::string> command = r.Text(v, w);
    if (!command) return std::nullopt;
    if (command->empty()) {
      r.Report(v.pos, w.prefix + "'" + key + "' must not be empty");
      return std::nullopt;
    }
    ShellConfig out;
    out.command = std::move(*command);
    return out;
  }
  if (!v.IsMap()) {
    r.Report(v.pos, w.prefix + "'" + key + "' must be a command, or a map of 'command' and " +
                        "'args', got " + DescribeYamlNode(v));
    return std::nullopt;
  }
  const std::string prefix = w.prefix + key + ": ";
  constexpr std::string_view kKeys[] = {"command", "args"};
  r.CheckKeys(v, kKeys, prefix, "key");
  const YamlNode* command = v.Find("command");
  if (!r.Require(command, {prefix, "command"}, v.pos)) return std::nullopt;
  ShellConfig out;
  out.command = r.Text(*command, {prefix, "command"}).value_or("");
  if (const YamlNode* args = v.Find("args")) {
    std::vector<std::string> list;
    if (r.TextList(*args, {prefix, "args"}, false, list)) out.args = std::move(list);
  }
  if (out.command.empty()) return std::nullopt;
  return out;
}

void LoadTaskRules(FieldReader& r, const YamlNode& item, const std::string& prefix,
                   std::optional<TaskType> type, const WorkflowConfig& config, Task& task) {
  LoadTrigger(r, item, prefix, task);
  if (const YamlNode* v = item.Find("when")) task.when = ReadCondition(r, *v, {prefix, "when"});
  LoadExitCodes(r, item, prefix, type, task);
  task.retry_jitter = config.retry_jitter;
  if (const YamlNode* v = item.Find("retry_jitter")) {
    task.retry_jitter = ReadJitter(r, *v, {prefix, "retry_jitter"}).value_or(task.retry_jitter);
  }
}

}  // namespace picoflow
