#include "picoflowd/store/store.h"

#include <doctest/doctest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "picoflowd/engine/run.h"
#include "picoflowd/store/group_commit.h"
#include "picoflowd/store/sqlite_db.h"
#include "picoflowd/store/store_schema.h"
#include "tests/test_util.h"

namespace picoflow {
namespace {

namespace fs = std::filesystem;
using test::Must;
using test::TempDir;

// Test times: whole milliseconds, as the store keeps them.
TimePoint T(int seconds) { return FromMillis(1'700'000'000'000) + std::chrono::seconds(seconds); }

constexpr const char* kYaml = R"(name: etl
tasks:
  - name: extract
    type: shell
    config: { command: "echo extract" }
  - name: load
    type: shell
    depends_on: [extract]
    config: { command: "echo load" }
)";

std::unique_ptr<Store> OpenStore(const std::string& path, StoreOptions options = {}) {
  auto store = Store::Open(path, options);
  REQUIRE_MESSAGE(store.ok(), (store.ok() ? "" : store.error().message));
  return std::move(*store);
}

NewRun EtlRun(TimePoint at, std::string source = kYaml) {
  NewRun run;
  run.workflow = "etl";
  run.source = std::move(source);
  run.trigger = RunTrigger::kRpc;
  run.created_at = at;
  run.tasks = {"extract", "load"};
  return run;
}

std::string Secs(const std::optional<TimePoint>& t) {
  if (!t) return "-";
  return std::to_string(std::chrono::duration_cast<std::chrono::seconds>(*t - T(0)).count());
}

std::string Opt(const std::optional<int>& v) { return v ? std::to_string(*v) : "-"; }

// One line per record, so tests compare whole sequences.
std::vector<std::string> Lines(const std::vector<TaskRecord>& tasks) {
  std::vector<std::string> out;
  for (const auto& t : tasks) {
    out.push_back(t.name + " " + TaskStatusName(t.status) +
                  " attempts=" + std::to_string(t.attempts) + " t=" + Secs(t.started_at) + ".." +
                  Secs(t.ended_at) + " exit=" + Opt(t.exit_code));
  }
  return out;
}

std::vector<std::string> Lines(const std::vector<AttemptRecord>& attempts) {
  std::vector<std::string> out;
  for (const auto& a : attempts) {
    std::string line = a.task + "#" + std::to_string(a.number) + " " +
                       (a.status ? AttemptStatusName(*a.status) : "running") +
                       " t=" + Secs(a.started_at) + ".." + Secs(a.ended_at) +
                       " exit=" + Opt(a.exit_code) + " sig=" + Opt(a.signal);
    if (!a.error.empty()) line += " error='" + a.error + "'";
    if (a.process) {
      line += " pid=" + std::to_string(a.process->pid) +
              " pgid=" + std::to_string(a.process->pgid) +
              " start=" + std::to_string(a.process->start_time) + " boot=" + a.process->boot_id;
    }
    line += " out=" + std::to_string(a.counts.stdout_bytes) + "/" +
            std::to_string(a.counts.stdout_dropped) +
            " err=" + std::to_string(a.counts.stderr_bytes) + "/" +
            std::to_string(a.counts.stderr_dropped);
    out.push_back(line);
  }
  return out;
}

std::vector<std::string> Lines(const std::vector<OutputChunk>& chunks) {
  std::vector<std::string> out;
  for (const auto& c : chunks) {
    out.push_back(c.task + "#" + std::to_string(c.attempt) +
                  (c.stream == OutputStream::kStdout ? " out " : " err ") + c.data);
  }
  return out;
}

std::vector<std::int64_t> Ids(const std::vector<RunRecord>& runs) {
  std::vector<std::int64_t> ids;
  for (const auto& r : runs) ids.push_back(r.id);
  return ids;
}

// Runs a whole run of two tasks through the store: the transitions the
// engine makes. Returns the run id.
std::int64_t RunToSuccess(Store& store, int at) {
  std::int64_t run = Must(store.CreateRun(EtlRun(T(at))));
  Must(store.SetRunStatus(run, RunStatus::kRunning, T(at)));
  for (const char* task : {"extract", "load"}) {
    const ProcessIdentity process{4242, 4242, 1000, "boot"};
    AttemptKey attempt = Must(store.BeginAttempt(run, task, 1, T(at), &process));
    Must(store.AppendOutput(attempt, OutputStream::kStdout, "done\n"));
    Must(store.FinishAttempt(
        attempt, AttemptResult{AttemptStatus::kSucceeded, 0, {}, "", {}}, OutputCounts{5, 0, 0, 0},
        T(at + 1), {TaskRecord{task, TaskStatus::kSucceeded, 1, T(at), T(at + 1), 0, "", {}}}));
  }
  Must(store.SetRunStatus(run, RunStatus::kSucceeded, T(at + 1)));
  return run;
}

mode_t Mode(const std::string& path) {
  struct stat st {};
  REQUIRE(stat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

}  // namespace

// ---- opening and migrating ------------------------------------------------------

TEST_CASE("the database file and its WAL are created 0600 even with umask 0") {
  TempDir dir;
  const std::string path = dir.File("picoflow.db");
  mode_t old_mask = umask(0);
  auto store = Store::Open(path);
  umask(old_mask);
  REQUIRE(store.ok());
  Must((*store)->PutWorkflow("etl", kYaml, "submitted", T(0)));  // writes the WAL
  CHECK(Mode(path) == 0600);
  CHECK(Mode(path + "-wal") == 0600);
  CHECK(Mode(path + "-shm") == 0600);
}

TEST_CASE("a new database gets the current schema, small pages, WAL and incremental auto-vacuum") {
  TempDir dir;
  const std::string path = dir.File("picoflow.db");
  auto store = OpenStore(path);
  auto db = Must(SqliteDb::Open(path));
  CHECK(Must(db->QueryInt("t", "PRAGMA user_version")) == Store::SchemaVersion());
  CHECK(Store::SchemaVersion() >= 1);
  CHECK(Must(db->QueryInt("t", "PRAGMA page_size")) == kStorePageSize);
  CHECK(Must(db->QueryText("t", "PRAGMA journal_mode")) == "wal");
  CHECK(Must(db->QueryInt("t", "PRAGMA auto_vacuum")) == 2);  // INCREMENTAL
  CHECK(Must(db->QueryText("t",
                           "SELECT group_concat(name, ' ') FROM (SELECT name FROM"
                           " sqlite_schema WHERE type = 'table' ORDER BY name)")) ==
        "attempts notifications output run_tasks runs sqlite_sequence workflow_versions workflows");
  Must(db->Close());
}

TEST_CASE("a database of schema 2 with 4 KiB pages is migrated with its history intact") {
  TempDir dir;
  const std::string path = dir.File("picoflow.db");
  {
    // What picoflowd wrote before: schema version 2, 4096-byte pages, WAL,
    // output in a rowid table with its total kept by triggers.
    auto db = Must(SqliteDb::Open(path));
    Must(MigrateSchema(*db, StoreMigrations().first(2)));
    Must(db->Exec("t", "PRAGMA page_size = 4096; VACUUM; PRAGMA journal_mode = WAL;"));
    Must(db->Exec("t", R"sql(
      INSERT INTO workflow_versions VALUES (1, 'etl', 0, 'name: etl', 0);
      INSERT INTO runs VALUES (5, 'etl', 1, 'succeeded', 'rpc', NULL, 1, 2, 3, '', '');
      INSERT INTO runs VALUES (6, 'etl', 1, 'succeeded', 'rpc', NULL, 1, 2, 3, '', '');
      INSERT INTO run_tasks VALUES (5, 'extract', 0, 'succeeded', 2, 2, 3, 0);
      INSERT INTO run_tasks VALUES (6, 'extract', 0, 'succeeded', 1, 2, 3, 0);
      INSERT INTO attempts (id, run_id, task, number, status, started_at, ended_at, exit_code,
                            stdout_bytes) VALUES (9, 5, 'extract', 1, 'failed', 2, 3, 1, 9),
                                                 (10, 6, 'extract', 1, 'succeeded', 2, 3, 0, 4),
                                                 (11, 5, 'extract', 2, 'succeeded', 2, 3, 0, 4);
      INSERT INTO output (seq, run_id, attempt_id, stream, data) VALUES
        (40, 5, 9, 0, 'line one
'), (41, 5, 9, 1, 'warn
'), (42, 6, 10, 0, 'six
'), (43, 5, 11, 0, 'two
');
    )sql"));
    CHECK(Must(db->QueryInt("t", "PRAGMA page_size")) == 4096);
  }
  auto store = OpenStore(path);
  CHECK(Must(store->OutputBytes()) == 22);
  // Attempts are numbered in their run's start order (schema 7).
  const RunDetail run = Must(store->GetRun(5));
  REQUIRE(run.attempts.size() == 2);
  CHECK(run.attempts[0].seq == 1);
  CHECK(run.attempts[0].status == AttemptStatus::kFailed);
  CHECK(run.attempts[0].counts.stdout_bytes == 9);
  CHECK(run.attempts[1].seq == 2);
  CHECK(run.attempts[1].number == 2);
  CHECK(run.attempts[1].status == AttemptStatus::kSucceeded);
  REQUIRE(Must(store->GetRun(6)).attempts.size() == 1);
  CHECK(Must(store->GetRun(6)).attempts[0].seq == 1);
  OutputQuery all;
  all.run_id = 5;
  std::vector<std::string> chunks;
  for (const OutputChunk& c : Must(store->ReadOutput(all))) {
    chunks.push_back(std::to_string(c.seq) + " " + c.task + "#" + std::to_string(c.attempt) + " " +
                     OutputStreamName(c.stream) + " " + c.data);
  }
  CHECK(chunks == std::vector<std::string>{"40 extract#1 stdout line one\n",
                                           "41 extract#1 stderr warn\n",
                                           "43 extract#2 stdout two\n"});
  // The next chunk of the run follows the old ones; a new attempt follows the
  // run's last.
  Must(store->AppendOutput(AttemptKey{5, 2}, OutputStream::kStdout, "more\n"));
  all.after_seq = 43;
  CHECK(Must(store->ReadOutput(all)).at(0).seq == 44);
  CHECK(Must(store->BeginAttempt(5, "extract", 3, T(9))) == (AttemptKey{5, 3}));
  Must(store->Close());
  auto db = Must(SqliteDb::Open(path));
  CHECK(Must(db->QueryInt("t", "PRAGMA page_size")) == kStorePageSize);
  CHECK(Must(db->QueryInt("t", "PRAGMA user_version")) == Store::SchemaVersion());
  CHECK(Must(db->QueryText("t", "PRAGMA integrity_check")) == "ok");
}

TEST_CASE("sqlite's memory stays bounded however much history the store holds") {
  // Its default page cache would grow to 2 MiB as old pages are read (the
  // pruner, run.get of old runs); the store caps it at 512 KiB.
  TempDir dir;
  auto store = OpenStore(dir.File("picoflow.db"));
  for (int i = 0; i < 6000; ++i) RunToSuccess(*store, i);
  for (std::int64_t run = 1; run <= 6000; ++run) Must(store->GetRun(run));  // touch every page
  CHECK(Must(store->DatabaseBytes()) > 2 * 1024 * 1024);
  const sqlite3_int64 used = sqlite3_memory_used();
  MESSAGE("sqlite3_memory_used with 6000 runs stored and read: " << used);
  CHECK(used < 1024 * 1024);
}

TEST_CASE("a database with a newer schema version is refused, naming both versions") {
  TempDir dir;
  const std::string path = dir.File("picoflow.db");
  {
    auto db = Must(SqliteDb::Open(path));
    Must(db->Exec("t", "PRAGMA user_version = 99"));
  }
  auto store = Store::Open(path);
  REQUIRE_FALSE(store.ok());
  CHECK(store.error().message ==
        "database " + path + " has schema version 99, newer than this picoflowd supports (" +
            std::to_string(Store::SchemaVersion()) + "); upgrade picoflowd or restore a backup");
}

TEST_CASE("a file that is not a database is refused with its path") {
  TempDir dir;
  const std::string path = dir.File("picoflow.db");
  std::ofstream(path) << std::string(8192, 'x');
  auto store = Store::Open(path);
  REQUIRE_FALSE(store.ok());
  CHECK(store.error().code == ErrorCode::kIo);
  CHECK(store.error().message == "store: open " + path + ": file is not a database");
}

TEST_CASE("a database of another program is refused rather than migrated") {
  TempDir dir;
  const std::string foreign = dir.File("foreign.db");
  const std::string tagged = dir.File("tagged.db");
  {
    auto db = Must(SqliteDb::Open(foreign));
    Must(db->Exec("t", "CREATE TABLE notes (text TEXT)"));
    auto other = Must(SqliteDb::Open(tagged));
    Must(other->Exec("t", "PRAGMA application_id = 42"));
  }
  auto store = Store::Open(foreign);
  REQUIRE_FALSE(store.ok());
  CHECK(store.error().message == "database " + foreign +
                                     " has tables but no picoflow schema version;"
                                     " point picoflowd at another file");
  store = Store::Open(tagged);
  REQUIRE_FALSE(store.ok());
  CHECK(store.error().message ==
        "database " + tagged +
            " belongs to another application (application_id 42); point picoflowd at another file");
}

TEST_CASE("migrations run in order from the database's version and a failing one rolls back") {
  TempDir dir;
  auto db = Must(SqliteDb::Open(dir.File("m.db")));
  const Migration v1[] = {{"one", "CREATE TABLE a (x); INSERT INTO a VALUES ('1');"}};
  Must(MigrateSchema(*db, v1));
  CHECK(Must(db->QueryInt("t", "PRAGMA user_version")) == 1);

  const Migration v3[] = {
      v1[0],
      {"two", "INSERT INTO a VALUES ('2');"},
      {"three", "INSERT INTO a VALUES ('3'); INSERT INTO missing VALUES (1);"},
  };
  Status failed = MigrateSchema(*db, v3);
  REQUIRE_FALSE(failed.ok());
  CHECK(failed.error().message == "store: migration 3 (three): no such table: missing");
  // Migration 1 did not run again, 2 stayed, 3 left nothing behind.
  CHECK(Must(db->QueryInt("t", "PRAGMA user_version")) == 2);
  CHECK(Must(db->QueryText("t", "SELECT group_concat(x, ',') FROM a")) == "1,2");
  Must(db->Close());
}

TEST_CASE("reopening the database keeps workflows, runs, attempts and output") {
  TempDir dir;
  const std::string path = dir.File("picoflow.db");
  std::int64_t run = 0;
  {
    auto store = OpenStore(path);
    Must(store->PutWorkflow("etl", kYaml, "/etc/picoflow/workflows/etl.yaml", T(0)));
    Must(store->SetPaused("etl", true));
    Must(store->SetLastFire("etl", T(5)));
    run = RunToSuccess(*store, 10);
    Must(store->Close());
    CHECK_FALSE(fs::exists(path + "-wal"));  // checkpointed into the file
  }
  auto store = OpenStore(path, StoreOptions{Synchronous::kFull, std::chrono::milliseconds(100)});
  WorkflowRecord w = Must(store->GetWorkflow("etl"));
  CHECK(w.source == kYaml);
  CHECK(w.origin == "/etc/picoflow/workflows/etl.yaml");
  CHECK(w.paused);
  CHECK(w.last_fire_at == T(5));
  RunDetail detail = Must(store->GetRun(run));
  CHECK(detail.run.status == RunStatus::kSucceeded);
  CHECK(Lines(detail.tasks) ==
        std::vector<std::string>{"extract succeeded attempts=1 t=10..11 exit=0",
                                 "load succeeded attempts=1 t=10..11 exit=0"});
  CHECK(detail.attempts.size() == 2);
  auto output = Must(store->ReadOutput(OutputQuery{run, {}, 0}));
  CHECK(Lines(output) == std::vector<std::string>{"extract#1 out done\n", "load#1 out done\n"});
}

// ---- workflows ------------------------------------------------------------------

TEST_CASE("workflows are stored, listed in name order, paused and removed") {
  TempDir dir;
  auto store = OpenStore(dir.File("picoflow.db"));
  std::int64_t v1 = Must(store->PutWorkflow("etl", kYaml, "submitted", T(0)));
  Must(store->PutWorkflow("backup", "name: backup\n", "/etc/backup.yaml", T(1)));
  // The same source again is the same version and not an update.
  CHECK(Must(store->PutWorkflow("etl", kYaml, "submitted", T(2))) == v1);
  CHECK(Must(store->GetWorkflow("etl")).updated_at == T(0));
  std::int64_t v2 = Must(store->PutWorkflow("etl", "name: etl\n", "submitted", T(3)));
  CHECK(v2 != v1);

  auto list = Must(store->ListWorkflows());
  REQUIRE(list.size() == 2);
  CHECK(list[0].name == "backup");
  CHECK(list[1].name == "etl");
  CHECK(list[1].source.empty());  // listing leaves sources out
  CHECK(list[1].submitted_at == T(0));
  CHECK(list[1].updated_at == T(3));
  CHECK(list[1].version_id == v2);
  CHECK_FALSE(list[1].last_fire_at.has_value());

  // The replaced version was used by no run, so it is gone.
  CHECK(store->GetVersionSource(v1).error().code == ErrorCode::kNotFound);
  CHECK(Must(store->GetVersionSource(v2)) == "name: etl\n");

  Must(store->SetPaused("etl", true));
  CHECK(Must(store->GetWorkflow("etl")).paused);
  Must(store->RemoveWorkflow("etl"));
  CHECK(store->GetWorkflow("etl").error().code == ErrorCode::kNotFound);
  CHECK(store->RemoveWorkflow("etl").error().message == "no workflow 'etl'");
  CHECK(store->SetPaused("etl", false).error().code == ErrorCode::kNotFound);
  CHECK(store->SetLastFire("etl", T(9)).error().code == ErrorCode::kNotFound);
}

TEST_CASE("a run keeps the source it runs after its workflow is replaced and removed") {
  TempDir dir;
  auto store = OpenStore(dir.File("picoflow.db"));
  std::int64_t v1 = Must(store->PutWorkflow("etl", kYaml, "submitted", T(0)));
  std::int64_t run = Must(store->CreateRun(EtlRun(T(1))));
  CHECK(Must(store->GetRun(run)).run.version_id == v1);  // deduplicated
  Must(store->PutWorkflow("etl", "name: etl\ntasks: []\n", "submitted", T(2)));
  Must(store->RemoveWorkflow("etl"));
  CHECK(Must(store->GetVersionSource(v1)) == kYaml);
  // A second run of the old source shares the version.
  CHECK(Must(store->GetRun(Must(store->CreateRun(EtlRun(T(3)))))).run.version_id == v1);
}

TEST_CASE("a database of schema 2 gets base_dir '' for the versions it holds") {
  TempDir dir;
  const std::string path = dir.File("picoflow.db");
  {
    auto db = Must(SqliteDb::Open(path));
    Must(MigrateSchema(*db, StoreMigrations().first(2)));
    Must(db->Exec("t",
                  "INSERT INTO workflow_versions (id, workflow, hash, source, created_at)"
                  " VALUES (1, 'etl', 0, 'name: etl\n', 0);"
                  "INSERT INTO workflows (name, version_id, origin, submitted_at, updated_at)"
                  " VALUES ('etl', 1, 'submitted', 0, 0);"));
    Must(db->Close());
  }
  auto store = OpenStore(path);
  WorkflowRecord w = Must(store->GetWorkflow("etl"));
  CHECK(w.source == "name: etl\n");
  CHECK(w.base_dir.empty());
}

TEST_CASE(
    "a database of schema 4 keeps its tasks and timed-out attempts, the tasks without a reason") {
  TempDir dir;
  const std::string path = dir.File("picoflow.db");
  {
    auto db = Must(SqliteDb::Open(path));
    Must(MigrateSchema(*db, StoreMigrations().first(4)));
    Must(db->Exec("t",
                  "INSERT INTO workflow_versions (id, workflow, hash, source, created_at)"
                  " VALUES (1, 'etl', 0, 'name: etl\n', 0);"
                  "INSERT INTO runs (id, workflow, version_id, status, triggered_by, created_at)"
                  " VALUES (1, 'etl', 1, 'failed', 'rpc', 0);"
                  "INSERT INTO run_tasks (run_id, task, position, status, attempts)"
                  " VALUES (1, 'load', 0, 'failed', 1);"
                  "INSERT INTO attempts (id, run_id, task, number, status, started_at, error)"
                  " VALUES (1, 1, 'load', 1, 'timeout', 0, 'timed out after 5s');"));
    Must(db->Close());
  }
  auto store = OpenStore(path);
  RunDetail run = Must(store->GetRun(1));
  REQUIRE(run.tasks.size() == 1);
  CHECK(run.tasks[0].status == TaskStatus::kFailed);
  CHECK(run.tasks[0].error.empty());
  REQUIRE(run.attempts.size() == 1);
  CHECK(run.attempts[0].status == AttemptStatus::kTimeout);
  CHECK(run.attempts[0].error == "timed out after 5s");
}

TEST_CASE("a version is its source and the directory its relative paths resolve against") {
  TempDir dir;
  auto store = OpenStore(dir.File("picoflow.db"));
  const std::int64_t v1 = Must(store->PutWorkflow("etl", kYaml, "submitted", T(0), "/srv/a"));
  CHECK(Must(store->GetWorkflow("etl")).base_dir == "/srv/a");
  // The same text from another directory is another version.
  const std::int64_t v2 = Must(store->PutWorkflow("etl", kYaml, "submitted", T(1), "/srv/b"));
  CHECK(v2 != v1);
  CHECK(Must(store->GetWorkflow("etl")).base_dir == "/srv/b");
  CHECK(Must(store->GetWorkflow("etl")).updated_at == T(1));
  // A run records the directory with its version, and recovery gets it back.
  NewRun run = EtlRun(T(2));
  run.base_dir = "/srv/b";
  const std::int64_t id = Must(store->CreateRun(run));
  CHECK(Must(store->GetRun(id)).run.version_id == v2);
  auto unfinished = Must(store->UnfinishedRuns());
  REQUIRE(unfinished.size() == 1);
  CHECK(unfinished[0].source == kYaml);
  CHECK(unfinished[0].base_dir == "/srv/b");
  // Without a directory (unknown file): "", as every version stored before.
  CHECK(Must(store->CreateRun(EtlRun(T(3)))) != 0);
  CHECK(Must(store->UnfinishedRuns())[1].base_dir.empty());
}

// ---- runs -----------------------------------------------------------------------

TEST_CASE("a run's lifecycle round-trips through the store") {
  TempDir dir;
  auto store = OpenStore(dir.File("picoflow.db"));
  NewRun spec = EtlRun(T(0));
  spec.trigger = RunTrigger::kCron;
  spec.scheduled_at = T(-1);
  std::int64_t run = Must(store->CreateRun(spec));

  RunDetail created = Must(store->GetRun(run));
  CHECK(created.run.workflow == "etl");
  CHECK(created.run.status == RunStatus::kPending);
  CHECK(created.run.trigger == RunTrigger::kCron);
  CHECK(created.run.scheduled_at == T(-1));
  CHECK(created.run.created_at == T(0));
  CHECK_FALSE(created.run.started_at.has_value());
  CHECK(Lines(created.tasks) == std::vector<std::string>{"extract pending attempts=0 t=-..- exit=-",
                                                         "load pending attempts=0 t=-..- exit=-"});
  CHECK(created.attempts.empty());

  Must(store->SetRunStatus(run, RunStatus::kRunning, T(1)));
  // extract: attempt 1 times out, attempt 2 succeeds.
  const ProcessIdentity process{100, 100, 555, "b-1"};
  AttemptKey a1 = Must(store->BeginAttempt(run, "extract", 1, T(1), &process));
  // (Stored as "timeout", the name the attempts table's CHECK allows, read
  // back as timed_out: rows written before timed_out load alike.)
  Must(store->FinishAttempt(
      a1, AttemptResult{AttemptStatus::kTimeout, {}, 15, "timed out after 5s", {}},
      OutputCounts{10, 20, 0, 0}, T(6)));
  Must(store->SetTaskStatus(
      run, TaskRecord{"extract", TaskStatus::kRetryWait, 1, T(1), {}, {}, "", {}}));
  AttemptKey a2 = Must(store->BeginAttempt(run, "extract", 2, T(8)));
  Must(store->FinishAttempt(a2, AttemptResult{AttemptStatus::kSucceeded, 0, {}, "", {}},
                            OutputCounts{2'000'000, 0, 1'000'000, 0}, T(9)));
  Must(store->SetTaskStatus(
      run, TaskRecord{"extract", TaskStatus::kSucceeded, 2, T(1), T(9), 0, "", {}}));
  // load: fails.
  AttemptKey a3 = Must(store->BeginAttempt(run, "load", 1, T(9)));
  Must(store->FinishAttempt(a3, AttemptResult{AttemptStatus::kFailed, 3, {}, "", {}},
                            OutputCounts{}, T(10)));
  Must(store->SetTaskStatus(
      run, TaskRecord{"load", TaskStatus::kFailed, 1, T(9), T(10), 3, "exited with code 3", {}}));
  Must(store->SetRunStatus(run, RunStatus::kFailed, T(10), "task 'load' failed"));

  RunDetail done = Must(store->GetRun(run));
  CHECK(done.run.status == RunStatus::kFailed);
  CHECK(done.run.started_at == T(1));
  CHECK(done.run.ended_at == T(10));
  CHECK(done.run.error == "task 'load' failed");
  CHECK(Lines(done.tasks) == std::vector<std::string>{"extract succeeded attempts=2 t=1..9 exit=0",
                                                      "load failed attempts=1 t=9..10 exit=3"});
  CHECK(Lines(done.attempts) ==
        std::vector<std::string>{
            "extract#1 timed_out t=1..6 exit=- sig=15 error='timed out after 5s' pid=100 pgid=100"
            " start=555 boot=b-1 out=10/0 err=20/0",
            "extract#2 succeeded t=8..9 exit=0 sig=- out=2000000/1000000 err=0/0",
            "load#1 failed t=9..10 exit=3 sig=- out=0/0 err=0/0"});
  CHECK((AttemptKey{done.attempts[0].run_id, done.attempts[0].seq} == a1));
  CHECK(a1 == AttemptKey{run, 1});
  CHECK(done.attempts[2].seq == 3);  // start order across the run's tasks
  CHECK(done.tasks[0].error.empty());
  CHECK(done.tasks[1].error == "exited with code 3");
}

TEST_CASE("a run created in a final state records when and why it did not run") {
  TempDir dir;
  auto store = OpenStore(dir.File("picoflow.db"));
  NewRun spec = EtlRun(T(0));
  spec.status = RunStatus::kCancelled;
  spec.reason = "overlap: run 7 still running";
  spec.tasks.clear();
  RunRecord run = Must(store->GetRun(Must(store->CreateRun(spec)))).run;
  CHECK(run.ended_at == T(0));
  CHECK(run.reason == "overlap: run 7 still running");
  CHECK(Must(store->UnfinishedRuns()).empty());
}

TEST_CASE("UnfinishedRuns finds a run left running with its attempt's process identity") {
  TempDir dir;
  const std::string path = dir.File("picoflow.db");
  // A child process writes and is SIGKILLed: no Close(), no checkpoint, the
  // WAL as a crash leaves it. No doctest macros in the child.
  pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    auto opened = Store::Open(path);
    if (!opened) _exit(10);
    Store& store = **opened;
    bool ok = true;
    auto check = [&](const auto& result) { ok = ok && result.ok(); };
    RunToSuccess(store, 0);                     // run 1
    auto run = store.CreateRun(EtlRun(T(10)));  // run 2
    if (!run) _exit(11);
    check(store.SetRunStatus(*run, RunStatus::kRunning, T(10)));
    auto a = store.BeginAttempt(*run, "extract", 1, T(10));
    if (!a) _exit(12);
    check(store.FinishAttempt(*a, AttemptResult{AttemptStatus::kSucceeded, 0, {}, "", {}}, {},
                              T(11)));
    check(store.SetTaskStatus(
        *run, TaskRecord{"extract", TaskStatus::kSucceeded, 1, T(10), T(11), 0, "", {}}));
    const ProcessIdentity process{321, 320, 98765, "boot-a"};
    auto b = store.BeginAttempt(*run, "load", 1, T(11), &process);
    if (!b) _exit(13);
    check(store.AppendOutput(*b, OutputStream::kStdout, "12345"));
    check(store.AppendOutput(*b, OutputStream::kStderr, "abc"));
    check(store.AppendOutput(*b, OutputStream::kStdout, "678"));
    check(store.CreateRun(EtlRun(T(12), "name: etl\n# newer\n")));  // run 3, queued
    if (!ok) _exit(14);
    kill(getpid(), SIGKILL);
    _exit(15);
  }
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  REQUIRE(WIFSIGNALED(status));
  CHECK(fs::exists(path + "-wal"));
  const std::int64_t crashed = 2, queued = 3;

  auto store = OpenStore(path);
  auto unfinished = Must(store->UnfinishedRuns());
  REQUIRE(unfinished.size() == 2);
  CHECK(unfinished[0].run.id == crashed);
  CHECK(unfinished[0].run.status == RunStatus::kRunning);
  CHECK(unfinished[0].source == kYaml);
  CHECK(Lines(unfinished[0].tasks) ==
        std::vector<std::string>{"extract succeeded attempts=1 t=10..11 exit=0",
                                 "load running attempts=1 t=11..- exit=-"});
  CHECK(Lines(unfinished[0].running_attempts) ==
        std::vector<std::string>{"load#1 running t=11..- exit=- sig=- pid=321 pgid=320 start=98765"
                                 " boot=boot-a out=0/0 err=0/0"});
  CHECK(unfinished[1].run.id == queued);
  CHECK(unfinished[1].source == "name: etl\n# newer\n");
  CHECK(unfinished[1].running_attempts.empty());
  const AttemptKey attempt{crashed, unfinished[0].running_attempts[0].seq};

  Must(store->MarkAttemptInterrupted(attempt, T(20), "picoflowd restarted"));
  CHECK(Lines(Must(store->GetRun(crashed)).attempts).back() ==
        "load#1 interrupted t=11..20 exit=- sig=- error='picoflowd restarted' pid=321 pgid=320"
        " start=98765 boot=boot-a out=8/0 err=3/0");
  // Only a running attempt can be interrupted.
  CHECK(store->MarkAttemptInterrupted(attempt, T(21), "again").error().code ==
        ErrorCode::kNotFound);
  CHECK(Must(store->UnfinishedRuns()).size() == 2);  // the runs are the engine's to resume
}

TEST_CASE("ListRuns pages newest first by before-id, for one workflow or all") {
  TempDir dir;
  auto store = OpenStore(dir.File("picoflow.db"));
  std::vector<std::int64_t> etl, other;
  for (int i = 0; i < 7; ++i) {
    etl.push_back(Must(store->CreateRun(EtlRun(T(i)))));
    NewRun o = EtlRun(T(i));
    o.workflow = "other";
    other.push_back(Must(store->CreateRun(o)));
  }
  auto page1 = Must(store->ListRuns("etl", 3));
  CHECK(Ids(page1) == std::vector<std::int64_t>{etl[6], etl[5], etl[4]});
  auto page2 = Must(store->ListRuns("etl", 3, page1.back().id));
  CHECK(Ids(page2) == std::vector<std::int64_t>{etl[3], etl[2], etl[1]});
  auto page3 = Must(store->ListRuns("etl", 3, page2.back().id));
  CHECK(Ids(page3) == std::vector<std::int64_t>{etl[0]});
  CHECK(Must(store->ListRuns(std::nullopt, 3)).size() == 3);
  CHECK(Ids(Must(store->ListRuns(std::nullopt, 3, etl[1]))) ==
        std::vector<std::int64_t>{other[0], etl[0]});
  CHECK(Must(store->LatestRun("other"))->id == other[6]);
  CHECK_FALSE(Must(store->LatestRun("nothing")).has_value());
  CHECK(Must(store->ListRuns("nothing", 10)).empty());
}

TEST_CASE("a run's selection (only) is stored with it, and a run without one has none") {
  TempDir dir;
  const std::string path = dir.File("picoflow.db");
  std::int64_t alone = 0, down = 0, whole = 0;
  {
    auto store = OpenStore(path);
    NewRun spec = EtlRun(T(0));
    spec.only = RunSelection{{"load"}, SelectWith::kAlone};
    alone = Must(store->CreateRun(spec));
    spec.only = RunSelection{{"load", "extract"}, SelectWith::kDownstream};
    down = Must(store->CreateRun(spec));
    whole = Must(store->CreateRun(EtlRun(T(1))));
  }
  auto store = OpenStore(path);  // read back from the file
  CHECK(Must(store->GetRun(alone)).run.only == RunSelection{{"load"}, SelectWith::kAlone});
  CHECK(Must(store->GetRun(down)).run.only ==
        RunSelection{{"load", "extract"}, SelectWith::kDownstream});
  CHECK_FALSE(Must(store->GetRun(whole)).run.only.has_value());
  // Crash recovery reads it too.
  const auto unfinished = Must(store->UnfinishedRuns());
  REQUIRE(unfinished.size() == 3);
  CHECK(unfinished[1].run.only == RunSelection{{"load", "extract"}, SelectWith::kDownstream});
}

TEST_CASE(
    "LatestSuccess finds a task's newest run where it succeeded by itself, with its outputs") {
  TempDir dir;
  auto store = OpenStore(dir.File("picoflow.db"));
  const auto with_load = [&store](TaskStatus status, const std::string& rows) {
    const std::int64_t run = Must(store->CreateRun(EtlRun(T(0))));
    TaskRecord load{"load", status, 1, T(0), T(1), 0, "", {{"rows", rows}}};
    Must(store->SetTaskStatus(run, load));
    return run;
  };
  CHECK_FALSE(Must(store->LatestSuccess("etl", "load")).has_value());
  with_load(TaskStatus::kSucceeded, "1");
  const std::int64_t second = with_load(TaskStatus::kSucceeded, "2");
  with_load(TaskStatus::kFailed, "3");
  with_load(TaskStatus::kReused, "4");  // taken as done: not a success of its own
  NewRun other = EtlRun(T(0));
  other.workflow = "other";
  const std::int64_t elsewhere = Must(store->CreateRun(other));
  Must(store->SetTaskStatus(
      elsewhere,
      TaskRecord{"load", TaskStatus::kSucceeded, 1, T(0), T(1), 0, "", {{"rows", "5"}}}));

  const auto found = Must(store->LatestSuccess("etl", "load"));
  REQUIRE(found.has_value());
  CHECK(found->run_id == second);
  CHECK(found->outputs == TaskOutputs{{"rows", "2"}});
  CHECK_FALSE(Must(store->LatestSuccess("etl", "extract")).has_value());
  CHECK(Must(store->LatestSuccess("other", "load"))->run_id == elsewhere);
}

TEST_CASE("every query the store makes uses an index, never a scan of history") {
  TempDir dir;
  const std::string path = dir.File("picoflow.db");
  auto store = OpenStore(path);
  // Exercise every method so every statement gets prepared.
  Must(store->PutWorkflow("etl", kYaml, "submitted", T(0)));
  std::int64_t run = RunToSuccess(*store, 1);
  std::int64_t open = Must(store->CreateRun(EtlRun(T(3))));
  AttemptKey attempt = Must(store->BeginAttempt(open, "extract", 1, T(3)));
  Must(store->MarkAttemptInterrupted(attempt, T(4), "x"));
  Must(store->ListWorkflows());
  Must(store->GetWorkflow("etl"));
  Must(store->SetPaused("etl", true));
  Must(store->SetLastFire("etl", T(1)));
  Must(store->ListRuns("etl", 10, run + 1));
  Must(store->ListRuns(std::nullopt, 10));
  Must(store->LatestRun("etl"));
  Must(store->LatestSuccess("etl", "load"));
  Must(store->UnfinishedRuns());
  Must(store->ReadOutput(OutputQuery{run, {}, 0}));
  Must(store->ReadOutput(OutputQuery{run, std::string("load"), 0}));
  Must(store->PutWorkflow("etl", "name: etl\n", "submitted", T(5)));
  Must(store->RemoveWorkflow("etl"));

  auto db = Must(SqliteDb::Open(path));
  std::map<std::string, std::string> plans;  // statement -> its plan
  for (const std::string& sql : store->PreparedSql()) {
    if (sql.find("SELECT") == std::string::npos && sql.rfind("UPDATE", 0) != 0 &&
        sql.rfind("DELETE", 0) != 0) {
      continue;  // plain INSERTs and BEGIN/COMMIT have no plan
    }
    auto q = Must(db->Prepare("explain", "EXPLAIN QUERY PLAN " + sql));
    std::string plan;
    while (Must(q.Step())) plan += q.Text(3) + "\n";
    plans[sql] = plan;
    INFO((sql + "\n" + plan));
    // Only the workflows table (no history, a row per workflow) and the
    // partial index of unfinished runs may be read whole.
    std::istringstream lines(plan);
    for (std::string line; std::getline(lines, line);) {
      if (line.rfind("SCAN ", 0) != 0) continue;
      CHECK((line == "SCAN workflows" || line == "SCAN w" || line.rfind("SCAN w ", 0) == 0 ||
             line == "SCAN runs USING INDEX runs_unfinished" || line == "SCAN CONSTANT ROW"));
    }
  }
  CHECK(plans.size() >= 15);
  // The history page, the latest run and a task's latest success walk
  // runs_by_workflow backwards: no sort.
  int walks = 0;
  for (const auto& entry : plans) {
    // Not a structured binding: clang 14 cannot capture one (INFO does).
    const std::string& sql = entry.first;
    const std::string& plan = entry.second;
    const bool joined = sql.find("FROM runs AS r") != std::string::npos;
    if (sql.find("FROM runs WHERE workflow = ") == std::string::npos && !joined) continue;
    INFO((sql + "\n" + plan));
    ++walks;
    CHECK(plan.find(joined ? "SEARCH r USING COVERING INDEX runs_by_workflow (workflow=?"
                           : "SEARCH runs USING INDEX runs_by_workflow (workflow=?") !=
          std::string::npos);
    CHECK(plan.find("TEMP B-TREE") == std::string::npos);
  }
  CHECK(walks >= 3);
  Must(db->Close());
}

// ---- attempts and output ----------------------------------------------------------

TEST_CASE("output reads back in append order, by task, after a cursor and within a budget") {
  TempDir dir;
  auto store = OpenStore(dir.File("picoflow.db"));
  std::int64_t run = Must(store->CreateRun(EtlRun(T(0))));
  std::int64_t other_run = Must(store->CreateRun(EtlRun(T(0))));
  AttemptKey e1 = Must(store->BeginAttempt(run, "extract", 1, T(0)));
  AttemptKey l1 = Must(store->BeginAttempt(run, "load", 1, T(0)));
  AttemptKey x = Must(store->BeginAttempt(other_run, "extract", 1, T(0)));
  Must(store->AppendOutput(e1, OutputStream::kStdout, "e-a"));
  Must(store->AppendOutput(l1, OutputStream::kStderr, "l-a"));
  Must(store->AppendOutput(x, OutputStream::kStdout, "other run"));
  Must(store->AppendOutput(e1, OutputStream::kStderr, "e-b"));
  Must(store->AppendOutput(e1, OutputStream::kStdout, ""));  // ignored
  Must(store->AppendOutput(l1, OutputStream::kStdout, std::string("l-\0b", 4)));
  AttemptKey e2 = Must(store->BeginAttempt(run, "extract", 2, T(1)));
  Must(store->AppendOutput(e2, OutputStream::kStdout, "e-c"));

  auto all = Must(store->ReadOutput(OutputQuery{run, {}, 0}));
  CHECK(Lines(all) ==
        std::vector<std::string>{"extract#1 out e-a", "load#1 err l-a", "extract#1 err e-b",
                                 std::string("load#1 out l-\0b", 15), "extract#2 out e-c"});
  // Pages of two follow the cursor.
  auto p1 = Must(store->ReadOutput(OutputQuery{run, {}, 0, 2}));
  auto p2 = Must(store->ReadOutput(OutputQuery{run, {}, p1.back().seq, 2}));
  auto p3 = Must(store->ReadOutput(OutputQuery{run, {}, p2.back().seq, 2}));
  auto p4 = Must(store->ReadOutput(OutputQuery{run, {}, p3.back().seq, 2}));
  CHECK(Lines(p1) == std::vector<std::string>{"extract#1 out e-a", "load#1 err l-a"});
  CHECK(Lines(p3) == std::vector<std::string>{"extract#2 out e-c"});
  CHECK(p4.empty());
  // One task only; and a byte budget still returns at least one chunk.
  CHECK(Lines(Must(store->ReadOutput(OutputQuery{run, std::string("extract"), 0}))) ==
        std::vector<std::string>{"extract#1 out e-a", "extract#1 err e-b", "extract#2 out e-c"});
  CHECK(Must(store->ReadOutput(OutputQuery{run, {}, 0, 100, 1})).size() == 1);
  CHECK(Must(store->ReadOutput(OutputQuery{run, {}, 0, 100, 6})).size() == 2);
  CHECK(store->AppendOutput(AttemptKey{run, 4}, OutputStream::kStdout, "x").error().message ==
        "no attempt 4 of run " + std::to_string(run));
  CHECK(store->AppendOutput(AttemptKey{run + 5, 1}, OutputStream::kStdout, "x").error().code ==
        ErrorCode::kNotFound);
}

TEST_CASE("a large output chunk is written once to its run's file, a small one to the database") {
  TempDir dir;
  const std::string db = dir.File("picoflow.db");
  const std::string files = db + "-output";
  auto store = OpenStore(db);
  std::int64_t run = Must(store->CreateRun(EtlRun(T(0))));
  AttemptKey e1 = Must(store->BeginAttempt(run, "extract", 1, T(0)));
  Must(store->AppendOutput(e1, OutputStream::kStdout, "a line\n"));
  // Nothing large yet: no directory, no file.
  CHECK_FALSE(fs::exists(files));
  const std::string big(kOutputFileChunkBytes, 'x');
  const std::string bigger = std::string(3 * kOutputFileChunkBytes, 'y') + "\n";
  Must(store->AppendOutput(e1, OutputStream::kStdout, big));
  Must(store->AppendOutput(e1, OutputStream::kStderr, "err\n"));
  Must(store->AppendOutput(e1, OutputStream::kStderr, bigger));
  const std::string file = files + "/" + std::to_string(run) + ".log";
  REQUIRE(fs::exists(file));
  CHECK(fs::file_size(file) == big.size() + bigger.size());
  CHECK(Mode(file) == 0600);
  CHECK(Mode(files) == 0700);
  {
    // The rows hold where the bytes are, not the bytes.
    sqlite3* raw = nullptr;
    REQUIRE(sqlite3_open(db.c_str(), &raw) == SQLITE_OK);
    sqlite3_stmt* q = nullptr;
    REQUIRE(sqlite3_prepare_v2(raw,
                               "SELECT sum(length(data)), count(file_length), sum(file_length)"
                               " FROM output",
                               -1, &q, nullptr) == SQLITE_OK);
    REQUIRE(sqlite3_step(q) == SQLITE_ROW);
    CHECK(sqlite3_column_int64(q, 0) == 7 + 4);
    CHECK(sqlite3_column_int64(q, 1) == 2);
    CHECK(sqlite3_column_int64(q, 2) == static_cast<std::int64_t>(big.size() + bigger.size()));
    sqlite3_finalize(q);
    sqlite3_close(raw);
  }
  const std::uint64_t total = 7 + big.size() + 4 + bigger.size();
  const std::vector<std::string> expected = {"extract#1 out a line\n", "extract#1 out " + big,
                                             "extract#1 err err\n", "extract#1 err " + bigger};
  CHECK(Lines(Must(store->ReadOutput(OutputQuery{run, {}, 0}))) == expected);
  CHECK(Must(store->OutputBytes()) == total);
  // An interrupted attempt's counts include the bytes in the file.
  Must(store->MarkAttemptInterrupted(e1, T(1), "picoflowd restarted"));
  auto attempts = Must(store->GetRun(run)).attempts;
  REQUIRE(attempts.size() == 1);
  CHECK(attempts[0].counts.stdout_bytes == 7 + big.size());
  CHECK(attempts[0].counts.stderr_bytes == 4 + bigger.size());
  // Reopened: the same chunks, the same total.
  store.reset();
  store = OpenStore(db);
  CHECK(Lines(Must(store->ReadOutput(OutputQuery{run, {}, 0}))) == expected);
  CHECK(Must(store->OutputBytes()) == total);
}

TEST_CASE("output files go with their run, and one the database does not know goes at open") {
  TempDir dir;
  const std::string db = dir.File("picoflow.db");
  const std::string big(2 * kOutputFileChunkBytes, 'z');
  auto store = OpenStore(db);
  std::int64_t old_run = Must(store->CreateRun(EtlRun(T(0))));
  AttemptKey a = Must(store->BeginAttempt(old_run, "extract", 1, T(0)));
  Must(store->AppendOutput(a, OutputStream::kStdout, big));
  Must(store->FinishAttempt(a, AttemptResult{AttemptStatus::kSucceeded, 0, {}, "", {}},
                            OutputCounts{big.size(), 0, 0, 0}, T(1)));
  Must(store->SetRunStatus(old_run, RunStatus::kSucceeded, T(1)));
  std::int64_t new_run = Must(store->CreateRun(EtlRun(T(2))));
  AttemptKey b = Must(store->BeginAttempt(new_run, "extract", 1, T(2)));
  Must(store->AppendOutput(b, OutputStream::kStdout, big));
  const auto file_of = [&](std::int64_t run) {
    return db + "-output/" + std::to_string(run) + ".log";
  };
  REQUIRE(fs::exists(file_of(old_run)));
  // Retention deletes the old run, and its file with it.
  RunRetention keep;
  keep.max_runs = 1;
  CHECK(Must(store->PruneRuns("etl", keep, T(3), 100, false)).runs == 1);
  CHECK_FALSE(fs::exists(file_of(old_run)));
  CHECK(fs::exists(file_of(new_run)));
  CHECK(Must(store->OutputBytes()) == big.size());

  // A file left by a run that never committed (a crash) or a pruned one.
  store.reset();
  std::ofstream(file_of(new_run + 7)) << "orphan";
  store = OpenStore(db);
  CHECK_FALSE(fs::exists(file_of(new_run + 7)));
  CHECK(fs::exists(file_of(new_run)));
}

TEST_CASE("the output cap removes a run's file with the last chunk that points into it") {
  TempDir dir;
  const std::string db = dir.File("picoflow.db");
  const std::string big(kOutputFileChunkBytes, 'q');
  auto store = OpenStore(db);
  std::int64_t run = Must(store->CreateRun(EtlRun(T(0))));
  AttemptKey a = Must(store->BeginAttempt(run, "extract", 1, T(0)));
  Must(store->AppendOutput(a, OutputStream::kStdout, big));
  Must(store->AppendOutput(a, OutputStream::kStdout, "small\n"));
  Must(store->AppendOutput(a, OutputStream::kStdout, big));
  Must(store->SetRunStatus(run, RunStatus::kSucceeded, T(1)));
  const std::string file = db + "-output/" + std::to_string(run) + ".log";
  // Two chunks at a time: the first large one and the small one go, the
  // file stays for the last; then it goes too.
  CHECK(Must(store->PruneOutput(0, 2, false)).output_bytes ==
        static_cast<std::int64_t>(big.size() + 6));
  CHECK(fs::exists(file));
  CHECK(Lines(Must(store->ReadOutput(OutputQuery{run, {}, 0}))) ==
        std::vector<std::string>{"extract#1 out " + big});
  CHECK(Must(store->PruneOutput(0, 2, false)).output_bytes ==
        static_cast<std::int64_t>(big.size()));
  CHECK_FALSE(fs::exists(file));
  CHECK(Must(store->OutputBytes()) == 0);
}

TEST_CASE("a large chunk that cannot go to a file is kept in the database") {
  TempDir dir;
  const std::string db = dir.File("picoflow.db");
  auto store = OpenStore(db);
  std::int64_t run = Must(store->CreateRun(EtlRun(T(0))));
  // Where the run's file would be, a directory: no one can append to it, root included.
  fs::create_directories(db + "-output/" + std::to_string(run) + ".log");
  AttemptKey a = Must(store->BeginAttempt(run, "extract", 1, T(0)));
  const std::string big(2 * kOutputFileChunkBytes, 'k');
  Must(store->AppendOutput(a, OutputStream::kStdout, big));
  CHECK(Lines(Must(store->ReadOutput(OutputQuery{run, {}, 0}))) ==
        std::vector<std::string>{"extract#1 out " + big});
  CHECK(Must(store->OutputBytes()) == big.size());
}

TEST_CASE("foreign keys and uniqueness are enforced and deleting a run cascades") {
  TempDir dir;
  const std::string path = dir.File("picoflow.db");
  auto store = OpenStore(path);
  std::int64_t run = Must(store->CreateRun(EtlRun(T(0))));
  auto missing = store->BeginAttempt(run, "nope", 1, T(0));
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().message == "run " + std::to_string(run) + " has no task 'nope'");
  CHECK_FALSE(store->BeginAttempt(run + 1, "extract", 1, T(0)).ok());
  AttemptKey a = Must(store->BeginAttempt(run, "extract", 1, T(0)));
  auto again = store->BeginAttempt(run, "extract", 1, T(0));
  REQUIRE_FALSE(again.ok());
  CHECK(again.error().message ==
        "attempt 1 of task 'extract' of run " + std::to_string(run) + " has begun already");
  CHECK(again.error().code == ErrorCode::kConflict);
  // The failed transaction left the task as the first attempt made it.
  CHECK(Lines(Must(store->GetRun(run)).tasks)[0] == "extract running attempts=1 t=0..- exit=-");
  // Numbers may skip, never go back.
  CHECK(Must(store->BeginAttempt(run, "extract", 3, T(0))) == (AttemptKey{run, 2}));
  CHECK(store->BeginAttempt(run, "extract", 2, T(0)).error().code == ErrorCode::kConflict);
  NewRun dup = EtlRun(T(0));
  dup.tasks = {"a", "a"};
  CHECK_FALSE(store->CreateRun(dup).ok());
  CHECK(Must(store->ListRuns(std::nullopt, 10)).size() == 1);  // rolled back whole
  Must(store->AppendOutput(a, OutputStream::kStdout, "x"));

  // Retention will delete whole runs: the rest of the history goes with them.
  auto db = Must(SqliteDb::Open(path));
  Must(db->Exec("t", "PRAGMA foreign_keys = ON"));
  Must(db->Exec("t", "DELETE FROM runs"));
  CHECK(Must(db->QueryInt("t",
                          "SELECT (SELECT count(*) FROM run_tasks) + (SELECT count(*) FROM"
                          " attempts) + (SELECT count(*) FROM output)")) == 0);
  CHECK(store->GetRun(run).error().code == ErrorCode::kNotFound);
  Must(db->Close());
}

TEST_CASE("unknown ids are reported as not found") {
  TempDir dir;
  auto store = OpenStore(dir.File("picoflow.db"));
  CHECK(store->GetRun(5).error().message == "no run 5");
  CHECK(store->SetRunStatus(5, RunStatus::kRunning, T(0)).error().code == ErrorCode::kNotFound);
  std::int64_t run = Must(store->CreateRun(EtlRun(T(0))));
  TaskRecord nope;
  nope.name = "nope";
  CHECK(store->SetTaskStatus(run, nope).error().message ==
        "run " + std::to_string(run) + " has no task 'nope'");
  CHECK(store->FinishAttempt(AttemptKey{run, 9}, AttemptResult{}, {}, T(0)).error().message ==
        "no attempt 9 of run " + std::to_string(run));
  // The attempt's end and its tasks are one transaction: a task the run does
  // not have leaves the attempt running.
  AttemptKey a = Must(store->BeginAttempt(run, "extract", 1, T(0)));
  CHECK(store
            ->FinishAttempt(
                a, AttemptResult{AttemptStatus::kSucceeded, 0, {}, "", {}}, {}, T(1),
                {TaskRecord{"extract", TaskStatus::kSucceeded, 1, T(0), T(1), 0, "", {}}, nope})
            .error()
            .code == ErrorCode::kNotFound);
  CHECK_FALSE(Must(store->GetRun(run)).attempts.at(0).status.has_value());  // still running
  CHECK(Must(store->GetRun(run)).tasks.at(0).status == TaskStatus::kRunning);
  CHECK(store->GetVersionSource(77).error().code == ErrorCode::kNotFound);
  Must(store->Close());
  Must(store->Close());  // idempotent
}

// What another connection (a crash's survivor) sees: the first column of
// the first row of `sql` as text, "none" if there is no row.
std::string Committed(const std::string& path, const char* sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr) == SQLITE_OK);
  std::string value = sqlite3_step(stmt) == SQLITE_ROW
                          ? reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0))
                          : "none";
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return value;
}

std::int64_t CommittedRuns(const std::string& path) {
  return std::stoll(Committed(path, "SELECT count(*) FROM runs"));
}

TEST_CASE("under group commit, writes wait for Commit and each operation stays atomic") {
  TempDir dir;
  const std::string path = dir.File("picoflow.db");
  auto store = OpenStore(path);
  int groups = 0;
  store->EnableGroupCommit([&] { ++groups; });
  CHECK_FALSE(store->has_uncommitted());
  const std::int64_t run = Must(store->CreateRun(EtlRun(T(0))));
  Must(store->SetRunStatus(run, RunStatus::kRunning, T(1)));
  const AttemptKey a1 = Must(store->BeginAttempt(run, "extract", 1, T(1)));
  // A failing operation undoes only itself: attempt 1 exists already.
  CHECK_FALSE(store->BeginAttempt(run, "extract", 1, T(2)).ok());
  CHECK(groups == 1);
  CHECK(store->has_uncommitted());
  // This connection reads its own writes; nobody else does yet.
  CHECK(Must(store->GetRun(run)).attempts.size() == 1);
  CHECK(CommittedRuns(path) == 0);

  Must(store->Commit());
  CHECK_FALSE(store->has_uncommitted());
  CHECK(CommittedRuns(path) == 1);
  Must(store->Commit());  // nothing open: a no-op
  CHECK(groups == 1);

  // The next write opens the next group.
  Must(store->FinishAttempt(a1, AttemptResult{AttemptStatus::kSucceeded, 0, {}, "", {}},
                            OutputCounts{}, T(3)));
  CHECK(groups == 2);
  Must(store->EndGroupCommit());
  CHECK_FALSE(store->has_uncommitted());
  // Back to one transaction per operation: committed at once, no new group.
  Must(store->SetRunStatus(run, RunStatus::kSucceeded, T(4)));
  CHECK(groups == 2);
  CHECK_FALSE(store->has_uncommitted());
  Must(store->Close());
  auto reopened = OpenStore(path);
  const RunDetail done = Must(reopened->GetRun(run));
  CHECK(done.run.status == RunStatus::kSucceeded);
  CHECK(Lines(done.attempts) ==
        std::vector<std::string>{"extract#1 succeeded t=1..3 exit=0 sig=- out=0/0 err=0/0"});
}

// An attempt's status and pid as another connection sees them.
std::string CommittedAttempt(const std::string& path) {
  return Committed(path, "SELECT status || ' ' || coalesce(pid, '-') FROM attempts");
}

TEST_CASE("an attempt is begun `starting`; its process is written with the next group, or a read") {
  TempDir dir;
  const std::string path = dir.File("picoflow.db");
  auto store = OpenStore(path);
  int groups = 0;
  store->EnableGroupCommit([&] { ++groups; });
  const std::int64_t run = Must(store->CreateRun(EtlRun(T(0))));
  const AttemptKey a = Must(store->BeginAttempt(run, "extract", 1, T(1)));
  Must(store->Commit());  // before the spawn
  CHECK(CommittedAttempt(path) == "starting -");
  const ProcessIdentity process{4242, 4242, 1000, "boot"};
  store->NoteAttemptStarted(a, &process);
  CHECK_FALSE(store->has_uncommitted());  // no group of its own
  CHECK(groups == 1);
  // The next group takes it along...
  Must(store->SetRunStatus(run, RunStatus::kRunning, T(2)));
  Must(store->Commit());
  CHECK(CommittedAttempt(path) == "running 4242");
  CHECK(groups == 2);
  // ... and so does a read of the run, at once.
  const AttemptKey b = Must(store->BeginAttempt(run, "load", 1, T(3)));
  Must(store->Commit());
  store->NoteAttemptStarted(b, nullptr);  // no process: http, ssh
  const RunDetail detail = Must(store->GetRun(run));
  CHECK(Lines(detail.attempts) ==
        std::vector<std::string>{"extract#1 running t=1..- exit=- sig=- pid=4242 pgid=4242"
                                 " start=1000 boot=boot out=0/0 err=0/0",
                                 "load#1 running t=3..- exit=- sig=- out=0/0 err=0/0"});
  Must(store->Commit());
  // A `starting` attempt is unfinished, as a running one, for recovery.
  const AttemptKey c = Must(store->BeginAttempt(run, "extract", 2, T(4)));
  Must(store->Commit());
  auto unfinished = Must(store->UnfinishedRuns());
  REQUIRE(unfinished.size() == 1);
  CHECK(unfinished[0].running_attempts.size() == 3);
  Must(store->MarkAttemptInterrupted(c, T(5), "gone"));
  Must(store->EndGroupCommit());
  Must(store->Close());
}

TEST_CASE("GroupCommit commits each loop iteration's writes before the loop blocks again") {
  TempDir dir;
  const std::string path = dir.File("picoflow.db");
  auto store = OpenStore(path);
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  struct Steps {
    Store* store;
    std::string path;
    std::vector<std::int64_t> seen;  // committed runs, as another connection sees them
  } steps{store.get(), path, {}};
  {
    GroupCommit group(&loop, *store);
    uv_timer_t write_timer, check_timer;
    uv_timer_init(&loop, &write_timer);
    uv_timer_init(&loop, &check_timer);
    write_timer.data = check_timer.data = &steps;
    // Two runs in one iteration: one group; seen by others only after it.
    uv_timer_start(
        &write_timer,
        [](uv_timer_t* t) {
          auto* s = static_cast<Steps*>(t->data);
          Must(s->store->CreateRun(EtlRun(T(0))));
          Must(s->store->CreateRun(EtlRun(T(1))));
          s->seen.push_back(CommittedRuns(s->path));
        },
        1, 0);
    uv_timer_start(
        &check_timer,
        [](uv_timer_t* t) {
          auto* s = static_cast<Steps*>(t->data);
          s->seen.push_back(CommittedRuns(s->path));
        },
        20, 0);
    // The armed prepare handle keeps nothing alive: uv_run returns once the
    // timers are done.
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_close(reinterpret_cast<uv_handle_t*>(&write_timer), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&check_timer), nullptr);
    group.Close();
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  CHECK(steps.seen == std::vector<std::int64_t>{0, 2});
  CHECK(uv_loop_close(&loop) == 0);
  // Closed: writes commit one by one again.
  Must(store->CreateRun(EtlRun(T(2))));
  CHECK(CommittedRuns(path) == 3);
}

// Writes one run per loop iteration (a 0 ms repeating timer) until `stop`
// says so; then runs the loop until `done` holds or a minute passes.
struct WalDriver {
  Store* store;
  std::function<bool()> stop;
  std::vector<int> frames;  // the WAL's size after each iteration's write
  int i = 0;
  uv_timer_t tick;

  // Writes a run in every loop iteration (a 1 ms repeating timer), noting
  // the WAL's size after the previous iteration's commit, until stop() (or
  // 100,000 iterations).
  void Start(uv_loop_t* loop) {
    uv_timer_init(loop, &tick);
    tick.data = this;
    uv_timer_start(
        &tick,
        [](uv_timer_t* t) {
          auto* w = static_cast<WalDriver*>(t->data);
          if (w->i++ > 0) w->frames.push_back(w->store->WalFrames());
          if (w->stop() || w->i > 100000) {
            uv_timer_stop(t);
            return;
          }
          Must(w->store->CreateRun(EtlRun(T(w->i))));
        },
        0, 1);
  }
  void Close() { uv_close(reinterpret_cast<uv_handle_t*>(&tick), nullptr); }
};

TEST_CASE("GroupCommit checkpoints a large WAL at a quiet moment, not while commits come") {
  TempDir dir;
  auto store = OpenStore(dir.File("picoflow.db"));
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  WalDriver d{store.get(), {}, {}, 0, {}};
  d.stop = [&] { return !d.frames.empty() && d.frames.back() >= kCheckpointFrames; };
  {
    GroupCommit group(&loop, *store);
    d.Start(&loop);
    // Past the threshold only now: the loop runs on until the quiet
    // moment's checkpoint (the pending timer keeps it alive).
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(store->WalFrames() == 0);
    // While commits came, the WAL only grew.
    CHECK(std::is_sorted(d.frames.begin(), d.frames.end()));
    CHECK(d.frames.back() >= kCheckpointFrames);
    CHECK(d.frames.back() < kCheckpointForceFrames);
    d.Close();
    group.Close();
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  CHECK(uv_loop_close(&loop) == 0);
}

TEST_CASE("GroupCommit forces a checkpoint when the WAL reaches its limit without a pause") {
  TempDir dir;
  auto store = OpenStore(dir.File("picoflow.db"));
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  WalDriver d{store.get(), {}, {}, 0, {}};
  // Until the WAL was started over once: its size fell between two writes.
  d.stop = [&] { return d.frames.size() >= 2 && d.frames.back() < d.frames[d.frames.size() - 2]; };
  {
    GroupCommit group(&loop, *store);
    d.Start(&loop);
    uv_run(&loop, UV_RUN_DEFAULT);
    REQUIRE(d.frames.size() >= 2);
    // The WAL grew to within one commit of the limit; the commit that
    // reached it was checkpointed at once, so the WAL started over.
    const int most = *std::max_element(d.frames.begin(), d.frames.end());
    CHECK(most < kCheckpointForceFrames);
    CHECK(most >= kCheckpointForceFrames - 100);
    CHECK(d.frames.back() < 100);
    d.Close();
    group.Close();
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  CHECK(uv_loop_close(&loop) == 0);
}

TEST_CASE("closing the store commits the open group") {
  TempDir dir;
  const std::string path = dir.File("picoflow.db");
  auto store = OpenStore(path);
  store->EnableGroupCommit([] {});
  Must(store->CreateRun(EtlRun(T(0))));
  CHECK(CommittedRuns(path) == 0);
  Must(store->Close());
  CHECK(CommittedRuns(path) == 1);
}

// Not a timing assertion: prints what one state transition costs here.
TEST_CASE("10,000 runs go through every state transition, each its own transaction") {
  TempDir dir;
  for (Synchronous sync : {Synchronous::kNormal, Synchronous::kFull}) {
    const std::string path = dir.File(sync == Synchronous::kFull ? "full.db" : "normal.db");
    auto store = OpenStore(path, StoreOptions{sync, std::chrono::milliseconds(5000)});
    const int runs = sync == Synchronous::kFull ? 200 : 10000;  // FULL: an fsync each
    constexpr int kTransitionsPerRun = 3 + 2 * 5;               // see RunToSuccess
    auto start = std::chrono::steady_clock::now();
    std::int64_t last = 0;
    for (int i = 0; i < runs; ++i) last = RunToSuccess(*store, i);
    auto elapsed = std::chrono::steady_clock::now() - start;
    const double us =
        std::chrono::duration<double, std::micro>(elapsed).count() / (runs * kTransitionsPerRun);
    const std::string name = sync == Synchronous::kFull ? "FULL" : "NORMAL";
    MESSAGE("synchronous=" << name << ": " << runs << " runs, " << runs * kTransitionsPerRun
                           << " transitions, " << us << " us per transition");
    auto page = Must(store->ListRuns("etl", 20));
    REQUIRE(page.size() == 20);
    CHECK(page.front().id == last);
    Must(store->Close());
  }
}

}  // namespace picoflow

namespace picoflow {
namespace {

TEST_CASE("a database of schema 12 takes runs started by events, its history intact") {
  TempDir dir;
  const std::string path = dir.File("picoflow.db");
  {
    auto db = Must(SqliteDb::Open(path));
    Must(MigrateSchema(*db, StoreMigrations().first(12)));
    Must(db->Exec("t",
                  "INSERT INTO workflow_versions (id, workflow, hash, source, created_at)"
                  " VALUES (1, 'etl', 0, 'name: etl\n', 0);"
                  "INSERT INTO runs (id, workflow, version_id, status, triggered_by, created_at)"
                  " VALUES (1, 'etl', 1, 'succeeded', 'cron', 0);"));
    // Before: the CHECK refuses the new words.
    CHECK_FALSE(db->Exec("t",
                         "INSERT INTO runs (workflow, version_id, status, triggered_by,"
                         " created_at) VALUES ('etl', 1, 'pending', 'file', 0)")
                    .ok());
    Must(db->Close());
  }
  {
    auto store = OpenStore(path);
    CHECK(Must(store->GetRun(1)).run.trigger == RunTrigger::kCron);
    CHECK(Must(store->GetRun(1)).run.event.empty());
    // In the connection that migrated, and for every word.
    for (RunTrigger t :
         {RunTrigger::kFile, RunTrigger::kWebhook, RunTrigger::kMqtt, RunTrigger::kFleet}) {
      NewRun run = EtlRun(T(5));
      run.trigger = t;
      run.event.file = "/srv/in/a.jpg";
      run.event.payload = "{\"k\": 1}";
      const RunDetail got = Must(store->GetRun(Must(store->CreateRun(run))));
      CHECK(got.run.trigger == t);
      CHECK(got.run.event == run.event);
    }
    Must(store->Close());
  }
  auto db = Must(SqliteDb::Open(path));
  CHECK(Must(db->QueryInt("t", "PRAGMA user_version")) == Store::SchemaVersion());
  CHECK(Must(db->QueryText("t", "PRAGMA integrity_check")) == "ok");
  // Any other word is still refused.
  CHECK_FALSE(db->Exec("t",
                       "INSERT INTO runs (workflow, version_id, status, triggered_by, created_at)"
                       " VALUES ('etl', 1, 'pending', 'bogus', 0)")
                  .ok());
}

}  // namespace
}  // namespace picoflow
