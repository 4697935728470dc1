// Store: retention. Deleting a run cascades to its tasks, attempts and
// output; the output total is kept in memory (counted at open), less what
// each deletion frees. Every function here is one short transaction over an
// index range, so the loop can run them in small batches between other work.

#include <algorithm>
#include <limits>
#include <string>
#include <vector>

#include "picoflowd/store/output_log.h"
#include "picoflowd/store/sqlite_db.h"
#include "picoflowd/store/store.h"

namespace picoflow {
namespace {

// Runs in these states belong to the engine; retention never touches them.
#define PF_FINISHED_RUN "status NOT IN ('pending', 'running')"

// Runs of `workflow` with ids below the cutoff are past retention: older than
// the max_runs-th newest, or created before now - max_age.
Result<std::int64_t> Cutoff(SqliteDb& db, const std::string& workflow, const RunRetention& keep,
                            TimePoint now) {
  std::int64_t cutoff = 0;
  if (keep.max_runs > 0) {
    auto q = db.Prepare("retention by count",
                        "SELECT id FROM runs WHERE workflow = ?1 ORDER BY id DESC"
                        " LIMIT 1 OFFSET ?2");
    if (!q) return q.error();
    q->Bind(1, workflow).Bind(2, keep.max_runs - 1);
    auto row = q->Step();
    if (!row) return row.error();
    if (*row) cutoff = q->Int64(0);
  }
  if (keep.max_age.count() > 0) {
    // Ids grow with created_at: the first young run bounds the old ones.
    auto q = db.Prepare("retention by age",
                        "SELECT id FROM runs WHERE workflow = ?1 AND created_at >= ?2"
                        " ORDER BY id LIMIT 1");
    if (!q) return q.error();
    q->Bind(1, workflow).Bind(2, now - keep.max_age);
    auto row = q->Step();
    if (!row) return row.error();
    cutoff = std::max(cutoff, *row ? q->Int64(0) : std::numeric_limits<std::int64_t>::max());
  }
  return cutoff;
}

// Bytes of output stored for run `run_id` (length() does not read the data).
Result<std::int64_t> RunOutputBytes(SqliteDb& db, std::int64_t run_id) {
  auto q = db.Prepare("count run output",
                      "SELECT coalesce(sum(coalesce(file_length, length(data))), 0) FROM output"
                      " WHERE run_id = ?1");
  if (!q) return q.error();
  q->Bind(1, run_id);
  if (auto row = q->Step(); !row) return row.error();
  return q->Int64(0);
}

Result<PruneCounts> CountPrunable(SqliteDb& db, const std::string& workflow, std::int64_t cutoff) {
  PruneCounts counts;
  auto runs = db.Prepare("count prunable runs",
                         "SELECT count(*) FROM runs WHERE workflow = ?1 AND id < ?2"
                         " AND " PF_FINISHED_RUN);
  if (!runs) return runs.error();
  runs->Bind(1, workflow).Bind(2, cutoff);
  if (auto row = runs->Step(); !row) return row.error();
  counts.runs = runs->Int64(0);
  auto bytes = db.Prepare("count prunable output",
                          "SELECT coalesce(sum(coalesce(o.file_length, length(o.data))), 0)"
                          " FROM runs r"
                          " JOIN output o ON o.run_id = r.id"
                          " WHERE r.workflow = ?1 AND r.id < ?2 AND r." PF_FINISHED_RUN);
  if (!bytes) return bytes.error();
  bytes->Bind(1, workflow).Bind(2, cutoff);
  if (auto row = bytes->Step(); !row) return row.error();
  counts.output_bytes = bytes->Int64(0);
  return counts;
}

}  // namespace

Result<std::optional<std::string>> Store::NextRunWorkflow(const std::string& after) {
  auto q = db_->Prepare("next workflow with runs",
                        "SELECT workflow FROM runs WHERE workflow > ?1 ORDER BY workflow LIMIT 1");
  if (!q) return q.error();
  q->Bind(1, after);
  auto row = q->Step();
  if (!row) return row.error();
  if (!*row) return std::optional<std::string>();
  return std::optional<std::string>(q->Text(0));
}

Result<PruneCounts> Store::PruneRuns(const std::string& workflow, const RunRetention& keep,
                                     TimePoint now, int max_rows, bool dry_run) {
  if (keep.max_runs <= 0 && keep.max_age.count() <= 0) return PruneCounts{};
  if (dry_run) {
    auto cutoff = Cutoff(*db_, workflow, keep, now);
    if (!cutoff) return cutoff.error();
    return CountPrunable(*db_, workflow, *cutoff);
  }
  auto tx = Transaction::Begin(*db_, "prune runs");
  if (!tx) return tx.error();
  auto cutoff = Cutoff(*db_, workflow, keep, now);
  if (!cutoff) return cutoff.error();
  std::vector<std::int64_t> ids, versions;
  {
    auto q = db_->Prepare("select prunable runs",
                          "SELECT id, version_id FROM runs WHERE workflow = ?1 AND id < ?2"
                          " AND " PF_FINISHED_RUN " ORDER BY id LIMIT ?3");
    if (!q) return q.error();
    q->Bind(1, workflow).Bind(2, *cutoff).Bind(3, std::max(max_rows, 1));
    for (;;) {
      auto row = q->Step();
      if (!row) return row.error();
      if (!*row) break;
      ids.push_back(q->Int64(0));
      versions.push_back(q->Int64(1));
    }
  }
  std::int64_t freed = 0;
  for (std::int64_t id : ids) {
    auto bytes = RunOutputBytes(*db_, id);
    if (!bytes) return bytes.error();
    freed += *bytes;
    auto q = db_->Prepare("delete run", "DELETE FROM runs WHERE id = ?1");
    if (!q) return q.error();
    q->Bind(1, id);
    if (Status s = q->Run(); !s) return s.error();
  }
  std::sort(versions.begin(), versions.end());
  versions.erase(std::unique(versions.begin(), versions.end()), versions.end());
  for (std::int64_t version : versions) {
    if (Status s = DropVersionIfUnused(version); !s) return s.error();
  }
  if (Status s = tx->Commit(); !s) return s.error();
  output_bytes_ -= std::min<std::uint64_t>(output_bytes_, static_cast<std::uint64_t>(freed));
  // A crash before the group commits leaves the rows and loses the files:
  // those runs were going anyway, and are pruned again at the next start.
  for (std::int64_t id : ids) {
    if (Status s = files_->Remove(id); !s) return s.error();
  }
  return PruneCounts{static_cast<std::int64_t>(ids.size()), freed};
}

Result<PruneCounts> Store::PruneOutput(std::uint64_t max_bytes, int max_rows, bool dry_run) {
  auto total = OutputBytes();
  if (!total) return total.error();
  if (*total <= max_bytes) return PruneCounts{};
  if (dry_run) return PruneCounts{0, static_cast<std::int64_t>(*total - max_bytes)};
  auto tx = Transaction::Begin(*db_, "prune output");
  if (!tx) return tx.error();
  std::int64_t run_id = 0;
  {
    // Run ids grow with time: the finished run with the lowest id that has
    // output holds the oldest output that may go.
    auto q = db_->Prepare("oldest output",
                          "SELECT o.run_id FROM output o JOIN runs r ON r.id = o.run_id"
                          " WHERE r." PF_FINISHED_RUN " ORDER BY o.run_id LIMIT 1");
    if (!q) return q.error();
    auto row = q->Step();
    if (!row) return row.error();
    if (!*row) return PruneCounts{};
    run_id = q->Int64(0);
  }
  // The run's first chunks, up to max_rows: their last seq bounds them.
  std::int64_t last_seq = 0;
  std::int64_t freed = 0;
  {
    auto q =
        db_->Prepare("oldest chunks",
                     "SELECT max(seq), coalesce(sum(coalesce(file_length, length(data))), 0) FROM"
                     " (SELECT seq, data, file_length FROM output WHERE run_id = ?1"
                     "  ORDER BY seq LIMIT ?2)");
    if (!q) return q.error();
    q->Bind(1, run_id).Bind(2, std::max(max_rows, 1));
    if (auto row = q->Step(); !row) return row.error();
    last_seq = q->Int64(0);
    freed = q->Int64(1);
  }
  {
    auto q = db_->Prepare("delete output", "DELETE FROM output WHERE run_id = ?1 AND seq <= ?2");
    if (!q) return q.error();
    q->Bind(1, run_id).Bind(2, last_seq);
    if (Status s = q->Run(); !s) return s.error();
  }
  bool file_in_use = false;
  if (files_->Size(run_id) > 0) {
    auto q = db_->Prepare("output file in use",
                          "SELECT 1 FROM output WHERE run_id = ?1 AND file_length IS NOT NULL"
                          " LIMIT 1");
    if (!q) return q.error();
    q->Bind(1, run_id);
    auto row = q->Step();
    if (!row) return row.error();
    file_in_use = *row;
  }
  if (Status s = tx->Commit(); !s) return s.error();
  output_bytes_ -= std::min<std::uint64_t>(output_bytes_, static_cast<std::uint64_t>(freed));
  // The run's file goes with its last chunk (the rest of it stays until then).
  if (!file_in_use) {
    if (Status s = files_->Remove(run_id); !s) return s.error();
  }
  return PruneCounts{0, freed};
}

Result<std::uint64_t> Store::OutputBytes() { return output_bytes_; }

Result<bool> Store::VacuumStep(int pages) {
  const std::string sql = "PRAGMA incremental_vacuum(" + std::to_string(std::max(pages, 1)) + ")";
  if (Status s = db_->Exec("incremental vacuum", sql.c_str()); !s) return s.error();
  auto free_pages = db_->QueryInt("read freelist", "PRAGMA freelist_count");
  if (!free_pages) return free_pages.error();
  return *free_pages > 0;
}

Result<std::uint64_t> Store::DatabaseBytes() {
  auto pages = db_->QueryInt("read page count", "PRAGMA page_count");
  if (!pages) return pages.error();
  auto size = db_->QueryInt("read page size", "PRAGMA page_size");
  if (!size) return size.error();
  return static_cast<std::uint64_t>(*pages) * static_cast<std::uint64_t>(*size);
}

#undef PF_FINISHED_RUN

}  // namespace picoflow
