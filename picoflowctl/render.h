#pragma once
// Output helpers for picoflowctl: aligned tables and colour. Elapsed times
// are common/duration.h's FormatElapsed.

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

namespace picoflow::ctl {

/// True if `stream` is a terminal and NO_COLOR is unset.
bool UseColour(std::FILE* stream);

/// A table with a header row; columns are padded to their widest cell.
/// Widths ignore ANSI colour sequences.
class Table {
 public:
  explicit Table(std::vector<std::string> header) : rows_{std::move(header)} {}
  void Add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  /// Writes every row to `out`, two spaces between columns, no trailing blanks.
  void Print(std::FILE* out) const;

 private:
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace picoflow::ctl
