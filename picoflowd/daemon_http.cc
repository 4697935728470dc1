// The daemon's HTTP listener (docs/http-api.md): the web page's files,
// /api/v1/ (the control socket's methods, through the same Dispatcher),
// Prometheus' /metrics and /healthz; and web.token, the method that makes
// the token of write access over HTTP.
#include <filesystem>
#include <string>
#include <string_view>

#include "picoflowd/daemon.h"
#include "picoflowd/engine/run_manager.h"
#include "picoflowd/http/http_api.h"
#include "picoflowd/http/http_server.h"
#include "picoflowd/http/web_assets.h"
#include "picoflowd/http/web_token.h"
#include "picoflowd/metrics.h"
#include "picoflowd/rpc/rpc_dispatch.h"
#include "picoflowd/rpc/rpc_server.h"
#include "picoflowd/store/group_commit.h"
#include "picoflowd/store/store.h"
#include "picoflowd/util/logging.h"
#include "protocol/methods.h"

namespace picoflow {
namespace {

namespace fs = std::filesystem;

// The host part of a Host header: "[::1]:8080" -> "::1", "a:80" -> "a".
std::string_view HostName(std::string_view host) {
  if (!host.empty() && host.front() == '[') {
    const auto close = host.find(']');
    return close == std::string_view::npos ? host : host.substr(1, close - 1);
  }
  return host.substr(0, host.find(':'));
}

// A listener on loopback answers only requests addressed to loopback: a page
// of another site whose name an attacker points at 127.0.0.1 (DNS rebinding)
// sends its own host name, and gets 421.
bool LoopbackHost(std::string_view host) {
  const std::string name(HostName(host));
  return name == "localhost" || IsLoopbackAddress(name);
}

HttpResponse Text(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

bool AcceptsGzip(const HttpRequest& request) {
  const std::string* accept = request.Header("accept-encoding");
  if (accept == nullptr) return false;
  // "gzip", "gzip, br", "deflate, gzip;q=1.0"; "gzip;q=0" refuses it.
  const auto at = accept->find("gzip");
  if (at == std::string::npos) return false;
  const std::string_view rest = std::string_view(*accept).substr(at + 4);
  const std::string_view part = rest.substr(0, rest.find(','));
  return part.find("q=0") == std::string_view::npos || part.find("q=0.") != std::string_view::npos;
}

void ServeAsset(HttpExchange& exchange, const WebAsset& asset) {
  const HttpRequest& request = exchange.request();
  // The gzip copy is another representation: its own ETag ("...-gz").
  const bool gzip = AcceptsGzip(request);
  std::string etag(asset.etag);
  if (gzip) etag.insert(etag.size() - 1, "-gz");
  HttpResponse r;
  r.content_type = std::string(asset.content_type);
  r.headers = {{"ETag", etag}, {"Cache-Control", "no-cache"}, {"Vary", "Accept-Encoding"}};
  if (const std::string* tag = request.Header("if-none-match"); tag != nullptr && *tag == etag) {
    r.status = 304;
  } else if (gzip) {
    r.headers.emplace_back("Content-Encoding", "gzip");
    r.body = std::string(asset.gzip);
  } else {
    r.body = std::string(asset.body);
  }
  exchange.Respond(std::move(r));
}

}  // namespace

// --http-listen: the Metrics observer (made in Open), served at /metrics;
// it does not exist without the flag.
std::unique_ptr<Metrics> Daemon::MakeMetrics() {
  MetricsSources sources;
  sources.active_runs = [this] { return runs_->active(); };
  sources.active_tasks = [this] { return static_cast<std::size_t>(runs_->ActiveAttempts()); };
  sources.workflows = [this] {
    std::vector<std::string> names;
    for (const auto& [name, entry] : registry_.entries()) {
      if (entry.version) names.push_back(name);
    }
    return names;
  };
  sources.next_fire = [this](const std::string& name) -> std::optional<std::int64_t> {
    auto next = scheduler_->NextFire(name);
    if (!next) return std::nullopt;
    return static_cast<std::int64_t>(next->time_since_epoch().count());
  };
  sources.skipped_fires = [this](const std::string& name) {
    return scheduler_->SkippedCount(name);
  };
  sources.store_bytes = [this]() -> std::optional<std::uint64_t> {
    std::error_code ec;
    const auto bytes = fs::file_size(config_.state_dir + "/picoflow.db", ec);
    if (ec) return std::nullopt;
    return static_cast<std::uint64_t>(bytes);
  };
  sources.store_health = [this] { return store_->Health(); };
  sources.workflow_of = [this](std::int64_t run_id) {
    const RunController* c = runs_->Find(run_id);
    return c ? c->run().workflow().name : std::string();
  };
  sources.rpc_requests_dropped = [this]() -> std::uint64_t {
    return server_ ? server_->stats().requests_dropped : 0;
  };
  return std::make_unique<Metrics>(std::move(sources));
}

WebToken& Daemon::Token() {
  if (!web_token_) {
    web_token_ = std::make_unique<WebToken>(config_.state_dir + "/web-token");
    if (Status s = web_token_->Load(); !s.ok()) {
      LogWarn(LogEvent("http.token"),
              "web token not loaded, writes over HTTP stay off until 'picoflowctl web-token' "
              "makes a new one: " +
                  s.error().message);
    }
  }
  return *web_token_;
}

void Daemon::RegisterWebToken() {
  using P = ParamSpec;
  dispatcher_->Register(MethodSpec{
      method::kWebToken,
      Access::kWrite,
      {P{"rotate", ParamType::kBool, false}},
      false,
      [this](RpcCall& call) {
        const bool rotate = call.Param<bool>("rotate", false);
        auto token = Token().Get(rotate);
        if (!token.ok()) return call.Fail(token.error());
        LogInfo(LogEvent("http.token"), rotate ? "web token rotated" : "web token read");
        call.Reply({{"token", *token},
                    {"file", Token().path()},
                    {"http_listen",
                     config_.http_listen.empty() ? json(nullptr) : json(config_.http_listen)}});
      }});
}

Status Daemon::StartHttp() {
  if (config_.http_listen.empty()) return {};
  Token();
  http_api_ = std::make_unique<HttpApi>(
      *dispatcher_, HttpApi::kDaemonWrites,
      [this](const HttpRequest& request) { return web_token_->Check(request); },
      [this] { group_commit_->CommitNow(); });
  http_ = std::make_unique<HttpServer>(
      &loop_, [this](const std::shared_ptr<HttpExchange>& exchange) { ServeHttp(exchange); });
  if (Status s = http_->Listen(config_.http_listen); !s.ok()) return s;
  const bool metrics_only = !http_->loopback() && !config_.http_allow_remote;
  LogInfo(LogEvent("http.listen"),
          (metrics_only ? "/metrics, /healthz and /hooks/ on http://"
                        : "web page, /api/v1/, /metrics and /hooks/ on http://") +
              config_.http_listen + "/");
  if (metrics_only) {
    LogWarn(LogEvent("http.listen"),
            "http: " + config_.http_listen +
                " is not a loopback address: it serves only /metrics, /healthz and webhooks "
                "(/hooks/). Put the web "
                "page behind a reverse proxy on 127.0.0.1, or set http_allow_remote: true to "
                "serve it and /api/v1/ there too (whoever reaches it reads every workflow, run "
                "and log)");
  }
  return {};
}

void Daemon::ServeHttp(const std::shared_ptr<HttpExchange>& exchange) {
  const HttpRequest& request = exchange->request();
  const std::string* host = request.Header("host");
  if (http_->loopback() && (host == nullptr || !LoopbackHost(*host))) {
    exchange->Respond(Text(421, "this listener answers only to localhost, 127.0.0.1 or [::1]\n"));
    return;
  }
  // Webhooks are for other systems, often on other hosts: each has a token
  // of its own (docs/triggers.md).
  if (request.path.starts_with(kHookPrefix)) {
    ServeHook(exchange);
    return;
  }
  const bool page_or_api = request.path != "/metrics" && request.path != "/healthz";
  if (page_or_api && !http_->loopback() && !config_.http_allow_remote) {
    exchange->Respond(Text(403,
                           "this listener is not on loopback: the web page and /api/v1/ are "
                           "served here only with http_allow_remote: true (docs/http-api.md)\n"));
    return;
  }
  if (request.path.starts_with(HttpApi::kPrefix)) {
    http_api_->Serve(exchange);  // its answers commit the store before they are sent
    return;
  }
  if (request.method != "GET" && request.method != "HEAD") {
    HttpResponse r = Text(405, "only GET here (the API is under /api/v1/)\n");
    r.headers.emplace_back("Allow", "GET, HEAD");
    exchange->Respond(std::move(r));
    return;
  }
  if (request.path == "/metrics") {
    group_commit_->CommitNow();  // what a scrape shows is stored
    HttpResponse r = Text(200, metrics_->Render());
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    exchange->Respond(std::move(r));
    return;
  }
  if (request.path == "/healthz") {
    const StoreHealth health = store_->Health();
    exchange->Respond(health.degraded ? Text(503, "store degraded: " + health.reason + "\n")
                                      : Text(200, "ok\n"));
    return;
  }
  if (const WebAsset* asset = FindWebAsset(request.path)) {
    ServeAsset(*exchange, *asset);
    return;
  }
  exchange->Respond(Text(404, "not found\n"));
}

}  // namespace picoflow
