// validate and cron: the commands that work without a daemon.

#include <date/tz.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>

#include "common/cron.h"
#include "common/time_format.h"
#include "common/workflow_load.h"
#include "picoflowctl/command.h"
#include "picoflowctl/render.h"
#include "picoflowctl/source_arg.h"
#include "protocol/progress.h"

namespace picoflow::ctl {
namespace {

using nlohmann::json;

SysSeconds Now() {
  return std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
}

/// The earliest next fire of a workflow's schedules after `after`, or nullopt.
std::optional<SysSeconds> NextFire(const Workflow& w, const date::time_zone* zone,
                                   SysSeconds after) {
  std::optional<SysSeconds> best;
  for (const std::string& text : w.schedule) {
    auto expr = CronExpr::Parse(text);
    if (!expr.ok()) continue;  // the loader already reported it
    auto next = expr->NextAfter(after, zone);
    if (next && (!best || *next < *best)) best = next;
  }
  return best;
}

std::string JoinOrder(const Workflow& w, const Dag& dag) {
  std::string out;
  for (int i : dag.topo_order()) {
    if (!out.empty()) out += ", ";
    out += w.tasks[i].name;
  }
  return out;
}

/// `picoflowctl validate FILE...`
class ValidateCommand final : public Command {
 public:
  CLI::App* Register(CLI::App& app) override {
    auto* sub = app.add_subcommand("validate", "Check workflow files without a daemon");
    sub->add_option("files", files_, "Workflow YAML files ('-': standard input)")->required();
    return sub;
  }

  int Run(const Globals& globals) override {
    json out = json::array();
    bool all_ok = true;
    const bool colour = UseColour(stdout, !globals.no_colour);
    for (const std::string& file : files_) {
      LoadedWorkflow loaded = Load(file);
      all_ok = all_ok && loaded.ok();
      json entry = Describe(SourceLabel(file), loaded);
      if (!globals.json) Print(entry, loaded, colour);
      out.push_back(std::move(entry));
    }
    if (globals.json) std::printf("%s\n", out.dump(2).c_str());
    return all_ok ? kExitOk : kExitFailed;
  }

 private:
  // `-` is standard input, read whole (a file that cannot be read is one
  // diagnostic, as LoadWorkflowFile reports it).
  static LoadedWorkflow Load(const std::string& file) {
    if (!IsStdinArg(file)) return LoadWorkflowFile(file);
    auto text = ReadSourceArg(file);
    if (text.ok()) return LoadWorkflowText(*text, SourceLabel(file));
    LoadedWorkflow failed;
    failed.diagnostics.push_back(Diagnostic{SourceLabel(file), {}, text.error().message});
    return failed;
  }

  static json Describe(const std::string& file, const LoadedWorkflow& loaded) {
    json entry = {{"file", file}, {"valid", loaded.ok()}};
    if (!loaded.ok()) {
      json errors = json::array();
      for (const Diagnostic& d : loaded.diagnostics) {
        errors.push_back({{"line", d.pos.line},
                          {"col", d.pos.col},
                          {"message", d.message},
                          {"text", d.ToString()}});
      }
      entry["errors"] = std::move(errors);
      return entry;
    }
    const Workflow& w = *loaded.workflow;
    json order = json::array();
    for (int i : loaded.dag->topo_order()) order.push_back(w.tasks[i].name);
    entry["workflow"] = w.name;
    entry["tasks"] = w.tasks.size();
    entry["order"] = std::move(order);
    entry["schedule"] = w.schedule;
    if (!w.schedule.empty()) {
      auto zone = FindZone(w.timezone);
      const date::time_zone* z = zone.ok() ? *zone : nullptr;
      auto next = NextFire(w, z, Now());
      entry["next_fire"] = next ? json(FormatIso8601(*next, z)) : json(nullptr);
    }
    return entry;
  }

  static void Print(const json& entry, const LoadedWorkflow& loaded, bool colour) {
    const std::string file = entry["file"];
    if (!loaded.ok()) {
      for (const Diagnostic& d : loaded.diagnostics) std::printf("%s\n", d.ToString().c_str());
      return;
    }
    std::string line = file + ": " + ColourStatus("valid", colour) + ": workflow '" +
                       entry["workflow"].get<std::string>() + "', " +
                       std::to_string(entry["tasks"].get<std::size_t>()) + " task" +
                       (entry["tasks"] == 1 ? "" : "s") +
                       ", order: " + JoinOrder(*loaded.workflow, *loaded.dag);
    if (entry.contains("next_fire") && entry["next_fire"].is_string()) {
      line += "; next fire " + entry["next_fire"].get<std::string>();
    }
    std::printf("%s\n", line.c_str());
  }

  std::vector<std::string> files_;
};

/// `picoflowctl cron EXPR [--tz ZONE] [--after ISO-8601] [-n N]`
class CronCommand final : public Command {
 public:
  CLI::App* Register(CLI::App& app) override {
    auto* sub = app.add_subcommand("cron", "Print the next fire times of a cron expression");
    sub->add_option("expr", expr_, "Cron expression (5 or 6 fields, or a macro)")->required();
    sub->add_option("--tz", zone_, "IANA time zone (default: local)");
    sub->add_option("--after", after_, "Start instant, ISO 8601 (default: now)");
    sub->add_option("-n", count_, "How many fire times")->check(CLI::Range(1, 10000));
    return sub;
  }

  int Run(const Globals& globals) override {
    auto expr = CronExpr::Parse(expr_);
    if (!expr.ok()) return Fail("invalid cron expression '" + expr_ + "': " + expr.error().message);
    auto zone = FindZone(zone_);
    if (!zone.ok()) return Fail(zone.error().message);
    SysSeconds t = Now();
    if (!after_.empty()) {
      auto parsed = ParseIso8601(after_, *zone);
      if (!parsed.ok()) return Fail(parsed.error().message);
      t = *parsed;
    }
    json out = json::array();
    for (int i = 0; i < count_; ++i) {
      auto next = expr->NextAfter(t, *zone);
      if (!next) break;
      t = *next;
      const std::string text = FormatIso8601(t, *zone);
      if (globals.json) {
        out.push_back(text);
      } else {
        std::printf("%s\n", text.c_str());
      }
    }
    if (globals.json) std::printf("%s\n", out.dump().c_str());
    return kExitOk;
  }

 private:
  static int Fail(const std::string& message) {
    std::fprintf(stderr, "picoflowctl: %s\n", message.c_str());
    return kExitUsage;
  }

  std::string expr_;
  std::string zone_;
  std::string after_;
  int count_ = 5;
};

}  // namespace

std::vector<std::unique_ptr<Command>> OfflineCommands() {
  std::vector<std::unique_ptr<Command>> commands;
  commands.push_back(std::make_unique<ValidateCommand>());
  commands.push_back(std::make_unique<CronCommand>());
  return commands;
}

}  // namespace picoflow::ctl
