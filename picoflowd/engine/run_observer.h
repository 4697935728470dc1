#pragma once
// RunObserver: what the engine tells the rest of the daemon about runs as
// they happen (log followers, run.wait responders, metrics). Callbacks run on
// the loop thread, after the store was updated.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "picoflowd/exec/executor.h"

namespace picoflow {

enum class RunStatus;

/// A task's state change: "started", "finished", "retrying", "skipped",
/// "cancelled".
struct TaskEvent {
  std::int64_t run_id = 0;
  std::string_view workflow;
  std::string_view task;
  int attempt = 0;
  std::string_view event;
  std::string_view status;  ///< the attempt's or task's status name
  std::optional<int> exit_code;
  std::optional<int> signal;
  std::string_view error;
  std::optional<std::chrono::milliseconds> duration;  ///< of the attempt
  std::optional<std::chrono::milliseconds> retry_in;  ///< for "retrying"
};

/// A chunk of task output, already capped (what is stored is what is shown).
struct OutputEvent {
  std::int64_t run_id = 0;
  std::string_view task;
  int attempt = 0;
  OutputStream stream = OutputStream::kStdout;
  std::string_view data;
};

class RunObserver {
 public:
  virtual ~RunObserver() = default;
  virtual void OnTaskEvent(const TaskEvent&) {}
  virtual void OnOutput(const OutputEvent&) {}
  /// The run reached its final status (everything is stored).
  virtual void OnRunFinished(std::int64_t /*run_id*/, RunStatus /*status*/) {}
};

}  // namespace picoflow
