#pragma once
// Output helpers for picoflowctl: aligned tables and colour. Elapsed times
// are common/duration.h's FormatElapsed.

#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace picoflow::ctl {

/// True if `allowed` (no --no-color), `stream` is a terminal, NO_COLOR is
/// unset or empty (no-color.org) and TERM is not "dumb".
bool UseColour(std::FILE* stream, bool allowed = true);

/// The width of the terminal `stream` writes to; 0 if it is no terminal.
std::size_t TerminalWidth(std::FILE* stream);

/// `text` cut to `width` display columns, "…" ending what was cut; as it is
/// if it fits.
std::string Shorten(const std::string& text, std::size_t width);

/// A table with a header row; columns are padded to their widest cell.
/// Widths ignore ANSI colour sequences.
class Table {
 public:
  explicit Table(std::vector<std::string> header) : rows_{std::move(header)} {}
  void Add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  /// Writes every row to `out`, two spaces between columns, no trailing
  /// blanks. With a `width` (a terminal's), the last column's cells are
  /// shortened so that rows fit in it, keeping at least 20 columns of them.
  void Print(std::FILE* out, std::size_t width = 0) const;

 private:
  std::vector<std::vector<std::string>> rows_;
};

// ---- table cells from JSON-RPC answers ----

/// A value as text: strings as they are, null as "-", the rest as JSON.
std::string Str(const nlohmann::json& v);
/// daemon.status's `store` in words: "ok", or "degraded (disk full) since
/// ...: N changes kept in memory, ...; no new run starts until there is room".
std::string StoreState(const nlohmann::json& store);
/// Milliseconds as an elapsed time (`1.2s`), null as "-".
std::string Dur(const nlohmann::json& ms);
/// "2026-11-27T03:40:00.123Z" as "2026-11-27 03:40:00"; null as "-".
std::string ShortTime(const nlohmann::json& t);
/// A next-fire instant: UTC, said so ("2026-11-28 02:00:00 UTC"); null as "-".
std::string FireTime(const nlohmann::json& t);

/// Prints a RunDetail (run.get) as its header line and task table, with a
/// REASON column (why each task ended as it did) when a task has one,
/// shortened to `width` if not 0 (TerminalWidth).
void PrintRunTable(const nlohmann::json& run, bool colour, std::size_t width = 0);

}  // namespace picoflow::ctl
