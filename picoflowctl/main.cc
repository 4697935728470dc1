// picoflowctl: argv -> subcommand -> (JSON-RPC call) -> rendered output.

#include <CLI/CLI.hpp>
#include <cstdio>

#include "common/paths.h"
#include "picoflowctl/command.h"
#include "picoflowctl/time_display.h"
#include "picoflowctl/usage.h"

int main(int argc, char** argv) {
  using namespace picoflow::ctl;
  CLI::App app{"picoflowctl - control the picoflowd workflow daemon", "picoflowctl"};
  app.set_version_flag("--version", PICOFLOW_VERSION);
  app.require_subcommand(1);
  app.fallthrough();  // global options may follow the subcommand
  Globals globals;
  app.add_option("--socket", globals.socket, "Control socket of picoflowd");
  app.add_flag("--json", globals.json, "Machine-readable JSON output");
  app.add_flag("--no-color", globals.no_colour, "No colour, even on a terminal (also NO_COLOR=1)");
  app.add_flag("--utc", globals.utc,
               "Times in UTC (default: the local zone: $TZ, else /etc/localtime)");

  std::vector<std::unique_ptr<Command>> commands = OfflineCommands();
  for (auto& command : DaemonCommands()) commands.push_back(std::move(command));
  for (auto& command : FleetCommands()) commands.push_back(std::move(command));
  std::vector<std::pair<CLI::App*, Command*>> registered;
  for (auto& command : commands) registered.push_back({command->Register(app), command.get()});

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return ReportParseError(app, std::vector<std::string>(argv + 1, argv + argc), e);
  }
  SetDisplayUtc(globals.utc);
  if (globals.socket.empty()) globals.socket = picoflow::DefaultClientSocket();
  for (auto& [sub, command] : registered) {
    if (sub->parsed()) return command->Run(globals);
  }
  return kExitUsage;
}
