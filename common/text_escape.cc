#include "common/text_escape.h"

#include <algorithm>

namespace picoflow {
namespace {

constexpr char kHex[] = "0123456789abcdef";

bool IsC0OrDel(unsigned char c) { return c < 0x20 || c == 0x7f; }

// The first byte of a UTF-8 encoded C1 control is 0xc2, the second 0x80-0x9f.
bool IsC1At(std::string_view text, std::size_t i) {
  return static_cast<unsigned char>(text[i]) == 0xc2 && i + 1 < text.size() &&
         static_cast<unsigned char>(text[i + 1]) >= 0x80 &&
         static_cast<unsigned char>(text[i + 1]) <= 0x9f;
}

}  // namespace

std::string EscapeControls(std::string_view text) {
  const bool clean = std::none_of(text.begin(), text.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return IsC0OrDel(u) || u == 0xc2;
  });
  if (clean) return std::string(text);  // the common case: one copy, no scan per byte
  std::string out;
  out.reserve(text.size() + 8);
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (IsC0OrDel(c)) {
      out += {'\\', 'x', kHex[c >> 4], kHex[c & 0xf]};
    } else if (IsC1At(text, i)) {
      const auto c1 = static_cast<unsigned char>(text[++i]);
      out += {'\\', 'u', '0', '0', kHex[c1 >> 4], kHex[c1 & 0xf]};
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

}  // namespace picoflow
