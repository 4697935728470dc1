#include "picoflowd/exec/executor_unavailable.h"

#include "picoflowd/util/callback_guard.h"
#include "picoflowd/util/uv_handle.h"

namespace picoflow {
namespace {

class FailingAttempt final : public Attempt {
 public:
  FailingAttempt(uv_loop_t* loop, AttemptSink& sink, std::string reason)
      : sink_(sink), reason_(std::move(reason)), timer_(this) {
    if (uv_timer_init(loop, timer_.get()) == 0) {
      timer_.MarkInitialized();
      uv_timer_start(timer_.get(), &FailingAttempt::OnTimer, 0, 0);
    }
  }

  void Cancel() override {}  // it ends on its own at the next loop iteration

 private:
  static void OnTimer(uv_timer_t* handle) noexcept {
    auto* self = OwnerOf<FailingAttempt>(handle);
    if (self == nullptr) return;
    GuardCallback("unavailable executor: reporting a failed start", [self] {
      AttemptResult result;
      result.status = AttemptStatus::kFailed;
      result.error = self->reason_;
      self->timer_.Close();
      self->sink_.OnFinished(result);  // may destroy *self: nothing after this
    });
  }

  AttemptSink& sink_;
  std::string reason_;
  UvHandle<uv_timer_t> timer_;
};

}  // namespace

std::unique_ptr<Attempt> StartFailedAttempt(uv_loop_t* loop, AttemptSink& sink,
                                            std::string reason) {
  return std::make_unique<FailingAttempt>(loop, sink, std::move(reason));
}

std::unique_ptr<Attempt> UnavailableExecutor::Start(const AttemptSpec&, AttemptSink& sink) {
  return StartFailedAttempt(loop_, sink, reason_);
}

}  // namespace picoflow
