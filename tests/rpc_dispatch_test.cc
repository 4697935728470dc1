#include "picoflowd/rpc/rpc_dispatch.h"

#include <doctest/doctest.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "protocol/methods.h"

namespace picoflow {
namespace {

// A channel that records what would be written.
class FakeChannel : public RpcChannel {
 public:
  explicit FakeChannel(Access access) {
    peer_.uid = 1234;
    peer_.pid = 99;
    peer_.access = access;
  }
  const Peer& peer() const override { return peer_; }
  void Send(std::string line) override {
    if (open_) sent.push_back(json::parse(line));
  }
  void CloseAfterFlush() override { close_requested = true; }
  bool open() const override { return open_; }
  void Close() {
    open_ = false;
    RunCloseHooks();
  }

  std::vector<json> sent;
  bool close_requested = false;

 private:
  Peer peer_;
  bool open_ = true;
};

std::string Req(json id, const std::string& method, json params = json::object()) {
  std::string line = RequestLine(id, method, params);
  line.pop_back();
  return line;
}

int CodeOf(const json& response) { return response["error"]["code"].get<int>(); }

struct Fixture {
  Dispatcher dispatcher;
  std::shared_ptr<FakeChannel> channel = std::make_shared<FakeChannel>(Access::kWrite);
  std::shared_ptr<RpcCall> held;

  Fixture() {
    spdlog::set_level(spdlog::level::off);  // the refusals below are expected
    dispatcher.Register(
        {.name = "test.echo",
         .access = Access::kRead,
         .params = {{"text", ParamType::kString, true}, {"times", ParamType::kInteger, false}},
         .handler = [](RpcCall& c) {
           c.Reply({{"text", c.Param<std::string>("text")}, {"times", c.Param<int>("times", 1)}});
         }});
    dispatcher.Register({.name = "test.write", .handler = [](RpcCall& c) { c.Reply(true); }});
    dispatcher.Register({.name = "test.throw", .open_params = true, .handler = [](RpcCall&) {
                           throw std::runtime_error("boom");
                         }});
    dispatcher.Register({.name = "test.param", .open_params = true, .handler = [](RpcCall& c) {
                           c.Reply(c.Param<std::uint8_t>("small"));
                         }});
    dispatcher.Register({.name = "test.silent", .handler = [](RpcCall&) {}});
    dispatcher.Register({.name = "test.hold", .handler = [this](RpcCall& c) { held = c.Hold(); }});
    dispatcher.Register({.name = "test.big",
                         .handler = [](RpcCall& c) { c.Reply(std::string(kMaxReplyBytes, 'x')); }});
  }
  void Line(const std::string& line) { dispatcher.HandleLine(channel, line); }
};

TEST_CASE_FIXTURE(Fixture, "a known method with good params gets its result under its id") {
  Line(Req(5, "test.echo", {{"text", "hi"}}));
  REQUIRE(channel->sent.size() == 1);
  CHECK(channel->sent[0] ==
        json{{"jsonrpc", "2.0"}, {"id", 5}, {"result", {{"text", "hi"}, {"times", 1}}}});
}

TEST_CASE_FIXTURE(Fixture, "protocol faults are answered and the connection stays usable") {
  Line("{oops");
  Line("[1,2]");
  Line(R"({"jsonrpc":"1.0","id":1,"method":"test.echo"})");
  Line(Req(2, "no.such"));
  Line(Req(3, "test.echo", {{"text", 5}}));
  Line(Req(4, "test.echo", json::object()));
  Line(Req(5, "test.echo", {{"text", "a"}, {"colour", 1}}));
  Line(Req(6, "test.echo", json::array({"a"})));
  Line(Req(7, "test.echo", {{"text", "ok"}}));
  REQUIRE(channel->sent.size() == 9);
  std::vector<int> codes;
  for (int i = 0; i < 8; ++i) codes.push_back(CodeOf(channel->sent[i]));
  CHECK(codes == std::vector<int>{-32700, -32600, -32600, -32601, -32602, -32602, -32602, -32602});
  CHECK(channel->sent[3]["error"]["message"] == "unknown method 'no.such'");
  CHECK(channel->sent[4]["error"]["message"] == "test.echo: param 'text' must be a string");
  CHECK(channel->sent[5]["error"]["message"] == "test.echo: missing param 'text'");
  CHECK(channel->sent[6]["error"]["message"] == "test.echo: unknown param 'colour'");
  CHECK(channel->sent[8]["result"]["text"] == "ok");
  CHECK_FALSE(channel->close_requested);
}

TEST_CASE_FIXTURE(Fixture, "a throwing handler gives -32603 and the next request is served") {
  Line(Req(1, "test.throw"));
  Line(Req(2, "test.param", {{"small", 300}}));
  Line(Req(3, "test.param", {{"small", 7}}));
  REQUIRE(channel->sent.size() == 3);
  CHECK(CodeOf(channel->sent[0]) == -32603);
  CHECK(channel->sent[0]["error"]["message"] == "internal error in test.throw: boom");
  CHECK(CodeOf(channel->sent[1]) == -32602);
  CHECK(channel->sent[1]["error"]["message"] ==
        "test.param: param 'small' must be an integer in range");
  CHECK(channel->sent[2]["result"] == 7);
}

TEST_CASE_FIXTURE(Fixture, "notifications run their handler but are never answered") {
  Line(R"({"jsonrpc":"2.0","method":"test.hold"})");
  Line(R"({"jsonrpc":"2.0","method":"no.such"})");
  Line(R"({"jsonrpc":"2.0","method":"test.throw"})");
  REQUIRE(held != nullptr);
  CHECK(held->is_notification());
  held->Reply(1);
  CHECK(channel->sent.empty());
}

TEST_CASE_FIXTURE(Fixture, "a read-only peer may read but not write") {
  channel = std::make_shared<FakeChannel>(Access::kRead);
  Line(Req(1, "test.echo", {{"text", "r"}}));
  Line(Req(2, "test.write"));
  REQUIRE(channel->sent.size() == 2);
  CHECK(channel->sent[0]["result"]["text"] == "r");
  CHECK(CodeOf(channel->sent[1]) == -32005);
  CHECK(channel->sent[1]["error"]["message"] ==
        "permission denied: test.write needs write access; uid 1234 pid 99 has read");
  CHECK_FALSE(channel->close_requested);
}

TEST_CASE_FIXTURE(Fixture, "a peer without access gets -32005 for anything and is closed") {
  channel = std::make_shared<FakeChannel>(Access::kNone);
  Line(Req(8, method::kDaemonVersion));
  REQUIRE(channel->sent.size() == 1);
  CHECK(channel->sent[0]["id"] == 8);
  CHECK(CodeOf(channel->sent[0]) == -32005);
  CHECK(channel->close_requested);

  auto other = std::make_shared<FakeChannel>(Access::kNone);
  dispatcher.HandleLine(other, "garbage");
  REQUIRE(other->sent.size() == 1);
  CHECK(CodeOf(other->sent[0]) == -32005);
  CHECK(other->close_requested);
}

TEST_CASE_FIXTURE(Fixture, "an async call streams notifications, then answers exactly once") {
  Line(Req("w", "test.hold"));
  REQUIRE(held != nullptr);
  CHECK(channel->sent.empty());
  held->Notify("test.progress", {{"n", 1}});
  held->Notify("test.progress", {{"n", 2}});
  held->Reply("done");
  held->Reply("again");
  held->Fail(Err(ErrorCode::kInternal, "late"));
  held->Notify("test.progress", {{"n", 3}});
  REQUIRE(channel->sent.size() == 3);
  CHECK(channel->sent[0] ==
        json{{"jsonrpc", "2.0"}, {"method", "test.progress"}, {"params", {{"n", 1}}}});
  CHECK(channel->sent[1]["params"]["n"] == 2);
  CHECK(channel->sent[2] == json{{"jsonrpc", "2.0"}, {"id", "w"}, {"result", "done"}});
}

TEST_CASE_FIXTURE(Fixture, "a client that leaves runs the close hook; a later reply is dropped") {
  Line(Req(1, "test.hold"));
  REQUIRE(held != nullptr);
  int hook_runs = 0;
  held->OnClose([&] { ++hook_runs; });
  channel->Close();
  CHECK(hook_runs == 1);
  CHECK_FALSE(held->connected());
  held->Notify("x", json::object());
  held->Reply(1);
  CHECK(held->finished());
  channel.reset();  // the connection object is gone too
  held->Fail(Err(ErrorCode::kInternal, "late"));
  held.reset();
}

TEST_CASE_FIXTURE(Fixture, "a close hook is forgotten once the call is answered") {
  Line(Req(1, "test.hold"));
  int hook_runs = 0;
  held->OnClose([&] { ++hook_runs; });
  held->Reply(1);
  channel->Close();
  CHECK(hook_runs == 0);
}

TEST_CASE_FIXTURE(Fixture, "a close hook added after the client left runs at once") {
  Line(Req(1, "test.hold"));
  channel->Close();
  int hook_runs = 0;
  held->OnClose([&] { ++hook_runs; });
  CHECK(hook_runs == 1);
}

TEST_CASE_FIXTURE(Fixture, "a handler that drops its call unanswered still answers -32603") {
  Line(Req(1, "test.silent"));
  Line(Req(2, "test.hold"));
  held.reset();
  REQUIRE(channel->sent.size() == 2);
  CHECK(channel->sent[0]["error"]["message"] ==
        "internal error: test.silent finished without a reply");
  CHECK(CodeOf(channel->sent[1]) == -32603);
}

TEST_CASE_FIXTURE(Fixture, "a result over the reply limit becomes an internal error") {
  Line(Req(1, "test.big"));
  REQUIRE(channel->sent.size() == 1);
  CHECK(CodeOf(channel->sent[0]) == -32603);
}

TEST_CASE_FIXTURE(Fixture, "daemon.version is built in and refuses another protocol by name") {
  Line(Req(1, method::kDaemonVersion));
  Line(Req(2, method::kDaemonVersion, {{"protocol", kProtocolVersion}, {"client", "t"}}));
  Line(Req(3, method::kDaemonVersion, {{"protocol", 99}}));
  REQUIRE(channel->sent.size() == 3);
  CHECK(channel->sent[0]["result"] ==
        json{{"protocol", kProtocolVersion}, {"version", PICOFLOW_VERSION}});
  CHECK(channel->sent[1]["result"]["protocol"] == kProtocolVersion);
  CHECK(CodeOf(channel->sent[2]) == -32006);
  CHECK(channel->sent[2]["error"]["message"] ==
        "protocol mismatch: the client speaks protocol 99, picoflowd " PICOFLOW_VERSION
        " speaks protocol 1");
}

TEST_CASE("params are checked against the table") {
  std::vector<ParamSpec> specs = {{"a", ParamType::kInteger, true},
                                  {"b", ParamType::kBool, false},
                                  {"c", ParamType::kAny, false}};
  CHECK(CheckParams(specs, {{"a", 1}}) == "");
  CHECK(CheckParams(specs, {{"a", 1}, {"b", false}, {"c", {1, 2}}}) == "");
  CHECK(CheckParams(specs, {{"a", 1.5}}) == "param 'a' must be an integer");
  CHECK(CheckParams(specs, {{"a", 1}, {"b", "yes"}}) == "param 'b' must be a boolean");
  CHECK(CheckParams(specs, {{"b", true}}) == "missing param 'a'");
  CHECK(CheckParams(specs, json::array()) == "params must be an object of named params");
}

}  // namespace
}  // namespace picoflow
