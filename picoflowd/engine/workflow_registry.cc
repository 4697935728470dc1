#include "picoflowd/engine/workflow_registry.h"

#include "common/workflow_load.h"

namespace picoflow {

CompiledWorkflow CompileWorkflow(const std::string& source, const std::string& label,
                                 const std::string& origin, const std::string& base_dir) {
  LoadedWorkflow loaded = LoadWorkflowText(source, label, PathBase{base_dir, ""});
  CompiledWorkflow out;
  out.diagnostics = std::move(loaded.diagnostics);
  out.warnings = std::move(loaded.warnings);
  if (!loaded.ok()) return out;
  auto version = std::make_shared<WorkflowVersion>();
  version->workflow = std::move(loaded.workflow);
  version->dag = std::move(loaded.dag);
  version->source = source;
  version->base_dir = base_dir;
  version->origin = origin;
  out.version = std::move(version);
  return out;
}

void WorkflowRegistry::Put(std::shared_ptr<const WorkflowVersion> version) {
  Entry& entry = entries_[version->workflow->name];
  entry.version = std::move(version);
  entry.errors.clear();
  entry.broken_file.clear();
}

void WorkflowRegistry::MarkBroken(const std::string& name, const std::string& file,
                                  Diagnostics errors) {
  Entry& entry = entries_[name];
  entry.errors = std::move(errors);
  entry.broken_file = file;
}

bool WorkflowRegistry::Remove(const std::string& name) { return entries_.erase(name) > 0; }

bool WorkflowRegistry::SetPaused(const std::string& name, bool paused) {
  auto it = entries_.find(name);
  if (it == entries_.end()) return false;
  it->second.paused = paused;
  return true;
}

const WorkflowRegistry::Entry* WorkflowRegistry::Find(const std::string& name) const {
  auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : &it->second;
}

}  // namespace picoflow
