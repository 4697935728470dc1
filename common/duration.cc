#include "common/duration.h"

#include <cstdint>
#include <cstdio>

namespace picoflow {
namespace {

constexpr const char* kHint =
    "write seconds like 300, or a number and unit like 90s, 5m, 1h30m, 1d";

struct Unit {
  char letter;
  std::int64_t seconds;
};
// Largest first: parts must follow this order, each unit at most once.
constexpr Unit kUnits[] = {{'d', 86400}, {'h', 3600}, {'m', 60}, {'s', 1}};

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

Error Invalid(std::string_view text, const std::string& why) {
  return Err(ErrorCode::kInvalid, "invalid duration '" + std::string(text) + "': " + why);
}

Error TooLong(std::string_view text) {
  return Err(ErrorCode::kInvalid, "duration '" + std::string(text) +
                                      "' is too long (the maximum is " +
                                      FormatDuration(kMaxDuration) + ")");
}

// Reads the digits at text[i...]; false if the number exceeds kMaxDuration
// seconds (checked per digit, so no overflow whatever the length).
bool ReadNumber(std::string_view text, std::size_t& i, std::int64_t& out) {
  out = 0;
  for (; i < text.size() && IsDigit(text[i]); ++i) {
    out = out * 10 + (text[i] - '0');
    if (out > kMaxDuration.count()) return false;
  }
  return true;
}

// The index in kUnits of the unit at text[i...], advancing i; -1 if unknown.
int ReadUnit(std::string_view text, std::size_t& i) {
  for (int u = 0; u < 4; ++u) {
    if (text[i] == kUnits[u].letter) {
      ++i;
      return u;
    }
  }
  return -1;
}

// Explains a character where a unit was expected.
Error BadUnit(std::string_view text, std::size_t i) {
  if (text.substr(i, 2) == "ms" || text.substr(i, 2) == "us" || text.substr(i, 2) == "ns") {
    return Invalid(text, "sub-second units are not supported; the smallest unit is s");
  }
  if (text[i] == '.' || text[i] == ',') {
    return Invalid(text, "fractions are not supported; combine units instead (1h30m, not 1.5h)");
  }
  std::size_t end = i;
  while (end < text.size() && !IsDigit(text[end])) ++end;
  return Invalid(text,
                 "unknown unit '" + std::string(text.substr(i, end - i)) + "' (units: d, h, m, s)");
}

}  // namespace

Result<std::chrono::seconds> ParseDuration(std::string_view text) {
  if (text.empty()) return Err(ErrorCode::kInvalid, std::string("empty duration (") + kHint + ")");
  if (text[0] == '-') {
    return Err(ErrorCode::kInvalid, "duration '" + std::string(text) + "' must not be negative");
  }
  if (!IsDigit(text[0])) return Invalid(text, kHint);

  std::int64_t total = 0;
  int last_unit = -1;
  std::size_t i = 0;
  while (i < text.size()) {
    if (!IsDigit(text[i])) return Invalid(text, kHint);
    std::int64_t number = 0;
    if (!ReadNumber(text, i, number)) return TooLong(text);
    if (i == text.size()) {
      // A bare number is seconds; after a unit part it is missing its unit.
      if (last_unit >= 0) return Invalid(text, "the last number has no unit");
      total = number;
      break;
    }
    const int unit = ReadUnit(text, i);
    if (unit < 0) return BadUnit(text, i);
    if (i < text.size() && !IsDigit(text[i])) return BadUnit(text, i - 1);
    if (unit <= last_unit) {
      return Invalid(text, "units must go from largest to smallest, each once (d, h, m, s)");
    }
    last_unit = unit;
    // number <= kMaxDuration seconds, so number * 86400 stays far below 2^63.
    total += number * kUnits[unit].seconds;
    if (total > kMaxDuration.count()) return TooLong(text);
  }
  return std::chrono::seconds(total);
}

std::string FormatDuration(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0) {
    return FormatDuration(std::chrono::duration_cast<std::chrono::seconds>(d));
  }
  return std::to_string(d.count()) + "ms";
}

std::string FormatElapsed(std::chrono::milliseconds d) {
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

std::string FormatDuration(std::chrono::seconds d) {
  if (d.count() == 0) return "0s";
  std::string out = d.count() < 0 ? "-" : "";
  // Unsigned so that negating the most negative value is defined.
  std::uint64_t left = static_cast<std::uint64_t>(d.count());
  if (d.count() < 0) left = 0 - left;
  for (const Unit& unit : kUnits) {
    const auto per = static_cast<std::uint64_t>(unit.seconds);
    if (left >= per) {
      out += std::to_string(left / per);
      out += unit.letter;
      left %= per;
    }
  }
  return out;
}

}  // namespace picoflow
