#include "picoflowd/exec/http/request_sender_curl.h"

#include <curl/curl.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>

#include "picoflowd/exec/http/curl_multi.h"
#include "picoflowd/util/callback_guard.h"

namespace picoflow {
namespace {

bool IsMail(const std::string& url) { return url.rfind("smtp", 0) == 0; }

// The address of `Name <addr>`, or the text itself, in angle brackets.
std::string Envelope(const std::string& address) {
  const std::size_t lt = address.rfind('<');
  const std::size_t gt = address.rfind('>');
  if (lt != std::string::npos && gt != std::string::npos && gt > lt)
    return address.substr(lt, gt - lt + 1);
  return "<" + address + ">";
}

}  // namespace

// One request: its easy handle in the sender's multi.
class SenderTransfer final : public CurlTransfer {
 public:
  SenderTransfer(CurlRequestSender& owner, OutboundRequest request, RequestSender::Done done)
      : owner_(owner), request_(std::move(request)), done_(std::move(done)) {}
  ~SenderTransfer() override {
    if (added_) owner_.multi_->Remove(easy_);
    if (easy_ != nullptr) curl_easy_cleanup(easy_);
    curl_slist_free_all(list_);
  }
  SenderTransfer(const SenderTransfer&) = delete;
  SenderTransfer& operator=(const SenderTransfer&) = delete;

  /// Adds the transfer; returns why it could not start, or "".
  std::string Begin();
  void Done(CURLcode code) override;
  RequestSender::Done TakeDone() { return std::move(done_); }

 private:
  CURLcode Configure();
  CURLcode ConfigureHttp();
  CURLcode ConfigureMail();
  bool Append(const std::string& line);
  static std::size_t ReadCb(char* buf, std::size_t size, std::size_t n, void* self) noexcept;
  static std::size_t DiscardCb(char*, std::size_t size, std::size_t n, void*) noexcept {
    return size * n;
  }

  CurlRequestSender& owner_;
  OutboundRequest request_;
  RequestSender::Done done_;
  CURL* easy_ = nullptr;
  curl_slist* list_ = nullptr;
  bool added_ = false;
  std::size_t sent_ = 0;  // bytes of an e-mail given to curl
  char errbuf_[CURL_ERROR_SIZE] = {};
};

std::string SenderTransfer::Begin() {
  easy_ = curl_easy_init();
  if (easy_ == nullptr) return "curl_easy_init failed";
  if (CURLcode rc = Configure(); rc != CURLE_OK) return curl_easy_strerror(rc);
  if (CURLMcode rc = owner_.multi_->Add(easy_); rc != CURLM_OK) return curl_multi_strerror(rc);
  added_ = true;
  return "";
}

CURLcode SenderTransfer::Configure() {
  CURLcode rc = CURLE_OK;
  auto set = [&](CURLoption option, auto value) {
    if (rc == CURLE_OK) rc = curl_easy_setopt(easy_, option, value);
  };
  set(CURLOPT_PRIVATE, static_cast<void*>(static_cast<CurlTransfer*>(this)));
  set(CURLOPT_ERRORBUFFER, errbuf_);
  set(CURLOPT_URL, request_.url.c_str());
  set(CURLOPT_NOSIGNAL, 1L);
  set(CURLOPT_SSL_VERIFYPEER, 1L);
  set(CURLOPT_SSL_VERIFYHOST, 2L);
  const auto ms = std::min<long long>(request_.timeout.count(), std::numeric_limits<int>::max());
  set(CURLOPT_TIMEOUT_MS, static_cast<long>(ms));
  set(CURLOPT_WRITEFUNCTION, &SenderTransfer::DiscardCb);
  if (rc != CURLE_OK) return rc;
  return IsMail(request_.url) ? ConfigureMail() : ConfigureHttp();
}

bool SenderTransfer::Append(const std::string& line) {
  curl_slist* next = curl_slist_append(list_, line.c_str());
  if (next == nullptr) return false;
  list_ = next;
  return true;
}

CURLcode SenderTransfer::ConfigureHttp() {
  CURLcode rc = curl_easy_setopt(easy_, CURLOPT_PROTOCOLS_STR, "http,https");
  auto set = [&](CURLoption option, auto value) {
    if (rc == CURLE_OK) rc = curl_easy_setopt(easy_, option, value);
  };
  set(CURLOPT_USERAGENT, "picoflow/" PICOFLOW_VERSION);
  set(CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request_.body.size()));
  set(CURLOPT_POSTFIELDS, request_.body.c_str());
  if (request_.method != "POST") set(CURLOPT_CUSTOMREQUEST, request_.method.c_str());
  for (const auto& [name, value] : request_.headers) {
    if (!Append(value.empty() ? name + ";" : name + ": " + value)) return CURLE_OUT_OF_MEMORY;
  }
  if (list_ != nullptr) set(CURLOPT_HTTPHEADER, list_);
  return rc;
}

CURLcode SenderTransfer::ConfigureMail() {
  CURLcode rc = curl_easy_setopt(easy_, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
  auto set = [&](CURLoption option, auto value) {
    if (rc == CURLE_OK) rc = curl_easy_setopt(easy_, option, value);
  };
  const bool login = !request_.username.empty();
  if (request_.url.rfind("smtp://", 0) == 0) {
    set(CURLOPT_USE_SSL, static_cast<long>(login ? CURLUSESSL_ALL : CURLUSESSL_TRY));
  }
  if (login) {
    set(CURLOPT_USERNAME, request_.username.c_str());
    set(CURLOPT_PASSWORD, request_.password.c_str());
  }
  set(CURLOPT_MAIL_FROM, Envelope(request_.mail_from).c_str());
  for (const std::string& to : request_.mail_to) {
    if (!Append(Envelope(to))) return CURLE_OUT_OF_MEMORY;
  }
  set(CURLOPT_MAIL_RCPT, list_);
  set(CURLOPT_UPLOAD, 1L);
  set(CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(request_.body.size()));
  set(CURLOPT_READFUNCTION, &SenderTransfer::ReadCb);
  set(CURLOPT_READDATA, static_cast<void*>(this));
  return rc;
}

std::size_t SenderTransfer::ReadCb(char* buf, std::size_t size, std::size_t n, void* p) noexcept {
  auto* self = static_cast<SenderTransfer*>(p);
  const std::size_t left = self->request_.body.size() - self->sent_;
  const std::size_t take = std::min(left, size * n);
  std::memcpy(buf, self->request_.body.data() + self->sent_, take);
  self->sent_ += take;
  return take;
}

void SenderTransfer::Done(CURLcode code) {
  RequestOutcome outcome;
  curl_easy_getinfo(easy_, CURLINFO_RESPONSE_CODE, &outcome.status);
  if (code != CURLE_OK) {
    long os_errno = 0;
    curl_easy_getinfo(easy_, CURLINFO_OS_ERRNO, &os_errno);
    outcome.error = os_errno != 0        ? std::strerror(static_cast<int>(os_errno))
                    : errbuf_[0] != '\0' ? errbuf_
                                         : curl_easy_strerror(code);
  } else if (!IsMail(request_.url) && (outcome.status < 200 || outcome.status > 299)) {
    outcome.error = "HTTP status " + std::to_string(outcome.status);
  } else {
    outcome.ok = true;
  }
  owner_.Finished(this, outcome);  // destroys `this`
}

CurlRequestSender::CurlRequestSender(uv_loop_t* loop, LogFn log_error)
    : multi_(std::make_unique<CurlMulti>(loop, log_error)) {}

// The transfers go before the multi handle they are in.
CurlRequestSender::~CurlRequestSender() { transfers_.clear(); }

void CurlRequestSender::Send(OutboundRequest request, Done done) {
  std::string error;
  try {
    transfers_.push_back(
        std::make_unique<SenderTransfer>(*this, std::move(request), std::move(done)));
    error = transfers_.back()->Begin();
    if (error.empty()) return;
  } catch (const std::exception& e) {
    error = e.what();
  }
  if (transfers_.empty()) return;  // not even made: nothing to tell
  RequestOutcome outcome;
  outcome.error = "cannot start: " + error;
  Finished(transfers_.back().get(), outcome);
}

void CurlRequestSender::Finished(SenderTransfer* transfer, const RequestOutcome& outcome) {
  Done done = transfer->TakeDone();
  transfers_.remove_if([transfer](const auto& t) { return t.get() == transfer; });
  GuardCallback("request sender: done", [&] {
    if (done) done(outcome);
  });
}

}  // namespace picoflow
