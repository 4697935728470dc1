#include "common/dag.h"

#include <doctest/doctest.h>

#include "common/workflow.h"

namespace picoflow {
namespace {

// A workflow of shell tasks from {name, deps} pairs; only the graph matters here.
Workflow Graph(std::vector<std::pair<std::string, std::vector<std::string>>> spec) {
  Workflow w;
  w.name = "g";
  for (auto& [name, deps] : spec) {
    Task t;
    t.name = name;
    t.depends_on = deps;
    w.tasks.push_back(t);
  }
  return w;
}

std::vector<std::string> Names(const Workflow& w, const std::vector<int>& idx) {
  std::vector<std::string> out;
  for (int i : idx) out.push_back(w.tasks[i].name);
  return out;
}

TEST_CASE("a diamond has one root, one leaf and a topological order in declaration order") {
  Workflow w = Graph({{"a", {}}, {"c", {"a"}}, {"b", {"a"}}, {"d", {"b", "c"}}});
  auto dag = Dag::Build(w);
  REQUIRE(dag.ok());
  CHECK(Names(w, dag->topo_order()) == std::vector<std::string>{"a", "c", "b", "d"});
  CHECK(Names(w, dag->roots()) == std::vector<std::string>{"a"});
  CHECK(Names(w, dag->leaves()) == std::vector<std::string>{"d"});
  CHECK(std::vector<int>(dag->deps(3).begin(), dag->deps(3).end()) == std::vector<int>{1, 2});
  CHECK(std::vector<int>(dag->dependents(0).begin(), dag->dependents(0).end()) ==
        std::vector<int>{1, 2});
}

TEST_CASE("the critical path counts the tasks on the longest way to a leaf") {
  // a -> b -> c -> d is long; x -> d is short.
  Workflow w = Graph({{"a", {}}, {"b", {"a"}}, {"c", {"b"}}, {"x", {}}, {"d", {"c", "x"}}});
  auto dag = Dag::Build(w);
  REQUIRE(dag.ok());
  std::vector<int> weights;
  for (int i = 0; i < dag->size(); ++i) weights.push_back(dag->critical_path(i));
  CHECK(weights == std::vector<int>{4, 3, 2, 2, 1});
}

TEST_CASE("a task that depends on itself is a cycle of one") {
  Workflow w = Graph({{"a", {"a"}}});
  auto dag = Dag::Build(w);
  REQUIRE_FALSE(dag.ok());
  CHECK(dag.error().message == "cycle: a -> a");
}

TEST_CASE("a cycle is reported as the full path in dependency order") {
  Workflow w = Graph({{"start", {}}, {"extract", {"start", "load"}}, {"load", {"extract"}}});
  CHECK(Names(w, Dag::FindCycle(w)) == std::vector<std::string>{"extract", "load", "extract"});
  auto dag = Dag::Build(w);
  REQUIRE_FALSE(dag.ok());
  CHECK(dag.error().message == "cycle: extract -> load -> extract");
}

TEST_CASE("a longer cycle names every task on it once") {
  Workflow w = Graph({{"a", {"c"}}, {"b", {"a"}}, {"c", {"b"}}, {"d", {"c"}}});
  CHECK(Names(w, Dag::FindCycle(w)) == std::vector<std::string>{"a", "c", "b", "a"});
}

TEST_CASE("an unknown dependency is an error naming both tasks") {
  Workflow w = Graph({{"a", {"nope"}}});
  auto dag = Dag::Build(w);
  REQUIRE_FALSE(dag.ok());
  CHECK(dag.error().message == "task 'a' depends on unknown task 'nope'");
}

TEST_CASE("a dependency listed twice is one edge") {
  Workflow w = Graph({{"a", {}}, {"b", {"a", "a"}}});
  auto dag = Dag::Build(w);
  REQUIRE(dag.ok());
  CHECK(dag->deps(1).size() == 1);
  CHECK(dag->dependents(0).size() == 1);
}

TEST_CASE("a 10,000-task chain builds without deep recursion") {
  std::vector<std::pair<std::string, std::vector<std::string>>> spec;
  for (int i = 0; i < 10000; ++i) {
    spec.push_back(
        {"t" + std::to_string(i),
         i ? std::vector<std::string>{"t" + std::to_string(i - 1)} : std::vector<std::string>{}});
  }
  Workflow w = Graph(spec);
  auto dag = Dag::Build(w);
  REQUIRE(dag.ok());
  CHECK(dag->critical_path(0) == 10000);
  CHECK(dag->topo_order().front() == 0);
  CHECK(dag->topo_order().back() == 9999);
  // Closing the chain into a ring is found without recursion too.
  w.tasks[0].depends_on = {"t9999"};
  CHECK(Dag::FindCycle(w).size() == 10001);
}

}  // namespace
}  // namespace picoflow
