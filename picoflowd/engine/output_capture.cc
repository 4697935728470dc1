#include "picoflowd/engine/output_capture.h"

#include <algorithm>

namespace picoflow {

std::string_view OutputCapture::Add(std::string_view data) {
  const std::uint64_t kept_so_far = total_ - dropped_;
  const std::uint64_t room = kept_so_far < cap_ ? cap_ - kept_so_far : 0;
  const std::size_t keep = static_cast<std::size_t>(std::min<std::uint64_t>(room, data.size()));
  total_ += data.size();
  dropped_ += data.size() - keep;
  batch_.append(data.data(), keep);
  return data.substr(0, keep);
}

std::string OutputCapture::TakeBatch() {
  std::string out;
  out.swap(batch_);
  return out;
}

}  // namespace picoflow
