#include "common/diagnostic.h"

namespace picoflow {

std::string Diagnostic::ToString() const {
  if (pos.line <= 0) return file + ": " + message;
  return file + ":" + std::to_string(pos.line) + ":" + std::to_string(pos.col) + ": " + message;
}

}  // namespace picoflow
