#include "picoflowctl/usage.h"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <string_view>

#include "common/workflow_fields.h"
#include "picoflowctl/command.h"

namespace picoflow::ctl {
namespace {

// Words people type for a command that has another name here; a typo of a
// real command is found by edit distance instead.
constexpr std::pair<std::string_view, std::string_view> kSynonyms[] = {
    {"start", "run"},
    {"exec", "run"},
    {"trigger", "run"},
    {"list", "workflows"},
    {"ls", "workflows"},
    {"ps", "status"},
    {"stop", "cancel"},
    {"kill", "cancel"},
    {"rm", "remove"},
    {"delete", "remove"},
    {"unpause", "resume"},
    {"cat", "show"},
    {"dot", "graph"},
    {"reload", "daemon reload"},
    {"version", "daemon version"},
    {"help", "--help"},
};

// Every --long and -s name of `app`'s options, the help flag included.
std::vector<std::string> OptionNames(const CLI::App& app) {
  std::vector<std::string> names;
  for (const CLI::Option* opt : app.get_options()) {
    for (const std::string& l : opt->get_lnames()) names.push_back("--" + l);
    for (const std::string& s : opt->get_snames()) names.push_back("-" + s);
  }
  return names;
}

// True if `arg` is an option name of `app` that takes a value.
bool TakesValue(const CLI::App& app, const std::string& arg) {
  const CLI::Option* opt = app.get_option_no_throw(arg);
  return opt != nullptr && opt->get_expected_max() > 0;
}

// "-5" and "-1.5" are values, not options.
bool LooksLikeOption(const std::string& arg) {
  return arg.size() > 1 && arg[0] == '-' && !(arg[1] >= '0' && arg[1] <= '9');
}

// The option name a token names: "--task=x" -> "--task", "-n5" -> "-n".
std::string OptionName(const std::string& arg) {
  if (arg.rfind("--", 0) == 0) return arg.substr(0, arg.find('='));
  return arg.substr(0, 2);
}

std::string Suggest(const std::string& wanted, const std::vector<std::string>& candidates) {
  std::vector<std::string_view> views(candidates.begin(), candidates.end());
  return DidYouMean(ClosestMatch(wanted, views));
}

// The command a misspelt or foreign word most likely meant, or "".
std::string SuggestCommand(const std::string& word, const std::vector<std::string>& commands) {
  for (const auto& [from, to] : kSynonyms) {
    if (word == from) return " (did you mean '" + std::string(to) + "'?)";
  }
  return Suggest(word, commands);
}

/// The first unknown option among `args` for command `sub` (whose own
/// options and the global ones are known), as a message; "" if none.
std::string UnknownOption(const CLI::App& app, const CLI::App* sub,
                          const std::vector<std::string>& args) {
  std::vector<std::string> known = OptionNames(app);
  if (sub != nullptr) {
    for (std::string& name : OptionNames(*sub)) known.push_back(std::move(name));
    // `fleet run --wait`: the options of a command's own commands.
    for (const CLI::App* nested : sub->get_subcommands({})) {
      for (std::string& name : OptionNames(*nested)) known.push_back(std::move(name));
    }
  }
  for (const std::string& arg : args) {
    if (arg == "--") break;
    if (!LooksLikeOption(arg)) continue;
    const std::string name = OptionName(arg);
    bool found = false;
    for (const std::string& k : known) found = found || k == name;
    if (found) continue;
    const std::string where = sub != nullptr ? sub->get_name() + ": " : "";
    return where + "unknown option '" + name + "'" + Suggest(name, known);
  }
  return "";
}

}  // namespace

int ReportParseError(CLI::App& app, const std::vector<std::string>& args,
                     const CLI::ParseError& error) {
  if (error.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) {
    app.exit(error);  // --help, --version
    return kExitOk;
  }
  std::vector<std::string> commands;
  for (const CLI::App* sub : app.get_subcommands({})) commands.push_back(sub->get_name());
  // The command is the first word that is neither an option nor a global
  // option's value.
  const CLI::App* sub = nullptr;
  std::string word;
  for (std::size_t i = 0; i < args.size() && word.empty(); ++i) {
    if (!LooksLikeOption(args[i])) {
      word = args[i];
    } else if (args[i].find('=') == std::string::npos && TakesValue(app, args[i])) {
      ++i;
    }
  }
  for (const CLI::App* s : app.get_subcommands({})) {
    if (s->get_name() == word) sub = s;
  }
  std::string message;
  if (!word.empty() && sub == nullptr) {
    message = "unknown command '" + word + "'" + SuggestCommand(word, commands);
  } else {
    message = UnknownOption(app, sub, args);
  }
  if (message.empty() && sub == nullptr) message = "a command is required";
  if (message.empty()) message = sub->get_name() + ": " + error.what();
  std::fprintf(stderr, "picoflowctl: %s\nRun 'picoflowctl %s--help' for usage.\n", message.c_str(),
               sub != nullptr ? (sub->get_name() + " ").c_str() : "");
  return kExitUsage;
}

}  // namespace picoflow::ctl
