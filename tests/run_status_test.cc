// Tests of common/run_status: every status, trigger and stream has one name,
// and each Parse is the inverse of its Name.

#include "common/run_status.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

namespace picoflow {
namespace {

// The names of the first `count` enumerators, and that the one after them
// has none (so `count` is every enumerator).
template <class E>
std::vector<std::string> Names(const char* (*name_of)(E), int count) {
  std::vector<std::string> names;
  for (int i = 0; i < count; ++i) names.push_back(name_of(static_cast<E>(i)));
  return names;
}

template <class E>
void CheckRoundTrip(const char* (*name_of)(E), std::optional<E> (*parse)(std::string_view),
                    int count) {
  for (int i = 0; i < count; ++i) {
    const E value = static_cast<E>(i);
    CHECK(parse(name_of(value)) == value);
  }
  CHECK_FALSE(parse("").has_value());
  CHECK_FALSE(parse("Running").has_value());
  CHECK_FALSE(parse("unknown").has_value());
}

}  // namespace

TEST_CASE("each status, trigger and stream is stored and shown by one lower-case name") {
  CHECK(Names(RunStatusName, 6) == std::vector<std::string>{"pending", "running", "succeeded",
                                                            "failed", "cancelled", "skipped"});
  CHECK(Names(TaskStatusName, 9) == std::vector<std::string>{"pending", "ready", "running",
                                                             "retry_wait", "succeeded", "failed",
                                                             "skipped", "cancelled", "timed_out"});
  CHECK(Names(AttemptStatusName, 5) ==
        std::vector<std::string>{"succeeded", "failed", "timed_out", "cancelled", "interrupted"});
  CHECK(Names(RunTriggerName, 8) == std::vector<std::string>{"manual", "rpc", "cron", "catchup",
                                                             "file", "webhook", "mqtt", "fleet"});
  CHECK(Names(OutputStreamName, 2) == std::vector<std::string>{"stdout", "stderr"});
}

TEST_CASE("each Parse is the inverse of its Name and refuses any other text") {
  CheckRoundTrip(RunStatusName, ParseRunStatus, 6);
  CheckRoundTrip(TaskStatusName, ParseTaskStatus, 9);
  CheckRoundTrip(AttemptStatusName, ParseAttemptStatus, 5);
  CheckRoundTrip(RunTriggerName, ParseRunTrigger, 8);
  CheckRoundTrip(OutputStreamName, ParseOutputStream, 2);
}

TEST_CASE("terminal task statuses and final run statuses are exactly the ones never left") {
  std::vector<std::string> terminal;
  for (int i = 0; i < 8; ++i) {
    if (IsTerminal(static_cast<TaskStatus>(i)))
      terminal.push_back(TaskStatusName(static_cast<TaskStatus>(i)));
  }
  CHECK(terminal == std::vector<std::string>{"succeeded", "failed", "skipped", "cancelled"});
  std::vector<std::string> final_runs;
  for (int i = 0; i < 6; ++i) {
    if (IsFinal(static_cast<RunStatus>(i)))
      final_runs.push_back(RunStatusName(static_cast<RunStatus>(i)));
  }
  CHECK(final_runs == std::vector<std::string>{"succeeded", "failed", "cancelled", "skipped"});
}

}  // namespace picoflow

namespace picoflow {

TEST_CASE("an outcome reads as its status and reason, without saying the status twice") {
  CHECK(OutcomeText("failed", "exited with code 1") == "failed: exited with code 1");
  CHECK(OutcomeText("skipped", "dependency 'fetch' failed") ==
        "skipped: dependency 'fetch' failed");
  CHECK(OutcomeText("timed_out", "timed out after 2s (SIGTERM)") == "timed out after 2s (SIGTERM)");
  CHECK(OutcomeText("cancelled", "cancelled: picoflowd stopped") == "cancelled: picoflowd stopped");
  CHECK(OutcomeText("succeeded", "") == "succeeded");
  CHECK(OutcomeText("timed_out", "") == "timed out");
}

TEST_CASE("an attempt stored as timeout by an older picoflowd reads as timed out") {
  CHECK(ParseAttemptStatus("timeout") == AttemptStatus::kTimeout);
  CHECK(ParseAttemptStatus("timed_out") == AttemptStatus::kTimeout);
  CHECK(IsTerminal(TaskStatus::kTimedOut));
  CHECK(IsFailure(TaskStatus::kTimedOut));
  CHECK_FALSE(IsFailure(TaskStatus::kSkipped));
}

}  // namespace picoflow
