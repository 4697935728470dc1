#include "picoflowd/rpc/rpc_json.h"

#include "common/dag.h"
#include "common/run_selection.h"
#include "common/text_escape.h"
#include "common/time_format.h"
#include "common/workflow.h"
#include "picoflowd/engine/run.h"
#include "picoflowd/engine/run_observer.h"

namespace picoflow {
namespace {

using nlohmann::json;

json OptTime(const std::optional<TimePoint>& t) { return t ? json(TimeString(*t)) : json(nullptr); }

json Duration(const std::optional<TimePoint>& start, const std::optional<TimePoint>& end) {
  if (!start || !end) return nullptr;
  return std::chrono::duration_cast<std::chrono::milliseconds>(*end - *start).count();
}

template <class T>
json Opt(const std::optional<T>& v) {
  return v ? json(*v) : json(nullptr);
}

// Why a task ended as it did: as stored, or for a task stored before tasks
// had a reason (store migration 5), its last attempt's error.
std::string TaskError(const TaskRecord& t, const std::vector<AttemptRecord>& attempts) {
  if (!t.error.empty() || !IsTerminal(t.status) || t.status == TaskStatus::kSucceeded) {
    return t.error;
  }
  for (auto a = attempts.rbegin(); a != attempts.rend(); ++a) {
    if (a->task == t.name) return a->error;
  }
  return "";
}

}  // namespace

std::string TimeString(TimePoint t) {
  return FormatIso8601(std::chrono::floor<std::chrono::milliseconds>(t));
}

json TaskEventJson(const TaskEvent& e) {
  json j = {{"run_id", e.run_id},   {"workflow", e.workflow},          {"task", e.task},
            {"attempt", e.attempt}, {"event", TaskEventName(e.event)}, {"status", e.status}};
  if (e.exit_code) j["exit_code"] = *e.exit_code;
  if (e.signal) j["signal"] = *e.signal;
  if (!e.error.empty()) j["error"] = e.error;
  if (e.duration) j["duration_ms"] = e.duration->count();
  if (e.retry_in) j["retry_in_ms"] = e.retry_in->count();
  return j;
}

json OutputEventJson(const OutputEvent& e) {
  return {{"run_id", e.run_id},
          {"task", e.task},
          {"attempt", e.attempt},
          {"stream", OutputStreamName(e.stream)},
          {"data", e.data}};
}

// A run's params or a task's outputs: name -> value.
json ValuesJson(const std::vector<std::pair<std::string, std::string>>& values) {
  json out = json::object();
  for (const auto& [name, value] : values) out[name] = value;
  return out;
}

json TriggersJson(const std::vector<WorkflowTrigger>& triggers) {
  json out = json::array();
  for (const WorkflowTrigger& t : triggers) {
    json item = {{"kind", kTriggerKindNames[static_cast<std::size_t>(t.kind)]}};
    switch (t.kind) {
      case TriggerKind::kFile: {
        json events = json::array();
        for (std::size_t i = 0; i < std::size(kFileEventNames); ++i) {
          if (t.file.events & (1u << i)) events.push_back(kFileEventNames[i]);
        }
        item["path"] = t.file.path;
        item["pattern"] = t.file.pattern;
        item["events"] = std::move(events);
        item["settle_s"] = t.file.settle.count();
        break;
      }
      case TriggerKind::kWebhook: item["token_file"] = t.webhook.token_file; break;
      case TriggerKind::kMqtt:
        item["topic"] = t.mqtt.topic;
        item["qos"] = t.mqtt.qos;
        break;
    }
    out.push_back(std::move(item));
  }
  return out;
}

json RunJson(const RunRecord& run) {
  json out = {
      {"id", run.id},
      {"workflow", run.workflow},
      {"status", RunStatusName(run.status)},
      {"trigger", RunTriggerName(run.trigger)},
      {"scheduled_at", OptTime(run.scheduled_at)},
      {"created_at", TimeString(run.created_at)},
      {"started_at", OptTime(run.started_at)},
      {"ended_at", OptTime(run.ended_at)},
      {"duration_ms", Duration(run.started_at, run.ended_at)},
      {"error", run.error},
      {"reason", run.reason},
  };
  out["params"] = ValuesJson(run.params);
  out["retry_of"] = run.retry_of ? json(*run.retry_of) : json(nullptr);
  // What started a run of `triggers:` or the fleet (docs/triggers.md), with
  // the members it has; null for any other run.
  if (run.event.empty()) {
    out["event"] = nullptr;
  } else {
    json event = json::object();
    if (!run.event.file.empty()) event["file"] = run.event.file;
    if (!run.event.topic.empty()) event["topic"] = run.event.topic;
    if (!run.event.payload.empty()) event["payload"] = run.event.payload;
    if (!run.event.source.empty()) event["source"] = run.event.source;
    out["event"] = std::move(event);
  }
  // The tasks it was limited to (run.start `only`): "with" null for the
  // tasks alone.
  out["only"] = run.only ? json{{"tasks", run.only->tasks},
                                {"with", run.only->with == SelectWith::kAlone
                                             ? json(nullptr)
                                             : json(SelectWithName(run.only->with))}}
                         : json(nullptr);
  // How late a scheduled run started: its start minus its cron instant.
  out["late_ms"] = run.scheduled_at && run.started_at
                       ? json(std::chrono::duration_cast<std::chrono::milliseconds>(
                                  *run.started_at - *run.scheduled_at)
                                  .count())
                       : json(nullptr);
  return out;
}

json RunDetailJson(const RunDetail& detail) {
  json out = RunJson(detail.run);
  json tasks = json::array();
  for (const TaskRecord& t : detail.tasks) {
    tasks.push_back({
        {"name", t.name},
        {"status", TaskStatusName(t.status)},
        {"attempts", t.attempts},
        {"started_at", OptTime(t.started_at)},
        {"ended_at", OptTime(t.ended_at)},
        {"duration_ms", Duration(t.started_at, t.ended_at)},
        {"exit_code", Opt(t.exit_code)},
        {"error", TaskError(t, detail.attempts)},
        {"outputs", ValuesJson(t.outputs)},
    });
  }
  json attempts = json::array();
  for (const AttemptRecord& a : detail.attempts) {
    attempts.push_back({
        {"id", a.seq},
        {"task", a.task},
        {"number", a.number},
        {"status", a.status ? AttemptStatusName(*a.status) : "running"},
        {"started_at", TimeString(a.started_at)},
        {"ended_at", OptTime(a.ended_at)},
        {"duration_ms", Duration(a.started_at, a.ended_at)},
        {"exit_code", Opt(a.exit_code)},
        {"signal", Opt(a.signal)},
        {"error", a.error},
        {"pid", a.process ? json(a.process->pid) : json(nullptr)},
        {"stdout_bytes", a.counts.stdout_bytes},
        {"stderr_bytes", a.counts.stderr_bytes},
        {"stdout_dropped", a.counts.stdout_dropped},
        {"stderr_dropped", a.counts.stderr_dropped},
    });
  }
  out["tasks"] = std::move(tasks);
  out["attempts"] = std::move(attempts);
  return out;
}

json DiagnosticsJson(const Diagnostics& diagnostics) {
  json out = json::array();
  for (const Diagnostic& d : diagnostics) {
    out.push_back({{"file", EscapeControls(d.file)},
                   {"line", d.pos.line},
                   {"col", d.pos.col},
                   {"message", EscapeControls(d.message)},
                   {"text", d.ToString()}});
  }
  return out;
}

json WorkflowShapeJson(const Workflow& w, const Dag& dag) {
  json order = json::array();
  for (int i : dag.topo_order()) order.push_back(w.tasks[i].name);
  return {{"name", w.name},
          {"description", w.description},
          {"tasks", w.tasks.size() - w.HandlerCount()},
          {"schedule", w.schedule},
          {"timezone", w.timezone},
          {"order", std::move(order)}};
}

json StoreHealthJson(const StoreHealth& health) {
  if (!health.degraded) return {{"state", "ok"}};
  return {{"state", "degraded"},
          {"reason", health.reason},
          {"error", health.error},
          {"kept_changes", health.kept_writes},
          {"lost_output_bytes", health.lost_output},
          {"since", health.since ? json(TimeString(*health.since)) : json(nullptr)}};
}

}  // namespace picoflow
