#pragma once
// Workflow: the parsed, validated, immutable description of one workflow file.
// Every optional key is resolved to its effective value at load time, so the
// engine never looks at defaults again.

#include <chrono>
#include <cstdint>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "common/diagnostic.h"
#include "common/notify.h"
#include "common/workflow_triggers.h"

namespace picoflow {

using Seconds = std::chrono::seconds;

/// Limits (docs/workflow-format.md, "YAML subset and limits").
inline constexpr std::size_t kMaxWorkflowFileBytes = 1024 * 1024;
inline constexpr std::size_t kMaxTasks = 10000;
inline constexpr int kMaxNameLength = 64;

enum class TaskType { kShell, kSsh, kHttp };

/// The one list of task types: their names as written in YAML, indexed by
/// TaskType. The loader, the executors' table (EngineContext) and the
/// module loader all read it.
inline constexpr std::string_view kTaskTypeNames[] = {"shell", "ssh", "http"};
inline constexpr std::size_t kTaskTypeCount = std::size(kTaskTypeNames);

/// Name as written in YAML: "shell", "ssh", "http".
const char* TaskTypeName(TaskType type);
/// The inverse of TaskTypeName; nullopt for any other text.
std::optional<TaskType> ParseTaskType(std::string_view name);

using EnvList = std::vector<std::pair<std::string, std::string>>;

/// Where a secret's value is read from when an attempt starts
/// (docs/workflow-format.md, "Secrets").
enum class SecretSource { kFile, kEnv, kCredential };
/// The keys of a secret's source, indexed by SecretSource.
inline constexpr std::string_view kSecretSourceNames[] = {"file", "env", "credential"};

/// One entry of `secrets:`: a name and where its value is. The value itself
/// is never part of a workflow: it is read for each attempt and kept by
/// nothing that outlives it.
struct Secret {
  std::string name;  ///< an environment variable name, not PICOFLOW_*
  SecretSource source = SecretSource::kFile;
  /// An absolute path (or relative to the daemon's working directory when
  /// the workflow's file is not known), a variable of the daemon's
  /// environment, or a systemd credential's name.
  std::string from;
  SourcePos pos;  ///< where its key is
};

/// `type: shell`. Without args, `command` runs through `/bin/sh -c`; with args,
/// `command` is the program and args its argv[1..]. The loader resolves a
/// relative workdir and program path (task_paths.h): both are absolute once
/// the workflow's file was known.
struct ShellConfig {
  std::string command;
  std::optional<std::vector<std::string>> args;
  std::string workdir;  ///< empty: the daemon's working directory
  EnvList env;          ///< added on top of the daemon's environment
};

/// `type: ssh`.
struct SshConfig {
  std::string host;
  std::string user;
  std::string command;
  int port = 22;
  std::string key_path;         ///< empty: the user's usual keys
  std::string passphrase_file;  ///< never inline; file or env var
  std::string passphrase_env;
  bool verify_host_key = true;
  std::string known_hosts;  ///< empty: ~/.ssh/known_hosts
  Seconds connect_timeout{10};
  EnvList env;
};

/// An inclusive range of accepted HTTP status codes.
struct StatusRange {
  int lo = 200;
  int hi = 299;
};

/// `type: http`.
struct HttpConfig {
  std::string url;
  std::string method = "GET";
  EnvList headers;
  std::optional<std::string> body;  ///< serialized body, if any
  bool body_is_json = false;        ///< body came from a YAML map/list: send as JSON
  std::optional<Seconds> timeout;   ///< request timeout; the task timeout still applies
  std::vector<StatusRange> expect_status{StatusRange{}};
  bool follow_redirects = false;
  std::string ca_file;
  bool allow_private_ips = true;
  /// The response body is an output (`body`) besides `status`
  /// (docs/workflow-format.md, "Outputs").
  bool output_body = false;
};

using TaskConfig = std::variant<ShellConfig, SshConfig, HttpConfig>;

/// When a task with dependencies starts, from how they ended
/// (docs/workflow-format.md, "Trigger rules"). Listed in the order of
/// kTriggerRuleNames.
enum class TriggerRule {
  kAllSuccess,
  kAllDone,
  kAllFailed,
  kOneFailed,
  kOneSuccess,
  kNoneFailed,
  kAlways
};
inline constexpr std::string_view kTriggerRuleNames[] = {
    "all_success", "all_done", "all_failed", "one_failed", "one_success", "none_failed", "always"};
/// Name as written in YAML: "all_success", "one_failed", ...
const char* TriggerRuleName(TriggerRule rule);

/// Which of the workflow's `handlers:` a task is (docs/workflow-format.md,
/// "Handlers"), or none. Listed in the order of kHandlerNames.
enum class Handler { kNone, kOnSuccess, kOnFailure, kOnCancel, kOnExit };
/// The keys of `handlers:`, indexed by Handler (kNone has none).
inline constexpr std::string_view kHandlerNames[] = {"", "on_success", "on_failure", "on_cancel",
                                                     "on_exit"};

/// One task with every value resolved (defaults applied).
struct Task {
  std::string name;
  /// A handler runs after the run's DAG ended, and its end does not change
  /// the run's status; its name is its key (`on_failure`).
  Handler handler = Handler::kNone;
  TaskType type = TaskType::kShell;
  std::vector<std::string> depends_on;
  int retry = 0;             ///< extra attempts after the first
  Seconds timeout{300};      ///< per attempt
  bool retry_set = false;    ///< `retry:` is on the task (else config.retry_default applies)
  bool timeout_set = false;  ///< `timeout:` is on the task (else config.timeout_default applies)
  bool continue_on_failure = false;
  /// Times the daemon may stop while an attempt of the task runs (a crash,
  /// a restart) before the task fails instead of starting over
  /// (docs/workflow-format.md, "Tasks").
  int max_interruptions = 3;
  /// `trigger:`, `retry_on_exit_codes:` and `retry_jitter:` (the last from
  /// config.retry_jitter when the task has none); docs/workflow-format.md.
  TriggerRule trigger = TriggerRule::kAllSuccess;
  /// `when:` — a command run before the task's first attempt: exit 0 runs
  /// the task, anything else skips it (docs/workflow-format.md, "Conditions").
  /// Only `command` and `args` are set.
  std::optional<ShellConfig> when;
  std::vector<int> retry_on_exit_codes;  ///< empty: every failure is retried
  double retry_jitter = 0;               ///< 0..1: delays vary by up to this fraction
  TaskConfig config;
  /// The secrets its attempts get: the workflow's `secrets:` with the
  /// task's own on top (a task's entry replaces the workflow's of the same
  /// name), in the order written, the workflow's first.
  std::vector<Secret> secrets;
  SourcePos pos;  ///< where the task's `- name:` item starts
};

enum class OverlapPolicy { kSkip, kQueue, kAllow };
enum class CatchupPolicy { kNone, kLatest, kAll };

/// The workflow-wide `config:` block.
struct WorkflowConfig {
  int max_parallel = 4;   ///< 1..256
  int retry_default = 3;  ///< 0..100
  Seconds timeout_default{300};
  bool fail_fast = false;       ///< on the first failure, cancel the rest
  Seconds retry_delay{1};       ///< delay before the 2nd attempt; doubles each time
  Seconds retry_max_delay{60};  ///< cap of that delay
  double retry_jitter = 0;      ///< for tasks without `retry_jitter:`
  Seconds kill_grace{5};        ///< SIGTERM -> SIGKILL on timeout or cancel
};

/// The top-level `retention:` block: how much run history the store keeps.
/// An unset field takes the daemon's default; 0 means no limit.
struct WorkflowRetention {
  std::optional<std::int64_t> max_runs;  ///< keep at most this many runs
  std::optional<Seconds> max_age;        ///< delete runs created longer ago
};

/// One entry of the top-level `params:` (docs/workflow-format.md,
/// "Parameters"): an input a run is started with.
struct WorkflowParam {
  std::string name;
  std::string default_value;  ///< "" when none was written
  std::string description;
  std::vector<std::string> choices;  ///< empty: any value
  bool required = false;             ///< a run must give it (it has no default)
  SourcePos pos;                     ///< where its key is
};

/// A run's param values, name -> value, in the workflow's declaration order.
using ParamValues = std::vector<std::pair<std::string, std::string>>;

/// A whole workflow file.
struct Workflow {
  std::string name;
  std::string description;
  std::vector<std::string> schedule;  ///< cron expressions; empty: not scheduled
  std::string timezone;               ///< IANA name; empty: the daemon's local zone
  /// `triggers:` — the events that start runs besides the schedule
  /// (docs/triggers.md).
  std::vector<WorkflowTrigger> triggers;
  OverlapPolicy overlap = OverlapPolicy::kSkip;
  /// At most this many runs of the workflow at once, started by hand or by
  /// the schedule; unset: no limit for runs started by hand, one for fires
  /// under `overlap` (docs/scheduling.md, "Manual and scheduled runs").
  std::optional<int> max_active_runs;
  CatchupPolicy catchup = CatchupPolicy::kLatest;
  Seconds catchup_window{24 * 3600};
  WorkflowRetention retention;
  std::vector<WorkflowParam> params;
  /// Workflow `when:` — run before a run's first task; any exit but 0
  /// skips the whole run (docs/workflow-format.md, "Conditions").
  std::optional<ShellConfig> when;
  /// `notify:` — who is told of its runs (docs/notifications.md); unset:
  /// the daemon's default targets, `[]`: none.
  std::optional<NotifyTargets> notify;
  /// The top-level `secrets:`, which every task gets (Task::secrets).
  std::vector<Secret> secrets;
  WorkflowConfig config;
  /// The tasks of `tasks:` in declaration order, then its `handlers:` (in
  /// the order of Handler), which have no dependencies and no dependents.
  std::vector<Task> tasks;

  /// Index of the task with this name, or -1.
  int FindTask(const std::string& name) const;
  /// Whether tasks[task] is one of the handlers.
  bool IsHandler(int task) const { return tasks[task].handler != Handler::kNone; }
  /// How many of `tasks` are handlers (they are the last ones).
  int HandlerCount() const;
};

}  // namespace picoflow
