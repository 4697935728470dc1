// The commands that show one workflow's definition: show (its source, as
// stored) and graph (its DAG: Graphviz DOT, or an indented tree on a
// terminal). Both render workflow.get (docs/rpc.md).

#include <unistd.h>

#include <cstdio>
#include <map>
#include <set>

#include "picoflowctl/command.h"
#include "picoflowctl/rpc_commands.h"
#include "picoflowctl/session.h"
#include "protocol/methods.h"

namespace picoflow::ctl {
namespace {

// A DOT identifier in quotes (task names are plain words, but be safe).
std::string DotQuote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

/// The tasks of a workflow.get answer, each with the tasks that depend on it
/// (declaration order), the roots (no dependencies) and the handlers (run
/// after all of them).
struct Graph {
  std::vector<std::string> tasks;
  std::vector<std::string> roots;
  std::vector<std::string> handlers;
  std::map<std::string, std::vector<std::string>> dependents;

  explicit Graph(const json& workflow) {
    for (const json& t : workflow["tasks"]) {
      const std::string name = t["name"];
      if (t.contains("handler")) {
        handlers.push_back(name);
        continue;
      }
      tasks.push_back(name);
      if (t["depends_on"].empty()) roots.push_back(name);
      for (const json& d : t["depends_on"]) dependents[d.get<std::string>()].push_back(name);
    }
  }
};

void PrintDot(const json& workflow) {
  std::printf("digraph %s {\n  node [shape=box];\n", DotQuote(workflow["name"]).c_str());
  for (const json& t : workflow["tasks"]) {
    // A handler runs after the whole graph: drawn apart, dashed.
    std::printf("  %s%s;\n", DotQuote(t["name"]).c_str(),
                t.contains("handler") ? " [style=dashed]" : "");
  }
  for (const json& t : workflow["tasks"]) {
    for (const json& d : t["depends_on"]) {
      std::printf("  %s -> %s;\n", DotQuote(d).c_str(), DotQuote(t["name"]).c_str());
    }
  }
  std::printf("}\n");
}

// Prints `task` and, indented below it, what depends on it; a task met
// again (it depends on several) is printed as "(see above)", not expanded.
void PrintTree(const Graph& g, const std::string& task, const std::string& prefix, bool last,
               bool root, std::set<std::string>& shown) {
  const bool again = !shown.insert(task).second;
  std::printf("%s%s%s%s\n", prefix.c_str(), root ? "" : (last ? "`-- " : "|-- "), task.c_str(),
              again ? " (see above)" : "");
  if (again) return;
  auto it = g.dependents.find(task);
  if (it == g.dependents.end()) return;
  const std::string below = root ? prefix : prefix + (last ? "    " : "|   ");
  for (std::size_t i = 0; i < it->second.size(); ++i) {
    PrintTree(g, it->second[i], below, i + 1 == it->second.size(), false, shown);
  }
}

std::optional<json> GetWorkflow(Session& s, const std::string& name) {
  return s.Call(method::kWorkflowGet, {{"name", name}});
}

}  // namespace

int Show(Session& s, const Args& a) {
  auto w = GetWorkflow(s, a.name);
  if (!w) return s.exit_code();
  if (s.globals().json) {
    Session::PrintJson(*w);
    return kExitOk;
  }
  const std::string source = (*w)["source"];
  std::fwrite(source.data(), 1, source.size(), stdout);
  if (!source.empty() && source.back() != '\n') std::fputc('\n', stdout);
  return kExitOk;
}

int GraphCmd(Session& s, const Args& a) {
  auto w = GetWorkflow(s, a.name);
  if (!w) return s.exit_code();
  if (s.globals().json) {
    Session::PrintJson(*w);
  } else if (a.dot || !isatty(fileno(stdout))) {
    PrintDot(*w);
  } else {
    const Graph g(*w);
    std::set<std::string> shown;
    for (const std::string& root : g.roots) PrintTree(g, root, "", true, true, shown);
    std::string handlers;
    for (const std::string& h : g.handlers) handlers += (handlers.empty() ? "" : ", ") + h;
    if (!handlers.empty()) std::printf("then the handlers: %s\n", handlers.c_str());
  }
  return kExitOk;
}

}  // namespace picoflow::ctl
