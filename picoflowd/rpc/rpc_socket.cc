#include "picoflowd/rpc/rpc_socket.h"

#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "picoflowd/util/logging.h"
#include "protocol/unix_socket.h"

namespace picoflow {
namespace {

std::string ErrnoText() { return std::strerror(errno); }

std::string Octal(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

Status CreateDir(const std::string& dir, std::optional<gid_t> group) {
  const mode_t mode = group ? 0750 : 0700;
  if (::mkdir(dir.c_str(), mode) != 0 && errno != EEXIST) {
    return Err(ErrorCode::kIo, "cannot create socket directory " + dir + ": " + ErrnoText() +
                                   " (create its parent or choose another --socket)");
  }
  // mkdir honours the umask; the mode must be exact.
  if (::chmod(dir.c_str(), mode) != 0 ||
      (group && ::chown(dir.c_str(), static_cast<uid_t>(-1), *group) != 0)) {
    return Err(ErrorCode::kIo,
               "cannot set mode/group of socket directory " + dir + ": " + ErrnoText());
  }
  return {};
}

Status CheckDir(const std::string& dir, const struct stat& st, std::optional<gid_t> group) {
  const std::string fix_mode = group ? "0750" : "0700";
  if (!S_ISDIR(st.st_mode)) {
    return Err(ErrorCode::kIo, "socket directory " + dir + " is not a directory");
  }
  if (st.st_uid != ::geteuid()) {
    return Err(ErrorCode::kIo,
               "socket directory " + dir + " is owned by uid " + std::to_string(st.st_uid) +
                   ", not by picoflowd's uid " + std::to_string(::geteuid()) + ": chown " +
                   std::to_string(::geteuid()) + " " + dir + " or choose another --socket");
  }
  if ((st.st_mode & 022) != 0) {
    return Err(ErrorCode::kIo, "socket directory " + dir + " is writable by group or others " +
                                   "(mode " + Octal(st.st_mode) + "): chmod " + fix_mode + " " +
                                   dir);
  }
  if (group && (st.st_gid != *group || (st.st_mode & 010) == 0)) {
    LogWarn(
        LogEvent("rpc.socket"),
        fmt::format("socket directory {} (mode {}, gid {}) does not let group {} reach the socket; "
                    "chgrp {} {} && chmod {} {}",
                    dir, Octal(st.st_mode), st.st_gid, *group, *group, dir, fix_mode, dir));
  }
  return {};
}

}  // namespace

std::string SocketDir(const std::string& socket_path) {
  std::string dir = std::filesystem::path(socket_path).parent_path().string();
  return dir.empty() ? "." : dir;
}

Status PrepareSocketDir(const std::string& socket_path, std::optional<gid_t> group) {
  const std::string dir = SocketDir(socket_path);
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    if (errno != ENOENT) {
      return Err(ErrorCode::kIo, "cannot stat socket directory " + dir + ": " + ErrnoText());
    }
    if (auto created = CreateDir(dir, group); !created) return created;
    if (::stat(dir.c_str(), &st) != 0) {
      return Err(ErrorCode::kIo, "cannot stat socket directory " + dir + ": " + ErrnoText());
    }
  }
  return CheckDir(dir, st, group);
}

Status ClearStaleSocket(const std::string& socket_path) {
  struct stat st {};
  if (::lstat(socket_path.c_str(), &st) != 0) {
    if (errno == ENOENT) return {};
    return Err(ErrorCode::kIo, "cannot stat " + socket_path + ": " + ErrnoText());
  }
  if (!S_ISSOCK(st.st_mode)) {
    return Err(ErrorCode::kIo, socket_path + " exists and is not a socket: remove it or " +
                                   "choose another --socket");
  }
  int fd = ConnectUnixSocket(socket_path);
  if (fd >= 0 || fd == -EAGAIN) {
    if (fd >= 0) ::close(fd);
    return Err(ErrorCode::kConflict, "another picoflowd is already listening on " + socket_path);
  }
  if (fd == -ENOENT) return {};
  if (fd != -ECONNREFUSED) {
    return Err(ErrorCode::kIo,
               "cannot probe existing socket " + socket_path + ": " + std::strerror(-fd));
  }
  if (::unlink(socket_path.c_str()) != 0 && errno != ENOENT) {
    return Err(ErrorCode::kIo, "cannot remove stale socket " + socket_path + ": " + ErrnoText());
  }
  LogInfo(LogEvent("rpc.socket"), fmt::format("removed stale socket {}", socket_path));
  return {};
}

Status SecureSocketFile(const std::string& socket_path, std::optional<gid_t> group) {
  if (group && ::chown(socket_path.c_str(), static_cast<uid_t>(-1), *group) != 0) {
    return Err(ErrorCode::kIo, "cannot chgrp socket " + socket_path + ": " + ErrnoText());
  }
  if (::chmod(socket_path.c_str(), group ? 0660 : 0600) != 0) {
    return Err(ErrorCode::kIo, "cannot chmod socket " + socket_path + ": " + ErrnoText());
  }
  return {};
}

}  // namespace picoflow
