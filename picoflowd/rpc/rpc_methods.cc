#include "picoflowd/rpc/rpc_methods.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <vector>

#include "common/run_selection.h"
#include "common/task_paths.h"
#include "common/workflow_fields.h"
#include "common/workflow_load.h"
#include "common/workflow_params.h"
#include "picoflowd/engine/run.h"
#include "picoflowd/engine/run_admission.h"
#include "picoflowd/engine/run_controller.h"
#include "picoflowd/engine/run_manager.h"
#include "picoflowd/engine/run_retry.h"
#include "picoflowd/engine/workflow_registry.h"
#include "picoflowd/rpc/rpc_call.h"
#include "picoflowd/rpc/rpc_dispatch.h"
#include "picoflowd/rpc/rpc_host.h"
#include "picoflowd/rpc/rpc_json.h"
#include "picoflowd/rpc/rpc_server.h"
#include "picoflowd/rpc/run_feed.h"
#include "picoflowd/sched/scheduler.h"
#include "picoflowd/store/store.h"
#include "protocol/jsonrpc.h"
#include "protocol/methods.h"

namespace picoflow {
namespace {

json ChunkJson(const OutputChunk& c) {
  return {{"seq", c.seq},
          {"task", c.task},
          {"attempt", c.attempt},
          {"stream", OutputStreamName(c.stream)},
          {"data", c.data}};
}

// The message of -32003: "FILE: invalid workflow (N errors)".
// What relative paths of YAML sent with `file` resolve against: the file's
// directory if `file` is absolute (picoflowctl sends it so). A relative one
// is relative to the client, which the daemon does not know.
std::string BaseDirOf(const std::string& file) {
  return !file.empty() && file.front() == '/' ? FileDirectory(file) : "";
}

std::string InvalidWorkflowMessage(const std::string& file, std::size_t errors) {
  return file + ": invalid workflow (" + std::to_string(errors) +
         (errors == 1 ? " error)" : " errors)");
}

// run.start's `only` and `with`, checked for their form (the daemon's
// RunManager checks the names against the workflow); nullopt without `only`.
std::optional<RunSelection> SelectionOf(const RpcCall& call) {
  const json only = call.Param<json>("only", json(nullptr));
  const std::string with = call.Param<std::string>("with", "");
  if (only.is_null()) {
    if (!with.empty()) {
      throw ParamError(
          "'with' needs 'only': the tasks to run with what depends on them "
          "(downstream) or what they need (upstream)");
    }
    return std::nullopt;
  }
  RunSelection selection;
  for (const json& task : only) {
    if (!task.is_string()) {
      throw ParamError("param 'only': each element must be a task name, got " +
                       std::string(task.type_name()));
    }
    selection.tasks.push_back(task.get<std::string>());
  }
  if (!with.empty()) {
    const std::optional<SelectWith> parsed = ParseSelectWith(with);
    if (!parsed) {
      throw ParamError("param 'with' must be 'downstream' or 'upstream', got '" + with + "'");
    }
    selection.with = *parsed;
  }
  return selection;
}

// run.start's `params`: an object of name -> string, number or boolean; a
// number or boolean becomes its JSON text ("3", "true"), as in YAML.
ParamValues ParamsOf(const json& params) {
  ParamValues values;
  for (const auto& [name, value] : params.items()) {
    if (value.is_string()) {
      values.emplace_back(name, value.get<std::string>());
    } else if (value.is_number() || value.is_boolean()) {
      values.emplace_back(name, value.dump());
    } else {
      throw ParamError("param 'params': the value of '" + name +
                       "' must be a string, a number or a boolean, got " +
                       std::string(value.type_name()));
    }
  }
  return values;
}

// How many names of stored history a "did you mean" looks at (one index
// seek each, and only when a name was not found).
constexpr int kMaxSuggestedHistoryNames = 1000;

}  // namespace

// ---- methods ----

RpcMethods::RpcMethods(RpcHost& host) : host_(host) {}

RpcMethods::~RpcMethods() = default;

void RpcMethods::Register(Dispatcher& d) {
  auto bind = [this](void (RpcMethods::*method)(RpcCall&)) {
    return [this, method](RpcCall& call) { (this->*method)(call); };
  };
  using P = ParamSpec;
  using T = ParamType;
  d.Register({method::kDaemonStatus, Access::kRead, {}, false, bind(&RpcMethods::DaemonStatus)});
  d.Register({method::kDaemonReload, Access::kWrite, {}, false, bind(&RpcMethods::DaemonReload)});
  d.Register({method::kWorkflowValidate,
              Access::kRead,
              {P{"source", T::kString, true}, P{"file", T::kString, false}},
              false,
              bind(&RpcMethods::WorkflowValidate)});
  d.Register({method::kWorkflowSubmit,
              Access::kWrite,
              {P{"source", T::kString, true}, P{"file", T::kString, false}},
              false,
              bind(&RpcMethods::WorkflowSubmit)});
  d.Register({method::kWorkflowList,
              Access::kRead,
              {P{"unloaded", T::kBool, false}},
              false,
              bind(&RpcMethods::WorkflowList)});
  d.Register({method::kWorkflowGet,
              Access::kRead,
              {P{"name", T::kString, true}},
              false,
              bind(&RpcMethods::WorkflowGet)});
  d.Register({method::kWorkflowRemove,
              Access::kWrite,
              {P{"name", T::kString, true}},
              false,
              bind(&RpcMethods::WorkflowRemove)});
  d.Register({method::kWorkflowPause,
              Access::kWrite,
              {P{"name", T::kString, true}},
              false,
              [this](RpcCall& call) { WorkflowPause(call, true); }});
  d.Register({method::kWorkflowResume,
              Access::kWrite,
              {P{"name", T::kString, true}},
              false,
              [this](RpcCall& call) { WorkflowPause(call, false); }});
  d.Register({method::kWorkflowNext,
              Access::kRead,
              {P{"name", T::kString, true}, P{"count", T::kInteger, false}},
              false,
              bind(&RpcMethods::WorkflowNext)});
  d.Register(
      {method::kRunStart,
       Access::kWrite,
       {P{"workflow", T::kString, false}, P{"source", T::kString, false},
        P{"file", T::kString, false}, P{"follow", T::kBool, false}, P{"params", T::kObject, false},
        P{"only", T::kArray, false}, P{"with", T::kString, false}, P{"force", T::kBool, false}},
       false,
       bind(&RpcMethods::RunStart)});
  d.Register({method::kRunGet,
              Access::kRead,
              {P{"run_id", T::kInteger, true}},
              false,
              bind(&RpcMethods::RunGet)});
  d.Register({method::kRunList,
              Access::kRead,
              {P{"workflow", T::kString, false}, P{"limit", T::kInteger, false},
               P{"before", T::kInteger, false}},
              false,
              bind(&RpcMethods::RunList)});
  d.Register({method::kRunCancel,
              Access::kWrite,
              {P{"run_id", T::kInteger, false}, P{"workflow", T::kString, false}},
              false,
              bind(&RpcMethods::RunCancel)});
  d.Register(
      {method::kRunRetry,
       Access::kWrite,
       {P{"run_id", T::kInteger, true}, P{"latest", T::kBool, false}, P{"force", T::kBool, false}},
       false,
       bind(&RpcMethods::RunRetry)});
  d.Register({method::kRunWait,
              Access::kRead,
              {P{"run_id", T::kInteger, true}},
              false,
              bind(&RpcMethods::RunWait)});
  d.Register({method::kRunLogs,
              Access::kRead,
              {P{"run_id", T::kInteger, true}, P{"task", T::kString, false},
               P{"after", T::kInteger, false}, P{"limit", T::kInteger, false},
               P{"follow", T::kBool, false}},
              false,
              bind(&RpcMethods::RunLogs)});
  d.Register({method::kStorePrune,
              Access::kWrite,
              {P{"dry_run", T::kBool, false}},
              false,
              bind(&RpcMethods::StorePrune)});
  d.Register({method::kNotifyList,
              Access::kRead,
              {P{"run_id", T::kInteger, false}, P{"limit", T::kInteger, false}},
              false,
              bind(&RpcMethods::NotifyList)});
  d.Register({method::kNotifyTest,
              Access::kWrite,
              {P{"workflow", T::kString, true}},
              false,
              bind(&RpcMethods::NotifyTest)});
}

namespace {

// The bytes of the database on disk: the file and its write-ahead log.
std::uint64_t DatabaseBytes(const std::string& state_dir) {
  std::uint64_t total = 0;
  for (const char* name : {"/picoflow.db", "/picoflow.db-wal"}) {
    struct stat st {};
    if (::stat((state_dir + name).c_str(), &st) == 0)
      total += static_cast<std::uint64_t>(st.st_size);
  }
  return total;
}

}  // namespace

// daemon.status: version, uptime, counts, the database's size, workflow files that failed
// to load, and how task processes are contained.
void RpcMethods::DaemonStatus(RpcCall& call) {
  const auto uptime = std::chrono::steady_clock::now() - host_.facts().started_at;
  json broken = json::array();
  for (const auto& [name, entry] : host_.registry().entries()) {
    if (entry.errors.empty()) continue;
    broken.push_back({{"workflow", name},
                      {"file", entry.broken_file},
                      {"errors", DiagnosticsJson(entry.errors)}});
  }
  for (const Diagnostic& d : host_.load_errors()) {
    broken.push_back({{"workflow", nullptr}, {"file", d.file}, {"errors", DiagnosticsJson({d})}});
  }
  json reply = {
      {"version", PICOFLOW_VERSION},
      {"protocol", kProtocolVersion},
      {"pid", getpid()},
      {"uptime_ms", std::chrono::duration_cast<std::chrono::milliseconds>(uptime).count()},
      {"socket", host_.facts().socket_path},
      {"state_dir", host_.facts().state_dir},
      {"workflows_dir", host_.facts().workflows_dir},
      {"workflows", host_.registry().entries().size()},
      {"active_runs", host_.runs().active()},
      {"active_tasks", host_.runs().ActiveAttempts()},
      {"connections", host_.server() ? host_.server()->connection_count() : 0},
      {"load_errors", std::move(broken)},
      {"store", StoreHealthJson(host_.store().Health())},
      {"db_bytes", DatabaseBytes(host_.facts().state_dir)},
      {"containment",
       {{"mode", host_.facts().containment}, {"reason", host_.facts().containment_reason}}},
  };
  // Only with picoflowd.yaml `mqtt:` (docs/fleet.md).
  if (json mqtt = host_.MqttState(); !mqtt.is_null()) reply["mqtt"] = std::move(mqtt);
  call.Reply(std::move(reply));
}

// daemon.reload: re-reads the workflows directory and the files given at start.
void RpcMethods::DaemonReload(RpcCall& call) {
  ReloadReport report = host_.Reload();
  call.Reply({{"added", report.added},
              {"replaced", report.replaced},
              {"removed", report.removed},
              {"unchanged", report.unchanged},
              {"errors", DiagnosticsJson(report.errors)}});
}

// store.prune: applies retention now (or, with dry_run, counts what it would delete).
void RpcMethods::StorePrune(RpcCall& call) {
  const bool dry_run = call.Param<bool>("dry_run", false);
  auto counts = host_.PruneNow(dry_run);
  if (!counts.ok()) {
    call.Fail(counts.error());
    return;
  }
  call.Reply(
      {{"dry_run", dry_run}, {"runs", counts->runs}, {"output_bytes", counts->output_bytes}});
}

// notify.list: the delivery attempts of notifications, of one run or all, newest first.
void RpcMethods::NotifyList(RpcCall& call) {
  std::optional<std::int64_t> run_id;
  if (call.params().contains("run_id")) run_id = call.Param<std::int64_t>("run_id");
  const int limit = call.Param<int>("limit", 100);
  if (limit < 1 || limit > 10000) throw ParamError("param 'limit' must be 1..10000");
  auto deliveries = host_.store().ListDeliveries(run_id, limit);
  if (!deliveries.ok()) {
    call.Fail(deliveries.error());
    return;
  }
  if (run_id && deliveries->empty()) {  // none, or no such run?
    if (auto run = host_.store().GetRun(*run_id); !run.ok()) {
      call.Fail(run.error());
      return;
    }
  }
  json list = json::array();
  for (const DeliveryRecord& d : *deliveries) {
    list.push_back({{"run_id", d.run_id ? json(*d.run_id) : json(nullptr)},
                    {"workflow", d.workflow},
                    {"target", d.target},
                    {"kind", d.kind},
                    {"event", d.event},
                    {"attempt", d.attempt},
                    {"outcome", d.sent ? "sent" : "failed"},
                    {"error", d.error},
                    {"at", TimeString(d.at)}});
  }
  call.Reply({{"notifications", std::move(list)}});
}

// notify.test: sends a test notification to every target of a workflow; answers with each outcome.
void RpcMethods::NotifyTest(RpcCall& call) {
  const std::string workflow = call.Param<std::string>("workflow");
  auto held = call.Hold();
  Status s = host_.NotifyTest(workflow, [held](std::vector<NotifyTestOutcome> outcomes) {
    json list = json::array();
    for (const NotifyTestOutcome& o : outcomes) {
      list.push_back(
          {{"target", o.target}, {"kind", o.kind}, {"sent", o.sent}, {"error", o.error}});
    }
    held->Reply({{"targets", std::move(list)}});
  });
  if (!s.ok()) held->Fail(s.error());
}

// workflow.validate: checks YAML source without loading it; errors are data.
void RpcMethods::WorkflowValidate(RpcCall& call) {
  const std::string source = call.Param<std::string>("source");
  const std::string file = call.Param<std::string>("file", "<source>");
  LoadedWorkflow loaded = LoadWorkflowText(source, file, PathBase{BaseDirOf(file), ""});
  json out = {{"valid", loaded.ok()},
              {"diagnostics", DiagnosticsJson(loaded.diagnostics)},
              {"warnings", DiagnosticsJson(loaded.warnings)}};
  if (loaded.ok()) out["workflow"] = WorkflowShapeJson(*loaded.workflow, *loaded.dag);
  call.Reply(std::move(out));
}

// workflow.submit: validates, stores and registers a workflow (replacing its
// earlier version; runs in progress keep the version they started with).
void RpcMethods::WorkflowSubmit(RpcCall& call) {
  const std::string source = call.Param<std::string>("source");
  const std::string file = call.Param<std::string>("file", "<source>");
  CompiledWorkflow compiled = CompileWorkflow(source, file, kSubmittedOrigin, BaseDirOf(file));
  if (!compiled.version) {
    call.Fail(InvalidWorkflowError(InvalidWorkflowMessage(file, compiled.diagnostics.size()),
                                   compiled.diagnostics));
    return;
  }
  const Workflow& w = *compiled.version->workflow;
  json shape = WorkflowShapeJson(w, *compiled.version->dag);
  auto replaced = host_.Submit(compiled.version);
  if (!replaced.ok()) {
    call.Fail(replaced.error());
    return;
  }
  shape["replaced"] = *replaced;
  shape["warnings"] = DiagnosticsJson(compiled.warnings);
  call.Reply(std::move(shape));
}

// workflow.list: every workflow with its latest run and load errors; with
// `unloaded`, also the names known only from their stored runs (one-off
// runs, removed workflows), marked `loaded: false`.
void RpcMethods::WorkflowList(RpcCall& call) {
  std::map<std::string, json> items;
  for (const auto& [name, entry] : host_.registry().entries()) {
    json item = {{"name", name},
                 {"loaded", entry.version != nullptr},
                 {"paused", entry.paused},
                 {"errors", DiagnosticsJson(entry.errors)}};
    if (entry.version) {
      const Workflow& w = *entry.version->workflow;
      item["description"] = w.description;
      item["origin"] = entry.version->origin;
      item["tasks"] = w.tasks.size() - w.HandlerCount();
      item["schedule"] = w.schedule;
      item["timezone"] = w.timezone;
      auto next = host_.scheduler().NextFire(name);
      item["next_fire"] = next ? json(TimeString(TimePoint(*next))) : json(nullptr);
      item["skipped_fires"] = host_.scheduler().SkippedCount(name);
      // The kinds of its triggers, in order: ["file", "webhook"].
      json kinds = json::array();
      for (const WorkflowTrigger& t : w.triggers) {
        kinds.push_back(kTriggerKindNames[static_cast<std::size_t>(t.kind)]);
      }
      item["triggers"] = std::move(kinds);
    }
    items.emplace(name, std::move(item));
  }
  if (call.Param<bool>("unloaded", false)) {
    // One index seek per name of history (Store::NextRunWorkflow).
    std::string name;
    for (;;) {
      auto next = host_.store().NextRunWorkflow(name);
      if (!next.ok()) {
        call.Fail(next.error());
        return;
      }
      if (!next->has_value()) break;
      name = **next;
      if (items.count(name) == 0) {
        items.emplace(
            name,
            json{{"name", name}, {"loaded", false}, {"paused", false}, {"errors", json::array()}});
      }
    }
  }
  json list = json::array();
  for (auto& [name, item] : items) {
    item["running"] = host_.runs().CountRunning(name);
    auto latest = host_.store().LatestRun(name);
    item["last_run"] = latest.ok() && latest->has_value() ? RunJson(**latest) : json(nullptr);
    list.push_back(std::move(item));
  }
  call.Reply({{"workflows", std::move(list)}});
}

// workflow.get: one workflow's definition, source included.
void RpcMethods::WorkflowGet(RpcCall& call) {
  const std::string name = call.Param<std::string>("name");
  const auto* entry = host_.registry().Find(name);
  if (entry == nullptr || entry->version == nullptr) {
    call.Fail(NoWorkflow(name));
    return;
  }
  call.ReplySerialized(WorkflowGetResult(entry->version, entry->paused));
}

std::shared_ptr<const std::string> RpcMethods::WorkflowGetResult(
    const std::shared_ptr<const WorkflowVersion>& version, bool paused) {
  // `paused` is the one field that is not the version's own.
  const std::uint32_t variant = paused ? 1 : 0;
  if (auto cached = workflow_get_cache_.Find(version, variant)) return cached;
  const WorkflowVersion& v = *version;
  json out = WorkflowShapeJson(*v.workflow, *v.dag);
  json tasks = json::array();
  for (const Task& t : v.workflow->tasks) {
    // "handler": which of `handlers:` it is; absent for the tasks of `tasks:`.
    tasks.push_back({{"name", t.name},
                     {"type", TaskTypeName(t.type)},
                     {"depends_on", t.depends_on},
                     {"retry", t.retry},
                     {"timeout_s", t.timeout.count()},
                     {"continue_on_failure", t.continue_on_failure},
                     {"max_interruptions", t.max_interruptions},
                     {"trigger", TriggerRuleName(t.trigger)},
                     {"retry_on_exit_codes", t.retry_on_exit_codes},
                     {"retry_jitter", t.retry_jitter}});
    if (t.handler != Handler::kNone) {
      tasks.back()["handler"] = kHandlerNames[static_cast<std::size_t>(t.handler)];
    }
  }
  out["tasks"] = std::move(tasks);
  out["triggers"] = TriggersJson(v.workflow->triggers);
  out["origin"] = v.origin;
  out["dir"] = v.base_dir;
  out["paused"] = paused;
  out["source"] = v.source;
  return workflow_get_cache_.Put(version, variant, DumpCompact(out));
}

// workflow.remove: forgets a workflow; its history and live runs stay.
void RpcMethods::WorkflowRemove(RpcCall& call) {
  const std::string name = call.Param<std::string>("name");
  if (Status s = host_.Remove(name); !s.ok()) {
    call.Fail(s.error().code == ErrorCode::kNotFound ? NoWorkflow(name) : s.error());
    return;
  }
  call.Reply({{"removed", name}});
}

// workflow.pause / workflow.resume: stops or restarts a workflow's scheduled
// fires (kept across restarts); manual runs are still allowed. `changed` is
// false if it already was in that state.
void RpcMethods::WorkflowPause(RpcCall& call, bool paused) {
  const std::string name = call.Param<std::string>("name");
  const auto* entry = host_.registry().Find(name);
  if (entry == nullptr) {
    call.Fail(NoWorkflow(name));
    return;
  }
  const bool changed = entry->paused != paused;
  if (Status s = host_.SetPaused(name, paused); !s.ok()) {
    call.Fail(s.error().code == ErrorCode::kNotFound ? NoWorkflow(name) : s.error());
    return;
  }
  auto next = host_.scheduler().NextFire(name);
  call.Reply({{"workflow", name},
              {"paused", paused},
              {"changed", changed},
              {"next_fire", next ? json(TimeString(TimePoint(*next))) : json(nullptr)}});
}

// workflow.next: the next `count` (default 5, at most 1000) fire times.
void RpcMethods::WorkflowNext(RpcCall& call) {
  const std::string name = call.Param<std::string>("name");
  const int count = call.Param<int>("count", 5);
  if (count < 1 || count > 1000) throw ParamError("param 'count' must be 1..1000");
  const auto* entry = host_.registry().Find(name);
  if (entry == nullptr || entry->version == nullptr) {
    call.Fail(NoWorkflow(name));
    return;
  }
  json fires = json::array();
  for (SysSeconds t : host_.scheduler().Upcoming(name, count)) {
    fires.push_back(TimeString(TimePoint(t)));
  }
  const Workflow& w = *entry->version->workflow;
  call.Reply({{"workflow", name},
              {"schedule", w.schedule},
              {"timezone", w.timezone},
              {"paused", entry->paused},
              {"fires", std::move(fires)}});
}

// run.start: starts a run of a submitted workflow, or a one-off run of source;
// with follow, streams it like run.logs follow and answers when it ends.
void RpcMethods::RunStart(RpcCall& call) {
  const std::string name = call.Param<std::string>("workflow", "");
  const std::string source = call.Param<std::string>("source", "");
  if (name.empty() == source.empty()) {
    throw ParamError("give exactly one of 'workflow' (a submitted name) or 'source' (YAML)");
  }
  std::shared_ptr<const WorkflowVersion> version;
  if (!name.empty()) {
    const auto* entry = host_.registry().Find(name);
    if (entry == nullptr || entry->version == nullptr) {
      call.Fail(NoWorkflow(name, "submit it first"));
      return;
    }
    version = entry->version;
  } else {
    const std::string file = call.Param<std::string>("file", "<source>");
    CompiledWorkflow compiled = CompileWorkflow(source, file, "one-off", BaseDirOf(file));
    if (!compiled.version) {
      call.Fail(InvalidWorkflowError(InvalidWorkflowMessage(file, compiled.diagnostics.size()),
                                     compiled.diagnostics));
      return;
    }
    version = compiled.version;
  }
  const std::string workflow = version->workflow->name;
  RunRequest request;
  request.trigger = RunTrigger::kRpc;
  request.params = ParamsOf(call.Param<json>("params", json::object()));
  request.only = SelectionOf(call);
  // Params and a selection that do not fit are said before anything about
  // the limit.
  if (Status checked = RunManager::Check(*version, request); !checked.ok()) {
    call.Fail(Err(ErrorCode::kInvalid, "run.start: " + checked.error().message));
    return;
  }
  // A run started by hand is held back only by max_active_runs, not by the
  // overlap policy of fires (docs/scheduling.md): the caller hears of the
  // runs it joins or waits behind.
  const std::vector<std::int64_t> also_running = host_.runs().RunningIds(workflow);
  const AdmissionDecision admit = Admit(*version->workflow, also_running, call);
  if (admit.action == Admission::kRefuse) {
    call.Fail(LimitReached(call, workflow, also_running, admit, "picoflowctl run --force"));
    return;
  }
  const bool queued = admit.action == Admission::kQueue;
  const std::string reason = queued ? "queued: " + admit.why : "";
  // With follow, the call subscribes before the first task starts, so no
  // event is missed; it announces the id (and a queued run again when it
  // starts), streams, and answers at the end.
  if (call.Param<bool>("follow", false)) {
    auto held = call.Hold();
    request.on_created = [this, held, workflow, also_running, queued, reason](std::int64_t run_id) {
      json params = {{"run_id", run_id},
                     {"workflow", workflow},
                     {"tasks", TasksToRun(run_id)},
                     {"also_running", also_running}};
      if (queued) params["reason"] = reason;
      held->Notify(queued ? notification::kRunQueued : notification::kRunStarted, params);
      Follow(held, run_id, "");
    };
    request.on_started = [this, weak = std::weak_ptr<RpcCall>(held),
                          workflow](std::int64_t run_id) {
      if (auto call = weak.lock()) {
        call->Notify(notification::kRunStarted,
                     {{"run_id", run_id},
                      {"workflow", workflow},
                      {"tasks", TasksToRun(run_id)},
                      {"also_running", host_.runs().RunningIds(workflow)}});
      }
    };
  }
  const bool follow = static_cast<bool>(request.on_created);
  auto id = queued ? host_.runs().QueueRun(std::move(version), request, reason)
                   : host_.runs().StartRun(std::move(version), request);
  if (!id.ok()) {
    Error error = id.error();
    if (error.code == ErrorCode::kInvalid) error.message = "run.start: " + error.message;
    call.Fail(error);
    return;
  }
  if (!follow) {
    json result = {{"run_id", *id}, {"workflow", workflow}, {"also_running", also_running}};
    if (queued) {
      result["queued"] = true;
      result["reason"] = reason;
    }
    call.Reply(std::move(result));
  }
}

int RpcMethods::TasksToRun(std::int64_t run_id) {
  // Not those it starts with as ended (taken as done or left out by `only`).
  int tasks = 0;
  if (const RunController* c = host_.runs().Find(run_id)) {
    for (int i = 0; i < c->run().dag().size(); ++i) {
      tasks += IsTerminal(c->run().task_status(i)) ? 0 : 1;
    }
  }
  return tasks;
}

AdmissionDecision RpcMethods::Admit(const Workflow& workflow,
                                    const std::vector<std::int64_t>& running, RpcCall& call) {
  const std::size_t waiting =
      host_.runs().WaitingIds(workflow.name).size() + host_.scheduler().QueuedCount(workflow.name);
  return AdmitManualRun(LimitsFor(host_.registry(), workflow), running, waiting,
                        call.Param<bool>("force", false));
}

RpcError RpcMethods::LimitReached(const RpcCall& call, const std::string& workflow,
                                  const std::vector<std::int64_t>& running,
                                  const AdmissionDecision& refused, const std::string& override) {
  json data = {{"max_active_runs", refused.limit}, {"running", running}};
  return RpcErr(RpcCode::kConflict,
                call.method() + ": workflow '" + workflow + "': " + refused.why +
                    " and its overlap is skip: not started; start it anyway with force (" +
                    override + "), or again once a run has ended",
                std::move(data));
}

// run.retry: a new run of an ended run's workflow that takes the tasks that
// succeeded in it as done (PlanRetry) and runs the rest.
void RpcMethods::RunRetry(RpcCall& call) {
  const std::int64_t run_id = call.Param<std::int64_t>("run_id");
  const bool latest = call.Param<bool>("latest", false);
  auto original = host_.store().GetRun(run_id);
  if (!original.ok()) {
    call.Fail(original.error());
    return;
  }
  const RunRecord& run = original->run;
  const std::string what = "run " + std::to_string(run_id);
  if (!IsFinal(run.status)) {
    call.Fail(Err(ErrorCode::kConflict, what + " is still " + RunStatusName(run.status) +
                                            ": retry it once it has ended (or cancel it)"));
    return;
  }
  if (run.status == RunStatus::kSucceeded) {
    call.Fail(Err(ErrorCode::kConflict, what + " succeeded: there is nothing to retry"));
    return;
  }
  // The version the run ran, unless the workflow changed since and the
  // caller asked for the current one.
  auto stored = host_.store().GetVersion(run.version_id);
  if (!stored.ok()) {
    call.Fail(stored.error());
    return;
  }
  CompiledWorkflow compiled =
      CompileWorkflow(stored->first, run.workflow, "retried", stored->second);
  if (!compiled.version) {
    call.Fail(Err(ErrorCode::kInvalid, "run.retry: the workflow " + what +
                                           " ran no longer loads (a newer picoflowd's rules?)"));
    return;
  }
  std::shared_ptr<const WorkflowVersion> version = compiled.version;
  const auto* entry = host_.registry().Find(run.workflow);
  if (entry != nullptr && entry->version != nullptr &&
      (entry->version->source != stored->first || entry->version->base_dir != stored->second)) {
    if (!latest) {
      call.Fail(Err(ErrorCode::kConflict,
                    "workflow '" + run.workflow + "' changed since " + what + " (" +
                        DescribeChange(*version->workflow, *entry->version->workflow) +
                        "): retry it with `latest` (picoflowctl retry --latest) to run the "
                        "current version, or start a new run"));
      return;
    }
    version = entry->version;
  }
  RunRequest request;
  request.trigger = RunTrigger::kRpc;
  request.params = run.params;
  request.retry_of = run_id;
  request.reuse = PlanRetry(*version->workflow, *version->dag, *original);
  request.only = run.only;    // what it did not select stays so
  request.event = run.event;  // a file-triggered run is retried on its file
  const std::string workflow = version->workflow->name;
  const std::vector<std::int64_t> also_running = host_.runs().RunningIds(workflow);
  // A retry is a run started by hand: max_active_runs holds it back too.
  const AdmissionDecision admit = Admit(*version->workflow, also_running, call);
  if (admit.action == Admission::kRefuse) {
    call.Fail(LimitReached(call, workflow, also_running, admit, "picoflowctl retry --force"));
    return;
  }
  const bool queued = admit.action == Admission::kQueue;
  const std::string reason = queued ? "queued: " + admit.why : "";
  auto id = queued ? host_.runs().QueueRun(std::move(version), request, reason)
                   : host_.runs().StartRun(std::move(version), request);
  if (!id.ok()) {
    Error error = id.error();
    if (error.code == ErrorCode::kInvalid) error.message = "run.retry: " + error.message;
    call.Fail(error);
    return;
  }
  // What it took as done: what PlanRetry reused, and with `only` what the
  // selection needs (the controller lives until the next loop turn).
  json reused = json::array();
  if (const RunController* c = host_.runs().Find(*id)) {
    for (int i = 0; i < c->run().dag().size(); ++i) {
      if (c->run().task_status(i) == TaskStatus::kReused) {
        reused.push_back(c->run().workflow().tasks[i].name);
      }
    }
  }
  json result = {{"run_id", *id},
                 {"workflow", workflow},
                 {"retry_of", run_id},
                 {"reused", std::move(reused)},
                 {"also_running", also_running}};
  if (queued) {
    result["queued"] = true;
    result["reason"] = reason;
  }
  call.Reply(std::move(result));
}

// run.get: one run with its tasks and attempts.
void RpcMethods::RunGet(RpcCall& call) {
  auto detail = host_.store().GetRun(call.Param<std::int64_t>("run_id"));
  if (!detail.ok()) {
    call.Fail(detail.error());
    return;
  }
  call.Reply(RunDetailJson(*detail));
}

// run.list: recent runs, newest first, of one workflow or all; paged by id.
void RpcMethods::RunList(RpcCall& call) {
  std::optional<std::string> workflow;
  if (std::string w = call.Param<std::string>("workflow", ""); !w.empty()) workflow = w;
  const int limit = call.Param<int>("limit", 20);
  if (limit < 1 || limit > 1000) throw ParamError("param 'limit' must be 1..1000");
  std::optional<std::int64_t> before;
  if (auto b = call.Param<std::int64_t>("before", 0); b > 0) before = b;
  auto runs = host_.store().ListRuns(workflow, limit, before);
  if (!runs.ok()) {
    call.Fail(runs.error());
    return;
  }
  json list = json::array();
  for (const RunRecord& r : *runs) list.push_back(RunJson(r));
  call.Reply({{"runs", std::move(list)}});
}

// run.cancel: cancels a live run (TERM, grace, KILL to its tasks' groups).
// A run that does not exist and one that has ended are both -32001; the
// message tells them apart ("no run 42", "run 4 is not running (...)").
void RpcMethods::RunCancel(RpcCall& call) {
  const std::string workflow = call.Param<std::string>("workflow", "");
  if (call.Param<json>("run_id", nullptr).is_null() == workflow.empty()) {
    throw ParamError("give exactly one of 'run_id' or 'workflow'");
  }
  if (!workflow.empty()) {
    CancelWorkflowRuns(call, workflow);
    return;
  }
  const auto run_id = call.Param<std::int64_t>("run_id");
  const RunController* live = host_.runs().Find(run_id);
  if (live == nullptr || live->finished()) {
    auto detail = host_.store().GetRun(run_id);
    if (!detail.ok()) {
      call.Fail(detail.error());
      return;
    }
    call.Fail(Err(ErrorCode::kNotFound, "run " + std::to_string(run_id) +
                                            " is not running (its status is " +
                                            RunStatusName(detail->run.status) + ")"));
    return;
  }
  if (Status s = host_.runs().Cancel(run_id); !s.ok()) {
    call.Fail(s.error());
    return;
  }
  call.Reply({{"run_id", run_id}, {"cancelling", true}});
}

// run.cancel with `workflow`: cancels every run of it in progress, whether
// the workflow is loaded or not (a one-off run is cancelled by its name too).
void RpcMethods::CancelWorkflowRuns(RpcCall& call, const std::string& workflow) {
  // The waiting runs first: none takes the place of a run cancelled before it.
  std::vector<std::int64_t> ids = host_.runs().WaitingIds(workflow);
  for (std::int64_t id : host_.runs().RunningIds(workflow)) ids.push_back(id);
  if (ids.empty()) {
    const bool known = host_.registry().Find(workflow) != nullptr;
    auto latest =
        known ? Result<std::optional<RunRecord>>(std::nullopt) : host_.store().LatestRun(workflow);
    if (!known && (!latest.ok() || !latest->has_value())) {
      call.Fail(NoWorkflow(workflow));
      return;
    }
    call.Fail(Err(ErrorCode::kNotFound, "workflow '" + workflow + "' has no run in progress"));
    return;
  }
  for (std::int64_t id : ids) {
    if (Status s = host_.runs().Cancel(id); !s.ok()) {
      call.Fail(s.error());
      return;
    }
  }
  std::sort(ids.begin(), ids.end());
  call.Reply({{"workflow", workflow}, {"run_ids", ids}, {"cancelling", true}});
}

// run.wait: answers with the run (as run.get) once it has ended.
void RpcMethods::RunWait(RpcCall& call) {
  const auto run_id = call.Param<std::int64_t>("run_id");
  const RunController* live = host_.runs().Find(run_id);
  if (live == nullptr || live->finished()) {
    RunGet(call);
    return;
  }
  auto held = call.Hold();
  auto token = std::make_shared<std::uint64_t>(0);
  *token = host_.feed().Subscribe({run_id, nullptr, nullptr, [this, held, token](RunStatus) {
                                     host_.feed().Unsubscribe(*token);
                                     RunGet(*held);
                                   }});
  held->OnClose([this, token] { host_.feed().Unsubscribe(*token); });
}

// run.logs: stored output after a cursor; with follow, streams the rest as
// `run.output` / `run.event` notifications and answers when the run ends.
void RpcMethods::RunLogs(RpcCall& call) {
  const auto run_id = call.Param<std::int64_t>("run_id");
  const std::string task = call.Param<std::string>("task", "");
  const bool follow = call.Param<bool>("follow", false);
  const int limit = call.Param<int>("limit", 256);
  if (limit < 1 || limit > 1000) throw ParamError("param 'limit' must be 1..1000");
  auto detail = host_.store().GetRun(run_id);
  if (!detail.ok()) {
    call.Fail(detail.error());
    return;
  }
  // Make the store complete up to now; live output after this arrives
  // through the feed, in the same loop turn order, with no gap.
  RunController* live = host_.runs().FindMutable(run_id);
  if (live != nullptr) live->FlushOutput();

  OutputQuery query;
  query.run_id = run_id;
  if (!task.empty()) query.task = task;
  query.after_seq = call.Param<std::int64_t>("after", 0);
  query.max_chunks = limit;
  if (!follow) {
    auto page = host_.store().ReadOutput(query);
    if (!page.ok()) {
      call.Fail(page.error());
      return;
    }
    // A page of up to 1000 chunks of up to ~128 KiB each would not fit one
    // line: stop at half the line limit (at least one chunk, which always
    // fits); the client pages on from `next`.
    json chunks = json::array();
    std::int64_t next = query.after_seq;
    std::size_t page_bytes = 0;
    for (const OutputChunk& c : *page) {
      json chunk = ChunkJson(c);
      const std::size_t size =
          chunk.dump(-1, ' ', false, json::error_handler_t::replace).size() + 1;
      if (!chunks.empty() && page_bytes + size > kMaxLineBytes / 2) break;
      page_bytes += size;
      chunks.push_back(std::move(chunk));
      next = c.seq;
    }
    call.Reply({{"run_id", run_id},
                {"chunks", std::move(chunks)},
                {"next", next},
                {"live", live != nullptr && !live->finished()}});
    return;
  }
  // Follow: replay what is stored after the cursor, then stream.
  for (;;) {
    auto page = host_.store().ReadOutput(query);
    if (!page.ok()) {
      call.Fail(page.error());
      return;
    }
    if (page->empty()) break;
    for (const OutputChunk& c : *page) {
      json j = ChunkJson(c);
      j["run_id"] = run_id;
      call.Notify(notification::kRunOutput, j);
      query.after_seq = c.seq;
    }
  }
  if (live == nullptr || live->finished()) {
    call.Reply({{"run_id", run_id}, {"status", RunStatusName(detail->run.status)}});
    return;
  }
  // Attempts already running were announced before this call: say so now,
  // so a follower sees every task it will get output from.
  for (const AttemptRecord& a : detail->attempts) {
    if (a.status || (!task.empty() && a.task != task)) continue;
    TaskEvent started;
    started.run_id = run_id;
    started.workflow = detail->run.workflow;
    started.task = a.task;
    started.attempt = a.number;
    started.event = TaskEventKind::kStarted;
    started.status = TaskStatusName(TaskStatus::kRunning);
    call.Notify(notification::kRunEvent, TaskEventJson(started));
  }
  Follow(call.Hold(), run_id, task);
}

Error RpcMethods::NoWorkflow(const std::string& name, const std::string& otherwise) {
  const auto* entry = host_.registry().Find(name);
  if (entry != nullptr && entry->version == nullptr) {
    return Err(ErrorCode::kNotFound, "workflow '" + name + "' is not loaded: its file " +
                                         entry->broken_file + " has errors (see daemon.status)");
  }
  std::vector<std::string> names;
  for (const auto& [known, _] : host_.registry().entries()) names.push_back(known);
  std::string after;
  for (int i = 0; i < kMaxSuggestedHistoryNames; ++i) {
    auto next = host_.store().NextRunWorkflow(after);
    if (!next.ok() || !next->has_value()) break;
    after = **next;
    if (after == name) {
      return Err(ErrorCode::kNotFound,
                 "workflow '" + name +
                     "' is not loaded (only its runs are stored: it ran one-off or was removed)");
    }
    names.push_back(after);
  }
  std::vector<std::string_view> candidates(names.begin(), names.end());
  std::string hint = DidYouMean(ClosestMatch(name, candidates));
  if (hint.empty() && !otherwise.empty()) hint = " (" + otherwise + ")";
  return Err(ErrorCode::kNotFound, "no workflow '" + name + "'" + hint);
}

void RpcMethods::Follow(const std::shared_ptr<RpcCall>& held, std::int64_t run_id,
                        const std::string& task) {
  RunFeed::Subscriber s;
  s.run_id = run_id;
  s.on_event = [held, task](const TaskEvent& e) {
    if (task.empty() || e.task == task) held->Notify(notification::kRunEvent, TaskEventJson(e));
  };
  s.on_output = [held, task](const OutputEvent& e) {
    if (!task.empty() && e.task != task) return;
    held->Notify(notification::kRunOutput, OutputEventJson(e));
  };
  auto token = std::make_shared<std::uint64_t>(0);
  s.on_finished = [this, held, run_id, token](RunStatus status) {
    host_.feed().Unsubscribe(*token);
    held->Reply({{"run_id", run_id}, {"status", RunStatusName(status)}});
  };
  *token = host_.feed().Subscribe(std::move(s));
  held->OnClose([this, token] { host_.feed().Unsubscribe(*token); });
}

}  // namespace picoflow
