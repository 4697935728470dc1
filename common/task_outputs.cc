#include "common/task_outputs.h"

#include <algorithm>
#include <cctype>

#include "common/env_expand.h"

namespace picoflow {
namespace {

constexpr std::size_t kMaxKeyLength = 64;

bool IsKey(std::string_view key) { return key.size() <= kMaxKeyLength && IsVariableName(key); }

void Set(TaskOutputs& outputs, std::string_view key, std::string value) {
  for (auto& [k, v] : outputs) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  outputs.emplace_back(std::string(key), std::move(value));
}

Error LineError(std::size_t line, const std::string& what) {
  return Err(ErrorCode::kInvalid, "line " + std::to_string(line) + ": " + what);
}

}  // namespace

Result<TaskOutputs> ParseTaskOutputs(std::string_view text) {
  if (text.size() > kMaxTaskOutputBytes) {
    return Err(ErrorCode::kInvalid, "more than " + std::to_string(kMaxTaskOutputBytes) +
                                        " bytes (the limit of a task's outputs)");
  }
  TaskOutputs outputs;
  std::size_t number = 0;
  // The next line without its end ("\n" or "\r\n"); false at the end.
  const auto next = [&](std::string_view& line) {
    if (text.empty()) return false;
    const std::size_t end = text.find('\n');
    line = text.substr(0, end);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    ++number;
    return true;
  };
  std::string_view line;
  while (next(line)) {
    if (line.empty()) continue;
    const std::size_t eq = line.find('=');
    const std::size_t heredoc = line.find("<<");
    if (heredoc != std::string_view::npos && (eq == std::string_view::npos || heredoc < eq)) {
      const std::string_view key = line.substr(0, heredoc);
      const std::string_view delimiter = line.substr(heredoc + 2);
      if (!IsKey(key)) return LineError(number, "'" + std::string(key) + "' is not a valid key");
      if (delimiter.empty()) return LineError(number, "KEY<< without a delimiter");
      const std::size_t start = number;
      std::string value;
      bool closed = false;
      bool first = true;
      while (next(line)) {
        if (line == delimiter) {
          closed = true;
          break;
        }
        if (!first) value += '\n';
        value += line;
        first = false;
      }
      if (!closed) {
        return LineError(start, "'" + std::string(key) + "<<" + std::string(delimiter) +
                                    "' is not closed by a line '" + std::string(delimiter) + "'");
      }
      Set(outputs, key, std::move(value));
      continue;
    }
    if (eq == std::string_view::npos) {
      return LineError(number, "expected KEY=VALUE or KEY<<DELIMITER");
    }
    const std::string_view key = line.substr(0, eq);
    if (!IsKey(key)) return LineError(number, "'" + std::string(key) + "' is not a valid key");
    Set(outputs, key, std::string(line.substr(eq + 1)));
  }
  return outputs;
}

std::string OutputEnvName(std::string_view task, std::string_view key) {
  std::string name = "PICOFLOW_OUT_";
  const auto upper = [&name](std::string_view part) {
    for (char c : part) {
      name += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
  };
  upper(task);
  name += '_';
  upper(key);
  return name;
}

}  // namespace picoflow
