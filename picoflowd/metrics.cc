#include "picoflowd/metrics.h"

#include <dirent.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "picoflowd/engine/run.h"

namespace picoflow {
namespace {

double UnixNow() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// The shortest of 15 or 17 significant digits that reads back exactly.
std::string Num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.15g", v);
  if (std::strtod(buf, nullptr) != v) std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

class Writer {
 public:
  void Family(const char* name, const char* type, const char* help) {
    out_ << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
  }
  // labels: "k1", v1, "k2", v2 ... already paired.
  void Sample(const std::string& name,
              const std::vector<std::pair<const char*, std::string>>& labels, double value) {
    out_ << name;
    if (!labels.empty()) {
      out_ << '{';
      for (std::size_t i = 0; i < labels.size(); ++i) {
        if (i > 0) out_ << ',';
        out_ << labels[i].first << "=\"" << EscapeLabel(labels[i].second) << '"';
      }
      out_ << '}';
    }
    out_ << ' ' << Num(value) << '\n';
  }
  void Hist(const std::string& name, std::vector<std::pair<const char*, std::string>> labels,
            const Histogram& h) {
    for (std::size_t i = 0; i < Histogram::kBounds.size(); ++i) {
      auto with = labels;
      with.emplace_back("le", Num(Histogram::kBounds[i]));
      Sample(name + "_bucket", with, static_cast<double>(h.buckets[i]));
    }
    auto inf = labels;
    inf.emplace_back("le", "+Inf");
    Sample(name + "_bucket", inf, static_cast<double>(h.count));
    Sample(name + "_sum", labels, h.sum);
    Sample(name + "_count", labels, static_cast<double>(h.count));
  }
  std::string Take() { return out_.str(); }

 private:
  std::ostringstream out_;
};

struct ProcessStats {
  double cpu_seconds = 0;
  double resident_bytes = 0;
  double open_fds = 0;
};

ProcessStats ReadProcessStats() {
  ProcessStats s;
  std::ifstream stat("/proc/self/stat");
  std::string line;
  std::getline(stat, line);
  const auto paren = line.rfind(')');
  if (paren != std::string::npos) {
    std::istringstream fields(line.substr(paren + 2));
    std::vector<std::string> f;
    for (std::string x; fields >> x;) f.push_back(x);
    // After "pid (comm) ": state is field 3, so field N is f[N - 3].
    if (f.size() > 21) {
      const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
      s.cpu_seconds = (std::stod(f[11]) + std::stod(f[12])) / ticks;
      s.resident_bytes = std::stod(f[21]) * static_cast<double>(sysconf(_SC_PAGESIZE));
    }
  }
  if (DIR* d = opendir("/proc/self/fd")) {
    int n = 0;
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] != '.') ++n;
    }
    closedir(d);
    s.open_fds = n - 1;  // not the directory's own fd
  }
  return s;
}

}  // namespace

void Histogram::Observe(double seconds) {
  ++count;
  sum += seconds;
  for (std::size_t i = 0; i < kBounds.size(); ++i) {
    if (seconds <= kBounds[i]) ++buckets[i];
  }
}

std::string EscapeLabel(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

Metrics::Metrics(MetricsSources sources) : sources_(std::move(sources)), start_time_(UnixNow()) {}

void Metrics::OnTaskEvent(const TaskEvent& e) {
  const std::string workflow(e.workflow);
  if (e.event == TaskEventKind::kStarted && live_.count(e.run_id) == 0) {
    live_[e.run_id] = RunStart{workflow, std::chrono::steady_clock::now()};
    ++runs_started_[workflow];
  }
  if (e.event != TaskEventKind::kFinished && e.event != TaskEventKind::kRetrying) return;
  const Key2 key{workflow, std::string(e.task)};
  ++attempts_[{key, std::string(e.status)}];
  if (e.event == TaskEventKind::kRetrying) ++retries_[key];
  if (e.handler && e.event == TaskEventKind::kFinished && e.status != "succeeded") {
    ++handler_failures_[key];
  }
  if (e.duration) task_seconds_[key].Observe(std::chrono::duration<double>(*e.duration).count());
}

void Metrics::OnAttemptInterrupted(std::string_view workflow, std::string_view task) {
  ++interruptions_[{std::string(workflow), std::string(task)}];
}

void Metrics::OnRunFinished(std::int64_t run_id, RunStatus status) {
  std::string workflow;
  std::optional<double> seconds;
  if (auto it = live_.find(run_id); it != live_.end()) {
    workflow = it->second.workflow;
    seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - it->second.at).count();
    live_.erase(it);
  } else if (sources_.workflow_of) {
    workflow = sources_.workflow_of(run_id);
  }
  if (workflow.empty()) return;
  ++runs_finished_[{workflow, RunStatusName(status)}];
  if (seconds) run_seconds_[workflow].Observe(*seconds);
  if (status == RunStatus::kSucceeded) last_success_[workflow] = UnixNow();
  if (status == RunStatus::kFailed) last_failure_[workflow] = UnixNow();
}

void Metrics::CountDelivery(const std::string& workflow, const std::string& target, bool sent) {
  ++notifications_[{{workflow, target}, sent ? "sent" : "failed"}];
}

std::string Metrics::Render() const {
  Writer w;
  w.Family("picoflow_build_info", "gauge", "Build information; the value is always 1.");
  w.Sample("picoflow_build_info", {{"version", PICOFLOW_VERSION}}, 1);
  w.Family("picoflow_runs_started_total", "counter", "Runs that started a task, by workflow.");
  for (const auto& [wf, n] : runs_started_) {
    w.Sample("picoflow_runs_started_total", {{"workflow", wf}}, static_cast<double>(n));
  }
  w.Family("picoflow_runs_finished_total", "counter", "Runs that ended, by workflow and status.");
  for (const auto& [k, n] : runs_finished_) {
    w.Sample("picoflow_runs_finished_total", {{"workflow", k.first}, {"status", k.second}},
             static_cast<double>(n));
  }
  w.Family("picoflow_task_attempts_total", "counter",
           "Task attempts that ended, by workflow, task and attempt status.");
  for (const auto& [k, n] : attempts_) {
    w.Sample("picoflow_task_attempts_total",
             {{"workflow", k.first.first}, {"task", k.first.second}, {"status", k.second}},
             static_cast<double>(n));
  }
  w.Family("picoflow_task_retries_total", "counter",
           "Failed attempts followed by a retry, by workflow and task.");
  for (const auto& [k, n] : retries_) {
    w.Sample("picoflow_task_retries_total", {{"workflow", k.first}, {"task", k.second}},
             static_cast<double>(n));
  }
  w.Family("picoflow_handler_failures_total", "counter",
           "Handlers (on_success, on_failure, on_cancel, on_exit) that failed, timed out or were"
           " cancelled, by workflow and handler.");
  for (const auto& [k, n] : handler_failures_) {
    w.Sample("picoflow_handler_failures_total", {{"workflow", k.first}, {"handler", k.second}},
             static_cast<double>(n));
  }
  w.Family("picoflow_notifications_total", "counter",
           "Notification delivery attempts, by workflow, target and outcome (sent, failed).");
  for (const auto& [k, n] : notifications_) {
    w.Sample("picoflow_notifications_total",
             {{"workflow", k.first.first}, {"target", k.first.second}, {"outcome", k.second}},
             static_cast<double>(n));
  }
  w.Family("picoflow_task_interruptions_total", "counter",
           "Task attempts interrupted because picoflowd stopped while they ran (a crash, a"
           " restart), by workflow and task.");
  for (const auto& [k, n] : interruptions_) {
    w.Sample("picoflow_task_interruptions_total", {{"workflow", k.first}, {"task", k.second}},
             static_cast<double>(n));
  }
  w.Family("picoflow_run_duration_seconds", "histogram",
           "Run durations from the first task start to the end, by workflow.");
  for (const auto& [wf, h] : run_seconds_)
    w.Hist("picoflow_run_duration_seconds", {{"workflow", wf}}, h);
  w.Family("picoflow_task_attempt_duration_seconds", "histogram",
           "Task attempt durations, by workflow and task.");
  for (const auto& [k, h] : task_seconds_) {
    w.Hist("picoflow_task_attempt_duration_seconds", {{"workflow", k.first}, {"task", k.second}},
           h);
  }
  w.Family("picoflow_last_success_timestamp_seconds", "gauge",
           "When a run of the workflow last succeeded (Unix time).");
  for (const auto& [wf, t] : last_success_) {
    w.Sample("picoflow_last_success_timestamp_seconds", {{"workflow", wf}}, t);
  }
  w.Family("picoflow_last_failure_timestamp_seconds", "gauge",
           "When a run of the workflow last failed (Unix time).");
  for (const auto& [wf, t] : last_failure_) {
    w.Sample("picoflow_last_failure_timestamp_seconds", {{"workflow", wf}}, t);
  }
  w.Family("picoflow_active_runs", "gauge", "Runs in progress.");
  w.Sample("picoflow_active_runs", {}, sources_.active_runs ? double(sources_.active_runs()) : 0);
  w.Family("picoflow_active_tasks", "gauge", "Task attempts running.");
  w.Sample("picoflow_active_tasks", {},
           sources_.active_tasks ? double(sources_.active_tasks()) : 0);
  const std::vector<std::string> workflows =
      sources_.workflows ? sources_.workflows() : std::vector<std::string>{};
  w.Family("picoflow_next_fire_timestamp_seconds", "gauge",
           "The next cron fire of each scheduled workflow (Unix time).");
  for (const std::string& wf : workflows) {
    if (auto next = sources_.next_fire ? sources_.next_fire(wf) : std::nullopt) {
      w.Sample("picoflow_next_fire_timestamp_seconds", {{"workflow", wf}}, double(*next));
    }
  }
  w.Family("picoflow_skipped_fires_total", "counter",
           "Cron fires not run, by workflow and reason (overlap: a run was still going).");
  for (const std::string& wf : workflows) {
    if (!sources_.skipped_fires) break;
    w.Sample("picoflow_skipped_fires_total", {{"workflow", wf}, {"reason", "overlap"}},
             double(sources_.skipped_fires(wf)));
  }
  w.Family("picoflow_store_size_bytes", "gauge", "Size of the SQLite database.");
  if (auto bytes = sources_.store_bytes ? sources_.store_bytes() : std::nullopt) {
    w.Sample("picoflow_store_size_bytes", {}, double(*bytes));
  }
  const StoreHealth health = sources_.store_health ? sources_.store_health() : StoreHealth{};
  w.Family("picoflow_store_degraded", "gauge",
           "1 while the store keeps changes in memory because its disk is full.");
  w.Sample("picoflow_store_degraded", {}, health.degraded ? 1.0 : 0.0);
  w.Family("picoflow_store_kept_changes", "gauge",
           "Changes of runs kept in memory, waiting for room on the disk.");
  w.Sample("picoflow_store_kept_changes", {}, double(health.kept_writes));
  w.Family("picoflow_rpc_requests_dropped_total", "counter",
           "Control-socket requests dropped unserved: their client hung up (or was closed) "
           "before their turn.");
  w.Sample("picoflow_rpc_requests_dropped_total", {},
           sources_.rpc_requests_dropped ? double(sources_.rpc_requests_dropped()) : 0);
  const ProcessStats p = ReadProcessStats();
  w.Family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
  w.Sample("process_resident_memory_bytes", {}, p.resident_bytes);
  w.Family("process_cpu_seconds_total", "counter", "User and system CPU time in seconds.");
  w.Sample("process_cpu_seconds_total", {}, p.cpu_seconds);
  w.Family("process_open_fds", "gauge", "Open file descriptors.");
  w.Sample("process_open_fds", {}, p.open_fds);
  w.Family("process_start_time_seconds", "gauge", "When the daemon started (Unix time).");
  w.Sample("process_start_time_seconds", {}, start_time_);
  return w.Take();
}

}  // namespace picoflow
