#pragma once
// The store's schema history: ordered migrations, each taking the database
// from user_version N-1 to N in one transaction.

#include <span>
#include <string>

#include "common/result.h"

namespace picoflow {

class SqliteDb;

/// The page size of the store: the unit SQLite writes, to the WAL on every
/// commit and again to the file at a checkpoint. A commit writes each page it
/// touched whole, and a state transition touches a handful of rows in as many
/// tables and indexes, so small pages keep the bytes written per run small
/// on an SD card (docs/operations.md, "SD cards").
inline constexpr int kStorePageSize = 512;

/// One step of the schema history. Migration N (1-based position in the
/// list) runs when the database's user_version is N-1.
struct Migration {
  const char* description;  ///< for error messages: "initial schema"
  const char* sql;          ///< one or more statements, no parameters
  /// Run after `sql`, in the same transaction, for what SQL alone cannot say.
  Status (*then)(SqliteDb& db) = nullptr;
};

/// Every migration this program knows, in order; its size is the schema
/// version this program writes.
std::span<const Migration> StoreMigrations();

/// Brings the database to version `migrations.size()`, running each missing
/// migration in its own transaction that also sets PRAGMA user_version. A
/// fresh database (version 0) gets kStorePageSize and auto_vacuum=INCREMENTAL
/// before its first table. Returns an Error if the database is newer than `migrations` ("has
/// schema version 7, newer than this picoflowd supports (2)"), is not a
/// database, or a migration fails (that migration is rolled back; the earlier
/// ones stay).
Status MigrateSchema(SqliteDb& db, std::span<const Migration> migrations);

}  // namespace picoflow
