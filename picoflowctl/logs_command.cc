// `picoflowctl logs`: a run's stored output (run.logs pages) task by task,
// each attempt of a task marked, the last N lines of it (-n), the output of
// every run since a time (--since), and the rest live until the run ends
// (-f, run.logs follow).

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <deque>
#include <functional>
#include <limits>
#include <string_view>

#include "common/cron.h"
#include "common/duration.h"
#include "common/run_status.h"
#include "common/time_format.h"
#include "common/workflow_fields.h"
#include "picoflowctl/command.h"
#include "picoflowctl/render.h"
#include "picoflowctl/rpc_commands.h"
#include "picoflowctl/session.h"
#include "protocol/methods.h"
#include "protocol/progress.h"

namespace picoflow::ctl {
namespace {

bool IsStderr(const json& chunk) {
  return chunk["stream"] == OutputStreamName(OutputStream::kStderr);
}

/// Where logs sends what it prints: the terminal's OutputPrinter, or (with
/// --json) one compact JSON object per chunk, a line each, as run.logs pages
/// and run.output notifications give them. With -n N, what comes before
/// Flush() is cut into lines and only the last N are printed (in --json, a
/// chunk per line); after it, everything is printed as it comes.
class LogSink {
 public:
  LogSink(const Session& s, bool prefix, int tail)
      : json_(s.globals().json), printer_(prefix), tail_(tail) {}

  /// A line of its own before a run's output (not in --json).
  void Header(const std::string& text) {
    if (json_) return;
    if (tail_ > 0) {
      CloseLine();
      Keep({text, nullptr});
      return;
    }
    printer_.Finish();
    std::printf("%s\n", text.c_str());
  }

  /// A chunk of output; `run_id`, if not zero, is added to it in --json.
  void Chunk(json chunk, std::int64_t run_id) {
    if (run_id != 0) chunk["run_id"] = run_id;
    if (tail_ <= 0) {
      Print(chunk);
      return;
    }
    chunk.erase("seq");  // a line is not a stored chunk
    // A line may end in a later chunk of its task and stream; another
    // stream's chunk ends it, as OutputPrinter does on a terminal.
    const std::string key = chunk["task"].get<std::string>() + (IsStderr(chunk) ? "!" : "|");
    if (key != open_key_) CloseLine();
    open_key_ = key;
    const std::string data = chunk["data"];
    open_chunk_ = std::move(chunk);
    for (char c : data) {
      open_text_ += c;
      if (c == '\n') CloseLine();
    }
  }

  /// Prints the last N lines kept (lines still open last), then stops
  /// keeping.
  void Flush() {
    CloseLine();
    tail_ = 0;
    for (const Line& l : kept_) {
      if (l.chunk.is_null()) {
        Header(l.header);
      } else {
        Print(l.chunk);
      }
    }
    kept_.clear();
  }

  /// Ends a partial last line on the terminal.
  void Finish() { printer_.Finish(); }

 private:
  struct Line {
    std::string header;  ///< a header, when chunk is null
    json chunk;          ///< an output line, as a chunk
  };
  // Keeps the line being collected, if any, as a line.
  void CloseLine() {
    if (open_text_.empty()) return;
    json line = open_chunk_;
    line["data"] = std::move(open_text_);
    open_text_.clear();
    Keep({"", std::move(line)});
  }

  void Keep(Line line) {
    kept_.push_back(std::move(line));
    while (kept_.size() > static_cast<std::size_t>(tail_)) kept_.pop_front();
  }

  void Print(const json& chunk) {
    if (json_) {
      std::printf("%s\n", chunk.dump(-1, ' ', false, json::error_handler_t::replace).c_str());
      std::fflush(stdout);
    } else {
      printer_.Print(chunk["task"], IsStderr(chunk), chunk["data"]);
    }
  }

  bool json_;
  OutputPrinter printer_;
  int tail_;
  std::string open_key_;  ///< task and stream of the line being collected
  json open_chunk_;       ///< its latest chunk
  std::string open_text_;
  std::deque<Line> kept_;
};

// Pages through a run's stored output (of `task` only, if given) after
// `*cursor`, handing each chunk to `on_chunk`.
bool PageLogs(Session& s, std::int64_t run_id, const std::string& task, std::int64_t* cursor,
              const std::function<void(const json&)>& on_chunk) {
  for (;;) {
    json params = {{"run_id", run_id}, {"after", *cursor}, {"limit", 1000}};
    if (!task.empty()) params["task"] = task;
    auto page = s.Call(method::kRunLogs, params);
    if (!page) return false;
    if ((*page)["chunks"].empty()) return true;
    for (const json& c : (*page)["chunks"]) on_chunk(c);
    *cursor = (*page)["next"].get<std::int64_t>();
  }
}

// Pages through a run's stored output after `*cursor` into `sink`, in the
// order it was written.
bool StoredLogs(Session& s, std::int64_t run_id, const std::string& task, std::int64_t tag,
                std::int64_t* cursor, LogSink& sink) {
  return PageLogs(s, run_id, task, cursor, [&](const json& c) { sink.Chunk(c, tag); });
}

// `--- attempt 2 (exit 1) ---`: an attempt and how it ended (run.get's
// attempt record).
std::string AttemptMarker(const json& a) {
  const std::string status = a["status"];
  std::string how = OutcomeText(status, a.value("error", std::string()));
  const bool exited = status == AttemptStatusName(AttemptStatus::kSucceeded) ||
                      status == AttemptStatusName(AttemptStatus::kFailed);
  if (status == "running") how = status;
  if (exited && a["exit_code"].is_number()) how = "exit " + Str(a["exit_code"]);
  return "--- attempt " + Str(a["number"]) + " (" + how + ") ---";
}

// `--- task 'load': failed: exited with code 1 ---`: a task and how it ended
// (run.get's task record).
std::string TaskHeader(const json& t) {
  return "--- task '" + t["name"].get<std::string>() +
         "': " + OutcomeText(t["status"].get<std::string>(), t.value("error", std::string())) +
         " ---";
}

// One task's stored output, each of its attempts under a marker when it
// had several; for a task that printed nothing, says so, with how it ended
// when no header said it (`alone`: logs --task).
bool TaskLogs(Session& s, const json& run, const json& task, std::int64_t tag, bool alone,
              LogSink& sink) {
  const std::string name = task["name"];
  std::vector<json> attempts;
  for (const json& a : run["attempts"]) {
    if (a["task"] == name) attempts.push_back(a);
  }
  std::size_t marked = 0;  // attempts whose marker is printed
  const auto mark_through = [&](int number) {
    while (attempts.size() > 1 && marked < attempts.size() &&
           attempts[marked]["number"].get<int>() <= number) {
      sink.Header(AttemptMarker(attempts[marked++]));
    }
  };
  bool any = false;
  std::int64_t cursor = 0;
  const bool ok = PageLogs(s, run["id"].get<std::int64_t>(), name, &cursor, [&](const json& c) {
    mark_through(c["attempt"].get<int>());
    sink.Chunk(c, tag);
    any = true;
  });
  if (!ok) return false;
  mark_through(std::numeric_limits<int>::max());
  if (!any) {
    const std::string how =
        OutcomeText(task["status"].get<std::string>(), task.value("error", std::string()));
    sink.Header(alone ? "(no output; " + how + ")" : "(no output)");
  }
  sink.Finish();
  return true;
}

// A run's stored output task by task, in declaration order (only `task`, if
// given), each whole task under a TaskHeader unless only one is shown.
bool RunByTask(Session& s, std::int64_t run_id, const std::string& task, std::int64_t tag,
               LogSink& sink) {
  auto run = s.Call(method::kRunGet, {{"run_id", run_id}});
  if (!run) return false;
  for (const json& t : (*run)["tasks"]) {
    if (!task.empty() && t["name"] != task) continue;
    if (task.empty()) sink.Header(TaskHeader(t));
    if (!TaskLogs(s, *run, t, tag, !task.empty(), sink)) return false;
  }
  return true;
}

// Streams a run's output after `cursor` until the run ends (run.logs follow).
bool FollowRun(Session& s, std::int64_t run_id, const std::string& task, std::int64_t tag,
               std::int64_t cursor, LogSink& sink) {
  json params = {{"run_id", run_id}, {"follow", true}, {"after", cursor}};
  if (!task.empty()) params["task"] = task;
  auto done = s.Call(method::kRunLogs, params, [&](const Notification& n) {
    if (n.method == notification::kRunOutput) sink.Chunk(n.params, tag);
  });
  sink.Finish();
  return done.has_value();
}

// `logs --task T` of a run without task T would print nothing: says so,
// with the tasks the run has. Returns false (after printing) in that case.
bool RunHasTask(Session& s, std::int64_t run_id, const std::string& task) {
  auto run = s.Call(method::kRunGet, {{"run_id", run_id}});
  if (!run) return false;
  std::vector<std::string> names;
  for (const json& t : (*run)["tasks"]) names.push_back(t["name"].get<std::string>());
  if (std::find(names.begin(), names.end(), task) != names.end()) return true;
  std::vector<std::string_view> views(names.begin(), names.end());
  std::string all;
  for (const std::string& n : names) all += (all.empty() ? "" : ", ") + n;
  std::fprintf(stderr, "picoflowctl: run %lld of '%s' has no task '%s'%s; its tasks: %s\n",
               static_cast<long long>(run_id), (*run)["workflow"].get<std::string>().c_str(),
               task.c_str(), DidYouMean(ClosestMatch(task, views)).c_str(), all.c_str());
  return false;
}

// --since: a duration back from now (`2h`, `1d`), or an ISO 8601 time, local
// unless it says its offset. Returns the instant as the daemon writes times
// ("2026-11-27T03:40:00.000Z"), which compare as strings.
Result<std::string> SinceTime(const std::string& text) {
  const auto now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
  std::chrono::sys_seconds at;
  if (auto d = ParseDuration(text); d.ok()) {
    at = now - *d;
  } else {
    auto zone = FindZone("");
    auto t = ParseIso8601(text, zone.ok() ? *zone : nullptr);
    if (!t.ok()) {
      return Err(ErrorCode::kInvalid, "--since '" + text +
                                          "' is neither a duration (2h, 1d) nor a time "
                                          "(2026-11-27 03:40, 2026-11-27T03:40:00Z)");
    }
    at = *t;
  }
  return FormatIso8601(std::chrono::sys_time<std::chrono::milliseconds>(at));
}

// The runs (of `workflow`, or of all) created at or after `since`, oldest
// first, paging run.list back from the newest.
std::optional<std::vector<json>> RunsSince(Session& s, const std::string& workflow,
                                           const std::string& since) {
  std::vector<json> runs;
  json params = {{"limit", 1000}};
  if (!workflow.empty()) params["workflow"] = workflow;
  for (;;) {
    auto page = s.Call(method::kRunList, params);
    if (!page) return std::nullopt;
    for (const json& r : (*page)["runs"]) {
      if (r["created_at"].get<std::string>() < since) {
        std::reverse(runs.begin(), runs.end());
        return runs;
      }
      runs.push_back(r);
    }
    if ((*page)["runs"].size() < 1000) break;
    params["before"] = runs.back()["id"];
  }
  std::reverse(runs.begin(), runs.end());
  return runs;
}

std::string RunHeader(const json& run) {
  return "--- run " + std::to_string(run["id"].get<std::int64_t>()) + " of '" +
         run["workflow"].get<std::string>() + "': " + run["status"].get<std::string>() +
         ", started " + ShortTime(run["started_at"]) + " ---";
}

}  // namespace

int Logs(Session& s, const Args& a) {
  if (a.follow) s.CatchInterrupts();  // Ctrl-C stops following; the run goes on
  std::vector<json> runs;             // with --since
  std::vector<std::int64_t> ids;
  if (!a.since.empty()) {
    auto since = SinceTime(a.since);
    if (!since.ok()) {
      std::fprintf(stderr, "picoflowctl: logs: %s\n", since.error().message.c_str());
      return kExitUsage;
    }
    auto found = RunsSince(s, a.name, *since);
    if (!found) return s.exit_code();
    if (found->empty() && !a.name.empty() && !WorkflowExists(s, a.name)) return s.exit_code();
    runs = std::move(*found);
    for (const json& r : runs) ids.push_back(r["id"]);
    if (ids.empty()) {
      std::fprintf(stderr, "picoflowctl: no run%s started since %s\n",
                   a.name.empty() ? "" : (" of '" + a.name + "'").c_str(), since->c_str());
      return kExitOk;
    }
  } else {
    auto id = ResolveRun(s, a);
    if (!id) return s.exit_code() != kExitOk ? s.exit_code() : kExitFailed;
    if (!a.task.empty() && !RunHasTask(s, *id, a.task)) {
      return s.exit_code() != kExitOk ? s.exit_code() : kExitFailed;
    }
    ids.push_back(*id);
  }
  LogSink sink(s, a.task.empty(), a.lines);
  // The whole of stored runs reads task by task; the last lines (-n) and
  // what is followed (-f) read as the output was written.
  const bool by_task = !a.follow && a.lines <= 0;
  std::int64_t cursor = 0;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    // Several runs: each under a header, each chunk tagged with its run in --json.
    const std::int64_t tag = runs.empty() ? 0 : ids[i];
    if (!runs.empty()) sink.Header(RunHeader(runs[i]));
    cursor = 0;
    const bool ok = by_task ? RunByTask(s, ids[i], a.task, tag, sink)
                            : StoredLogs(s, ids[i], a.task, tag, &cursor, sink);
    // Ctrl-C while what is stored is read (with -f) stops following as well.
    if (!ok) return s.interrupted() ? StoppedFollowing(ids.back()) : s.exit_code();
  }
  sink.Flush();
  const std::int64_t last_tag = runs.empty() ? 0 : ids.back();
  if (a.follow && !FollowRun(s, ids.back(), a.task, last_tag, cursor, sink)) {
    return s.interrupted() ? StoppedFollowing(ids.back()) : s.exit_code();
  }
  sink.Finish();
  return kExitOk;
}

}  // namespace picoflow::ctl
