#include "picoflowd/util/sd_notify.h"

#include <doctest/doctest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <vector>

namespace picoflow {
namespace {

using std::chrono::microseconds;

TEST_CASE("the watchdog interval is taken only when it is a positive number for this process") {
  CHECK(ParseWatchdogInterval("200000", "", 42) == microseconds(200000));
  CHECK(ParseWatchdogInterval("200000", "42", 42) == microseconds(200000));
  CHECK_FALSE(ParseWatchdogInterval("200000", "43", 42).has_value());
  CHECK_FALSE(ParseWatchdogInterval("200000", "x", 42).has_value());
  CHECK_FALSE(ParseWatchdogInterval("", "", 42).has_value());
  CHECK_FALSE(ParseWatchdogInterval("0", "", 42).has_value());
  CHECK_FALSE(ParseWatchdogInterval("-5", "", 42).has_value());
  CHECK_FALSE(ParseWatchdogInterval("12s", "", 42).has_value());
}

// A datagram socket the test owns, bound to a path or an abstract name.
struct Receiver {
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  std::string address;

  explicit Receiver(bool abstract) {
    const std::string name =
        "picoflow-sd-test-" + std::to_string(getpid()) + (abstract ? "a" : "p");
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    socklen_t len = 0;
    if (abstract) {
      address = "@" + name;
      std::memcpy(addr.sun_path + 1, name.data(), name.size());
      len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
    } else {
      address = "/tmp/" + name;
      unlink(address.c_str());
      std::memcpy(addr.sun_path, address.data(), address.size());
      len = sizeof(addr);
    }
    REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&addr), len) == 0);
    timeval tv{2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  }
  ~Receiver() {
    close(fd);
    if (address[0] == '/') unlink(address.c_str());
  }
  std::string Next() const {
    char buf[512];
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "";
  }
};

TEST_CASE("READY, STATUS (only when it changed) and STOPPING reach a path or an abstract socket") {
  for (bool abstract : {false, true}) {
    Receiver r(abstract);
    uv_loop_t loop{};
    REQUIRE(uv_loop_init(&loop) == 0);
    {
      SdNotifier n(&loop, r.address, std::nullopt);
      CHECK(n.enabled());
      n.Ready("0 active runs");
      n.Status("0 active runs");
      n.Status("1 active run");
      n.Stopping();
      std::vector<std::string> got = {r.Next(), r.Next(), r.Next()};
      CHECK(got == std::vector<std::string>{"READY=1\nSTATUS=0 active runs", "STATUS=1 active run",
                                            "STOPPING=1\nSTATUS=stopping"});
      CHECK_FALSE(uv_loop_alive(&loop));  // no watchdog asked for: no handle at all
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop) == 0);
  }
}

// Counts the WATCHDOG=1 datagrams waiting at `fd`, without blocking.
int TakePings(int fd) {
  int pings = 0;
  char buf[512];
  for (ssize_t n; (n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0;) {
    if (std::string(buf, static_cast<std::size_t>(n)) == "WATCHDOG=1") ++pings;
  }
  return pings;
}

// Watches a receiver from the loop: once it has `enough` pings, or at the
// deadline (which only ends a hang), closes the notifier and itself.
struct PingWatch {
  static constexpr int kEnough = 5;
  SdNotifier* notifier;
  int fd;
  int pings = 0;
  bool stopped = false;
  std::chrono::steady_clock::time_point stopped_at{};
  uv_poll_t readable{};
  uv_timer_t deadline{};

  void Stop() {
    if (stopped) return;
    stopped = true;
    stopped_at = std::chrono::steady_clock::now();
    notifier->Close();
    uv_close(reinterpret_cast<uv_handle_t*>(&readable), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&deadline), nullptr);
  }
};

TEST_CASE("the watchdog pings every half interval after READY and stops at Close") {
  Receiver r(false);
  uv_loop_t loop{};
  // The loop's clock starts no earlier than this: the watchdog timer counts
  // its half intervals from it.
  const auto loop_start = std::chrono::steady_clock::now();
  REQUIRE(uv_loop_init(&loop) == 0);
  {
    SdNotifier n(&loop, r.address, microseconds(20000));
    CHECK_FALSE(uv_loop_alive(&loop));
    n.Ready("ok");
    CHECK(r.Next() == "READY=1\nSTATUS=ok");
    CHECK(r.Next() == "WATCHDOG=1");
    // Runs until five more pings came (a busy machine may delay them, never
    // advance them), then Close must leave the loop nothing to run.
    PingWatch watch{&n, r.fd};
    watch.readable.data = &watch;
    watch.deadline.data = &watch;
    REQUIRE(uv_poll_init(&loop, &watch.readable, r.fd) == 0);
    uv_poll_start(&watch.readable, UV_READABLE, [](uv_poll_t* p, int, int) {
      auto* w = static_cast<PingWatch*>(p->data);
      w->pings += TakePings(w->fd);
      if (w->pings >= PingWatch::kEnough) w->Stop();
    });
    REQUIRE(uv_timer_init(&loop, &watch.deadline) == 0);
    uv_timer_start(
        &watch.deadline, [](uv_timer_t* t) { static_cast<PingWatch*>(t->data)->Stop(); }, 60000, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    watch.pings += TakePings(r.fd);  // sent before Close, not read yet
    CHECK(watch.pings >= PingWatch::kEnough);
    // Never more often than every 10 ms of the loop's clock (+2 for its
    // rounding to whole milliseconds), however fast or slow the machine.
    const double ms =
        std::chrono::duration<double, std::milli>(watch.stopped_at - loop_start).count();
    INFO(watch.pings << " pings in " << ms << " ms");
    CHECK(watch.pings <= ms / 10 + 2);
  }
  CHECK(uv_loop_close(&loop) == 0);
}

TEST_CASE("without NOTIFY_SOCKET, or with one that is not a path, nothing is sent") {
  uv_loop_t loop{};
  REQUIRE(uv_loop_init(&loop) == 0);
  {
    SdNotifier none(&loop, "", microseconds(20000));
    SdNotifier vsock(&loop, "vsock:2:1234", microseconds(20000));
    for (SdNotifier* n : {&none, &vsock}) {
      CHECK_FALSE(n->enabled());
      n->Ready("x");
      CHECK_FALSE(n->Send("STATUS=x"));
    }
    CHECK_FALSE(uv_loop_alive(&loop));
  }
  CHECK(uv_loop_close(&loop) == 0);
}

}  // namespace
}  // namespace picoflow
