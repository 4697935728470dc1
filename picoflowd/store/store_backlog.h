#pragma once
// StoreBacklog: the run-history writes the store could not save because its
// disk was full, kept in memory in the order they were made until one retry
// saves them all (docs/reliability.md, "Disk full"). While it holds any, the
// store's reads of a run show them (Overlay): clients see what happened, not
// what the disk could hold. Pure data: the SQL that saves a write is Store's.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "picoflowd/store/store.h"

namespace picoflow {

/// CreateRun, with the id it returned: saved again, the run keeps it.
struct CreateRunWrite {
  std::int64_t run_id = 0;
  NewRun run;
};
/// SetRunStatus.
struct RunStatusWrite {
  std::int64_t run_id = 0;
  RunStatus status{};
  TimePoint at;
  std::string error;
};
/// SetTaskStatus.
struct TaskStatusWrite {
  std::int64_t run_id = 0;
  TaskRecord task;
};
/// BeginAttempt, with the key it returned.
struct BeginAttemptWrite {
  AttemptKey key;
  std::string task;
  int number = 1;
  TimePoint at;
  std::optional<ProcessIdentity> process;
};
/// NoteAttemptStarted.
struct AttemptStartedWrite {
  AttemptKey key;
  std::optional<ProcessIdentity> process;
};
/// FinishAttempt.
struct FinishAttemptWrite {
  AttemptKey key;
  AttemptResult result;
  OutputCounts counts;
  TimePoint at;
  std::vector<TaskRecord> tasks;
};
/// AppendOutput: `data` kept, or (past the backlog's output budget) only
/// counted in `lost`, bytes saved later as a marker line and as dropped.
struct OutputWrite {
  AttemptKey key;
  OutputStream stream = OutputStream::kStdout;
  std::string data;
  std::uint64_t lost = 0;
};

/// One write of a run's history, as the store can make it again (a struct,
/// so that store.h can declare it).
struct RunWrite : std::variant<CreateRunWrite, RunStatusWrite, TaskStatusWrite, BeginAttemptWrite,
                               AttemptStartedWrite, FinishAttemptWrite, OutputWrite> {
  using variant::variant;
};

/// The run a write belongs to.
std::int64_t RunOf(const RunWrite& write);

/// The marker line saved in place of output the backlog could not keep.
std::string LostOutputMarker(std::uint64_t bytes);

/// Output bytes an attempt lost per stream, added to its dropped counts when
/// its end is saved (or shown).
class LostOutput {
 public:
  void Add(const OutputWrite& write);
  /// `counts` with the attempt's lost bytes added to its dropped ones.
  OutputCounts With(AttemptKey attempt, OutputCounts counts) const;

 private:
  std::map<std::pair<std::int64_t, int>, std::pair<std::uint64_t, std::uint64_t>> bytes_;
};

/// Owns the kept writes; see the top of this file.
class StoreBacklog {
 public:
  /// Output kept with its bytes, in all; past this, output is only counted.
  static constexpr std::size_t kMaxOutputBytes = 1 << 20;

  bool empty() const { return writes_.empty(); }
  std::size_t size() const { return writes_.size(); }
  /// Output bytes kept (not lost) now.
  std::size_t output_bytes() const { return output_bytes_; }
  /// Output bytes lost since the backlog began (only counted).
  std::uint64_t lost_output_bytes() const { return lost_bytes_; }
  const std::deque<RunWrite>& writes() const { return writes_; }

  /// Keeps `write` after the others. Output past kMaxOutputBytes is only
  /// counted, merged with the attempt's last lost count of that stream.
  void Push(RunWrite write);
  /// Forgets every kept write (once they are saved).
  void Clear();

  /// Notes a write made in the store's open group of writes (group commit),
  /// to keep it should the disk refuse the group.
  void Grouped(RunWrite write) { group_.push_back(std::move(write)); }
  /// The open group was committed: nothing of it needs keeping.
  void GroupSaved() { group_.clear(); }
  /// The open group was rolled back (the disk refused it): its writes are
  /// kept, before the others (they were made first). Returns how many.
  std::size_t GroupLost();

  /// The key the next attempt of run `run_id` gets if it is kept too: after
  /// `stored_seq` (the run's last attempt in the database) and after every
  /// kept attempt of the run.
  int NextSeq(std::int64_t run_id, int stored_seq) const;
  /// Applies the kept writes of `detail.run.id` to what the database holds
  /// of it, as saving them would.
  void Overlay(RunDetail& detail) const;
  /// Applies the kept status changes of `run` to it.
  void Overlay(RunRecord& run) const;
  /// A run kept whole (its CreateRun was refused by the disk, with its
  /// group), with every kept write applied; empty if there is none.
  std::optional<RunDetail> KeptRun(std::int64_t run_id) const;
  /// Every run kept whole, oldest first, with its kept writes applied.
  std::vector<RunRecord> KeptRuns() const;

 private:
  std::deque<RunWrite> writes_;
  std::vector<RunWrite> group_;  ///< written in the open group, not yet committed
  std::size_t output_bytes_ = 0;
  std::uint64_t lost_bytes_ = 0;
  /// Where each attempt's and stream's lost count is, to merge the next.
  std::map<std::pair<std::int64_t, int>, std::size_t> lost_at_;
};

}  // namespace picoflow
