#pragma once
// Usage errors: what picoflowctl says when argv does not parse. CLI11's own
// messages answer the wrong question for the commonest slips ("A subcommand
// is required" for a misspelt command, "At Most 1 required" for an unknown
// option), so the command line is looked at again to name what is unknown
// and suggest the closest thing that exists.

#include <string>
#include <vector>

namespace CLI {
class App;
class ParseError;
}  // namespace CLI

namespace picoflow::ctl {

/// Prints why `args` (argv without the program name) did not parse, for
/// `app` whose parse threw `error`, and returns the exit code: kExitOk for
/// --help and --version (printed as CLI11 prints them), else kExitUsage.
/// The message names an unknown command (`unknown command 'statsu' (did you
/// mean 'status'?)`) or option (`run: unknown option '--task'`) when there is
/// one, else repeats CLI11's message with the command it is about.
int ReportParseError(CLI::App& app, const std::vector<std::string>& args,
                     const CLI::ParseError& error);

}  // namespace picoflow::ctl
