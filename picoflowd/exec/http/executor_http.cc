#include "picoflowd/exec/http/executor_http.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <strings.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstring>
#include <exception>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "common/duration.h"
#include "common/secrets.h"
#include "common/task_outputs.h"
#include "common/workflow.h"
#include "picoflowd/exec/http/curl_multi.h"
#include "picoflowd/util/callback_guard.h"
#include "picoflowd/util/uv_handle.h"

namespace picoflow {
namespace {

constexpr long kMaxRedirects = 10;
const char kEmptyBody[] = "";

// A URL as an error may show it: without a user and password before the host.
std::string UrlWithoutUserinfo(const std::string& url) {
  const std::size_t start = url.find("://");
  if (start == std::string::npos) return url;
  const std::size_t host = start + 3;
  const std::size_t end = url.find_first_of("/?#", host);
  const std::size_t at = url.rfind('@', end == std::string::npos ? url.size() : end);
  if (at == std::string::npos || at < host) return url;
  return url.substr(0, host) + url.substr(at + 1);
}

bool IsPrivateV4(std::uint32_t a) {  // host byte order
  auto in = [a](std::uint32_t net, int bits) { return (a >> (32 - bits)) == (net >> (32 - bits)); };
  return in(0x00000000, 8) || in(0x0A000000, 8) || in(0x7F000000, 8) || in(0xA9FE0000, 16) ||
         in(0xAC100000, 12) || in(0xC0A80000, 16) || in(0x64400000, 10);
}

bool IsPrivateV6(const in6_addr& a) {
  if (IN6_IS_ADDR_V4MAPPED(&a)) {
    std::uint32_t v4 = 0;
    std::memcpy(&v4, a.s6_addr + 12, 4);
    return IsPrivateV4(ntohl(v4));
  }
  return IN6_IS_ADDR_LOOPBACK(&a) || IN6_IS_ADDR_UNSPECIFIED(&a) || IN6_IS_ADDR_LINKLOCAL(&a) ||
         (a.s6_addr[0] & 0xfe) == 0xfc;  // fc00::/7, unique local
}

// Loopback, private, link-local, CGNAT or unspecified; unknown text counts too.
bool IsPrivateIp(const char* text) {
  in_addr v4{};
  in6_addr v6{};
  if (inet_pton(AF_INET, text, &v4) == 1) return IsPrivateV4(ntohl(v4.s_addr));
  if (inet_pton(AF_INET6, text, &v6) == 1) return IsPrivateV6(v6);
  return true;
}

std::string IpText(const curl_sockaddr* a) {
  char buf[INET6_ADDRSTRLEN] = "?";
  const void* src =
      a->family == AF_INET6
          ? static_cast<const void*>(&reinterpret_cast<const sockaddr_in6*>(&a->addr)->sin6_addr)
          : static_cast<const void*>(&reinterpret_cast<const sockaddr_in*>(&a->addr)->sin_addr);
  inet_ntop(a->family, src, buf, sizeof buf);
  return buf;
}

std::string ExpectText(const std::vector<StatusRange>& ranges) {
  std::string text;
  for (const StatusRange& r : ranges) {
    if (!text.empty()) text += ", ";
    text += std::to_string(r.lo);
    if (r.hi != r.lo) text += "-" + std::to_string(r.hi);
  }
  return text;
}

bool HasHeader(const EnvList& headers, std::string_view name) {
  for (const auto& [key, value] : headers) {
    if (key.size() == name.size() && strncasecmp(key.data(), name.data(), name.size()) == 0)
      return true;
  }
  return false;
}

// One running http attempt: one easy handle in the executor's multi, and a
// timer that reports a failed start or a cancel on a later iteration.
class HttpAttempt final : public Attempt, public CurlTransfer {
 public:
  HttpAttempt(CurlMulti& multi, const AttemptSpec& spec, AttemptSink& sink)
      : multi_(multi), sink_(sink), spec_(spec), timer_(this) {
    uv_timer_init(multi_.loop(), timer_.get());  // cannot fail
    timer_.MarkInitialized();
  }
  ~HttpAttempt() override {
    RemoveEasy();
    if (easy_ != nullptr) curl_easy_cleanup(easy_);
    curl_slist_free_all(headers_);
  }
  HttpAttempt(const HttpAttempt&) = delete;
  HttpAttempt& operator=(const HttpAttempt&) = delete;

  /// Sets up and adds the transfer, or arranges a failure report. Throws only
  /// std::bad_alloc.
  void Begin();
  /// Reports `result` on a later loop iteration (never from inside Start
  /// or a curl callback).
  void FinishLater(AttemptResult result);
  /// Ends the transfer; reports kCancelled on a later loop iteration.
  void Cancel() override;
  /// The transfer ended (from the multi's message queue). May destroy `this`.
  void Done(CURLcode code) override;

 private:
  CURLcode Configure(const HttpConfig& http);
  void RemoveEasy();
  void Finish(const AttemptResult& result);
  AttemptResult ResultOf(CURLcode code) const;
  std::string TransferError(CURLcode code) const;

  static std::size_t WriteCb(char* data, std::size_t size, std::size_t n, void* self) noexcept;
  static std::size_t HeaderCb(char* data, std::size_t size, std::size_t n, void* self) noexcept;
  static curl_socket_t OpenSocketCb(void* self, curlsocktype, curl_sockaddr* addr) noexcept;
  static int PrereqCb(void* self, char* ip, char*, int, int) noexcept;
  static void TimerCb(uv_timer_t* t) noexcept;

  CurlMulti& multi_;
  AttemptSink& sink_;
  AttemptSpec spec_;
  const HttpConfig* http_ = nullptr;
  CURL* easy_ = nullptr;
  curl_slist* headers_ = nullptr;
  bool added_ = false;
  bool finished_ = false;
  std::optional<AttemptResult> pending_;  // a cancel or failed start, reported by timer_
  std::chrono::milliseconds timeout_{0};
  const char* timeout_kind_ = "";
  std::string blocked_ip_;
  std::string body_;  // the response body, with output_body (at most the outputs cap + 1)
  char errbuf_[CURL_ERROR_SIZE] = {};
  UvHandle<uv_timer_t> timer_;
};

void HttpAttempt::Begin() {
  http_ = spec_.task != nullptr ? std::get_if<HttpConfig>(&spec_.task->config) : nullptr;
  if (http_ == nullptr) return FinishLater(FailedResult("cannot start: not an http task"));
  easy_ = curl_easy_init();
  if (easy_ == nullptr) return FinishLater(FailedResult("cannot start: curl_easy_init failed"));
  if (CURLcode rc = Configure(*http_); rc != CURLE_OK) {
    return FinishLater(FailedResult(std::string("cannot start: ") + curl_easy_strerror(rc)));
  }
  if (CURLMcode rc = multi_.Add(easy_); rc != CURLM_OK) {
    return FinishLater(FailedResult(std::string("cannot start: ") + curl_multi_strerror(rc)));
  }
  added_ = true;
}

CURLcode HttpAttempt::Configure(const HttpConfig& http) {
  CURLcode rc = CURLE_OK;
  auto set = [&](CURLoption option, auto value) {
    if (rc == CURLE_OK) rc = curl_easy_setopt(easy_, option, value);
  };
  set(CURLOPT_PRIVATE, static_cast<void*>(static_cast<CurlTransfer*>(this)));
  set(CURLOPT_ERRORBUFFER, errbuf_);
  // `${secret:NAME}` is expanded in the url and the header values only
  // (docs/workflow-format.md, "Secrets"); curl copies the strings it is
  // given. Messages quote the url as written.
  set(CURLOPT_URL, ExpandSecretRefs(http.url, spec_.secrets).c_str());
  set(CURLOPT_PROTOCOLS_STR, "http,https");
  set(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  set(CURLOPT_NOSIGNAL, 1L);
  set(CURLOPT_USERAGENT, "picoflow/" PICOFLOW_VERSION);
  set(CURLOPT_SSL_VERIFYPEER, 1L);
  set(CURLOPT_SSL_VERIFYHOST, 2L);
  if (!http.ca_file.empty()) set(CURLOPT_CAINFO, http.ca_file.c_str());
  set(CURLOPT_FOLLOWLOCATION, http.follow_redirects ? 1L : 0L);
  set(CURLOPT_MAXREDIRS, kMaxRedirects);
  set(CURLOPT_WRITEFUNCTION, &HttpAttempt::WriteCb);
  set(CURLOPT_WRITEDATA, static_cast<void*>(this));
  set(CURLOPT_HEADERFUNCTION, &HttpAttempt::HeaderCb);
  set(CURLOPT_HEADERDATA, static_cast<void*>(this));
  if (!http.allow_private_ips) {
    set(CURLOPT_OPENSOCKETFUNCTION, &HttpAttempt::OpenSocketCb);
    set(CURLOPT_OPENSOCKETDATA, static_cast<void*>(this));
    set(CURLOPT_PREREQFUNCTION, &HttpAttempt::PrereqCb);  // a reused connection skips opensocket
    set(CURLOPT_PREREQDATA, static_cast<void*>(this));
  }
  // The shorter of the request timeout and the task timeout ends the transfer.
  timeout_ = spec_.timeout;
  timeout_kind_ = "task timeout";
  if (http.timeout && (timeout_.count() == 0 || *http.timeout < timeout_)) {
    timeout_ = *http.timeout;
    timeout_kind_ = "request timeout";
  }
  if (timeout_.count() > 0) {
    // long is 32 bits on armhf: past ~24 days, curl gets the largest it can take.
    const auto ms =
        std::min<std::int64_t>(timeout_.count(), std::numeric_limits<std::int32_t>::max());
    set(CURLOPT_TIMEOUT_MS, static_cast<long>(ms));
  }

  const bool has_body = http.method != "HEAD" && (http.body || http.method != "GET");
  if (http.method == "HEAD") set(CURLOPT_NOBODY, 1L);
  if (has_body) {
    const char* body = http.body ? http.body->data() : kEmptyBody;
    const std::size_t size = http.body ? http.body->size() : 0;
    set(CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(size));
    set(CURLOPT_POSTFIELDS, body);
  }
  if (http.method != "GET" && http.method != "HEAD" && http.method != "POST") {
    set(CURLOPT_CUSTOMREQUEST, http.method.c_str());
  }
  if (has_body && http.method == "GET") set(CURLOPT_CUSTOMREQUEST, "GET");

  std::vector<std::string> lines;
  for (const auto& [name, value] : http.headers) {
    const std::string expanded = ExpandSecretRefs(value, spec_.secrets);
    lines.push_back(expanded.empty() ? name + ";" : name + ": " + expanded);  // "X;" sends "X:"
  }
  if (has_body && !HasHeader(http.headers, "Content-Type")) {
    // Without one curl would claim application/x-www-form-urlencoded.
    lines.push_back(http.body_is_json ? "Content-Type: application/json" : "Content-Type:");
  }
  for (const std::string& line : lines) {
    curl_slist* next = curl_slist_append(headers_, line.c_str());
    if (next == nullptr) throw std::bad_alloc();
    headers_ = next;
  }
  if (headers_ != nullptr) set(CURLOPT_HTTPHEADER, headers_);
  return rc;
}

void HttpAttempt::Cancel() {
  if (finished_ || pending_) return;
  AttemptResult r;
  r.status = AttemptStatus::kCancelled;
  r.error = "cancelled";
  FinishLater(std::move(r));  // Cancel may come from inside a curl callback (OnOutput)
}

void HttpAttempt::FinishLater(AttemptResult result) {
  pending_ = std::move(result);
  uv_timer_start(timer_.get(), &TimerCb, 0, 0);
}

void HttpAttempt::Done(CURLcode code) {
  RemoveEasy();
  if (finished_ || pending_) return;  // the timer reports the cancel
  Finish(ResultOf(code));
}

void HttpAttempt::RemoveEasy() {
  if (!added_) return;
  added_ = false;
  multi_.Remove(easy_);
}

void HttpAttempt::Finish(const AttemptResult& result) {
  finished_ = true;
  uv_timer_stop(timer_.get());
  sink_.OnFinished(result);  // last: the sink may destroy `this`
}

// Why a transfer failed: the system's word for it when a system call failed
// ("connection refused"), else curl's message.
std::string HttpAttempt::TransferError(CURLcode code) const {
  long os_errno = 0;
  curl_easy_getinfo(easy_, CURLINFO_OS_ERRNO, &os_errno);
  std::string text = os_errno != 0        ? std::strerror(static_cast<int>(os_errno))
                     : errbuf_[0] != '\0' ? errbuf_
                                          : curl_easy_strerror(code);
  if (os_errno != 0) text[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(text[0])));
  return text;
}

AttemptResult HttpAttempt::ResultOf(CURLcode code) const {
  AttemptResult r;
  long status = 0;
  curl_easy_getinfo(easy_, CURLINFO_RESPONSE_CODE, &status);
  if (status > 0) r.exit_code = static_cast<int>(status);
  if (code == CURLE_OK) {
    for (const StatusRange& range : http_->expect_status) {
      if (status >= range.lo && status <= range.hi) r.status = AttemptStatus::kSucceeded;
    }
    if (r.status != AttemptStatus::kSucceeded) {
      r.error = "HTTP status " + std::to_string(status) + " (expected " +
                ExpectText(http_->expect_status) + ")";
    } else if (http_->output_body && body_.size() > kMaxTaskOutputBytes) {
      r.status = AttemptStatus::kFailed;
      r.error = "its outputs: the response body is over " + std::to_string(kMaxTaskOutputBytes) +
                " bytes, the limit of a task's outputs (output_body: true)";
    } else {
      r.outputs.emplace_back("status", std::to_string(status));
      if (http_->output_body) r.outputs.emplace_back("body", body_);
    }
  } else if (code == CURLE_OPERATION_TIMEDOUT) {
    r.status = AttemptStatus::kTimeout;
    r.error = "timed out after " + FormatDuration(timeout_) + " (" + timeout_kind_ + ")";
  } else if (!blocked_ip_.empty()) {
    r.error =
        "refused to connect to private address " + blocked_ip_ + " (allow_private_ips: false)";
  } else {
    r.error = "http: " + http_->method + " " + UrlWithoutUserinfo(http_->url) + ": " +
              TransferError(code);
  }
  return r;
}

std::size_t HttpAttempt::WriteCb(char* data, std::size_t size, std::size_t n, void* p) noexcept {
  auto* self = static_cast<HttpAttempt*>(p);
  if (self->pending_) return 0;  // cancelled: abort the transfer now
  const bool ok = GuardCallback("http executor: response body", [&] {
    const std::string_view chunk(data, size * n);
    // One byte past the cap tells a body too large to be an output.
    if (self->http_->output_body && self->body_.size() <= kMaxTaskOutputBytes) {
      self->body_.append(chunk.substr(0, kMaxTaskOutputBytes + 1 - self->body_.size()));
    }
    self->sink_.OnOutput(OutputStream::kStdout, chunk);
  });
  return ok ? size * n : 0;  // 0 aborts the transfer with a write error
}

// Only the status line of each response goes to stderr: other response
// headers may carry cookies or tokens.
std::size_t HttpAttempt::HeaderCb(char* data, std::size_t size, std::size_t n, void* p) noexcept {
  auto* self = static_cast<HttpAttempt*>(p);
  GuardCallback("http executor: response header", [&] {
    std::string_view line(data, size * n);
    if (line.rfind("HTTP/", 0) == 0) {
      while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
      self->sink_.OnOutput(OutputStream::kStderr, std::string(line) + "\n");
    }
  });
  return size * n;
}

curl_socket_t HttpAttempt::OpenSocketCb(void* p, curlsocktype, curl_sockaddr* addr) noexcept {
  auto* self = static_cast<HttpAttempt*>(p);
  bool blocked = true;  // also if the check could not be made
  GuardCallback("http executor: checking the address", [&] {
    const sockaddr* sa = &addr->addr;
    blocked = sa->sa_family == AF_INET
                  ? IsPrivateV4(ntohl(reinterpret_cast<const sockaddr_in*>(sa)->sin_addr.s_addr))
                  : sa->sa_family != AF_INET6 ||
                        IsPrivateV6(reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr);
    if (blocked) self->blocked_ip_ = IpText(addr);
  });
  if (blocked) return CURL_SOCKET_BAD;
  return ::socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
}

int HttpAttempt::PrereqCb(void* p, char* ip, char*, int, int) noexcept {
  auto* self = static_cast<HttpAttempt*>(p);
  bool blocked = true;  // also if the check could not be made
  GuardCallback("http executor: checking the connected address", [&] {
    blocked = IsPrivateIp(ip);
    if (blocked) self->blocked_ip_ = ip;
  });
  return blocked ? CURL_PREREQFUNC_ABORT : CURL_PREREQFUNC_OK;
}

void HttpAttempt::TimerCb(uv_timer_t* t) noexcept {
  auto* self = OwnerOf<HttpAttempt>(t);
  if (self == nullptr || self->finished_ || !self->pending_) return;
  GuardCallback("http executor: reporting the end", [self] {
    self->RemoveEasy();  // not inside a curl callback here
    AttemptResult result = *self->pending_;
    self->Finish(result);
  });
}

}  // namespace

HttpExecutor::HttpExecutor(uv_loop_t* loop, LogFn log_error)
    : multi_(std::make_unique<CurlMulti>(loop, log_error)) {}

HttpExecutor::~HttpExecutor() = default;

std::unique_ptr<Attempt> HttpExecutor::Start(const AttemptSpec& spec, AttemptSink& sink) {
  auto attempt = std::make_unique<HttpAttempt>(*multi_, spec, sink);
  try {
    attempt->Begin();
  } catch (const std::exception& e) {
    attempt->FinishLater(FailedResult(std::string("cannot start: ") + e.what()));
  }
  return attempt;
}

}  // namespace picoflow
