#pragma once
// OutputLog: append-only files for the large chunks of task output, one per
// run, beside the database (docs/operations.md, "SD cards"). SQLite writes
// every page twice, to its WAL and again at a checkpoint; output kept in
// these files is written once. The store keeps, per chunk, its offset and
// length in its run's file (segment id = run id); the file goes with its run.
// Used only from the loop thread; plain blocking file I/O (page cache).

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "common/result.h"

namespace picoflow {

class OutputLog {
 public:
  /// Files live in `dir` (created 0700 by the first Append), named `<id>.log`.
  explicit OutputLog(std::string dir) : dir_(std::move(dir)) {}
  ~OutputLog();
  OutputLog(const OutputLog&) = delete;
  OutputLog& operator=(const OutputLog&) = delete;

  /// Notes the size of every segment file in the directory, if it exists.
  /// Returns an Error if it exists and cannot be read.
  Status Open();

  /// Appends `data` to segment `id` (its file is created on the first
  /// append) and returns the offset it starts at. Returns an Error (kIo) if
  /// the file cannot be opened or written; nothing is then recorded.
  Result<std::uint64_t> Append(std::int64_t id, std::string_view data);
  /// Reads `length` bytes at `offset` of segment `id`: fewer if the file is
  /// shorter (a power loss took its tail). Returns an Error if it cannot be read.
  Result<std::string> Read(std::int64_t id, std::uint64_t offset, std::uint64_t length);
  /// Deletes segment `id`'s file. Missing is fine; returns an Error otherwise.
  Status Remove(std::int64_t id);
  /// fdatasync of every segment appended to since the last Sync (before a
  /// commit that must be durable). Returns an Error naming the file.
  Status Sync();

  /// The size of segment `id` (0 if it has no file).
  std::uint64_t Size(std::int64_t id) const;
  /// Every segment file present, by id (what Open found, and since).
  const std::map<std::int64_t, std::uint64_t>& sizes() const { return sizes_; }
  /// The sum of every segment's size.
  std::uint64_t TotalBytes() const { return total_; }

 private:
  std::string PathOf(std::int64_t id) const;
  /// The append descriptor of segment `id`, opening it if needed.
  Result<int> Writer(std::int64_t id);

  std::string dir_;
  std::map<std::int64_t, std::uint64_t> sizes_;
  std::uint64_t total_ = 0;
  /// The one segment open for appending (a run's output comes in bursts;
  /// reopening when another run writes is cheap).
  std::optional<std::pair<std::int64_t, int>> writer_;
  std::set<std::int64_t> unsynced_;  ///< segments written since the last Sync
};

}  // namespace picoflow
