#pragma once
// EscapeControls: the one way a value that came from outside (a workflow
// file, a request, a process) is made safe for a line of text: a log line, a
// diagnostic, an RPC error message.

#include <string>
#include <string_view>

namespace picoflow {

/// `text` with every control character written out, so that what it holds can
/// neither break the line it is put in nor forge another one, nor drive a
/// terminal: "\n", "\r" and "\t" become those two-character escapes (so
/// "a\nb" reads `a\nb`), the other C0 controls and DEL `\xHH`, and the C1
/// controls (U+0080-U+009F, UTF-8 encoded) `\u00HH`. Everything else is kept,
/// backslashes included, so escaping twice changes nothing; invalid UTF-8 is
/// left to the JSON writers, which replace it.
std::string EscapeControls(std::string_view text);

}  // namespace picoflow
