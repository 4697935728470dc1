#pragma once
// WorkflowRegistry: the workflows the daemon knows — for each name, the
// version new runs use (an immutable Workflow + Dag shared with every run of
// it), where it came from, whether it is paused, and the errors of a broken
// newer file that could not replace it.

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/dag.h"
#include "common/diagnostic.h"
#include "common/result.h"
#include "common/workflow.h"

namespace picoflow {

/// The origin of a workflow given by workflow.submit (not by a file).
inline constexpr char kSubmittedOrigin[] = "submitted";

/// One loaded version of a workflow; shared by the registry and its runs.
struct WorkflowVersion {
  std::shared_ptr<const Workflow> workflow;
  std::shared_ptr<const Dag> dag;
  std::string source;    ///< the YAML text it was loaded from
  std::string base_dir;  ///< what its relative paths resolved against ("" if unknown)
  std::string origin;    ///< kSubmittedOrigin, or the file path it came from
};

/// Loads a version from YAML source, resolving its relative paths against
/// `base_dir` (the directory of its file; "" if unknown: they stay relative).
/// Returns the diagnostics if invalid.
struct CompiledWorkflow {
  std::shared_ptr<const WorkflowVersion> version;  ///< null if invalid
  Diagnostics diagnostics;                         ///< errors
  Diagnostics warnings;                            ///< likely mistakes of a valid file too
};
CompiledWorkflow CompileWorkflow(const std::string& source, const std::string& label,
                                 const std::string& origin, const std::string& base_dir);

class WorkflowRegistry {
 public:
  struct Entry {
    std::shared_ptr<const WorkflowVersion> version;  ///< null: only a broken file
    bool paused = false;
    Diagnostics errors;       ///< of the latest file version that failed to load
    std::string broken_file;  ///< that file's path
  };

  /// Adds or replaces the version of `version->workflow->name`; clears errors.
  void Put(std::shared_ptr<const WorkflowVersion> version);
  /// Records that `file` (which held workflow `name`, if known) failed to
  /// load; the last good version, if any, stays in use.
  void MarkBroken(const std::string& name, const std::string& file, Diagnostics errors);
  /// Removes a workflow; returns false if there was none.
  bool Remove(const std::string& name);
  /// Sets the paused flag; returns false if there is no such workflow.
  bool SetPaused(const std::string& name, bool paused);

  /// The entry for `name`, or null.
  const Entry* Find(const std::string& name) const;
  /// Every entry, sorted by name.
  const std::map<std::string, Entry>& entries() const { return entries_; }

 private:
  std::map<std::string, Entry> entries_;
};

}  // namespace picoflow
