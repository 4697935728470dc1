#pragma once
// Checks on the raw bytes of a YAML file before it reaches the parser (empty,
// binary, invalid UTF-8), and the mapping from the parser's byte offsets to
// the character columns that diagnostics show.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/diagnostic.h"

namespace picoflow {

/// Why a text was refused, and where.
struct TextProblem {
  SourcePos pos;  ///< {0, 0} when it concerns the whole file
  std::string message;
};

class TextPositions;

/// Accepts UTF-8 text (an optional BOM, tabs, CR and LF line ends). Returns a
/// problem for an empty or whitespace-only text (`empty file`), a UTF-16/32
/// byte order mark, a NUL byte or another control character (binary data),
/// or invalid UTF-8 (overlong forms, surrogates, values past U+10FFFF,
/// truncated sequences), positioned at the first offending byte. Fills
/// `positions` for `text`, which must outlive it.
std::optional<TextProblem> CheckYamlText(std::string_view text, TextPositions& positions);

/// Explains a syntax error that the parser reported at (`line`, `byte_column`,
/// `byte_offset`) when that line holds a quoted value followed by more text,
/// as in `command: "grep "foo" /etc/passwd"`: the inner quote ended the string
/// early. Returns the problem at the opening quote, naming the column where
/// the string ends and the text that follows, with the fix for that kind of
/// quote; nullopt if the line has no such value.
std::optional<TextProblem> ExplainTextAfterQuote(const TextPositions& positions, int line,
                                                 int byte_column, int byte_offset);

/// Maps parser positions (0-based line, byte column, byte offset into body())
/// to 1-based lines and character columns. Filled by CheckYamlText.
class TextPositions {
 public:
  /// The text after a UTF-8 byte order mark, if there was one: what the
  /// parser must be given so that its byte offsets match.
  std::string_view body() const { return body_; }

  /// 1-based line and character column of a parser mark; {0, 0} if the mark
  /// is unknown (negative).
  SourcePos FromMark(int line, int byte_column, int byte_offset) const;

 private:
  friend std::optional<TextProblem> CheckYamlText(std::string_view, TextPositions&);

  std::string_view body_;
  std::vector<std::uint8_t> non_ascii_line_;  // per 0-based line: 1 if it has a byte >= 0x80
};

}  // namespace picoflow
