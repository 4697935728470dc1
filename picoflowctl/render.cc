#include "picoflowctl/render.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>

namespace picoflow::ctl {

bool UseColour(std::FILE* stream) {
  const char* no_colour = std::getenv("NO_COLOR");
  return isatty(fileno(stream)) && (no_colour == nullptr || *no_colour == '\0');
}

namespace {

// Display width: bytes outside ANSI escape sequences (UTF-8 continuation bytes
// do not count, so names with accents line up too).
std::size_t VisibleWidth(const std::string& s) {
  std::size_t width = 0;
  bool escape = false;
  for (unsigned char c : s) {
    if (escape) {
      if (c == 'm') escape = false;
    } else if (c == 0x1b) {
      escape = true;
    } else if ((c & 0xC0) != 0x80) {
      ++width;
    }
  }
  return width;
}

}  // namespace

void Table::Print(std::FILE* out) const {
  std::vector<std::size_t> widths;
  for (const auto& row : rows_) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (std::size_t c = 0; c < row.size(); ++c) {
      widths[c] = std::max(widths[c], VisibleWidth(row[c]));
    }
  }
  for (const auto& row : rows_) {
    std::string line;
    for (std::size_t c = 0; c < row.size(); ++c) {
      line += row[c];
      if (c + 1 < row.size()) line.append(widths[c] - VisibleWidth(row[c]) + 2, ' ');
    }
    std::fprintf(out, "%s\n", line.c_str());
  }
}

}  // namespace picoflow::ctl
