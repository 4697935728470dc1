// Tests of protocol/progress: the words `picoflowctl run --follow` and
// `picoflowd --once` both print for a run's events and output.

#include "protocol/progress.h"

#include <doctest/doctest.h>

#include <cstdio>
#include <string>
#include <vector>

namespace picoflow {
namespace {

using nlohmann::json;

// Everything `print` wrote through an OutputPrinter over a temporary file.
template <class F>
std::string Printed(F print) {
  std::FILE* f = std::tmpfile();
  REQUIRE(f != nullptr);
  {
    OutputPrinter printer(true, f);
    print(printer);
    printer.Finish();
  }
  std::rewind(f);
  std::string out;
  char buf[256];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) out.append(buf, n);
  std::fclose(f);
  return out;
}

}  // namespace

TEST_CASE("a task event reads as one line with what ended it and what comes next") {
  std::vector<std::string> lines;
  lines.push_back(TaskEventLine(
      {{"task", "load"}, {"event", "started"}, {"attempt", 2}, {"status", "running"}}, false));
  lines.push_back(TaskEventLine({{"task", "load"},
                                 {"event", "retrying"},
                                 {"attempt", 2},
                                 {"status", "failed"},
                                 {"exit_code", 1},
                                 {"duration_ms", 1250},
                                 {"error", "exit code 1"},
                                 {"retry_in_ms", 2000}},
                                false));
  lines.push_back(TaskEventLine({{"task", "load"},
                                 {"event", "finished"},
                                 {"attempt", 3},
                                 {"status", "timed_out"},
                                 {"signal", 15},
                                 {"duration_ms", 90'000}},
                                false));
  lines.push_back(
      TaskEventLine({{"task", "report"}, {"event", "skipped"}, {"status", "skipped"}}, false));
  lines.push_back(TaskEventLine({{"task", "report"},
                                 {"event", "skipped"},
                                 {"status", "skipped"},
                                 {"error", "dependency 'load' timed out"}},
                                false));
  CHECK(lines == std::vector<std::string>{
                     "[load] started (attempt 2)",
                     "[load] retrying: failed, exit code 1, in 1.2s (exit code 1); retry in 2.0s",
                     "[load] finished: timed_out, signal 15, in 1m30s",
                     "[report] skipped",
                     "[report] skipped (dependency 'load' timed out)",
                 });
}

TEST_CASE("a status is coloured only when asked") {
  CHECK(TaskEventLine({{"task", "t"}, {"event", "finished"}, {"status", "succeeded"}}, true) ==
        "[t] finished: \x1b[32msucceeded\x1b[0m");
  CHECK(ColourStatus("failed", false) == "failed");
  CHECK(ColourStatus("failed", true) == "\x1b[31mfailed\x1b[0m");
  CHECK(ColourStatus("whatever", true) == "whatever");
}

TEST_CASE("output lines are prefixed with their task and stream, partial lines kept apart") {
  const std::string out = Printed([](OutputPrinter& p) {
    p.Print("a", false, "one\ntw");
    p.Print("a", false, "o\n");
    p.Print("b", true, "half");
    p.Print("a", false, "three\n");
  });
  CHECK(out == "a | one\na | two\nb ! half\na | three\n");
}

TEST_CASE("a followed run's event lines count the tasks done so far, retries not included") {
  RunProgress progress(3);
  std::vector<std::string> lines;
  for (const json& e : std::vector<json>{
           {{"task", "a"}, {"event", "started"}, {"attempt", 1}},
           {{"task", "a"}, {"event", "retrying"}, {"status", "failed"}, {"retry_in_ms", 1000}},
           {{"task", "a"}, {"event", "started"}, {"attempt", 2}},
           {{"task", "a"}, {"event", "finished"}, {"status", "failed"}},
           {{"task", "b"}, {"event", "skipped"}},
           {{"task", "c"}, {"event", "cancelled"}},
       }) {
    lines.push_back(progress.Line(e, false));
  }
  CHECK(lines == std::vector<std::string>{
                     "[a] started (attempt 1) [0/3 done]",
                     "[a] retrying: failed; retry in 1.0s [0/3 done]",
                     "[a] started (attempt 2) [0/3 done]",
                     "[a] finished: failed [1/3 done]",
                     "[b] skipped [2/3 done]",
                     "[c] cancelled [3/3 done]",
                 });
  // Without a task count (an older daemon), the lines are TaskEventLine's.
  RunProgress unknown;
  CHECK(unknown.Line({{"task", "a"}, {"event", "skipped"}}, false) == "[a] skipped");
}

}  // namespace picoflow
