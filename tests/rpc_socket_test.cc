// The control socket's file and directory: live and stale sockets, path
// length, modes, ownership.

#include "picoflowd/rpc/rpc_socket.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "tests/rpc_test_harness.h"

namespace picoflow::test {
namespace {

TEST_CASE("a second server on a live socket is refused") {
  Harness h;
  REQUIRE(h.server->Listen().ok());
  RpcServerOptions options;
  options.socket_path = h.path;
  RpcServer second(&h.loop, options, h.dispatcher);
  auto refused = second.Listen();
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().message == "another picoflowd is already listening on " + h.path);
  bool works = false;
  h.WithClient([&] { works = HandshakeWorks(h.path); });
  CHECK(works);
}

TEST_CASE("a stale socket file is replaced, and a file that is not a socket is refused") {
  Harness h;
  ::mkdir((h.dir.path() + "/ctl").c_str(), 0700);
  {
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strcpy(addr.sun_path, h.path.c_str());
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    ::close(fd);  // the file stays; nobody listens
  }
  REQUIRE(h.server->Listen().ok());
  bool works = false;
  h.WithClient([&] { works = HandshakeWorks(h.path); });
  CHECK(works);

  const std::string plain = h.dir.path() + "/ctl/plain";
  {
    std::FILE* f = std::fopen(plain.c_str(), "w");
    std::fclose(f);
  }
  RpcServerOptions options;
  options.socket_path = plain;
  RpcServer other(&h.loop, options, h.dispatcher);
  auto refused = other.Listen();
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().message.find("is not a socket") != std::string::npos);
}

TEST_CASE("a socket path too long for sun_path is refused before anything is created") {
  TempDir dir;
  RpcServerOptions options;
  options.socket_path = dir.path() + "/sub/" + std::string(110, 's');
  Harness h(options);
  auto refused = h.server->Listen();
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code == ErrorCode::kInvalid);
  CHECK(refused.error().message.find("more than the 107") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir.path() + "/sub"));
}

TEST_CASE("the socket directory is created 0700 and the socket is 0600") {
  Harness h;
  REQUIRE(h.server->Listen().ok());
  struct stat dir_st {};
  struct stat sock_st {};
  REQUIRE(::stat((h.dir.path() + "/ctl").c_str(), &dir_st) == 0);
  REQUIRE(::stat(h.path.c_str(), &sock_st) == 0);
  CHECK((dir_st.st_mode & 07777) == 0700);
  CHECK((sock_st.st_mode & 07777) == 0600);
  CHECK(S_ISSOCK(sock_st.st_mode));
}

TEST_CASE("with a read group the directory is 0750 and the socket 0660, both of that group") {
  if (::geteuid() != 0) {
    MESSAGE("skipped: needs root to give files to another group");
    return;
  }
  RpcServerOptions options;
  options.group = 4242;
  Harness h(options);
  REQUIRE(h.server->Listen().ok());
  struct stat dir_st {};
  struct stat sock_st {};
  REQUIRE(::stat((h.dir.path() + "/ctl").c_str(), &dir_st) == 0);
  REQUIRE(::stat(h.path.c_str(), &sock_st) == 0);
  CHECK((dir_st.st_mode & 07777) == 0750);
  CHECK(dir_st.st_gid == 4242);
  CHECK((sock_st.st_mode & 07777) == 0660);
  CHECK(sock_st.st_gid == 4242);
}

TEST_CASE("an unsafe socket directory is refused with the fix in the message") {
  Harness h;
  const std::string dir = h.dir.path() + "/ctl";
  ::mkdir(dir.c_str(), 0700);
  ::chmod(dir.c_str(), 0777);
  auto open_dir = h.server->Listen();
  REQUIRE_FALSE(open_dir.ok());
  CHECK(open_dir.error().message == "socket directory " + dir +
                                        " is writable by group or others (mode 0777): chmod 0700 " +
                                        dir);
  if (::geteuid() == 0) {
    ::chmod(dir.c_str(), 0700);
    REQUIRE(::chown(dir.c_str(), 65534, 65534) == 0);
    auto foreign = h.server->Listen();
    REQUIRE_FALSE(foreign.ok());
    CHECK(foreign.error().message.find("is owned by uid 65534, not by picoflowd's uid 0") !=
          std::string::npos);
  }
  CHECK_FALSE(h.server->listening());
}

}  // namespace
}  // namespace picoflow::test
