#pragma once
// Socket activation without libsystemd: the listening socket systemd (or
// systemd-socket-activate) passed at fd 3, per sd_listen_fds(3).

#include <optional>

namespace picoflow {

/// SD_LISTEN_FDS_START: the first passed descriptor.
inline constexpr int kListenFdsStart = 3;

/// If $LISTEN_PID is this process and $LISTEN_FDS >= 1: marks the passed
/// descriptors close-on-exec, unsets LISTEN_PID, LISTEN_FDS and
/// LISTEN_FDNAMES (so children never see them), and returns fd 3. Further
/// passed descriptors are closed with a warning (picoflowd listens on one
/// socket). Otherwise returns nullopt and leaves the environment alone,
/// except that LISTEN_* meant for another process are removed too.
std::optional<int> TakeListenFd();

}  // namespace picoflow
