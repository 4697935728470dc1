// The Daemon's event side (docs/triggers.md): keeps the file watches in step
// with the registry, serves POST /hooks/<workflow>, and starts the runs that
// events ask for under their workflow's overlap and max_active_runs.

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/private_file.h"
#include "picoflowd/daemon.h"
#include "picoflowd/engine/run_admission.h"
#include "picoflowd/engine/run_manager.h"
#include "picoflowd/http/http_api.h"
#include "picoflowd/http/http_server.h"
#include "picoflowd/http/web_token.h"
#include "picoflowd/notifier.h"
#include "picoflowd/sched/file_triggers.h"
#include "picoflowd/store/group_commit.h"
#include "picoflowd/store/store.h"
#include "picoflowd/util/logging.h"

namespace picoflow {
namespace {

using json = nlohmann::json;

// Runs of one workflow that may wait for a place at once; an event past
// them is recorded skipped (docs/triggers.md, "Overlap").
constexpr std::size_t kMaxWaitingEvents = 1000;

HttpResponse HookError(int status, const std::string& message) {
  return JsonResponse(status, json{{"error", message}});
}

}  // namespace

void Daemon::SyncTriggers(const std::string& name) {
  if (stopping_) return;  // the watches are closed; the fleet is told of the runs' ends only
  SyncFleet();
  const auto* entry = registry_.Find(name);
  std::vector<FileTrigger> files;
  bool mqtt = false;
  if (entry != nullptr && entry->version) {
    for (const WorkflowTrigger& t : entry->version->workflow->triggers) {
      if (t.kind == TriggerKind::kFile) files.push_back(t.file);
      mqtt = mqtt || t.kind == TriggerKind::kMqtt;
    }
  }
  if (mqtt && !fleet_) {
    LogFields f;
    f.event = "trigger.error";
    f.workflow = name;
    LogWarn(f,
            "its mqtt triggers start nothing: picoflowd.yaml has no mqtt: section "
            "(docs/fleet.md)");
  }
  if (files.empty() && !file_triggers_) return;  // nothing of it until a workflow has one
  if (!file_triggers_) {
    file_triggers_ = std::make_unique<FileTriggers>(
        &loop_,
        [this](const std::string& workflow, const std::string& file) {
          TriggerEvent event;
          event.file = file;
          // StartEventRun logs what it did; a paused workflow's files are dropped.
          (void)StartEventRun(workflow, RunTrigger::kFile, std::move(event));
        },
        [](const std::string& workflow, const std::string& message) {
          LogFields f;
          f.event = "trigger.error";
          f.workflow = workflow;
          LogWarn(f, message);
        });
  }
  if (Status s = file_triggers_->Set(name, files); !s.ok()) {
    LogFields f;
    f.event = "trigger.error";
    f.workflow = name;
    LogError(f, "file trigger: " + s.error().message);
  }
}

Result<EventRun> Daemon::StartEventRun(const std::string& workflow, RunTrigger trigger,
                                       TriggerEvent event) {
  LogFields f;
  f.event = "trigger.run";
  f.workflow = workflow;
  const std::string what = std::string(RunTriggerName(trigger)) +
                           (event.file.empty() ? "" : " " + event.file) +
                           (event.topic.empty() ? "" : " on " + event.topic);
  // Every outcome is logged here, so that callers need not.
  const auto fail = [&](Error error) -> Result<EventRun> {
    if (error.code == ErrorCode::kConflict) {
      LogInfo(f, what + " ignored: " + error.message);
    } else {
      LogError(f, what + " not started: " + error.message);
    }
    return error;
  };
  const auto* entry = registry_.Find(workflow);
  if (entry == nullptr || !entry->version) {
    return fail(Err(ErrorCode::kNotFound, "no workflow '" + workflow + "'"));
  }
  if (stopping_) return fail(Err(ErrorCode::kUnavailable, "the daemon is stopping"));
  if (entry->paused) {
    return fail(Err(ErrorCode::kConflict, "workflow '" + workflow + "' is paused"));
  }
  RunRequest request;
  request.trigger = trigger;
  request.event = std::move(event);
  const std::vector<std::int64_t> running = runs_->RunningIds(workflow);
  // What waits goes first: runs queued (by hand, by events) and queued fires.
  const std::size_t waiting =
      runs_->WaitingIds(workflow).size() + (scheduler_ ? scheduler_->QueuedCount(workflow) : 0);
  AdmissionDecision admit =
      AdmitEventRun(LimitsFor(registry_, *entry->version->workflow), running, waiting);
  if (admit.action == Admission::kQueue && waiting >= kMaxWaitingEvents) {
    admit.action = Admission::kRefuse;
    admit.why = std::to_string(kMaxWaitingEvents) + " runs wait already";
  }
  EventRun out;
  switch (admit.action) {
    case Admission::kStart: {
      auto id = runs_->StartRun(entry->version, request);
      if (!id.ok()) return fail(id.error());
      out.run_id = *id;
      break;
    }
    case Admission::kQueue: {
      auto id = runs_->QueueRun(entry->version, request, "queued: " + admit.why);
      if (!id.ok()) return fail(id.error());
      out.run_id = *id;
      out.queued = true;
      out.reason = admit.why;
      break;
    }
    case Admission::kRefuse: {
      // Recorded, so that the event is not lost without a trace.
      NewRun record;
      record.workflow = workflow;
      record.source = entry->version->source;
      record.base_dir = entry->version->base_dir;
      record.trigger = trigger;
      record.event = request.event;
      record.status = RunStatus::kSkipped;
      record.created_at = std::chrono::system_clock::now();
      record.reason = admit.why;
      auto id = store_->CreateRun(record);
      if (!id.ok()) return fail(id.error());
      out.run_id = *id;
      out.skipped = true;
      out.reason = admit.why;
      if (notify_) notify_->OnSkippedFire(*entry->version->workflow, *id, admit.why);
      break;
    }
  }
  f.run = out.run_id;
  if (out.skipped) {
    LogWarn(f, what + " skipped: " + out.reason);
  } else {
    LogInfo(f, what + (out.queued ? ": run queued (" + admit.why + ")" : ": run started"));
  }
  return out;
}

void Daemon::ServeHook(const std::shared_ptr<HttpExchange>& exchange) {
  const HttpRequest& request = exchange->request();
  const std::string name = request.path.substr(std::string_view(kHookPrefix).size());
  if (request.method != "POST") {
    HttpResponse r = HookError(405, "a webhook is called with POST");
    r.headers.emplace_back("Allow", "POST");
    return exchange->Respond(std::move(r));
  }
  const auto* entry = registry_.Find(name);
  const WorkflowTrigger* hook = nullptr;
  if (entry != nullptr && entry->version) {
    for (const WorkflowTrigger& t : entry->version->workflow->triggers) {
      if (t.kind == TriggerKind::kWebhook) hook = &t;
    }
  }
  if (hook == nullptr) {
    return exchange->Respond(HookError(404, "no workflow '" + name + "' with a webhook trigger"));
  }
  LogFields f;
  f.event = "trigger.webhook";
  f.workflow = name;
  // Read at each call: a token written anew takes effect at once.
  Result<std::string> token = ReadPrivateFile(hook->webhook.token_file);
  if (!token.ok() || token->empty()) {
    LogError(f, "webhook token_file: " +
                    (token.ok() ? hook->webhook.token_file + " is empty" : token.error().message));
    return exchange->Respond(
        HookError(503, "the webhook's token_file cannot be read (the daemon's log says why)"));
  }
  switch (CheckBearer(request, *token)) {
    case TokenCheck::kValid: break;
    case TokenCheck::kOff:  // not reached: the token is not empty
    case TokenCheck::kMissing:
    case TokenCheck::kWrong: {
      LogWarn(f, "webhook call refused: missing or wrong token");
      HttpResponse r = HookError(401, "send the webhook's token: Authorization: Bearer TOKEN");
      r.headers.emplace_back("WWW-Authenticate", "Bearer");
      return exchange->Respond(std::move(r));
    }
  }
  if (request.body.size() > kMaxTriggerPayload) {
    return exchange->Respond(HookError(413, "the body is larger than 64 KiB"));
  }
  if (!request.body.empty() && !json::accept(request.body)) {
    return exchange->Respond(HookError(400, "the body must be JSON (or empty)"));
  }
  TriggerEvent event;
  event.payload = request.body;
  event.source = request.peer;  // who called: recorded with the run
  auto started = StartEventRun(name, RunTrigger::kWebhook, std::move(event));
  group_commit_->CommitNow();  // the answer's run is stored
  if (!started.ok()) {
    const int status = started.error().code == ErrorCode::kConflict ? 409 : 503;
    return exchange->Respond(HookError(status, started.error().message));
  }
  json body = {{"run_id", started->run_id}, {"workflow", name}};
  if (started->skipped) {
    body["error"] = "skipped: " + started->reason;
    return exchange->Respond(JsonResponse(409, body));
  }
  body["queued"] = started->queued;
  exchange->Respond(JsonResponse(202, body));
}

}  // namespace picoflow
