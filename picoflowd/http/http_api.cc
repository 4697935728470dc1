#include "picoflowd/http/http_api.h"

#include <algorithm>
#include <charconv>
#include <utility>

#include "picoflowd/rpc/rpc_call.h"
#include "picoflowd/rpc/rpc_dispatch.h"
#include "protocol/jsonrpc.h"
#include "protocol/methods.h"

namespace picoflow {

HttpResponse JsonResponse(int status, const json& body) {
  HttpResponse r;
  r.status = status;
  r.content_type = "application/json";
  r.headers.emplace_back("Cache-Control", "no-store");
  r.body = DumpCompact(body) + "\n";
  return r;
}

namespace {

constexpr int Code(RpcCode code) { return static_cast<int>(code); }

HttpResponse JsonError(int status, int code, const std::string& message) {
  return JsonResponse(status, json{{"error", {{"code", code}, {"message", message}}}});
}

bool Accepts(const HttpRequest& request, std::string_view type) {
  const std::string* accept = request.Header("accept");
  return accept != nullptr && accept->find(type) != std::string::npos;
}

// A query value as its param's type; nullopt if it is not one.
std::optional<json> Typed(ParamType type, const std::string& text) {
  switch (type) {
    case ParamType::kString: return json(text);
    case ParamType::kInteger: {
      std::int64_t v = 0;
      const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
      if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
      return json(v);
    }
    case ParamType::kBool:
      if (text == "true" || text == "1") return json(true);
      if (text == "false" || text == "0") return json(false);
      return std::nullopt;
    case ParamType::kNumber:
    case ParamType::kObject:
    case ParamType::kArray:
    case ParamType::kAny: {
      json v = json::parse(text, nullptr, false);
      if (v.is_discarded()) {
        if (type == ParamType::kAny) return json(text);
        return std::nullopt;
      }
      return v;
    }
  }
  return std::nullopt;
}

const char* TypeWord(ParamType type) {
  switch (type) {
    case ParamType::kInteger: return "an integer";
    case ParamType::kBool: return "true or false";
    case ParamType::kNumber: return "a number";
    case ParamType::kObject: return "a JSON object";
    case ParamType::kArray: return "a JSON array";
    default: return "text";
  }
}

// The params of a GET: the query's NAME=VALUE pairs, typed by the method's
// table. Returns the 400 message, or "" with `params` filled.
std::string QueryParams(const MethodSpec& spec, const std::string& query, json& params) {
  params = json::object();
  std::size_t start = 0;
  while (start <= query.size() && !query.empty()) {
    std::size_t end = query.find('&', start);
    if (end == std::string::npos) end = query.size();
    const std::string_view pair = std::string_view(query).substr(start, end - start);
    start = end + 1;
    if (pair.empty()) continue;
    const auto eq = pair.find('=');
    std::string name;
    std::string value;
    if (!PercentDecode(pair.substr(0, eq), true, name) ||
        !PercentDecode(eq == std::string_view::npos ? "" : pair.substr(eq + 1), true, value)) {
      return "bad %-escape in the query";
    }
    if (params.contains(name)) return "param '" + name + "' given twice";
    ParamType type = ParamType::kAny;
    for (const ParamSpec& p : spec.params) {
      if (p.name == name) type = p.type;
    }
    std::optional<json> typed = Typed(type, value);
    if (!typed) {
      return spec.name + ": param '" + name + "' must be " + TypeWord(type) + ", got '" + value +
             "'";
    }
    params[name] = std::move(*typed);
    if (end == query.size()) break;
  }
  return "";
}

// The connection side of one call made over HTTP: turns the call's lines
// into one response, or into the events of a stream.
class ApiChannel final : public RpcChannel, public std::enable_shared_from_this<ApiChannel> {
 public:
  ApiChannel(std::shared_ptr<HttpExchange> exchange, Peer peer, bool stream,
             std::function<void()> before_send)
      : exchange_(std::move(exchange)),
        peer_(std::move(peer)),
        stream_(stream),
        before_send_(std::move(before_send)) {}

  void Begin() {
    if (stream_) {
      exchange_->StartStream(200, "text/event-stream",
                             {{"Cache-Control", "no-store"}, {"X-Accel-Buffering", "no"}});
    }
    // Until the call is answered the exchange keeps this channel alive; a
    // client that leaves ends the calls that follow a run (their hooks).
    exchange_->OnClose([self = shared_from_this()] { self->Closed(); });
  }

  const Peer& peer() const override { return peer_; }

  void Send(std::string line) override {
    if (!exchange_->open()) return;
    if (before_send_) before_send_();
    json message = json::parse(line, nullptr, false);
    const bool response = message.is_object() && message.contains("id");
    if (stream_) {
      while (!line.empty() && line.back() == '\n') line.pop_back();
      exchange_->Write("data: " + line + "\n\n");
      if (response) exchange_->End();
      return;
    }
    if (!response) return;  // a notification without a stream to carry it
    if (message.contains("error")) {
      const json& error = message["error"];
      exchange_->Respond(JsonResponse(HttpStatusOf(error.value("code", 0)), {{"error", error}}));
      return;
    }
    exchange_->Respond(JsonResponse(200, message["result"]));
  }

  void CloseAfterFlush() override {
    if (stream_) exchange_->End();
  }

  bool open() const override { return exchange_->open(); }

 private:
  void Closed() { RunCloseHooks(); }

  std::shared_ptr<HttpExchange> exchange_;
  Peer peer_;
  bool stream_;
  std::function<void()> before_send_;
};

}  // namespace

int HttpStatusOf(int rpc_code) {
  switch (static_cast<RpcCode>(rpc_code)) {
    case RpcCode::kParseError:
    case RpcCode::kInvalidRequest:
    case RpcCode::kInvalidParams:
    case RpcCode::kProtocolMismatch: return 400;
    case RpcCode::kMethodNotFound:
    case RpcCode::kNotFound: return 404;
    case RpcCode::kConflict: return 409;
    case RpcCode::kInvalidWorkflow: return 422;
    case RpcCode::kUnavailable: return 503;
    case RpcCode::kForbidden: return 403;
    default: return 500;
  }
}

const std::vector<std::string> HttpApi::kDaemonWrites = {method::kRunStart, method::kRunCancel,
                                                         method::kRunRetry, method::kWorkflowPause,
                                                         method::kWorkflowResume};

HttpApi::HttpApi(Dispatcher& dispatcher, std::vector<std::string> writes,
                 std::function<TokenCheck(const HttpRequest&)> check,
                 std::function<void()> before_send)
    : dispatcher_(dispatcher),
      writes_(std::move(writes)),
      check_(std::move(check)),
      before_send_(std::move(before_send)) {}

void HttpApi::Serve(const std::shared_ptr<HttpExchange>& exchange) {
  const HttpRequest& request = exchange->request();
  const std::string method = request.path.substr(std::string_view(kPrefix).size());
  const MethodSpec* spec = dispatcher_.Find(method);
  if (spec == nullptr) {
    exchange->Respond(
        JsonError(404, Code(RpcCode::kMethodNotFound), "unknown method '" + method + "'"));
    return;
  }
  const bool get = request.method == "GET" || request.method == "HEAD";
  if (!get && request.method != "POST") {
    HttpResponse r =
        JsonError(405, Code(RpcCode::kInvalidRequest), "use GET (read methods) or POST");
    r.headers.emplace_back("Allow", "GET, HEAD, POST");
    exchange->Respond(std::move(r));
    return;
  }
  if (get && spec->access != Access::kRead) {
    HttpResponse r = JsonError(405, Code(RpcCode::kInvalidRequest),
                               method +
                                   " changes things: POST it, with the web token "
                                   "(docs/http-api.md)");
    r.headers.emplace_back("Allow", "POST");
    exchange->Respond(std::move(r));
    return;
  }
  if (spec->access == Access::kWrite &&
      std::find(writes_.begin(), writes_.end(), method) == writes_.end()) {
    exchange->Respond(JsonError(403, Code(RpcCode::kForbidden),
                                method + " is not offered over HTTP (it could run any command as "
                                         "the daemon's user): use picoflowctl on its machine"));
    return;
  }
  const TokenCheck token = check_(request);
  if (spec->access == Access::kWrite && token != TokenCheck::kValid) {
    if (token == TokenCheck::kOff) {
      exchange->Respond(JsonError(403, Code(RpcCode::kForbidden),
                                  method + " needs write access, which is off over HTTP: run "
                                           "'picoflowctl web-token' to make a token"));
    } else {
      HttpResponse r = JsonError(
          401, Code(RpcCode::kForbidden),
          method + (token == TokenCheck::kMissing ? " needs the web token" : ": wrong web token") +
              " (Authorization: Bearer TOKEN; 'picoflowctl web-token' prints it)");
      r.headers.emplace_back("WWW-Authenticate", "Bearer");
      exchange->Respond(std::move(r));
    }
    return;
  }
  json params;
  if (get) {
    if (const std::string problem = QueryParams(*spec, request.query, params); !problem.empty()) {
      exchange->Respond(JsonError(400, Code(RpcCode::kInvalidParams), problem));
      return;
    }
  } else {
    params = request.body.empty() ? json::object() : json::parse(request.body, nullptr, false);
    if (!params.is_object()) {
      exchange->Respond(JsonError(400, Code(RpcCode::kInvalidParams),
                                  "the body must be a JSON object of params"));
      return;
    }
  }
  if (method == method::kRunStart && params.contains("source")) {
    exchange->Respond(JsonError(403, Code(RpcCode::kForbidden),
                                "run.start of a workflow's source is not offered over HTTP (it "
                                "could run any command): submit it with picoflowctl, then start "
                                "it by name"));
    return;
  }
  Peer peer;
  peer.access = token == TokenCheck::kValid ? Access::kWrite : Access::kRead;
  peer.remote = "http";
  // No stream for HEAD: its answer has no body to stream in.
  const bool stream = request.method != "HEAD" && Accepts(request, "text/event-stream");
  auto channel = std::make_shared<ApiChannel>(exchange, std::move(peer), stream, before_send_);
  channel->Begin();
  const std::string line =
      DumpCompact(json{{"jsonrpc", "2.0"}, {"id", 1}, {"method", method}, {"params", params}});
  dispatcher_.HandleLine(channel, line);
}

}  // namespace picoflow
