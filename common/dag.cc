#include "common/dag.h"

#include <algorithm>
#include <string_view>
#include <unordered_map>

#include "common/workflow.h"

namespace picoflow {
namespace {

using NameIndex = std::unordered_map<std::string_view, int>;

NameIndex IndexNames(const Workflow& workflow) {
  NameIndex index;
  index.reserve(workflow.tasks.size());
  for (std::size_t i = 0; i < workflow.tasks.size(); ++i) {
    index.emplace(workflow.tasks[i].name, static_cast<int>(i));
  }
  return index;
}

// Adjacency "i waits for deps[i]"; unknown names are dropped (callers that care
// check them first).
std::vector<std::vector<int>> ResolveDeps(const Workflow& workflow, const NameIndex& index) {
  std::vector<std::vector<int>> deps(workflow.tasks.size());
  for (std::size_t i = 0; i < workflow.tasks.size(); ++i) {
    for (const std::string& name : workflow.tasks[i].depends_on) {
      auto it = index.find(name);
      if (it != index.end()) deps[i].push_back(it->second);
    }
  }
  return deps;
}

}  // namespace

std::vector<int> Dag::FindCycle(const Workflow& workflow) {
  const auto deps = ResolveDeps(workflow, IndexNames(workflow));
  const int n = static_cast<int>(deps.size());
  // Iterative DFS (10,000-task chains must not recurse) with colours:
  // 0 unvisited, 1 on the current path, 2 done.
  std::vector<char> colour(n, 0);
  std::vector<int> path;                           // tasks on the current path
  std::vector<std::pair<int, std::size_t>> stack;  // (task, next dep to visit)
  for (int start = 0; start < n; ++start) {
    if (colour[start] != 0) continue;
    stack.push_back({start, 0});
    colour[start] = 1;
    path.push_back(start);
    while (!stack.empty()) {
      auto& [task, next] = stack.back();
      if (next == deps[task].size()) {
        colour[task] = 2;
        path.pop_back();
        stack.pop_back();
        continue;
      }
      const int dep = deps[task][next++];
      if (colour[dep] == 1) {
        // Found a back edge task -> dep: the cycle is dep ... task on the path.
        // Report it in dependency direction: dep waits for ... waits for dep.
        auto from = std::find(path.begin(), path.end(), dep);
        std::vector<int> cycle(from, path.end());
        cycle.push_back(dep);
        return cycle;
      }
      if (colour[dep] == 0) {
        colour[dep] = 1;
        path.push_back(dep);
        stack.push_back({dep, 0});
      }
    }
  }
  return {};
}

Result<Dag> Dag::Build(const Workflow& workflow) {
  const NameIndex index = IndexNames(workflow);
  for (const Task& task : workflow.tasks) {
    for (const std::string& name : task.depends_on) {
      if (!index.count(name)) {
        return Err(ErrorCode::kInvalid,
                   "task '" + task.name + "' depends on unknown task '" + name + "'");
      }
    }
  }
  if (std::vector<int> cycle = FindCycle(workflow); !cycle.empty()) {
    std::string text = "cycle: ";
    for (std::size_t i = 0; i < cycle.size(); ++i) {
      if (i) text += " -> ";
      text += workflow.tasks[cycle[i]].name;
    }
    return Err(ErrorCode::kInvalid, text);
  }

  Dag dag;
  const int n = static_cast<int>(workflow.tasks.size());
  dag.deps_ = ResolveDeps(workflow, index);
  dag.dependents_.resize(n);
  for (int i = 0; i < n; ++i) {
    // A task listed twice in depends_on is one edge.
    auto& d = dag.deps_[i];
    std::sort(d.begin(), d.end());
    d.erase(std::unique(d.begin(), d.end()), d.end());
    for (int dep : d) dag.dependents_[dep].push_back(i);
  }

  // Kahn's algorithm with a min-heap on the index keeps declaration order
  // among tasks that become ready together. The handlers, last in the list
  // and without edges, are left out of the heap and come last: they run
  // after every other task (docs/workflow-format.md, "Handlers").
  const int handlers = workflow.HandlerCount();
  std::vector<int> waiting(n);
  std::vector<int> ready;
  for (int i = 0; i < n; ++i) {
    waiting[i] = static_cast<int>(dag.deps_[i].size());
    if (waiting[i] == 0) {
      if (i < n - handlers) ready.push_back(i);
      dag.roots_.push_back(i);
    }
    if (dag.dependents_[i].empty()) dag.leaves_.push_back(i);
  }
  std::make_heap(ready.begin(), ready.end(), std::greater<>());
  dag.topo_.reserve(n);
  while (!ready.empty()) {
    std::pop_heap(ready.begin(), ready.end(), std::greater<>());
    const int task = ready.back();
    ready.pop_back();
    dag.topo_.push_back(task);
    for (int next : dag.dependents_[task]) {
      if (--waiting[next] == 0) {
        ready.push_back(next);
        std::push_heap(ready.begin(), ready.end(), std::greater<>());
      }
    }
  }
  for (int i = n - handlers; i < n; ++i) dag.topo_.push_back(i);
  assert(static_cast<int>(dag.topo_.size()) == n);  // FindCycle found none

  // Longest path to a leaf, computed in reverse topological order.
  dag.critical_.assign(n, 1);
  for (auto it = dag.topo_.rbegin(); it != dag.topo_.rend(); ++it) {
    for (int next : dag.dependents_[*it]) {
      dag.critical_[*it] = std::max(dag.critical_[*it], dag.critical_[next] + 1);
    }
  }
  return dag;
}

}  // namespace picoflow
