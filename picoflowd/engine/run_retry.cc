#include "picoflowd/engine/run_retry.h"

namespace picoflow {

std::vector<std::pair<std::string, TaskOutputs>> PlanRetry(const Workflow& workflow, const Dag& dag,
                                                           const RunDetail& original) {
  std::vector<bool> done(workflow.tasks.size(), false);
  std::vector<const TaskRecord*> record(workflow.tasks.size(), nullptr);
  for (const TaskRecord& t : original.tasks) {
    const int index = workflow.FindTask(t.name);
    if (index >= 0) record[index] = &t;
  }
  for (int task : dag.topo_order()) {
    // A handler runs again as the new run's end calls for it.
    bool ok =
        record[task] != nullptr && IsSuccess(record[task]->status) && !workflow.IsHandler(task);
    for (int dep : dag.deps(task)) ok = ok && done[dep];
    done[task] = ok;
  }
  std::vector<std::pair<std::string, TaskOutputs>> reuse;
  for (std::size_t i = 0; i < workflow.tasks.size(); ++i) {
    if (done[i]) reuse.emplace_back(workflow.tasks[i].name, record[i]->outputs);
  }
  return reuse;
}

std::string DescribeChange(const Workflow& before, const Workflow& now) {
  std::string change;
  const auto add = [&change](const std::string& what) {
    change += (change.empty() ? "" : ", ") + what;
  };
  for (const Task& t : now.tasks) {
    if (before.FindTask(t.name) < 0) add("task '" + t.name + "' added");
  }
  for (const Task& t : before.tasks) {
    if (now.FindTask(t.name) < 0) add("task '" + t.name + "' removed");
  }
  return change.empty() ? "its source changed" : change;
}

}  // namespace picoflow
