#pragma once
// The handlers of the commands that talk to picoflowd, and the options they
// read. rpc_commands.cc holds the table of {subcommand, options, handler};
// each handler turns the options into JSON-RPC calls and renders the answers
// (no business logic: that is the daemon's).

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace picoflow::ctl {

class Session;

/// Every option any daemon command takes; each command binds what it uses.
struct Args {
  std::vector<std::string> items;  ///< positional: files, names
  std::string name;
  std::int64_t run_id = 0;
  std::string task;
  int count = 20;
  bool follow = false;
  bool dry_run = false;
  bool rotate = false;  ///< web-token --rotate
  bool wait = false;
  bool dot = false;
  bool check = false;
  int lines = 0;      ///< logs -n: the last N lines only; 0 for all
  std::string since;  ///< logs --since: a duration or a time
  std::string method;
  std::string params = "{}";              ///< call: the raw params
  std::vector<std::string> param_values;  ///< run -p KEY=VALUE, in order
  std::string params_file;                ///< run --params-file
  bool latest = false;                    ///< retry --latest
  std::vector<std::string> only;          ///< run --only TASK, in order
  bool downstream = false;                ///< run --downstream
  bool upstream = false;                  ///< run --upstream
  bool force = false;                     ///< run/retry --force: past max_active_runs
};

/// Calls workflow.get to tell a workflow that exists (loaded, never run)
/// from a name the daemon does not know (after a run.list came back empty).
/// Returns false, after Session printed the daemon's -32001 (with its
/// did-you-mean), if there is no such workflow.
bool WorkflowExists(Session& s, const std::string& name);
/// The run id named by --run, or the latest run of workflow `a.name`.
/// Prints why and returns nullopt if there is none.
std::optional<std::int64_t> ResolveRun(Session& s, const Args& a);

/// Ctrl-C ended the wait for run `run_id` (0: its id is not known yet):
/// says that the run goes on in the daemon and how to cancel it. Returns
/// kExitInterrupted.
int StoppedFollowing(std::int64_t run_id);

/// Handlers: each returns the process exit code (command.h).
int RunCmd(Session& s, const Args& a);
int StatusCmd(Session& s, const Args& a);
int History(Session& s, const Args& a);
int Logs(Session& s, const Args& a);  ///< logs_command.cc
int Cancel(Session& s, const Args& a);
int Outputs(Session& s, const Args& a);
int Retry(Session& s, const Args& a);
int Show(Session& s, const Args& a);      ///< workflow_commands.cc
int GraphCmd(Session& s, const Args& a);  ///< workflow_commands.cc

}  // namespace picoflow::ctl
