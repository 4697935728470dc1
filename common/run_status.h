#pragma once
// The vocabulary of a run's record, shared by the engine, the executors, the
// store and the RPC side (docs/architecture.md): every status, trigger and
// stream with the one name it is stored and shown by, and the parse of that
// name; and the plain records of how an attempt ended and which process ran
// it. No libuv, no I/O.

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace picoflow {

/// A run. kSkipped: a scheduled fire that did not run (overlap policy),
/// created final with the reason in the run's record.
enum class RunStatus { kPending, kRunning, kSucceeded, kFailed, kCancelled, kSkipped };

/// A task of a run.
enum class TaskStatus {
  kPending,    ///< waiting for dependencies
  kReady,      ///< dependencies done, waiting for a slot
  kRunning,    ///< an attempt is running
  kRetryWait,  ///< an attempt failed; the next one is due after a delay
  kSucceeded,
  kFailed,   ///< failed after its retries
  kSkipped,  ///< a dependency failed (or fail_fast stopped the run)
  kCancelled,
  kTimedOut,  ///< its last attempt's timeout fired; otherwise as kFailed
  /// A retry of a run (run.retry) took it as done: it succeeded in the run
  /// retried, and its outputs are carried over; or a run of part of the
  /// workflow (run.start `only`) did: a selected task needs it, and it
  /// passes on the outputs of its latest success. Otherwise as kSucceeded.
  kReused,
};

/// How an attempt ended; a running attempt has none yet.
enum class AttemptStatus {
  kSucceeded,    ///< exit code 0 (or the executor's notion of success)
  kFailed,       ///< non-zero exit, killed by a signal, or could not start
  kTimeout,      ///< the attempt's timeout fired
  kCancelled,    ///< the attempt was cancelled
  kInterrupted,  ///< the daemon died while it ran (set by crash recovery only)
};

/// What started a run: a person or script, the schedule, or an event of the
/// workflow's `triggers:` (docs/triggers.md; kFleet: a request of the fleet,
/// docs/fleet.md).
enum class RunTrigger { kManual, kRpc, kCron, kCatchup, kFile, kWebhook, kMqtt, kFleet };

/// Which of a task's output streams a chunk came from.
enum class OutputStream { kStdout, kStderr };

/// Lower-case names as stored and shown: "pending", "retry_wait",
/// "timed_out", "catchup", "stderr", ... Each Parse is the inverse of its
/// Name and returns nullopt for any other text, except that
/// ParseAttemptStatus also reads "timeout", kTimeout's name before
/// "timed_out" (and still its name in the store's attempts table).
const char* RunStatusName(RunStatus status);
const char* TaskStatusName(TaskStatus status);
const char* AttemptStatusName(AttemptStatus status);
const char* RunTriggerName(RunTrigger trigger);
const char* OutputStreamName(OutputStream stream);
std::optional<RunStatus> ParseRunStatus(std::string_view name);
std::optional<TaskStatus> ParseTaskStatus(std::string_view name);
std::optional<AttemptStatus> ParseAttemptStatus(std::string_view name);
std::optional<RunTrigger> ParseRunTrigger(std::string_view name);
std::optional<OutputStream> ParseOutputStream(std::string_view name);

/// True for the statuses a task never leaves.
bool IsTerminal(TaskStatus status);
/// True for a task that ended without success of its own: kFailed or
/// kTimedOut (its dependents are skipped unless continue_on_failure).
bool IsFailure(TaskStatus status);
/// True for a task whose dependents count it as succeeded: kSucceeded, or
/// kReused (taken as done).
bool IsSuccess(TaskStatus status);
/// True for the statuses a run never leaves (all but pending and running).
bool IsFinal(RunStatus status);

/// How a task ended, in words, from its status name and its reason (both
/// as run.get gives them): "failed: exited with code 1", "skipped:
/// dependency 'fetch' failed"; the reason alone when it already starts with
/// the status ("timed out after 2s ..."), the status alone without one.
std::string OutcomeText(std::string_view status, std::string_view reason);

/// The final record of one attempt.
/// A task's outputs, key -> value, in the order first written
/// (common/task_outputs.h).
using TaskOutputs = std::vector<std::pair<std::string, std::string>>;

struct AttemptResult {
  AttemptStatus status = AttemptStatus::kFailed;
  std::optional<int> exit_code;  ///< set if the process exited
  std::optional<int> signal;     ///< set if it was killed by a signal
  std::string error;             ///< why it failed to start / was killed, for humans
  TaskOutputs outputs;           ///< what a succeeded attempt passes on to its dependents
};

/// Identity of a started process group, recorded for crash recovery.
struct ProcessIdentity {
  pid_t pid = 0;
  pid_t pgid = 0;
  std::uint64_t start_time = 0;  ///< /proc/PID/stat field 22 (clock ticks since boot)
  std::string boot_id;           ///< /proc/sys/kernel/random/boot_id
};

}  // namespace picoflow
