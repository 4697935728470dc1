#include "picoflowd/util/sd_notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "picoflowd/util/callback_guard.h"
#include "picoflowd/util/logging.h"

namespace picoflow {
namespace {

std::string Env(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : "";
}

// Decimal digits only (no sign, no spaces), as systemd writes them.
template <class T>
std::optional<T> ParseDecimal(std::string_view text) {
  T value{};
  const char* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || p != end) return std::nullopt;
  return value;
}

}  // namespace

std::optional<std::chrono::microseconds> ParseWatchdogInterval(std::string_view watchdog_usec,
                                                               std::string_view watchdog_pid,
                                                               pid_t pid) {
  const auto usec = ParseDecimal<std::uint64_t>(watchdog_usec);
  if (!usec || *usec == 0 || *usec > std::uint64_t{1} << 50) return std::nullopt;
  if (!watchdog_pid.empty()) {
    const auto wanted = ParseDecimal<pid_t>(watchdog_pid);
    if (!wanted || *wanted != pid) return std::nullopt;
  }
  return std::chrono::microseconds(static_cast<std::int64_t>(*usec));
}

std::unique_ptr<SdNotifier> SdNotifier::FromEnvironment(uv_loop_t* loop) {
  std::string socket = Env("NOTIFY_SOCKET");
  std::optional<std::chrono::microseconds> watchdog;
  if (!socket.empty()) {
    watchdog = ParseWatchdogInterval(Env("WATCHDOG_USEC"), Env("WATCHDOG_PID"), getpid());
  }
  return std::make_unique<SdNotifier>(loop, std::move(socket), watchdog);
}

SdNotifier::SdNotifier(uv_loop_t* loop, std::string socket,
                       std::optional<std::chrono::microseconds> watchdog)
    : loop_(loop), socket_(std::move(socket)), watchdog_(watchdog) {
  // Only a path ('/...') or an abstract name ('@...') is valid; anything else
  // (vsock addresses, garbage) is ignored rather than guessed at.
  if (!socket_.empty() && socket_[0] != '/' && socket_[0] != '@') {
    LogWarn({}, "NOTIFY_SOCKET '" + socket_ + "' is not a path or an abstract name; ignored");
    socket_.clear();
  }
  sockaddr_un probe{};
  if (socket_.size() >= sizeof(probe.sun_path)) {
    LogWarn({}, "NOTIFY_SOCKET is too long; ignored");
    socket_.clear();
  }
  if (socket_.empty()) watchdog_.reset();
}

SdNotifier::~SdNotifier() {
  Close();
  if (fd_ >= 0) ::close(fd_);
}

bool SdNotifier::Send(std::string_view message) {
  if (socket_.empty()) return false;
  if (fd_ < 0) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd_ < 0) {
      if (!warned_) LogWarn({}, std::string("sd_notify: socket: ") + std::strerror(errno));
      warned_ = true;
      return false;
    }
  }
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, socket_.data(), socket_.size());
  if (socket_[0] == '@') addr.sun_path[0] = '\0';  // abstract namespace
  const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + socket_.size() +
                                          (socket_[0] == '@' ? 0 : 1));
  const ssize_t n = ::sendto(fd_, message.data(), message.size(), MSG_NOSIGNAL,
                             reinterpret_cast<const sockaddr*>(&addr), len);
  if (n == static_cast<ssize_t>(message.size())) return true;
  if (!warned_) {
    LogWarn({}, "sd_notify: cannot send to " + socket_ + ": " + std::strerror(errno));
  }
  warned_ = true;
  return false;
}

void SdNotifier::Ready(std::string_view status) {
  if (!enabled()) return;
  last_status_ = std::string(status);
  Send("READY=1\nSTATUS=" + last_status_);
  StartWatchdog();
}

void SdNotifier::Stopping() {
  if (!enabled()) return;
  last_status_ = "stopping";
  Send("STOPPING=1\nSTATUS=stopping");
}

void SdNotifier::Status(std::string_view text) {
  if (!enabled() || text == last_status_) return;
  last_status_ = std::string(text);
  Send("STATUS=" + last_status_);
}

void SdNotifier::StartWatchdog() {
  if (!watchdog_ || timer_) return;
  timer_ = std::make_unique<UvHandle<uv_timer_t>>(this);
  if (uv_timer_init(loop_, timer_->get()) != 0) {
    LogWarn({}, "sd_notify: cannot create the watchdog timer");
    timer_.reset();
    return;
  }
  timer_->MarkInitialized();
  // Half the interval, as sd_watchdog_enabled(3) advises; at least 1 ms.
  const auto half = std::chrono::duration_cast<std::chrono::milliseconds>(*watchdog_ / 2);
  const auto period = static_cast<std::uint64_t>(std::max<std::int64_t>(half.count(), 1));
  uv_timer_start(
      timer_->get(),
      [](uv_timer_t* h) noexcept {
        auto* self = OwnerOf<SdNotifier>(h);
        if (self == nullptr) return;
        GuardCallback("sd_notify: watchdog", [self] { self->Send("WATCHDOG=1"); });
      },
      period, period);
  Send("WATCHDOG=1");
}

void SdNotifier::Close() { timer_.reset(); }

}  // namespace picoflow
