#include "picoflowd/util/sd_listen.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

namespace picoflow {
namespace {

bool EnvSet(const char* name) { return std::getenv(name) != nullptr; }

TEST_CASE("without LISTEN_PID and LISTEN_FDS nothing was passed") {
  unsetenv("LISTEN_PID");
  unsetenv("LISTEN_FDS");
  CHECK_FALSE(TakeListenFd().has_value());
}

TEST_CASE("sockets passed to another process are not taken, and the variables are removed") {
  setenv("LISTEN_PID", std::to_string(getpid() + 1).c_str(), 1);
  setenv("LISTEN_FDS", "1", 1);
  setenv("LISTEN_FDNAMES", "picoflowd.socket", 1);
  CHECK_FALSE(TakeListenFd().has_value());
  CHECK_FALSE(EnvSet("LISTEN_PID"));
  CHECK_FALSE(EnvSet("LISTEN_FDS"));
  CHECK_FALSE(EnvSet("LISTEN_FDNAMES"));

  setenv("LISTEN_PID", std::to_string(getpid()).c_str(), 1);
  setenv("LISTEN_FDS", "0", 1);
  CHECK_FALSE(TakeListenFd().has_value());
}

TEST_CASE("a socket passed to this process is fd 3, close-on-exec, and the variables are gone") {
  // Keep whatever the test runner had at fd 3, and put a socket there.
  const int saved = fcntl(3, F_DUPFD_CLOEXEC, 10);
  const int sock = socket(AF_UNIX, SOCK_STREAM, 0);
  REQUIRE(sock >= 0);
  REQUIRE(dup2(sock, 3) == 3);
  if (sock != 3) close(sock);
  setenv("LISTEN_PID", std::to_string(getpid()).c_str(), 1);
  setenv("LISTEN_FDS", "1", 1);
  CHECK(TakeListenFd() == 3);
  CHECK((fcntl(3, F_GETFD) & FD_CLOEXEC) != 0);
  CHECK_FALSE(EnvSet("LISTEN_PID"));
  CHECK_FALSE(EnvSet("LISTEN_FDS"));
  close(3);
  if (saved >= 0) {
    dup2(saved, 3);
    close(saved);
  }
}

}  // namespace
}  // namespace picoflow
