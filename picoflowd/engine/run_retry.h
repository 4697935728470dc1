#pragma once
// What a retry of a run takes as done (run.retry, docs/rpc.md): the tasks
// that succeeded in it and need nothing that is run again.

#include <string>
#include <utility>
#include <vector>

#include "common/dag.h"
#include "common/workflow.h"
#include "picoflowd/store/store.h"

namespace picoflow {

/// The tasks of `workflow` (the version the retry runs) that `original`
/// (the run retried) had succeeded (or reused) and whose dependencies, direct
/// or not, are all taken as done too, with the outputs they had; in
/// declaration order. Everything else runs again: what failed, timed out,
/// was cancelled, skipped or interrupted, a task new in this version, and
/// whatever depends on those.
std::vector<std::pair<std::string, TaskOutputs>> PlanRetry(const Workflow& workflow, const Dag& dag,
                                                           const RunDetail& original);

/// How `now` differs from `before` in words, for a refused retry: "task
/// 'x' added, task 'y' removed", or "its source changed" when the task
/// names are the same.
std::string DescribeChange(const Workflow& before, const Workflow& now);

}  // namespace picoflow
