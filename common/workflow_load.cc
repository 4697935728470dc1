#include "common/workflow_load.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <exception>
#include <optional>
#include <unordered_map>

#include "common/cron.h"
#include "common/duration.h"
#include "common/notify.h"
#include "common/workflow_fields.h"
#include "common/workflow_params.h"
#include "common/workflow_secrets.h"
#include "common/workflow_task_config.h"
#include "common/workflow_task_rules.h"
#include "common/workflow_triggers.h"
#include "common/yaml_tree.h"

namespace picoflow {
namespace {

using namespace std::chrono_literals;

constexpr std::string_view kTopKeys[] = {
    "name",           "description",     "schedule", "timezone", "overlap", "catchup",
    "catchup_window", "retention",       "params",   "config",   "tasks",   "handlers",
    "when",           "max_active_runs", "notify",   "secrets",  "triggers"};
constexpr std::string_view kRetentionKeys[] = {"max_runs", "max_age"};
constexpr std::string_view kConfigKeys[] = {"max_parallel", "retry_default", "timeout_default",
                                            "fail_fast",    "retry_delay",   "retry_max_delay",
                                            "kill_grace",   "retry_jitter"};
constexpr std::string_view kOverlap[] = {"skip", "queue", "allow"};
constexpr std::string_view kCatchup[] = {"none", "latest", "all"};

constexpr int kMaxParallel = 256;
constexpr int kMaxRetry = 100;
constexpr int kMaxInterruptions = 1000;
constexpr int kMaxActiveRuns = 1000;
constexpr std::int64_t kMaxRetainedRuns = 10'000'000;

// How many unknown dependencies get a "did you mean" (each costs a scan of
// every task name).
constexpr int kMaxSuggestions = 50;

// What the loader keeps of a task's source beyond Task::pos.
struct TaskSource {
  SourcePos name_pos;
  std::vector<SourcePos> dep_pos;  // parallel to Task::depends_on
  bool name_ok = false;            // present and well-formed
  std::string prefix;              // `task 'x': `, or `task #3: ` without a usable name
};

bool IsName(std::string_view name, bool allow_dot) {
  if (name.empty() || name.size() > static_cast<std::size_t>(kMaxNameLength)) return false;
  return std::all_of(name.begin(), name.end(), [allow_dot](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || (allow_dot && c == '.');
  });
}

std::string NameRule(bool allow_dot) {
  return std::string(" (1-") + std::to_string(kMaxNameLength) + " letters, digits, '_'" +
         (allow_dot ? ", '.'" : "") + " and '-')";
}

// Walks the document and fills a Workflow; every problem goes to the reader.
class Loader {
 public:
  Loader(FieldReader& reader, const PathBase& paths) : r_(reader), paths_(paths) {}

  void LoadRoot(const YamlNode& root);
  /// The graph if nothing was reported; else reports a cycle (if any) too.
  std::optional<Dag> BuildDag();
  Workflow& workflow() { return w_; }

 private:
  void LoadConfig(const YamlNode* config);
  void LoadRetention(const YamlNode* retention);
  void LoadMaxActiveRuns(const YamlNode* v);
  void CheckRetryDelays(const YamlNode& config);
  void LoadName(const YamlNode& root);
  void LoadSchedule(const YamlNode* v);
  void LoadTimezone(const YamlNode* v);
  template <class E>
  void LoadEnum(const YamlNode* v, std::string_view key, std::span<const std::string_view> names,
                E& out);
  void LoadTasks(const YamlNode& root);
  void LoadTask(const YamlNode& item, std::size_t index);
  std::string LoadTaskName(const YamlNode& item, std::size_t index, Task& task, TaskSource& source);
  std::optional<TaskType> LoadTaskType(const YamlNode& item, const std::string& prefix);
  void CheckTaskKeys(const YamlNode& item, std::optional<TaskType> type, const std::string& prefix);
  void LoadTaskSettings(const YamlNode& item, const std::string& prefix, Task& task,
                        TaskSource& source);
  void LoadTaskConfigMap(const YamlNode& item, std::optional<TaskType> type,
                         const std::string& prefix, Task& task);
  void CheckUniqueNames();
  void CheckDependencies();
  void LoadHandlers(const YamlNode* handlers);
  void LoadHandler(const YamlNode& key, const YamlNode& item, Handler handler);
  void ReportCycle();

  FieldReader& r_;
  const PathBase& paths_;
  Workflow w_;
  std::vector<TaskSource> sources_;
  const std::string top_;  // the empty prefix of top-level keys
  const std::string config_prefix_ = "config: ";
};

void Loader::LoadRoot(const YamlNode& root) {
  if (!root.IsMap()) {
    r_.Report(root.pos,
              "a workflow file must be a map with 'name' and 'tasks' at the top level, got " +
                  DescribeYamlNode(root));
    return;
  }
  r_.CheckKeys(root, kTopKeys, top_, "key");
  LoadConfig(root.Find("config"));  // first: task defaults come from it
  LoadName(root);
  if (const YamlNode* v = root.Find("description")) {
    w_.description = r_.Text(*v, {top_, "description"}).value_or("");
  }
  LoadSchedule(root.Find("schedule"));
  LoadTimezone(root.Find("timezone"));
  LoadTriggers(r_, root.Find("triggers"), paths_, w_.triggers);
  LoadEnum(root.Find("overlap"), "overlap", kOverlap, w_.overlap);
  LoadMaxActiveRuns(root.Find("max_active_runs"));
  LoadEnum(root.Find("catchup"), "catchup", kCatchup, w_.catchup);
  if (const YamlNode* v = root.Find("catchup_window")) {
    w_.catchup_window = r_.Duration(*v, {top_, "catchup_window"}, 0s).value_or(w_.catchup_window);
  }
  LoadRetention(root.Find("retention"));
  LoadParams(r_, root.Find("params"), !w_.schedule.empty() || !w_.triggers.empty(), w_.params);
  if (const YamlNode* v = root.Find("when")) w_.when = ReadCondition(r_, *v, {top_, "when"});
  if (const YamlNode* v = root.Find("notify")) LoadNotifyTargets(r_, *v, w_.notify.emplace());
  w_.secrets = LoadSecrets(r_, root.Find("secrets"), top_, paths_);  // before the tasks': merged
  LoadTasks(root);
  // A duplicate or invalid name does not stop the checks of the graph: the
  // rest of the file's problems are still reported in the same pass.
  CheckUniqueNames();
  CheckDependencies();
  // After the dependencies: no task may depend on a handler.
  LoadHandlers(root.Find("handlers"));
  CheckSecretUse(r_, root, w_);
}

std::optional<Dag> Loader::BuildDag() {
  if (r_.problems() > 0) {
    ReportCycle();  // with the other problems, so that one pass shows them all
    return std::nullopt;
  }
  // Dag::Build finds cycles itself: search again only to place the diagnostic.
  Result<Dag> dag = Dag::Build(w_);
  if (dag.ok()) return std::move(*dag);
  ReportCycle();
  if (r_.problems() == 0) r_.Report({}, dag.error().message);  // not expected
  return std::nullopt;
}

void Loader::LoadConfig(const YamlNode* config) {
  WorkflowConfig& c = w_.config;
  if (!config || config->IsNull()) return;
  if (!config->IsMap()) {
    r_.Report(config->pos, "'config' must be a map, got " + DescribeYamlNode(*config));
    return;
  }
  const std::string& p = config_prefix_;
  r_.CheckKeys(*config, kConfigKeys, p, "key");
  const auto duration = [&](std::string_view key, std::chrono::seconds min, Seconds& out) {
    if (const YamlNode* v = config->Find(key)) out = r_.Duration(*v, {p, key}, min).value_or(out);
  };
  if (const YamlNode* v = config->Find("max_parallel")) {
    c.max_parallel =
        static_cast<int>(r_.Int(*v, {p, "max_parallel"}, 1, kMaxParallel).value_or(c.max_parallel));
  }
  if (const YamlNode* v = config->Find("retry_default")) {
    c.retry_default =
        static_cast<int>(r_.Int(*v, {p, "retry_default"}, 0, kMaxRetry).value_or(c.retry_default));
  }
  duration("timeout_default", 1s, c.timeout_default);
  if (const YamlNode* v = config->Find("fail_fast"))
    c.fail_fast = r_.Bool(*v, {p, "fail_fast"}).value_or(false);
  duration("retry_delay", 0s, c.retry_delay);
  duration("retry_max_delay", 0s, c.retry_max_delay);
  duration("kill_grace", 0s, c.kill_grace);
  if (const YamlNode* v = config->Find("retry_jitter"))
    c.retry_jitter = ReadJitter(r_, *v, {p, "retry_jitter"}).value_or(c.retry_jitter);
  CheckRetryDelays(*config);
}

void Loader::LoadRetention(const YamlNode* retention) {
  if (!retention || retention->IsNull()) return;
  if (!retention->IsMap()) {
    r_.Report(retention->pos, "'retention' must be a map, got " + DescribeYamlNode(*retention));
    return;
  }
  const std::string p = "retention: ";
  r_.CheckKeys(*retention, kRetentionKeys, p, "key");
  if (const YamlNode* v = retention->Find("max_runs")) {
    w_.retention.max_runs = r_.Int(*v, {p, "max_runs"}, 0, kMaxRetainedRuns);
  }
  if (const YamlNode* v = retention->Find("max_age")) {
    w_.retention.max_age = r_.Duration(*v, {p, "max_age"}, 0s);
  }
}

// After `overlap`: `allow` starts every fire however many runs are going,
// which no limit can go with (docs/scheduling.md, "Manual and scheduled runs").
void Loader::LoadMaxActiveRuns(const YamlNode* v) {
  if (!v) return;
  const auto n = r_.Int(*v, {top_, "max_active_runs"}, 1, kMaxActiveRuns);
  if (!n) return;
  if (w_.overlap == OverlapPolicy::kAllow) {
    r_.Report(v->pos,
              "'max_active_runs' cannot go with 'overlap: allow', which starts every fire "
              "however many runs are going: use overlap: skip (runs past the limit are refused "
              "or skipped) or overlap: queue (they wait)");
    return;
  }
  w_.max_active_runs = static_cast<int>(*n);
}

// The backoff cap may not be below the first delay. If only retry_delay was
// raised past the default cap, the cap follows it instead.
void Loader::CheckRetryDelays(const YamlNode& config) {
  WorkflowConfig& c = w_.config;
  if (c.retry_max_delay >= c.retry_delay) return;
  const YamlNode* max_delay = config.Find("retry_max_delay");
  if (max_delay && config.Find("retry_delay")) {
    r_.Report(max_delay->pos, config_prefix_ + "'retry_max_delay' (" +
                                  FormatDuration(c.retry_max_delay) +
                                  ") must not be shorter than 'retry_delay' (" +
                                  FormatDuration(c.retry_delay) + ")");
  }
  c.retry_max_delay = c.retry_delay;
}

void Loader::LoadName(const YamlNode& root) {
  const YamlNode* v = root.Find("name");
  if (!r_.Require(v, {top_, "name"}, root.pos)) return;
  std::optional<std::string> name = r_.Text(*v, {top_, "name"});
  if (!name) return;
  if (!IsName(*name, true)) {
    r_.Report(v->pos, "workflow name '" + *name + "' is not valid" + NameRule(true));
  }
  w_.name = std::move(*name);
}

void Loader::LoadSchedule(const YamlNode* v) {
  std::vector<SourcePos> positions;
  if (!v || !r_.TextList(*v, {top_, "schedule"}, true, w_.schedule, &positions)) return;
  for (std::size_t i = 0; i < w_.schedule.size(); ++i) {
    Result<CronExpr> cron = CronExpr::Parse(w_.schedule[i]);
    if (!cron.ok()) {
      r_.Report(positions[i], "schedule '" + w_.schedule[i] + "': " + cron.error().message);
    } else if (!cron->warning().empty()) {
      r_.Warn(positions[i], "schedule '" + w_.schedule[i] + "': " + cron->warning());
    }
  }
}

void Loader::LoadTimezone(const YamlNode* v) {
  if (!v) return;
  std::optional<std::string> zone = r_.Text(*v, {top_, "timezone"});
  if (!zone) return;
  if (zone->empty()) {
    r_.Report(v->pos,
              "'timezone' must not be empty (leave it out to use the daemon's local time zone)");
    return;
  }
  if (Result<const date::time_zone*> found = FindZone(*zone); !found.ok()) {
    r_.Report(v->pos, "'timezone': " + found.error().message);
    return;
  }
  w_.timezone = std::move(*zone);
}

template <class E>
void Loader::LoadEnum(const YamlNode* v, std::string_view key,
                      std::span<const std::string_view> names, E& out) {
  if (!v) return;
  std::optional<std::string> text = r_.Text(*v, {top_, key});
  if (!text) return;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (names[i] == *text) {
      out = static_cast<E>(i);  // the enums list their values in this order
      return;
    }
  }
  r_.Report(v->pos, "'" + std::string(key) + "' must be " + std::string(names[0]) + ", " +
                        std::string(names[1]) + " or " + std::string(names[2]) + ", got '" + *text +
                        "'" + DidYouMean(ClosestMatch(*text, names)));
}

void Loader::LoadTasks(const YamlNode& root) {
  const YamlNode* tasks = root.Find("tasks");
  if (!r_.Require(tasks, {top_, "tasks"}, root.pos)) return;
  if (!tasks->IsSequence()) {
    r_.Report(tasks->pos, "'tasks' must be a list of tasks, got " + DescribeYamlNode(*tasks));
    return;
  }
  if (tasks->children.empty()) {
    r_.Report(tasks->pos, "'tasks' must not be empty");
    return;
  }
  if (tasks->children.size() > kMaxTasks) {
    r_.Report(tasks->pos, "too many tasks (" + std::to_string(tasks->children.size()) +
                              "; the limit is " + std::to_string(kMaxTasks) + ")");
    return;
  }
  w_.tasks.reserve(tasks->children.size());
  sources_.reserve(tasks->children.size());
  for (std::size_t i = 0; i < tasks->children.size(); ++i) LoadTask(tasks->children[i], i);
}

void Loader::LoadTask(const YamlNode& item, std::size_t index) {
  if (!item.IsMap()) {
    r_.Report(item.pos, "task #" + std::to_string(index + 1) +
                            ": a task must be a map with 'name', 'type' and 'config', got " +
                            DescribeYamlNode(item));
    return;
  }
  Task task;
  TaskSource source;
  task.pos = item.pos;
  const std::string prefix = LoadTaskName(item, index, task, source);
  source.prefix = prefix;
  const std::optional<TaskType> type = LoadTaskType(item, prefix);
  if (type) task.type = *type;
  CheckTaskKeys(item, type, prefix);
  LoadTaskSettings(item, prefix, task, source);
  LoadTaskRules(r_, item, prefix, type, w_.config, task);
  LoadTaskConfigMap(item, type, prefix, task);
  task.secrets = MergeSecrets(w_.secrets, LoadSecrets(r_, item.Find("secrets"), prefix, paths_));
  w_.tasks.push_back(std::move(task));
  sources_.push_back(std::move(source));
}

// Reads the name and returns the prefix of the task's messages: `task 'x': `,
// or `task #3: ` while it has no usable name.
std::string Loader::LoadTaskName(const YamlNode& item, std::size_t index, Task& task,
                                 TaskSource& source) {
  const YamlNode* name = item.Find("name");
  const bool has_name = name && name->IsScalar() && !name->text.empty();
  std::string prefix =
      has_name ? "task '" + name->text + "': " : "task #" + std::to_string(index + 1) + ": ";
  if (!r_.Require(name, {prefix, "name"}, item.pos)) return prefix;
  task.name = r_.Text(*name, {prefix, "name"}).value_or("");
  source.name_pos = name->pos;
  source.name_ok = IsName(task.name, false);
  if (name->IsScalar() && !source.name_ok) {
    r_.Report(name->pos, prefix + "task name '" + task.name + "' is not valid" + NameRule(false));
  }
  return prefix;
}

// depends_on, retry, timeout, continue_on_failure, max_interruptions;
// defaults from `config:`.
void Loader::LoadTaskSettings(const YamlNode& item, const std::string& prefix, Task& task,
                              TaskSource& source) {
  if (const YamlNode* v = item.Find("depends_on")) {
    r_.TextList(*v, {prefix, "depends_on"}, true, task.depends_on, &source.dep_pos);
  }
  task.retry = w_.config.retry_default;
  if (const YamlNode* v = item.Find("retry"); v && !v->IsNull()) {
    task.retry = static_cast<int>(r_.Int(*v, {prefix, "retry"}, 0, kMaxRetry).value_or(task.retry));
    task.retry_set = true;
  }
  task.timeout = w_.config.timeout_default;
  if (const YamlNode* v = item.Find("timeout"); v && !v->IsNull()) {
    task.timeout = r_.Duration(*v, {prefix, "timeout"}, 1s).value_or(task.timeout);
    task.timeout_set = true;
  }
  if (const YamlNode* v = item.Find("continue_on_failure")) {
    task.continue_on_failure = r_.Bool(*v, {prefix, "continue_on_failure"}).value_or(false);
  }
  if (const YamlNode* v = item.Find("max_interruptions"); v && !v->IsNull()) {
    task.max_interruptions =
        static_cast<int>(r_.Int(*v, {prefix, "max_interruptions"}, 1, kMaxInterruptions)
                             .value_or(task.max_interruptions));
  }
}

std::optional<TaskType> Loader::LoadTaskType(const YamlNode& item, const std::string& prefix) {
  const YamlNode* v = item.Find("type");
  if (!r_.Require(v, {prefix, "type"}, item.pos)) return std::nullopt;
  std::optional<std::string> text = r_.Text(*v, {prefix, "type"});
  if (!text) return std::nullopt;
  if (auto type = ParseTaskType(*text)) return type;
  r_.Report(v->pos, prefix + "'type' must be " + JoinOr(kTaskTypeNames) + ", got '" + *text + "'" +
                        DidYouMean(ClosestMatch(*text, kTaskTypeNames)));
  return std::nullopt;
}

// Unknown task keys; keys of the task's config written one level too high
// are pointed to `config:`.
void Loader::CheckTaskKeys(const YamlNode& item, std::optional<TaskType> type,
                           const std::string& prefix) {
  r_.CheckKeys(item, kTaskKeys, prefix, "key", [type](std::string_view key) -> std::string {
    bool config_key = false;
    for (std::size_t i = 0; i < kTaskTypeCount; ++i) {
      if (!type || *type == static_cast<TaskType>(i)) {
        config_key = config_key || IsTaskConfigKey(static_cast<TaskType>(i), key);
      }
    }
    if (!config_key) return "";
    return "'" + std::string(key) + "' is a config key; put it under the task's 'config:'";
  });
}

void Loader::LoadTaskConfigMap(const YamlNode& item, std::optional<TaskType> type,
                               const std::string& prefix, Task& task) {
  const YamlNode* config = item.Find("config");
  if (!r_.Require(config, {prefix, "config"}, item.pos)) return;
  if (!config->IsMap()) {
    r_.Report(config->pos, prefix + "'config' must be a map, got " + DescribeYamlNode(*config));
    return;
  }
  if (!type) return;  // its schema depends on the type, which is already reported
  SourcePos config_key = item.pos;
  for (std::size_t i = 0; i < item.entry_count(); ++i) {
    if (item.key(i).text == "config") config_key = item.key(i).pos;
  }
  task.config = LoadTaskConfig(r_, *type, *config, config_key, prefix, paths_);
}

void Loader::CheckUniqueNames() {
  std::unordered_map<std::string_view, std::size_t> first;
  first.reserve(w_.tasks.size());
  for (std::size_t i = 0; i < w_.tasks.size(); ++i) {
    if (!sources_[i].name_ok) continue;  // reported where it was read
    auto [it, inserted] = first.emplace(w_.tasks[i].name, i);
    if (inserted) continue;
    r_.Report(sources_[i].name_pos, "duplicate task name '" + w_.tasks[i].name +
                                        "' (first defined at line " +
                                        std::to_string(sources_[it->second].name_pos.line) + ")");
  }
}

// Every name written counts as a task a dependency may name, an invalid or
// duplicate one too: its own problem is reported once, at the name.
void Loader::CheckDependencies() {
  std::unordered_map<std::string_view, std::size_t> index;
  std::vector<std::string_view> names;
  index.reserve(w_.tasks.size());
  names.reserve(w_.tasks.size());
  for (std::size_t i = 0; i < w_.tasks.size(); ++i) {
    if (w_.tasks[i].name.empty()) continue;
    if (index.emplace(w_.tasks[i].name, i).second) names.push_back(w_.tasks[i].name);
  }
  int suggestions = 0;
  for (std::size_t i = 0; i < w_.tasks.size(); ++i) {
    Task& task = w_.tasks[i];
    const std::vector<SourcePos>& pos = sources_[i].dep_pos;
    const std::string& prefix = sources_[i].prefix;
    for (std::size_t d = 0; d < task.depends_on.size(); ++d) {
      const std::string& dep = task.depends_on[d];
      if (dep == task.name) {
        r_.Report(pos[d], prefix + "depends on itself");
      } else if (!index.count(dep)) {
        const bool suggest = suggestions++ < kMaxSuggestions;
        r_.Report(pos[d], prefix + "depends on unknown task '" + dep + "'" +
                              (suggest ? DidYouMean(ClosestMatch(dep, names)) : ""));
      }
    }
    // A self-dependency is reported above, not again as a one-task cycle.
    std::erase(task.depends_on, task.name);
  }
}

// `handlers:` — a map of Handler keys to tasks without `name`,
// `depends_on` and `trigger` (docs/workflow-format.md, "Handlers").
void Loader::LoadHandlers(const YamlNode* handlers) {
  if (!handlers || handlers->IsNull()) return;
  if (!handlers->IsMap()) {
    r_.Report(handlers->pos,
              "'handlers' must be a map of on_success, on_failure, on_cancel and on_exit to "
              "tasks, got " +
                  DescribeYamlNode(*handlers));
    return;
  }
  const std::span<const std::string_view> keys(std::begin(kHandlerNames) + 1,
                                               std::end(kHandlerNames));
  r_.CheckKeys(*handlers, keys, "handlers: ", "handler");
  // In the order of Handler, whatever the order written.
  for (std::size_t h = 1; h < std::size(kHandlerNames); ++h) {
    for (std::size_t i = 0; i < handlers->entry_count(); ++i) {
      if (handlers->key(i).text != kHandlerNames[h]) continue;
      LoadHandler(handlers->key(i), handlers->value(i), static_cast<Handler>(h));
    }
  }
}

void Loader::LoadHandler(const YamlNode& key, const YamlNode& item, Handler handler) {
  const std::string prefix = "handler '" + key.text + "': ";
  if (!item.IsMap()) {
    r_.Report(item.pos, prefix + "a handler must be a task map with 'type' and 'config', got " +
                            DescribeYamlNode(item));
    return;
  }
  if (const int same = w_.FindTask(key.text); same >= 0 && !w_.IsHandler(same)) {
    r_.Report(key.pos, prefix + "a task has the same name (line " +
                           std::to_string(sources_[same].name_pos.line) +
                           "); handlers and tasks share names (rename the task)");
  }
  constexpr std::string_view kNotForHandlers[] = {"name", "depends_on", "trigger"};
  for (std::string_view k : kNotForHandlers) {
    if (const YamlNode* v = item.Find(k)) {
      r_.Report(v->pos, prefix + "'" + std::string(k) + "' is not a handler key: " +
                            (k == "name" ? "a handler's name is its key ('" + key.text + "')"
                                         : std::string("a handler runs once the run's tasks have "
                                                       "all ended")));
    }
  }
  Task task;
  TaskSource source;
  task.name = key.text;
  task.handler = handler;
  task.pos = key.pos;
  source.name_pos = key.pos;
  source.name_ok = true;
  source.prefix = prefix;
  const std::optional<TaskType> type = LoadTaskType(item, prefix);
  if (type) task.type = *type;
  CheckTaskKeys(item, type, prefix);
  LoadTaskSettings(item, prefix, task, source);
  task.depends_on.clear();  // reported above
  LoadTaskRules(r_, item, prefix, type, w_.config, task);
  task.trigger = TriggerRule::kAllSuccess;
  LoadTaskConfigMap(item, type, prefix, task);
  task.secrets = MergeSecrets(w_.secrets, LoadSecrets(r_, item.Find("secrets"), prefix, paths_));
  w_.tasks.push_back(std::move(task));
  sources_.push_back(std::move(source));
}

void Loader::ReportCycle() {
  const std::vector<int> cycle = Dag::FindCycle(w_);
  if (cycle.empty()) return;
  std::string text = "cycle: ";
  for (std::size_t i = 0; i < cycle.size(); ++i) {
    if (i) text += " -> ";
    text += w_.tasks[cycle[i]].name;
  }
  r_.Report(w_.tasks[cycle[0]].pos, text);
}

LoadedWorkflow Failed(Diagnostics diagnostics, Diagnostics warnings = {}) {
  LoadedWorkflow out;
  out.diagnostics = std::move(diagnostics);
  out.warnings = std::move(warnings);
  return out;
}

// Reads all of `fd` (a regular file of `size` bytes when it was opened), at
// most kMaxWorkflowFileBytes + 1 bytes so that a file that grew is caught.
Result<std::string> ReadAll(int fd, std::size_t size) {
  std::string text(std::min(size, kMaxWorkflowFileBytes) + 1, '\0');
  std::size_t got = 0;
  for (;;) {
    const ssize_t n = ::read(fd, text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Err(ErrorCode::kIo, std::string("cannot read: ") + std::strerror(errno));
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
    if (got == text.size()) {
      if (text.size() > kMaxWorkflowFileBytes) break;
      text.resize(std::min(2 * text.size(), kMaxWorkflowFileBytes + 1));
    }
  }
  text.resize(got);
  return text;
}

}  // namespace

// Refuses directories, special files and files over the size limit.
Result<std::string> ReadWorkflowFile(const std::string& path) {
  // O_NONBLOCK: opening a FIFO must not hang; it is refused below anyway.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    return Err(errno == ENOENT ? ErrorCode::kNotFound : ErrorCode::kIo,
               std::string("cannot open: ") + std::strerror(errno));
  }
  struct stat st {};
  Result<std::string> out = Err(ErrorCode::kIo, "");
  if (::fstat(fd, &st) != 0) {
    out = Err(ErrorCode::kIo, std::string("cannot stat: ") + std::strerror(errno));
  } else if (S_ISDIR(st.st_mode)) {
    out = Err(ErrorCode::kInvalid, "is a directory, not a workflow file");
  } else if (!S_ISREG(st.st_mode)) {
    out = Err(ErrorCode::kInvalid, "is not a regular file");
  } else if (static_cast<std::uint64_t>(st.st_size) > kMaxWorkflowFileBytes) {
    out = Err(ErrorCode::kInvalid, "file is too large (" + std::to_string(st.st_size) +
                                       " bytes; the limit is " +
                                       std::to_string(kMaxWorkflowFileBytes) + ")");
  } else {
    out = ReadAll(fd, static_cast<std::size_t>(st.st_size));
  }
  ::close(fd);
  return out;
}

namespace {

LoadedWorkflow LoadChecked(std::string_view text, const std::string& label, const PathBase& paths) {
  YamlLimits limits;
  limits.max_bytes = kMaxWorkflowFileBytes;
  YamlParse parsed = ParseYaml(text, label, limits);
  if (!parsed.root) return Failed(std::move(parsed.diagnostics));

  FieldReader reader(label);
  for (Diagnostic& d : parsed.diagnostics) reader.Report(d.pos, std::move(d.message));
  Loader loader(reader, paths);
  loader.LoadRoot(*parsed.root);
  std::optional<Dag> dag = loader.BuildDag();
  if (!dag || reader.problems() > 0) return Failed(reader.Take(), reader.TakeWarnings());
  LoadedWorkflow out;
  out.warnings = reader.TakeWarnings();
  out.workflow = std::make_shared<const Workflow>(std::move(loader.workflow()));
  out.dag = std::make_shared<const Dag>(std::move(*dag));
  return out;
}

}  // namespace

LoadedWorkflow LoadWorkflowText(std::string_view text, const std::string& label,
                                const PathBase& paths) {
  // The module edge: nothing below is expected to throw, but an allocation
  // failure must still become a diagnostic, not an exception in the daemon.
  try {
    return LoadChecked(text, label, paths);
  } catch (const std::exception& e) {
    return Failed(
        {Diagnostic{label, {}, std::string("internal error while loading: ") + e.what()}});
  }
}

LoadedWorkflow LoadWorkflowFile(const std::string& path) {
  Result<std::string> text = ReadWorkflowFile(path);
  if (!text.ok()) return Failed({Diagnostic{path, {}, text.error().message}});
  return LoadWorkflowText(*text, path, PathBase{FileDirectory(path), ""});
}

}  // namespace picoflow
