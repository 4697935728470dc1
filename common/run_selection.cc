#include "common/run_selection.h"

#include <algorithm>

#include "common/dag.h"
#include "common/workflow.h"
#include "common/workflow_fields.h"

namespace picoflow {
namespace {

// Marks every task reachable from the marked ones through `next` (the
// tasks each needs, or those that need it).
template <typename Next>
void Spread(std::vector<bool>& marked, Next next) {
  std::vector<int> stack;
  for (std::size_t i = 0; i < marked.size(); ++i) {
    if (marked[i]) stack.push_back(static_cast<int>(i));
  }
  while (!stack.empty()) {
    const int task = stack.back();
    stack.pop_back();
    for (int other : next(task)) {
      if (marked[other]) continue;
      marked[other] = true;
      stack.push_back(other);
    }
  }
}

}  // namespace

const char* SelectWithName(SelectWith with) {
  switch (with) {
    case SelectWith::kAlone: return "alone";
    case SelectWith::kDownstream: return "downstream";
    case SelectWith::kUpstream: return "upstream";
  }
  return "alone";
}

std::optional<SelectWith> ParseSelectWith(std::string_view name) {
  if (name == "downstream") return SelectWith::kDownstream;
  if (name == "upstream") return SelectWith::kUpstream;
  return std::nullopt;
}

Result<std::vector<TaskRole>> PlanSelection(const Workflow& workflow, const Dag& dag,
                                            const RunSelection& selection) {
  std::vector<std::string> problems;
  if (selection.tasks.empty()) problems.push_back("'only' names no task");
  std::vector<std::string_view> names;  // of the tasks that may be selected
  names.reserve(workflow.tasks.size());
  for (std::size_t i = 0; i < workflow.tasks.size(); ++i) {
    if (!workflow.IsHandler(static_cast<int>(i))) names.push_back(workflow.tasks[i].name);
  }
  std::vector<bool> selected(workflow.tasks.size(), false);
  for (std::size_t i = 0; i < selection.tasks.size(); ++i) {
    const std::string& name = selection.tasks[i];
    const int index = workflow.FindTask(name);
    if (index < 0) {
      problems.push_back("unknown task '" + name + "' in 'only'" +
                         DidYouMean(ClosestMatch(name, names)));
    } else if (workflow.IsHandler(index)) {
      problems.push_back("'" + name + "' in 'only' is a handler: it runs after any run, as the " +
                         "run's end calls for it");
    } else if (selected[index]) {
      problems.push_back("task '" + name + "' is given twice in 'only'");
    } else {
      selected[index] = true;
    }
  }
  if (!problems.empty()) {
    std::string message;
    for (const std::string& p : problems) message += (message.empty() ? "" : "; ") + p;
    return Err(ErrorCode::kInvalid, message);
  }
  if (selection.with == SelectWith::kDownstream) {
    Spread(selected, [&dag](int task) { return dag.dependents(task); });
  } else if (selection.with == SelectWith::kUpstream) {
    Spread(selected, [&dag](int task) { return dag.deps(task); });
  }
  // What the selected tasks need, directly or not, and is not selected
  // itself is taken as done.
  std::vector<bool> needed(selected.size(), false);
  for (std::size_t i = 0; i < selected.size(); ++i) {
    if (!selected[i]) continue;
    for (int dep : dag.deps(static_cast<int>(i))) needed[dep] = true;
  }
  Spread(needed, [&dag](int task) { return dag.deps(task); });
  // The handlers run after the selected tasks as after a whole run.
  std::vector<TaskRole> roles(selected.size(), TaskRole::kNotSelected);
  for (std::size_t i = 0; i < roles.size(); ++i) {
    if (selected[i] || workflow.IsHandler(static_cast<int>(i))) {
      roles[i] = TaskRole::kRun;
    } else if (needed[i]) {
      roles[i] = TaskRole::kTakenAsDone;
    }
  }
  return roles;
}

std::string DescribeSelection(const RunSelection& selection) {
  std::string text;
  const std::size_t n = selection.tasks.size();
  for (std::size_t i = 0; i < n; ++i) {
    if (i > 0) text += i + 1 == n && selection.with == SelectWith::kAlone ? " and " : ", ";
    text += "'" + selection.tasks[i] + "'";
  }
  const bool one = n == 1;
  if (selection.with == SelectWith::kDownstream) {
    text += one ? " and what depends on it" : " and what depends on them";
  } else if (selection.with == SelectWith::kUpstream) {
    text += one ? " and what it needs" : " and what they need";
  }
  return text;
}

}  // namespace picoflow
