#include "common/diagnostic.h"

namespace picoflow {

std::string Diagnostic::ToString() const {
  const std::string text = severity == Severity::kWarning ? "warning: " + message : message;
  if (pos.line <= 0) return file + ": " + text;
  return file + ":" + std::to_string(pos.line) + ":" + std::to_string(pos.col) + ": " + text;
}

}  // namespace picoflow
