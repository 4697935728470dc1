#pragma once
// Unix-domain socket helpers shared by the daemon and its clients: the
// sun_path length rule and a plain connect(). No libuv.

#include <cstddef>
#include <string>

#include "common/result.h"

namespace picoflow {

/// The longest socket path that fits sockaddr_un::sun_path with its NUL.
inline constexpr std::size_t kMaxSocketPathBytes = 107;

/// Returns an Error (kInvalid) naming the path, its length and the limit if
/// `path` is empty or does not fit sun_path (libuv 1.44 would silently
/// truncate it and bind somewhere else).
Status CheckSocketPathLength(const std::string& path);

/// Connects a new close-on-exec, non-blocking stream socket to `path`.
/// Returns the fd, or -errno (ENOENT: no socket file; ECONNREFUSED: a stale
/// file nobody listens on; EAGAIN: the listener's backlog is full, try again;
/// ENAMETOOLONG: the path does not fit). Never blocks.
int ConnectUnixSocket(const std::string& path);

}  // namespace picoflow
