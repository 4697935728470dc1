#include "common/duration.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

namespace picoflow {
namespace {

using std::chrono::seconds;

seconds Ok(std::string_view text) {
  Result<seconds> d = ParseDuration(text);
  INFO(text);
  REQUIRE(d.ok());
  return *d;
}

std::string Error(std::string_view text) {
  Result<seconds> d = ParseDuration(text);
  INFO(text);
  REQUIRE_FALSE(d.ok());
  CHECK(d.error().code == ErrorCode::kInvalid);
  return d.error().message;
}

TEST_CASE("a bare number is a number of seconds") {
  CHECK(Ok("300") == seconds(300));
  CHECK(Ok("0") == seconds(0));
  CHECK(Ok("007") == seconds(7));
}

TEST_CASE("number and unit parts combine from the largest unit to the smallest") {
  CHECK(Ok("90s") == seconds(90));
  CHECK(Ok("5m") == seconds(300));
  CHECK(Ok("2h") == seconds(7200));
  CHECK(Ok("1d") == seconds(86400));
  CHECK(Ok("1h30m") == seconds(5400));
  CHECK(Ok("2d12h") == seconds(216000));
  CHECK(Ok("1d2h3m4s") == seconds(93784));
  CHECK(Ok("0s") == seconds(0));
  CHECK(Ok("90m") == seconds(5400));
}

TEST_CASE("empty, negative and garbage durations are refused with the text quoted") {
  CHECK(Error("") ==
        "empty duration (write seconds like 300, or a number and unit like 90s, 5m, 1h30m, 1d)");
  CHECK(Error("-5") == "duration '-5' must not be negative");
  CHECK(Error("-1h") == "duration '-1h' must not be negative");
  CHECK(
      Error("abc") ==
      "invalid duration 'abc': write seconds like 300, or a number and unit like 90s, 5m, 1h30m, 1d");
  CHECK(
      Error(" 5s") ==
      "invalid duration ' 5s': write seconds like 300, or a number and unit like 90s, 5m, 1h30m, 1d");
  CHECK(Error("5 s") == "invalid duration '5 s': unknown unit ' s' (units: d, h, m, s)");
  CHECK(Error("5x") == "invalid duration '5x': unknown unit 'x' (units: d, h, m, s)");
  CHECK(Error("5H") == "invalid duration '5H': unknown unit 'H' (units: d, h, m, s)");
  CHECK(Error("5min") == "invalid duration '5min': unknown unit 'min' (units: d, h, m, s)");
  CHECK(
      Error("h") ==
      "invalid duration 'h': write seconds like 300, or a number and unit like 90s, 5m, 1h30m, 1d");
}

TEST_CASE("sub-second units and fractions are refused with what to write instead") {
  CHECK(Error("500ms") ==
        "invalid duration '500ms': sub-second units are not supported; the smallest unit is s");
  CHECK(
      Error("1.5h") ==
      "invalid duration '1.5h': fractions are not supported; combine units instead (1h30m, not 1.5h)");
  CHECK(
      Error("1.5") ==
      "invalid duration '1.5': fractions are not supported; combine units instead (1h30m, not 1.5h)");
}

TEST_CASE("units out of order, repeated, or a trailing number without unit are refused") {
  CHECK(Error("30m1h") ==
        "invalid duration '30m1h': units must go from largest to smallest, each once (d, h, m, s)");
  CHECK(Error("1m1m") ==
        "invalid duration '1m1m': units must go from largest to smallest, each once (d, h, m, s)");
  CHECK(Error("1h30") == "invalid duration '1h30': the last number has no unit");
}

TEST_CASE("huge durations are refused without overflowing") {
  CHECK(Ok("365d") == kMaxDuration);
  CHECK(Ok("31536000") == kMaxDuration);
  CHECK(Error("366d") == "duration '366d' is too long (the maximum is 365d)");
  CHECK(Error("31536001") == "duration '31536001' is too long (the maximum is 365d)");
  CHECK(Error("364d24h1s") == "duration '364d24h1s' is too long (the maximum is 365d)");
  CHECK(Error("99999999999999999999999999s") ==
        "duration '99999999999999999999999999s' is too long (the maximum is 365d)");
  CHECK(Error("9223372036854775807") ==
        "duration '9223372036854775807' is too long (the maximum is 365d)");
}

TEST_CASE("FormatDuration writes the shortest form that parses back to the same value") {
  CHECK(FormatDuration(seconds(0)) == "0s");
  CHECK(FormatDuration(seconds(90)) == "1m30s");
  CHECK(FormatDuration(seconds(5400)) == "1h30m");
  CHECK(FormatDuration(seconds(86400 + 5)) == "1d5s");
  CHECK(FormatDuration(seconds(-60)) == "-1m");
  for (long long s : {1LL, 59LL, 60LL, 3599LL, 3600LL, 86399LL, 86400LL, 123456LL, 31536000LL}) {
    CHECK(Ok(FormatDuration(seconds(s))) == seconds(s));
  }
}

TEST_CASE("a duration in milliseconds reads as seconds when whole, else in milliseconds") {
  using std::chrono::milliseconds;
  CHECK(FormatDuration(milliseconds(90'000)) == "1m30s");
  CHECK(FormatDuration(milliseconds(2'000)) == "2s");
  CHECK(FormatDuration(milliseconds(0)) == "0s");
  CHECK(FormatDuration(milliseconds(1'500)) == "1500ms");
  CHECK(FormatDuration(milliseconds(400)) == "400ms");
}

TEST_CASE("an elapsed time is rounded to what matters at its size") {
  using std::chrono::milliseconds;
  std::vector<std::string> shown;
  for (long long ms : {-1LL, 0LL, 850LL, 999LL, 1'000LL, 1'249LL, 59'949LL, 60'000LL, 184'000LL,
                       3'599'999LL, 3'600'000LL, 7'500'000LL}) {
    shown.push_back(FormatElapsed(milliseconds(ms)));
  }
  CHECK(shown == std::vector<std::string>{"-", "0ms", "850ms", "999ms", "1.0s", "1.2s", "59.9s",
                                          "1m00s", "3m04s", "59m59s", "1h00m", "2h05m"});
}

}  // namespace
}  // namespace picoflow
