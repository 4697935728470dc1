#pragma once
// SdNotifier: the daemon's side of systemd's notify protocol, without
// libsystemd. Sends READY=1 / STOPPING=1 / STATUS= datagrams to
// $NOTIFY_SOCKET (a path, or an abstract name written with a leading '@'),
// and owns the WATCHDOG=1 timer, which exists only when $WATCHDOG_USEC asks
// for one (and $WATCHDOG_PID, if set, names this process). Without
// $NOTIFY_SOCKET every call is a no-op and nothing ever wakes the loop.

#include <sys/types.h>
#include <uv.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "picoflowd/util/uv_handle.h"

namespace picoflow {

/// The watchdog interval systemd asks for: $WATCHDOG_USEC if it is a positive
/// decimal number and `watchdog_pid` is empty or equals `pid`; else nullopt.
std::optional<std::chrono::microseconds> ParseWatchdogInterval(std::string_view watchdog_usec,
                                                               std::string_view watchdog_pid,
                                                               pid_t pid);

class SdNotifier {
 public:
  /// Reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID. `loop` must outlive
  /// the notifier. Nothing is sent and no handle is created yet.
  static std::unique_ptr<SdNotifier> FromEnvironment(uv_loop_t* loop);

  /// `socket` empty: disabled. `watchdog`: the interval systemd expects a
  /// ping within (pings go out every half of it).
  SdNotifier(uv_loop_t* loop, std::string socket,
             std::optional<std::chrono::microseconds> watchdog);
  ~SdNotifier();
  SdNotifier(const SdNotifier&) = delete;
  SdNotifier& operator=(const SdNotifier&) = delete;

  /// True if $NOTIFY_SOCKET was set.
  bool enabled() const { return !socket_.empty(); }

  /// READY=1 with a STATUS line; starts the watchdog timer if one is asked for.
  void Ready(std::string_view status);
  /// STOPPING=1 (the watchdog keeps pinging until Close()).
  void Stopping();
  /// STATUS=<text>, sent only when it differs from the last one.
  void Status(std::string_view text);
  /// Stops and closes the watchdog timer (shutdown). Idempotent.
  void Close();

  /// Sends one datagram (`KEY=VALUE` lines). Returns false (and logs once)
  /// if the socket refused it; never throws.
  bool Send(std::string_view message);

 private:
  void StartWatchdog();

  uv_loop_t* loop_;
  std::string socket_;
  std::optional<std::chrono::microseconds> watchdog_;
  int fd_ = -1;
  bool warned_ = false;
  std::string last_status_;
  std::unique_ptr<UvHandle<uv_timer_t>> timer_;
};

}  // namespace picoflow
