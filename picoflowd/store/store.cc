// Store: opening and closing, workflows and their versions.
// Runs, tasks, attempts and output are in store_runs.cc.

#include "picoflowd/store/store.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "picoflowd/store/output_log.h"
#include "picoflowd/store/sqlite_db.h"
#include "picoflowd/store/store_backlog.h"
#include "picoflowd/store/store_schema.h"
#include "picoflowd/util/logging.h"

namespace picoflow {
namespace {

// Creates the file with mode 0600 if it is missing. sqlite would create it
// with 0644 & ~umask, and copies the main file's mode to -wal and -shm.
Status CreateFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return Err(ErrorCode::kIo, "store: create " + path + ": " + std::strerror(errno));
  }
  close(fd);
  return {};
}

// A database made with another page size (before kStorePageSize, or by
// hand) is rewritten once with it. The page size cannot change in WAL mode:
// the file goes back to a rollback journal for the VACUUM, and Configure
// turns WAL on again.
Status UsePageSize(SqliteDb& db) {
  auto size = db.QueryInt("read page size", "PRAGMA page_size");
  if (!size) return size.error();
  if (*size == kStorePageSize) return {};
  LogInfo(LogEvent("store.page_size"),
          "store: rewriting " + db.path() + " with " + std::to_string(kStorePageSize) +
              "-byte pages (was " + std::to_string(*size) + "): fewer bytes written per run");
  auto mode = db.QueryText("leave WAL", "PRAGMA journal_mode = DELETE");
  if (!mode) return mode.error();
  const std::string set = "PRAGMA page_size = " + std::to_string(kStorePageSize);
  if (Status s = db.Exec("set page size", set.c_str()); !s) return s;
  return db.Exec("rewrite with the new page size", "VACUUM");
}

// Connection settings that must follow the migrations: journal_mode=WAL
// writes the header of a new file, after which auto_vacuum cannot change.
Status Configure(SqliteDb& db, const StoreOptions& options) {
  auto mode = db.QueryText("enable WAL", "PRAGMA journal_mode = WAL");
  if (!mode) return mode.error();
  if (*mode != "wal") {
    return Err(ErrorCode::kIo, "store: " + db.path() + ": cannot use WAL (journal mode stays '" +
                                   *mode + "'); put the database on a local file system");
  }
  const char* sync = options.synchronous == Synchronous::kFull ? "PRAGMA synchronous = FULL"
                                                               : "PRAGMA synchronous = NORMAL";
  if (Status s = db.Exec("set synchronous", sync); !s) return s;
  // Under group commit, checkpoints are GroupCommit's (at a quiet moment,
  // rarely), not SQLite's after whichever commit passes 1000 frames. The WAL
  // file is reused from its start after each checkpoint, never truncated and
  // regrown below the size it may reach.
  const std::string limit =
      "PRAGMA journal_size_limit = " + std::to_string(2 * kCheckpointForceFrames * kStorePageSize);
  if (Status s = db.Exec("set journal_size_limit", limit.c_str()); !s) return s;
  // SQLite's default page cache grows to 2 MiB as history accumulates; the
  // pages a daemon touches (the newest rows and their index paths) fit in far
  // less, and the kernel's page cache serves the rest without disk reads.
  if (Status s = db.Exec("set cache_size", "PRAGMA cache_size = -512"); !s) return s;
  if (options.max_pages > 0) {
    const std::string max = "PRAGMA max_page_count = " + std::to_string(options.max_pages);
    if (Status s = db.Exec("set max_page_count", max.c_str()); !s) return s;
  }
  return db.Exec("enable foreign keys", "PRAGMA foreign_keys = ON");
}

}  // namespace

// ---- lifecycle ----------------------------------------------------------------

Store::Store(std::unique_ptr<SqliteDb> db, std::unique_ptr<OutputLog> files, bool sync_full)
    : db_(std::move(db)),
      files_(std::move(files)),
      sync_full_(sync_full),
      kept_(std::make_unique<StoreBacklog>()) {}

Store::~Store() {
  Status closed = Close();
  (void)closed;  // SqliteDb asserts on a failed close
}

int Store::SchemaVersion() { return static_cast<int>(StoreMigrations().size()); }

Result<std::unique_ptr<Store>> Store::Open(const std::string& path, const StoreOptions& options) {
  if (Status created = CreateFile(path); !created) return created.error();
  auto db = SqliteDb::Open(path);
  if (!db) return db.error();
  std::string busy = "PRAGMA busy_timeout = " + std::to_string(options.busy_timeout.count());
  if (Status s = (*db)->Exec("set busy_timeout", busy.c_str()); !s) return s.error();
  // The first read of the file: a non-database fails here ("file is not a
  // database"), named with its path.
  std::string what = "open " + path;
  if (auto probe = (*db)->QueryInt(what.c_str(), "PRAGMA schema_version"); !probe) {
    return probe.error();
  }
  if (Status s = MigrateSchema(**db, StoreMigrations()); !s) return s.error();
  if (Status s = UsePageSize(**db); !s) return s.error();
  if (Status s = Configure(**db, options); !s) return s.error();
  // The output total, for retention's cap: one pass over the output's leaf
  // pages (length() does not read the data), then kept in memory.
  auto total = (*db)->QueryInt("count output",
                               "SELECT coalesce(sum(coalesce(file_length, length(data))), 0)"
                               " FROM output");
  if (!total) return total.error();
  auto files = std::make_unique<OutputLog>(path + "-output");
  if (Status s = files->Open(); !s) return s.error();
  auto store = std::unique_ptr<Store>(
      new Store(std::move(*db), std::move(files), options.synchronous == Synchronous::kFull));
  store->output_bytes_ = static_cast<std::uint64_t>(*total);
  if (Status s = store->RemoveOrphanOutput(); !s) return s.error();
  return store;
}

Status Store::Close() {
  if (!db_) return {};
  SaveKeptOrSayLost();
  SyncOutputFiles();
  Status committed = db_->CommitGroup(/*disable=*/true);
  // Cheap when nothing changed; keeps the planner's statistics current.
  // Closing goes on without it.
  LogIfFailed({}, db_->Exec("optimize", "PRAGMA optimize"));
  Status closed = db_->Close();
  if (closed) db_.reset();
  return committed ? closed : committed;
}

void Store::EnableGroupCommit(std::function<void()> on_open) {
  // A group that opens takes the started attempts along (NoteAttemptStarted).
  db_->EnableGroupCommit(
      [this, on_open = std::move(on_open)] {
        on_open();
        ApplyStarted();
      },
      [this](const Error& why) { GroupLost(why); });
}

Status Store::Commit() {
  if (!db_) return {};
  if (db_->group_open()) ApplyStarted();
  SyncOutputFiles();
  Status committed = db_->CommitGroup();
  if (committed) kept_->GroupSaved();
  return committed;
}

void Store::SaveKeptOrSayLost() {
  if (kept_->empty() || SaveKept()) return;
  LogError(LogEvent("store.kept_lost"),
           "store: " + std::to_string(kept_->size()) +
               " changes kept in memory since the disk filled are lost: " + health_.error +
               "; the runs they belong to resume at the next start");
  kept_->Clear();
}

void Store::SyncOutputFiles() {
  // Durable commits: the rows that point into the output files do not reach
  // the disk before the bytes they point to. A file that cannot be synced
  // does not stop the commit: its chunks may read back short, nothing else.
  if (sync_full_) LogIfFailed(LogEvent("store.output_sync"), files_->Sync());
}

Status Store::RemoveOrphanOutput() {
  std::vector<std::int64_t> orphans;
  for (const auto& [run_id, size] : files_->sizes()) {
    auto q = db_->Prepare("find run of output file", "SELECT 1 FROM runs WHERE id = ?1");
    if (!q) return q.error();
    q->Bind(1, run_id);
    auto row = q->Step();
    if (!row) return row.error();
    if (!*row) orphans.push_back(run_id);
  }
  for (std::int64_t run_id : orphans) {
    if (Status s = files_->Remove(run_id); !s) return s;
  }
  return {};
}

int Store::WalFrames() const { return db_ ? db_->wal_frames() : 0; }

Status Store::Checkpoint() { return db_ ? db_->Checkpoint() : Status{}; }

Status Store::EndGroupCommit() {
  if (!db_) return {};
  SaveKeptOrSayLost();
  FlushStarted();
  SyncOutputFiles();
  return db_->CommitGroup(/*disable=*/true);
}

bool Store::has_uncommitted() const { return db_ && db_->group_open(); }

std::vector<std::string> Store::PreparedSql() const { return db_->PreparedSql(); }

// ---- workflows ----------------------------------------------------------------

namespace {

// FNV-1a, 64 bits: only narrows the lookup, the source itself is compared.
std::int64_t SourceHash(std::string_view source) {
  std::uint64_t h = 14695981039346656037ull;
  for (unsigned char c : source) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return static_cast<std::int64_t>(h);
}

Error NoWorkflow(const std::string& name) {
  return Err(ErrorCode::kNotFound, "no workflow '" + name + "'");
}

}  // namespace

Result<std::int64_t> Store::InternVersion(const std::string& workflow, std::string_view source,
                                          std::string_view base_dir, TimePoint now) {
  const std::int64_t hash = SourceHash(source);
  {
    auto q = db_->Prepare("find workflow version",
                          "SELECT id FROM workflow_versions"
                          " WHERE workflow = ?1 AND hash = ?2 AND source = ?3 AND base_dir = ?4");
    if (!q) return q.error();
    q->Bind(1, workflow).Bind(2, hash).Bind(3, source).Bind(4, base_dir);
    auto row = q->Step();
    if (!row) return row.error();
    if (*row) return q->Int64(0);
  }
  auto q =
      db_->Prepare("add workflow version",
                   "INSERT INTO workflow_versions (workflow, hash, source, created_at, base_dir)"
                   " VALUES (?1, ?2, ?3, ?4, ?5)");
  if (!q) return q.error();
  q->Bind(1, workflow).Bind(2, hash).Bind(3, source).Bind(4, now).Bind(5, base_dir);
  if (Status s = q->Run(); !s) return s.error();
  return db_->LastInsertId();
}

Status Store::DropVersionIfUnused(std::int64_t version_id) {
  auto q = db_->Prepare("drop workflow version",
                        "DELETE FROM workflow_versions WHERE id = ?1"
                        " AND NOT EXISTS (SELECT 1 FROM runs WHERE version_id = ?1)"
                        " AND NOT EXISTS (SELECT 1 FROM workflows WHERE version_id = ?1)");
  if (!q) return q.error();
  q->Bind(1, version_id);
  return q->Run();
}

Result<std::int64_t> Store::PutWorkflow(const std::string& name, std::string_view source,
                                        const std::string& origin, TimePoint now,
                                        std::string_view base_dir) {
  auto tx = Transaction::Begin(*db_, "put workflow");
  if (!tx) return tx.error();
  std::optional<std::int64_t> old_version;
  {
    auto q = db_->Prepare("put workflow", "SELECT version_id FROM workflows WHERE name = ?1");
    if (!q) return q.error();
    q->Bind(1, name);
    auto row = q->Step();
    if (!row) return row.error();
    if (*row) old_version = q->Int64(0);
  }
  auto version = InternVersion(name, source, base_dir, now);
  if (!version) return version.error();
  {
    auto q = db_->Prepare(
        "put workflow",
        "INSERT INTO workflows (name, version_id, origin, submitted_at, updated_at)"
        " VALUES (?1, ?2, ?3, ?4, ?4)"
        " ON CONFLICT (name) DO UPDATE SET version_id = excluded.version_id,"
        " origin = excluded.origin,"
        " updated_at = CASE WHEN version_id = excluded.version_id AND origin = excluded.origin"
        " THEN updated_at ELSE excluded.updated_at END");
    if (!q) return q.error();
    q->Bind(1, name).Bind(2, *version).Bind(3, origin).Bind(4, now);
    if (Status s = q->Run(); !s) return s.error();
  }
  if (old_version && *old_version != *version) {
    if (Status s = DropVersionIfUnused(*old_version); !s) return s.error();
  }
  if (Status s = tx->Commit(); !s) return s.error();
  return *version;
}

Status Store::RemoveWorkflow(const std::string& name) {
  auto tx = Transaction::Begin(*db_, "remove workflow");
  if (!tx) return tx.error();
  std::int64_t version = 0;
  {
    auto q = db_->Prepare("remove workflow",
                          "DELETE FROM workflows WHERE name = ?1 RETURNING version_id");
    if (!q) return q.error();
    q->Bind(1, name);
    auto row = q->Step();
    if (!row) return row.error();
    if (!*row) return NoWorkflow(name);
    version = q->Int64(0);
    if (Status s = q->Run(); !s) return s;  // RETURNING: finish the statement
  }
  if (Status s = DropVersionIfUnused(version); !s) return s;
  return tx->Commit();
}

namespace {

constexpr const char* kWorkflowColumns =
    "w.name, w.origin, w.version_id, w.paused, w.submitted_at, w.updated_at, w.last_fire_at";

WorkflowRecord ReadWorkflow(const Query& q) {
  WorkflowRecord w;
  w.name = q.Text(0);
  w.origin = q.Text(1);
  w.version_id = q.Int64(2);
  w.paused = q.Int64(3) != 0;
  w.submitted_at = q.Time(4);
  w.updated_at = q.Time(5);
  w.last_fire_at = q.OptionalTime(6);
  return w;
}

}  // namespace

Result<WorkflowRecord> Store::GetWorkflow(const std::string& name) {
  auto q = db_->Prepare("get workflow",
                        std::string("SELECT ") + kWorkflowColumns +
                            ", v.source, v.base_dir FROM workflows w"
                            " JOIN workflow_versions v ON v.id = w.version_id WHERE w.name = ?1");
  if (!q) return q.error();
  q->Bind(1, name);
  auto row = q->Step();
  if (!row) return row.error();
  if (!*row) return NoWorkflow(name);
  WorkflowRecord w = ReadWorkflow(*q);
  w.source = q->Text(7);
  w.base_dir = q->Text(8);
  return w;
}

Result<std::vector<WorkflowRecord>> Store::ListWorkflows() {
  auto q = db_->Prepare("list workflows", std::string("SELECT ") + kWorkflowColumns +
                                              " FROM workflows w ORDER BY w.name");
  if (!q) return q.error();
  std::vector<WorkflowRecord> list;
  for (;;) {
    auto row = q->Step();
    if (!row) return row.error();
    if (!*row) return list;
    list.push_back(ReadWorkflow(*q));
  }
}

Status Store::SetPaused(const std::string& name, bool paused) {
  auto q = db_->Prepare("pause workflow", "UPDATE workflows SET paused = ?2 WHERE name = ?1");
  if (!q) return q.error();
  q->Bind(1, name).Bind(2, paused ? 1 : 0);
  if (Status s = q->Run(); !s) return s;
  if (db_->Changes() == 0) return NoWorkflow(name);
  return {};
}

Status Store::SetLastFire(const std::string& name, TimePoint fire) {
  auto q = db_->Prepare("set last fire", "UPDATE workflows SET last_fire_at = ?2 WHERE name = ?1");
  if (!q) return q.error();
  q->Bind(1, name).Bind(2, fire);
  if (Status s = q->Run(); !s) return s;
  if (db_->Changes() == 0) return NoWorkflow(name);
  return {};
}

Result<std::string> Store::GetVersionSource(std::int64_t version_id) {
  auto version = GetVersion(version_id);
  if (!version.ok()) return version.error();
  return std::move(version->first);
}

Result<std::pair<std::string, std::string>> Store::GetVersion(std::int64_t version_id) {
  auto q = db_->Prepare("get workflow version",
                        "SELECT source, base_dir FROM workflow_versions WHERE id = ?1");
  if (!q) return q.error();
  q->Bind(1, version_id);
  auto row = q->Step();
  if (!row) return row.error();
  if (!*row) {
    return Err(ErrorCode::kNotFound, "no workflow version " + std::to_string(version_id));
  }
  return std::pair{q->Text(0), q->Text(1)};
}

}  // namespace picoflow
