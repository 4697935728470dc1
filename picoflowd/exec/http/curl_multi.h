#pragma once
// CurlMulti: one libcurl multi handle driven by a libuv loop (the multi
// socket interface): one uv_poll per socket curl asks to watch, one uv_timer
// for curl's timeout. Part of the picoflow-http.so module only.

#include <curl/curl.h>
#include <uv.h>

#include <memory>
#include <string>
#include <unordered_map>

#include "picoflowd/util/uv_handle.h"

namespace picoflow {

/// A transfer added to a CurlMulti; its easy handle's CURLOPT_PRIVATE must
/// point at it.
class CurlTransfer {
 public:
  virtual ~CurlTransfer() = default;
  /// The transfer ended with `code`. Called outside curl callbacks, so it may
  /// remove its easy handle and destroy itself (or other transfers).
  virtual void Done(CURLcode code) = 0;
};

/// Owns the CURLM and its uv handles. Connections, DNS results and TLS
/// sessions of the transfers it ran are kept for reuse until destruction.
/// When nothing runs it arms no timer and watches no socket.
class CurlMulti {
 public:
  using LogFn = void (*)(const char* message);

  /// `loop` must outlive this object and run its close callbacks. Throws
  /// std::runtime_error if curl cannot make a multi handle.
  CurlMulti(uv_loop_t* loop, LogFn log_error);
  /// Every transfer must have been removed before.
  ~CurlMulti();
  CurlMulti(const CurlMulti&) = delete;
  CurlMulti& operator=(const CurlMulti&) = delete;

  uv_loop_t* loop() const { return loop_; }
  /// Adds a transfer (CURLOPT_PRIVATE set to its CurlTransfer*).
  CURLMcode Add(CURL* easy) { return curl_multi_add_handle(multi_, easy); }
  /// Removes a transfer. Never from inside one of its curl callbacks.
  void Remove(CURL* easy) { curl_multi_remove_handle(multi_, easy); }
  /// The host's error log. Never throws.
  void LogError(const std::string& message) const { log_error_(message.c_str()); }

 private:
  // One socket curl asked us to watch.
  struct Watch {
    Watch(CurlMulti* m, curl_socket_t s) : multi(m), fd(s), poll(this) {}
    CurlMulti* multi;
    curl_socket_t fd;
    UvHandle<uv_poll_t> poll;
  };

  void WatchSocket(curl_socket_t s, int what);
  void Action(curl_socket_t s, int ev_bitmask);
  void DrainMessages();

  static int SocketCb(CURL* easy, curl_socket_t s, int what, void* userp, void* socketp) noexcept;
  static int TimerCb(CURLM* multi, long timeout_ms, void* userp) noexcept;
  static void OnUvTimer(uv_timer_t* t) noexcept;
  static void OnUvPoll(uv_poll_t* p, int status, int events) noexcept;

  uv_loop_t* loop_;
  LogFn log_error_;
  CURLM* multi_ = nullptr;
  UvHandle<uv_timer_t> timer_;
  std::unordered_map<curl_socket_t, std::unique_ptr<Watch>> watches_;
};

}  // namespace picoflow
