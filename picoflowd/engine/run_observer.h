#pragma once
// RunObserver: what the engine tells the rest of the daemon about runs as
// they happen (log followers, run.wait responders, metrics). Callbacks run on
// the loop thread, after the store was updated.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/run_status.h"
#include "protocol/methods.h"

namespace picoflow {

struct Workflow;

/// What happened to a task (the `event` of a run.event notification).
enum class TaskEventKind {
  kStarted,    ///< an attempt started
  kFinished,   ///< an attempt ended and no retry follows
  kRetrying,   ///< an attempt ended and another follows after retry_in
  kSkipped,    ///< a dependency failed
  kCancelled,  ///< the run was cancelled before the task ran
};

/// The event's name on the wire: protocol/methods.h's task_event constants.
inline const char* TaskEventName(TaskEventKind kind) {
  switch (kind) {
    case TaskEventKind::kStarted: return task_event::kStarted;
    case TaskEventKind::kFinished: return task_event::kFinished;
    case TaskEventKind::kRetrying: return task_event::kRetrying;
    case TaskEventKind::kSkipped: return task_event::kSkipped;
    case TaskEventKind::kCancelled: return task_event::kCancelled;
  }
  return "unknown";
}

/// A task's state change.
struct TaskEvent {
  std::int64_t run_id = 0;
  std::string_view workflow;
  std::string_view task;
  int attempt = 0;
  TaskEventKind event = TaskEventKind::kStarted;
  std::string_view status;  ///< the attempt's or task's status name
  std::optional<int> exit_code;
  std::optional<int> signal;
  std::string_view error;
  std::optional<std::chrono::milliseconds> duration;  ///< of the attempt
  std::optional<std::chrono::milliseconds> retry_in;  ///< for kRetrying
  bool handler = false;  ///< the task is one of the workflow's handlers
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
  /// The run started (`resumed`: again, after a restart of the daemon); a
  /// run with a `when:` condition, once the condition is met. `workflow` is
  /// the version the run executes (a run of a file given inline has its own),
  /// valid during the call only.
  virtual void OnRunStarted(std::int64_t /*run_id*/, const Workflow& /*workflow*/,
                            bool /*resumed*/) {}
  virtual void OnTaskEvent(const TaskEvent&) {}
  virtual void OnOutput(const OutputEvent&) {}
  /// An attempt was recorded interrupted: the daemon stopped while it ran.
  virtual void OnAttemptInterrupted(std::string_view /*workflow*/, std::string_view /*task*/) {}
  /// The run reached its final status (everything is stored).
  virtual void OnRunFinished(std::int64_t /*run_id*/, RunStatus /*status*/) {}
};

}  // namespace picoflow
