#pragma once
// The filesystem side of the control socket: a safe parent directory, no
// second daemon on the same path, the socket file's mode. Each check returns
// a one-line error that names the path and the fix; picoflowd prints it and
// exits non-zero.

#include <sys/types.h>

#include <optional>
#include <string>

#include "common/result.h"

namespace picoflow {

/// The directory part of `socket_path` ("." when it has none).
std::string SocketDir(const std::string& socket_path);

/// Makes sure the socket's parent directory exists and is ours alone. A
/// missing directory is created (one level, not its parents) with mode 0700,
/// or 0750 and group `group`. Returns an Error (kIo) if it cannot be created,
/// is not a directory, is owned by another uid, or is writable by group or
/// others.
Status PrepareSocketDir(const std::string& socket_path, std::optional<gid_t> group);

/// Clears the way for bind(): nothing there is fine; a socket file nobody
/// listens on (connect() is refused) is unlinked. Returns kConflict "another
/// picoflowd is already listening on PATH" if a connect succeeds, kIo if the
/// path is not a socket or cannot be probed or removed.
Status ClearStaleSocket(const std::string& socket_path);

/// Sets the bound socket file to 0600, or 0660 and group `group`. Returns
/// an Error (kIo) naming the failing call.
Status SecureSocketFile(const std::string& socket_path, std::optional<gid_t> group);

}  // namespace picoflow
