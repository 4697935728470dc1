// A full disk: the store keeps what it cannot save (store_kept.cc,
// store_backlog.cc). The "disk" is SQLite's max_page_count, a real
// SQLITE_FULL; retention's deletes make the room a user would make.

#include <doctest/doctest.h>
#include <sqlite3.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "picoflowd/store/sqlite_db.h"
#include "picoflowd/store/store.h"
#include "tests/test_util.h"

namespace picoflow {
namespace {

using test::Must;
using test::TempDir;

TimePoint T(int seconds) { return FromMillis(1'700'000'000'000) + std::chrono::seconds(seconds); }

NewRun EtlRun(TimePoint at) {
  NewRun run;
  run.workflow = "etl";
  run.source = "name: etl\n";
  run.trigger = RunTrigger::kRpc;
  run.created_at = at;
  run.tasks = {"extract", "load"};
  return run;
}

std::unique_ptr<Store> OpenStore(const std::string& path, std::int64_t max_pages = 0) {
  StoreOptions options;
  options.max_pages = max_pages;
  auto store = Store::Open(path, options);
  REQUIRE_MESSAGE(store.ok(), (store.ok() ? "" : store.error().message));
  return std::move(*store);
}

// Another connection's answer to one query: what is committed.
std::string Committed(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  std::string out;
  auto row = [](void* to, int n, char** values, char**) {
    auto* s = static_cast<std::string*>(to);
    for (int i = 0; i < n; ++i)
      *s += std::string(i ? " " : (s->empty() ? "" : "|")) + (values[i] ? values[i] : "-");
    return 0;
  };
  REQUIRE(sqlite3_exec(db, sql.c_str(), row, &out, nullptr) == SQLITE_OK);
  sqlite3_close(db);
  return out;
}

std::int64_t PageCount(const std::string& path) {
  return std::stoll(Committed(path, "PRAGMA page_count"));
}

// A finished run with `bytes` of output: room that retention can free.
void OldRun(Store& store, int at, std::size_t bytes) {
  const std::int64_t run = Must(store.CreateRun(EtlRun(T(at))));
  const AttemptKey a = Must(store.BeginAttempt(run, "extract", 1, T(at)));
  // In chunks under kOutputFileChunkBytes: in the database's pages.
  std::size_t written = 0;
  for (; written < bytes; written += 1000) {
    Must(store.AppendOutput(a, OutputStream::kStdout, std::string(1000, 'o')));
  }
  Must(store.FinishAttempt(a, AttemptResult{AttemptStatus::kSucceeded, 0, {}, "", {}},
                           OutputCounts{written, 0, 0, 0}, T(at + 1)));
  Must(store.SetRunStatus(run, RunStatus::kSucceeded, T(at + 1)));
}

std::string Describe(const RunDetail& d) {
  std::string s = std::string("run ") + RunStatusName(d.run.status) +
                  (d.run.ended_at ? " ended" : " open") + " '" + d.run.error + "'";
  for (const TaskRecord& t : d.tasks) {
    s += "; " + t.name + " " + TaskStatusName(t.status) + " x" + std::to_string(t.attempts) +
         (t.exit_code ? " exit=" + std::to_string(*t.exit_code) : "") + " '" + t.error + "'";
  }
  for (const AttemptRecord& a : d.attempts) {
    s += "; #" + std::to_string(a.seq) + " " + a.task + "/" + std::to_string(a.number) + " " +
         (a.status ? AttemptStatusName(*a.status) : "running") +
         (a.process ? " pid=" + std::to_string(a.process->pid) : "") +
         " out=" + std::to_string(a.counts.stdout_bytes) + "/" +
         std::to_string(a.counts.stdout_dropped);
  }
  return s;
}

// The store of a run in progress whose disk has no room left: `run` is
// running, its task extract has begun attempt 1 (pid 7).
struct FullStore {
  explicit FullStore(std::size_t old_output = 200 * 1024) {
    // Where the run's output file would be, a directory: its large chunks
    // go to the database's pages too, which max_page_count limits.
    std::filesystem::create_directories(path + "-output/4.log");
    {
      auto setup = OpenStore(path);
      for (int i = 0; i < 3; ++i) OldRun(*setup, i, old_output);
      Must(setup->Close());
    }
    store = OpenStore(path, PageCount(path));
    run = Must(store->CreateRun(EtlRun(T(10))));
    Must(store->SetRunStatus(run, RunStatus::kRunning, T(10)));
    const ProcessIdentity process{7, 7, 100, "boot"};
    extract = Must(store->BeginAttempt(run, "extract", 1, T(11), &process));
  }
  TempDir dir;
  const std::string path = dir.File("picoflow.db");
  std::unique_ptr<Store> store;
  std::int64_t run = 0;
  AttemptKey extract;
};

}  // namespace

TEST_CASE("a run's changes a full disk refuses are kept, read back, and saved in order later") {
  FullStore full;
  Store& store = *full.store;
  CHECK_FALSE(store.degraded());

  // The first write that needs a new page fails for real (SQLITE_FULL): the
  // store keeps it, and everything after it, instead.
  Must(store.AppendOutput(full.extract, OutputStream::kStdout, std::string(100 * 1024, 'x')));
  REQUIRE(store.degraded());
  Must(store.FinishAttempt(
      full.extract, AttemptResult{AttemptStatus::kSucceeded, 0, {}, "", {}},
      OutputCounts{100 * 1024, 0, 0, 0}, T(12),
      {TaskRecord{"extract", TaskStatus::kSucceeded, 1, T(11), T(12), 0, "", {}}}));
  const AttemptKey load = Must(store.BeginAttempt(full.run, "load", 1, T(13)));
  CHECK(load == AttemptKey{full.run, 2});  // after the stored attempt 1
  const ProcessIdentity process{8, 8, 200, "boot"};
  store.NoteAttemptStarted(load, &process);
  Must(store.FinishAttempt(
      load, AttemptResult{AttemptStatus::kFailed, 3, {}, "exited with code 3", {}}, OutputCounts{},
      T(14),
      {TaskRecord{"load", TaskStatus::kFailed, 1, T(13), T(14), 3, "exited with code 3", {}}}));
  Must(store.SetRunStatus(full.run, RunStatus::kFailed, T(14), "task 'load' failed"));

  const StoreHealth health = store.Health();
  CHECK(health.degraded);
  CHECK(health.reason == "disk full");
  CHECK(health.error.find("full") != std::string::npos);
  CHECK(health.kept_writes == 6);
  CHECK(health.since.has_value());

  // Readers see the truth; the disk still has the run running.
  const std::string truth =
      "run failed ended 'task 'load' failed'; extract succeeded x1 exit=0 ''; load failed x1"
      " exit=3 'exited with code 3'; #1 extract/1 succeeded pid=7 out=102400/0; #2 load/1 failed"
      " pid=8 out=0/0";
  CHECK(Describe(Must(store.GetRun(full.run))) == truth);
  const auto listed = Must(store.ListRuns(std::string("etl"), 1));
  REQUIRE(listed.size() == 1);
  CHECK(listed[0].status == RunStatus::kFailed);
  CHECK(Must(store.LatestRun("etl"))->status == RunStatus::kFailed);
  CHECK(Committed(full.path, "SELECT status FROM runs WHERE id = " + std::to_string(full.run)) ==
        "running");

  // No new run while degraded: it could not be recorded either.
  auto refused = store.CreateRun(EtlRun(T(15)));
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code == ErrorCode::kDiskFull);
  CHECK(refused.error().message.find("store degraded (disk full)") != std::string::npos);

  // Still no room: nothing is saved, nothing is forgotten.
  Status retry = store.SaveKept();
  REQUIRE_FALSE(retry.ok());
  CHECK(retry.error().code == ErrorCode::kDiskFull);
  CHECK(store.Health().kept_writes == 6);
  CHECK(Committed(full.path, "SELECT count(*) FROM attempts") == "4");

  // Retention makes room (its deletes free pages); the next retry saves all.
  const PruneCounts pruned = Must(store.PruneRuns("etl", RunRetention{1, {}}, T(20), 100, false));
  CHECK(pruned.runs == 3);
  Must(store.SaveKept());
  CHECK_FALSE(store.degraded());
  CHECK(store.Health().kept_writes == 0);
  CHECK(Describe(Must(store.GetRun(full.run))) == truth);
  CHECK(Committed(full.path, "SELECT status, error FROM runs WHERE id = " +
                                 std::to_string(full.run)) == "failed task 'load' failed");
  CHECK(Committed(full.path, "SELECT task, status, pid FROM attempts ORDER BY id") ==
        "extract succeeded 7|load failed 8");
  CHECK(Committed(full.path, "SELECT sum(coalesce(file_length, length(data))) FROM output") ==
        "102400");
  Must(store.CreateRun(EtlRun(T(21))));
  Must(store.Close());
}

TEST_CASE("output past the memory budget of a full disk is counted as dropped and marked") {
  FullStore full(600 * 1024);
  Store& store = *full.store;
  const std::string chunk(256 * 1024, 'y');
  for (int i = 0; i < 6; ++i) {  // 1.5 MiB: 1 MiB is kept, the rest counted
    Must(store.AppendOutput(full.extract, OutputStream::kStdout, chunk));
  }
  REQUIRE(store.degraded());
  CHECK(store.Health().lost_output == 512 * 1024);
  CHECK(store.Health().kept_writes == 5);  // four chunks and one count of the rest
  Must(store.FinishAttempt(full.extract, AttemptResult{AttemptStatus::kSucceeded, 0, {}, "", {}},
                           OutputCounts{6 * chunk.size(), 0, 0, 0}, T(12)));
  const std::string shown = Describe(Must(store.GetRun(full.run)));
  CHECK(shown.find("#1 extract/1 succeeded pid=7 out=1572864/524288") != std::string::npos);

  Must(store.PruneRuns("etl", RunRetention{1, {}}, T(20), 100, false));
  Must(store.SaveKept());
  CHECK(Describe(Must(store.GetRun(full.run))) == shown);
  OutputQuery query;
  query.run_id = full.run;
  query.max_bytes = 4 << 20;
  const auto chunks = Must(store.ReadOutput(query));
  REQUIRE(chunks.size() == 5);
  for (int i = 0; i < 4; ++i) CHECK(chunks[i].data == chunk);
  CHECK(chunks[4].data == "\n[picoflow: 524288 bytes of output lost: the disk was full]\n");
  Must(store.Close());
}

TEST_CASE("with group commit, the rest of a group commits and later writes wait behind the kept") {
  FullStore full;
  Store& store = *full.store;
  int groups = 0;
  store.EnableGroupCommit([&] { ++groups; });
  Must(store.SetRunStatus(full.run, RunStatus::kRunning, T(11)));  // joins the group
  Must(store.AppendOutput(full.extract, OutputStream::kStdout, std::string(100 * 1024, 'x')));
  REQUIRE(store.degraded());
  // This write fits on the disk, but it must not be saved before the
  // output the disk refused: it waits behind it.
  Must(store.FinishAttempt(full.extract, AttemptResult{AttemptStatus::kSucceeded, 0, {}, "", {}},
                           OutputCounts{100 * 1024, 0, 0, 0}, T(12)));
  Must(store.Commit());
  CHECK(Committed(full.path, "SELECT status FROM attempts ORDER BY id DESC LIMIT 1") == "running");
  CHECK(store.Health().kept_writes == 2);
  Must(store.PruneRuns("etl", RunRetention{1, {}}, T(20), 100, false));
  Must(store.Commit());
  Must(store.SaveKept());
  CHECK(Committed(full.path, "SELECT status FROM attempts ORDER BY id DESC LIMIT 1") ==
        "succeeded");
  Must(store.EndGroupCommit());
  Must(store.Close());
}

}  // namespace picoflow
