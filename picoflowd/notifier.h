#pragma once
// Notifier: tells a workflow's notify targets of its runs
// (docs/notifications.md). A RunObserver: it builds each notification when
// a run starts (a ping's /start), retries a task, ends, or when a fire is
// skipped, sends it through a RequestSender (the http module, loaded on the
// first send), records every attempt in the store, and tries a failed one
// again after 2, 4 and 8 s. Deliveries to one target of one run go in the
// order they were made, one at a time. Nothing here waits for a delivery:
// runs never do.

#include <uv.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/notify.h"
#include "common/workflow.h"
#include "picoflowd/engine/run_observer.h"
#include "picoflowd/exec/request_sender.h"
#include "picoflowd/notify_message.h"
#include "picoflowd/util/uv_handle.h"

namespace picoflow {

class Store;

class Notifier final : public RunObserver {
 public:
  /// The targets of a workflow (its own `notify:`, else the daemon's
  /// default; empty: none) and the secrets their `${secret:NAME}` may name
  /// (the workflow's own; none for the daemon's targets).
  struct Setup {
    NotifyTargets targets;
    std::vector<Secret> secrets;
  };
  /// Told of every delivery attempt (the metrics).
  using CountFn =
      std::function<void(const std::string& workflow, const std::string& target, bool sent)>;

  /// `loop` and `store` must outlive the notifier. `defaults`: the daemon's
  /// targets, for a workflow without `notify:`.
  Notifier(uv_loop_t* loop, Store& store, std::unique_ptr<RequestSender> sender,
           NotifyTargets defaults, CountFn count);
  ~Notifier() override;
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  /// What `workflow`'s runs are told to, and with which secrets.
  Setup SetupOf(const Workflow& workflow) const;

  /// Takes the targets of the version the run executes (not the workflow's
  /// current one): each of its notifications goes to them.
  void OnRunStarted(std::int64_t run_id, const Workflow& workflow, bool resumed) override;
  void OnTaskEvent(const TaskEvent& event) override;
  void OnRunFinished(std::int64_t run_id, RunStatus status) override;
  /// A scheduled fire of `workflow` was skipped, recorded as run `run_id`.
  void OnSkippedFire(const Workflow& workflow, std::int64_t run_id, const std::string& reason);

  /// Sends a test notification to each target of `workflow`, once each (no
  /// retries), and calls `done` with every outcome, in the order of the
  /// targets, once all are known.
  void Test(const Workflow& workflow, std::function<void(std::vector<NotifyTestOutcome>)> done);

  /// The daemon is stopping: calls `done` (from a later loop turn: it may
  /// destroy the notifier) once no delivery is left. With `retries`, failed
  /// deliveries are tried again as usual (`picoflowd --once`); without,
  /// those waiting for a retry are tried once more now and never again.
  void Drain(bool retries, std::function<void()> done);

  /// The daemon stops: drops the deliveries still going or waiting (their
  /// requests aborted, their handles closed); nothing is sent after.
  void Close();

  /// Deliveries made and not yet finished (sent, or given up).
  std::size_t pending() const;

 private:
  struct Delivery {
    std::optional<std::int64_t> run_id;
    std::string workflow;
    NotifyTarget target;
    /// The secrets its url and headers name, read at each send.
    std::vector<Secret> secrets;
    std::string event;  ///< failure, ..., start, test
    OutboundRequest request;
    int attempt = 0;
    bool in_flight = false;
    bool retries = true;
    std::chrono::steady_clock::time_point due;
    std::function<void(const RequestOutcome&)> on_end;  ///< a test's
  };
  using Key = std::string;  ///< run (or test) and target

  void Notify(std::int64_t run_id, const std::string& workflow, const Setup& setup,
              NotifyEvent event, const NotifyMessage& message);
  /// A run's message: status, duration, failed tasks and their last output.
  std::optional<NotifyMessage> RunMessage(std::int64_t run_id, std::string_view event);
  std::string TaskTail(std::int64_t run_id, const std::string& task, int attempt);
  /// The request of `target` for `event` (`start` for a ping's start).
  OutboundRequest Request(const NotifyTarget& target, std::string_view event,
                          const NotifyMessage& message) const;
  /// A delivery to `target` of `setup`, about `run_id` (none: a test).
  Delivery Make(std::optional<std::int64_t> run_id, const std::string& workflow, const Setup& setup,
                const NotifyTarget& target, std::string event, const NotifyMessage& message) const;
  void Enqueue(const Key& key, Delivery delivery);
  void Start(const Key& key);
  void Finished(const Key& key, const RequestOutcome& outcome);
  void Record(const Delivery& d, const RequestOutcome& outcome);
  void ArmTimer();
  void OnTimer();
  /// Calls the Drain callback, on the next loop turn, once nothing is left.
  void CheckDrained();
  void OnDrained();

  uv_loop_t* loop_;
  Store& store_;
  NotifyTargets defaults_;
  CountFn count_;
  std::string host_;
  struct RunTargets {
    std::string workflow;
    Setup setup;
  };
  std::map<std::int64_t, RunTargets> runs_;  ///< runs started with targets
  std::function<void()> drained_;            ///< Drain's callback, until called
  bool drain_retries_ = true;
  std::map<Key, std::deque<Delivery>> queues_;
  std::set<Key> logged_;  ///< a failure of the key was logged
  std::uint64_t tests_ = 0;
  bool closed_ = false;
  std::unique_ptr<UvHandle<uv_timer_t>> timer_;        ///< made at the first retry
  std::unique_ptr<UvHandle<uv_timer_t>> drain_timer_;  ///< made by Drain
  std::unique_ptr<RequestSender> sender_;              ///< last: dropped first, with its callbacks
};

}  // namespace picoflow
