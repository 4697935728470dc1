#include "common/diagnostic.h"

#include "common/text_escape.h"

namespace picoflow {

// One line, whatever the file or the values the message names hold.
std::string Diagnostic::ToString() const {
  const std::string text =
      EscapeControls(severity == Severity::kWarning ? "warning: " + message : message);
  const std::string where = EscapeControls(file);
  if (pos.line <= 0) return where + ": " + text;
  return where + ":" + std::to_string(pos.line) + ":" + std::to_string(pos.col) + ": " + text;
}

}  // namespace picoflow
