#pragma once
// How a run's progress reads on a terminal, for every program that shows it
// (`picoflowctl run --follow`, `picoflowctl logs -f`, `picoflowd --once`):
// one line per task event, and task output prefixed with its task. Both
// programs render the same run.event / run.output shapes (docs/rpc.md), so
// they print the same words.

#include <cstdio>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

namespace picoflow {

/// Wraps `text` in the ANSI colour for a status word (green for succeeded,
/// red for failed/timed_out, yellow for running/cancelled...) when `colour`.
std::string ColourStatus(const std::string& text, bool colour);

/// One line for the params of a run.event notification:
/// `[load] started (attempt 2)`,
/// `[load] retrying: failed, exit code 1, in 1.2s (why); retry in 2.0s`,
/// `[load] finished: succeeded, exit code 0, in 850ms`,
/// `[load] skipped (dependency 'fetch' failed)`.
std::string TaskEventLine(const nlohmann::json& event, bool colour);

/// Counts a run's tasks that reached a final state (finished, skipped or
/// cancelled; not retrying) from its run.event notifications, for the
/// `[3/8 done]` at the end of every event line while a run is followed.
class RunProgress {
 public:
  /// `tasks`: how many the run has; 0 if unknown (then no count is shown).
  explicit RunProgress(int tasks = 0) : total_(tasks) {}
  void set_total(int tasks) { total_ = tasks; }

  /// Counts `event` (run.event params) and returns its TaskEventLine with
  /// the count after it: `[load] finished: succeeded, in 850ms [3/8 done]`.
  std::string Line(const nlohmann::json& event, bool colour);

 private:
  int total_;
  std::set<std::string> done_;  ///< tasks already counted
};

/// Prints task output chunks to `out`, each line prefixed with `task | `
/// (stderr lines with `task ! `) when `prefix`; without it, stdout chunks go
/// to `out` and stderr chunks to stderr as they are. A line left open by one
/// stream is ended before another stream's line starts.
class OutputPrinter {
 public:
  explicit OutputPrinter(bool prefix, std::FILE* out = stdout) : prefix_(prefix), out_(out) {}
  void Print(const std::string& task, bool is_stderr, const std::string& data);
  /// Ends a partial last line, if any (before an event line, and at the end).
  void Finish();

 private:
  bool prefix_;
  std::FILE* out_;
  std::string open_key_;  ///< task+stream whose line is still open, or empty
};

}  // namespace picoflow
