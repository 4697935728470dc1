#include "common/workflow.h"

namespace picoflow {

const char* TaskTypeName(TaskType type) {
  const auto i = static_cast<std::size_t>(type);
  // Each name is a literal: its data() is NUL-terminated.
  return i < kTaskTypeCount ? kTaskTypeNames[i].data() : "unknown";
}

std::optional<TaskType> ParseTaskType(std::string_view name) {
  for (std::size_t i = 0; i < kTaskTypeCount; ++i) {
    if (name == kTaskTypeNames[i]) return static_cast<TaskType>(i);
  }
  return std::nullopt;
}

const char* TriggerRuleName(TriggerRule rule) {
  const auto i = static_cast<std::size_t>(rule);
  return i < std::size(kTriggerRuleNames) ? kTriggerRuleNames[i].data() : "unknown";
}

int Workflow::FindTask(const std::string& name) const {
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    if (tasks[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

int Workflow::HandlerCount() const {
  int n = 0;
  for (int i = static_cast<int>(tasks.size()) - 1; i >= 0 && IsHandler(i); --i) ++n;
  return n;
}

}  // namespace picoflow
