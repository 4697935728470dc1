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

/// One problem in a file. Rendered as `FILE:LINE:COL: message`.
struct Diagnostic {
  std::string file;
  SourcePos pos;
  std::string message;

  /// `FILE:LINE:COL: message`, or `FILE: message` when the position is unknown.
  std::string ToString() const;
};

using Diagnostics = std::vector<Diagnostic>;

}  // namespace picoflow
