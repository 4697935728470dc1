#pragma once
// Diagnostic: one problem found in a file, at a line and column.

#include <string>
#include <vector>

namespace picoflow {

/// A 1-based position in a source file; 0 means "unknown".
struct SourcePos {
  int line = 0;
  int col = 0;
};

/// An error makes a file invalid; a warning points at a likely mistake in a
/// file that is still valid.
enum class Severity { kError, kWarning };

/// One problem in a file. Rendered as `FILE:LINE:COL: message`.
struct Diagnostic {
  std::string file;
  SourcePos pos;
  std::string message;
  Severity severity = Severity::kError;

  /// `FILE:LINE:COL: message`, or `FILE: message` when the position is
  /// unknown; a warning's message starts with `warning: `.
  std::string ToString() const;
};

using Diagnostics = std::vector<Diagnostic>;

}  // namespace picoflow
