#include "protocol/unix_socket.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace picoflow {

static_assert(kMaxSocketPathBytes == sizeof(sockaddr_un::sun_path) - 1);

Status CheckSocketPathLength(const std::string& path) {
  if (path.empty()) return Err(ErrorCode::kInvalid, "the socket path is empty");
  if (path.size() > kMaxSocketPathBytes) {
    return Err(ErrorCode::kInvalid,
               "socket path is " + std::to_string(path.size()) + " bytes, more than the " +
                   std::to_string(kMaxSocketPathBytes) + " a Unix socket allows: " + path +
                   " (choose a shorter path)");
  }
  return {};
}

int ConnectUnixSocket(const std::string& path) {
  if (path.empty() || path.size() > kMaxSocketPathBytes) return -ENAMETOOLONG;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -errno;
  // On a Unix socket a non-blocking connect completes or fails at once; a
  // full backlog gives EAGAIN instead of blocking.
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    int err = errno;
    ::close(fd);
    return -err;
  }
  return fd;
}

}  // namespace picoflow
