#pragma once
// The per-type schemas of a task's `config:` map (shell, ssh, http): which
// keys exist, their types, ranges and defaults.

#include <string>
#include <string_view>

#include "common/diagnostic.h"
#include "common/task_paths.h"
#include "common/workflow.h"

namespace picoflow {

/// The keys of a task item (docs/workflow-format.md, "Tasks"): the loader
/// checks them, and a task-level key met inside `config:` is explained.
inline constexpr std::string_view kTaskKeys[] = {"name",
                                                 "type",
                                                 "depends_on",
                                                 "retry",
                                                 "timeout",
                                                 "continue_on_failure",
                                                 "max_interruptions",
                                                 "config",
                                                 "trigger",
                                                 "when",
                                                 "retry_on_exit_codes",
                                                 "retry_jitter",
                                                 "secrets"};

class FieldReader;
struct YamlNode;

/// Whether `name` is an HTTP header name (a token: letters, digits and
/// !#$%&'*+-.^_`|~).
bool IsHeaderName(std::string_view name);

/// What is wrong with `url` as an http task's or a notify target's URL, ""
/// if nothing: no http:// or https:// (either case), no host, a space or a
/// control character.
std::string HttpUrlProblem(std::string_view url);

/// Reads the `config:` map of a task of `type`. `config_key` is where the
/// `config:` key is (missing required keys are reported there), `prefix` is
/// `task 'name': `. Every problem is reported to `reader`; the result is only
/// meaningful if none was. Unknown keys get a "did you mean"; a task-level key
/// (`timeout`, `retry`, ...) gets a message saying it belongs on the task;
/// `password`/`passphrase` get one pointing at passphrase_file/passphrase_env.
/// A shell task's `workdir` and program path (`command` with `args`, if it
/// contains a `/`) are resolved against `paths` (task_paths.h).
TaskConfig LoadTaskConfig(FieldReader& reader, TaskType type, const YamlNode& config,
                          SourcePos config_key, const std::string& prefix, const PathBase& paths);

/// True if `key` is a config key of tasks of `type` (for hints at task level).
bool IsTaskConfigKey(TaskType type, std::string_view key);

/// Returns an empty string if `host` is a syntactically valid hostname (RFC
/// 1123 labels; `_` tolerated), IPv4 or IPv6 address (brackets allowed), else
/// why not, e.g. "put the port in 'port:'".
std::string CheckHostSyntax(std::string_view host);

}  // namespace picoflow
