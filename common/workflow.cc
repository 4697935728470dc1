#include "common/workflow.h"

namespace picoflow {

const char* TaskTypeName(TaskType type) {
  switch (type) {
    case TaskType::kShell: return "shell";
    case TaskType::kSsh: return "ssh";
    case TaskType::kHttp: return "http";
  }
  return "unknown";
}

int Workflow::FindTask(const std::string& name) const {
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    if (tasks[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

}  // namespace picoflow
