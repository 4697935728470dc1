// Peer credentials: clients of other uids and of the read group, run in a
// forked child that drops to `nobody` (root only; skipped otherwise).

#include "picoflowd/rpc/rpc_peer.h"

#include <grp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "tests/rpc_test_harness.h"

namespace picoflow::test {
namespace {

TEST_CASE("access is decided from uid, primary and supplementary groups") {
  AccessPolicy policy{1000, 50};
  const std::vector<gid_t> none;
  const std::vector<gid_t> with_50 = {10, 50};
  CHECK(DecideAccess(0, 0, none, policy) == Access::kWrite);
  CHECK(DecideAccess(1000, 1000, none, policy) == Access::kWrite);
  CHECK(DecideAccess(2000, 50, none, policy) == Access::kRead);
  CHECK(DecideAccess(2000, 2000, with_50, policy) == Access::kRead);
  CHECK(DecideAccess(2000, 2000, none, policy) == Access::kNone);
  CHECK(DecideAccess(2000, 50, with_50, AccessPolicy{1000, std::nullopt}) == Access::kNone);
}

// A forked child drops to `nobody` and connects to a socket the test opened
// to everyone: the kernel's credentials are the last line of defence behind
// the directory's mode.

constexpr uid_t kNobody = 65534;

// Listens on `path` (mode 0666 in a 0755 directory) and returns the fd.
int WorldSocket(const std::string& dir, const std::string& path) {
  ::chmod(dir.c_str(), 0755);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strcpy(addr.sun_path, path.c_str());
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 16) != 0) {
    ::close(fd);
    return -1;
  }
  ::chmod(path.c_str(), 0666);
  return fd;
}

// Runs `body` in a child as nobody with the given supplementary groups and
// returns its exit code (0 = every expectation held; else the step that failed).
int RunAsNobody(Harness& h, std::vector<gid_t> groups, std::function<int()> body) {
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    if (::setgroups(groups.size(), groups.data()) != 0 || ::setgid(kNobody) != 0 ||
        ::setuid(kNobody) != 0) {
      ::_exit(99);
    }
    ::_exit(body());
  }
  int status = -1;
  h.WithClient([&] { ::waitpid(pid, &status, 0); });
  return WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
}

TEST_CASE("a peer of another uid is answered -32005 and closed") {
  if (::geteuid() != 0) {
    MESSAGE("skipped: needs root to run a client as nobody");
    return;
  }
  Harness h;
  const std::string path = h.dir.path() + "/w.sock";
  int fd = WorldSocket(h.dir.path(), path);
  REQUIRE(fd >= 0);
  REQUIRE(h.server->Adopt(fd).ok());
  int rc = RunAsNobody(h, {}, [&] {
    Client c;
    if (!c.Connect(path, kWait).ok()) return 10;
    auto r = c.Call(method::kDaemonVersion, json::object(), kWait);
    if (r.ok() || !c.last_rpc_error() || c.last_rpc_error()->code != -32005) return 11;
    auto after = c.ReadLine(kWait);
    if (after.ok() || after.error().code != ErrorCode::kIo) return 12;
    return 0;
  });
  CHECK(rc == 0);
  CHECK(h.LoopUntil([&] { return h.server->connection_count() == 0; }));
  bool root_works = false;
  h.WithClient([&] { root_works = HandshakeWorks(path); });
  CHECK(root_works);
}

TEST_CASE("a member of the read group may read but not write") {
  if (::geteuid() != 0) {
    MESSAGE("skipped: needs root to run a client as nobody");
    return;
  }
  RpcServerOptions options;
  options.group = 4242;
  Harness h(options);
  const std::string path = h.dir.path() + "/w.sock";
  int fd = WorldSocket(h.dir.path(), path);
  REQUIRE(fd >= 0);
  REQUIRE(h.server->Adopt(fd).ok());
  int rc = RunAsNobody(h, {4242}, [&] {
    Client c;
    if (!c.Connect(path, kWait).ok()) return 10;
    if (!c.Handshake(kWait).ok()) return 11;
    auto w = c.Call("test.write", json::object(), kWait);
    if (w.ok() || !c.last_rpc_error() || c.last_rpc_error()->code != -32005) return 12;
    if (!c.Call(method::kDaemonVersion, json::object(), kWait).ok()) return 13;
    return 0;
  });
  CHECK(rc == 0);
}

// True once `fd` is readable, false if `limit` passed first.
bool WaitReadable(int fd, std::chrono::milliseconds limit) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, static_cast<int>(limit.count())) == 1;
}

TEST_CASE("another uid holding the maximum of connections does not lock out root") {
  if (::geteuid() != 0) {
    MESSAGE("skipped: needs root to run a client as nobody");
    return;
  }
  RpcServerOptions options;
  options.max_connections = 2;
  Harness h(options);
  const std::string path = h.dir.path() + "/w.sock";
  int fd = WorldSocket(h.dir.path(), path);
  REQUIRE(fd >= 0);
  REQUIRE(h.server->Adopt(fd).ok());
  int full[2];  // nobody -> test: the maximum is reached
  int done[2];  // test -> nobody: root has had its turn
  REQUIRE(::pipe(full) == 0);
  REQUIRE(::pipe(done) == 0);
  bool root_served = false;
  ClientThread root(&h.loop, [&] {
    char byte = 0;
    if (WaitReadable(full[0], kWait) && ::read(full[0], &byte, 1) == 1) {
      root_served = HandshakeWorks(path);
    }
    (void)!::write(done[1], "d", 1);
  });
  int rc = RunAsNobody(h, {}, [&] {
    Client a, b, c;
    if (!a.Connect(path, kWait).ok() || !b.Connect(path, kWait).ok()) return 10;
    if (!c.Connect(path, kWait).ok()) return 11;
    if (CodeOfLine(c.ReadLine(kWait)) != -32004) return 12;  // a and b hold the maximum
    (void)!::write(full[1], "f", 1);
    char byte = 0;
    return ::read(done[0], &byte, 1) == 1 ? 0 : 13;
  });
  CHECK(rc == 0);
  CHECK(h.LoopUntil([&] { return root.done(); }));
  CHECK(root_served);
  for (int p : {full[0], full[1], done[0], done[1]}) ::close(p);
}

}  // namespace
}  // namespace picoflow::test
