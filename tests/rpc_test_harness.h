#pragma once
// Test harness for the control socket: a real uv loop and RpcServer on a
// temporary socket, driven by the blocking Client from a thread. The loop
// runs on the test's thread until the client signals it is done; every wait
// has a deadline. Used by rpc_server_test, rpc_socket_test, rpc_peer_test.

#include <doctest/doctest.h>
#include <spdlog/spdlog.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "picoflowd/rpc/rpc_dispatch.h"
#include "picoflowd/rpc/rpc_server.h"
#include "picoflowd/util/uv_handle.h"
#include "protocol/client.h"
#include "protocol/methods.h"
#include "tests/test_util.h"

namespace picoflow::test {

using namespace std::chrono_literals;

// Any single client operation; like every deadline here, it only ends a hang.
inline constexpr auto kWait = 30s;

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
    path = dir.path() + "/ctl/d.sock";
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

  // Runs the loop until `done()` holds (checked before the loop waits for
  // events, so after whatever the last iteration did, requests served in
  // turns included) or the deadline passes; returns whether it held. The
  // default outlasts a client body of a few kWait-bounded calls.
  bool LoopUntil(const std::function<bool()>& done, std::chrono::milliseconds deadline = 120s) {
    struct State {
      const std::function<bool()>& done;
      uv_loop_t* loop;
    } state{done, &loop};
    UvHandle<uv_prepare_t> prepare(&state);
    UvHandle<uv_timer_t> timer(&state);
    uv_prepare_init(&loop, prepare.get());
    prepare.MarkInitialized();
    uv_timer_init(&loop, timer.get());
    timer.MarkInitialized();
    uv_prepare_start(prepare.get(), [](uv_prepare_t* h) noexcept {
      auto* s = OwnerOf<State>(h);
      if (s && s->done()) uv_stop(s->loop);  // the poll of this iteration does not wait
    });
    uv_timer_start(
        timer.get(), [](uv_timer_t* h) noexcept { uv_stop(h->loop); },
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
    uv_walk(
        &loop,
        [](uv_handle_t* h, void* arg) {
          if (!uv_is_closing(h)) ++*static_cast<int*>(arg);
        },
        &n);
    return n;
  }

  uv_loop_t loop{};
  TempDir dir{"pfrpc", "/tmp"};  // short: the socket path must fit sun_path
  std::string path;
  Dispatcher dispatcher;
  std::unique_ptr<RpcServer> server;
  std::vector<std::unique_ptr<Later>> laters;
  std::shared_ptr<RpcCall> held;
  std::atomic<int> held_count{0};
  int hold_close_hooks = 0;
  /// The `who` of every test.record served, in order; on_record runs after each.
  std::vector<std::string> records;
  std::function<void(const std::string&)> on_record;

 private:
  void RegisterTestMethods() {
    dispatcher.Register(
        {.name = "test.later", .access = Access::kRead, .handler = [this](RpcCall& c) {
           laters.push_back(
               std::make_unique<Later>(&loop, 50ms, [call = c.Hold()] { call->Reply("late"); }));
         }});
    dispatcher.Register(
        {.name = "test.stream", .access = Access::kRead, .handler = [this](RpcCall& c) {
           for (int n = 1; n <= 3; ++n) c.Notify("test.progress", {{"n", n}});
           laters.push_back(
               std::make_unique<Later>(&loop, 30ms, [call = c.Hold()] { call->Reply("end"); }));
         }});
    dispatcher.Register(
        {.name = "test.hold", .access = Access::kRead, .handler = [this](RpcCall& c) {
           held = c.Hold();
           ++held_count;
           c.OnClose([this] { ++hold_close_hooks; });
         }});
    dispatcher.Register({.name = "test.big", .access = Access::kRead, .handler = [](RpcCall& c) {
                           c.Reply(std::string(64 * 1024, 'b'));
                         }});
    dispatcher.Register({.name = "test.write", .handler = [](RpcCall& c) { c.Reply(true); }});
    dispatcher.Register({.name = "test.record",
                         .access = Access::kRead,
                         .open_params = true,
                         .handler = [this](RpcCall& c) {
                           records.push_back(c.Param<std::string>("who"));
                           c.Reply(true);
                           if (on_record) on_record(records.back());
                         }});
    dispatcher.Register({.name = "test.throw", .access = Access::kRead, .handler = [](RpcCall&) {
                           throw std::runtime_error("boom");
                         }});
  }
};

// Connects, CHECKing success (safe on a client thread).
inline Client Connected(const std::string& path) {
  Client c;
  auto ok = c.Connect(path, kWait);
  CHECK_MESSAGE(ok.ok(), (ok.ok() ? "" : ok.error().message));
  return c;
}

// The "error.code" of a raw response line, or 0.
inline int CodeOfLine(const Result<std::string>& line) {
  if (!line) return 0;
  json j = json::parse(*line, nullptr, false);
  if (!j.is_object() || !j.contains("error")) return 0;
  return j["error"]["code"].get<int>();
}

inline std::string VersionRequest(int id) {
  return RequestLine(id, method::kDaemonVersion, json::object());
}

/// `count` test.record requests of `who`, ids 1..count, as one string.
inline std::string RecordRequests(const std::string& who, int count) {
  std::string lines;
  for (int i = 1; i <= count; ++i) lines += RequestLine(i, "test.record", {{"who", who}});
  return lines;
}

inline bool HandshakeWorks(const std::string& path) {
  Client c = Connected(path);
  auto v = c.Handshake(kWait);
  CHECK_MESSAGE(v.ok(), (v.ok() ? "" : v.error().message));
  return v.ok() && (*v)["protocol"] == kProtocolVersion;
}

}  // namespace picoflow::test
