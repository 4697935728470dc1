#pragma once
// Metrics: the daemon's Prometheus metrics. A RunObserver that counts run
// and attempt outcomes and durations per workflow and task (memory is
// proportional to workflows x tasks, never to history), and renders them
// with gauges read at scrape time in the text exposition format 0.0.4.
// Labels are workflow and task names and fixed status words only.

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "picoflowd/engine/run_observer.h"
#include "picoflowd/store/store.h"

namespace picoflow {

/// A cumulative histogram with fixed bucket bounds (seconds).
struct Histogram {
  static constexpr std::array<double, 12> kBounds = {0.1, 0.5, 1,   2.5, 5,    10,
                                                     30,  60,  300, 900, 3600, 14400};
  std::array<std::uint64_t, kBounds.size()> buckets{};  ///< observations <= bound
  std::uint64_t count = 0;
  double sum = 0;
  void Observe(double seconds);
};

/// What the metrics read from the rest of the daemon at scrape time.
struct MetricsSources {
  std::function<std::size_t()> active_runs;
  std::function<std::size_t()> active_tasks;
  /// Loaded workflow names.
  std::function<std::vector<std::string>()> workflows;
  /// A workflow's next cron fire (Unix seconds), if scheduled.
  std::function<std::optional<std::int64_t>(const std::string&)> next_fire;
  /// Fires skipped by the overlap policy since start.
  std::function<std::int64_t(const std::string&)> skipped_fires;
  /// Bytes of the database file; nullopt if unknown.
  std::function<std::optional<std::uint64_t>()> store_bytes;
  /// Whether the store is degraded (a full disk) and what it keeps.
  std::function<StoreHealth()> store_health;
  /// The workflow of a live run, empty if unknown.
  std::function<std::string(std::int64_t run_id)> workflow_of;
  /// Control-socket requests dropped unserved because their connection
  /// closed first (RpcServerStats::requests_dropped).
  std::function<std::uint64_t()> rpc_requests_dropped;
};

class Metrics : public RunObserver {
 public:
  explicit Metrics(MetricsSources sources);

  void OnTaskEvent(const TaskEvent& event) override;
  void OnAttemptInterrupted(std::string_view workflow, std::string_view task) override;
  void OnRunFinished(std::int64_t run_id, RunStatus status) override;

  /// A notification delivery attempt to `target` of `workflow` (notifier.h).
  void CountDelivery(const std::string& workflow, const std::string& target, bool sent);

  /// The whole exposition, every family with HELP and TYPE.
  std::string Render() const;

 private:
  struct RunStart {
    std::string workflow;
    std::chrono::steady_clock::time_point at;
  };
  using Key2 = std::pair<std::string, std::string>;

  MetricsSources sources_;
  double start_time_;                      ///< Unix seconds the daemon started
  std::map<std::int64_t, RunStart> live_;  ///< runs seen starting, until they end
  std::map<std::string, std::uint64_t> runs_started_;
  std::map<Key2, std::uint64_t> runs_finished_;                          ///< workflow, status
  std::map<std::pair<Key2, std::string>, std::uint64_t> attempts_;       ///< (wf, task), status
  std::map<Key2, std::uint64_t> retries_;                                ///< wf, task
  std::map<Key2, std::uint64_t> handler_failures_;                       ///< wf, handler
  std::map<Key2, std::uint64_t> interruptions_;                          ///< wf, task
  std::map<std::pair<Key2, std::string>, std::uint64_t> notifications_;  ///< (wf, target), outcome
  std::map<std::string, Histogram> run_seconds_;
  std::map<Key2, Histogram> task_seconds_;
  std::map<std::string, double> last_success_;
  std::map<std::string, double> last_failure_;
};

/// Escapes a label value: backslash, double quote and newline.
std::string EscapeLabel(const std::string& value);

}  // namespace picoflow
