#pragma once
// UvHandle<H>: sole owner of one heap-allocated libuv handle. The wrapper is
// neither copyable nor movable; the handle's memory is freed only in its close
// callback, so destroying the owner while libuv still references the handle
// is safe. `handle->data` points at the owner until Close().

#include <uv.h>

#include <cstdint>

#include "picoflowd/util/callback_guard.h"

namespace picoflow {

template <class H>
class UvHandle {
 public:
  /// Allocates the handle (zeroed) with `data = owner`. Call an init function
  /// on get(), then MarkInitialized() if it returned 0.
  explicit UvHandle(void* owner) : handle_(new H{}) { handle_->data = owner; }
  ~UvHandle() { Close(); }
  UvHandle(const UvHandle&) = delete;
  UvHandle& operator=(const UvHandle&) = delete;

  H* get() const { return handle_; }
  uv_handle_t* base() const { return reinterpret_cast<uv_handle_t*>(handle_); }
  uv_stream_t* stream() const { return reinterpret_cast<uv_stream_t*>(handle_); }

  /// Records that uv_*_init succeeded, so Close() must go through uv_close.
  void MarkInitialized() { initialized_ = true; }
  bool initialized() const { return handle_ != nullptr && initialized_; }

  /// Detaches the handle from its owner and closes it; idempotent. The memory
  /// is released in the close callback (or at once if never initialized).
  void Close() {
    H* h = handle_;
    if (h == nullptr) return;
    handle_ = nullptr;
    h->data = nullptr;
    if (!initialized_) {
      delete h;
      return;
    }
    uv_handle_t* base = reinterpret_cast<uv_handle_t*>(h);
    if (uv_is_closing(base)) return;  // someone else closed it; their callback frees
    uv_close(base, [](uv_handle_t* p) noexcept { delete reinterpret_cast<H*>(p); });
  }

 private:
  H* handle_;
  bool initialized_ = false;
};

/// Recovers the owner from a handle inside a libuv callback; null once the
/// wrapper has been closed.
template <class Owner, class H>
Owner* OwnerOf(H* handle) {
  return static_cast<Owner*>(handle->data);
}

/// Starts (or restarts) a one-shot timer that calls `(owner->*Fn)()`, the
/// owner being the handle's data. The trampoline is guarded (GuardCallback):
/// what Fn throws is reported, never crosses libuv. Nothing happens once the
/// wrapper is closed.
template <class Owner, void (Owner::*Fn)()>
void StartOneShot(UvHandle<uv_timer_t>& timer, std::uint64_t delay_ms) {
  if (!timer.initialized()) return;
  uv_timer_start(
      timer.get(),
      [](uv_timer_t* handle) noexcept {
        auto* owner = OwnerOf<Owner>(handle);
        if (owner == nullptr) return;
        GuardCallback("one-shot timer", [owner] { (owner->*Fn)(); });
      },
      delay_ms, 0);
}

}  // namespace picoflow
