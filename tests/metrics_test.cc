// Metrics (the observer and its exposition); the listener is tested in
// http_server_test.cc and against real scrapers in metrics_test.py.

#include "picoflowd/metrics.h"

#include <doctest/doctest.h>

#include <string>

#include "picoflowd/engine/run.h"

namespace picoflow {
namespace {

using namespace std::chrono_literals;

TaskEvent Event(std::int64_t run, const char* task, TaskEventKind event, const char* status,
                std::optional<std::chrono::milliseconds> duration = std::nullopt) {
  TaskEvent e;
  e.run_id = run;
  e.workflow = "etl";
  e.task = task;
  e.event = event;
  e.status = status;
  e.duration = duration;
  return e;
}

bool Has(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos;
}

TEST_CASE("a run's task events become counters, histograms and timestamps by workflow and task") {
  MetricsSources sources;
  sources.active_runs = [] { return std::size_t{2}; };
  sources.workflows = [] { return std::vector<std::string>{"etl", "q\"uote"}; };
  sources.next_fire = [](const std::string& w) -> std::optional<std::int64_t> {
    if (w == "etl") return 1'800'000'000;
    return std::nullopt;
  };
  sources.skipped_fires = [](const std::string& w) { return w == "etl" ? 3 : 0; };
  sources.rpc_requests_dropped = [] { return std::uint64_t{29}; };
  Metrics m(sources);
  m.OnTaskEvent(Event(7, "extract", TaskEventKind::kStarted, "running"));
  m.OnTaskEvent(Event(7, "extract", TaskEventKind::kRetrying, "failed", 300ms));
  m.OnTaskEvent(Event(7, "extract", TaskEventKind::kStarted, "running"));
  m.OnTaskEvent(Event(7, "extract", TaskEventKind::kFinished, "succeeded", 2000ms));
  m.OnTaskEvent(Event(7, "load", TaskEventKind::kSkipped, "skipped"));
  m.OnAttemptInterrupted("etl", "load");
  m.OnAttemptInterrupted("etl", "load");
  m.OnRunFinished(7, RunStatus::kSucceeded);
  m.OnRunFinished(99, RunStatus::kFailed);  // never seen, no lookup: not counted
  const std::string text = m.Render();
  CHECK(Has(text, "picoflow_runs_started_total{workflow=\"etl\"} 1"));
  CHECK(Has(text, "picoflow_runs_finished_total{workflow=\"etl\",status=\"succeeded\"} 1"));
  CHECK(Has(text,
            "picoflow_task_attempts_total{workflow=\"etl\",task=\"extract\",status=\"failed\"} 1"));
  CHECK(Has(
      text,
      "picoflow_task_attempts_total{workflow=\"etl\",task=\"extract\",status=\"succeeded\"} 1"));
  CHECK(Has(text, "picoflow_task_retries_total{workflow=\"etl\",task=\"extract\"} 1"));
  CHECK(Has(text, "picoflow_task_interruptions_total{workflow=\"etl\",task=\"load\"} 2"));
  CHECK(Has(
      text,
      "picoflow_task_attempt_duration_seconds_bucket{workflow=\"etl\",task=\"extract\",le=\"0.5\"} 1"));
  CHECK(Has(
      text,
      "picoflow_task_attempt_duration_seconds_bucket{workflow=\"etl\",task=\"extract\",le=\"2.5\"} 2"));
  CHECK(Has(
      text,
      "picoflow_task_attempt_duration_seconds_bucket{workflow=\"etl\",task=\"extract\",le=\"+Inf\"} 2"));
  CHECK(Has(text,
            "picoflow_task_attempt_duration_seconds_sum{workflow=\"etl\",task=\"extract\"} 2.3"));
  CHECK(Has(text, "picoflow_run_duration_seconds_count{workflow=\"etl\"} 1"));
  CHECK(Has(text, "picoflow_active_runs 2"));
  CHECK(Has(text, "picoflow_active_tasks 0"));
  CHECK(Has(text, "picoflow_rpc_requests_dropped_total 29"));
  CHECK(Has(text, "picoflow_next_fire_timestamp_seconds{workflow=\"etl\"} 1800000000"));
  CHECK(Has(text, "picoflow_skipped_fires_total{workflow=\"etl\",reason=\"overlap\"} 3"));
  CHECK(Has(text, "picoflow_skipped_fires_total{workflow=\"q\\\"uote\",reason=\"overlap\"} 0"));
  CHECK(text.find("picoflow_last_success_timestamp_seconds{workflow=\"etl\"} ") !=
        std::string::npos);
  CHECK(text.find("picoflow_last_failure_timestamp_seconds{") == std::string::npos);
  CHECK(text.find("run=") == std::string::npos);  // no run ids in labels
  CHECK(text.find("# TYPE picoflow_run_duration_seconds histogram\n") != std::string::npos);
}

TEST_CASE("a handler that ends without succeeding is counted by handler; a retried one once") {
  Metrics m(MetricsSources{});
  TaskEvent retried = Event(7, "on_failure", TaskEventKind::kRetrying, "failed", 10ms);
  retried.handler = true;
  TaskEvent failed = Event(7, "on_failure", TaskEventKind::kFinished, "timed_out", 10ms);
  failed.handler = true;
  TaskEvent ok = Event(7, "on_exit", TaskEventKind::kFinished, "succeeded", 10ms);
  ok.handler = true;
  m.OnTaskEvent(retried);
  m.OnTaskEvent(failed);
  m.OnTaskEvent(ok);
  m.OnTaskEvent(Event(7, "extract", TaskEventKind::kFinished, "failed", 10ms));  // a task
  const std::string text = m.Render();
  CHECK(Has(text, "picoflow_handler_failures_total{workflow=\"etl\",handler=\"on_failure\"} 1"));
  CHECK(text.find("handler=\"on_exit\"") == std::string::npos);
  CHECK(text.find("handler=\"extract\"") == std::string::npos);
}

TEST_CASE("label values escape backslash, quote and newline") {
  CHECK(EscapeLabel("a\\b\"c\nd") == "a\\\\b\\\"c\\nd");
}

}  // namespace
}  // namespace picoflow
