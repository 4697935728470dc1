// A real uv loop and RpcServer on a temporary socket, driven by the blocking
// Client from a thread (or from a forked child running as another uid). The
// loop runs on the test's thread until the client signals it is done; every
// wait has a deadline.

#include "picoflowd/rpc_server.h"

#include <doctest/doctest.h>
#include <grp.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "picoflowd/rpc_dispatch.h"
#include "picoflowd/uv_handle.h"
#include "protocol/client.h"
#include "protocol/methods.h"

namespace picoflow {
namespace {

using namespace std::chrono_literals;

constexpr auto kWait = 5000ms;  // any single client operation

// A fresh directory under /tmp (short, for sun_path), removed with its contents.
struct TempDir {
  std::string path;
  TempDir() {
    char name[] = "/tmp/pfrpc.XXXXXX";
    path = ::mkdtemp(name);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

// Runs `fn` once on the loop after `delay`; owns its timer.
class Later {
 public:
  Later(uv_loop_t* loop, std::chrono::milliseconds delay, std::function<void()> fn)
      : timer_(this), fn_(std::move(fn)) {
    if (uv_timer_init(loop, timer_.get()) == 0) timer_.MarkInitialized();
    uv_timer_start(timer_.get(), OnTimer, static_cast<std::uint64_t>(delay.count()), 0);
  }

 private:
  static void OnTimer(uv_timer_t* t) noexcept {
    auto* self = OwnerOf<Later>(t);
    if (self == nullptr) return;
    auto fn = std::move(self->fn_);
    self->timer_.Close();
    try {
      if (fn) fn();
    } catch (...) {
    }
  }
  UvHandle<uv_timer_t> timer_;
  std::function<void()> fn_;
};

// Runs test client code on its own thread; wakes the loop when it is done.
class ClientThread {
 public:
  ClientThread(uv_loop_t* loop, std::function<void()> body) : async_(this) {
    if (uv_async_init(loop, async_.get(), [](uv_async_t*) noexcept {}) == 0) {
      async_.MarkInitialized();
    }
    thread_ = std::thread([this, body = std::move(body)] {
      body();
      done_ = true;
      uv_async_send(async_.get());
    });
  }
  ~ClientThread() {
    thread_.join();  // bounded: every client call has its own timeout
    async_.Close();
  }
  bool done() const { return done_; }

 private:
  UvHandle<uv_async_t> async_;
  std::atomic<bool> done_{false};
  std::thread thread_;
};

class Harness {
 public:
  explicit Harness(RpcServerOptions options = {}) {
    spdlog::set_level(spdlog::level::off);  // refusals here are expected
    uv_loop_init(&loop);
    path = dir.path + "/ctl/d.sock";
    if (options.socket_path.empty()) options.socket_path = path;
    path = options.socket_path;
    server = std::make_unique<RpcServer>(&loop, options, dispatcher);
    RegisterTestMethods();
  }

  ~Harness() {
    server->Close();
    held.reset();
    laters.clear();
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop) == 0);
  }

  // Runs the loop until `done()` holds (checked after every loop turn) or
  // the deadline passes; returns whether it held.
  bool LoopUntil(const std::function<bool()>& done, std::chrono::milliseconds deadline = 10s) {
    struct State {
      const std::function<bool()>& done;
      uv_loop_t* loop;
    } state{done, &loop};
    UvHandle<uv_check_t> check(&state);
    UvHandle<uv_timer_t> timer(&state);
    uv_check_init(&loop, check.get());
    check.MarkInitialized();
    uv_timer_init(&loop, timer.get());
    timer.MarkInitialized();
    uv_check_start(check.get(), [](uv_check_t* h) noexcept {
      auto* s = OwnerOf<State>(h);
      if (s && s->done()) uv_stop(s->loop);
    });
    uv_timer_start(timer.get(), [](uv_timer_t* h) noexcept { uv_stop(h->loop); },
                   static_cast<std::uint64_t>(deadline.count()), 0);
    if (!done()) uv_run(&loop, UV_RUN_DEFAULT);
    const bool held_in_time = done();
    CHECK_MESSAGE(held_in_time, "deadline passed");
    return held_in_time;
  }

  // Runs `body` on a client thread while the loop serves it.
  void WithClient(std::function<void()> body) {
    ClientThread client(&loop, std::move(body));
    LoopUntil([&] { return client.done(); });
  }

  // The handles not closing, as uv_walk sees them.
  int LiveHandles() {
    int n = 0;
    uv_walk(&loop, [](uv_handle_t* h, void* arg) {
      if (!uv_is_closing(h)) ++*static_cast<int*>(arg);
    }, &n);
    return n;
  }

  uv_loop_t loop{};
  TempDir dir;
  std::string path;
  Dispatcher dispatcher;
  std::unique_ptr<RpcServer> server;
  std::vector<std::unique_ptr<Later>> laters;
  std::shared_ptr<RpcCall> held;
  std::atomic<int> held_count{0};
  int hold_close_hooks = 0;

 private:
  void RegisterTestMethods() {
    dispatcher.Register({.name = "test.later", .access = Access::kRead, .handler = [this](RpcCall& c) {
                           laters.push_back(std::make_unique<Later>(
                               &loop, 50ms, [call = c.Hold()] { call->Reply("late"); }));
                         }});
    dispatcher.Register({.name = "test.stream", .access = Access::kRead, .handler = [this](RpcCall& c) {
                           for (int n = 1; n <= 3; ++n) c.Notify("test.progress", {{"n", n}});
                           laters.push_back(std::make_unique<Later>(
                               &loop, 30ms, [call = c.Hold()] { call->Reply("end"); }));
                         }});
    dispatcher.Register({.name = "test.hold", .access = Access::kRead, .handler = [this](RpcCall& c) {
                           held = c.Hold();
                           ++held_count;
                           c.OnClose([this] { ++hold_close_hooks; });
                         }});
    dispatcher.Register({.name = "test.big", .access = Access::kRead, .handler = [](RpcCall& c) {
                           c.Reply(std::string(64 * 1024, 'b'));
                         }});
    dispatcher.Register({.name = "test.write", .handler = [](RpcCall& c) { c.Reply(true); }});
    dispatcher.Register({.name = "test.throw", .access = Access::kRead, .handler = [](RpcCall&) {
                           throw std::runtime_error("boom");
                         }});
  }
};

// Connects, CHECKing success (safe on a client thread).
Client Connected(const std::string& path) {
  Client c;
  auto ok = c.Connect(path, kWait);
  CHECK_MESSAGE(ok.ok(), (ok.ok() ? "" : ok.error().message));
  return c;
}

// The "error.code" of a raw response line, or 0.
int CodeOfLine(const Result<std::string>& line) {
  if (!line) return 0;
  json j = json::parse(*line, nullptr, false);
  if (!j.is_object() || !j.contains("error")) return 0;
  return j["error"]["code"].get<int>();
}

std::string VersionRequest(int id) {
  return RequestLine(id, method::kDaemonVersion, json::object());
}

bool HandshakeWorks(const std::string& path) {
  Client c = Connected(path);
  auto v = c.Handshake(kWait);
  CHECK_MESSAGE(v.ok(), (v.ok() ? "" : v.error().message));
  return v.ok() && (*v)["protocol"] == kProtocolVersion;
}

TEST_CASE("protocol faults over the socket are answered in order and the connection stays open") {
  Harness h;
  REQUIRE(h.server->Listen().ok());
  std::vector<int> codes;
  std::string last;
  h.WithClient([&] {
    Client c = Connected(h.path);
    CHECK(c.SendRaw("{bad json\n"
                    "[1]\n"
                    "42\n"
                    R"({"jsonrpc":"1.0","id":1,"method":"daemon.version"})" "\n"
                    "\n" +
                        RequestLine(2, "no.such", json::object()) +
                        RequestLine(3, method::kDaemonVersion, {{"protocol", "one"}}) +
                        RequestLine(4, "test.throw", json::object()) + VersionRequest(5),
                    kWait)
              .ok());
    for (int i = 0; i < 8; ++i) {
      auto line = c.ReadLine(kWait);
      codes.push_back(CodeOfLine(line));
      if (line) last = *line;
    }
  });
  CHECK(codes == std::vector<int>{-32700, -32600, -32600, -32600, -32601, -32602, -32603, 0});
  CHECK(json::parse(last)["result"]["protocol"] == kProtocolVersion);
}

TEST_CASE("the handshake returns both versions and a mismatch is refused by name") {
  Harness h;
  REQUIRE(h.server->Listen().ok());
  h.WithClient([&] {
    Client c = Connected(h.path);
    auto v = c.Handshake(kWait);
    CHECK(v.ok());
    if (v) CHECK((*v)["version"] == PICOFLOW_VERSION);
    auto bad = c.Call(method::kDaemonVersion, {{"protocol", kProtocolVersion + 1}}, kWait);
    CHECK_FALSE(bad.ok());
    if (!bad) {
      CHECK(bad.error().code == ErrorCode::kConflict);
      CHECK(bad.error().message.find("protocol mismatch") != std::string::npos);
    }
    CHECK(c.last_rpc_error().has_value());
    if (c.last_rpc_error()) CHECK(c.last_rpc_error()->code == -32006);
  });
}

TEST_CASE("unknown methods and wrong param types come back as errors through the client") {
  Harness h;
  REQUIRE(h.server->Listen().ok());
  h.WithClient([&] {
    Client c = Connected(h.path);
    auto unknown = c.Call("no.such", json::object(), kWait);
    CHECK_FALSE(unknown.ok());
    CHECK((c.last_rpc_error() && c.last_rpc_error()->code == -32601));
    auto wrong = c.Call(method::kDaemonVersion, {{"protocol", true}}, kWait);
    CHECK_FALSE(wrong.ok());
    CHECK((c.last_rpc_error() && c.last_rpc_error()->code == -32602));
    if (!wrong) CHECK(wrong.error().message == "daemon.version: param 'protocol' must be an integer");
    CHECK(c.Call(method::kDaemonVersion, json::object(), kWait).ok());
    CHECK_FALSE(c.last_rpc_error().has_value());
  });
}

TEST_CASE("a 2 MiB line gets one error and then the connection is closed") {
  Harness h;
  REQUIRE(h.server->Listen().ok());
  int code = 0;
  bool closed_after = false;
  h.WithClient([&] {
    Client c = Connected(h.path);
    (void)c.SendRaw(std::string(2 * 1024 * 1024, 'x') + "\n", kWait);  // may fail once closed
    code = CodeOfLine(c.ReadLine(kWait));
    auto next = c.ReadLine(kWait);
    closed_after = !next.ok() && next.error().code == ErrorCode::kIo;
  });
  CHECK(code == -32600);
  CHECK(closed_after);
  CHECK(h.LoopUntil([&] { return h.server->connection_count() == 0; }));
  CHECK(h.server->stats().closed_overlong == 1);
}

TEST_CASE("half a line then a disconnect is cleaned up and the server keeps serving") {
  Harness h;
  REQUIRE(h.server->Listen().ok());
  h.WithClient([&] {
    Client c = Connected(h.path);
    CHECK(c.SendRaw(R"({"jsonrpc":"2.0","id":1,"meth)", kWait).ok());
  });
  CHECK(h.LoopUntil([&] { return h.server->connection_count() == 0; }));
  bool works = false;
  h.WithClient([&] { works = HandshakeWorks(h.path); });
  CHECK(works);
}

TEST_CASE("1,000 connections opened and dropped leave no connection or handle behind") {
  Harness h;
  REQUIRE(h.server->Listen().ok());
  const int baseline = h.LiveHandles();
  bool works = false;
  h.WithClient([&] {
    for (int i = 0; i < 1000; ++i) {
      Client c;
      if (!c.Connect(h.path, kWait).ok()) {
        CHECK_MESSAGE(false, "connection " << i << " failed");
        return;
      }
      if (i % 3 == 1) (void)c.SendRaw("{\"jsonrpc\":", kWait);
      if (i % 5 == 2) (void)c.SendRaw(VersionRequest(i), kWait);  // never read
    }
    works = HandshakeWorks(h.path);
  });
  CHECK(works);
  CHECK(h.LoopUntil([&] { return h.server->connection_count() == 0; }));
  CHECK(h.server->stats().accepted >= 1001);
  CHECK(h.LiveHandles() == baseline);
}

TEST_CASE("a client that never reads is closed at the output bound while others are served") {
  RpcServerOptions options;
  options.max_pending_output = 256 * 1024;
  Harness h(options);
  REQUIRE(h.server->Listen().ok());
  bool send_failed = false;
  bool others_served = false;
  h.WithClient([&] {
    Client slow = Connected(h.path);
    const std::string request = RequestLine(1, "test.big", json::object());
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!send_failed && std::chrono::steady_clock::now() < deadline) {
      send_failed = !slow.SendRaw(request, kWait).ok();
    }
    others_served = HandshakeWorks(h.path);
  });
  CHECK(send_failed);
  CHECK(others_served);
  CHECK(h.server->stats().closed_slow_reader == 1);
}

TEST_CASE("connections past the maximum are told why and closed") {
  RpcServerOptions options;
  options.max_connections = 2;
  Harness h(options);
  REQUIRE(h.server->Listen().ok());
  int code = 0;
  bool first_still_works = false;
  h.WithClient([&] {
    Client a = Connected(h.path);
    Client b = Connected(h.path);
    CHECK(a.Handshake(kWait).ok());
    CHECK(b.Handshake(kWait).ok());
    Client c = Connected(h.path);
    auto refused = c.Handshake(kWait);
    CHECK_FALSE(refused.ok());
    if (!refused) CHECK(refused.error().code == ErrorCode::kUnavailable);
    if (c.last_rpc_error()) code = c.last_rpc_error()->code;
    first_still_works = a.Call(method::kDaemonVersion, json::object(), kWait).ok();
  });
  CHECK(code == -32004);
  CHECK(first_still_works);
  CHECK(h.server->stats().refused_busy == 1);
}

TEST_CASE("an async reply comes after a delay, after a quicker reply to a later request") {
  Harness h;
  REQUIRE(h.server->Listen().ok());
  std::vector<std::string> order;
  h.WithClient([&] {
    Client c = Connected(h.path);
    auto id = c.Send("test.later", json::object(), kWait);
    CHECK(id.ok());
    if (!id) return;
    if (c.Call(method::kDaemonVersion, json::object(), kWait).ok()) order.push_back("version");
    auto late = c.Await(*id, {}, kWait);
    if (late.ok()) order.push_back(late->get<std::string>());
  });
  CHECK(order == std::vector<std::string>{"version", "late"});
}

TEST_CASE("notifications stream to the caller before its reply") {
  Harness h;
  REQUIRE(h.server->Listen().ok());
  std::vector<int> notes;
  std::string result;
  h.WithClient([&] {
    Client c = Connected(h.path);
    auto r = c.Call("test.stream", json::object(),
                    [&](const Notification& n) { notes.push_back(n.params["n"].get<int>()); }, kWait);
    if (r.ok()) result = r->get<std::string>();
  });
  CHECK(notes == std::vector<int>{1, 2, 3});
  CHECK(result == "end");
}

TEST_CASE("notifications wait in a queue for a caller without a handler") {
  Harness h;
  REQUIRE(h.server->Listen().ok());
  std::vector<int> notes;
  h.WithClient([&] {
    Client c = Connected(h.path);
    CHECK(c.Call("test.stream", json::object(), kWait).ok());
    for (int i = 0; i < 3; ++i) {
      auto n = c.ReadNotification(kWait);
      if (n) notes.push_back(n->params["n"].get<int>());
    }
    auto none = c.ReadNotification(100ms);
    CHECK((!none.ok() && none.error().code == ErrorCode::kUnavailable));
  });
  CHECK(notes == std::vector<int>{1, 2, 3});
}

TEST_CASE("a reply after the client left is dropped and the call's close hook has run") {
  Harness h;
  REQUIRE(h.server->Listen().ok());
  h.WithClient([&] {
    Client c = Connected(h.path);
    CHECK(c.Send("test.hold", json::object(), kWait).ok());
    // Requests of one connection are dispatched in order: once this is
    // answered, test.hold is held.
    CHECK(c.Call(method::kDaemonVersion, json::object(), kWait).ok());
  });
  CHECK(h.LoopUntil([&] { return h.hold_close_hooks == 1; }));
  REQUIRE(h.held != nullptr);
  CHECK_FALSE(h.held->connected());
  h.held->Notify("test.progress", json::object());
  h.held->Reply("nobody hears this");
  CHECK(h.held->finished());
}

TEST_CASE("closing the server ends open connections and runs pending calls' close hooks") {
  Harness h;
  REQUIRE(h.server->Listen().ok());
  bool saw_end = false;
  ClientThread client(&h.loop, [&] {
    Client c = Connected(h.path);
    CHECK(c.Send("test.hold", json::object(), kWait).ok());
    auto line = c.ReadLine(kWait);
    saw_end = !line.ok() && line.error().code == ErrorCode::kIo;
  });
  CHECK(h.LoopUntil([&] { return h.held_count == 1; }));
  h.server->Close();
  CHECK(h.hold_close_hooks == 1);
  CHECK_FALSE(h.server->listening());
  CHECK(h.LoopUntil([&] { return client.done(); }));
  CHECK(saw_end);
  CHECK_FALSE(std::filesystem::exists(h.path));
}

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
  ::mkdir((h.dir.path + "/ctl").c_str(), 0700);
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

  const std::string plain = h.dir.path + "/ctl/plain";
  { std::FILE* f = std::fopen(plain.c_str(), "w"); std::fclose(f); }
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
  options.socket_path = dir.path + "/sub/" + std::string(110, 's');
  Harness h(options);
  auto refused = h.server->Listen();
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code == ErrorCode::kInvalid);
  CHECK(refused.error().message.find("more than the 107") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir.path + "/sub"));
}

TEST_CASE("the socket directory is created 0700 and the socket is 0600") {
  Harness h;
  REQUIRE(h.server->Listen().ok());
  struct stat dir_st{}, sock_st{};
  REQUIRE(::stat((h.dir.path + "/ctl").c_str(), &dir_st) == 0);
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
  struct stat dir_st{}, sock_st{};
  REQUIRE(::stat((h.dir.path + "/ctl").c_str(), &dir_st) == 0);
  REQUIRE(::stat(h.path.c_str(), &sock_st) == 0);
  CHECK((dir_st.st_mode & 07777) == 0750);
  CHECK(dir_st.st_gid == 4242);
  CHECK((sock_st.st_mode & 07777) == 0660);
  CHECK(sock_st.st_gid == 4242);
}

TEST_CASE("an unsafe socket directory is refused with the fix in the message") {
  Harness h;
  const std::string dir = h.dir.path + "/ctl";
  ::mkdir(dir.c_str(), 0700);
  ::chmod(dir.c_str(), 0777);
  auto open_dir = h.server->Listen();
  REQUIRE_FALSE(open_dir.ok());
  CHECK(open_dir.error().message ==
        "socket directory " + dir + " is writable by group or others (mode 0777): chmod 0700 " + dir);
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

// --- peers of other uids: a forked child drops to `nobody` and connects to
// a socket the test opened to everyone (the kernel's credentials are the last
// line of defence behind the directory's mode).

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
  const std::string path = h.dir.path + "/w.sock";
  int fd = WorldSocket(h.dir.path, path);
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
  const std::string path = h.dir.path + "/w.sock";
  int fd = WorldSocket(h.dir.path, path);
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

TEST_CASE("adopting an fd that is not a listening Unix socket is refused") {
  Harness h;
  int fds[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
  auto refused = h.server->Adopt(fds[0]);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code == ErrorCode::kInvalid);
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST_CASE("a client of a missing daemon is told it is unreachable, with the path") {
  TempDir dir;
  Client c;
  auto r = c.Connect(dir.path + "/none.sock", 100ms);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::kUnavailable);
  CHECK(r.error().message.find(dir.path + "/none.sock") != std::string::npos);
}

}  // namespace
}  // namespace picoflow
