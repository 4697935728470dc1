// The commands that talk to picoflowd: a table of {subcommand, options,
// calls, rendering}. No business logic: each turns argv into JSON-RPC calls
// and renders the answers.

#include "picoflowctl/rpc_commands.h"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>

#include "common/workflow_fields.h"
#include "common/workflow_load.h"
#include "picoflowctl/command.h"
#include "picoflowctl/render.h"
#include "picoflowctl/session.h"
#include "picoflowctl/source_arg.h"
#include "picoflowctl/time_display.h"
#include "protocol/methods.h"

namespace picoflow::ctl {
namespace {

using OptionsFn = void (*)(CLI::App&, Args&);
using RunFn = int (*)(Session&, const Args&);

/// One row of the command table.
struct CommandSpec {
  const char* name;
  const char* help;
  OptionsFn options;
  RunFn run;
};

// ---- commands ----

int Submit(Session& s, const Args& a) {
  int rc = kExitOk;
  json all = json::array();
  for (const std::string& file : a.items) {
    auto source = ReadSourceArg(file);
    if (!source.ok()) {
      std::fprintf(stderr, "picoflowctl: %s\n", source.error().message.c_str());
      rc = kExitFailed;
      continue;
    }
    auto r =
        s.Call(method::kWorkflowSubmit, {{"source", *source}, {"file", SourceFileParam(file)}});
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
    std::printf("%s workflow '%s' (%s) from %s\n", (*r)["replaced"] ? "replaced" : "submitted",
                (*r)["name"].get<std::string>().c_str(),
                CountOf((*r)["tasks"].get<std::int64_t>(), "task").c_str(),
                SourceLabel(file).c_str());
  }
  // A refused file's error was printed as JSON already: no empty list after it.
  if (s.globals().json && (!all.empty() || rc == kExitOk)) Session::PrintJson(all);
  return rc;
}

int Notifications(Session& s, const Args& a) {
  json params = {{"limit", a.count}};
  if (a.run_id != 0) params["run_id"] = a.run_id;
  auto r = s.Call(method::kNotifyList, params);
  if (!r) return s.exit_code();
  if (s.globals().json) {
    Session::PrintJson(*r);
    return kExitOk;
  }
  Table table({"AT", "RUN", "WORKFLOW", "TARGET", "EVENT", "ATTEMPT", "OUTCOME", "ERROR"});
  for (const json& n : (*r)["notifications"]) {
    table.Add({DisplayTime(n["at"]), n["run_id"].is_null() ? "-" : Str(n["run_id"]),
               Str(n["workflow"]), Str(n["target"]), Str(n["event"]), Str(n["attempt"]),
               Str(n["outcome"]), n["error"].get<std::string>().empty() ? "-" : Str(n["error"])});
  }
  table.Print(stdout);
  return kExitOk;
}

int NotifyTest(Session& s, const Args& a) {
  auto r = s.Call(method::kNotifyTest, {{"workflow", a.name}});
  if (!r) return s.exit_code();
  bool all_sent = true;
  for (const json& t : (*r)["targets"]) all_sent = all_sent && t["sent"].get<bool>();
  if (s.globals().json) {
    Session::PrintJson(*r);
    return all_sent ? kExitOk : kExitFailed;
  }
  for (const json& t : (*r)["targets"]) {
    if (t["sent"].get<bool>()) {
      std::printf("%s (%s): sent\n", Str(t["target"]).c_str(), Str(t["kind"]).c_str());
    } else {
      std::printf("%s (%s): failed: %s\n", Str(t["target"]).c_str(), Str(t["kind"]).c_str(),
                  Str(t["error"]).c_str());
    }
  }
  return all_sent ? kExitOk : kExitFailed;
}

// The token of write access over HTTP (docs/http-api.md, "Write access"):
// the token alone on stdout, so `picoflowctl web-token | xclip` works; where
// the page is, on stderr.
int WebTokenCmd(Session& s, const Args& a) {
  auto r = s.Call(method::kWebToken, {{"rotate", a.rotate}});
  if (!r) return s.exit_code();
  if (s.globals().json) {
    Session::PrintJson(*r);
    return kExitOk;
  }
  std::printf("%s\n", Str((*r)["token"]).c_str());
  if ((*r)["http_listen"].is_null()) {
    std::fprintf(stderr,
                 "picoflowctl: the daemon's HTTP listener is off: set http_listen in "
                 "picoflowd.yaml (docs/http-api.md)\n");
  } else if (a.rotate) {
    std::fprintf(stderr, "picoflowctl: a new token; the old one no longer works\n");
  }
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
    // Its triggers (docs/triggers.md) beside the cron: "on file, webhook".
    std::string on;
    for (const json& kind : w.value("triggers", json::array())) {
      on += (on.empty() ? "on " : ", ") + kind.get<std::string>();
    }
    if (!on.empty()) schedule += (schedule.empty() ? "" : "; ") + on;
    table.Add(
        {w["name"].get<std::string>(), Str(w.value("tasks", json(nullptr))),
         schedule.empty() ? "-" : schedule,
         w.value("timezone", std::string()).empty() ? "local" : w["timezone"].get<std::string>(),
         // A paused workflow's next_fire is the one it would have if resumed now.
         w["paused"] ? "-" : FireTime(w.value("next_fire", json(nullptr))),
         w["paused"] ? "yes" : "no", Str(w.value("origin", json(nullptr)))});
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
  const bool changed = r->value("changed", true);
  if (s.globals().json) {
    Session::PrintJson(*r);
  } else if (paused) {
    std::printf(changed ? "paused workflow '%s'\n" : "workflow '%s' is already paused\n",
                a.name.c_str());
  } else if (!changed) {
    std::printf("workflow '%s' is not paused (next fire %s)\n", a.name.c_str(),
                FireTime((*r)["next_fire"]).c_str());
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

// `daemon reload` as text: what changed, then the files that did not load.
void PrintReload(const json& r) {
  std::printf("reloaded: %zu added, %zu replaced, %zu removed, %zu unchanged\n", r["added"].size(),
              r["replaced"].size(), r["removed"].size(), r["unchanged"].size());
  for (const char* what : {"added", "replaced", "removed"}) {
    std::string names;
    for (const json& n : r[what]) names += (names.empty() ? "" : ", ") + n.get<std::string>();
    if (!names.empty()) std::printf("  %s: %s\n", what, names.c_str());
  }
  if (r["errors"].empty()) return;
  std::printf("workflow files with errors (the last good version, if any, stays in use):\n");
  for (const json& e : r["errors"]) std::printf("  %s\n", e["text"].get<std::string>().c_str());
}

// How the daemon keeps a task's processes together (daemon.status
// `containment`): "containment: subreaper (REASON)". An older daemon says
// nothing of it.
std::string ContainmentLine(const json& status) {
  const json& c = status.value("containment", json::object());
  const std::string mode = c.value("mode", std::string("unknown"));
  const std::string shown = mode == "process-group" ? "process group only" : mode;
  const std::string reason = c.value("reason", std::string());
  return "containment: " + shown + (reason.empty() ? "" : " (" + reason + ")");
}

int DaemonCmd(Session& s, const Args& a) {
  const std::string& what = a.name;
  const char* m = what == "status"   ? method::kDaemonStatus
                  : what == "reload" ? method::kDaemonReload
                                     : method::kDaemonVersion;
  auto r = s.Call(m, json::object());
  if (!r) return s.exit_code();
  if (s.globals().json) {
    Session::PrintJson(*r);
  } else if (what == "version") {
    std::printf("picoflowd %s (protocol %d)\n", Str((*r)["version"]).c_str(),
                (*r)["protocol"].get<int>());
  } else if (what == "reload") {
    PrintReload(*r);
  } else {
    std::printf("picoflowd %s (protocol %d), pid %d, up %s\n", Str((*r)["version"]).c_str(),
                (*r)["protocol"].get<int>(), (*r)["pid"].get<int>(),
                Dur((*r)["uptime_ms"]).c_str());
    std::printf("socket %s\nstate  %s\n", Str((*r)["socket"]).c_str(),
                Str((*r)["state_dir"]).c_str());
    std::printf("%s, %s, %s\n", CountOf((*r)["workflows"].get<std::int64_t>(), "workflow").c_str(),
                CountOf((*r)["active_runs"].get<std::int64_t>(), "active run").c_str(),
                CountOf((*r)["active_tasks"].get<std::int64_t>(), "running task").c_str());
    std::printf("store  %s\n", StoreState(r->value("store", json::object())).c_str());
    std::printf("%s\n", ContainmentLine(*r).c_str());
    if (const json& m = r->value("mqtt", json()); m.is_object()) {
      std::printf("mqtt   node %s of group %s, %s %s\n", Str(m["node"]).c_str(),
                  Str(m["group"]).c_str(),
                  m.value("connected", false) ? "connected to" : "not connected to (retrying)",
                  Str(m["broker"]).c_str());
    }
  }
  return kExitOk;
}

int Prune(Session& s, const Args& a) {
  auto r = s.Call(method::kStorePrune, {{"dry_run", a.dry_run}});
  if (!r) return s.exit_code();
  if (s.globals().json) {
    Session::PrintJson(*r);
    return kExitOk;
  }
  std::printf("%s %s and %s of output\n", a.dry_run ? "would delete" : "deleted",
              CountOf((*r)["runs"].get<std::int64_t>(), "run").c_str(),
              CountOf((*r)["output_bytes"].get<std::int64_t>(), "byte").c_str());
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
       c.add_option("files", a.items, "Workflow YAML files ('-': standard input)")->required();
     },
     Submit},
    {"run", "Start a run of a submitted workflow or a one-off run of a file",
     [](CLI::App& c, Args& a) {
       c.add_option("workflow", a.items, "Workflow name, or YAML file ('-': standard input)")
           ->required()
           ->expected(1);
       c.add_option("-p,--param", a.param_values,
                    "A param of the workflow, KEY=VALUE (repeat for more; wins over --params-file)")
           ->allow_extra_args(false);
       c.add_option("--params-file", a.params_file,
                    "Params from a JSON object file, name -> value ('-': standard input)");
       CLI::Option* only =
           c.add_option("--only", a.only,
                        "Run only this task (repeat for more); what it needs is taken as done, "
                        "with the outputs of its latest success")
               ->allow_extra_args(false);
       CLI::Option* down = c.add_flag("--downstream", a.downstream,
                                      "With --only: also run what depends on those tasks")
                               ->needs(only);
       c.add_flag("--upstream", a.upstream, "With --only: also run what those tasks need")
           ->needs(only)
           ->excludes(down);
       c.add_flag("--wait", a.wait, "Block until the run ends; exit 0 only if it succeeded");
       c.add_flag("--follow,-f", a.follow, "Stream task events and output until the run ends");
       c.add_flag("--force", a.force,
                  "Start now even if the workflow has max_active_runs runs going (no wait, "
                  "no refusal)");
     },
     RunCmd},
    {"status", "Workflows and their last runs, or one workflow's latest run",
     [](CLI::App& c, Args& a) {
       c.add_option("workflow", a.items, "Workflow name")->expected(0, 1);
       c.add_option("--run", a.run_id, "A run id");
       c.add_flag("--check", a.check,
                  "Exit 0 if the workflow's newest ended run succeeded, else 1 (for scripts)");
     },
     StatusCmd},
    {"history", "Recent runs of a workflow, or of all",
     [](CLI::App& c, Args& a) {
       c.add_option("workflow", a.name, "Workflow name (default: all)");
       c.add_option("-n", a.count, "How many runs")->check(CLI::Range(1, 1000));
     },
     History},
    {"logs", "Output of a workflow's latest run (or --run ID), task by task, attempts marked",
     [](CLI::App& c, Args& a) {
       c.add_option("workflow", a.name, "Workflow name");
       c.add_option("--run", a.run_id, "A run id");
       c.add_option("--task", a.task, "Only this task's output");
       c.add_flag("--follow,-f", a.follow, "Keep streaming until the run ends");
       c.add_option("-n,--lines", a.lines, "Only the last N lines")->check(CLI::Range(1, 1000000));
       c.add_option("--since", a.since,
                    "The output of every run started since then: a duration back from now "
                    "(30m, 2h, 1d) or a time (2026-11-27 03:40, local unless it has an offset)");
     },
     Logs},
    {"retry", "Run again what did not succeed in an ended run, reusing what did",
     [](CLI::App& c, Args& a) {
       c.add_option("run", a.name, "A run id, or a workflow name: its latest run")->required();
       c.add_flag("--latest", a.latest,
                  "Run the workflow's current version even if it changed since that run");
       c.add_flag("--wait", a.wait, "Block until the run ends; exit 0 only if it succeeded");
       c.add_flag("--force", a.force,
                  "Start now even if the workflow has max_active_runs runs going (no wait, "
                  "no refusal)");
     },
     Retry},
    {"outputs", "What the tasks of a run passed on to their dependents (KEY=VALUE outputs)",
     [](CLI::App& c, Args& a) {
       c.add_option("run", a.name, "A run id, or a workflow name: its latest run")->required();
       c.add_option("--task", a.task, "Only this task's outputs");
     },
     Outputs},
    {"cancel", "Cancel a run in progress, or every run of a workflow in progress",
     [](CLI::App& c, Args& a) {
       c.add_option("run", a.name, "A run id, or a workflow name: its runs in progress")
           ->required();
     },
     Cancel},
    {"workflows", "Workflows with their schedules", [](CLI::App&, Args&) {}, Workflows},
    {"show", "A workflow's source, as the daemon stores it",
     [](CLI::App& c, Args& a) { c.add_option("workflow", a.name, "Workflow name")->required(); },
     Show},
    {"graph", "A workflow's DAG: Graphviz DOT, or an indented tree on a terminal",
     [](CLI::App& c, Args& a) {
       c.add_option("workflow", a.name, "Workflow name")->required();
       c.add_flag("--dot", a.dot, "DOT even on a terminal (e.g. picoflowctl graph x | dot -Tsvg)");
     },
     GraphCmd},
    {"remove", "Forget a workflow (its history stays)",
     [](CLI::App& c, Args& a) { c.add_option("workflow", a.name, "Workflow name")->required(); },
     Remove},
    {"pause", "Stop a workflow's scheduled fires and its triggers (manual runs still work)",
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
    {"notifications", "Delivery attempts of notifications, newest first (docs/notifications.md)",
     [](CLI::App& c, Args& a) {
       a.count = 50;
       c.add_option("run", a.run_id, "Only those of this run");
       c.add_option("-n", a.count, "How many")->check(CLI::Range(1, 10000))->capture_default_str();
     },
     Notifications},
    {"notify-test", "Send a test notification to every notify target of a workflow",
     [](CLI::App& c, Args& a) { c.add_option("workflow", a.name, "Workflow name")->required(); },
     NotifyTest},
    {"web-token", "The token that lets the web page (and /api/v1/) run, cancel and pause",
     [](CLI::App& c, Args& a) {
       c.add_flag("--rotate", a.rotate, "Make a new token; the old one stops working");
     },
     WebTokenCmd},
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
    if (std::string_view(spec_.name) == "logs" && args_.name.empty() && args_.run_id == 0 &&
        args_.since.empty()) {
      std::fprintf(stderr, "picoflowctl: logs: give a workflow name, --run ID or --since\n");
      return kExitUsage;
    }
    if (std::string_view(spec_.name) == "logs" && args_.run_id != 0 && !args_.since.empty()) {
      std::fprintf(stderr, "picoflowctl: logs: --run and --since do not go together\n");
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
