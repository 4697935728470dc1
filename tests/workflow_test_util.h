#pragma once
// Helpers shared by the workflow loading tests: load inline YAML and compare
// whole lists of diagnostics.

#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/workflow_load.h"

// Show whole lists of diagnostics when a comparison fails.
namespace doctest {
template <>
struct StringMaker<std::vector<std::string>> {
  static String convert(const std::vector<std::string>& lines) {
    std::string out = "{\n";
    for (const std::string& line : lines) out += "  \"" + line + "\",\n";
    return (out + "}").c_str();
  }
};
}  // namespace doctest

namespace picoflow::test {

using Lines = std::vector<std::string>;

// Raw-string inputs start with a newline for readability; line 1 is the next one.
inline std::string_view Text(std::string_view yaml) {
  if (!yaml.empty() && yaml[0] == '\n') yaml.remove_prefix(1);
  return yaml;
}

inline LoadedWorkflow Load(std::string_view yaml) {
  return LoadWorkflowText(Text(yaml), "wf.yaml");
}

// A workflow that must load; fails the test with its diagnostics otherwise.
inline std::shared_ptr<const Workflow> Valid(std::string_view yaml) {
  LoadedWorkflow loaded = Load(yaml);
  for (const Diagnostic& d : loaded.diagnostics) MESSAGE(d.ToString());
  REQUIRE(loaded.ok());
  REQUIRE(loaded.dag != nullptr);
  CHECK(loaded.diagnostics.empty());
  return loaded.workflow;
}

// The warnings of a workflow that must load, as `FILE:LINE:COL: warning: message`.
inline Lines Warnings(std::string_view yaml) {
  LoadedWorkflow loaded = Load(yaml);
  for (const Diagnostic& d : loaded.diagnostics) MESSAGE(d.ToString());
  CHECK(loaded.ok());
  Lines out;
  for (const Diagnostic& d : loaded.warnings) out.push_back(d.ToString());
  return out;
}

// Every diagnostic of a workflow that must not load, as `FILE:LINE:COL: message`.
inline Lines Errors(std::string_view yaml) {
  LoadedWorkflow loaded = Load(yaml);
  CHECK_FALSE(loaded.ok());
  CHECK(loaded.dag == nullptr);
  Lines out;
  for (const Diagnostic& d : loaded.diagnostics) out.push_back(d.ToString());
  return out;
}

// One shell task `t` with this extra YAML (indented as task keys).
inline std::string OneShellTask(std::string_view extra) {
  return "name: w\ntasks:\n  - name: t\n    type: shell\n    config: {command: \"true\"}\n" +
         std::string(extra);
}

}  // namespace picoflow::test
