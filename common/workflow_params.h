#pragma once
// A workflow's `params:` (docs/workflow-format.md, "Parameters"): loading the
// declarations, and resolving the values a run is started with against them.

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"
#include "common/workflow.h"
#include "common/yaml_tree.h"

namespace picoflow {

class FieldReader;

/// Limits on a run's values (docs/workflow-format.md, "Parameters").
inline constexpr std::size_t kMaxParams = 100;
inline constexpr std::size_t kMaxParamValueBytes = 16 * 1024;

/// Reads `params:` into `out`, reporting every problem to `reader`. A
/// workflow with a `schedule:` may not have required params: its fires have
/// no one to give them.
void LoadParams(FieldReader& reader, const YamlNode* params, bool scheduled,
                std::vector<WorkflowParam>& out);

/// The environment variable a task reads a param from: PICOFLOW_PARAM_ and the
/// name in upper case.
std::string ParamEnvName(std::string_view name);

/// The values a run gets: `given` (name -> value, as a caller gave them)
/// checked against the workflow's params and completed with their defaults,
/// in the workflow's declaration order. Every problem (an unknown name, with
/// a did-you-mean; a required param not given; a value not among the
/// choices; a value too long or with a NUL byte) is in the one kInvalid error,
/// one per line.
Result<ParamValues> ResolveParams(const Workflow& workflow, const ParamValues& given);

}  // namespace picoflow
