#include "picoflowd/exec/http/curl_multi.h"

#include <cstdint>
#include <stdexcept>

#include "picoflowd/util/callback_guard.h"

namespace picoflow {

CurlMulti::CurlMulti(uv_loop_t* loop, LogFn log_error)
    : loop_(loop), log_error_(log_error), multi_(curl_multi_init()), timer_(this) {
  if (multi_ == nullptr) throw std::runtime_error("curl_multi_init failed");
  uv_timer_init(loop_, timer_.get());  // cannot fail
  timer_.MarkInitialized();
  curl_multi_setopt(multi_, CURLMOPT_SOCKETFUNCTION, &CurlMulti::SocketCb);
  curl_multi_setopt(multi_, CURLMOPT_SOCKETDATA, static_cast<void*>(this));
  curl_multi_setopt(multi_, CURLMOPT_TIMERFUNCTION, &CurlMulti::TimerCb);
  curl_multi_setopt(multi_, CURLMOPT_TIMERDATA, static_cast<void*>(this));
}

CurlMulti::~CurlMulti() {
  curl_multi_cleanup(multi_);  // closes the cached connections
  watches_.clear();
}

void CurlMulti::WatchSocket(curl_socket_t s, int what) {
  if (what == CURL_POLL_REMOVE) {
    watches_.erase(s);  // closes the uv_poll (before curl closes the fd)
    return;
  }
  auto& watch = watches_[s];
  if (!watch) {
    auto fresh = std::make_unique<Watch>(this, s);
    if (int rc = uv_poll_init_socket(loop_, fresh->poll.get(), s); rc != 0) {
      watches_.erase(s);
      LogError(std::string("curl multi: cannot watch a socket: ") + uv_strerror(rc));
      return;
    }
    fresh->poll.MarkInitialized();
    watch = std::move(fresh);
  }
  const int events =
      ((what & CURL_POLL_IN) ? UV_READABLE : 0) | ((what & CURL_POLL_OUT) ? UV_WRITABLE : 0);
  if (events == 0) {
    uv_poll_stop(watch->poll.get());
  } else {
    uv_poll_start(watch->poll.get(), events, &CurlMulti::OnUvPoll);
  }
}

void CurlMulti::Action(curl_socket_t s, int ev_bitmask) {
  int running = 0;
  curl_multi_socket_action(multi_, s, ev_bitmask, &running);
  DrainMessages();
}

// One message at a time: a Done may destroy other transfers, whose messages
// curl then drops from the queue.
void CurlMulti::DrainMessages() {
  int left = 0;
  while (CURLMsg* msg = curl_multi_info_read(multi_, &left)) {
    if (msg->msg != CURLMSG_DONE) continue;
    CURL* easy = msg->easy_handle;
    const CURLcode code = msg->data.result;
    void* transfer = nullptr;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, &transfer);
    if (transfer != nullptr) static_cast<CurlTransfer*>(transfer)->Done(code);
  }
}

int CurlMulti::SocketCb(CURL*, curl_socket_t s, int what, void* userp, void*) noexcept {
  GuardCallback("curl multi: socket",
                [&] { static_cast<CurlMulti*>(userp)->WatchSocket(s, what); });
  return 0;
}

int CurlMulti::TimerCb(CURLM*, long timeout_ms, void* userp) noexcept {
  auto* self = static_cast<CurlMulti*>(userp);
  if (timeout_ms < 0) {
    uv_timer_stop(self->timer_.get());
  } else {
    uv_timer_start(self->timer_.get(), &CurlMulti::OnUvTimer,
                   static_cast<std::uint64_t>(timeout_ms), 0);
  }
  return 0;
}

void CurlMulti::OnUvTimer(uv_timer_t* t) noexcept {
  auto* self = OwnerOf<CurlMulti>(t);
  if (self == nullptr) return;
  GuardCallback("curl multi: timer", [self] { self->Action(CURL_SOCKET_TIMEOUT, 0); });
}

void CurlMulti::OnUvPoll(uv_poll_t* p, int status, int events) noexcept {
  auto* watch = OwnerOf<Watch>(p);
  if (watch == nullptr) return;
  CurlMulti* self = watch->multi;  // `watch` may be gone after Action
  GuardCallback("curl multi: socket ready", [&] {
    int flags = 0;
    if (status < 0) flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
    self->Action(watch->fd, flags);
  });
}

}  // namespace picoflow
