#include "picoflowd/sched/schedule_timer.h"

#include <sys/timerfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>

#include "picoflowd/util/callback_guard.h"
#include "picoflowd/util/logging.h"

namespace picoflow {

ScheduleTimer::ScheduleTimer(uv_loop_t* loop, std::function<void(Wake)> on_wake)
    : loop_(loop), on_wake_(std::move(on_wake)), poll_(this) {}

ScheduleTimer::~ScheduleTimer() { Close(); }

Status ScheduleTimer::Open() {
  fd_ = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK | TFD_CLOEXEC);
  if (fd_ < 0) {
    return Err(ErrorCode::kIo, std::string("timerfd_create: ") + std::strerror(errno));
  }
  if (int rc = uv_poll_init(loop_, poll_.get(), fd_); rc != 0) {
    return Err(ErrorCode::kIo, std::string("uv_poll_init: ") + uv_strerror(rc));
  }
  poll_.MarkInitialized();
  const int rc = uv_poll_start(poll_.get(), UV_READABLE, [](uv_poll_t* h, int, int) noexcept {
    auto* self = OwnerOf<ScheduleTimer>(h);
    if (self == nullptr) return;
    GuardCallback("schedule timer", [self] { self->OnReadable(); });
  });
  if (rc != 0) return Err(ErrorCode::kIo, std::string("uv_poll_start: ") + uv_strerror(rc));
  return {};
}

Status ScheduleTimer::Arm(std::optional<SysSeconds> deadline) {
  if (fd_ < 0) return Err(ErrorCode::kIo, "schedule timer is not open");
  itimerspec spec{};
  int flags = 0;
  if (deadline) {
    const auto secs = deadline->time_since_epoch().count();
    // 0 would disarm: an instant at (or before) the epoch is "now".
    spec.it_value.tv_sec = secs > 0 ? static_cast<time_t>(secs) : 0;
    spec.it_value.tv_nsec = secs > 0 ? 0 : 1;
    flags = TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET;
  }
  if (timerfd_settime(fd_, flags, &spec, nullptr) != 0) {
    armed_.reset();
    return Err(ErrorCode::kIo, std::string("timerfd_settime: ") + std::strerror(errno));
  }
  armed_ = deadline;
  return {};
}

void ScheduleTimer::OnReadable() {
  std::uint64_t expirations = 0;
  const ssize_t n = read(fd_, &expirations, sizeof expirations);
  if (n < 0 && errno == ECANCELED) {
    armed_.reset();
    on_wake_(Wake::kClockSet);
    return;
  }
  if (n != static_cast<ssize_t>(sizeof expirations)) return;  // EAGAIN: nothing yet
  armed_.reset();
  on_wake_(Wake::kDeadline);
}

void ScheduleTimer::Close() {
  poll_.Close();
  if (fd_ >= 0) {
    close(fd_);
    fd_ = -1;
  }
  armed_.reset();
}

}  // namespace picoflow
