#pragma once
// Why a task or a run ended as it did, in the words run.get, `status` and
// `run --wait` show (docs/rpc.md, RunDetail): the texts the RunController
// stores with each task and run. Pure functions over a Run.

#include <string>
#include <vector>

#include "common/run_status.h"

namespace picoflow {

class Run;

/// Why an attempt did not succeed: its executor's error, or, without one,
/// its exit code or signal ("exited with code 3"). Empty for a success.
std::string AttemptReason(const AttemptResult& result);

/// Why kSkipped `task` was skipped, from Run::skip_cause: "dependency
/// 'fetch' failed", "dependency 'load' was skipped ('fetch' timed out)",
/// "'fetch' failed and fail_fast stops the run", its own trigger rule
/// ("trigger one_success: no dependency succeeded", "trigger all_failed:
/// dependency 'fetch' succeeded") or a dependency's ("dependency 'cleanup'
/// was skipped (its trigger one_failed: no dependency failed)"). Empty if
/// no cause is known.
std::string SkipReason(const Run& run, int task);

/// Why a task failed for good with retries left (FinishOutcome::not_retried),
/// after AttemptReason: "exited with code 2; not retried: exit code 2 is not
/// in retry_on_exit_codes".
std::string NotRetriedReason(const AttemptResult& result);

/// The error of a finished run from its tasks' reasons (`reasons[i]` of task
/// i): for a failed run, its first failed or timed-out task in declaration
/// order ("task 'fetch' failed: exited with code 1", "... (and 2 more)");
/// for a cancelled one, `stop_reason`. Empty for a run that succeeded.
std::string RunError(const Run& run, const std::vector<std::string>& reasons,
                     const std::string& stop_reason);

}  // namespace picoflow
