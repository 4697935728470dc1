// Task outputs (docs/workflow-format.md, "Outputs"): the PICOFLOW_OUTPUT file
// format and the variables dependents see.

#include "common/task_outputs.h"

#include <doctest/doctest.h>

namespace picoflow {
namespace {

std::string Problem(std::string_view text) {
  auto r = ParseTaskOutputs(text);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::kInvalid);
  return r.error().message;
}

TEST_CASE("KEY=VALUE lines and KEY<<DELIMITER blocks, in the order first written") {
  auto out = ParseTaskOutputs(
      "rows=1200\n"
      "\n"
      "url=http://x/?a=b\r\n"
      "summary<<EOF\n"
      "line one\n"
      "\n"
      "line = three\n"
      "EOF\n"
      "empty=\n"
      "rows=1201\n"
      "none<<END\n"
      "END");
  REQUIRE(out.ok());
  CHECK(*out == TaskOutputs{{"rows", "1201"},
                            {"url", "http://x/?a=b"},
                            {"summary", "line one\n\nline = three"},
                            {"empty", ""},
                            {"none", ""}});
  CHECK(ParseTaskOutputs("")->empty());
  CHECK(ParseTaskOutputs("\n\n")->empty());
}

TEST_CASE("a line of another form, a bad key, an open block or too much text is refused") {
  CHECK(Problem("a=1\njust text\n") == "line 2: expected KEY=VALUE or KEY<<DELIMITER");
  CHECK(Problem("1a=x") == "line 1: '1a' is not a valid key");
  CHECK(Problem("my-key=x") == "line 1: 'my-key' is not a valid key");
  CHECK(Problem("=x") == "line 1: '' is not a valid key");
  CHECK(Problem("a=1\nlog<<EOF\nx\nEOFX\n") == "line 2: 'log<<EOF' is not closed by a line 'EOF'");
  CHECK(Problem("log<<\n") == "line 1: KEY<< without a delimiter");
  CHECK(Problem(std::string(64, 'k') + "x=1") ==
        "line 1: '" + std::string(65, 'k').replace(64, 1, "x") + "' is not a valid key");
  CHECK(ParseTaskOutputs(std::string(64, 'k') + "=1").ok());
  const std::string big = "k=" + std::string(kMaxTaskOutputBytes - 2, 'v');
  CHECK(ParseTaskOutputs(big).ok());
  CHECK(Problem(big + "v") == "more than 65536 bytes (the limit of a task's outputs)");
}

TEST_CASE("dependents see PICOFLOW_OUT_<TASK>_<KEY> in upper case, '-' as '_'") {
  CHECK(OutputEnvName("fetch", "rows") == "PICOFLOW_OUT_FETCH_ROWS");
  CHECK(OutputEnvName("fetch-data", "fileName") == "PICOFLOW_OUT_FETCH_DATA_FILENAME");
}

}  // namespace
}  // namespace picoflow
