#include "common/workflow_fields.h"

#include <algorithm>
#include <limits>

#include "common/duration.h"

namespace picoflow {
namespace {

constexpr std::size_t kMaxSuggestLength = 128;

std::size_t MaxTypoDistance(std::size_t length) {
  if (length <= 4) return 1;
  return length <= 8 ? 2 : 3;
}

std::string Quote(std::string_view key) {
  // Appended piecewise: `"'" + std::string(key)` trips g++ 12's -Wrestrict at -O3.
  std::string out;
  out.reserve(key.size() + 2);
  out += '\'';
  out += key;
  out += '\'';
  return out;
}

// Parses an optional '-' and decimal digits. Sets `overflow` instead of
// wrapping when the magnitude does not fit in int64.
bool ParseDecimal(std::string_view text, std::int64_t& out, bool& overflow) {
  overflow = false;
  const bool negative = !text.empty() && text[0] == '-';
  if (negative) text.remove_prefix(1);
  if (text.empty()) return false;
  std::int64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    const int digit = c - '0';
    if (value > (std::numeric_limits<std::int64_t>::max() - digit) / 10) {
      overflow = true;
      continue;  // keep checking that the rest are digits
    }
    value = value * 10 + digit;
  }
  out = negative ? -value : value;
  return true;
}

bool IsYaml11Bool(std::string_view text) {
  std::string lower(text);
  for (char& c : lower) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return lower == "yes" || lower == "no" || lower == "on" || lower == "off" || lower == "y" ||
         lower == "n";
}

}  // namespace

std::string_view ClosestMatch(std::string_view wanted,
                              std::span<const std::string_view> candidates) {
  if (wanted.empty() || wanted.size() > kMaxSuggestLength) return {};
  const std::size_t limit = MaxTypoDistance(wanted.size());
  std::string_view best;
  std::size_t best_distance = limit + 1;
  for (std::string_view c : candidates) {
    const std::size_t gap =
        c.size() > wanted.size() ? c.size() - wanted.size() : wanted.size() - c.size();
    if (gap >= best_distance || c.size() > kMaxSuggestLength) continue;
    const std::size_t d = EditDistance(wanted, c);
    if (d < best_distance) {
      best = c;
      best_distance = d;
    }
  }
  return best;
}

std::size_t EditDistance(std::string_view a, std::string_view b) {
  // Three rolling rows: i-2, i-1, i (the transposition looks two rows back).
  std::vector<std::size_t> prev2(b.size() + 1), prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        cur[j] = std::min(cur[j], prev2[j - 2] + 1);
      }
    }
    std::swap(prev2, prev);
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string DidYouMean(std::string_view match) {
  if (match.empty()) return "";
  return " (did you mean " + Quote(match) + "?)";
}

std::string JoinOr(std::span<const std::string_view> words) {
  std::string out;
  for (std::size_t i = 0; i < words.size(); ++i) {
    if (i > 0) out += i + 1 == words.size() ? " or " : ", ";
    out += words[i];
  }
  return out;
}

std::string CountOf(std::int64_t n, std::string_view noun) {
  std::string out = std::to_string(n);
  out += ' ';
  out += noun;
  if (n != 1) out += 's';
  return out;
}

void FieldReader::Report(SourcePos pos, std::string message) {
  if (diagnostics_.size() >= kMaxDiagnostics) {
    ++dropped_;
    return;
  }
  diagnostics_.push_back({label_, pos, std::move(message)});
}

void FieldReader::Warn(SourcePos pos, std::string message) {
  if (warnings_.size() >= kMaxDiagnostics) {
    ++dropped_warnings_;
    return;
  }
  warnings_.push_back({label_, pos, std::move(message), Severity::kWarning});
}

namespace {

// Sorts by position and appends a line counting the dropped ones.
Diagnostics InFileOrder(Diagnostics list, std::size_t& dropped, const std::string& label,
                        std::string_view what, Severity severity) {
  std::stable_sort(list.begin(), list.end(), [](const Diagnostic& a, const Diagnostic& b) {
    return a.pos.line != b.pos.line ? a.pos.line < b.pos.line : a.pos.col < b.pos.col;
  });
  if (dropped > 0) {
    list.push_back(
        {label,
         {},
         "... and " + std::to_string(dropped) + " more " + std::string(what) + " not shown",
         severity});
  }
  dropped = 0;
  return list;
}

}  // namespace

Diagnostics FieldReader::Take() {
  return InFileOrder(std::move(diagnostics_), dropped_, label_, "problems", Severity::kError);
}

Diagnostics FieldReader::TakeWarnings() {
  return InFileOrder(std::move(warnings_), dropped_warnings_, label_, "warnings",
                     Severity::kWarning);
}

void FieldReader::ReportType(const YamlNode& v, Where w, std::string_view expected,
                             std::string_view hint) {
  Report(v.pos, w.prefix + Quote(w.key) + " must be " + std::string(expected) + ", got " +
                    DescribeYamlNode(v) + std::string(hint));
}

std::optional<std::int64_t> FieldReader::Int(const YamlNode& v, Where w, std::int64_t lo,
                                             std::int64_t hi) {
  if (v.IsNull()) return std::nullopt;
  const std::string expected =
      "an integer from " + std::to_string(lo) + " to " + std::to_string(hi);
  std::int64_t value = 0;
  bool overflow = false;
  const bool numeric = v.IsScalar() && ParseDecimal(v.text, value, overflow);
  if (numeric && !v.plain) {
    ReportType(v, w, expected, " (write it without quotes)");
    return std::nullopt;
  }
  if (!numeric || overflow || value < lo || value > hi) {
    ReportType(v, w, expected);
    return std::nullopt;
  }
  return value;
}

std::optional<bool> FieldReader::Bool(const YamlNode& v, Where w) {
  if (v.IsNull()) return std::nullopt;
  if (v.IsScalar() && v.plain) {
    if (v.text == "true" || v.text == "True" || v.text == "TRUE") return true;
    if (v.text == "false" || v.text == "False" || v.text == "FALSE") return false;
  }
  std::string_view hint;
  if (v.IsScalar() && v.plain && IsYaml11Bool(v.text))
    hint = " (yes/no/on/off are not booleans here)";
  if (v.IsScalar() && !v.plain) hint = " (write it without quotes)";
  ReportType(v, w, "true or false", hint);
  return std::nullopt;
}

std::optional<std::string> FieldReader::Text(const YamlNode& v, Where w) {
  if (v.IsNull()) return std::nullopt;
  if (!v.IsScalar()) {
    ReportType(v, w, "a string");
    return std::nullopt;
  }
  return v.text;
}

std::optional<std::chrono::seconds> FieldReader::Duration(const YamlNode& v, Where w,
                                                          std::chrono::seconds min) {
  if (v.IsNull()) return std::nullopt;
  if (!v.IsScalar()) {
    ReportType(v, w, "a duration (seconds, or like 90s, 5m, 1h30m)");
    return std::nullopt;
  }
  Result<std::chrono::seconds> d = ParseDuration(v.text);
  if (!d.ok()) {
    Report(v.pos, w.prefix + Quote(w.key) + ": " + d.error().message);
    return std::nullopt;
  }
  if (*d < min) {
    Report(v.pos, w.prefix + Quote(w.key) + " must be at least " + FormatDuration(min) + ", got " +
                      FormatDuration(*d));
    return std::nullopt;
  }
  return *d;
}

bool FieldReader::TextList(const YamlNode& v, Where w, bool allow_single,
                           std::vector<std::string>& out, std::vector<SourcePos>* positions) {
  if (v.IsNull()) return true;
  if (v.IsScalar() && allow_single) {
    out.push_back(v.text);
    if (positions) positions->push_back(v.pos);
    return true;
  }
  if (!v.IsSequence()) {
    ReportType(v, w, allow_single ? "a string or a list of strings" : "a list of strings");
    return false;
  }
  out.reserve(out.size() + v.children.size());
  for (const YamlNode& item : v.children) {
    if (!item.IsScalar()) {
      Report(item.pos, w.prefix + "items of " + Quote(w.key) + " must be strings, got " +
                           DescribeYamlNode(item));
      continue;
    }
    out.push_back(item.text);
    if (positions) positions->push_back(item.pos);
  }
  return true;
}

bool FieldReader::TextMap(const YamlNode& v, Where w,
                          std::vector<std::pair<std::string, std::string>>& out,
                          std::vector<SourcePos>* key_positions) {
  if (v.IsNull()) return true;
  if (!v.IsMap()) {
    ReportType(v, w, "a map of names to strings");
    return false;
  }
  for (std::size_t i = 0; i < v.entry_count(); ++i) {
    const YamlNode& value = v.value(i);
    if (!value.IsScalar() && !value.IsNull()) {
      Report(value.pos, w.prefix + Quote(w.key) + ": the value of " + Quote(v.key(i).text) +
                            " must be a string, got " + DescribeYamlNode(value));
      continue;
    }
    out.emplace_back(v.key(i).text, value.text);
    if (key_positions) key_positions->push_back(v.key(i).pos);
  }
  return true;
}

bool FieldReader::Require(const YamlNode* v, Where w, SourcePos pos) {
  if (!v) {
    Report(pos, w.prefix + "missing required key " + Quote(w.key));
    return false;
  }
  if (v->IsNull()) {
    Report(v->pos, w.prefix + Quote(w.key) + " has no value");
    return false;
  }
  return true;
}

void FieldReader::CheckKeys(const YamlNode& map, std::span<const std::string_view> known,
                            const std::string& prefix, std::string_view noun) {
  CheckKeys(map, known, prefix, noun, [](std::string_view) { return std::string(); });
}

}  // namespace picoflow
