// The commands that talk to picoflowd: a table of {subcommand, options,
// calls, rendering}. No business logic: each turns argv into JSON-RPC calls
// and renders the answers.

#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>

#include "common/duration.h"
#include "common/run_status.h"
#include "common/task_paths.h"
#include "common/workflow_load.h"
#include "picoflowctl/command.h"
#include "picoflowctl/render.h"
#include "picoflowctl/session.h"
#include "protocol/methods.h"
#include "protocol/progress.h"

namespace picoflow::ctl {
namespace {

/// Every option any daemon command takes; each command binds what it uses.
struct Args {
  std::vector<std::string> items;  ///< positional: files, names
  std::string name;
  std::int64_t run_id = 0;
  std::string task;
  int count = 20;
  bool follow = false;
  bool dry_run = false;
  bool wait = false;
  std::string method;
  std::string params = "{}";
};

using OptionsFn = void (*)(CLI::App&, Args&);
using RunFn = int (*)(Session&, const Args&);

/// One row of the command table.
struct CommandSpec {
  const char* name;
  const char* help;
  OptionsFn options;
  RunFn run;
};

std::string Str(const json& v) {
  if (v.is_null()) return "-";
  if (v.is_string()) return v.get<std::string>();
  return v.dump();
}

std::string Dur(const json& ms) {
  return ms.is_number() ? FormatElapsed(std::chrono::milliseconds(ms.get<long long>())) : "-";
}

// "2026-11-27T03:40:00.123Z" -> "2026-11-27 03:40:00" for tables.
std::string ShortTime(const json& t) {
  if (!t.is_string()) return "-";
  std::string s = t.get<std::string>();
  if (s.size() >= 19) s = s.substr(0, 10) + " " + s.substr(11, 8);
  return s;
}

// A next-fire instant for tables: UTC, said so.
std::string FireTime(const json& t) { return t.is_string() ? ShortTime(t) + " UTC" : "-"; }

bool IsFile(const std::string& arg) {
  struct stat st {};
  return stat(arg.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// ---- rendering ----

void PrintRunTable(const json& run, bool colour) {
  std::printf("run %lld  %s  %s  trigger %s  started %s  duration %s\n",
              static_cast<long long>(run["id"].get<std::int64_t>()),
              run["workflow"].get<std::string>().c_str(),
              ColourStatus(run["status"].get<std::string>(), colour).c_str(),
              run["trigger"].get<std::string>().c_str(), ShortTime(run["started_at"]).c_str(),
              Dur(run["duration_ms"]).c_str());
  if (!run["error"].get<std::string>().empty()) {
    std::printf("error: %s\n", run["error"].get<std::string>().c_str());
  }
  Table table({"TASK", "STATUS", "ATTEMPTS", "DURATION", "EXIT"});
  for (const json& t : run["tasks"]) {
    table.Add({t["name"].get<std::string>(), ColourStatus(t["status"].get<std::string>(), colour),
               std::to_string(t["attempts"].get<int>()), Dur(t["duration_ms"]),
               Str(t["exit_code"])});
  }
  table.Print(stdout);
}

int RunExitCode(const json& run) { return run["status"] == "succeeded" ? kExitOk : kExitFailed; }

// With --json, `logs` prints one compact JSON object per output chunk, as
// run.logs pages and run.output notifications give them: a stream of lines a
// script reads as it comes.
void PrintChunkJson(const json& chunk) {
  std::printf("%s\n", chunk.dump().c_str());
  std::fflush(stdout);
}

// Pages through stored output after `*cursor`, printing it.
bool PrintStoredLogs(Session& s, std::int64_t run_id, const std::string& task, std::int64_t* cursor,
                     OutputPrinter& printer) {
  for (;;) {
    json params = {{"run_id", run_id}, {"after", *cursor}, {"limit", 1000}};
    if (!task.empty()) params["task"] = task;
    auto page = s.Call(method::kRunLogs, params);
    if (!page) return false;
    if ((*page)["chunks"].empty()) return true;
    for (const json& c : (*page)["chunks"]) {
      if (s.globals().json) {
        PrintChunkJson(c);
      } else {
        printer.Print(c["task"], c["stream"] == OutputStreamName(OutputStream::kStderr), c["data"]);
      }
    }
    *cursor = (*page)["next"].get<std::int64_t>();
  }
}

// Prints one followed notification: output, or (with `events`) a task event.
void PrintFollowed(const Notification& n, OutputPrinter& printer, bool colour, bool events) {
  if (n.method == notification::kRunOutput) {
    printer.Print(n.params["task"], n.params["stream"] == OutputStreamName(OutputStream::kStderr),
                  n.params["data"]);
    return;
  }
  if (n.method != notification::kRunEvent || !events) return;
  printer.Finish();
  std::printf("%s\n", TaskEventLine(n.params, colour).c_str());
  std::fflush(stdout);
}

// Streams a run's output until it ends (run.logs follow).
std::optional<json> FollowRun(Session& s, std::int64_t run_id, const std::string& task,
                              std::int64_t cursor, OutputPrinter& printer) {
  json params = {{"run_id", run_id}, {"follow", true}, {"after", cursor}};
  if (!task.empty()) params["task"] = task;
  auto done = s.Call(method::kRunLogs, params, [&](const Notification& n) {
    if (!s.globals().json) {
      PrintFollowed(n, printer, s.colour(), false);
    } else if (n.method == notification::kRunOutput) {
      PrintChunkJson(n.params);
    }
  });
  printer.Finish();
  return done;
}

// The run id named by --run, or the latest run of the workflow.
std::optional<std::int64_t> ResolveRun(Session& s, const Args& a) {
  if (a.run_id > 0) return a.run_id;
  auto runs = s.Call(method::kRunList, {{"workflow", a.name}, {"limit", 1}});
  if (!runs) return std::nullopt;
  if ((*runs)["runs"].empty()) {
    std::fprintf(stderr, "picoflowctl: workflow '%s' has no runs\n", a.name.c_str());
    return std::nullopt;
  }
  return (*runs)["runs"][0]["id"].get<std::int64_t>();
}

// ---- commands ----

int Submit(Session& s, const Args& a) {
  int rc = kExitOk;
  json all = json::array();
  for (const std::string& file : a.items) {
    auto source = ReadWorkflowFile(file);
    if (!source.ok()) {
      std::fprintf(stderr, "picoflowctl: %s: %s\n", file.c_str(), source.error().message.c_str());
      rc = kExitFailed;
      continue;
    }
    // An absolute path: the daemon resolves the workflow's relative paths
    // against the file's directory, and it does not know ours.
    auto r = s.Call(method::kWorkflowSubmit, {{"source", *source}, {"file", AbsolutePath(file)}});
    if (!r) {
      rc = s.exit_code();
      continue;
    }
    if (s.globals().json) {
      all.push_back(*r);
      continue;
    }
    // Stored all the same; said on stderr like the errors of a refused file.
    for (const json& w : r->value("warnings", json::array())) {
      std::fprintf(stderr, "%s\n", w["text"].get<std::string>().c_str());
    }
    std::printf(
        "%s workflow '%s' (%zu tasks) from %s\n", (*r)["replaced"] ? "replaced" : "submitted",
        (*r)["name"].get<std::string>().c_str(), (*r)["tasks"].get<std::size_t>(), file.c_str());
  }
  if (s.globals().json) Session::PrintJson(all);
  return rc;
}

int RunCmd(Session& s, const Args& a) {
  const std::string& target = a.items.front();
  json params;
  if (IsFile(target)) {
    auto source = ReadWorkflowFile(target);
    if (!source.ok()) {
      std::fprintf(stderr, "picoflowctl: %s: %s\n", target.c_str(), source.error().message.c_str());
      return kExitFailed;
    }
    params = {{"source", *source}, {"file", AbsolutePath(target)}};
  } else {
    params = {{"workflow", target}};
  }
  std::int64_t run_id = 0;
  if (a.follow && !s.globals().json) {
    // run.start with follow streams the run from its first event.
    params["follow"] = true;
    OutputPrinter printer(true);
    auto done = s.Call(method::kRunStart, params, [&](const Notification& n) {
      if (n.method == notification::kRunStarted) {
        std::printf("run %lld started (workflow '%s')\n",
                    static_cast<long long>(n.params["run_id"].get<std::int64_t>()),
                    n.params["workflow"].get<std::string>().c_str());
        return;
      }
      PrintFollowed(n, printer, s.colour(), true);
    });
    printer.Finish();
    if (!done) return s.exit_code();
    run_id = (*done)["run_id"];
  } else {
    auto started = s.Call(method::kRunStart, params);
    if (!started) return s.exit_code();
    run_id = (*started)["run_id"];
    if (!a.wait && !a.follow) {
      if (s.globals().json)
        Session::PrintJson(*started);
      else
        std::printf("run %lld started (workflow '%s')\n", static_cast<long long>(run_id),
                    (*started)["workflow"].get<std::string>().c_str());
      return kExitOk;
    }
  }
  auto run = s.Call(method::kRunWait, {{"run_id", run_id}});
  if (!run) return s.exit_code();
  if (s.globals().json)
    Session::PrintJson(*run);
  else
    PrintRunTable(*run, s.colour());
  return RunExitCode(*run);
}

int StatusCmd(Session& s, const Args& a) {
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
      PrintRunTable(*run, s.colour());
    return kExitOk;
  }
  auto list = s.Call(method::kWorkflowList);
  if (!list) return s.exit_code();
  if (s.globals().json) {
    Session::PrintJson(*list);
    return kExitOk;
  }
  Table table({"WORKFLOW", "LAST RUN", "STATUS", "STARTED", "DURATION", "RUNNING", "NEXT FIRE"});
  std::vector<std::string> problems;
  for (const json& w : (*list)["workflows"]) {
    const json& last = w["last_run"];
    table.Add({w["name"].get<std::string>(), last.is_null() ? "-" : Str(last["id"]),
               last.is_null() ? "-" : ColourStatus(last["status"].get<std::string>(), s.colour()),
               last.is_null() ? "-" : ShortTime(last["started_at"]),
               last.is_null() ? "-" : Dur(last["duration_ms"]), Str(w["running"]),
               w["paused"] ? "paused" : FireTime(w.value("next_fire", json(nullptr)))});
    for (const json& e : w["errors"]) problems.push_back(e["text"].get<std::string>());
  }
  table.Print(stdout);
  auto status = s.Call(method::kDaemonStatus);
  if (status) {
    for (const json& b : (*status)["load_errors"]) {
      for (const json& e : b["errors"]) problems.push_back(e["text"].get<std::string>());
    }
  }
  if (!problems.empty()) {
    std::printf("\nworkflow files with errors (the last good version, if any, stays in use):\n");
    for (const std::string& p : problems) std::printf("  %s\n", p.c_str());
  }
  return kExitOk;
}

int History(Session& s, const Args& a) {
  auto runs = s.Call(method::kRunList, {{"workflow", a.name}, {"limit", a.count}});
  if (!runs) return s.exit_code();
  if (s.globals().json) {
    Session::PrintJson(*runs);
    return kExitOk;
  }
  Table table({"RUN", "STATUS", "TRIGGER", "STARTED", "DURATION", "LATE", "REASON"});
  for (const json& r : (*runs)["runs"]) {
    table.Add({Str(r["id"]), ColourStatus(r["status"].get<std::string>(), s.colour()),
               Str(r["trigger"]), ShortTime(r["started_at"]), Dur(r["duration_ms"]),
               Dur(r.value("late_ms", json(nullptr))), r.value("reason", std::string())});
  }
  table.Print(stdout);
  return kExitOk;
}

int Logs(Session& s, const Args& a) {
  auto id = ResolveRun(s, a);
  if (!id) return s.exit_code() != kExitOk ? s.exit_code() : kExitFailed;
  OutputPrinter printer(a.task.empty());
  std::int64_t cursor = 0;
  if (!PrintStoredLogs(s, *id, a.task, &cursor, printer)) return s.exit_code();
  if (a.follow && !FollowRun(s, *id, a.task, cursor, printer)) return s.exit_code();
  printer.Finish();
  return kExitOk;
}

int Cancel(Session& s, const Args& a) {
  auto r = s.Call(method::kRunCancel, {{"run_id", a.run_id}});
  if (!r) return s.exit_code();
  if (s.globals().json)
    Session::PrintJson(*r);
  else
    std::printf("cancelling run %lld\n", static_cast<long long>(a.run_id));
  return kExitOk;
}

int Workflows(Session& s, const Args&) {
  auto list = s.Call(method::kWorkflowList);
  if (!list) return s.exit_code();
  if (s.globals().json) {
    Session::PrintJson(*list);
    return kExitOk;
  }
  Table table({"WORKFLOW", "TASKS", "SCHEDULE", "ZONE", "NEXT FIRE", "PAUSED", "ORIGIN"});
  for (const json& w : (*list)["workflows"]) {
    std::string schedule;
    for (const json& e : w.value("schedule", json::array())) {
      schedule += (schedule.empty() ? "" : ", ") + e.get<std::string>();
    }
    table.Add(
        {w["name"].get<std::string>(), Str(w.value("tasks", json(nullptr))),
         schedule.empty() ? "-" : schedule,
         w.value("timezone", std::string()).empty() ? "local" : w["timezone"].get<std::string>(),
         FireTime(w.value("next_fire", json(nullptr))), w["paused"] ? "yes" : "no",
         Str(w.value("origin", json(nullptr)))});
  }
  table.Print(stdout);
  return kExitOk;
}

int Remove(Session& s, const Args& a) {
  auto r = s.Call(method::kWorkflowRemove, {{"name", a.name}});
  if (!r) return s.exit_code();
  if (s.globals().json)
    Session::PrintJson(*r);
  else
    std::printf("removed workflow '%s'\n", a.name.c_str());
  return kExitOk;
}

int PauseCmd(Session& s, const Args& a, bool paused) {
  auto r = s.Call(paused ? method::kWorkflowPause : method::kWorkflowResume, {{"name", a.name}});
  if (!r) return s.exit_code();
  if (s.globals().json) {
    Session::PrintJson(*r);
  } else if (paused) {
    std::printf("paused workflow '%s'\n", a.name.c_str());
  } else {
    std::printf("resumed workflow '%s' (next fire %s)\n", a.name.c_str(),
                FireTime((*r)["next_fire"]).c_str());
  }
  return kExitOk;
}

int Pause(Session& s, const Args& a) { return PauseCmd(s, a, true); }
int Resume(Session& s, const Args& a) { return PauseCmd(s, a, false); }

int Next(Session& s, const Args& a) {
  auto r = s.Call(method::kWorkflowNext, {{"name", a.name}, {"count", a.count}});
  if (!r) return s.exit_code();
  if (s.globals().json) {
    Session::PrintJson(*r);
    return kExitOk;
  }
  const std::string zone = (*r)["timezone"].get<std::string>();
  std::printf("%s (zone %s)%s\n", a.name.c_str(), zone.empty() ? "local" : zone.c_str(),
              (*r)["paused"].get<bool>() ? ", paused" : "");
  for (const json& t : (*r)["fires"]) std::printf("  %s\n", FireTime(t).c_str());
  return kExitOk;
}

int DaemonCmd(Session& s, const Args& a) {
  const std::string& what = a.name;
  const char* m = what == "status"   ? method::kDaemonStatus
                  : what == "reload" ? method::kDaemonReload
                                     : method::kDaemonVersion;
  auto r = s.Call(m, json::object());
  if (!r) return s.exit_code();
  if (s.globals().json || what != "status") {
    Session::PrintJson(*r);
    return kExitOk;
  }
  std::printf("picoflowd %s (protocol %d), pid %d, up %s\n", Str((*r)["version"]).c_str(),
              (*r)["protocol"].get<int>(), (*r)["pid"].get<int>(), Dur((*r)["uptime_ms"]).c_str());
  std::printf("socket %s\nstate  %s\n", Str((*r)["socket"]).c_str(),
              Str((*r)["state_dir"]).c_str());
  std::printf("%s workflows, %s active runs, %s running tasks\n", Str((*r)["workflows"]).c_str(),
              Str((*r)["active_runs"]).c_str(), Str((*r)["active_tasks"]).c_str());
  return kExitOk;
}

int Prune(Session& s, const Args& a) {
  auto r = s.Call(method::kStorePrune, {{"dry_run", a.dry_run}});
  if (!r) return s.exit_code();
  if (s.globals().json) {
    Session::PrintJson(*r);
    return kExitOk;
  }
  std::printf("%s %s runs and %s bytes of output\n", a.dry_run ? "would delete" : "deleted",
              Str((*r)["runs"]).c_str(), Str((*r)["output_bytes"]).c_str());
  return kExitOk;
}

int CallCmd(Session& s, const Args& a) {
  json params;
  try {
    params = json::parse(a.params);
  } catch (const json::exception& e) {
    std::fprintf(stderr, "picoflowctl: params are not JSON: %s\n", e.what());
    return kExitUsage;
  }
  auto r = s.Call(a.method, params, [](const Notification& n) {
    Session::PrintJson({{"method", n.method}, {"params", n.params}});
  });
  if (!r) return s.exit_code();
  Session::PrintJson(*r);
  return kExitOk;
}

const CommandSpec kCommands[] = {
    {"submit", "Validate and store workflow files (replacing earlier versions)",
     [](CLI::App& c, Args& a) {
       c.add_option("files", a.items, "Workflow YAML files")->required();
     },
     Submit},
    {"run", "Start a run of a submitted workflow or a one-off run of a file",
     [](CLI::App& c, Args& a) {
       c.add_option("workflow", a.items, "Workflow name or YAML file")->required()->expected(1);
       c.add_flag("--wait", a.wait, "Block until the run ends; exit 0 only if it succeeded");
       c.add_flag("--follow,-f", a.follow, "Stream task events and output until the run ends");
     },
     RunCmd},
    {"status", "Workflows and their last runs, or one workflow's latest run",
     [](CLI::App& c, Args& a) {
       c.add_option("workflow", a.items, "Workflow name")->expected(0, 1);
       c.add_option("--run", a.run_id, "A run id");
     },
     StatusCmd},
    {"history", "Recent runs of a workflow",
     [](CLI::App& c, Args& a) {
       c.add_option("workflow", a.name, "Workflow name")->required();
       c.add_option("-n", a.count, "How many runs")->check(CLI::Range(1, 1000));
     },
     History},
    {"logs", "Output of a workflow's latest run (or --run ID)",
     [](CLI::App& c, Args& a) {
       c.add_option("workflow", a.name, "Workflow name");
       c.add_option("--run", a.run_id, "A run id");
       c.add_option("--task", a.task, "Only this task's output");
       c.add_flag("--follow,-f", a.follow, "Keep streaming until the run ends");
     },
     Logs},
    {"cancel", "Cancel a running run",
     [](CLI::App& c, Args& a) { c.add_option("run_id", a.run_id, "Run id")->required(); }, Cancel},
    {"workflows", "Workflows with their schedules", [](CLI::App&, Args&) {}, Workflows},
    {"remove", "Forget a workflow (its history stays)",
     [](CLI::App& c, Args& a) { c.add_option("workflow", a.name, "Workflow name")->required(); },
     Remove},
    {"pause", "Stop a workflow's scheduled fires (manual runs still work)",
     [](CLI::App& c, Args& a) { c.add_option("workflow", a.name, "Workflow name")->required(); },
     Pause},
    {"resume", "Resume a paused workflow's scheduled fires (from now, no catch-up)",
     [](CLI::App& c, Args& a) { c.add_option("workflow", a.name, "Workflow name")->required(); },
     Resume},
    {"next", "Upcoming fire times of a workflow",
     [](CLI::App& c, Args& a) {
       a.count = 5;
       c.add_option("workflow", a.name, "Workflow name")->required();
       c.add_option("-n", a.count, "How many fires")->check(CLI::Range(1, 1000));
     },
     Next},
    {"daemon", "daemon status | reload | version",
     [](CLI::App& c, Args& a) {
       c.add_option("what", a.name, "status, reload or version")
           ->required()
           ->check(CLI::IsMember({"status", "reload", "version"}));
     },
     DaemonCmd},
    {"prune", "Apply retention now: delete old runs and output (docs/operations.md)",
     [](CLI::App& c, Args& a) {
       c.add_flag("--dry-run", a.dry_run, "Only count what would be deleted");
     },
     Prune},
    {"call", "Call any JSON-RPC method: call METHOD [JSON-PARAMS]",
     [](CLI::App& c, Args& a) {
       c.add_option("method", a.method, "Method name, e.g. daemon.status")->required();
       c.add_option("params", a.params, "Params as a JSON object");
     },
     CallCmd},
};

/// Adapts one table row to the Command interface.
class RpcCommand final : public Command {
 public:
  explicit RpcCommand(const CommandSpec& spec) : spec_(spec) {}

  CLI::App* Register(CLI::App& app) override {
    CLI::App* sub = app.add_subcommand(spec_.name, spec_.help);
    spec_.options(*sub, args_);
    return sub;
  }

  int Run(const Globals& globals) override {
    if (std::string_view(spec_.name) == "logs" && args_.name.empty() && args_.run_id == 0) {
      std::fprintf(stderr, "picoflowctl logs: give a workflow name or --run ID\n");
      return kExitUsage;
    }
    Session session(globals);
    if (int rc = session.Connect(); rc != kExitOk) return rc;
    return spec_.run(session, args_);
  }

 private:
  const CommandSpec& spec_;
  Args args_;
};

}  // namespace

std::vector<std::unique_ptr<Command>> DaemonCommands() {
  std::vector<std::unique_ptr<Command>> commands;
  for (const CommandSpec& spec : kCommands) commands.push_back(std::make_unique<RpcCommand>(spec));
  return commands;
}

}  // namespace picoflow::ctl
