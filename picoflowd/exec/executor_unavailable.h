#pragma once
// UnavailableExecutor: stands in for an executor that is not built or cannot
// be loaded; every attempt fails (on the next loop iteration) with a message
// saying why, so a workflow using it fails cleanly instead of crashing.

#include <uv.h>

#include <memory>
#include <string>

#include "picoflowd/exec/executor.h"

namespace picoflow {

/// An attempt that fails with `reason` on the next loop iteration, as an
/// executor's failed start does (for a start the caller refuses itself).
std::unique_ptr<Attempt> StartFailedAttempt(uv_loop_t* loop, AttemptSink& sink, std::string reason);

class UnavailableExecutor final : public Executor {
 public:
  /// `reason` becomes each attempt's error, e.g.
  /// "the ssh executor is not available yet in this build".
  UnavailableExecutor(uv_loop_t* loop, std::string reason)
      : loop_(loop), reason_(std::move(reason)) {}

  std::unique_ptr<Attempt> Start(const AttemptSpec& spec, AttemptSink& sink) override;

 private:
  uv_loop_t* loop_;
  std::string reason_;
};

}  // namespace picoflow
