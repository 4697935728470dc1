#pragma once
// Executor: starts task attempts on the daemon's loop. An attempt reports
// through its AttemptSink; the executor owns every handle it creates.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/run_status.h"

namespace picoflow {

struct Task;

/// Everything an executor needs to run one attempt of one task.
struct AttemptSpec {
  const Task* task = nullptr;  ///< outlives the attempt (owned by the Dag's Workflow)
  std::string workflow;        ///< for PICOFLOW_WORKFLOW
  std::int64_t run_id = 0;     ///< for PICOFLOW_RUN_ID
  int attempt = 1;             ///< 1-based, for PICOFLOW_ATTEMPT
  std::chrono::milliseconds timeout{300000};   ///< per attempt; 0 means none
  std::chrono::milliseconds kill_grace{5000};  ///< SIGTERM -> SIGKILL
  /// What the run gives the task on top of its own `env`: PICOFLOW_PARAM_*
  /// (docs/workflow-format.md, "Parameters"). Set by the shell and ssh
  /// executors after the task's variables, so these win.
  std::vector<std::pair<std::string, std::string>> env;
  /// The values of the task's secrets, read for this attempt: (name, value)
  /// pairs (docs/workflow-format.md, "Secrets"). A shell or ssh task gets
  /// each as an environment variable; they are also the values of
  /// `${secret:NAME}` in an http task's url and headers and an ssh task's
  /// env values. Never logged, never stored.
  std::vector<std::pair<std::string, std::string>> secrets;
};

/// A failed attempt's result with `error` as its reason (nothing ran, or
/// nothing could be reported).
inline AttemptResult FailedResult(std::string error) {
  AttemptResult r;
  r.status = AttemptStatus::kFailed;
  r.error = std::move(error);
  return r;
}

/// Receives an attempt's events, always on the loop thread.
class AttemptSink {
 public:
  virtual ~AttemptSink() = default;
  /// The process (group) is running. Not called for non-process executors.
  virtual void OnStarted(const ProcessIdentity& identity) = 0;
  /// A chunk of output, as it arrives. Never buffered by the executor.
  virtual void OnOutput(OutputStream stream, std::string_view data) = 0;
  /// Called exactly once, last. The sink may destroy the Attempt from here.
  virtual void OnFinished(const AttemptResult& result) = 0;
};

/// One running attempt. Destroying it before OnFinished kills the process
/// group at once (SIGKILL) and reports nothing more.
class Attempt {
 public:
  virtual ~Attempt() = default;
  /// SIGTERM to the group, SIGKILL after the grace period, then OnFinished
  /// with kCancelled. Idempotent; no-op once finished.
  virtual void Cancel() = 0;
};

/// Starts attempts of one task type.
class Executor {
 public:
  virtual ~Executor() = default;
  /// Starts an attempt. Never throws and never fails synchronously: a spawn
  /// failure is reported through sink.OnFinished on a later loop iteration
  /// (never from inside Start, so the caller always holds the Attempt first).
  virtual std::unique_ptr<Attempt> Start(const AttemptSpec& spec, AttemptSink& sink) = 0;
};

}  // namespace picoflow
