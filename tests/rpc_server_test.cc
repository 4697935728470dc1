// RpcServer and Client over a real socket: framing faults, bounds, slow and
// vanishing clients, async replies and notifications, shutdown.

#include "picoflowd/rpc/rpc_server.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <numeric>

#include "tests/rpc_test_harness.h"

namespace picoflow::test {
namespace {

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
                    R"({"jsonrpc":"1.0","id":1,"method":"daemon.version"})"
                    "\n"
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

TEST_CASE("a client fails fast against a daemon of another protocol, naming both versions") {
  Harness h;
  h.dispatcher.Register({.name = method::kDaemonVersion,
                         .access = Access::kRead,
                         .open_params = true,
                         .handler = [](RpcCall& c) {
                           c.Reply({{"protocol", 2}, {"version", "9.9"}});
                         }});
  REQUIRE(h.server->Listen().ok());
  std::string message;
  h.WithClient([&] {
    Client c = Connected(h.path);
    auto v = c.Handshake(kWait);
    CHECK_FALSE(v.ok());
    if (!v) {
      CHECK(v.error().code == ErrorCode::kConflict);
      message = v.error().message;
    }
  });
  CHECK(message ==
        "protocol mismatch: the client speaks protocol 1, picoflowd 9.9 speaks "
        "protocol 2 (" +
            h.path + ")");
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
    if (!wrong)
      CHECK(wrong.error().message == "daemon.version: param 'protocol' must be an integer");
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
  });
  // The server notices each hang-up on its own loop turn; once it has, it
  // must still serve (a busy machine may lag behind the 1,000 closes, and
  // under ASan even behind the connects: those still in the backlog are
  // accepted in one go, and until their hang-ups are read they count against
  // the uid's cap of 64, which then refuses the next client).
  CHECK(h.LoopUntil(
      [&] { return h.server->stats().accepted >= 1000 && h.server->connection_count() == 0; }));
  h.WithClient([&] { works = HandshakeWorks(h.path); });
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
    const auto deadline = std::chrono::steady_clock::now() + 60s;  // only ends a hang
    while (!send_failed && std::chrono::steady_clock::now() < deadline) {
      send_failed = !slow.SendRaw(request, kWait).ok();
    }
    others_served = HandshakeWorks(h.path);
  });
  CHECK(send_failed);
  CHECK(others_served);
  CHECK(h.server->stats().closed_slow_reader == 1);
}

TEST_CASE("connections of one uid past its maximum are told why and closed") {
  RpcServerOptions options;
  options.max_connections = 10;  // room left: the uid's own cap refuses
  options.max_connections_per_uid = 2;
  Harness h(options);
  REQUIRE(h.server->Listen().ok());
  int code = 0;
  std::string message;
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
    if (c.last_rpc_error()) message = c.last_rpc_error()->message;
    first_still_works = a.Call(method::kDaemonVersion, json::object(), kWait).ok();
  });
  CHECK(code == -32004);
  CHECK(message == "picoflowd is serving its maximum of 2 connections of uid " +
                       std::to_string(::geteuid()) + "; try again later");
  CHECK(first_still_works);
  CHECK(h.server->stats().refused_busy == 1);
}

TEST_CASE("a last request without its newline is answered when the client stops sending") {
  Harness h;
  REQUIRE(h.server->Listen().ok());
  std::vector<std::string> lines;
  h.WithClient([&] {
    Client c = Connected(h.path);
    std::string request = VersionRequest(7);
    request.pop_back();  // its '\n'
    CHECK(c.SendRaw(VersionRequest(6) + request, kWait).ok());
    CHECK(c.ShutdownSending().ok());
    for (auto line = c.ReadLine(kWait); line.ok(); line = c.ReadLine(kWait)) {
      lines.push_back(json::parse(*line)["id"].dump());
    }
  });
  CHECK(lines == std::vector<std::string>{"6", "7"});
  CHECK(h.LoopUntil([&] { return h.server->connection_count() == 0; }));
}

TEST_CASE("an idle connection is closed after the idle timeout; one with a call pending is not") {
  RpcServerOptions options;
  // 60 s by default. Short, but long enough for a slow machine to get the
  // first request of `busy` to the server before `busy` counts as idle.
  options.idle_timeout = 1s;
  Harness h(options);
  REQUIRE(h.server->Listen().ok());
  bool idle_closed = false;
  Client busy;  // outlives the client thread: its connection stays open
  h.WithClient([&] {
    busy = Connected(h.path);
    CHECK(busy.Send("test.hold", json::object(), kWait).ok());
    // Requests of one connection are dispatched in order: once this is
    // answered, test.hold is held, and `busy` has a call pending.
    CHECK(busy.Call(method::kDaemonVersion, json::object(), kWait).ok());
    Client idle = Connected(h.path);  // connected after: its timeout ends later
    CHECK(idle.Handshake(kWait).ok());
    auto end = idle.ReadLine(kWait);
    idle_closed = !end.ok() && end.error().code == ErrorCode::kIo;
  });
  CHECK(idle_closed);
  CHECK(h.server->stats().closed_idle == 1);
  REQUIRE(h.held != nullptr);
  CHECK(h.held->connected());
  CHECK(h.hold_close_hooks == 0);
  // Answered, the call is no longer pending: that connection is idle now.
  h.held->Reply("done");
  CHECK(h.LoopUntil([&] { return h.server->connection_count() == 0; }));
  CHECK(h.server->stats().closed_idle == 2);
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
    auto r = c.Call(
        "test.stream", json::object(),
        [&](const Notification& n) { notes.push_back(n.params["n"].get<int>()); }, kWait);
    if (r.ok()) result = r->get<std::string>();
  });
  CHECK(notes == std::vector<int>{1, 2, 3});
  CHECK(result == "end");
}

TEST_CASE("before_send runs before every notification and every reply") {
  RpcServerOptions options;
  std::atomic<int> calls = 0;  // written on the loop, read on the client thread
  options.before_send = [&] { ++calls; };
  Harness h(options);
  REQUIRE(h.server->Listen().ok());
  std::vector<int> seen;  // calls made before each message arrived
  h.WithClient([&] {
    Client c = Connected(h.path);
    calls = 0;  // the handshake's reply is not counted
    auto r = c.Call(
        "test.stream", json::object(), [&](const Notification&) { seen.push_back(calls); }, kWait);
    if (r.ok()) seen.push_back(calls);
  });
  // Read on the client thread after each message was written: the counter
  // had moved past that message's own call by then.
  REQUIRE(seen.size() == 4);
  for (std::size_t i = 0; i < seen.size(); ++i) CHECK(seen[i] >= static_cast<int>(i) + 1);
  CHECK(calls == 4);
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

// The clients below connect and send before the loop first runs: the server
// accepts them together and reads them in one poll, so what it serves first
// does not depend on thread timing.

TEST_CASE("connections with requests waiting are served round-robin, one request each per turn") {
  Harness h;
  REQUIRE(h.server->Listen().ok());
  Client a = Connected(h.path);
  Client b = Connected(h.path);
  Client c = Connected(h.path);
  REQUIRE(a.SendRaw(RecordRequests("a", 5), kWait).ok());
  REQUIRE(b.SendRaw(RecordRequests("b", 5), kWait).ok());
  REQUIRE(c.SendRaw(RecordRequests("c", 5), kWait).ok());
  REQUIRE(h.LoopUntil([&] { return h.records.size() == 15; }));
  // Each round serves one request of each connection, in the same order.
  std::vector<std::string> round(h.records.begin(), h.records.begin() + 3);
  std::vector<std::string> sorted = round;
  std::sort(sorted.begin(), sorted.end());
  CHECK(sorted == std::vector<std::string>{"a", "b", "c"});
  std::vector<std::string> expected;
  for (int i = 0; i < 5; ++i) expected.insert(expected.end(), round.begin(), round.end());
  CHECK(h.records == expected);
  CHECK_FALSE(h.server->turns()->active());
}

TEST_CASE("a request that arrives behind another client's 1,000 waits for one of them, not all") {
  RpcServerOptions options;
  options.turn_budget = std::chrono::nanoseconds(0);  // one request per loop iteration
  Harness h(options);
  REQUIRE(h.server->Listen().ok());
  Client busy = Connected(h.path);
  Client quick = Connected(h.path);
  REQUIRE(busy.SendRaw(RecordRequests("busy", 1000), kWait).ok());
  // Sent once the busy client is being served: it arrives behind its 1,000.
  h.on_record = [&](const std::string&) {
    if (h.records.size() == 1) CHECK(quick.SendRaw(RecordRequests("quick", 1), kWait).ok());
  };
  REQUIRE(h.LoopUntil([&] { return h.records.size() == 1001; }));
  const auto quick_at = std::find(h.records.begin(), h.records.end(), "quick") - h.records.begin();
  CHECK(quick_at == 2);  // the busy client's first, the request in turn when it came, then it
  CHECK(h.server->turns()->turns() >= 1001);
}

TEST_CASE("requests of a client that hung up before they were served are dropped, not executed") {
  Harness h;
  REQUIRE(h.server->Listen().ok());
  {
    Client gone = Connected(h.path);
    REQUIRE(gone.SendRaw(RecordRequests("gone", 100), kWait).ok());
  }  // closed: nobody would read the answers
  REQUIRE(h.LoopUntil(
      [&] { return h.server->stats().accepted == 1 && h.server->connection_count() == 0; }));
  CHECK(h.records.empty());
  CHECK(h.server->stats().requests_dropped == 100);
  bool works = false;
  h.WithClient([&] { works = HandshakeWorks(h.path); });
  CHECK(works);
}

TEST_CASE("a client that stops sending after 200 pipelined requests still gets every answer") {
  Harness h;
  REQUIRE(h.server->Listen().ok());
  std::vector<int> ids;
  h.WithClient([&] {
    Client c = Connected(h.path);
    std::string requests;
    for (int i = 1; i <= 200; ++i) requests += VersionRequest(i);
    CHECK(c.SendRaw(requests, kWait).ok());
    CHECK(c.ShutdownSending().ok());
    for (auto line = c.ReadLine(kWait); line.ok(); line = c.ReadLine(kWait)) {
      ids.push_back(json::parse(*line)["id"].get<int>());
    }
  });
  std::vector<int> expected(200);
  std::iota(expected.begin(), expected.end(), 1);
  CHECK(ids == expected);
  CHECK(h.server->stats().requests_dropped == 0);
}

TEST_CASE(
    "a connection is not read while its waiting requests reach the bound, and all are served") {
  RpcServerOptions options;
  options.read_ahead_lines = 4;
  Harness h(options);
  REQUIRE(h.server->Listen().ok());
  std::vector<int> ids;
  h.WithClient([&] {
    Client c = Connected(h.path);
    CHECK(c.SendRaw(RecordRequests("one", 1000), kWait).ok());
    for (int i = 0; i < 1000; ++i) {
      auto line = c.ReadLine(kWait);
      if (!line.ok()) break;
      ids.push_back(json::parse(*line)["id"].get<int>());
    }
  });
  std::vector<int> expected(1000);
  std::iota(expected.begin(), expected.end(), 1);
  CHECK(ids == expected);
  CHECK(h.records.size() == 1000);
  REQUIRE(h.LoopUntil([&] { return h.server->connection_count() == 0; }));
  CHECK(h.server->stats().read_pauses > 0);
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
  auto r = c.Connect(dir.path() + "/none.sock", 100ms);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::kUnavailable);
  CHECK(r.error().message.find(dir.path() + "/none.sock") != std::string::npos);
}

}  // namespace
}  // namespace picoflow::test
