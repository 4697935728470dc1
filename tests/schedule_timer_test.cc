#include "picoflowd/sched/schedule_timer.h"

#include <doctest/doctest.h>

#include <chrono>
#include <vector>

namespace picoflow {
namespace {

using namespace std::chrono_literals;

// Runs a loop with one ScheduleTimer armed at `deadline`; returns the wakes
// and the wall clock at the first one.
struct Woken {
  std::vector<ScheduleTimer::Wake> wakes;
  std::chrono::system_clock::time_point at;
};

Woken RunUntilWake(std::optional<SysSeconds> deadline) {
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  Woken woken;
  {
    ScheduleTimer* self = nullptr;
    ScheduleTimer timer(&loop, [&](ScheduleTimer::Wake w) {
      woken.wakes.push_back(w);
      woken.at = std::chrono::system_clock::now();
      self->Close();  // the loop ends once nothing is left open
    });
    self = &timer;
    REQUIRE(timer.Open().ok());
    REQUIRE(timer.Arm(deadline).ok());
    CHECK(timer.armed() == deadline);
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&loop) == 0);
  return woken;
}

TEST_CASE("the timer wakes once at its absolute wall-clock deadline, not before") {
  const auto deadline =
      std::chrono::ceil<std::chrono::seconds>(std::chrono::system_clock::now() + 200ms);
  const Woken woken = RunUntilWake(deadline);
  CHECK(woken.wakes == std::vector<ScheduleTimer::Wake>{ScheduleTimer::Wake::kDeadline});
  CHECK(woken.at >= deadline);
  CHECK(woken.at - deadline < 200ms);
}

TEST_CASE("a deadline in the past (even before the epoch) wakes at once") {
  const auto start = std::chrono::system_clock::now();
  CHECK(RunUntilWake(std::chrono::floor<std::chrono::seconds>(start) - 3600s).wakes.size() == 1);
  CHECK(RunUntilWake(SysSeconds{} - 10s).wakes.size() == 1);
  CHECK(std::chrono::system_clock::now() - start < 500ms);
}

TEST_CASE("arming a timer that was never opened is an error") {
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  {
    ScheduleTimer timer(&loop, [](ScheduleTimer::Wake) {});
    CHECK_FALSE(timer.Arm(SysSeconds{}).ok());
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&loop) == 0);
}

}  // namespace
}  // namespace picoflow
