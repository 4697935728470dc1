#pragma once
// The task keys that decide when a task starts and how it retries: `trigger`,
// `retry_on_exit_codes` and `retry_jitter` (also `config: retry_jitter`).
// Read by workflow_load.cc, validated in its style (docs/workflow-format.md,
// "Trigger rules" and "Retries").

#include <optional>
#include <string>

#include "common/workflow.h"

namespace picoflow {

class FieldReader;
struct Where;
struct YamlNode;

/// Reads `trigger`, `when`, `retry_on_exit_codes` and `retry_jitter` of task `item`
/// into `task`, whose `type` (nullopt when it is unknown) and `depends_on` are
/// already read; `retry_jitter` defaults to `config`'s. Every problem is
/// reported to `r` with `prefix` (`task 'x': `); a bad value leaves the default.
void LoadTaskRules(FieldReader& r, const YamlNode& item, const std::string& prefix,
                   std::optional<TaskType> type, const WorkflowConfig& config, Task& task);

/// A `when:` condition (docs/workflow-format.md, "Conditions"): a command
/// string (run by /bin/sh -c), or a map of `command` (the program) and
/// `args`. Reports anything else and returns nullopt.
std::optional<ShellConfig> ReadCondition(FieldReader& r, const YamlNode& v, Where w);

/// A `retry_jitter` value: a plain number from 0 to 1 (`0.2`, `0`, `1`).
/// Reports anything else and returns nullopt, as for a null value.
std::optional<double> ReadJitter(FieldReader& r, const YamlNode& v, Where w);

}  // namespace picoflow
