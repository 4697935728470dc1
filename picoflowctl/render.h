#pragma once
// Output helpers for picoflowctl: aligned tables, human durations, colour.

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

namespace picoflow::ctl {

/// `850ms`, `1.2s`, `3m04s`, `2h05m`. Negative durations print as `-`.
std::string FormatDuration(std::chrono::milliseconds d);

/// True if `stream` is a terminal and NO_COLOR is unset.
bool UseColour(std::FILE* stream);

/// Wraps `text` in the ANSI colour for a status word (green for succeeded,
/// red for failed/timeout, yellow for running/cancelled...) when `colour`.
std::string ColourStatus(const std::string& text, bool colour);

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
