#pragma once
// The `secrets:` of a workflow and of its tasks at load time: their names
// and sources (never their values, read only when an attempt starts:
// common/secrets.h), and where `${secret:NAME}` may be written
// (docs/workflow-format.md, "Secrets").

#include <string>
#include <vector>

#include "common/task_paths.h"
#include "common/workflow.h"

namespace picoflow {

class FieldReader;
struct YamlNode;

/// Reads a `secrets:` map (`v` may be null: none). `prefix` is the context
/// of messages (`task 'x': ` or empty). A relative `file` is resolved
/// against `paths` as other workflow paths are (task_paths.h). Every
/// problem is reported to `reader`: a name that is not an environment
/// variable name or starts with PICOFLOW_, an entry without exactly one of
/// `file`, `env` and `credential`, an empty or invalid source.
std::vector<Secret> LoadSecrets(FieldReader& reader, const YamlNode* v, const std::string& prefix,
                                const PathBase& paths);

/// The secrets of a task: `workflow`'s, each replaced by the task's entry
/// of the same name, then the task's others, in the order written.
std::vector<Secret> MergeSecrets(const std::vector<Secret>& workflow,
                                 const std::vector<Secret>& task);

/// Checks every `${secret:` of the document `root` (whose tasks `workflow`
/// holds, loaded): one in an http task's `url` or a `headers` value, or in
/// an ssh task's `env` value must be `${secret:NAME}` with NAME one of the
/// task's secrets; one anywhere else is refused. Also refuses a shell or
/// ssh task whose `env` sets a variable that is one of its secrets (each
/// secret is a variable of its own).
void CheckSecretUse(FieldReader& reader, const YamlNode& root, const Workflow& workflow);

}  // namespace picoflow
