#include "protocol/jsonrpc.h"

#include <doctest/doctest.h>

#include <set>
#include <string>
#include <vector>

#include "protocol/methods.h"

namespace picoflow {
namespace {

RequestFault FaultOf(const std::variant<Request, RequestFault>& parsed) {
  REQUIRE(std::holds_alternative<RequestFault>(parsed));
  return std::get<RequestFault>(parsed);
}

Request RequestOf(const std::variant<Request, RequestFault>& parsed) {
  REQUIRE(std::holds_alternative<Request>(parsed));
  return std::get<Request>(parsed);
}

TEST_CASE("a request keeps its id, method and params; absent params become {}") {
  Request a =
      RequestOf(ParseRequest(R"({"jsonrpc":"2.0","id":7,"method":"run.get","params":{"run":3}})"));
  CHECK(a.id == 7);
  CHECK_FALSE(a.notification);
  CHECK(a.method == "run.get");
  CHECK(a.params == json{{"run", 3}});

  Request b = RequestOf(ParseRequest(R"({"jsonrpc":"2.0","id":"x-1","method":"m"})"));
  CHECK(b.id == "x-1");
  CHECK(b.params == json::object());

  Request c = RequestOf(ParseRequest(R"({"jsonrpc":"2.0","id":null,"method":"m","params":[1,2]})"));
  CHECK(c.id.is_null());
  CHECK_FALSE(c.notification);
  CHECK(c.params == json::array({1, 2}));
}

TEST_CASE("a request without an id is a notification") {
  Request r = RequestOf(ParseRequest(R"({"jsonrpc":"2.0","method":"m","params":{}})"));
  CHECK(r.notification);
  CHECK(r.id.is_null());
}

TEST_CASE("every malformed line gets its standard code and the id when one could be read") {
  struct Case {
    std::string line;
    int code;
    json id;
  };
  const int parse = static_cast<int>(RpcCode::kParseError);
  const int invalid = static_cast<int>(RpcCode::kInvalidRequest);
  const std::vector<Case> cases = {
      {"", parse, nullptr},
      {"{", parse, nullptr},
      {"not json", parse, nullptr},
      {R"({"jsonrpc":"2.0","id":1,"method":"m"} trailing)", parse, nullptr},
      {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xff\"}", parse, nullptr},
      {std::string(100, '['), parse, nullptr},
      // A NUL would end nlohmann's input: the request before it must not run.
      {std::string(R"({"jsonrpc":"2.0","id":5,"method":"m"})") + '\0' + "{garbage", parse, nullptr},
      {std::string(R"({"jsonrpc":"2.0","id":5,"method":"m)") + '\0' + R"("})", parse, nullptr},
      {"[]", invalid, nullptr},
      {R"([{"jsonrpc":"2.0","id":1,"method":"m"}])", invalid, nullptr},
      {"42", invalid, nullptr},
      {R"("text")", invalid, nullptr},
      {"null", invalid, nullptr},
      {R"({"id":1,"method":"m"})", invalid, 1},
      {R"({"jsonrpc":"1.0","id":1,"method":"m"})", invalid, 1},
      {R"({"jsonrpc":2.0,"id":"a","method":"m"})", invalid, "a"},
      {R"({"jsonrpc":"2.0","id":1})", invalid, 1},
      {R"({"jsonrpc":"2.0","id":1,"method":5})", invalid, 1},
      {R"({"jsonrpc":"2.0","id":{},"method":"m"})", invalid, nullptr},
      {R"({"jsonrpc":"2.0","id":true,"method":"m"})", invalid, nullptr},
      {R"({"jsonrpc":"2.0","id":[1],"method":"m"})", invalid, nullptr},
      {R"({"jsonrpc":"2.0","id":1,"method":"m","params":3})", invalid, 1},
      {R"({"jsonrpc":"2.0","id":1,"method":"m","params":"x"})", invalid, 1},
      {R"({"jsonrpc":"2.0","id":1,"method":"m","params":null})", invalid, 1},
  };
  for (const Case& c : cases) {
    CAPTURE(c.line);
    RequestFault f = FaultOf(ParseRequest(c.line));
    CHECK(f.error.code == c.code);
    CHECK(f.id == c.id);
    CHECK_FALSE(f.error.message.empty());
  }
}

TEST_CASE("brackets inside strings do not count towards the nesting limit") {
  const std::string deep_text(500, '[');
  Request r = RequestOf(ParseRequest(R"({"jsonrpc":"2.0","id":1,"method":"m","params":{"s":")" +
                                     deep_text + R"("}})"));
  CHECK(r.params["s"] == deep_text);
  // 64 levels are fine, 65 are not.
  std::string ok = std::string(63, '[') + std::string(63, ']');
  CHECK(std::holds_alternative<Request>(
      ParseRequest(R"({"jsonrpc":"2.0","id":1,"method":"m","params":)" + ok + "}")));
  std::string deep = std::string(64, '[') + std::string(64, ']');
  CHECK(FaultOf(ParseRequest(R"({"jsonrpc":"2.0","id":1,"method":"m","params":)" + deep + "}"))
            .error.code == static_cast<int>(RpcCode::kParseError));
}

TEST_CASE("builders write one compact line each") {
  CHECK(ResultLine(1, {{"a", 1}}) == "{\"id\":1,\"jsonrpc\":\"2.0\",\"result\":{\"a\":1}}\n");
  CHECK(
      ErrorLine("q", RpcErr(RpcCode::kNotFound, "no run 4")) ==
      "{\"error\":{\"code\":-32001,\"message\":\"no run 4\"},\"id\":\"q\",\"jsonrpc\":\"2.0\"}\n");
  CHECK(ErrorLine(nullptr, RpcErr(RpcCode::kConflict, "busy", {{"run", 2}})) ==
        "{\"error\":{\"code\":-32002,\"data\":{\"run\":2},\"message\":\"busy\"},\"id\":null,"
        "\"jsonrpc\":\"2.0\"}\n");
  CHECK(NotificationLine("run.output", {{"line", "a\nb"}}) ==
        "{\"jsonrpc\":\"2.0\",\"method\":\"run.output\",\"params\":{\"line\":\"a\\nb\"}}\n");
  CHECK(RequestLine(3, "run.get", {{"run", 1}}) ==
        "{\"id\":3,\"jsonrpc\":\"2.0\",\"method\":\"run.get\",\"params\":{\"run\":1}}\n");
  CHECK(ClientNotificationLine("m", json::object()) ==
        "{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"params\":{}}\n");
}

TEST_CASE("a result line in three parts is the whole result line, byte for byte") {
  const json result = {{"z", {1, 2}}, {"a", "x\n\xff"}, {"m", nullptr}};
  for (const json& id : {json(1), json(-7), json("q\"1"), json(nullptr), json(1234567890123)}) {
    CHECK(ResultLineHead(id) + DumpCompact(result) + std::string(kResultLineTail) ==
          ResultLine(id, result));
  }
}

TEST_CASE("invalid UTF-8 in task output is replaced, not thrown") {
  std::string line = ResultLine(1, {{"out", std::string("ok \xff\xfe end")}});
  CHECK(line.find("ok \xef\xbf\xbd") != std::string::npos);
  CHECK(line.back() == '\n');
  CHECK(line.find('\n') == line.size() - 1);
}

TEST_CASE("a built request parses back to the same request") {
  std::string line = RequestLine("id-9", method::kRunLogs, {{"run", 5}, {"follow", true}});
  line.pop_back();
  Request r = RequestOf(ParseRequest(line));
  CHECK(r.id == "id-9");
  CHECK(r.method == "run.logs");
  CHECK(r.params == json{{"run", 5}, {"follow", true}});
}

TEST_CASE("server messages parse as responses, errors or notifications") {
  auto ok = ParseServerMessage(R"({"jsonrpc":"2.0","id":1,"result":{"x":1}})");
  REQUIRE(ok.ok());
  REQUIRE(std::holds_alternative<Response>(*ok));
  CHECK(std::get<Response>(*ok).result == json{{"x", 1}});
  CHECK_FALSE(std::get<Response>(*ok).error.has_value());

  auto err = ParseServerMessage(
      R"({"jsonrpc":"2.0","id":2,"error":{"code":-32003,"message":"bad","data":{"d":1}}})");
  REQUIRE(err.ok());
  const Response& e = std::get<Response>(*err);
  REQUIRE(e.error.has_value());
  CHECK(e.error->code == -32003);
  CHECK(e.error->message == "bad");
  CHECK(e.error->data == json{{"d", 1}});

  auto note = ParseServerMessage(R"({"jsonrpc":"2.0","method":"run.output","params":{"l":1}})");
  REQUIRE(note.ok());
  REQUIRE(std::holds_alternative<Notification>(*note));
  CHECK(std::get<Notification>(*note).method == "run.output");

  for (const char* bad : {"", "[1]", R"({"jsonrpc":"2.0","result":1})", R"({"id":1,"result":1})",
                          R"({"jsonrpc":"2.0","id":1})",
                          R"({"jsonrpc":"2.0","id":1,"error":{"code":"x","message":"m"}})"}) {
    CAPTURE(bad);
    auto r = ParseServerMessage(bad);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == ErrorCode::kIo);
  }
}

TEST_CASE("each error code maps to one wire code and back") {
  struct Row {
    ErrorCode code;
    RpcCode wire;
  };
  const std::vector<Row> rows = {
      {ErrorCode::kInvalid, RpcCode::kInvalidParams},   {ErrorCode::kNotFound, RpcCode::kNotFound},
      {ErrorCode::kConflict, RpcCode::kConflict},       {ErrorCode::kIo, RpcCode::kIo},
      {ErrorCode::kUnavailable, RpcCode::kUnavailable}, {ErrorCode::kInternal, RpcCode::kInternal},
  };
  for (const Row& row : rows) {
    RpcError wire = ToRpcError(Err(row.code, "msg"));
    CHECK(wire.code == static_cast<int>(row.wire));
    CHECK(wire.message == "msg");
    CHECK(wire.data.is_null());
    Error back = FromRpcError(wire);
    CHECK(back.code == row.code);
    CHECK(back.message == "msg");
  }
  // A full disk is an I/O error on the wire (the message says disk full).
  CHECK(ToRpcError(Err(ErrorCode::kDiskFull, "d")).code == static_cast<int>(RpcCode::kIo));
  CHECK(FromRpcError(RpcErr(RpcCode::kProtocolMismatch, "v")).code == ErrorCode::kConflict);
  CHECK(FromRpcError(RpcErr(RpcCode::kForbidden, "f")).code == ErrorCode::kInvalid);
  CHECK(FromRpcError(RpcErr(RpcCode::kMethodNotFound, "m")).code == ErrorCode::kInvalid);
  CHECK(FromRpcError(RpcError{-32099, "other", nullptr}).code == ErrorCode::kInternal);
}

TEST_CASE("an invalid workflow error carries its diagnostics as data") {
  Diagnostics diags = {{"wf.yaml", {12, 5}, "unknown key 'timout'"}, {"wf.yaml", {}, "cycle"}};
  RpcError e = InvalidWorkflowError("wf.yaml: 2 problems", diags);
  CHECK(e.code == -32003);
  CHECK(e.data ==
        json{{"diagnostics",
              {{{"file", "wf.yaml"}, {"line", 12}, {"col", 5}, {"message", "unknown key 'timout'"}},
               {{"file", "wf.yaml"}, {"line", 0}, {"col", 0}, {"message", "cycle"}}}}});
}

TEST_CASE("method names are unique noun.verb pairs") {
  std::set<std::string_view> seen;
  for (std::string_view m : method::kAll) {
    CAPTURE(m);
    auto dot = m.find('.');
    CHECK(dot != std::string_view::npos);
    CHECK(dot > 0);
    CHECK(dot + 1 < m.size());
    CHECK(m.find('.', dot + 1) == std::string_view::npos);
    CHECK(seen.insert(m).second);
  }
}

}  // namespace
}  // namespace picoflow
