#include "picoflowd/store/sqlite_db.h"

#include <sqlite3.h>

#include <cassert>
#include <functional>
#include <utility>

#include "picoflowd/util/logging.h"

namespace picoflow {

std::int64_t ToMillis(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

TimePoint FromMillis(std::int64_t ms) {
  return TimePoint(std::chrono::duration_cast<TimePoint::duration>(std::chrono::milliseconds(ms)));
}

namespace {

Error StoreError(const char* what, const std::string& message, int rc = SQLITE_ERROR) {
  // SQLITE_FULL: the disk, or max_page_count, refused to grow the file.
  const ErrorCode code = (rc & 0xff) == SQLITE_FULL ? ErrorCode::kDiskFull : ErrorCode::kIo;
  return Err(code, std::string("store: ") + what + ": " + message);
}

}  // namespace

// ---- Query ------------------------------------------------------------------

Query::~Query() {
  if (stmt_ == nullptr) return;
  // reset() repeats the last step's error code, already reported by Step().
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

Query::Query(Query&& other) noexcept
    : stmt_(std::exchange(other.stmt_, nullptr)),
      what_(other.what_),
      bind_error_(other.bind_error_) {}

Query& Query::Bind(int index, std::int64_t value) {
  int rc = sqlite3_bind_int64(stmt_, index, value);
  if (rc != SQLITE_OK && bind_error_ == 0) bind_error_ = rc;
  return *this;
}

Query& Query::Bind(int index, std::string_view text) {
  // A zero-length text must still be non-NULL: data() of an empty view may be.
  const char* data = text.empty() ? "" : text.data();
  int rc = sqlite3_bind_text64(stmt_, index, data, text.size(), SQLITE_STATIC, SQLITE_UTF8);
  if (rc != SQLITE_OK && bind_error_ == 0) bind_error_ = rc;
  return *this;
}

Query& Query::BindBlob(int index, std::string_view bytes) {
  const char* data = bytes.empty() ? "" : bytes.data();
  int rc = sqlite3_bind_blob64(stmt_, index, data, bytes.size(), SQLITE_STATIC);
  if (rc != SQLITE_OK && bind_error_ == 0) bind_error_ = rc;
  return *this;
}

Query& Query::BindNull(int index) {
  int rc = sqlite3_bind_null(stmt_, index);
  if (rc != SQLITE_OK && bind_error_ == 0) bind_error_ = rc;
  return *this;
}

Result<bool> Query::Step() {
  if (bind_error_ != 0) {
    return StoreError(what_, std::string("bind: ") + sqlite3_errstr(bind_error_));
  }
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return StepError(rc);
}

Status Query::Run() {
  for (;;) {
    auto row = Step();
    if (!row) return row.error();
    if (!*row) return {};
  }
}

Error Query::StepError(int rc) const {
  // The connection's message is more specific ("FOREIGN KEY constraint
  // failed", "database is locked") than sqlite3_errstr(rc).
  const char* message = sqlite3_errmsg(sqlite3_db_handle(stmt_));
  return StoreError(what_, message != nullptr ? message : sqlite3_errstr(rc), rc);
}

bool Query::IsNull(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }

std::int64_t Query::Int64(int col) const { return sqlite3_column_int64(stmt_, col); }

std::string Query::Text(int col) const {
  // Ask for the pointer first, then the size (sqlite's documented order).
  const void* data = sqlite3_column_blob(stmt_, col);
  int size = sqlite3_column_bytes(stmt_, col);
  if (data == nullptr || size <= 0) return {};
  return std::string(static_cast<const char*>(data), static_cast<std::size_t>(size));
}

std::optional<std::int64_t> Query::OptionalInt64(int col) const {
  if (IsNull(col)) return std::nullopt;
  return Int64(col);
}

std::optional<int> Query::OptionalInt(int col) const {
  if (IsNull(col)) return std::nullopt;
  return Int(col);
}

std::optional<TimePoint> Query::OptionalTime(int col) const {
  if (IsNull(col)) return std::nullopt;
  return Time(col);
}

// ---- SqliteDb ---------------------------------------------------------------

Result<std::unique_ptr<SqliteDb>> SqliteDb::Open(const std::string& path) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string message = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);  // a handle is returned even on failure (unless out of memory)
    return Err(ErrorCode::kIo, "store: open " + path + ": " + message);
  }
  sqlite3_extended_result_codes(db, 1);
  return std::unique_ptr<SqliteDb>(new SqliteDb(db, path));
}

SqliteDb::~SqliteDb() {
  Status closed = Close();
  assert(closed.ok() && "sqlite3_close failed: a statement outlived the store");
  (void)closed;
}

Error SqliteDb::MakeError(const char* what, int rc) const {
  const char* message = db_ != nullptr ? sqlite3_errmsg(db_) : nullptr;
  return StoreError(what, message != nullptr ? message : sqlite3_errstr(rc), rc);
}

Status SqliteDb::Exec(const char* what, const char* sql) {
  if (group_commit()) {
    if (Status s = JoinGroup(what); !s) return s;
  }
  char* message = nullptr;
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &message);
  if (rc == SQLITE_OK) return {};
  Error error = StoreError(what, message != nullptr ? message : sqlite3_errstr(rc), rc);
  sqlite3_free(message);
  return error;
}

Status SqliteDb::QueryOne(const char* what, const char* sql,
                          const std::function<void(sqlite3_stmt*)>& read) {
  // One-off statements (pragmas) are not worth caching.
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql, -1, &stmt, nullptr);
  if (rc != SQLITE_OK) return MakeError(what, rc);
  rc = sqlite3_step(stmt);
  if (rc == SQLITE_ROW) {
    read(stmt);
    rc = SQLITE_DONE;
  }
  Status status;
  if (rc != SQLITE_DONE) status = MakeError(what, rc);
  sqlite3_finalize(stmt);
  return status;
}

Result<std::int64_t> SqliteDb::QueryInt(const char* what, const char* sql) {
  std::int64_t value = 0;
  Status status =
      QueryOne(what, sql, [&](sqlite3_stmt* stmt) { value = sqlite3_column_int64(stmt, 0); });
  if (!status) return status.error();
  return value;
}

Result<std::string> SqliteDb::QueryText(const char* what, const char* sql) {
  std::string value;
  Status status = QueryOne(what, sql, [&](sqlite3_stmt* stmt) {
    const unsigned char* text = sqlite3_column_text(stmt, 0);
    if (text != nullptr) value = reinterpret_cast<const char*>(text);
  });
  if (!status) return status.error();
  return value;
}

Result<sqlite3_stmt*> SqliteDb::Cached(const char* what, const std::string& sql) {
  auto it = statements_.find(sql);
  if (it == statements_.end()) {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size()) + 1,
                                SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
    if (rc != SQLITE_OK) return MakeError(what, rc);
    it = statements_.emplace(sql, stmt).first;
  }
  // One statement, one Query at a time: nesting a query inside a loop over
  // the same SQL would reset the outer one.
  assert(!sqlite3_stmt_busy(it->second));
  return it->second;
}

Result<Query> SqliteDb::Prepare(const char* what, const std::string& sql) {
  auto stmt = Cached(what, sql);
  if (!stmt) return stmt.error();
  if (group_commit() && !sqlite3_stmt_readonly(*stmt)) {
    if (Status s = JoinGroup(what); !s) return s.error();
  }
  return Query(*stmt, what);
}

Status SqliteDb::RunControl(const char* what, const char* sql) {
  auto stmt = Cached(what, sql);
  if (!stmt) return stmt.error();
  return Query(*stmt, what).Run();
}

std::vector<std::string> SqliteDb::PreparedSql() const {
  std::vector<std::string> sql;
  sql.reserve(statements_.size());
  for (const auto& [text, stmt] : statements_) sql.push_back(text);
  return sql;
}

int SqliteDb::Changes() const { return sqlite3_changes(db_); }

std::int64_t SqliteDb::LastInsertId() const { return sqlite3_last_insert_rowid(db_); }

void SqliteDb::FinalizeAll() {
  for (auto& [text, stmt] : statements_) sqlite3_finalize(stmt);
  statements_.clear();
}

Status SqliteDb::Close() {
  if (db_ == nullptr) return {};
  FinalizeAll();
  int rc = sqlite3_close(db_);
  if (rc != SQLITE_OK) return MakeError("close", rc);  // db_ stays open; a bug to fix
  db_ = nullptr;
  return {};
}

// ---- group commit -------------------------------------------------------------

Status SqliteDb::Checkpoint() {
  int log = 0;
  int copied = 0;
  int rc = sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, &log, &copied);
  if (rc != SQLITE_OK) return MakeError("checkpoint", rc);
  if (copied == log) wal_frames_ = 0;  // the next write starts the WAL over
  return {};
}

void SqliteDb::EnableGroupCommit(std::function<void()> on_open,
                                 std::function<void(const Error&)> on_lost) {
  assert(on_open);
  on_group_open_ = std::move(on_open);
  on_group_lost_ = std::move(on_lost);
  // Told after each commit how many frames the WAL holds; doing nothing
  // else replaces SQLite's automatic checkpoint: the owner checkpoints.
  sqlite3_wal_hook(
      db_,
      [](void* self, sqlite3*, const char*, int frames) noexcept {
        static_cast<SqliteDb*>(self)->wal_frames_ = frames;
        return SQLITE_OK;
      },
      this);
}

int SqliteDb::LostGroupWrites() const {
  // Back in autocommit mode while a group was open: SQLite rolled it back
  // after an error (SQLITE_FULL, SQLITE_IOERR, ...).
  return group_open_ && sqlite3_get_autocommit(db_) ? group_writes_ : 0;
}

void SqliteDb::CheckGroup() {
  const int lost = LostGroupWrites();
  if (lost == 0) return;
  group_open_ = false;
  GroupLost(StoreError("write", "an error rolled back the open group of writes (" +
                                    std::to_string(lost) + " writes)"));
}

void SqliteDb::GroupLost(const Error& why) {
  if (on_group_lost_) {
    on_group_lost_(why);
  } else {
    LogError(LogEvent("store.group_lost"), why.message + "; they are lost");
  }
}

Status SqliteDb::JoinGroup(const char* what) {
  CheckGroup();
  if (!group_open_) {
    if (Status s = RunControl(what, "BEGIN IMMEDIATE"); !s) return s;
    group_open_ = true;
    group_writes_ = 0;
    on_group_open_();
  }
  ++group_writes_;
  return {};
}

Status SqliteDb::CommitGroup(bool disable) {
  if (disable && on_group_open_) {
    on_group_open_ = nullptr;
    sqlite3_wal_autocheckpoint(db_, 1000);  // SQLite's default again
  }
  if (!group_open_) return {};
  group_open_ = false;
  if (sqlite3_get_autocommit(db_)) {
    Error lost = StoreError("commit", "an error rolled back the open group of writes (" +
                                          std::to_string(group_writes_) + " writes)");
    GroupLost(lost);
    return lost;
  }
  Status done = RunControl("commit", "COMMIT");
  if (!done && !sqlite3_get_autocommit(db_)) {
    // Still open (e.g. busy): roll back rather than leave it to the next group.
    LogIfFailed({}, RunControl("commit", "ROLLBACK"));
  }
  if (!done) {
    Error lost{done.error().code,
               done.error().message + " (a group of " + std::to_string(group_writes_) + " writes)"};
    GroupLost(lost);
    return lost;
  }
  LogDebug(LogEvent("store.commit"),
           "committed a group of " + std::to_string(group_writes_) + " writes");
  return {};
}

// ---- Transaction --------------------------------------------------------------

Result<Transaction> Transaction::Begin(SqliteDb& db, const char* what) {
  if (db.group_commit()) {
    if (Status s = db.JoinGroup(what); !s) return s.error();
    if (Status s = db.RunControl(what, "SAVEPOINT tx"); !s) return s.error();
    return Transaction(db, what, true);
  }
  if (!sqlite3_get_autocommit(db.db_)) {
    // Inside another transaction (Store::SaveKept's): a savepoint of it.
    if (Status s = db.RunControl(what, "SAVEPOINT tx"); !s) return s.error();
    return Transaction(db, what, true);
  }
  if (Status s = db.RunControl(what, "BEGIN IMMEDIATE"); !s) return s.error();
  return Transaction(db, what, false);
}

Transaction::~Transaction() {
  if (db_ == nullptr) return;
  // A failed ROLLBACK means sqlite already rolled back (e.g. after an I/O
  // error); there is nothing left to undo, but it is worth a line.
  if (savepoint_) {
    if (LogIfFailed({}, db_->RunControl(what_, "ROLLBACK TO tx"))) {
      LogIfFailed({}, db_->RunControl(what_, "RELEASE tx"));
    }
    return;
  }
  LogIfFailed({}, db_->RunControl(what_, "ROLLBACK"));
}

Status Transaction::Commit() {
  assert(db_ != nullptr);
  Status done = db_->RunControl(what_, savepoint_ ? "RELEASE tx" : "COMMIT");
  if (!done) return done;
  db_ = nullptr;
  return {};
}

}  // namespace picoflow
