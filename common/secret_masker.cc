#include "common/secret_masker.h"

#include <algorithm>

namespace picoflow {

SecretMasker::SecretMasker(const std::vector<std::string>& values) {
  for (const std::string& v : values) {
    if (v.size() < kMinMaskedSecret) continue;
    if (std::find(values_.begin(), values_.end(), v) != values_.end()) continue;
    values_.push_back(v);
    first_[static_cast<unsigned char>(v.front())] = true;
    max_len_ = std::max(max_len_, v.size());
  }
}

std::size_t SecretMasker::MatchAt(std::string_view text, std::size_t i) const {
  std::size_t best = 0;
  const std::string_view rest = text.substr(i);
  for (const std::string& v : values_) {
    if (v.size() > best && rest.starts_with(v)) best = v.size();
  }
  return best;
}

bool SecretMasker::MayStartValue(std::string_view text, std::size_t i) const {
  const std::string_view rest = text.substr(i);
  for (const std::string& v : values_) {
    if (v.size() > rest.size() && std::string_view(v).starts_with(rest)) return true;
  }
  return false;
}

std::string SecretMasker::Scan(std::string_view data, bool final) {
  std::string text = std::move(held_);
  text.append(data);
  std::string out;
  out.reserve(text.size());
  std::size_t cover_end = covered_;  // bytes before it are masked
  std::size_t i = 0;
  // Only the last max_len_ - 1 bytes may be a value cut short.
  const std::size_t tail = text.size() > max_len_ ? text.size() - max_len_ + 1 : 0;
  while (i < text.size()) {
    // A stretch no value starts in, past every match: shown as it is.
    if (i >= cover_end && !first_[static_cast<unsigned char>(text[i])]) {
      std::size_t j = i + 1;
      while (j < text.size() && !first_[static_cast<unsigned char>(text[j])]) ++j;
      out.append(text, i, j - i);
      masking_ = false;
      i = j;
      continue;
    }
    if (first_[static_cast<unsigned char>(text[i])]) {
      if (!final && i >= tail && MayStartValue(text, i)) break;  // wait for more
      cover_end = std::max(cover_end, i + MatchAt(text, i));
    }
    if (i < cover_end) {
      if (!masking_) out.append(kSecretMask);
      masking_ = true;
    } else {
      out.push_back(text[i]);
      masking_ = false;
    }
    ++i;
  }
  held_ = text.substr(i);
  covered_ = cover_end > i ? cover_end - i : 0;
  return out;
}

std::string SecretMasker::Add(std::string_view data) {
  if (values_.empty()) return std::string(data);
  return Scan(data, false);
}

std::string SecretMasker::Finish() {
  std::string out = held_.empty() ? std::string() : Scan({}, true);
  masking_ = false;
  return out;
}

std::string SecretMasker::MaskAll(std::string_view text) const {
  if (values_.empty()) return std::string(text);
  SecretMasker copy(*this);
  copy.held_.clear();
  copy.covered_ = 0;
  copy.masking_ = false;
  std::string out = copy.Scan(text, true);
  return out;
}

}  // namespace picoflow
