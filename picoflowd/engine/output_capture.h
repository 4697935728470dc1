#pragma once
// OutputCapture: one attempt's stdout or stderr as it streams in — the part
// kept (up to a cap), the bytes seen and dropped, and a batch not yet written
// to the store. Past the cap the bytes are counted and dropped, never stored.

#include <cstdint>
#include <string>
#include <string_view>

namespace picoflow {

class OutputCapture {
 public:
  /// `cap`: bytes kept per stream (the daemon's output_cap, default 1 MiB: docs/operations.md).
  explicit OutputCapture(std::uint64_t cap) : cap_(cap) {}

  /// Takes a chunk; returns the part that was kept (for live followers).
  std::string_view Add(std::string_view data);

  /// True if the unwritten batch has reached `threshold` bytes.
  bool BatchFull(std::size_t threshold) const { return batch_.size() >= threshold; }
  bool has_batch() const { return !batch_.empty(); }
  /// Hands the unwritten batch to the caller (to store it) and empties it.
  std::string TakeBatch();

  std::uint64_t total() const { return total_; }      ///< bytes seen
  std::uint64_t dropped() const { return dropped_; }  ///< bytes past the cap

 private:
  std::uint64_t cap_;
  std::uint64_t total_ = 0;
  std::uint64_t dropped_ = 0;
  std::string batch_;
};

}  // namespace picoflow
