#pragma once
// ScheduleTimer: the daemon's one cron timer — a timerfd on CLOCK_REALTIME
// armed at an absolute wall-clock instant, watched by a uv_poll. It wakes at
// the deadline, and also as soon as anyone sets the wall clock
// (TFD_TIMER_CANCEL_ON_SET), so a clock jump is seen without polling.

#include <uv.h>

#include <functional>
#include <optional>

#include "common/cron.h"
#include "common/result.h"
#include "picoflowd/util/uv_handle.h"

namespace picoflow {

class ScheduleTimer {
 public:
  /// Why the timer woke.
  enum class Wake { kDeadline, kClockSet };

  /// `on_wake` runs on the loop; it must re-Arm() (a clock set disarms).
  ScheduleTimer(uv_loop_t* loop, std::function<void(Wake)> on_wake);
  ~ScheduleTimer();
  ScheduleTimer(const ScheduleTimer&) = delete;
  ScheduleTimer& operator=(const ScheduleTimer&) = delete;

  /// Creates the timerfd and starts watching it. Returns an Error naming the
  /// failing call.
  Status Open();
  /// Arms for `deadline` (wall clock, absolute), or disarms with nullopt.
  /// A deadline in the past wakes at once. Returns an Error if the kernel
  /// refuses (the fd is then useless; the daemon logs it).
  Status Arm(std::optional<SysSeconds> deadline);
  /// The instant armed, if any.
  std::optional<SysSeconds> armed() const { return armed_; }
  /// Stops watching and closes the fd; idempotent.
  void Close();

 private:
  void OnReadable();

  uv_loop_t* loop_;
  std::function<void(Wake)> on_wake_;
  int fd_ = -1;
  UvHandle<uv_poll_t> poll_;
  std::optional<SysSeconds> armed_;
};

}  // namespace picoflow
