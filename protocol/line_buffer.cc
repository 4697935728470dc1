#include "protocol/line_buffer.h"

#include <algorithm>

namespace picoflow {

LineBuffer::LineBuffer(std::size_t max_line) : max_line_(max_line) {}

void LineBuffer::DropUntilNewline(std::string_view& data) {
  std::size_t nl = data.find('\n');
  if (nl == std::string_view::npos) {
    data = {};
    return;
  }
  data.remove_prefix(nl + 1);
  discarding_ = false;
}

void LineBuffer::Append(std::string_view data) {
  if (discarding_) DropUntilNewline(data);
  // Lines taken one at a time leave their bytes before start_: drop them
  // first, so the buffer holds only what was not taken.
  if (start_ > 0) Compact();
  lines_ += static_cast<std::size_t>(std::count(data.begin(), data.end(), '\n'));
  buffer_.append(data);
}

// Drops consumed lines so the buffer holds only the current partial line.
void LineBuffer::Compact() {
  buffer_.erase(0, start_);
  start_ = 0;
}

LineBuffer::Status LineBuffer::Next(std::string& line) {
  std::size_t nl = buffer_.find('\n', start_ + scanned_);
  if (nl == std::string::npos) {
    scanned_ = buffer_.size() - start_;
    if (scanned_ <= max_line_) {
      Compact();
      return Status::kNeedMore;
    }
    // The line is already too long and its end is not here yet.
    buffer_.clear();
    start_ = scanned_ = 0;
    discarding_ = true;
    return Status::kTooLong;
  }
  std::size_t len = nl - start_;
  std::size_t begin = start_;
  start_ = nl + 1;
  scanned_ = 0;
  --lines_;
  if (len > max_line_) return Status::kTooLong;
  if (len > 0 && buffer_[begin + len - 1] == '\r') --len;
  line.assign(buffer_, begin, len);
  return Status::kLine;
}

}  // namespace picoflow
