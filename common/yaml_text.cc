#include "common/yaml_text.h"

#include <algorithm>
#include <cstdio>

namespace picoflow {
namespace {

bool IsContinuation(unsigned char c) { return (c & 0xC0) == 0x80; }

// Length of the valid UTF-8 sequence starting at s[i] (a byte >= 0x80), or 0
// if it is invalid (Unicode 15, table 3-7: no overlongs, no surrogates, no
// values past U+10FFFF).
std::size_t Utf8Length(std::string_view s, std::size_t i) {
  const auto at = [&](std::size_t k) -> unsigned {
    return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : 0u;
  };
  const unsigned b0 = at(0);
  const auto in = [](unsigned b, unsigned lo, unsigned hi) { return b >= lo && b <= hi; };
  if (in(b0, 0xC2, 0xDF)) return in(at(1), 0x80, 0xBF) ? 2 : 0;
  if (in(b0, 0xE0, 0xEF)) {
    const unsigned lo = b0 == 0xE0 ? 0xA0 : 0x80;
    const unsigned hi = b0 == 0xED ? 0x9F : 0xBF;
    return in(at(1), lo, hi) && in(at(2), 0x80, 0xBF) ? 3 : 0;
  }
  if (in(b0, 0xF0, 0xF4)) {
    const unsigned lo = b0 == 0xF0 ? 0x90 : 0x80;
    const unsigned hi = b0 == 0xF4 ? 0x8F : 0xBF;
    return in(at(1), lo, hi) && in(at(2), 0x80, 0xBF) && in(at(3), 0x80, 0xBF) ? 4 : 0;
  }
  return 0;
}

std::string Hex(unsigned char c) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02X", c);
  return buf;
}

bool IsBlank(std::string_view s) {
  for (char c : s) {
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') return false;
  }
  return true;
}

std::optional<TextProblem> CheckEncodingMarks(std::string_view text) {
  if (text.empty()) return TextProblem{{}, "empty file"};
  if (text.size() >= 2 &&
      ((text[0] == '\xFE' && text[1] == '\xFF') || (text[0] == '\xFF' && text[1] == '\xFE'))) {
    return TextProblem{{1, 1}, "the file is UTF-16 or UTF-32; save it as UTF-8"};
  }
  return std::nullopt;
}

}  // namespace

std::optional<TextProblem> CheckYamlText(std::string_view text, TextPositions& positions) {
  if (auto problem = CheckEncodingMarks(text)) return problem;
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  if (IsBlank(text)) return TextProblem{{}, "empty file"};
  positions.body_ = text;
  positions.non_ascii_line_.assign(1, 0);

  // One pass over the bytes, counting lines and character columns.
  int line = 1;
  int col = 1;
  for (std::size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '\n') {
      positions.non_ascii_line_.push_back(0);
      ++line;
      col = 1;
      ++i;
      continue;
    }
    if (c == 0)
      return TextProblem{{line, col}, "NUL byte: this looks like a binary file, not YAML"};
    if ((c < 0x20 && c != '\t' && c != '\r') || c == 0x7F) {
      return TextProblem{
          {line, col},
          "control character " + Hex(c) + " is not allowed in YAML (is this a binary file?)"};
    }
    std::size_t len = 1;
    if (c >= 0x80) {
      len = Utf8Length(text, i);
      if (len == 0) {
        return TextProblem{{line, col},
                           "invalid UTF-8 (byte " + Hex(c) + "); save the file as UTF-8"};
      }
      positions.non_ascii_line_.back() = 1;
    }
    i += len;
    ++col;
  }
  return std::nullopt;
}

namespace {

// What may follow a quoted value on its line: nothing, a comment, or the
// punctuation of a flow collection or a key.
bool EndsValue(std::string_view line, std::size_t at) {
  return at == line.size() || line[at] == ',' || line[at] == ']' || line[at] == '}' ||
         line[at] == ':' || line[at] == '#' || line[at] == '\r';
}

// The byte after the closing quote of the quoted scalar opening at `open`, or
// npos if it does not close on this line.
std::size_t AfterClosingQuote(std::string_view line, std::size_t open) {
  const char quote = line[open];
  for (std::size_t i = open + 1; i < line.size(); ++i) {
    if (quote == '"' && line[i] == '\\') {
      ++i;
    } else if (line[i] == quote) {
      if (quote == '\'' && i + 1 < line.size() && line[i + 1] == '\'') {
        ++i;  // '' is an escaped single quote
        continue;
      }
      return i + 1;
    }
  }
  return std::string_view::npos;
}

// Where text follows a closed quoted value on `line`: {opening quote, byte
// after the closing one, start of the text}; nullopt if nowhere. A quote
// opens a value at the start of the line or after `: `, `- `, `? `, `[`, `{`
// or `,`; one inside a plain value (`echo "x"`) is ordinary text.
struct StrayText {
  std::size_t open, close, text;
};
std::optional<StrayText> FindStrayText(std::string_view line) {
  char before = '\0';  // the last non-blank character outside quotes
  bool blank = true;   // a blank (or the line start) precedes i
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (c == ' ' || c == '\t') {
      blank = true;
      continue;
    }
    if (c == '#' && blank) return std::nullopt;  // a comment
    const bool opens = (c == '"' || c == '\'') &&
                       (before == '\0' || before == '[' || before == '{' || before == ',' ||
                        (blank && (before == ':' || before == '-' || before == '?')));
    if (!opens) {
      before = c;
      blank = false;
      continue;
    }
    const std::size_t close = AfterClosingQuote(line, i);
    if (close == std::string_view::npos) return std::nullopt;  // continues below
    std::size_t next = close;
    while (next < line.size() && (line[next] == ' ' || line[next] == '\t')) ++next;
    // `"x"#c` is text, not a comment; a quote that closes the line is followed by nothing.
    if (!EndsValue(line, next) || (next == close && next < line.size() && line[next] == '#')) {
      return StrayText{i, close, next};
    }
    before = line[close - 1];
    blank = next > close;
    i = next - 1;
  }
  return std::nullopt;
}

}  // namespace

std::optional<TextProblem> ExplainTextAfterQuote(const TextPositions& positions, int line,
                                                 int byte_column, int byte_offset) {
  const std::string_view body = positions.body();
  if (line < 0 || byte_column < 0 || byte_offset < byte_column ||
      static_cast<std::size_t>(byte_offset) > body.size()) {
    return std::nullopt;
  }
  const auto start = static_cast<std::size_t>(byte_offset - byte_column);
  const std::size_t end = std::min(body.find('\n', start), body.size());
  const std::string_view text = body.substr(start, end - start);
  const std::optional<StrayText> stray = FindStrayText(text);
  // The parser stops at the stray text; an error before it is another one.
  if (!stray || stray->text > static_cast<std::size_t>(byte_column)) return std::nullopt;
  const auto at = [&](std::size_t column) {
    return positions.FromMark(line, static_cast<int>(column), static_cast<int>(start + column));
  };
  constexpr std::size_t kShown = 40;
  std::string_view rest = text.substr(stray->text);
  if (!rest.empty() && rest.back() == '\r') rest.remove_suffix(1);
  std::size_t cut = std::min(rest.size(), kShown);
  while (cut < rest.size() && (static_cast<unsigned char>(rest[cut]) & 0xC0) == 0x80) --cut;
  std::string shown(rest.substr(0, cut));
  if (cut < rest.size()) shown += "...";
  const bool double_quoted = text[stray->open] == '"';
  return TextProblem{
      at(stray->open),
      "the quoted string ends at col " + std::to_string(at(stray->close - 1).col) + ", then `" +
          shown + "` follows: " +
          (double_quoted
               ? "use single quotes around a value that contains double quotes, or escape them "
                 "as \\\""
               : "write a single quote inside single quotes as '', or use double quotes around "
                 "the value")};
}

SourcePos TextPositions::FromMark(int line, int byte_column, int byte_offset) const {
  if (line < 0 || byte_column < 0 || byte_offset < 0) return {};
  const auto index = static_cast<std::size_t>(line);
  const bool ascii = index >= non_ascii_line_.size() || !non_ascii_line_[index];
  const int line_start = byte_offset - byte_column;
  if (ascii || line_start < 0 || static_cast<std::size_t>(byte_offset) > body_.size()) {
    return {line + 1, byte_column + 1};
  }
  // Count characters, i.e. bytes that do not continue a UTF-8 sequence.
  int col = 1;
  for (int i = line_start; i < byte_offset; ++i) {
    if (!IsContinuation(static_cast<unsigned char>(body_[i]))) ++col;
  }
  return {line + 1, col};
}

}  // namespace picoflow
