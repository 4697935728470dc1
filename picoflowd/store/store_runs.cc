// Store: runs, task states, attempts and output (the run history).

#include <algorithm>
#include <cassert>
#include <limits>
#include <nlohmann/json.hpp>

#include "picoflowd/store/output_log.h"
#include "picoflowd/store/sqlite_db.h"
#include "picoflowd/store/store.h"
#include "picoflowd/store/store_backlog.h"
#include "picoflowd/util/logging.h"

namespace picoflow {
namespace {

constexpr int kMaxPage = 1000;  // ListRuns / ReadOutput rows per call

Error NoRun(std::int64_t run_id) {
  return Err(ErrorCode::kNotFound, "no run " + std::to_string(run_id));
}

// An attempt's rowid is run_id * 2^24 + seq, so a run's attempts are one
// rowid range (store_schema.cc, schema 7); the SQL spells 2^24 as 16777216.
constexpr std::int64_t kAttemptsPerRun = std::int64_t{1} << 24;

std::int64_t AttemptRowId(AttemptKey attempt) {
  return attempt.run_id * kAttemptsPerRun + attempt.seq;
}

std::string AttemptName(AttemptKey attempt) {
  return "attempt " + std::to_string(attempt.seq) + " of run " + std::to_string(attempt.run_id);
}

Error NoAttempt(AttemptKey attempt) {
  return Err(ErrorCode::kNotFound, "no " + AttemptName(attempt));
}

// An attempt's status as the attempts table stores it: the CHECK of its
// schema pins "timeout", kTimeout's name before "timed_out", and
// ParseAttemptStatus reads both (common/run_status.h).
const char* StoredAttemptStatus(AttemptStatus status) {
  return status == AttemptStatus::kTimeout ? "timeout" : AttemptStatusName(status);
}

// ---- row readers: column lists and the functions that decode them --------------

constexpr const char* kRunColumns =
    "id, workflow, version_id, status, triggered_by, scheduled_at, created_at, started_at,"
    " ended_at, error, reason, params, retry_of, only, trigger_event";

// runs.params and run_tasks.outputs: a JSON object, name -> value in their
// order; '' for none.
std::string EncodeValues(const std::vector<std::pair<std::string, std::string>>& params) {
  if (params.empty()) return "";
  nlohmann::ordered_json object = nlohmann::ordered_json::object();
  for (const auto& [name, value] : params) object[name] = value;
  return object.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::vector<std::pair<std::string, std::string>> DecodeValues(const std::string& text) {
  std::vector<std::pair<std::string, std::string>> params;
  if (text.empty()) return params;
  const auto object = nlohmann::ordered_json::parse(text, nullptr, false);
  assert(object.is_object() && "only the store writes this column");
  if (!object.is_object()) return params;
  for (const auto& [name, value] : object.items()) {
    params.emplace_back(name, value.is_string() ? value.get<std::string>() : value.dump());
  }
  return params;
}

// runs.only: {"tasks": [names], "with": "downstream"|"upstream"} ("with"
// left out for the tasks alone); '' for a run of every task.
std::string EncodeSelection(const std::optional<RunSelection>& only) {
  if (!only) return "";
  nlohmann::ordered_json object = {{"tasks", only->tasks}};
  if (only->with != SelectWith::kAlone) object["with"] = SelectWithName(only->with);
  return object.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::optional<RunSelection> DecodeSelection(const std::string& text) {
  if (text.empty()) return std::nullopt;
  const auto object = nlohmann::json::parse(text, nullptr, false);
  assert(object.is_object() && "only the store writes this column");
  if (!object.is_object()) return std::nullopt;
  RunSelection only;
  for (const auto& t : object.value("tasks", nlohmann::json::array())) {
    if (t.is_string()) only.tasks.push_back(t.get<std::string>());
  }
  only.with = ParseSelectWith(object.value("with", "")).value_or(SelectWith::kAlone);
  return only;
}

// runs.trigger_event: {"file", "topic", "payload", "source"}, each only when
// set; '' for a run no event started.
std::string EncodeEvent(const TriggerEvent& event) {
  if (event.empty()) return "";
  nlohmann::ordered_json object = nlohmann::ordered_json::object();
  if (!event.file.empty()) object["file"] = event.file;
  if (!event.topic.empty()) object["topic"] = event.topic;
  if (!event.payload.empty()) object["payload"] = event.payload;
  if (!event.source.empty()) object["source"] = event.source;
  return object.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

TriggerEvent DecodeEvent(const std::string& text) {
  TriggerEvent event;
  if (text.empty()) return event;
  const auto object = nlohmann::json::parse(text, nullptr, false);
  assert(object.is_object() && "only the store writes this column");
  if (!object.is_object()) return event;
  event.file = object.value("file", "");
  event.topic = object.value("topic", "");
  event.payload = object.value("payload", "");
  event.source = object.value("source", "");
  return event;
}

RunRecord ReadRun(const Query& q) {
  RunRecord r;
  r.id = q.Int64(0);
  r.workflow = q.Text(1);
  r.version_id = q.Int64(2);
  auto status = ParseRunStatus(q.Text(3));
  auto trigger = ParseRunTrigger(q.Text(4));
  assert(status && trigger && "only the store writes these columns");
  r.status = status.value_or(RunStatus::kFailed);
  r.trigger = trigger.value_or(RunTrigger::kManual);
  r.scheduled_at = q.OptionalTime(5);
  r.created_at = q.Time(6);
  r.started_at = q.OptionalTime(7);
  r.ended_at = q.OptionalTime(8);
  r.error = q.Text(9);
  r.reason = q.Text(10);
  r.params = DecodeValues(q.Text(11));
  r.retry_of = q.OptionalInt64(12);
  r.only = DecodeSelection(q.Text(13));
  r.event = DecodeEvent(q.Text(14));
  return r;
}

constexpr const char* kTaskColumns =
    "task, status, attempts, started_at, ended_at, exit_code, error, outputs";

TaskRecord ReadTask(const Query& q) {
  TaskRecord t;
  t.name = q.Text(0);
  auto status = ParseTaskStatus(q.Text(1));
  assert(status && "only the store writes this column");
  t.status = status.value_or(TaskStatus::kFailed);
  t.attempts = q.Int(2);
  t.started_at = q.OptionalTime(3);
  t.ended_at = q.OptionalTime(4);
  t.exit_code = q.OptionalInt(5);
  t.error = q.Text(6);
  t.outputs = DecodeValues(q.Text(7));
  return t;
}

constexpr const char* kAttemptColumns =
    "run_id, seq, task, number, status, started_at, ended_at, exit_code, signal, error, pid,"
    " pgid, proc_start_time, boot_id, stdout_bytes, stderr_bytes, stdout_dropped,"
    " stderr_dropped";

AttemptRecord ReadAttempt(const Query& q) {
  AttemptRecord a;
  a.run_id = q.Int64(0);
  a.seq = q.Int(1);
  a.task = q.Text(2);
  a.number = q.Int(3);
  a.status = ParseAttemptStatus(q.Text(4));
  a.started_at = q.Time(5);
  a.ended_at = q.OptionalTime(6);
  a.exit_code = q.OptionalInt(7);
  a.signal = q.OptionalInt(8);
  a.error = q.Text(9);
  if (!q.IsNull(10)) {
    a.process = ProcessIdentity{static_cast<pid_t>(q.Int64(10)), static_cast<pid_t>(q.Int64(11)),
                                static_cast<std::uint64_t>(q.Int64(12)), q.Text(13)};
  }
  a.counts.stdout_bytes = static_cast<std::uint64_t>(q.Int64(14));
  a.counts.stderr_bytes = static_cast<std::uint64_t>(q.Int64(15));
  a.counts.stdout_dropped = static_cast<std::uint64_t>(q.Int64(16));
  a.counts.stderr_dropped = static_cast<std::uint64_t>(q.Int64(17));
  return a;
}

// Steps `q` to the end, decoding each row with `read`.
template <class T, class Read>
Result<std::vector<T>> ReadAll(Query& q, Read read) {
  std::vector<T> rows;
  for (;;) {
    auto row = q.Step();
    if (!row) return row.error();
    if (!*row) return rows;
    rows.push_back(read(q));
  }
}

std::string Select(const char* columns, const char* rest) {
  return std::string("SELECT ") + columns + " " + rest;
}

}  // namespace

// ---- runs -----------------------------------------------------------------------

Result<std::int64_t> Store::CreateRun(const NewRun& run) {
  if (health_.degraded) {
    return Err(ErrorCode::kDiskFull,
               "store degraded (" + health_.reason + "): " + std::to_string(kept_->size()) +
                   " changes of runs in progress wait in memory for room on the disk of " +
                   db_->path() + "; no new run starts until they are saved");
  }
  auto id = InsertRun(run, std::nullopt);
  if (!id) {
    db_->CheckGroup();  // a group SQLite rolled back is kept (GroupLost)
    return id.error();
  }
  if (db_->group_open()) kept_->Grouped(CreateRunWrite{*id, run});
  return id;
}

Result<std::int64_t> Store::InsertRun(const NewRun& run, std::optional<std::int64_t> id) {
  auto tx = Transaction::Begin(*db_, "create run");
  if (!tx) return tx.error();
  auto version = InternVersion(run.workflow, run.source, run.base_dir, run.created_at);
  if (!version) return version.error();
  {
    auto q = db_->Prepare("create run",
                          "INSERT INTO runs (id, workflow, version_id, status, triggered_by,"
                          " scheduled_at, created_at, started_at, ended_at, reason, params,"
                          " retry_of, only, trigger_event)"
                          " VALUES (?10, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?11, ?12, ?13, ?14)");
    if (!q) return q.error();
    std::optional<TimePoint> started, ended;
    if (run.status == RunStatus::kRunning) started = run.created_at;
    if (IsFinal(run.status)) ended = run.created_at;
    q->Bind(1, run.workflow).Bind(2, *version).Bind(3, RunStatusName(run.status));
    q->Bind(4, RunTriggerName(run.trigger)).Bind(5, run.scheduled_at).Bind(6, run.created_at);
    const std::string params = EncodeValues(run.params);
    q->Bind(7, started).Bind(8, ended).Bind(9, run.reason).Bind(10, id).Bind(11, params);
    const std::string only = EncodeSelection(run.only);
    const std::string event = EncodeEvent(run.event);
    q->Bind(12, run.retry_of).Bind(13, only).Bind(14, event);
    if (Status s = q->Run(); !s) return s.error();
  }
  const std::int64_t run_id = db_->LastInsertId();
  for (std::size_t i = 0; i < run.tasks.size(); ++i) {
    auto q = db_->Prepare("create run",
                          "INSERT INTO run_tasks (run_id, task, position, status)"
                          " VALUES (?1, ?2, ?3, ?4)");
    if (!q) return q.error();
    q->Bind(1, run_id).Bind(2, run.tasks[i]).Bind(3, static_cast<std::int64_t>(i));
    q->Bind(4, TaskStatusName(TaskStatus::kPending));
    if (Status s = q->Run(); !s) return s.error();
  }
  if (Status s = tx->Commit(); !s) return s.error();
  return run_id;
}

Status Store::SetRunStatus(std::int64_t run_id, RunStatus status, TimePoint at,
                           std::string_view error) {
  return Write(RunStatusWrite{run_id, status, at, std::string(error)});
}

Status Store::Apply(const RunStatusWrite& w, LostOutput&) {
  const std::int64_t run_id = w.run_id;
  auto q = db_->Prepare(
      "set run status",
      "UPDATE runs SET status = ?2,"
      " started_at = CASE WHEN ?2 = 'running' THEN coalesce(started_at, ?3) ELSE started_at END,"
      " ended_at = CASE WHEN ?2 IN ('pending', 'running') THEN NULL ELSE ?3 END,"
      " error = CASE WHEN ?2 = 'skipped' THEN '' ELSE ?4 END,"
      " reason = CASE WHEN ?2 = 'skipped' THEN ?4 ELSE reason END WHERE id = ?1");
  if (!q) return q.error();
  q->Bind(1, run_id).Bind(2, RunStatusName(w.status)).Bind(3, w.at).Bind(4, w.error);
  if (Status s = q->Run(); !s) return s;
  if (db_->Changes() == 0) return NoRun(run_id);
  return {};
}

Status Store::SetTaskStatus(std::int64_t run_id, const TaskRecord& task) {
  return Write(TaskStatusWrite{run_id, task});
}

Status Store::Apply(const TaskStatusWrite& w, LostOutput&) {
  const std::int64_t run_id = w.run_id;
  const TaskRecord& task = w.task;
  auto q = db_->Prepare("set task status",
                        "UPDATE run_tasks SET status = ?3, attempts = ?4, started_at = ?5,"
                        " ended_at = ?6, exit_code = ?7, error = ?8, outputs = ?9"
                        " WHERE run_id = ?1 AND task = ?2");
  if (!q) return q.error();
  const std::string outputs = EncodeValues(task.outputs);
  q->Bind(1, run_id).Bind(2, task.name).Bind(3, TaskStatusName(task.status));
  q->Bind(4, task.attempts).Bind(5, task.started_at).Bind(6, task.ended_at);
  q->Bind(7, task.exit_code).Bind(8, task.error).Bind(9, outputs);
  if (Status s = q->Run(); !s) return s;
  if (db_->Changes() == 0) {
    return Err(ErrorCode::kNotFound,
               "run " + std::to_string(run_id) + " has no task '" + task.name + "'");
  }
  return {};
}

Result<std::vector<TaskRecord>> Store::ReadTasks(std::int64_t run_id) {
  auto q = db_->Prepare("read tasks",
                        Select(kTaskColumns, "FROM run_tasks WHERE run_id = ?1 ORDER BY position"));
  if (!q) return q.error();
  q->Bind(1, run_id);
  return ReadAll<TaskRecord>(*q, ReadTask);
}

Result<std::vector<AttemptRecord>> Store::ReadAttempts(std::int64_t run_id, bool running_only) {
  auto q =
      db_->Prepare("read attempts",
                   Select(kAttemptColumns,
                          running_only ? "FROM attempts WHERE id BETWEEN ?1 AND ?2"
                                         " AND status IN ('starting', 'running') ORDER BY id"
                                       : "FROM attempts WHERE id BETWEEN ?1 AND ?2 ORDER BY id"));
  if (!q) return q.error();
  q->Bind(1, AttemptRowId({run_id, 0})).Bind(2, AttemptRowId({run_id + 1, 0}) - 1);
  return ReadAll<AttemptRecord>(*q, ReadAttempt);
}

Result<RunDetail> Store::GetRun(std::int64_t run_id) {
  FlushStarted();  // what a client reads shows each running attempt's process
  RunDetail detail;
  {
    auto q = db_->Prepare("get run", Select(kRunColumns, "FROM runs WHERE id = ?1"));
    if (!q) return q.error();
    q->Bind(1, run_id);
    auto row = q->Step();
    if (!row) return row.error();
    if (!*row) {
      if (auto kept = kept_->KeptRun(run_id)) return std::move(*kept);
      return NoRun(run_id);
    }
    detail.run = ReadRun(*q);
  }
  auto tasks = ReadTasks(run_id);
  if (!tasks) return tasks.error();
  detail.tasks = std::move(*tasks);
  auto attempts = ReadAttempts(run_id, false);
  if (!attempts) return attempts.error();
  detail.attempts = std::move(*attempts);
  kept_->Overlay(detail);
  return detail;
}

Result<std::vector<RunRecord>> Store::ListRuns(const std::optional<std::string>& workflow,
                                               int limit, std::optional<std::int64_t> before_id) {
  const std::int64_t before = before_id.value_or(std::numeric_limits<std::int64_t>::max());
  const int page = std::clamp(limit, 0, kMaxPage);
  // Two statements rather than "?1 IS NULL OR": each gets its own index plan.
  auto q = workflow ? db_->Prepare("list runs", Select(kRunColumns,
                                                       "FROM runs WHERE workflow = ?3 AND id < ?1"
                                                       " ORDER BY id DESC LIMIT ?2"))
                    : db_->Prepare("list runs", Select(kRunColumns,
                                                       "FROM runs WHERE id < ?1"
                                                       " ORDER BY id DESC LIMIT ?2"));
  if (!q) return q.error();
  q->Bind(1, before).Bind(2, page);
  if (workflow) q->Bind(3, *workflow);
  auto runs = ReadAll<RunRecord>(*q, ReadRun);
  if (!runs || kept_->empty()) return runs;
  for (RunRecord& r : *runs) kept_->Overlay(r);
  for (RunRecord& r : kept_->KeptRuns()) {
    if (r.id < before && (!workflow || r.workflow == *workflow)) runs->push_back(std::move(r));
  }
  std::sort(runs->begin(), runs->end(),
            [](const RunRecord& a, const RunRecord& b) { return a.id > b.id; });
  if (runs->size() > static_cast<std::size_t>(page)) runs->resize(static_cast<std::size_t>(page));
  return runs;
}

Result<std::optional<RunRecord>> Store::LatestRun(const std::string& workflow) {
  auto q = db_->Prepare("latest run", Select(kRunColumns,
                                             "FROM runs WHERE workflow = ?1"
                                             " ORDER BY id DESC LIMIT 1"));
  if (!q) return q.error();
  q->Bind(1, workflow);
  auto row = q->Step();
  if (!row) return row.error();
  std::optional<RunRecord> latest;
  if (*row) latest = ReadRun(*q);
  if (kept_->empty()) return latest;
  if (latest) kept_->Overlay(*latest);
  for (RunRecord& r : kept_->KeptRuns()) {
    if (r.workflow == workflow && (!latest || r.id > latest->id)) latest = std::move(r);
  }
  return latest;
}

Result<std::optional<TaskSuccess>> Store::LatestSuccess(const std::string& workflow,
                                                        const std::string& task) {
  // runs_by_workflow backwards, each run's row of the task by its key.
  auto q = db_->Prepare("latest success",
                        "SELECT r.id, t.outputs FROM runs AS r"
                        " JOIN run_tasks AS t ON t.run_id = r.id AND t.task = ?2"
                        " WHERE r.workflow = ?1 AND t.status = 'succeeded'"
                        " ORDER BY r.id DESC LIMIT 1");
  if (!q) return q.error();
  q->Bind(1, workflow).Bind(2, task);
  auto row = q->Step();
  if (!row) return row.error();
  if (!*row) return std::optional<TaskSuccess>();
  return std::optional<TaskSuccess>(TaskSuccess{q->Int64(0), DecodeValues(q->Text(1))});
}

Result<std::vector<UnfinishedRun>> Store::UnfinishedRuns() {
  std::vector<UnfinishedRun> runs;
  {
    // The WHERE matches the partial index runs_unfinished word for word.
    auto q = db_->Prepare(
        "unfinished runs",
        Select(kRunColumns, "FROM runs WHERE status IN ('pending', 'running') ORDER BY id"));
    if (!q) return q.error();
    auto rows = ReadAll<RunRecord>(*q, ReadRun);
    if (!rows) return rows.error();
    for (auto& run : *rows) runs.push_back(UnfinishedRun{std::move(run), {}, {}, {}, {}, {}});
  }
  for (auto& u : runs) {
    {
      auto q = db_->Prepare("unfinished runs",
                            "SELECT source, base_dir FROM workflow_versions WHERE id = ?1");
      if (!q) return q.error();
      q->Bind(1, u.run.version_id);
      auto row = q->Step();
      if (!row) return row.error();
      if (!*row) {
        return Err(ErrorCode::kNotFound, "no workflow version " + std::to_string(u.run.version_id));
      }
      u.source = q->Text(0);
      u.base_dir = q->Text(1);
    }
    auto tasks = ReadTasks(u.run.id);
    if (!tasks) return tasks.error();
    u.tasks = std::move(*tasks);
    auto attempts = ReadAttempts(u.run.id, true);
    if (!attempts) return attempts.error();
    u.running_attempts = std::move(*attempts);
    auto q = db_->Prepare("unfinished runs",
                          "SELECT task, count(*) FROM attempts WHERE id BETWEEN ?1 AND ?2"
                          " AND status = 'interrupted' GROUP BY task");
    if (!q) return q.error();
    q->Bind(1, AttemptRowId({u.run.id, 0})).Bind(2, AttemptRowId({u.run.id + 1, 0}) - 1);
    for (;;) {
      auto row = q->Step();
      if (!row) return row.error();
      if (!*row) break;
      u.interruptions[q->Text(0)] = q->Int(1);
    }
  }
  return runs;
}

// ---- attempts -------------------------------------------------------------------

Result<AttemptKey> Store::BeginAttempt(std::int64_t run_id, const std::string& task, int number,
                                       TimePoint at, const ProcessIdentity* process) {
  std::optional<ProcessIdentity> identity;
  if (process != nullptr) identity = *process;
  std::optional<Error> refused;
  if (kept_->empty()) {
    auto key = InsertAttempt(run_id, task, number, at, process, std::nullopt);
    if (key) {
      if (db_->group_open()) kept_->Grouped(BeginAttemptWrite{*key, task, number, at, identity});
      return key;
    }
    if (key.error().code != ErrorCode::kDiskFull) return key.error();
    refused = key.error();
    db_->CheckGroup();  // what SQLite rolled back is kept first: the key goes after it
  }
  // Kept: the attempt goes after the run's last one, stored or kept.
  auto last = LastAttemptSeq(run_id);
  if (!last) return last.error();
  const AttemptKey key{run_id, kept_->NextSeq(run_id, *last)};
  BeginAttemptWrite write{key, task, number, at, identity};
  if (refused) {
    Keep(std::move(write), *refused);
  } else {
    kept_->Push(std::move(write));
  }
  return key;
}

Result<int> Store::LastAttemptSeq(std::int64_t run_id) {
  auto q = db_->Prepare(
      "last attempt", "SELECT coalesce(max(id), ?1) - ?1 FROM attempts WHERE id BETWEEN ?1 AND ?2");
  if (!q) return q.error();
  q->Bind(1, AttemptRowId({run_id, 0})).Bind(2, AttemptRowId({run_id + 1, 0}) - 1);
  auto row = q->Step();
  if (!row) return row.error();
  return *row ? q->Int(0) : 0;
}

Status Store::Apply(const BeginAttemptWrite& w, LostOutput&) {
  const ProcessIdentity* process = w.process ? &*w.process : nullptr;
  auto key = InsertAttempt(w.key.run_id, w.task, w.number, w.at, process, w.key.seq);
  return key ? Status{} : Status{key.error()};
}

Result<AttemptKey> Store::InsertAttempt(std::int64_t run_id, const std::string& task, int number,
                                        TimePoint at, const ProcessIdentity* process,
                                        std::optional<int> seq) {
  auto tx = Transaction::Begin(*db_, "begin attempt");
  if (!tx) return tx.error();
  {
    // run_tasks.attempts only grows: a number not above it was begun before.
    auto q = db_->Prepare("begin attempt",
                          "UPDATE run_tasks SET status = 'running', attempts = ?3,"
                          " started_at = coalesce(started_at, ?4), ended_at = NULL,"
                          " exit_code = NULL, error = ''"
                          " WHERE run_id = ?1 AND task = ?2 AND attempts < ?3");
    if (!q) return q.error();
    q->Bind(1, run_id).Bind(2, task).Bind(3, number).Bind(4, at);
    if (Status s = q->Run(); !s) return s.error();
  }
  if (db_->Changes() == 0) {
    auto q = db_->Prepare("begin attempt",
                          "SELECT attempts FROM run_tasks WHERE run_id = ?1 AND task = ?2");
    if (!q) return q.error();
    q->Bind(1, run_id).Bind(2, task);
    auto row = q->Step();
    if (!row) return row.error();
    if (!*row) {
      return Err(ErrorCode::kNotFound,
                 "run " + std::to_string(run_id) + " has no task '" + task + "'");
    }
    return Err(ErrorCode::kConflict, "attempt " + std::to_string(number) + " of task '" + task +
                                         "' of run " + std::to_string(run_id) +
                                         " has begun already");
  }
  AttemptKey key{run_id, 0};
  {
    // The attempt goes after its run's last one, unless its key is given
    // (the schema's CHECK refuses a seq past 2^24 - 1).
    auto q = db_->Prepare("begin attempt",
                          "INSERT INTO attempts (id, task, number, status, started_at,"
                          " pid, pgid, proc_start_time, boot_id)"
                          " VALUES (coalesce(?11, 1 + coalesce((SELECT max(id) FROM attempts"
                          "                       WHERE id BETWEEN ?1 AND ?9), ?1)),"
                          " ?2, ?3, ?10, ?4, ?5, ?6, ?7, ?8) RETURNING seq");
    if (!q) return q.error();
    q->Bind(1, AttemptRowId({run_id, 0})).Bind(9, AttemptRowId({run_id + 1, 0}) - 1);
    std::optional<std::int64_t> id;
    if (seq) id = AttemptRowId({run_id, *seq});
    q->Bind(11, id);
    q->Bind(2, task).Bind(3, number).Bind(4, at);
    q->Bind(10, process != nullptr ? "running" : "starting");
    if (process != nullptr) {
      q->Bind(5, process->pid).Bind(6, process->pgid);
      q->Bind(7, static_cast<std::int64_t>(process->start_time)).Bind(8, process->boot_id);
    }
    auto row = q->Step();
    if (!row) return row.error();
    assert(*row && "INSERT ... RETURNING returns the row it inserted");
    key.seq = q->Int(0);
  }
  if (Status s = tx->Commit(); !s) return s.error();
  return key;
}

void Store::NoteAttemptStarted(AttemptKey attempt, const ProcessIdentity* process) {
  started_.push_back({attempt, process ? std::optional<ProcessIdentity>(*process) : std::nullopt});
  if (!db_->group_commit()) ApplyStarted();
}

void Store::FlushStarted() {
  if (started_.empty()) return;
  if (!db_->group_commit()) return ApplyStarted();
  auto tx = Transaction::Begin(*db_, "attempt started");  // opening a group applies them
  if (!tx) return LogError(LogEvent("store.attempt_started"), tx.error().message);
  ApplyStarted();  // if the group was open already
  LogIfFailed(LogEvent("store.attempt_started"), tx->Commit());
}

void Store::ApplyStarted() {
  if (saving_) return;  // SaveKept's transaction holds only the kept writes
  // Taken first: the writes below may open a group, which applies again.
  std::vector<Started> started;
  started.swap(started_);
  for (Started& s : started) {
    LogIfFailed(LogEvent("store.attempt_started"),
                Write(AttemptStartedWrite{s.attempt, std::move(s.process)}));
  }
}

Status Store::Apply(const AttemptStartedWrite& s, LostOutput&) {
  {
    auto q = db_->Prepare("attempt started",
                          "UPDATE attempts SET status = 'running', pid = ?2, pgid = ?3,"
                          " proc_start_time = ?4, boot_id = ?5"
                          " WHERE id = ?1 AND status = 'starting'");
    if (!q) return q.error();
    q->Bind(1, AttemptRowId(s.key));
    if (s.process) {
      q->Bind(2, s.process->pid).Bind(3, s.process->pgid);
      q->Bind(4, static_cast<std::int64_t>(s.process->start_time)).Bind(5, s.process->boot_id);
    } else {
      q->BindNull(2).BindNull(3).BindNull(4).BindNull(5);
    }
    return q->Run();
  }
}

Status Store::FinishAttempt(AttemptKey attempt, const AttemptResult& result,
                            const OutputCounts& counts, TimePoint at,
                            const std::vector<TaskRecord>& tasks) {
  return Write(FinishAttemptWrite{attempt, result, counts, at, tasks});
}

Status Store::Apply(const FinishAttemptWrite& w, LostOutput& lost) {
  const AttemptKey attempt = w.key;
  const AttemptResult& result = w.result;
  const OutputCounts counts = lost.With(w.key, w.counts);
  const TimePoint at = w.at;
  const std::vector<TaskRecord>& tasks = w.tasks;
  std::optional<Transaction> tx;
  if (!tasks.empty()) {
    auto begun = Transaction::Begin(*db_, "finish attempt");
    if (!begun) return begun.error();
    tx.emplace(std::move(*begun));
  }
  auto q = db_->Prepare("finish attempt",
                        "UPDATE attempts SET status = ?2, ended_at = ?3, exit_code = ?4,"
                        " signal = ?5, error = ?6, stdout_bytes = ?7, stderr_bytes = ?8,"
                        " stdout_dropped = ?9, stderr_dropped = ?10"
                        " WHERE id = ?1");
  if (!q) return q.error();
  q->Bind(1, AttemptRowId(attempt));
  q->Bind(2, StoredAttemptStatus(result.status)).Bind(3, at);
  q->Bind(4, result.exit_code).Bind(5, result.signal).Bind(6, result.error);
  q->Bind(7, static_cast<std::int64_t>(counts.stdout_bytes));
  q->Bind(8, static_cast<std::int64_t>(counts.stderr_bytes));
  q->Bind(9, static_cast<std::int64_t>(counts.stdout_dropped));
  q->Bind(10, static_cast<std::int64_t>(counts.stderr_dropped));
  if (Status s = q->Run(); !s) return s;
  if (db_->Changes() == 0) return NoAttempt(attempt);
  for (const TaskRecord& task : tasks) {
    if (Status s = Apply(TaskStatusWrite{attempt.run_id, task}, lost); !s) return s;
  }
  return tx ? tx->Commit() : Status{};
}

Status Store::MarkAttemptInterrupted(AttemptKey attempt, TimePoint at, std::string_view error) {
  // The counts were to be written at the end; what reached the store is all
  // that is known now. length() of a blob does not read its content.
  auto q = db_->Prepare("mark attempt interrupted",
                        "UPDATE attempts SET status = 'interrupted', ended_at = ?2, error = ?3,"
                        " stdout_bytes = (SELECT coalesce(sum(coalesce(o.file_length,"
                        "                 length(o.data))), 0) FROM output o"
                        "                 WHERE o.run_id = ?1 AND o.attempt_seq = ?4"
                        "                 AND o.stream = 0),"
                        " stderr_bytes = (SELECT coalesce(sum(coalesce(o.file_length,"
                        "                 length(o.data))), 0) FROM output o"
                        "                 WHERE o.run_id = ?1 AND o.attempt_seq = ?4"
                        "                 AND o.stream = 1)"
                        " WHERE id = ?5 AND status IN ('starting', 'running')");
  if (!q) return q.error();
  q->Bind(1, attempt.run_id).Bind(4, attempt.seq).Bind(5, AttemptRowId(attempt));
  q->Bind(2, at).Bind(3, error);
  if (Status s = q->Run(); !s) return s;
  if (db_->Changes() == 0) {
    return Err(ErrorCode::kNotFound, "no running " + AttemptName(attempt));
  }
  return {};
}

// ---- output ---------------------------------------------------------------------

Status Store::AppendOutput(AttemptKey attempt, OutputStream stream, std::string_view data) {
  if (data.empty()) return {};
  return Write(OutputWrite{attempt, stream, std::string(data), 0});
}

Status Store::Apply(const OutputWrite& w, LostOutput& lost) {
  const AttemptKey attempt = w.key;
  const OutputStream stream = w.stream;
  if (w.lost > 0) {
    lost.Add(w);
    if (Status s = InsertOutput(attempt, stream, LostOutputMarker(w.lost), {}); !s) return s;
  }
  const std::string_view data = w.data;
  if (data.empty()) return {};
  if (data.size() < kOutputFileChunkBytes) return InsertOutput(attempt, stream, data, {});
  auto offset = files_->Append(attempt.run_id, data);
  if (offset) return InsertOutput(attempt, stream, data, *offset);
  // A file that cannot be written (a full or read-only directory) does not
  // lose the chunk: it goes into the database as a small one does.
  LogWarn(LogEvent("store.output_file"), offset.error().message + "; kept in the database");
  return InsertOutput(attempt, stream, data, {});
}

Status Store::InsertOutput(AttemptKey attempt, OutputStream stream, std::string_view data,
                           std::optional<std::uint64_t> file_offset) {
  // Output is clustered by run: the chunk goes after the run's last one.
  auto q = db_->Prepare("append output",
                        "INSERT INTO output (run_id, seq, attempt_seq, stream, data, file_offset,"
                        " file_length)"
                        " SELECT ?1, 1 + coalesce((SELECT max(o.seq) FROM output o"
                        "                          WHERE o.run_id = ?1), 0),"
                        " ?6, ?2, ?3, ?4, ?5 WHERE EXISTS (SELECT 1 FROM attempts WHERE id = ?7)");
  if (!q) return q.error();
  q->Bind(1, attempt.run_id).Bind(6, attempt.seq).Bind(7, AttemptRowId(attempt));
  q->Bind(2, stream == OutputStream::kStdout ? 0 : 1);
  if (file_offset) {
    q->BindBlob(3, {}).Bind(4, static_cast<std::int64_t>(*file_offset));
    q->Bind(5, static_cast<std::int64_t>(data.size()));
  } else {
    q->BindBlob(3, data).BindNull(4).BindNull(5);
  }
  if (Status s = q->Run(); !s) return s;
  if (db_->Changes() == 0) return NoAttempt(attempt);
  output_bytes_ += data.size();
  return {};
}

Result<std::vector<OutputChunk>> Store::ReadOutput(const OutputQuery& query) {
  constexpr const char* kColumns =
      "o.seq, a.task, a.number, o.stream, o.data, o.file_offset, o.file_length";
  auto q =
      query.task
          ? db_->Prepare("read output", Select(kColumns,
                                               "FROM output o JOIN attempts a"
                                               " ON a.id = o.run_id * 16777216 + o.attempt_seq"
                                               " WHERE o.run_id = ?1 AND o.seq > ?2 AND a.task = ?4"
                                               " ORDER BY o.seq LIMIT ?3"))
          : db_->Prepare("read output", Select(kColumns,
                                               "FROM output o JOIN attempts a"
                                               " ON a.id = o.run_id * 16777216 + o.attempt_seq"
                                               " WHERE o.run_id = ?1 AND o.seq > ?2"
                                               " ORDER BY o.seq LIMIT ?3"));
  if (!q) return q.error();
  q->Bind(1, query.run_id).Bind(2, query.after_seq);
  q->Bind(3, std::clamp(query.max_chunks, 0, kMaxPage));
  if (query.task) q->Bind(4, *query.task);
  std::vector<OutputChunk> chunks;
  std::size_t bytes = 0;
  while (bytes < query.max_bytes) {
    auto row = q->Step();
    if (!row) return row.error();
    if (!*row) break;
    OutputChunk c{q->Int64(0), q->Text(1), q->Int(2),
                  q->Int(3) == 0 ? OutputStream::kStdout : OutputStream::kStderr, q->Text(4)};
    if (!q->IsNull(6)) {
      auto data = files_->Read(query.run_id, static_cast<std::uint64_t>(q->Int64(5)),
                               static_cast<std::uint64_t>(q->Int64(6)));
      if (!data) return data.error();
      c.data = std::move(*data);
    }
    bytes += c.data.size();
    chunks.push_back(std::move(c));
  }
  return chunks;
}

}  // namespace picoflow
