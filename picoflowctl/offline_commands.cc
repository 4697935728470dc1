// validate and cron: the commands that work without a daemon.

#include <date/tz.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>

#include "common/cron.h"
#include "common/duration.h"
#include "common/notify.h"
#include "common/secrets.h"
#include "common/text_escape.h"
#include "common/time_format.h"
#include "common/workflow_load.h"
#include "picoflowctl/command.h"
#include "picoflowctl/render.h"
#include "picoflowctl/source_arg.h"
#include "picoflowctl/time_display.h"
#include "protocol/progress.h"

namespace picoflow::ctl {
namespace {

using nlohmann::json;

SysSeconds Now() {
  return std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
}

/// How many upcoming fires `validate` shows per schedule.
constexpr int kFiresShown = 3;

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

/// Where a task's retry or timeout comes from: the task itself, the
/// workflow's config, or the built-in default (a config value equal to the
/// built-in one counts as the default).
template <class T>
std::string SettingSource(bool set_on_task, T workflow_value, T builtin) {
  if (set_on_task) return "task";
  return workflow_value == builtin ? "default" : "config";
}

// `arg` as a shell word: as it is when that is unambiguous, else in single
// quotes ('it'\''s').
std::string ShellWord(const std::string& arg) {
  const bool plain = !arg.empty() && std::all_of(arg.begin(), arg.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 ||
           std::string_view("-_./=:,+%@").find(c) != std::string_view::npos;
  });
  if (plain) return arg;
  std::string quoted = "'";
  for (char c : arg) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

// A condition as written: its command (a shell line), then its args if it
// has them, each a shell word, so that `[x, "a b"]` and `[x, a, b]` differ.
json ConditionJson(const std::optional<ShellConfig>& when) {
  if (!when) return nullptr;
  std::string text = when->command;
  for (const std::string& a : when->args.value_or(std::vector<std::string>{})) {
    text += " " + ShellWord(a);
  }
  return text;
}

// Secrets by name and source; their values are read only when a task starts.
json SecretsJson(const std::vector<Secret>& secrets) {
  json out = json::array();
  for (const Secret& s : secrets) out.push_back({{"name", s.name}, {"from", SecretSourceText(s)}});
  return out;
}

// Each notify target: its name, kind, where it goes, and what it is told of.
json NotifyJson(const std::optional<NotifyTargets>& targets) {
  if (!targets) return nullptr;  // the daemon's default applies
  json out = json::array();
  for (const NotifyTarget& t : *targets) {
    json on = json::array();
    for (std::size_t i = 0; i < std::size(kNotifyEventNames); ++i) {
      if ((t.on & (1u << i)) != 0) on.push_back(kNotifyEventNames[i]);
    }
    json entry = {{"name", t.name},
                  {"kind", NotifyKindName(t.kind)},
                  {"on", std::move(on)},
                  {"to", t.kind == NotifyKind::kEmail ? t.smtp : t.url}};
    if (t.kind == NotifyKind::kEmail) entry["recipients"] = t.to;
    if (t.kind == NotifyKind::kWebhook) {
      entry["format"] = kWebhookFormatNames[static_cast<std::size_t>(t.format)];
    }
    out.push_back(std::move(entry));
  }
  return out;
}

/// Each task's effective timeout and retries, and where they come from: the
/// 5-minute default timeout surprises whoever did not know it; and its
/// condition, if it has one.
json TaskSettingsJson(const Workflow& w) {
  const WorkflowConfig builtin;
  json out = json::array();
  for (const Task& t : w.tasks) {
    out.push_back(
        {{"name", t.name},
         {"timeout_s", t.timeout.count()},
         {"timeout_from",
          SettingSource(t.timeout_set, w.config.timeout_default, builtin.timeout_default)},
         {"retry", t.retry},
         {"retry_from", SettingSource(t.retry_set, w.config.retry_default, builtin.retry_default)},
         {"when", ConditionJson(t.when)},
         {"secrets", SecretsJson(t.secrets)}});
  }
  return out;
}

// "timeout 5m (default), 3 retries (default)"
std::string TaskSettingsText(const json& t) {
  const auto from = [](const json& source, const char* key) -> std::string {
    if (source == "task") return "";
    if (source == "default") return " (default)";
    return std::string(" (config.") + key + ")";
  };
  const int retry = t["retry"].get<int>();
  std::string text = "timeout " +
                     FormatDuration(std::chrono::seconds(t["timeout_s"].get<std::int64_t>())) +
                     from(t["timeout_from"], "timeout_default") + ", " + std::to_string(retry) +
                     (retry == 1 ? " retry" : " retries") + from(t["retry_from"], "retry_default");
  if (t.contains("when") && t["when"].is_string()) {
    text += ", when: " + t["when"].get<std::string>();
  }
  std::string secrets;
  for (const json& s : t.value("secrets", json::array())) {
    secrets += (secrets.empty() ? "" : ", ") + s["name"].get<std::string>();
  }
  if (!secrets.empty()) text += ", secrets: " + secrets;
  return text;
}

json DiagnosticsJson(const Diagnostics& list) {
  json out = json::array();
  for (const Diagnostic& d : list) {
    out.push_back({{"line", d.pos.line},
                   {"col", d.pos.col},
                   {"message", EscapeControls(d.message)},
                   {"text", d.ToString()}});
  }
  return out;
}

/// Each schedule with its next fires in the workflow's zone, named: what a
/// schedule means in practice ("every hour", not "02:00") shows at a glance.
json SchedulesJson(const Workflow& w, SysSeconds now) {
  json out = json::array();
  auto zone = FindZone(w.timezone);
  const date::time_zone* z = zone.ok() ? *zone : nullptr;
  const std::string zone_name = z != nullptr ? std::string(z->name()) : "UTC";
  for (const std::string& text : w.schedule) {
    auto expr = CronExpr::Parse(text);
    if (!expr.ok()) continue;
    json fires = json::array();
    SysSeconds t = now;
    for (int i = 0; i < kFiresShown; ++i) {
      auto next = expr->NextAfter(t, z);
      if (!next) break;
      t = *next;
      fires.push_back(FormatIso8601(t, z));
    }
    out.push_back({{"expression", text},
                   {"timezone", zone_name},
                   {"local_zone", w.timezone.empty()},
                   {"next", std::move(fires)}});
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
    entry["warnings"] = DiagnosticsJson(loaded.warnings);
    if (!loaded.ok()) {
      entry["errors"] = DiagnosticsJson(loaded.diagnostics);
      return entry;
    }
    const Workflow& w = *loaded.workflow;
    json order = json::array();
    for (int i : loaded.dag->topo_order()) order.push_back(w.tasks[i].name);
    entry["workflow"] = w.name;
    entry["tasks"] = w.tasks.size() - w.HandlerCount();  // as workflow.validate counts them
    entry["order"] = std::move(order);
    entry["task_settings"] = TaskSettingsJson(w);
    entry["when"] = ConditionJson(w.when);
    entry["max_active_runs"] = w.max_active_runs ? json(*w.max_active_runs) : json(nullptr);
    entry["secrets"] = SecretsJson(w.secrets);
    entry["notify"] = NotifyJson(w.notify);
    entry["schedule"] = w.schedule;
    if (!w.schedule.empty()) {
      const SysSeconds now = Now();
      auto zone = FindZone(w.timezone);
      const date::time_zone* z = zone.ok() ? *zone : nullptr;
      auto next = NextFire(w, z, now);
      entry["next_fire"] = next ? json(FormatIso8601(*next, z)) : json(nullptr);
      entry["schedules"] = SchedulesJson(w, now);
    }
    return entry;
  }

  static void Print(const json& entry, const LoadedWorkflow& loaded, bool colour) {
    const std::string file = entry["file"];
    // Errors and warnings together, in file order, as a compiler prints them.
    Diagnostics all = loaded.diagnostics;
    all.insert(all.end(), loaded.warnings.begin(), loaded.warnings.end());
    std::stable_sort(all.begin(), all.end(), [](const Diagnostic& a, const Diagnostic& b) {
      return a.pos.line != b.pos.line ? a.pos.line < b.pos.line : a.pos.col < b.pos.col;
    });
    for (const Diagnostic& d : all) std::printf("%s\n", d.ToString().c_str());
    if (!loaded.ok()) return;
    std::string line = file + ": " + ColourStatus("valid", colour) + ": workflow '" +
                       entry["workflow"].get<std::string>() + "', " +
                       std::to_string(entry["tasks"].get<std::size_t>()) + " task" +
                       (entry["tasks"] == 1 ? "" : "s") +
                       ", order: " + JoinOrder(*loaded.workflow, *loaded.dag);
    std::printf("%s\n", line.c_str());
    if (entry["when"].is_string()) {
      std::printf("  when: %s (the run is skipped unless it exits 0)\n",
                  entry["when"].get<std::string>().c_str());
    }
    if (entry["max_active_runs"].is_number()) {
      const int n = entry["max_active_runs"].get<int>();
      std::printf("  max_active_runs %d: past %s, %s\n", n, n == 1 ? "one run" : "that many runs",
                  loaded.workflow->overlap == OverlapPolicy::kQueue
                      ? "runs wait their turn (overlap: queue)"
                      : "fires are skipped and runs by hand refused (overlap: skip)");
    }
    for (const json& s : entry["secrets"]) {
      std::printf("  secret %s: from %s (read when a task starts; every task gets it)\n",
                  s["name"].get<std::string>().c_str(), s["from"].get<std::string>().c_str());
    }
    PrintNotify(entry["notify"]);
    for (const json& t : entry["task_settings"]) {
      const std::string name = t["name"];
      const int index = loaded.workflow->FindTask(name);
      std::printf("  %s %s: %s\n", loaded.workflow->IsHandler(index) ? "handler" : "task",
                  name.c_str(), TaskSettingsText(t).c_str());
    }
    for (const json& s : entry.value("schedules", json::array())) {
      const std::string zone = s["local_zone"].get<bool>()
                                   ? "local zone, " + s["timezone"].get<std::string>()
                                   : s["timezone"].get<std::string>();
      std::string fires;
      for (const json& t : s["next"]) fires += (fires.empty() ? "" : ", ") + DisplayTime(t);
      std::printf("  schedule '%s' (%s): %s\n", s["expression"].get<std::string>().c_str(),
                  zone.c_str(),
                  fires.empty() ? "never fires within 5 years" : ("next " + fires).c_str());
    }
  }

  // "notify webhook-1 (webhook, slack) https://...: on failure, recovered"
  static void PrintNotify(const json& notify) {
    if (notify.is_null()) return;  // the daemon's default targets, if it has any
    if (notify.empty()) std::printf("  notify: none (notify: [])\n");
    for (const json& t : notify) {
      std::string on;
      for (const json& e : t["on"]) on += (on.empty() ? "" : ", ") + e.get<std::string>();
      std::string kind = t["kind"];
      if (t.contains("format")) kind += ", " + t["format"].get<std::string>();
      std::string to = t["to"];
      std::string recipients;
      for (const json& r : t.value("recipients", json::array())) {
        recipients += (recipients.empty() ? "" : ", ") + r.get<std::string>();
      }
      if (!recipients.empty()) to += " to " + recipients;
      std::printf("  notify %s (%s) %s: on %s\n", t["name"].get<std::string>().c_str(),
                  kind.c_str(), to.c_str(), on.c_str());
    }
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
    if (!expr->warning().empty()) {
      std::fprintf(stderr, "picoflowctl: warning: '%s': %s\n", expr_.c_str(),
                   expr->warning().c_str());
    }
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
      if (globals.json) {
        out.push_back(FormatIso8601(t, *zone));
      } else {
        std::printf("%s\n", DisplayTime(t).c_str());
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
