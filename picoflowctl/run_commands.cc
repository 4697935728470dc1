// The commands about runs: run, status, history, logs, cancel. Each turns
// argv into JSON-RPC calls and renders the answers (docs/rpc.md).

#include <sys/stat.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <string_view>

#include "common/run_selection.h"
#include "common/run_status.h"
#include "common/text_escape.h"
#include "common/workflow_fields.h"
#include "common/workflow_load.h"
#include "picoflowctl/command.h"
#include "picoflowctl/render.h"
#include "picoflowctl/rpc_commands.h"
#include "picoflowctl/session.h"
#include "picoflowctl/source_arg.h"
#include "protocol/methods.h"
#include "protocol/progress.h"

namespace picoflow::ctl {
namespace {

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// `run TARGET`: a file if one of that name exists, or if it looks like a
// path (workflow names have no '/', workflow files end in .yaml or .yml);
// else a workflow name.
bool IsFileArg(const std::string& arg) {
  struct stat st {};
  return arg.find('/') != std::string::npos || EndsWith(arg, ".yaml") || EndsWith(arg, ".yml") ||
         (stat(arg.c_str(), &st) == 0 && S_ISREG(st.st_mode));
}

// A skipped run (its `when:` was not met, a fire the overlap policy skipped)
// is not a failure.
int RunExitCode(const json& run) {
  return run["status"] == "succeeded" || run["status"] == "skipped" ? kExitOk : kExitFailed;
}

// A run started by hand is held back only by max_active_runs, not by the
// workflow's overlap policy (docs/scheduling.md, "Manual and scheduled
// runs"): says so when others of it are going.
void WarnAlsoRunning(const std::string& workflow, const json& also_running, bool forced) {
  if (!also_running.is_array() || also_running.empty()) return;
  std::string ids;
  for (const json& id : also_running) ids += (ids.empty() ? "" : ", ") + Str(id);
  std::fprintf(stderr,
               "picoflowctl: warning: workflow '%s' already has %s in progress (%s); this run "
               "goes alongside%s\n",
               workflow.c_str(),
               CountOf(static_cast<std::int64_t>(also_running.size()), "run").c_str(), ids.c_str(),
               forced ? " (--force)"
                      : ": a run started by hand is held back only by the workflow's "
                        "max_active_runs, not by its overlap policy, which applies to its "
                        "scheduled fires");
}

// ": max_active_runs 1 reached (run 12 running); it starts when a run ends",
// from a queued run's reply or its run.queued notification.
std::string QueuedWhy(const json& queued) {
  std::string why = queued.value("reason", std::string());
  if (why.rfind("queued: ", 0) == 0) why.erase(0, 8);
  return ": " + why + "; it starts when a run ends";
}

// "run 14 queued (workflow 'x'): max_active_runs 1 reached (run 12 running);
// it starts when a run ends", `note` after the workflow.
std::string QueuedLine(const json& queued, const std::string& note = "") {
  return "run " + Str(queued["run_id"]) + " queued (workflow '" +
         queued["workflow"].get<std::string>() + "'" + note + ")" + QueuedWhy(queued);
}

// `run --only`: the selection run.start gets, and how the start line names
// it (", only 'load' and what depends on it"; "" without --only).
RunSelection SelectionOf(const Args& a) {
  return {a.only, a.downstream ? SelectWith::kDownstream
                  : a.upstream ? SelectWith::kUpstream
                               : SelectWith::kAlone};
}

std::string SelectionNote(const Args& a) {
  return a.only.empty() ? "" : ", only " + DescribeSelection(SelectionOf(a));
}

// Prints one notification of `run --follow`: the run's start (its workflow,
// then `note`), a task event (with the count of tasks done), or output.
// Keeps the run's id.
void PrintFollowed(const Notification& n, OutputPrinter& printer, RunProgress& progress,
                   bool colour, const std::string& note, bool forced, std::int64_t& run_id) {
  if (n.method == notification::kRunQueued) {
    progress.set_total(n.params.value("tasks", 0));
    run_id = n.params["run_id"].get<std::int64_t>();
    std::printf("%s\n", QueuedLine(n.params, note).c_str());
    std::fflush(stdout);
  } else if (n.method == notification::kRunStarted) {
    progress.set_total(n.params.value("tasks", 0));
    const bool was_queued = run_id != 0;
    run_id = n.params["run_id"].get<std::int64_t>();
    const std::string workflow = n.params["workflow"];
    std::printf("run %lld started (workflow '%s'%s)\n", static_cast<long long>(run_id),
                workflow.c_str(), note.c_str());
    std::fflush(stdout);
    // A run that waited for a place has it: the others are no news.
    if (!was_queued)
      WarnAlsoRunning(workflow, n.params.value("also_running", json::array()), forced);
  } else if (n.method == notification::kRunOutput) {
    printer.Print(n.params["task"], n.params["stream"] == OutputStreamName(OutputStream::kStderr),
                  n.params["data"]);
  } else if (n.method == notification::kRunEvent) {
    printer.Finish();
    std::printf("%s\n", progress.Line(n.params, colour).c_str());
    std::fflush(stdout);
  }
}

// The `params` of run.start: the object of --params-file, then each -p
// KEY=VALUE over it (docs/workflow-format.md, "Parameters"). The daemon
// checks names and values; this only checks the form. Prints why and
// returns nullopt on a usage error.
std::optional<json> RunParams(const Args& a) {
  json params = json::object();
  if (!a.params_file.empty()) {
    if (IsStdinArg(a.params_file) && IsStdinArg(a.items.front())) {
      std::fprintf(stderr, "picoflowctl: the workflow and --params-file cannot both be '-'\n");
      return std::nullopt;
    }
    auto text = ReadSourceArg(a.params_file);
    if (!text.ok()) {
      std::fprintf(stderr, "picoflowctl: --params-file: %s\n", text.error().message.c_str());
      return std::nullopt;
    }
    params = json::parse(*text, nullptr, false);
    if (!params.is_object()) {
      std::fprintf(stderr, "picoflowctl: --params-file %s: %s\n", a.params_file.c_str(),
                   params.is_discarded() ? "not valid JSON"
                                         : "must hold a JSON object of param names to values");
      return std::nullopt;
    }
  }
  std::vector<std::string> given;
  for (const std::string& p : a.param_values) {
    const auto eq = p.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::fprintf(stderr, "picoflowctl: -p '%s': expected KEY=VALUE\n", p.c_str());
      return std::nullopt;
    }
    const std::string key = p.substr(0, eq);
    if (std::find(given.begin(), given.end(), key) != given.end()) {
      std::fprintf(stderr, "picoflowctl: -p: param '%s' is given twice\n", key.c_str());
      return std::nullopt;
    }
    given.push_back(key);
    params[key] = p.substr(eq + 1);
  }
  return params;
}

}  // namespace

// Called when a workflow has no runs: workflow.get tells a workflow that
// exists (loaded, never run) from a name the daemon does not know, whose
// -32001 names the closest one it does. Returns false, after Session
// printed why, if there is no such workflow.
bool WorkflowExists(Session& s, const std::string& name) {
  return s.Call(method::kWorkflowGet, {{"name", name}}).has_value();
}

// The run id named by --run, or the latest run of the workflow.
std::optional<std::int64_t> ResolveRun(Session& s, const Args& a) {
  if (a.run_id > 0) return a.run_id;
  auto runs = s.Call(method::kRunList, {{"workflow", a.name}, {"limit", 1}});
  if (!runs) return std::nullopt;
  if ((*runs)["runs"].empty()) {
    if (WorkflowExists(s, a.name)) {
      std::fprintf(stderr, "picoflowctl: workflow '%s' has no runs yet\n", a.name.c_str());
    }
    return std::nullopt;
  }
  return (*runs)["runs"][0]["id"].get<std::int64_t>();
}

int StoppedFollowing(std::int64_t run_id) {
  std::fflush(stdout);
  if (run_id > 0) {
    std::fprintf(stderr,
                 "\npicoflowctl: stopped following run %lld; it goes on in picoflowd (cancel it "
                 "with `picoflowctl cancel %lld`)\n",
                 static_cast<long long>(run_id), static_cast<long long>(run_id));
  } else {
    std::fprintf(stderr,
                 "\npicoflowctl: interrupted; if the run started, it goes on in picoflowd "
                 "(`picoflowctl history` lists it)\n");
  }
  return kExitInterrupted;
}

namespace {

// `run --wait`, `retry --wait`: waits for the run's end, shows its table
// (or its JSON) and exits as it ended.
int WaitAndShow(Session& s, std::int64_t run_id) {
  auto run = s.Call(method::kRunWait, {{"run_id", run_id}});
  if (!run) return s.interrupted() ? StoppedFollowing(run_id) : s.exit_code();
  if (s.globals().json)
    Session::PrintJson(*run);
  else
    PrintRunTable(*run, s.colour(), TerminalWidth(stdout));
  return RunExitCode(*run);
}

}  // namespace

int RunCmd(Session& s, const Args& a) {
  const std::string& target = a.items.front();
  json params;
  if (IsStdinArg(target) || IsFileArg(target)) {
    auto source = ReadSourceArg(target);
    if (!source.ok()) {
      std::fprintf(stderr, "picoflowctl: %s\n", source.error().message.c_str());
      return kExitFailed;
    }
    params = {{"source", *source}, {"file", SourceFileParam(target)}};
  } else {
    params = {{"workflow", target}};
  }
  auto run_params = RunParams(a);
  if (!run_params) return kExitUsage;
  if (!run_params->empty()) params["params"] = std::move(*run_params);
  if (!a.only.empty()) {
    const RunSelection only = SelectionOf(a);
    params["only"] = only.tasks;
    if (only.with != SelectWith::kAlone) params["with"] = SelectWithName(only.with);
  }
  const std::string note = SelectionNote(a);
  if (a.force) params["force"] = true;
  // Ctrl-C while the run is followed or waited for leaves the run going.
  if (a.follow || a.wait) s.CatchInterrupts();
  std::int64_t run_id = 0;
  if (a.follow && !s.globals().json) {
    // run.start with follow streams the run from its first event.
    params["follow"] = true;
    OutputPrinter printer(true);
    RunProgress progress;
    auto done = s.Call(method::kRunStart, params, [&](const Notification& n) {
      PrintFollowed(n, printer, progress, s.colour(), note, a.force, run_id);
    });
    printer.Finish();
    if (!done) return s.interrupted() ? StoppedFollowing(run_id) : s.exit_code();
    run_id = (*done)["run_id"];
  } else {
    auto started = s.Call(method::kRunStart, params);
    if (!started) return s.interrupted() ? StoppedFollowing(run_id) : s.exit_code();
    run_id = (*started)["run_id"];
    const std::string workflow = (*started)["workflow"];
    const bool queued = started->value("queued", false);
    if (!queued) WarnAlsoRunning(workflow, started->value("also_running", json::array()), a.force);
    if (!a.wait && !a.follow) {
      if (s.globals().json)
        Session::PrintJson(*started);
      else if (queued)
        std::printf("%s\n", QueuedLine(*started, note).c_str());
      else
        std::printf("run %lld started (workflow '%s'%s)\n", static_cast<long long>(run_id),
                    workflow.c_str(), note.c_str());
      return kExitOk;
    }
    // --wait waits through the queue: said on stderr, the run's table goes to stdout.
    if (queued) std::fprintf(stderr, "picoflowctl: %s\n", QueuedLine(*started, note).c_str());
  }
  return WaitAndShow(s, run_id);
}

namespace {

// `status NAME --check`: the newest run of NAME that has ended (one in
// progress, or a fire skipped by the overlap policy, is passed over); exit
// 0 if it succeeded, 1 if it failed or was cancelled, or if none has ended.
int CheckCmd(Session& s, const std::string& name) {
  auto runs = s.Call(method::kRunList, {{"workflow", name}, {"limit", 1000}});
  if (!runs) return s.exit_code();
  if ((*runs)["runs"].empty() && !WorkflowExists(s, name)) return s.exit_code();
  json last = nullptr;
  for (const json& r : (*runs)["runs"]) {
    const std::string status = r["status"];
    if (status == RunStatusName(RunStatus::kSucceeded) ||
        status == RunStatusName(RunStatus::kFailed) ||
        status == RunStatusName(RunStatus::kCancelled)) {
      last = r;
      break;
    }
  }
  if (s.globals().json) {
    Session::PrintJson(last);
  } else if (last.is_null()) {
    std::printf("no run of '%s' has ended yet\n", name.c_str());
  } else {
    std::printf("%s (run %lld, ended %s)\n",
                ColourStatus(last["status"].get<std::string>(), s.colour()).c_str(),
                static_cast<long long>(last["id"].get<std::int64_t>()),
                ShortTime(last["ended_at"]).c_str());
  }
  return !last.is_null() && RunExitCode(last) == kExitOk ? kExitOk : kExitFailed;
}

}  // namespace

int StatusCmd(Session& s, const Args& a) {
  if (a.check) {
    if (a.items.empty()) {
      std::fprintf(stderr, "picoflowctl: status --check needs a workflow name\n");
      return kExitUsage;
    }
    return CheckCmd(s, a.items.front());
  }
  if (a.run_id > 0 || !a.items.empty()) {
    Args b = a;
    if (!a.items.empty()) b.name = a.items.front();
    auto id = ResolveRun(s, b);
    if (!id) return s.exit_code() != kExitOk ? s.exit_code() : kExitFailed;
    auto run = s.Call(method::kRunGet, {{"run_id", *id}});
    if (!run) return s.exit_code();
    if (s.globals().json)
      Session::PrintJson(*run);
    else
      PrintRunTable(*run, s.colour(), TerminalWidth(stdout));
    return kExitOk;
  }
  // Workflows that are not loaded but have runs (one-off runs, removed
  // workflows) too: `run FILE` then `status` shows that run.
  auto list = s.Call(method::kWorkflowList, {{"unloaded", true}});
  if (!list) return s.exit_code();
  if (s.globals().json) {
    Session::PrintJson(*list);
    return kExitOk;
  }
  Table table({"WORKFLOW", "LAST RUN", "STATUS", "STARTED", "DURATION", "RUNNING", "NEXT FIRE"});
  std::vector<std::string> problems;
  for (const json& w : (*list)["workflows"]) {
    const json& last = w["last_run"];
    const std::string next = !w.value("loaded", true) && w["errors"].empty() ? "not loaded"
                             : w["paused"]                                   ? "paused"
                                           : FireTime(w.value("next_fire", json(nullptr)));
    table.Add({w["name"].get<std::string>(), last.is_null() ? "-" : Str(last["id"]),
               last.is_null() ? "-" : ColourStatus(last["status"].get<std::string>(), s.colour()),
               last.is_null() ? "-" : ShortTime(last["started_at"]),
               last.is_null() ? "-" : Dur(last["duration_ms"]), Str(w["running"]), next});
    for (const json& e : w["errors"]) problems.push_back(e["text"].get<std::string>());
  }
  table.Print(stdout);
  auto status = s.Call(method::kDaemonStatus);
  if (status) {
    for (const json& b : (*status)["load_errors"]) {
      for (const json& e : b["errors"]) problems.push_back(e["text"].get<std::string>());
    }
    const json store = status->value("store", json::object());
    if (store.value("state", "ok") != "ok") {
      std::printf("\n%s\n", StoreState(store).c_str());
    }
  }
  if (!problems.empty()) {
    std::printf("\nworkflow files with errors (the last good version, if any, stays in use):\n");
    for (const std::string& p : problems) std::printf("  %s\n", p.c_str());
  }
  // Only the weakest containment is worth a word here (`daemon status` says
  // which one is active).
  const json containment = status ? status->value("containment", json::object()) : json::object();
  if (containment.value("mode", std::string()) == "process-group") {
    std::printf("\nnote: processes that leave their task's process group outlive it (%s)\n",
                containment.value("reason", std::string()).c_str());
  }
  return kExitOk;
}

namespace {

// A run's REASON in history: why it failed or was cancelled (its error),
// or why it was recorded as it was (a skipped fire's reason).
std::string RunReason(const json& run) {
  const std::string error = run.value("error", std::string());
  return error.empty() ? run.value("reason", std::string()) : error;
}

}  // namespace

// `history [NAME]`: one workflow's runs, or everybody's with a WORKFLOW column.
int History(Session& s, const Args& a) {
  json params = {{"limit", a.count}};
  if (!a.name.empty()) params["workflow"] = a.name;
  auto runs = s.Call(method::kRunList, params);
  if (!runs) return s.exit_code();
  if (!a.name.empty() && (*runs)["runs"].empty() && !WorkflowExists(s, a.name)) {
    return s.exit_code();
  }
  if (s.globals().json) {
    Session::PrintJson(*runs);
    return kExitOk;
  }
  const bool all = a.name.empty();
  std::vector<std::string> header = {"RUN",      "STATUS", "TRIGGER", "STARTED",
                                     "DURATION", "LATE",   "REASON"};
  if (all) header.insert(header.begin() + 1, "WORKFLOW");
  Table table(header);
  for (const json& r : (*runs)["runs"]) {
    std::vector<std::string> row = {
        Str(r["id"]),          ColourStatus(r["status"].get<std::string>(), s.colour()),
        Str(r["trigger"]),     ShortTime(r["started_at"]),
        Dur(r["duration_ms"]), Dur(r.value("late_ms", json(nullptr))),
        RunReason(r)};
    if (all) row.insert(row.begin() + 1, Str(r["workflow"]));
    table.Add(std::move(row));
  }
  table.Print(stdout, TerminalWidth(stdout));
  return kExitOk;
}

// `cancel RUN_ID` cancels that run; `cancel WORKFLOW` every run of it in
// progress (a word of digits only is a run id).
namespace {

// A RUN argument that is a run id or a workflow name: sets `run_id` for an
// id. Returns false, after saying why, for digits that are no run id.
bool ParseRunArg(const char* command, const std::string& arg, std::optional<std::int64_t>& run_id) {
  std::int64_t id = 0;
  const char* end = arg.data() + arg.size();
  const auto [ptr, ec] = std::from_chars(arg.data(), end, id);
  if (ec == std::errc::result_out_of_range) {
    std::fprintf(stderr, "picoflowctl: %s: '%s' is no run id\n", command, arg.c_str());
    return false;
  }
  if (ec == std::errc() && ptr == end) run_id = id;
  return true;
}

// The run a RUN argument (a.name) names: the id, or a workflow's latest
// run. Sets `code` and returns nullopt, after saying why, if there is none.
std::optional<std::int64_t> RunOfArg(Session& s, const char* command, const Args& a, int& code) {
  std::optional<std::int64_t> run_id;
  if (!ParseRunArg(command, a.name, run_id)) {
    code = kExitUsage;
    return std::nullopt;
  }
  Args which = a;
  which.run_id = run_id.value_or(0);
  auto id = ResolveRun(s, which);
  if (!id) code = s.exit_code() != kExitOk ? s.exit_code() : kExitFailed;
  return id;
}

}  // namespace

int Outputs(Session& s, const Args& a) {
  int code = kExitOk;
  auto id = RunOfArg(s, "outputs", a, code);
  if (!id) return code;
  auto run = s.Call(method::kRunGet, {{"run_id", *id}});
  if (!run) return s.exit_code();
  json outputs = json::object();
  bool found = a.task.empty();
  for (const json& t : (*run)["tasks"]) {
    const std::string name = t["name"];
    if (!a.task.empty() && name != a.task) continue;
    found = true;
    if (!t.value("outputs", json::object()).empty()) outputs[name] = t["outputs"];
  }
  if (!found) {
    std::fprintf(stderr, "picoflowctl: run %lld has no task '%s'\n", static_cast<long long>(*id),
                 a.task.c_str());
    return kExitFailed;
  }
  if (s.globals().json) {
    Session::PrintJson({{"run_id", *id}, {"outputs", outputs}});
    return kExitOk;
  }
  if (outputs.empty()) {
    std::printf("run %lld: no outputs\n", static_cast<long long>(*id));
    return kExitOk;
  }
  Table table({"TASK", "KEY", "VALUE"});
  for (const auto& [task, values] : outputs.items()) {
    for (const auto& [key, value] : values.items()) {
      table.Add({task, key, EscapeControls(value.get<std::string>())});
    }
  }
  table.Print(stdout, TerminalWidth(stdout));
  return kExitOk;
}

int Retry(Session& s, const Args& a) {
  int code = kExitOk;
  auto retried = RunOfArg(s, "retry", a, code);
  if (!retried) return code;
  if (a.wait) s.CatchInterrupts();
  json params = {{"run_id", *retried}, {"latest", a.latest}};
  if (a.force) params["force"] = true;
  auto started = s.Call(method::kRunRetry, params);
  if (!started) return s.exit_code();
  const std::int64_t run_id = (*started)["run_id"];
  const std::string workflow = (*started)["workflow"];
  const bool queued = started->value("queued", false);
  if (!queued) WarnAlsoRunning(workflow, started->value("also_running", json::array()), a.force);
  if (!a.wait) {
    if (s.globals().json) {
      Session::PrintJson(*started);
    } else {
      std::string reused;
      for (const json& t : (*started)["reused"]) reused += (reused.empty() ? "" : ", ") + Str(t);
      std::printf("run %lld %s (workflow '%s', retry of run %lld; reused: %s)%s\n",
                  static_cast<long long>(run_id), queued ? "queued" : "started", workflow.c_str(),
                  static_cast<long long>(*retried), reused.empty() ? "none" : reused.c_str(),
                  queued ? QueuedWhy(*started).c_str() : "");
    }
    return kExitOk;
  }
  if (queued) std::fprintf(stderr, "picoflowctl: %s\n", QueuedLine(*started).c_str());
  return WaitAndShow(s, run_id);
}

int Cancel(Session& s, const Args& a) {
  std::optional<std::int64_t> run_id;
  if (!ParseRunArg("cancel", a.name, run_id)) return kExitUsage;
  const bool by_id = run_id.has_value();
  json params = by_id ? json{{"run_id", *run_id}} : json{{"workflow", a.name}};
  auto r = s.Call(method::kRunCancel, params);
  if (!r) return s.exit_code();
  if (s.globals().json) {
    Session::PrintJson(*r);
  } else if (by_id) {
    std::printf("cancelling run %s\n", a.name.c_str());
  } else {
    for (const json& id : (*r)["run_ids"]) {
      std::printf("cancelling run %lld (workflow '%s')\n",
                  static_cast<long long>(id.get<std::int64_t>()), a.name.c_str());
    }
  }
  return kExitOk;
}

}  // namespace picoflow::ctl
