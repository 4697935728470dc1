#pragma once
// LineBuffer: turns a byte stream into '\n'-terminated lines with a maximum
// length. Owns the bytes of the current partial line only; memory is bounded
// by the maximum plus one appended chunk.

#include <cstddef>
#include <string>
#include <string_view>

namespace picoflow {

class LineBuffer {
 public:
  /// What Next() found.
  enum class Status {
    kLine,      ///< a complete line was stored in the out-parameter
    kTooLong,   ///< a line exceeded the maximum; reported once per line
    kNeedMore,  ///< no complete line buffered; Append more bytes
  };

  /// Lines longer than `max_line` bytes (without '\n') are refused; the
  /// protocol's limit is kMaxLineBytes (protocol/jsonrpc.h).
  explicit LineBuffer(std::size_t max_line);

  /// Adds received bytes. Call Next() until kNeedMore after every Append,
  /// or the buffer grows past its bound.
  void Append(std::string_view data);

  /// Yields the next line without its '\n' (and without a trailing '\r').
  /// An over-long line yields kTooLong exactly once; the rest of it, up to
  /// and including its '\n', is then discarded and later lines flow again.
  Status Next(std::string& line);

  /// Bytes of an unfinished line held (0 while discarding an over-long one).
  std::size_t buffered() const { return buffer_.size() - start_; }

  /// True while the tail of an over-long line is being dropped.
  bool discarding() const { return discarding_; }

 private:
  void DropUntilNewline(std::string_view& data);
  void Compact();

  std::string buffer_;
  std::size_t start_ = 0;    // first byte of the current line in buffer_
  std::size_t scanned_ = 0;  // bytes from start_ already known to hold no '\n'
  std::size_t max_line_;
  bool discarding_ = false;
};

}  // namespace picoflow
