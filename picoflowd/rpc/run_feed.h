#pragma once
// RunFeed: the run observer of the RPC side. Fans a run's task events,
// output and end out to the calls that follow it (run.wait, run.logs and
// run.start with follow).

#include <cstdint>
#include <functional>
#include <map>

#include "picoflowd/engine/run_observer.h"

namespace picoflow {

/// Fans run events out to the calls subscribed to one run.
class RunFeed final : public RunObserver {
 public:
  struct Subscriber {
    std::int64_t run_id = 0;
    std::function<void(const TaskEvent&)> on_event;     ///< may be empty
    std::function<void(const OutputEvent&)> on_output;  ///< may be empty
    std::function<void(RunStatus)> on_finished;         ///< may unsubscribe
  };
  /// Returns a token for Unsubscribe.
  std::uint64_t Subscribe(Subscriber subscriber);
  /// Idempotent; safe from inside a callback.
  void Unsubscribe(std::uint64_t token);

  void OnTaskEvent(const TaskEvent& e) override;
  void OnOutput(const OutputEvent& e) override;
  void OnRunFinished(std::int64_t run_id, RunStatus status) override;

 private:
  template <class F>
  void ForRun(std::int64_t run_id, F&& f);

  std::map<std::uint64_t, Subscriber> subscribers_;
  std::uint64_t next_token_ = 1;
};

}  // namespace picoflow
