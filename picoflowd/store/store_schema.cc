#include "picoflowd/store/store_schema.h"

#include <string>

#include "picoflowd/store/sqlite_db.h"

namespace picoflow {
namespace {

// Times are integer milliseconds since the epoch. Statuses are short texts so
// the file reads well in the sqlite3 shell. CHECKs pin the values the store
// owns; run and task statuses are the engine's (run.h) and may grow.
// Run history (runs, run_tasks, attempts, output) is deleted run by run with
// ON DELETE CASCADE, every foreign key has an index on its child columns so a
// cascade never scans, and every read goes through an index.
constexpr const char* kInitialSchema = R"sql(
PRAGMA application_id = 1885760631;  -- 'pflw': marks the file as picoflow's

-- One row per distinct source of a workflow that is current or that a run
-- used: a run can resume after its workflow was replaced or removed.
CREATE TABLE workflow_versions (
  id          INTEGER PRIMARY KEY,
  workflow    TEXT NOT NULL,
  hash        INTEGER NOT NULL,  -- FNV-1a 64 of source, to find duplicates
  source      TEXT NOT NULL,     -- the YAML as submitted or read from its file
  created_at  INTEGER NOT NULL
);
CREATE INDEX workflow_versions_by_hash ON workflow_versions (workflow, hash);

-- The workflows the daemon knows now.
CREATE TABLE workflows (
  name          TEXT PRIMARY KEY NOT NULL,
  version_id    INTEGER NOT NULL REFERENCES workflow_versions (id),
  origin        TEXT NOT NULL,   -- 'submitted' or the file it was loaded from
  paused        INTEGER NOT NULL DEFAULT 0 CHECK (paused IN (0, 1)),
  submitted_at  INTEGER NOT NULL,
  updated_at    INTEGER NOT NULL,
  last_fire_at  INTEGER           -- the last cron fire handled, for catch-up
);
CREATE INDEX workflows_by_version ON workflows (version_id);

-- Runs keep their workflow's name, not a reference: history outlives removal.
CREATE TABLE runs (
  id            INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused
  workflow      TEXT NOT NULL,
  version_id    INTEGER NOT NULL REFERENCES workflow_versions (id),
  status        TEXT NOT NULL,   -- RunStatusName() of the engine's state
  triggered_by  TEXT NOT NULL CHECK (triggered_by IN ('manual', 'rpc', 'cron', 'catchup')),
  scheduled_at  INTEGER,
  created_at    INTEGER NOT NULL,
  started_at    INTEGER,
  ended_at      INTEGER,
  error         TEXT NOT NULL DEFAULT '',
  reason        TEXT NOT NULL DEFAULT ''
);
CREATE INDEX runs_by_workflow ON runs (workflow, id);
CREATE INDEX runs_by_version ON runs (version_id);
CREATE INDEX runs_unfinished ON runs (id) WHERE status IN ('pending', 'running');

-- The latest state of each task of a run.
CREATE TABLE run_tasks (
  run_id      INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  task        TEXT NOT NULL,
  position    INTEGER NOT NULL,  -- declaration order
  status      TEXT NOT NULL,     -- TaskStatusName() of the engine's state
  attempts    INTEGER NOT NULL DEFAULT 0,
  started_at  INTEGER,
  ended_at    INTEGER,
  exit_code   INTEGER,
  PRIMARY KEY (run_id, task)
) WITHOUT ROWID;

-- Every attempt of every task, with what crash recovery needs to find its
-- process group again (boot_id + pgid + proc_start_time).
CREATE TABLE attempts (
  id               INTEGER PRIMARY KEY AUTOINCREMENT,
  run_id           INTEGER NOT NULL,
  task             TEXT NOT NULL,
  number           INTEGER NOT NULL CHECK (number >= 1),
  status           TEXT NOT NULL CHECK (status IN
                     ('running', 'succeeded', 'failed', 'timeout', 'cancelled', 'interrupted')),
  started_at       INTEGER NOT NULL,
  ended_at         INTEGER,
  exit_code        INTEGER,
  signal           INTEGER,
  error            TEXT NOT NULL DEFAULT '',
  pid              INTEGER,
  pgid             INTEGER,
  proc_start_time  INTEGER,
  boot_id          TEXT,
  stdout_bytes     INTEGER NOT NULL DEFAULT 0,  -- bytes the task wrote
  stderr_bytes     INTEGER NOT NULL DEFAULT 0,
  stdout_dropped   INTEGER NOT NULL DEFAULT 0,  -- of those, bytes past the cap
  stderr_dropped   INTEGER NOT NULL DEFAULT 0,
  UNIQUE (run_id, task, number),
  FOREIGN KEY (run_id, task) REFERENCES run_tasks (run_id, task) ON DELETE CASCADE
);

-- Task output in the batches the engine appends; seq orders a run's output
-- and is the cursor of `logs` and of followers.
CREATE TABLE output (
  seq         INTEGER PRIMARY KEY,
  run_id      INTEGER NOT NULL,  -- copied from the attempt, for reading a run in order
  attempt_id  INTEGER NOT NULL REFERENCES attempts (id) ON DELETE CASCADE,
  stream      INTEGER NOT NULL CHECK (stream IN (0, 1)),  -- 0 stdout, 1 stderr
  data        BLOB NOT NULL
);
CREATE INDEX output_by_run ON output (run_id, seq);
CREATE INDEX output_by_attempt ON output (attempt_id, seq);
)sql";

// Retention caps the total of stored output; this one-row table keeps that
// total current through triggers (cascaded deletes included), so the pruner
// reads it without summing the output table.
constexpr const char* kOutputTotal = R"sql(
CREATE TABLE output_total (
  id     INTEGER PRIMARY KEY CHECK (id = 1),
  bytes  INTEGER NOT NULL
);
INSERT INTO output_total (id, bytes) SELECT 1, coalesce(sum(length(data)), 0) FROM output;
CREATE TRIGGER output_total_insert AFTER INSERT ON output BEGIN
  UPDATE output_total SET bytes = bytes + length(NEW.data) WHERE id = 1;
END;
CREATE TRIGGER output_total_delete AFTER DELETE ON output BEGIN
  UPDATE output_total SET bytes = bytes - length(OLD.data) WHERE id = 1;
END;
)sql";

// Fewer pages written per state transition (docs/operations.md, "SD
// cards"): a transition that ends a task and starts the next one touched
// eight pages, among them sqlite_sequence (attempts' AUTOINCREMENT), the
// output total and two output indexes. Attempts take plain rowids (a run's
// attempts are found through their unique index); output is clustered by
// run, its rows deleted with their run, seq counting each run's chunks; the
// output total is counted at open and kept in memory.
constexpr const char* kWriteLess = R"sql(
CREATE TABLE attempts_v3 (
  id               INTEGER PRIMARY KEY,
  run_id           INTEGER NOT NULL,
  task             TEXT NOT NULL,
  number           INTEGER NOT NULL CHECK (number >= 1),
  status           TEXT NOT NULL CHECK (status IN
                     ('running', 'succeeded', 'failed', 'timeout', 'cancelled', 'interrupted')),
  started_at       INTEGER NOT NULL,
  ended_at         INTEGER,
  exit_code        INTEGER,
  signal           INTEGER,
  error            TEXT NOT NULL DEFAULT '',
  pid              INTEGER,
  pgid             INTEGER,
  proc_start_time  INTEGER,
  boot_id          TEXT,
  stdout_bytes     INTEGER NOT NULL DEFAULT 0,
  stderr_bytes     INTEGER NOT NULL DEFAULT 0,
  stdout_dropped   INTEGER NOT NULL DEFAULT 0,
  stderr_dropped   INTEGER NOT NULL DEFAULT 0,
  UNIQUE (run_id, task, number),
  FOREIGN KEY (run_id, task) REFERENCES run_tasks (run_id, task) ON DELETE CASCADE
);
INSERT INTO attempts_v3 SELECT * FROM attempts;

CREATE TABLE output_v3 (
  run_id      INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  seq         INTEGER NOT NULL,  -- increases through the run's output: the cursor
  attempt_id  INTEGER NOT NULL,
  stream      INTEGER NOT NULL CHECK (stream IN (0, 1)),  -- 0 stdout, 1 stderr
  data        BLOB NOT NULL,
  PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
INSERT INTO output_v3 SELECT run_id, seq, attempt_id, stream, data FROM output;

DROP TABLE output_total;  -- and its triggers
DROP TABLE output;        -- and its indexes
DROP TABLE attempts;
ALTER TABLE attempts_v3 RENAME TO attempts;
ALTER TABLE output_v3 RENAME TO output;
DELETE FROM sqlite_sequence WHERE name = 'attempts';
)sql";

// The directory a version's relative paths resolve against (its file's, for
// picoflowctl submit and the daemon's own files; '' when unknown). Part of a
// version's identity: the same text from two directories runs differently.
// Versions stored before keep '' and so the daemon's working directory.
constexpr const char* kVersionBaseDir = R"sql(
ALTER TABLE workflow_versions ADD COLUMN base_dir TEXT NOT NULL DEFAULT '';
)sql";

// Large chunks of output are kept in a file per run beside the database
// (OutputLog), written once instead of to the WAL and again at a
// checkpoint; their rows keep an empty data and where the bytes are.
// A chunk's size is coalesce(file_length, length(data)).
constexpr const char* kOutputFiles = R"sql(
ALTER TABLE output ADD COLUMN file_offset INTEGER;
ALTER TABLE output ADD COLUMN file_length INTEGER;
)sql";

// Why a task ended as it did (docs/rpc.md, RunDetail): the reason `status`
// and `run --wait` show. Tasks stored before keep '' and show their last
// attempt's error instead.
constexpr const char* kTaskError = R"sql(
ALTER TABLE run_tasks ADD COLUMN error TEXT NOT NULL DEFAULT '';
)sql";

// Attempts clustered by run (docs/operations.md, "SD cards"): the rowid
// table and its unique index on (run_id, task, number) were two b-trees
// written at every attempt's start, the index a sixth of a run's WAL frames.
// An attempt's rowid is now its key, run_id * 2^24 + seq (seq: its place in
// the order the run's attempts began), so a run's attempts are adjacent
// and found by a rowid range; run_id and seq are that rowid's parts
// (virtual columns, not stored). Not WITHOUT ROWID: that b-tree's interior
// pages would hold whole rows, and attempt rows are large. Output names its
// attempt by seq. The uniqueness of (run_id, task, number) is kept by
// BeginAttempt through run_tasks.attempts, which only grows; a run's
// attempts go with it through a trigger, as a foreign key would need an
// index on run_id to cascade without a scan.
constexpr const char* kAttemptsByRun = R"sql(
CREATE TABLE attempts_v7 (
  id               INTEGER PRIMARY KEY CHECK ((id & 16777215) >= 1),
  run_id           INTEGER GENERATED ALWAYS AS (id >> 24) VIRTUAL,
  seq              INTEGER GENERATED ALWAYS AS (id & 16777215) VIRTUAL,
  task             TEXT NOT NULL,
  number           INTEGER NOT NULL CHECK (number >= 1),
  -- 'starting': committed before the spawn; 'running' once its process
  -- identity is stored (Store::NoteAttemptStarted).
  status           TEXT NOT NULL CHECK (status IN ('starting', 'running', 'succeeded', 'failed',
                     'timeout', 'cancelled', 'interrupted')),
  started_at       INTEGER NOT NULL,
  ended_at         INTEGER,
  exit_code        INTEGER,
  signal           INTEGER,
  error            TEXT NOT NULL DEFAULT '',
  pid              INTEGER,
  pgid             INTEGER,
  proc_start_time  INTEGER,
  boot_id          TEXT,
  stdout_bytes     INTEGER NOT NULL DEFAULT 0,
  stderr_bytes     INTEGER NOT NULL DEFAULT 0,
  stdout_dropped   INTEGER NOT NULL DEFAULT 0,
  stderr_dropped   INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE attempt_seq_v7 (id INTEGER PRIMARY KEY, seq INTEGER NOT NULL);
INSERT INTO attempt_seq_v7
  SELECT id, row_number() OVER (PARTITION BY run_id ORDER BY id) FROM attempts;
INSERT INTO attempts_v7 (id, task, number, status, started_at, ended_at, exit_code, signal,
                         error, pid, pgid, proc_start_time, boot_id, stdout_bytes,
                         stderr_bytes, stdout_dropped, stderr_dropped)
  SELECT a.run_id * 16777216 + s.seq, a.task, a.number, a.status, a.started_at, a.ended_at,
         a.exit_code, a.signal, a.error, a.pid, a.pgid, a.proc_start_time, a.boot_id,
         a.stdout_bytes, a.stderr_bytes, a.stdout_dropped, a.stderr_dropped
  FROM attempts a JOIN attempt_seq_v7 s ON s.id = a.id;
UPDATE output
  SET attempt_id = (SELECT s.seq FROM attempt_seq_v7 s WHERE s.id = output.attempt_id);
ALTER TABLE output RENAME COLUMN attempt_id TO attempt_seq;
DROP TABLE attempt_seq_v7;
DROP TABLE attempts;
ALTER TABLE attempts_v7 RENAME TO attempts;
CREATE TRIGGER attempts_go_with_their_run AFTER DELETE ON runs BEGIN
  DELETE FROM attempts WHERE id BETWEEN OLD.id * 16777216 AND OLD.id * 16777216 + 16777215;
END;
)sql";

// The values a run was started with (docs/workflow-format.md, "Parameters"):
// a JSON object of name -> value in the workflow's declaration order; ''
// for a run without params, as every run stored before.
constexpr const char* kRunParams = R"sql(
ALTER TABLE runs ADD COLUMN params TEXT NOT NULL DEFAULT '';
)sql";

// What each succeeded task passed on to its dependents
// (docs/workflow-format.md, "Outputs"): a JSON object like runs.params.
constexpr const char* kTaskOutputs = R"sql(
ALTER TABLE run_tasks ADD COLUMN outputs TEXT NOT NULL DEFAULT '';
)sql";

// The run a retry (run.retry) was made from, and took its succeeded tasks
// of: NULL for any other run.
constexpr const char* kRetryOf = R"sql(
ALTER TABLE runs ADD COLUMN retry_of INTEGER;
)sql";

// The tasks an --only run (run.start `only`) was limited to: a JSON object
// {"tasks": [names], "with": "downstream" or "upstream" (absent: the tasks
// alone)}; '' for any other run.
constexpr const char* kRunOnly = R"sql(
ALTER TABLE runs ADD COLUMN only TEXT NOT NULL DEFAULT '';
)sql";

// Every delivery attempt of a notification (docs/notifications.md): the
// run's go with it; a test's (notify.test) have no run.
constexpr const char* kNotifications = R"sql(
CREATE TABLE notifications (
  id        INTEGER PRIMARY KEY,
  run_id    INTEGER REFERENCES runs (id) ON DELETE CASCADE,
  workflow  TEXT NOT NULL,
  target    TEXT NOT NULL,
  kind      TEXT NOT NULL,   -- webhook, ping or email
  event     TEXT NOT NULL,   -- failure, success, ..., start (a ping's), test
  attempt   INTEGER NOT NULL CHECK (attempt >= 1),
  outcome   TEXT NOT NULL CHECK (outcome IN ('sent', 'failed')),
  error     TEXT NOT NULL DEFAULT '',
  at        INTEGER NOT NULL
);
CREATE INDEX notifications_by_run ON notifications (run_id);
)sql";

// Runs started by events (docs/triggers.md) and by the fleet
// (docs/fleet.md): what started one beside its trigger word (a file, a
// topic, a payload), as a JSON object; '' for any other run.
constexpr const char* kTriggerEvents = R"sql(
ALTER TABLE runs ADD COLUMN trigger_event TEXT NOT NULL DEFAULT '';
)sql";

// ... and runs.triggered_by takes their words. SQLite cannot alter a CHECK
// constraint, and rebuilding `runs` would copy the whole history on a Pi's
// SD card. As SQLite's documentation of ALTER TABLE describes for a change
// that no stored row can contradict (this CHECK only admits more), the
// table's text in sqlite_schema is rewritten and the schema cookie bumped,
// so that every connection parses the new text.
Status AdmitEventTriggers(SqliteDb& db) {
  constexpr const char* what = "admit event triggers";
  auto cookie = db.QueryInt(what, "PRAGMA schema_version");
  if (!cookie) return cookie.error();
  if (Status s = db.Exec(what, "PRAGMA writable_schema = ON"); !s) return s;
  Status edit = db.Exec(what, R"sql(
UPDATE sqlite_schema
  SET sql = replace(sql, '''catchup'')', '''catchup'', ''file'', ''webhook'', ''mqtt'', ''fleet'')')
  WHERE type = 'table' AND name = 'runs';
)sql");
  const std::string bump = "PRAGMA schema_version = " + std::to_string(*cookie + 1);
  if (edit) edit = db.Exec(what, bump.c_str());
  if (Status s = db.Exec(what, "PRAGMA writable_schema = OFF"); !s) return s;
  if (!edit) return edit;
  auto changed = db.QueryInt(what,
                             "SELECT count(*) FROM sqlite_schema WHERE type = 'table'"
                             " AND name = 'runs' AND sql LIKE '%''fleet''%'");
  if (!changed) return changed.error();
  if (*changed != 1) {
    return Err(ErrorCode::kInternal, "migration (" + std::string(what) +
                                         "): the runs table's CHECK of triggered_by was not found");
  }
  return {};
}

constexpr std::int64_t kApplicationId = 0x70666c77;  // 'pflw'

constexpr Migration kMigrations[] = {
    {"initial schema", kInitialSchema},
    {"output total for retention", kOutputTotal},
    {"fewer pages written per transition", kWriteLess},
    {"base directory of workflow versions", kVersionBaseDir},
    {"large output chunks in files", kOutputFiles},
    {"why each task ended", kTaskError},
    {"attempts clustered by run", kAttemptsByRun},
    {"run parameters", kRunParams},
    {"task outputs", kTaskOutputs},
    {"retries of runs", kRetryOf},
    {"runs of part of a workflow", kRunOnly},
    {"notification deliveries", kNotifications},
    {"runs started by events", kTriggerEvents, AdmitEventTriggers},
};

Status RunMigration(SqliteDb& db, const Migration& migration, std::size_t version) {
  auto tx = Transaction::Begin(db, "migrate");
  if (!tx) return tx.error();
  const std::string what =
      "migration " + std::to_string(version) + " (" + migration.description + ")";
  if (Status s = db.Exec(what.c_str(), migration.sql); !s) return s;
  if (migration.then != nullptr) {
    if (Status s = migration.then(db); !s) return s;
  }
  // PRAGMA takes no bound parameters; the version is our own integer.
  const std::string set_version = "PRAGMA user_version = " + std::to_string(version);
  if (Status s = db.Exec(what.c_str(), set_version.c_str()); !s) return s;
  return tx->Commit();
}

}  // namespace

std::span<const Migration> StoreMigrations() { return kMigrations; }

Status MigrateSchema(SqliteDb& db, std::span<const Migration> migrations) {
  auto version = db.QueryInt("read schema version", "PRAGMA user_version");
  if (!version) return version.error();
  const auto known = static_cast<std::int64_t>(migrations.size());
  if (*version > known) {
    return Err(ErrorCode::kConflict,
               "database " + db.path() + " has schema version " + std::to_string(*version) +
                   ", newer than this picoflowd supports (" + std::to_string(known) +
                   "); upgrade picoflowd or restore a backup");
  }
  auto app = db.QueryInt("read application id", "PRAGMA application_id");
  if (!app) return app.error();
  if (*app != 0 && *app != kApplicationId) {
    return Err(ErrorCode::kConflict,
               "database " + db.path() + " belongs to another application (application_id " +
                   std::to_string(*app) + "); point picoflowd at another file");
  }
  if (*version == 0) {
    auto tables = db.QueryInt("inspect schema", "SELECT count(*) FROM sqlite_schema");
    if (!tables) return tables.error();
    if (*tables != 0) {
      return Err(ErrorCode::kConflict, "database " + db.path() +
                                           " has tables but no picoflow schema version;"
                                           " point picoflowd at another file");
    }
    // Only possible before the first table exists; retention later runs
    // PRAGMA incremental_vacuum to give freed pages back.
    const std::string page_size = "PRAGMA page_size = " + std::to_string(kStorePageSize);
    if (Status s = db.Exec("set page size", page_size.c_str()); !s) return s;
    Status vacuum = db.Exec("set auto_vacuum", "PRAGMA auto_vacuum = INCREMENTAL");
    if (!vacuum) return vacuum;
  }
  for (auto v = *version; v < known; ++v) {
    Status step =
        RunMigration(db, migrations[static_cast<std::size_t>(v)], static_cast<std::size_t>(v) + 1);
    if (!step) return step;
  }
  return {};
}

}  // namespace picoflow
