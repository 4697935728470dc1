#pragma once
// A workflow file named on picoflowctl's command line: a path, or `-` for
// standard input (`validate -`, `submit -`, `run -`).

#include <string>

#include "common/result.h"

namespace picoflow::ctl {

/// True for the argument that means standard input.
inline bool IsStdinArg(const std::string& arg) { return arg == "-"; }

/// The name diagnostics use for `arg`: the path, or `<stdin>` for `-`.
std::string SourceLabel(const std::string& arg);

/// The `file` sent with the source to the daemon: the path made absolute,
/// because the daemon resolves the workflow's relative paths against the
/// file's directory and does not know ours; `<stdin>` for `-` (relative
/// paths then stay relative: docs/workflow-format.md, "Paths").
std::string SourceFileParam(const std::string& arg);

/// The text of the workflow file `arg`, or of standard input for `-`.
/// Returns kNotFound "file 'PATH' does not exist", ReadWorkflowFile's other
/// errors (a directory, too large, unreadable) prefixed with the path, or
/// kInvalid if standard input holds more than kMaxWorkflowFileBytes.
Result<std::string> ReadSourceArg(const std::string& arg);

}  // namespace picoflow::ctl
