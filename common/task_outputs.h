#pragma once
// A task's outputs (docs/workflow-format.md, "Outputs"): the KEY=VALUE lines
// a task appends to the file PICOFLOW_OUTPUT names, read when it succeeds,
// and the variables its dependents see them as.

#include <cstddef>
#include <string>
#include <string_view>

#include "common/result.h"
#include "common/run_status.h"

namespace picoflow {

/// The most a task's output file may hold.
inline constexpr std::size_t kMaxTaskOutputBytes = 64 * 1024;

/// The outputs in `text`, in the order first written (a key written again
/// keeps its place and takes the later value). Lines are `KEY=VALUE`, or
/// `KEY<<DELIMITER`, then the value's lines, then a line that is exactly
/// DELIMITER; empty lines are skipped; a line may end in "\r\n". KEY is a
/// shell identifier of at most 64 characters. kInvalid names the first line
/// that is none of these, an unterminated KEY<<DELIMITER, and text over
/// kMaxTaskOutputBytes.
Result<TaskOutputs> ParseTaskOutputs(std::string_view text);

/// The variable a dependent reads output `key` of task `task` from:
/// PICOFLOW_OUT_<TASK>_<KEY>, both in upper case, '-' in the task's name as '_'.
std::string OutputEnvName(std::string_view task, std::string_view key);

}  // namespace picoflow
