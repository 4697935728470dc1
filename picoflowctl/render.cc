#include "picoflowctl/render.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>

namespace picoflow::ctl {

std::string FormatDuration(std::chrono::milliseconds d) {
  const long long ms = d.count();
  if (ms < 0) return "-";
  char buf[32];
  if (ms < 1000) {
    std::snprintf(buf, sizeof buf, "%lldms", ms);
  } else if (ms < 60'000) {
    std::snprintf(buf, sizeof buf, "%.1fs", static_cast<double>(ms) / 1000.0);
  } else if (ms < 3'600'000) {
    std::snprintf(buf, sizeof buf, "%lldm%02llds", ms / 60'000, ms / 1000 % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", ms / 3'600'000, ms / 60'000 % 60);
  }
  return buf;
}

bool UseColour(std::FILE* stream) {
  const char* no_colour = std::getenv("NO_COLOR");
  return isatty(fileno(stream)) && (no_colour == nullptr || *no_colour == '\0');
}

std::string ColourStatus(const std::string& text, bool colour) {
  if (!colour) return text;
  const char* code = nullptr;
  if (text == "succeeded" || text == "ok" || text == "valid") code = "32";
  else if (text == "failed" || text == "timeout" || text == "interrupted" || text == "invalid") code = "31";
  else if (text == "running" || text == "cancelled" || text == "retrying") code = "33";
  else if (text == "skipped" || text == "pending") code = "2";
  if (code == nullptr) return text;
  return std::string("\x1b[") + code + "m" + text + "\x1b[0m";
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
