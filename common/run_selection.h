#pragma once
// A run of part of a workflow (`run.start` `only`, `picoflowctl run --only`;
// docs/rpc.md, "run.start"): the tasks named, with what depends on them or
// what they need, and what each task of the workflow does in such a run.
// Pure logic over a Workflow and its Dag.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace picoflow {

class Dag;
struct Workflow;

/// What a selection adds to the tasks it names.
enum class SelectWith {
  kAlone,       ///< nothing: the tasks alone
  kDownstream,  ///< every task that depends on them, directly or not
  kUpstream,    ///< every task they need, directly or not
};

/// "downstream", "upstream"; "alone" for kAlone (never stored nor sent: a
/// selection without `with` is the tasks alone).
const char* SelectWithName(SelectWith with);
/// The inverse of SelectWithName for "downstream" and "upstream"; nullopt
/// for any other text.
std::optional<SelectWith> ParseSelectWith(std::string_view name);

/// The tasks a run is limited to, as the caller named them.
struct RunSelection {
  std::vector<std::string> tasks;  ///< in the order given
  SelectWith with = SelectWith::kAlone;
  bool operator==(const RunSelection&) const = default;
};

/// What a task does in a run limited by a selection.
enum class TaskRole {
  kRun,          ///< selected: it runs
  kTakenAsDone,  ///< not selected, but a selected task needs it: taken as done
  kNotSelected,  ///< neither: it does not run (skipped)
};

/// The role of each task of `workflow` (indexed as its tasks; `dag` is its
/// graph) in a run limited to `selection`: the selected tasks run; the
/// tasks they need, directly or not, that are not selected are taken as
/// done; the rest are not selected, but the handlers (which are never
/// selected) run as after any run. Returns a kInvalid Error if the
/// selection names no task, a task the workflow does not have (with a
/// did-you-mean), a handler or a task twice: every problem in the message,
/// `; ` between them.
Result<std::vector<TaskRole>> PlanSelection(const Workflow& workflow, const Dag& dag,
                                            const RunSelection& selection);

/// The selection in words, for reasons and the CLI: "'load'", "'load' and
/// 'check'", "'load' and what depends on it", "'a', 'b' and what they
/// need".
std::string DescribeSelection(const RunSelection& selection);

}  // namespace picoflow
