#include "picoflowd/util/sd_listen.h"

#include <fcntl.h>
#include <unistd.h>

#include <charconv>
#include <cstdlib>
#include <string>
#include <string_view>

#include "picoflowd/util/logging.h"

namespace picoflow {
namespace {

std::optional<long> EnvNumber(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr) return std::nullopt;
  const std::string_view text(value);
  long n = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (text.empty() || ec != std::errc() || p != text.data() + text.size()) return std::nullopt;
  return n;
}

void UnsetListenEnv() {
  unsetenv("LISTEN_PID");
  unsetenv("LISTEN_FDS");
  unsetenv("LISTEN_FDNAMES");
}

}  // namespace

std::optional<int> TakeListenFd() {
  const auto pid = EnvNumber("LISTEN_PID");
  const auto fds = EnvNumber("LISTEN_FDS");
  if (!pid || !fds) return std::nullopt;
  UnsetListenEnv();
  if (*pid != static_cast<long>(getpid()) || *fds < 1) return std::nullopt;
  if (*fds > 1) {
    LogWarn({}, "socket activation passed " + std::to_string(*fds) +
                    " sockets; picoflowd listens on the first and closes the rest");
  }
  for (long i = 0; i < *fds && i < 1024; ++i) {
    const int fd = kListenFdsStart + static_cast<int>(i);
    if (i > 0) {
      ::close(fd);
      continue;
    }
    const int flags = fcntl(fd, F_GETFD);
    if (flags < 0) return std::nullopt;  // not open: nothing was passed after all
    fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
  }
  return kListenFdsStart;
}

}  // namespace picoflow
