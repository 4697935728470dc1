// Retention at the store level: Store::PruneRuns / PruneOutput / VacuumStep
// and the Pruner that drives them from a libuv loop.

#include <doctest/doctest.h>
#include <sys/stat.h>
#include <uv.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

#include "picoflowd/engine/run.h"
#include "picoflowd/pruner.h"
#include "picoflowd/store/sqlite_db.h"
#include "picoflowd/store/store.h"
#include "tests/test_util.h"

namespace picoflow {
namespace {

using test::Must;
using test::TempDir;
using namespace std::chrono_literals;

TimePoint T(int seconds) { return FromMillis(1'700'000'000'000) + std::chrono::seconds(seconds); }

constexpr const char* kYaml = R"(name: etl
tasks:
  - name: extract
    type: shell
    config: { command: "echo extract" }
)";

// A finished one-task run of `workflow` created at T(at), with `output`
// bytes of stdout. Returns its id.
std::int64_t FinishedRun(Store& store, const std::string& workflow, int at,
                         std::size_t output = 100, RunStatus final = RunStatus::kSucceeded) {
  NewRun run;
  run.workflow = workflow;
  run.source = kYaml;
  run.trigger = RunTrigger::kCron;
  run.created_at = T(at);
  run.status = RunStatus::kRunning;
  run.tasks = {"extract"};
  std::int64_t id = Must(store.CreateRun(run));
  AttemptKey attempt = Must(store.BeginAttempt(id, "extract", 1, T(at)));
  // Chunks below kOutputFileChunkBytes: the output stays in the database,
  // whose pages retention frees (files: store_test.cc).
  for (std::size_t done = 0; done < output; done += kOutputFileChunkBytes - 1) {
    const std::size_t n = std::min(output - done, kOutputFileChunkBytes - 1);
    Must(store.AppendOutput(attempt, OutputStream::kStdout, std::string(n, 'x')));
  }
  AttemptResult ok;
  ok.status = AttemptStatus::kSucceeded;
  ok.exit_code = 0;
  Must(store.FinishAttempt(attempt, ok, OutputCounts{output, 0, 0, 0}, T(at)));
  if (final != RunStatus::kRunning) Must(store.SetRunStatus(id, final, T(at)));
  return id;
}

std::vector<std::int64_t> Ids(Store& store, const std::string& workflow) {
  std::vector<std::int64_t> ids;
  for (const RunRecord& r : Must(store.ListRuns(workflow, 1000))) ids.push_back(r.id);
  std::reverse(ids.begin(), ids.end());
  return ids;
}

std::uint64_t FileSize(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
}

TEST_CASE("max_runs keeps the newest runs of each workflow, in batches, never a live one") {
  TempDir dir;
  auto store = Must(Store::Open(dir.File("picoflow.db")));
  std::vector<std::int64_t> etl;
  for (int i = 0; i < 5; ++i) etl.push_back(FinishedRun(*store, "etl", i));
  const std::int64_t live = FinishedRun(*store, "etl", 5, 10, RunStatus::kRunning);
  for (int i = 6; i < 8; ++i) etl.push_back(FinishedRun(*store, "etl", i));
  const std::int64_t other = FinishedRun(*store, "other", 9);

  const RunRetention keep{2, 0s};
  auto dry = Must(store->PruneRuns("etl", keep, T(10), 2, true));
  CHECK(dry.runs == 5);  // the live one is past the 2 newest but stays
  CHECK(dry.output_bytes == 500);
  CHECK(Ids(*store, "etl").size() == 8);  // a dry run deletes nothing

  auto first = Must(store->PruneRuns("etl", keep, T(10), 2, false));
  CHECK(first.runs == 2);
  CHECK(first.output_bytes == 200);
  auto second = Must(store->PruneRuns("etl", keep, T(10), 2, false));
  CHECK(second.runs == 2);
  CHECK(Must(store->PruneRuns("etl", keep, T(10), 2, false)).runs == 1);
  CHECK(Must(store->PruneRuns("etl", keep, T(10), 2, false)).runs == 0);
  CHECK(Ids(*store, "etl") == std::vector<std::int64_t>{live, etl[5], etl[6]});
  CHECK(Ids(*store, "other") == std::vector<std::int64_t>{other});
  CHECK(Must(store->OutputBytes()) == 10 + 2 * 100 + 100);

  CHECK(Must(store->NextRunWorkflow("")) == std::optional<std::string>("etl"));
  CHECK(Must(store->NextRunWorkflow("etl")) == std::optional<std::string>("other"));
  CHECK(Must(store->NextRunWorkflow("other")) == std::nullopt);
}

TEST_CASE("max_age deletes runs created before now minus the age, and 0 means no limit") {
  TempDir dir;
  auto store = Must(Store::Open(dir.File("picoflow.db")));
  std::vector<std::int64_t> ids;
  for (int i = 0; i < 6; ++i) ids.push_back(FinishedRun(*store, "etl", i * 100));
  CHECK(Must(store->PruneRuns("etl", RunRetention{0, 0s}, T(1000), 50, false)).runs == 0);
  // Created at 0..500; now 1000; max_age 650s: runs before 350 go.
  CHECK(Must(store->PruneRuns("etl", RunRetention{0, 650s}, T(1000), 50, false)).runs == 4);
  CHECK(Ids(*store, "etl") == std::vector<std::int64_t>{ids[4], ids[5]});
  // Both limits: a run goes if either says so.
  CHECK(Must(store->PruneRuns("etl", RunRetention{1, 3600s}, T(1000), 50, false)).runs == 1);
  CHECK(Ids(*store, "etl") == std::vector<std::int64_t>{ids[5]});
  // Every run too old.
  CHECK(Must(store->PruneRuns("etl", RunRetention{0, 1s}, T(100000), 50, false)).runs == 1);
  CHECK(Ids(*store, "etl").empty());
}

TEST_CASE("the output cap drops the oldest finished runs' output first and keeps the runs") {
  TempDir dir;
  auto store = Must(Store::Open(dir.File("picoflow.db")));
  const std::int64_t a = FinishedRun(*store, "etl", 0, 1000);
  const std::int64_t b = FinishedRun(*store, "etl", 1, 1000);
  const std::int64_t c = FinishedRun(*store, "etl", 2, 1000);
  CHECK(Must(store->OutputBytes()) == 3000);
  CHECK(Must(store->PruneOutput(1500, 200, true)).output_bytes == 1500);
  CHECK(Must(store->PruneOutput(1500, 200, false)).output_bytes == 1000);
  CHECK(Must(store->PruneOutput(1500, 200, false)).output_bytes == 1000);
  CHECK(Must(store->PruneOutput(1500, 200, false)).output_bytes == 0);  // under the cap
  CHECK(Must(store->OutputBytes()) == 1000);
  CHECK(Ids(*store, "etl") == std::vector<std::int64_t>{a, b, c});
  OutputQuery q;
  q.run_id = c;
  CHECK(Must(store->ReadOutput(q)).size() == 1);
  q.run_id = a;
  CHECK(Must(store->ReadOutput(q)).empty());
}

TEST_CASE("the output total survives reopening and counts cascaded deletes") {
  TempDir dir;
  const std::string path = dir.File("picoflow.db");
  {
    auto store = Must(Store::Open(path));
    FinishedRun(*store, "etl", 0, 300);
    FinishedRun(*store, "etl", 1, 200);
    Must(store->Close());
  }
  auto store = Must(Store::Open(path));
  CHECK(Must(store->OutputBytes()) == 500);
  CHECK(Must(store->PruneRuns("etl", RunRetention{1, 0s}, T(2), 50, false)).output_bytes == 300);
  CHECK(Must(store->OutputBytes()) == 200);
}

// Drives a background pass of `pruner` on `loop` to its end.
void RunLoop(uv_loop_t* loop) { uv_run(loop, UV_RUN_DEFAULT); }

TEST_CASE("5,000 short runs with max_runs 50 leave 50 runs and a database under 2 MiB") {
  TempDir dir;
  const std::string path = dir.File("picoflow.db");
  auto store = Must(Store::Open(path));
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  RetentionConfig config;
  config.quiet = 0ms;
  int lookups = 0;
  Pruner pruner(&loop, *store, config, [&lookups](const std::string& workflow) {
    ++lookups;
    return workflow == "etl" ? RunRetention{50, 0s} : RunRetention{1000, 0s};
  });
  std::uint64_t largest = 0;
  for (int i = 0; i < 5000; ++i) {
    FinishedRun(*store, "etl", i, 512);
    // The daemon prunes after runs finish; here after every 100.
    if (i % 100 == 99) {
      pruner.OnRunFinished(0, RunStatus::kSucceeded);
      RunLoop(&loop);
      largest = std::max(largest, FileSize(path) + FileSize(path + "-wal"));
    }
  }
  CHECK(Ids(*store, "etl").size() == 50);
  CHECK(pruner.total().runs == 4950);
  CHECK(pruner.total().output_bytes == 4950 * 512);
  CHECK(Must(store->OutputBytes()) == 50 * 512);
  const std::uint64_t db_bytes = Must(store->DatabaseBytes());
  pruner.Close();
  RunLoop(&loop);
  CHECK(uv_loop_close(&loop) == 0);
  Must(store->Close());
  const std::uint64_t file = FileSize(path);
  MESSAGE("5,000 runs, max_runs 50: database " << db_bytes << " bytes (file " << file
                                               << " after close), largest db+wal seen " << largest
                                               << " bytes");
  CHECK(file < (2u << 20));
  CHECK(largest < (8u << 20));  // the WAL is capped by journal_size_limit (4 MiB)
}

TEST_CASE("PruneNow counts with dry_run, then deletes and vacuums the freed pages") {
  TempDir dir;
  auto store = Must(Store::Open(dir.File("picoflow.db")));
  for (int i = 0; i < 300; ++i) FinishedRun(*store, i % 2 == 0 ? "a" : "b", i, 4000);
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  RetentionConfig config;
  config.max_output_bytes = 100 * 4000;
  Pruner pruner(&loop, *store, config, [](const std::string&) { return RunRetention{100, 0s}; });
  auto dry = Must(pruner.PruneNow(true));
  CHECK(dry.runs == 100);                              // 50 of each workflow
  CHECK(dry.output_bytes == 100 * 4000 + 100 * 4000);  // those runs', then the cap's
  CHECK(Ids(*store, "a").size() == 150);
  const std::uint64_t before = Must(store->DatabaseBytes());
  auto done = Must(pruner.PruneNow(false));
  CHECK(done.runs == 100);
  CHECK(done.output_bytes == dry.output_bytes);
  CHECK(Ids(*store, "a").size() == 100);
  CHECK(Ids(*store, "b").size() == 100);
  CHECK(Must(store->OutputBytes()) == 100 * 4000);
  CHECK(Must(store->DatabaseBytes()) < before / 2);  // freed pages went back
  pruner.Close();
  RunLoop(&loop);
  CHECK(uv_loop_close(&loop) == 0);
}

DeliveryRecord Delivery(std::optional<std::int64_t> run_id, int attempt, bool sent) {
  DeliveryRecord d;
  d.run_id = run_id;
  d.workflow = "etl";
  d.target = "hook";
  d.kind = "webhook";
  d.event = run_id ? "failure" : "test";
  d.attempt = attempt;
  d.sent = sent;
  d.error = sent ? "" : "connection refused";
  d.at = T(attempt);
  return d;
}

TEST_CASE("notification deliveries go with their run; tests keep the latest 100") {
  TempDir dir;
  auto store = Must(Store::Open(dir.File("picoflow.db")));
  const std::int64_t old_run = FinishedRun(*store, "etl", 1, 10, RunStatus::kFailed);
  const std::int64_t new_run = FinishedRun(*store, "etl", 5, 10, RunStatus::kFailed);
  Must(store->RecordDelivery(Delivery(old_run, 1, false)));
  Must(store->RecordDelivery(Delivery(old_run, 2, true)));
  Must(store->RecordDelivery(Delivery(new_run, 1, true)));
  for (int i = 0; i < Store::kMaxTestDeliveries + 5; ++i) {
    Must(store->RecordDelivery(Delivery(std::nullopt, 1, true)));
  }
  auto of_old = Must(store->ListDeliveries(old_run, 10));
  REQUIRE(of_old.size() == 2);
  CHECK(of_old[0].attempt == 2);  // newest first
  CHECK(of_old[0].sent);
  CHECK(of_old[1].error == "connection refused");
  CHECK(Must(store->ListDeliveries(std::nullopt, 1000)).size() ==
        3 + static_cast<std::size_t>(Store::kMaxTestDeliveries));

  CHECK(Must(store->PruneRuns("etl", RunRetention{1, 0s}, T(10), 10, false)).runs == 1);
  CHECK(Must(store->ListDeliveries(old_run, 10)).empty());
  CHECK(Must(store->ListDeliveries(new_run, 10)).size() == 1);
}

TEST_CASE("the previous end of a workflow: the latest run before that succeeded or failed") {
  TempDir dir;
  auto store = Must(Store::Open(dir.File("picoflow.db")));
  const std::int64_t failed = FinishedRun(*store, "etl", 1, 10, RunStatus::kFailed);
  const std::int64_t cancelled = FinishedRun(*store, "etl", 2, 10, RunStatus::kCancelled);
  const std::int64_t next = FinishedRun(*store, "etl", 3, 10, RunStatus::kSucceeded);
  CHECK_FALSE(Must(store->PreviousEnd("etl", failed)).has_value());
  CHECK(Must(store->PreviousEnd("etl", cancelled)) == RunStatus::kFailed);
  CHECK(Must(store->PreviousEnd("etl", next)) == RunStatus::kFailed);  // the cancel is not an end
  CHECK(Must(store->PreviousEnd("etl", next + 1)) == RunStatus::kSucceeded);
}

}  // namespace
}  // namespace picoflow
