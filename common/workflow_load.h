#pragma once
// Loading a workflow file: YAML text -> Workflow (every key checked, defaults
// resolved) -> validated names/dependencies/schedule -> Dag. Every problem in
// the file is reported in one pass, each at its line and column.

#include <memory>
#include <string>
#include <string_view>

#include "common/dag.h"
#include "common/diagnostic.h"
#include "common/task_paths.h"
#include "common/workflow.h"

namespace picoflow {

/// The outcome of loading one file: a workflow and its graph, or diagnostics.
struct LoadedWorkflow {
  std::shared_ptr<const Workflow> workflow;  ///< null if any error was found
  std::shared_ptr<const Dag> dag;            ///< null if any error was found
  Diagnostics diagnostics;                   ///< errors, in file order
  /// Likely mistakes that leave the file valid (Severity::kWarning), in file
  /// order; also given, as far as the file was read, when it is invalid.
  Diagnostics warnings;

  bool ok() const { return workflow != nullptr; }
};

/// Loads a workflow from YAML text. `label` names the source in diagnostics
/// (usually the file path); `paths` says what relative paths of its tasks
/// resolve against (the file's directory; none by default: they stay
/// relative, with a warning). Never throws; every problem becomes a
/// Diagnostic.
LoadedWorkflow LoadWorkflowText(std::string_view text, const std::string& label,
                                const PathBase& paths = {});

/// Reads a workflow file's text: refuses directories, special files,
/// unreadable files and files over kMaxWorkflowFileBytes with an Error naming
/// the file.
Result<std::string> ReadWorkflowFile(const std::string& path);

/// Reads and loads a file: refuses directories, unreadable files and files over
/// kMaxWorkflowFileBytes with one Diagnostic naming the file. Relative paths
/// of its tasks resolve against the file's directory.
LoadedWorkflow LoadWorkflowFile(const std::string& path);

}  // namespace picoflow
