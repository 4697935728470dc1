#pragma once
// JSON shapes of the store's records as the RPC methods return them. One
// place, so `run.get`, `run.list`, `run.wait` and docs/rpc.md agree.

#include <nlohmann/json.hpp>

#include "common/diagnostic.h"
#include "picoflowd/store/store.h"

namespace picoflow {

struct OutputEvent;
struct TaskEvent;
struct Workflow;

/// `2026-11-27T03:40:00.123Z`: FormatIso8601 (common/time_format.h) at the
/// store's precision.
std::string TimeString(TimePoint t);
/// The params of a run.event notification: {run_id, workflow, task, attempt,
/// event, status} and, when set, exit_code, signal, error, duration_ms,
/// retry_in_ms.
nlohmann::json TaskEventJson(const TaskEvent& event);
/// The params of a run.output notification: {run_id, task, attempt, stream, data}.
nlohmann::json OutputEventJson(const OutputEvent& event);
/// {id, workflow, status, trigger, scheduled_at, created_at, started_at,
///  ended_at, duration_ms, error, reason}; absent times are null.
nlohmann::json RunJson(const RunRecord& run);
/// A workflow's `triggers:` (docs/triggers.md), for workflow.get: one object
/// per trigger with its "kind" and its settings.
nlohmann::json TriggersJson(const std::vector<WorkflowTrigger>& triggers);
/// RunJson plus `tasks` [{name, status, attempts, started_at, ended_at,
/// duration_ms, exit_code, error (why it ended as it did, "" if it did not
/// or succeeded)}] and `attempts` [{id, task, number, status,
/// started_at, ended_at, duration_ms, exit_code, signal, error, pid,
/// stdout_bytes, stderr_bytes, stdout_dropped, stderr_dropped}].
nlohmann::json RunDetailJson(const RunDetail& detail);
/// {state: "ok"} or {state: "degraded", reason ("disk full"), error,
///  kept_changes, lost_output_bytes, since} (docs/reliability.md).
nlohmann::json StoreHealthJson(const StoreHealth& health);
/// [{file, line, col, message, text}].
nlohmann::json DiagnosticsJson(const Diagnostics& diagnostics);
/// {name, description, tasks (count), schedule, timezone, order [names]}.
nlohmann::json WorkflowShapeJson(const Workflow& workflow, const class Dag& dag);

}  // namespace picoflow
