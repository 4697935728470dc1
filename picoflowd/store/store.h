#pragma once
// Store: the daemon's SQLite database of workflows, runs, task states,
// attempts and task output. Used only from the loop thread. Every state
// transition is atomic; under group commit (the daemon's way, GroupCommit)
// the writes of one loop iteration share one transaction. Every read goes
// through an index and returns a bounded amount (one run, one page), never
// all history. Statuses are stored by their names (common/run_status.h).

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "common/run_selection.h"
#include "common/run_status.h"
#include "common/workflow.h"
#include "common/workflow_triggers.h"

namespace picoflow {

class LostOutput;
class OutputLog;
class SqliteDb;
class StoreBacklog;
struct RunWrite;
struct CreateRunWrite;
struct RunStatusWrite;
struct TaskStatusWrite;
struct BeginAttemptWrite;
struct AttemptStartedWrite;
struct FinishAttemptWrite;
struct OutputWrite;

using TimePoint = std::chrono::system_clock::time_point;

/// Checkpoints (GroupCommit): one is due at a quiet moment once the WAL
/// holds kCheckpointFrames frames, and forced after a commit at
/// kCheckpointForceFrames. Each rewrites the pages changed since the last
/// one: rare checkpoints rewrite a hot page once, not once per commit.
inline constexpr int kCheckpointFrames = 4096;
inline constexpr int kCheckpointForceFrames = 16384;

/// A chunk of task output this large or larger is appended to its run's
/// file in `<database>-output/` (written once) instead of the database
/// (written to the WAL, then again by a checkpoint); smaller ones, a line or
/// a few, fill database pages better than a file's blocks.
inline constexpr std::size_t kOutputFileChunkBytes = 1024;

/// How the store syncs: NORMAL (WAL: a power loss may lose the last
/// transactions, never corrupt) or FULL (every commit reaches the disk).
enum class Synchronous { kNormal, kFull };

/// Options of Store::Open.
struct StoreOptions {
  Synchronous synchronous = Synchronous::kNormal;
  std::chrono::milliseconds busy_timeout{5000};  ///< waiting for another connection
  /// The file may not grow past this many pages (PRAGMA max_page_count; 0:
  /// no limit): how the tests fill a "disk" without filling one.
  std::int64_t max_pages = 0;
};

/// A workflow the daemon knows.
struct WorkflowRecord {
  std::string name;
  std::string source;    ///< the YAML; empty from ListWorkflows
  std::string base_dir;  ///< what its relative paths resolve against; empty from ListWorkflows
  std::string origin;    ///< "submitted" or the file it was loaded from
  std::int64_t version_id = 0;  ///< the current version (workflow_versions.id)
  bool paused = false;
  TimePoint submitted_at;  ///< first stored
  TimePoint updated_at;    ///< last change of source or origin
  std::optional<TimePoint> last_fire_at;
};

/// A run's own row.
struct RunRecord {
  std::int64_t id = 0;
  std::string workflow;
  std::int64_t version_id = 0;  ///< the source it runs: GetVersionSource(version_id)
  RunStatus status{};           ///< kPending
  RunTrigger trigger = RunTrigger::kManual;
  std::optional<TimePoint> scheduled_at;  ///< the cron time, for cron/catchup runs
  TimePoint created_at;
  std::optional<TimePoint> started_at;
  std::optional<TimePoint> ended_at;
  std::string error;                     ///< why the run failed, for humans
  std::string reason;                    ///< why it was created in its state (e.g. a skipped fire)
  ParamValues params;                    ///< the values it was started with, in declaration order
  std::optional<std::int64_t> retry_of;  ///< the run it retries (run.retry)
  std::optional<RunSelection> only;      ///< the tasks it was limited to (run.start `only`)
  TriggerEvent event;                    ///< what started it besides `trigger` (triggers, fleet)
};

/// The latest state of one task of a run; a task waiting out its retry
/// delay has attempts > 0.
struct TaskRecord {
  std::string name;
  TaskStatus status{};                  ///< kPending
  int attempts = 0;                     ///< attempts started so far
  std::optional<TimePoint> started_at;  ///< of the first attempt
  std::optional<TimePoint> ended_at;    ///< when it reached a final state
  std::optional<int> exit_code;         ///< of the last attempt
  /// Why it ended as it did, for humans ("exited with code 1", "dependency
  /// 'fetch' failed"); empty while it has not ended and when it succeeded.
  std::string error;
  TaskOutputs outputs;  ///< a succeeded task's outputs (common/task_outputs.h)
};

/// Output sizes of one attempt, per stream.
struct OutputCounts {
  std::uint64_t stdout_bytes = 0;  ///< bytes the task wrote to stdout
  std::uint64_t stderr_bytes = 0;
  std::uint64_t stdout_dropped = 0;  ///< of those, bytes past the cap (not stored)
  std::uint64_t stderr_dropped = 0;
};

/// An attempt's key in the store: its run and its place in the order the
/// run's attempts began (1-based).
struct AttemptKey {
  std::int64_t run_id = 0;
  int seq = 0;
  bool operator==(const AttemptKey&) const = default;
};

/// One attempt of one task.
struct AttemptRecord {
  std::int64_t run_id = 0;
  int seq = 0;  ///< with run_id, the attempt's key: its place in the run's start order
  std::string task;
  int number = 1;                       ///< 1-based
  std::optional<AttemptStatus> status;  ///< empty while the attempt runs
  TimePoint started_at;
  std::optional<TimePoint> ended_at;
  std::optional<int> exit_code;
  std::optional<int> signal;
  std::string error;
  std::optional<ProcessIdentity> process;  ///< set once the process started
  OutputCounts counts;
};

/// A run with its tasks (declaration order) and attempts (start order).
struct RunDetail {
  RunRecord run;
  std::vector<TaskRecord> tasks;
  std::vector<AttemptRecord> attempts;
};

/// A run left pending or running, as crash recovery needs it.
struct UnfinishedRun {
  RunRecord run;
  std::string source;                           ///< the version the run executes
  std::string base_dir;                         ///< and what its relative paths resolve against
  std::vector<TaskRecord> tasks;                ///< declaration order
  std::vector<AttemptRecord> running_attempts;  ///< attempts still marked running
  std::map<std::string, int> interruptions;     ///< per task: attempts recorded interrupted
};

/// What CreateRun records.
struct NewRun {
  std::string workflow;
  std::string source;    ///< the YAML of the version this run executes
  std::string base_dir;  ///< what its relative paths resolve against ("" if unknown)
  RunTrigger trigger = RunTrigger::kManual;
  RunStatus status{};  ///< kPending; a final status records a run that never ran
  std::optional<TimePoint> scheduled_at;
  TimePoint created_at;
  std::string reason;
  ParamValues params;                    ///< resolved (common/workflow_params.h)
  std::optional<std::int64_t> retry_of;  ///< the run it retries (run.retry)
  std::optional<RunSelection> only;      ///< the tasks it is limited to (run.start `only`)
  TriggerEvent event;                    ///< what started it besides `trigger`
  std::vector<std::string> tasks;        ///< task names in declaration order
};

/// A task's latest success in a workflow's history (Store::LatestSuccess).
struct TaskSuccess {
  std::int64_t run_id = 0;  ///< the run it succeeded in
  TaskOutputs outputs;      ///< what it passed on there
};

/// One stored chunk of task output.
struct OutputChunk {
  std::int64_t seq = 0;  ///< increases through a run's output: the cursor
  std::string task;
  int attempt = 1;  ///< the attempt's number
  OutputStream stream = OutputStream::kStdout;
  std::string data;
};

/// A page of a run's output.
struct OutputQuery {
  std::int64_t run_id = 0;
  std::optional<std::string> task;     ///< only this task's output
  std::int64_t after_seq = 0;          ///< the last seq already seen; 0 for the start
  int max_chunks = 256;                ///< at most 1000
  std::size_t max_bytes = 256 * 1024;  ///< stop once this much data was read
};

/// One delivery attempt of a notification (docs/notifications.md).
struct DeliveryRecord {
  std::int64_t id = 0;                 ///< set by the store
  std::optional<std::int64_t> run_id;  ///< none for a test
  std::string workflow;
  std::string target;  ///< the target's name
  std::string kind;    ///< webhook, ping or email
  std::string event;   ///< failure, success, ..., start, test
  int attempt = 1;
  bool sent = false;
  std::string error;  ///< why it failed
  TimePoint at;
};

/// How much of one workflow's run history is kept; 0 means no limit.
struct RunRetention {
  std::int64_t max_runs = 0;        ///< keep at most this many runs (newest)
  std::chrono::seconds max_age{0};  ///< delete runs created longer ago than this
};

/// What a prune deleted, or with dry_run would delete.
struct PruneCounts {
  std::int64_t runs = 0;          ///< runs deleted with their tasks, attempts and output
  std::int64_t output_bytes = 0;  ///< stored output bytes freed (of those runs or capped)
};

/// Whether the store saves what it is given (docs/reliability.md, "Disk
/// full"). Degraded while changes of the run history that the disk refused
/// wait in memory to be saved; the store's reads show them meanwhile.
struct StoreHealth {
  bool degraded = false;
  std::string reason;             ///< "disk full" (or the failure) while degraded
  std::string error;              ///< the last failure, as SQLite said it
  std::size_t kept_writes = 0;    ///< changes waiting in memory
  std::uint64_t lost_output = 0;  ///< output bytes not kept (past the memory budget)
  std::optional<TimePoint> since;
};

/// Owns the database connection and its prepared statements; see the top of
/// this file.
class Store {
 public:
  /// Opens the database at `path`, creating it with mode 0600 (whatever the
  /// umask) if missing, and migrates it to the current schema. Sets WAL,
  /// the synchronous level, busy_timeout and foreign_keys. Returns an Error if
  /// the file cannot be created or opened, is not a SQLite database, belongs
  /// to something else, has a schema newer than this program ("database PATH
  /// has schema version 7, newer than this picoflowd supports (1); upgrade
  /// picoflowd or restore a backup"), or WAL cannot be enabled.
  static Result<std::unique_ptr<Store>> Open(const std::string& path,
                                             const StoreOptions& options = {});
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  /// The schema version this program writes.
  static int SchemaVersion();

  /// Commits an open group, finalizes every statement and closes the
  /// database (sqlite checkpoints the WAL). Returns an Error if the commit
  /// fails or sqlite refuses to close. Idempotent; no other method may be
  /// called afterwards.
  Status Close();

  // ---- group commit (docs/architecture.md) ----

  /// From now on every write joins one open transaction, the group, until
  /// Commit(); each operation stays atomic on its own (a savepoint).
  /// `on_open` is called whenever a group opens (the first write after a
  /// commit), so that the caller commits it before the loop blocks.
  void EnableGroupCommit(std::function<void()> on_open);
  /// Commits the open group, if any. Returns an Error if it cannot be
  /// committed; its writes are then lost, and the message says how many.
  Status Commit();
  /// Commits the open group and turns group commit off: each write commits
  /// on its own again. Returns what Commit() returns.
  Status EndGroupCommit();
  /// True while writes wait for Commit().
  bool has_uncommitted() const;

  // ---- a full disk (store_backlog.cc, docs/reliability.md) ----

  /// Whether the store is degraded, and since when.
  StoreHealth Health() const;
  bool degraded() const { return health_.degraded; }
  /// Saves every change kept while the disk was full, in one transaction
  /// (after committing the open group): all or none. Returns an Error
  /// (kDiskFull while there is still no room) if they stay kept.
  Status SaveKept();

  // ---- checkpoints: SQLite's automatic ones are off ----

  /// Frames in the WAL that a checkpoint would copy into the database.
  int WalFrames() const;
  /// Copies the WAL into the database file (PASSIVE: never waits for
  /// readers), so that the next write starts the WAL over. Returns an Error
  /// on an I/O failure.
  Status Checkpoint();

  // ---- workflows ----

  /// Stores `source` (with `base_dir`, what its relative paths resolve
  /// against) as the current version of workflow `name`, adding it if new.
  /// Keeps paused and last_fire_at; updated_at changes only if the version or
  /// origin did. Returns the version id. Returns an Error on a store failure.
  Result<std::int64_t> PutWorkflow(const std::string& name, std::string_view source,
                                   const std::string& origin, TimePoint now,
                                   std::string_view base_dir = {});
  /// Forgets a workflow (its runs stay). Returns kNotFound if there is none.
  Status RemoveWorkflow(const std::string& name);
  /// The workflow with its source. Returns kNotFound if there is none.
  Result<WorkflowRecord> GetWorkflow(const std::string& name);
  /// Every workflow by name, without sources.
  Result<std::vector<WorkflowRecord>> ListWorkflows();
  /// Returns kNotFound if there is no such workflow.
  Status SetPaused(const std::string& name, bool paused);
  /// Records the last cron fire handled. Returns kNotFound if no such workflow.
  Status SetLastFire(const std::string& name, TimePoint fire);
  /// The YAML of a version. Returns kNotFound if there is none.
  Result<std::string> GetVersionSource(std::int64_t version_id);
  /// The source of a stored version and what its relative paths resolve
  /// against (what a retry of a run that ran it compiles again).
  Result<std::pair<std::string, std::string>> GetVersion(std::int64_t version_id);

  // ---- runs and tasks ----

  /// Records a new run, its version's source (deduplicated) and a kPending
  /// row per task, in one transaction. Refused (kDiskFull) while the store
  /// is degraded. A run created kRunning gets
  /// started_at = created_at, one created in a final status (a fire that did
  /// not run, with its reason) ended_at = created_at. Returns the run id
  /// (never reused). Returns an Error on duplicate task names or a store
  /// failure.
  Result<std::int64_t> CreateRun(const NewRun& run);
  // The writes of a run's history below never fail for a full disk: the
  // change is kept and saved later (Health(), SaveKept()).

  /// Moves a run to `status` at `at`: kRunning sets started_at (first time
  /// only), a final status sets ended_at. `error` replaces the stored error;
  /// for kSkipped (a run whose `when:` was not met) it is the run's reason,
  /// as a skipped fire's is, and the error is emptied.
  /// Returns kNotFound if there is no such run.
  Status SetRunStatus(std::int64_t run_id, RunStatus status, TimePoint at,
                      std::string_view error = {});
  /// Replaces the stored state of task `task.name` of a run. Returns kNotFound
  /// if the run has no such task.
  Status SetTaskStatus(std::int64_t run_id, const TaskRecord& task);
  /// The run with its tasks and attempts. Returns kNotFound if there is none.
  Result<RunDetail> GetRun(std::int64_t run_id);
  /// Up to `limit` (at most 1000) runs, newest first, with ids below
  /// `before_id` (paging: pass the last id of the previous page), of one
  /// workflow or of all.
  Result<std::vector<RunRecord>> ListRuns(const std::optional<std::string>& workflow, int limit,
                                          std::optional<std::int64_t> before_id = std::nullopt);
  /// The newest run of a workflow, or empty if it never ran.
  Result<std::optional<RunRecord>> LatestRun(const std::string& workflow);
  /// The newest run of `workflow` in which task `task` succeeded (by itself:
  /// not reused), with its outputs there, or empty if none is stored.
  /// Walks the workflow's runs newest first, one index seek each, until
  /// one has it: call it for a task that ran before (an --only run's
  /// tasks taken as done), not in a loop over history. Reads what is
  /// saved: while the store is degraded, a success kept in memory is not
  /// seen (no run starts then: CreateRun).
  Result<std::optional<TaskSuccess>> LatestSuccess(const std::string& workflow,
                                                   const std::string& task);
  /// Every run left pending or running, oldest first, with what resuming it
  /// needs. Memory is proportional to those runs only.
  Result<std::vector<UnfinishedRun>> UnfinishedRuns();

  // ---- attempts and output ----

  /// Records attempt `number` of a task as begun at `at`: `starting` (before
  /// its spawn), or `running` as `process` if that is given; in the same
  /// transaction, the task as kRunning with attempts = number (and started_at
  /// if it had none).
  /// Returns the attempt's key. Returns kNotFound if the run has no such
  /// task, kConflict if the task has begun attempt `number` or a later one.
  Result<AttemptKey> BeginAttempt(std::int64_t run_id, const std::string& task, int number,
                                  TimePoint at, const ProcessIdentity* process = nullptr);
  /// The attempt begun as `starting` runs now, as `process` if it is a
  /// process (else null). Under group commit the write waits for the next
  /// group (or a read of the run, or the end of group commit): a task's start
  /// costs no commit of its own, and until then recovery finds its processes
  /// by their mark (docs/architecture.md, "Crash recovery").
  void NoteAttemptStarted(AttemptKey attempt, const ProcessIdentity* process);
  /// Records how an attempt ended and, in the same transaction, the new
  /// state of `tasks` of the attempt's run (as SetTaskStatus): its own
  /// task, whose state only the caller knows (a retry may follow), and those
  /// its end skipped. Returns kNotFound, and changes nothing, if there is no
  /// such attempt or the run has no such task.
  Status FinishAttempt(AttemptKey attempt, const AttemptResult& result, const OutputCounts& counts,
                       TimePoint at, const std::vector<TaskRecord>& tasks = {});
  /// Crash recovery: records a running attempt as interrupted at `at`, with
  /// byte counts taken from its stored output (what was dropped is unknown).
  /// Returns kNotFound if there is no such attempt still marked running.
  Status MarkAttemptInterrupted(AttemptKey attempt, TimePoint at, std::string_view error);
  /// Appends one chunk (the engine batches) of an attempt's output. Empty data
  /// is ignored. Returns kNotFound if there is no such attempt.
  Status AppendOutput(AttemptKey attempt, OutputStream stream, std::string_view data);
  /// A page of a run's output after a cursor, in the order it was appended.
  /// An empty page means nothing newer is stored (yet).
  Result<std::vector<OutputChunk>> ReadOutput(const OutputQuery& query);

  // ---- notifications (store_notify.cc) ----
  /// Records one delivery attempt. A test's (no run) keep the latest
  /// kMaxTestDeliveries; a run's go with the run.
  Status RecordDelivery(const DeliveryRecord& delivery);
  /// The delivery attempts of `run_id` (all runs' and tests' if unset),
  /// newest first, at most `limit`.
  Result<std::vector<DeliveryRecord>> ListDeliveries(std::optional<std::int64_t> run_id, int limit);
  /// The status of the latest run of `workflow` before `run_id` that
  /// succeeded or failed, if any.
  Result<std::optional<RunStatus>> PreviousEnd(const std::string& workflow, std::int64_t run_id);
  static constexpr int kMaxTestDeliveries = 100;

  // ---- retention (store_retention.cc) ----

  /// The smallest workflow name greater than `after` that has runs stored,
  /// or empty if there is none: walks the names of history one index seek at
  /// a time. Returns an Error on a store failure.
  Result<std::optional<std::string>> NextRunWorkflow(const std::string& after);
  /// Deletes, in one transaction, up to `max_rows` of the oldest runs of
  /// `workflow` that `keep` does not keep, never a pending or running one,
  /// with their tasks, attempts and output. With dry_run deletes nothing and
  /// counts every run that would go. A result with fewer than `max_rows` runs
  /// means the workflow is done. Returns an Error on a store failure.
  Result<PruneCounts> PruneRuns(const std::string& workflow, const RunRetention& keep,
                                TimePoint now, int max_rows, bool dry_run);
  /// While the stored output exceeds `max_bytes`, deletes up to `max_rows`
  /// output chunks of the oldest finished run that has any, in one
  /// transaction (runs and attempts stay, with their byte counts). With
  /// dry_run deletes nothing and returns the excess. Returns an Error on a
  /// store failure.
  Result<PruneCounts> PruneOutput(std::uint64_t max_bytes, int max_rows, bool dry_run);
  /// Bytes of task output stored now (counted at open, then kept in memory).
  Result<std::uint64_t> OutputBytes();
  /// Gives up to `pages` free pages back to the file system
  /// (PRAGMA incremental_vacuum). Returns true if free pages remain.
  Result<bool> VacuumStep(int pages);
  /// The size of the database (page_count * page_size), WAL excluded.
  Result<std::uint64_t> DatabaseBytes();

  /// The SQL of every statement prepared so far, for tests that check plans.
  std::vector<std::string> PreparedSql() const;

 private:
  Store(std::unique_ptr<SqliteDb> db, std::unique_ptr<OutputLog> files, bool sync_full);
  Result<std::int64_t> InternVersion(const std::string& workflow, std::string_view source,
                                     std::string_view base_dir, TimePoint now);
  Status DropVersionIfUnused(std::int64_t version_id);
  Result<std::vector<TaskRecord>> ReadTasks(std::int64_t run_id);
  Result<std::vector<AttemptRecord>> ReadAttempts(std::int64_t run_id, bool running_only);

  /// Inserts a chunk's row: its bytes in `data`, or (with `file_offset`)
  /// only where they are in the run's file. Returns kNotFound if there is no
  /// such attempt.
  /// Writes the NoteAttemptStarted that wait; FlushStarted in a group of
  /// their own if none is open.
  void ApplyStarted();
  void FlushStarted();
  Status InsertOutput(AttemptKey attempt, OutputStream stream, std::string_view data,
                      std::optional<std::uint64_t> file_offset);

  // A full disk (store_kept.cc): each write of the run history is one
  // RunWrite, made by Write() or kept if the disk refuses it.
  Status Write(RunWrite write);
  /// Keeps `write`, refused by the disk with `why` (degrades the store).
  void Keep(RunWrite write, const Error& why);
  Status Apply(const RunWrite& write, LostOutput& lost);
  /// A group of writes was rolled back: its run writes are kept.
  void GroupLost(const Error& why);
  void Degrade(const Error& why);
  /// At the end: a last SaveKept(); what it cannot save is logged as lost.
  void SaveKeptOrSayLost();
  Status Apply(const CreateRunWrite& w, LostOutput& lost);
  Status Apply(const RunStatusWrite& w, LostOutput& lost);
  Status Apply(const TaskStatusWrite& w, LostOutput& lost);
  Status Apply(const BeginAttemptWrite& w, LostOutput& lost);
  Status Apply(const AttemptStartedWrite& w, LostOutput& lost);
  Status Apply(const FinishAttemptWrite& w, LostOutput& lost);
  Status Apply(const OutputWrite& w, LostOutput& lost);
  /// CreateRun's and BeginAttempt's SQL, with the id to use (saving a kept
  /// write) or a new one.
  Result<std::int64_t> InsertRun(const NewRun& run, std::optional<std::int64_t> id);
  Result<AttemptKey> InsertAttempt(std::int64_t run_id, const std::string& task, int number,
                                   TimePoint at, const ProcessIdentity* process,
                                   std::optional<int> seq);
  /// The seq of run `run_id`'s last attempt in the database (0 if none).
  Result<int> LastAttemptSeq(std::int64_t run_id);
  /// Removes the output files of runs the database does not have (pruned,
  /// or never committed before a crash).
  Status RemoveOrphanOutput();
  /// With Synchronous::kFull, fdatasync of the output files written since
  /// the last commit (logged if it fails).
  void SyncOutputFiles();

  std::unique_ptr<SqliteDb> db_;
  std::unique_ptr<OutputLog> files_;  ///< large output chunks, a file per run
  bool sync_full_ = false;            ///< files are synced before a commit
  std::uint64_t output_bytes_ = 0;    ///< OutputBytes(): counted at open, kept since
  struct Started {
    AttemptKey attempt;
    std::optional<ProcessIdentity> process;
  };
  std::vector<Started> started_;        ///< NoteAttemptStarted not yet written
  std::unique_ptr<StoreBacklog> kept_;  ///< writes of the open group, and those the disk refused
  StoreHealth health_;
  bool saving_ = false;  ///< SaveKept() runs: started attempts wait
};

}  // namespace picoflow
