#pragma once
// SqliteDb: sole owner of one sqlite3 connection and of its prepared
// statements, which are prepared once per SQL text and reused. Query borrows a
// cached statement for one use; Transaction scopes BEGIN IMMEDIATE..COMMIT.
// With group commit on, every write joins one open transaction (the group)
// until CommitGroup(), and a Transaction becomes a savepoint inside it.
// Every failure is an Error{kIo, "store: <what>: <sqlite message>"}; nothing
// throws. Single-threaded (the connection is opened SQLITE_OPEN_NOMUTEX).

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/result.h"

struct sqlite3;
struct sqlite3_stmt;

namespace picoflow {

using TimePoint = std::chrono::system_clock::time_point;

/// Milliseconds since the Unix epoch, the store's representation of a time.
std::int64_t ToMillis(TimePoint t);
/// The inverse of ToMillis.
TimePoint FromMillis(std::int64_t ms);

/// One use of a cached prepared statement: bind, step, read columns. The
/// statement is reset and its bindings cleared when the Query is destroyed, so
/// keep a Query's scope short (and closed before a COMMIT).
class Query {
 public:
  Query(sqlite3_stmt* stmt, const char* what) : stmt_(stmt), what_(what) {}
  ~Query();
  Query(Query&& other) noexcept;
  Query& operator=(Query&&) = delete;
  Query(const Query&) = delete;
  Query& operator=(const Query&) = delete;

  // Binders take 1-based parameter indexes. Text and blobs are bound without
  // a copy: the bytes must stay alive until the last Step(). A bind failure is
  // reported by the next Step().
  Query& Bind(int index, std::int64_t value);
  Query& Bind(int index, int value) { return Bind(index, static_cast<std::int64_t>(value)); }
  Query& Bind(int index, std::string_view text);
  Query& Bind(int index, const char* text) { return Bind(index, std::string_view(text)); }
  Query& Bind(int index, std::string&& text) = delete;  // would dangle
  Query& Bind(int index, TimePoint t) { return Bind(index, ToMillis(t)); }
  Query& BindBlob(int index, std::string_view bytes);
  Query& BindNull(int index);
  /// Binds the value, or NULL when empty.
  template <class T>
  Query& Bind(int index, const std::optional<T>& value) {
    return value ? Bind(index, *value) : BindNull(index);
  }

  /// Runs to the next row: true with a row to read, false when done. Returns
  /// an Error for a bind failure, a constraint violation, SQLITE_BUSY, I/O.
  Result<bool> Step();
  /// Steps a statement that returns no rows (or ignores them) to completion.
  Status Run();

  bool IsNull(int col) const;
  std::int64_t Int64(int col) const;
  int Int(int col) const { return static_cast<int>(Int64(col)); }
  std::string Text(int col) const;  ///< TEXT or BLOB bytes; "" for NULL
  TimePoint Time(int col) const { return FromMillis(Int64(col)); }
  std::optional<std::int64_t> OptionalInt64(int col) const;
  std::optional<int> OptionalInt(int col) const;
  std::optional<TimePoint> OptionalTime(int col) const;

 private:
  Error StepError(int rc) const;

  sqlite3_stmt* stmt_;
  const char* what_;    ///< for error messages: "create run"
  int bind_error_ = 0;  ///< first failed bind's result code, 0 if none
};

/// An open connection plus its statement cache.
class SqliteDb {
 public:
  /// Opens (creating if missing) the database file at `path`, read-write,
  /// single-threaded, with extended result codes. Returns an Error if the file
  /// cannot be opened; "not a database" is only found by the first statement.
  static Result<std::unique_ptr<SqliteDb>> Open(const std::string& path);
  ~SqliteDb();
  SqliteDb(const SqliteDb&) = delete;
  SqliteDb& operator=(const SqliteDb&) = delete;

  const std::string& path() const { return path_; }

  /// Runs one or more statements that take no parameters (pragmas, DDL).
  Status Exec(const char* what, const char* sql);
  /// Runs a statement that returns one integer (e.g. `PRAGMA user_version`).
  Result<std::int64_t> QueryInt(const char* what, const char* sql);
  /// Runs a statement that returns one text value (e.g. `PRAGMA journal_mode=WAL`).
  Result<std::string> QueryText(const char* what, const char* sql);

  /// A Query over the cached statement for `sql`, preparing it on first use.
  /// `what` names the operation in error messages and must be a literal.
  /// Returns an Error if the SQL does not prepare.
  Result<Query> Prepare(const char* what, const std::string& sql);

  /// The SQL of every statement prepared so far (tests check their plans).
  std::vector<std::string> PreparedSql() const;

  /// Rows changed by the last INSERT/UPDATE/DELETE.
  int Changes() const;
  /// Rowid of the last successful INSERT.
  std::int64_t LastInsertId() const;

  /// Finalizes every statement and closes the connection. Returns an Error if
  /// sqlite3_close does not return SQLITE_OK. Idempotent.
  Status Close();

  /// "store: <what>: <sqlite message for rc>", using the connection's message.
  Error MakeError(const char* what, int rc) const;

  // ---- group commit ----

  /// From now on every write (a statement that is not read-only, and Exec)
  /// joins the open group, opening one (BEGIN IMMEDIATE) if there is none;
  /// `on_open` is called each time a group opens, `on_lost` each time one
  /// is rolled back instead of committed (a failed COMMIT, or SQLite's own
  /// rollback after an error: I/O, disk full), with why; without `on_lost`
  /// the loss is logged. SQLite's automatic checkpoints stop: the caller
  /// checkpoints (wal_frames(), Checkpoint()).
  void EnableGroupCommit(std::function<void()> on_open,
                         std::function<void(const Error&)> on_lost = {});
  /// Commits the open group (nothing if none is open) and, with `disable`,
  /// ends group commit: writes commit one by one again. Returns an Error if
  /// COMMIT fails, or if SQLite rolled the group back after an earlier error:
  /// its writes are then lost (on_lost was told). kDiskFull when the disk
  /// was full. Disabling turns SQLite's automatic checkpoints back on.
  Status CommitGroup(bool disable = false);
  /// After a failed write: if SQLite rolled the open group back, tells
  /// on_lost now (rather than at the next write or commit).
  void CheckGroup();
  bool group_commit() const { return static_cast<bool>(on_group_open_); }

  /// Frames in the WAL after the last commit (0 after a full checkpoint).
  int wal_frames() const { return wal_frames_; }
  /// PRAGMA wal_checkpoint(PASSIVE) through the C API. Returns an Error on
  /// an I/O failure.
  Status Checkpoint();
  /// True while a group holds writes that are not committed yet.
  bool group_open() const { return group_open_; }

 private:
  SqliteDb(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  void FinalizeAll();
  /// The cached statement for `sql`, prepared on first use.
  Result<sqlite3_stmt*> Cached(const char* what, const std::string& sql);
  /// Runs a transaction-control statement (BEGIN IMMEDIATE, COMMIT,
  /// SAVEPOINT...) from the cache, outside group commit's bookkeeping.
  Status RunControl(const char* what, const char* sql);
  /// Group commit: makes sure a group is open for one more write.
  Status JoinGroup(const char* what);
  /// The group's writes, if SQLite rolled it back on its own; 0 if not.
  int LostGroupWrites() const;
  void GroupLost(const Error& why);
  /// Prepares, steps once and finalizes `sql`, calling `read` if a row came.
  Status QueryOne(const char* what, const char* sql,
                  const std::function<void(sqlite3_stmt*)>& read);

  sqlite3* db_;
  std::string path_;
  std::unordered_map<std::string, sqlite3_stmt*> statements_;
  std::function<void()> on_group_open_;  ///< set while group commit is on
  std::function<void(const Error&)> on_group_lost_;
  bool group_open_ = false;
  int group_writes_ = 0;  ///< writes in the open group, for messages
  int wal_frames_ = 0;    ///< from the WAL hook

  friend class Transaction;
};

/// BEGIN IMMEDIATE on creation, ROLLBACK on destruction unless committed.
/// Under group commit, or inside another transaction: SAVEPOINT, ROLLBACK TO,
/// RELEASE inside it, so a failed operation undoes only its own writes.
class Transaction {
 public:
  /// Begins a write transaction. Returns an Error if BEGIN fails (busy, I/O).
  static Result<Transaction> Begin(SqliteDb& db, const char* what);
  ~Transaction();
  Transaction(Transaction&& other) noexcept
      : db_(other.db_), what_(other.what_), savepoint_(other.savepoint_) {
    other.db_ = nullptr;
  }
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  /// Commits. Returns an Error if COMMIT fails; the destructor then rolls back.
  Status Commit();

 private:
  Transaction(SqliteDb& db, const char* what, bool savepoint)
      : db_(&db), what_(what), savepoint_(savepoint) {}

  SqliteDb* db_;  ///< null once committed or moved from
  const char* what_;
  bool savepoint_;  ///< a savepoint in the open group, not a transaction of its own
};

}  // namespace picoflow
