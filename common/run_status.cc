#include "common/run_status.h"

#include <algorithm>
#include <cassert>
#include <cstddef>

namespace picoflow {
namespace {

// Each enum's names in declaration order: the one list its Name and Parse read.
constexpr const char* kRunStatusNames[] = {"pending", "running",   "succeeded",
                                           "failed",  "cancelled", "skipped"};
constexpr const char* kTaskStatusNames[] = {"pending",   "ready",  "running", "retry_wait",
                                            "succeeded", "failed", "skipped", "cancelled",
                                            "timed_out", "reused"};
constexpr const char* kAttemptStatusNames[] = {"succeeded", "failed", "timed_out", "cancelled",
                                               "interrupted"};
// kTimeout's name before it became "timed_out"; the attempts table's CHECK
// still pins it (picoflowd/store/store_schema.cc).
constexpr std::string_view kLegacyTimeoutName = "timeout";
constexpr const char* kRunTriggerNames[] = {"manual", "rpc",     "cron", "catchup",
                                            "file",   "webhook", "mqtt", "fleet"};
constexpr const char* kOutputStreamNames[] = {"stdout", "stderr"};

template <class E, std::size_t N>
const char* NameOf(const char* const (&names)[N], E value) {
  const auto i = static_cast<std::size_t>(value);
  assert(i < N && "every enumerator has a name");
  return i < N ? names[i] : "unknown";
}

template <class E, std::size_t N>
std::optional<E> Parse(const char* const (&names)[N], std::string_view name) {
  for (std::size_t i = 0; i < N; ++i) {
    if (name == names[i]) return static_cast<E>(i);
  }
  return std::nullopt;
}

}  // namespace

const char* RunStatusName(RunStatus s) { return NameOf(kRunStatusNames, s); }
const char* TaskStatusName(TaskStatus s) { return NameOf(kTaskStatusNames, s); }
const char* AttemptStatusName(AttemptStatus s) { return NameOf(kAttemptStatusNames, s); }
const char* RunTriggerName(RunTrigger t) { return NameOf(kRunTriggerNames, t); }
const char* OutputStreamName(OutputStream s) { return NameOf(kOutputStreamNames, s); }

std::optional<RunStatus> ParseRunStatus(std::string_view name) {
  return Parse<RunStatus>(kRunStatusNames, name);
}
std::optional<TaskStatus> ParseTaskStatus(std::string_view name) {
  return Parse<TaskStatus>(kTaskStatusNames, name);
}
std::optional<AttemptStatus> ParseAttemptStatus(std::string_view name) {
  if (name == kLegacyTimeoutName) return AttemptStatus::kTimeout;
  return Parse<AttemptStatus>(kAttemptStatusNames, name);
}
std::optional<RunTrigger> ParseRunTrigger(std::string_view name) {
  return Parse<RunTrigger>(kRunTriggerNames, name);
}
std::optional<OutputStream> ParseOutputStream(std::string_view name) {
  return Parse<OutputStream>(kOutputStreamNames, name);
}

bool IsTerminal(TaskStatus status) {
  return status == TaskStatus::kSucceeded || status == TaskStatus::kFailed ||
         status == TaskStatus::kSkipped || status == TaskStatus::kCancelled ||
         status == TaskStatus::kTimedOut || status == TaskStatus::kReused;
}

bool IsSuccess(TaskStatus status) {
  return status == TaskStatus::kSucceeded || status == TaskStatus::kReused;
}

std::string OutcomeText(std::string_view status, std::string_view reason) {
  std::string words(status);
  std::replace(words.begin(), words.end(), '_', ' ');  // timed_out: "timed out"
  if (reason.empty()) return words;
  if (reason.substr(0, words.size()) == words) return std::string(reason);
  return words + ": " + std::string(reason);
}

bool IsFailure(TaskStatus status) {
  return status == TaskStatus::kFailed || status == TaskStatus::kTimedOut;
}

bool IsFinal(RunStatus status) {
  return status != RunStatus::kPending && status != RunStatus::kRunning;
}

}  // namespace picoflow
