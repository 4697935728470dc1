#pragma once
// Dag: the immutable, index-based dependency graph of one workflow version,
// shared by every run of that version. Task i of the Dag is task i of the
// Workflow it was built from.

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"

namespace picoflow {

struct Workflow;

class Dag {
 public:
  /// Builds the graph. Returns an Error (kInvalid) if a dependency names no
  /// task, or `cycle: a -> b -> a` if the graph has a cycle.
  static Result<Dag> Build(const Workflow& workflow);

  /// Task indices of one cycle, first == last (`a b a`), or empty if acyclic.
  /// Dependencies that name no task are ignored.
  static std::vector<int> FindCycle(const Workflow& workflow);

  int size() const { return static_cast<int>(deps_.size()); }
  /// Tasks that task i waits for.
  std::span<const int> deps(int i) const { return deps_[i]; }
  /// Tasks that wait for task i.
  std::span<const int> dependents(int i) const { return dependents_[i]; }
  /// Every task after all of its dependencies; ties in declaration order;
  /// the workflow's handlers last.
  const std::vector<int>& topo_order() const { return topo_; }
  /// Tasks without dependencies, in declaration order.
  const std::vector<int>& roots() const { return roots_; }
  /// Tasks nothing depends on, in declaration order.
  const std::vector<int>& leaves() const { return leaves_; }
  /// Number of tasks on the longest path from task i to a leaf, i included.
  int critical_path(int i) const { return critical_[i]; }

 private:
  std::vector<std::vector<int>> deps_;
  std::vector<std::vector<int>> dependents_;
  std::vector<int> topo_;
  std::vector<int> roots_;
  std::vector<int> leaves_;
  std::vector<int> critical_;
};

}  // namespace picoflow
