#pragma once
// LineBuffer: turns a byte stream into '\n'-terminated lines with a maximum
// length. Owns the bytes appended and not yet taken: the lines waiting, and
// the current partial line. A reader that takes every line after each Append
// holds at most the maximum plus one chunk; one that takes them one at a time,
// later (the control socket serves a connection's requests in turns), bounds
// what it lets wait by lines() and buffered().

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

  /// Adds received bytes (dropping what is left of an over-long line).
  /// Lines need not be taken before the next Append: they wait, in order.
  void Append(std::string_view data);

  /// Yields the next line without its '\n' (and without a trailing '\r').
  /// An over-long line yields kTooLong exactly once; the rest of it, up to
  /// and including its '\n', is then discarded and later lines flow again.
  Status Next(std::string& line);

  /// Bytes held and not yet taken: the complete lines waiting and the
  /// unfinished one (0 while discarding an over-long one).
  std::size_t buffered() const { return buffer_.size() - start_; }

  /// Bytes in memory: buffered() and the taken lines not yet dropped (they
  /// are, at the next Append or when no complete line is left).
  std::size_t held() const { return buffer_.size(); }

  /// Complete lines waiting ('\n' received, Next() not yet called for them).
  std::size_t lines() const { return lines_; }

  /// True while the tail of an over-long line is being dropped.
  bool discarding() const { return discarding_; }

 private:
  void DropUntilNewline(std::string_view& data);
  void Compact();

  std::string buffer_;
  std::size_t start_ = 0;    // first byte of the current line in buffer_
  std::size_t scanned_ = 0;  // bytes from start_ already known to hold no '\n'
  std::size_t lines_ = 0;    // '\n' from start_ on
  std::size_t max_line_;
  bool discarding_ = false;
};

}  // namespace picoflow
