// Tests of util/callback_guard: what a callback throws is stopped and
// reported, never dropped silently and never passed on to C code.

#include "picoflowd/util/callback_guard.h"

#include <doctest/doctest.h>

#include <stdexcept>
#include <string>
#include <vector>

namespace picoflow {
namespace {

std::vector<std::string> g_reported;

void Capture(const char* message) { g_reported.push_back(message); }

struct CaptureLog {
  CaptureLog() {
    g_reported.clear();
    callback_error_log = &Capture;
  }
  ~CaptureLog() { callback_error_log = nullptr; }
};

}  // namespace

TEST_CASE("a callback that returns normally is run once and nothing is reported") {
  CaptureLog log;
  int runs = 0;
  CHECK(GuardCallback("test: plain", [&] { ++runs; }));
  CHECK(runs == 1);
  CHECK(g_reported.empty());
}

TEST_CASE("an exception a callback throws is stopped and reported with where it happened") {
  CaptureLog log;
  CHECK_FALSE(GuardCallback("rpc: reading a request", [] { throw std::runtime_error("boom"); }));
  CHECK_FALSE(GuardCallback("timer", [] { throw 42; }));
  CHECK(g_reported == std::vector<std::string>{
                          "rpc: reading a request: stopped an exception: boom",
                          "timer: stopped an exception: an exception of unknown type",
                      });
}

}  // namespace picoflow
