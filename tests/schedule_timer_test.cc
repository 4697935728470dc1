#include "picoflowd/sched/schedule_timer.h"

#include <doctest/doctest.h>

#include <chrono>
#include <vector>

namespace picoflow {
namespace {

using namespace std::chrono_literals;
using WallClock = std::chrono::system_clock;

// Runs a loop with one ScheduleTimer armed at `deadline` and, beside it, a
// plain libuv timer aimed at the same instant: the calibration. However slow
// or busy the machine, both wake about together; a ScheduleTimer that wakes
// far later than its twin is late. Returns the wakes, the wall clock at the
// first one and at the twin's.
struct Woken {
  std::vector<ScheduleTimer::Wake> wakes;
  WallClock::time_point at;
  WallClock::time_point twin_at;
};

// The plain timer and a deadline that only ends a hang (a ScheduleTimer that
// never wakes fails the test instead of stalling it).
struct Twin {
  ScheduleTimer* timer = nullptr;
  Woken* woken = nullptr;
  uv_timer_t plain{};
  uv_timer_t hang{};
};

Woken RunUntilWake(std::optional<SysSeconds> deadline) {
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  Woken woken;
  {
    Twin twin;
    twin.woken = &woken;
    ScheduleTimer timer(&loop, [&](ScheduleTimer::Wake w) {
      woken.wakes.push_back(w);
      woken.at = WallClock::now();
      twin.timer->Close();  // the loop ends once nothing is left open
      uv_close(reinterpret_cast<uv_handle_t*>(&twin.hang), nullptr);
    });
    twin.timer = &timer;
    REQUIRE(timer.Open().ok());
    REQUIRE(timer.Arm(deadline).ok());
    CHECK(timer.armed() == deadline);
    uv_update_time(&loop);
    const auto delay = deadline ? std::chrono::ceil<std::chrono::milliseconds>(
                                      std::max(*deadline - WallClock::now(), WallClock::duration{}))
                                : 0ms;
    twin.plain.data = &twin;
    REQUIRE(uv_timer_init(&loop, &twin.plain) == 0);
    uv_timer_start(
        &twin.plain,
        [](uv_timer_t* t) {
          auto* twin = static_cast<Twin*>(t->data);
          twin->woken->twin_at = WallClock::now();
          uv_close(reinterpret_cast<uv_handle_t*>(t), nullptr);
        },
        static_cast<std::uint64_t>(delay.count()), 0);
    twin.hang.data = &twin;
    REQUIRE(uv_timer_init(&loop, &twin.hang) == 0);
    uv_timer_start(
        &twin.hang,
        [](uv_timer_t* t) {
          static_cast<Twin*>(t->data)->timer->Close();
          uv_close(reinterpret_cast<uv_handle_t*>(t), nullptr);
        },
        static_cast<std::uint64_t>((delay + 60s).count()), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&loop) == 0);
  return woken;
}

TEST_CASE("the timer wakes once at its absolute wall-clock deadline, not before") {
  const auto deadline = std::chrono::ceil<std::chrono::seconds>(WallClock::now() + 200ms);
  const Woken woken = RunUntilWake(deadline);
  CHECK(woken.wakes == std::vector<ScheduleTimer::Wake>{ScheduleTimer::Wake::kDeadline});
  CHECK(woken.at >= deadline);
  // Not late: about when the plain timer aimed at the same instant woke.
  CHECK(woken.at - woken.twin_at < 500ms);
}

TEST_CASE("a deadline in the past (even before the epoch) wakes at once") {
  // At once: about when a plain timer of 0 ms started beside it wakes.
  for (const SysSeconds deadline :
       {std::chrono::floor<std::chrono::seconds>(WallClock::now()) - 3600s, SysSeconds{} - 10s}) {
    const Woken woken = RunUntilWake(deadline);
    CHECK(woken.wakes.size() == 1);
    CHECK(woken.at - woken.twin_at < 500ms);
  }
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
