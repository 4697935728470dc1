#include "picoflowd/engine/run_admission.h"

#include "picoflowd/engine/workflow_registry.h"

namespace picoflow {
namespace {

// "run 12 running", "runs 12, 13 running", "run 12 running, 1 waiting".
std::string DescribeLoad(const std::vector<std::int64_t>& running, std::size_t waiting) {
  std::string ids;
  for (std::int64_t id : running) ids += (ids.empty() ? "" : ", ") + std::to_string(id);
  std::string out;
  if (!running.empty()) out = (running.size() == 1 ? "run " : "runs ") + ids + " running";
  if (waiting > 0) out += (out.empty() ? "" : ", ") + std::to_string(waiting) + " waiting";
  return out;
}

}  // namespace

RunLimits LimitsFor(const WorkflowRegistry& registry, const Workflow& own) {
  const Workflow* w = &own;
  if (const auto* entry = registry.Find(own.name); entry != nullptr && entry->version) {
    w = entry->version->workflow.get();
  }
  return {w->max_active_runs, w->overlap};
}

RunLimits EventLimits(RunLimits limits) {
  if (!limits.max_active_runs && limits.overlap != OverlapPolicy::kAllow)
    limits.max_active_runs = 1;
  return limits;
}

AdmissionDecision AdmitEventRun(const RunLimits& limits, const std::vector<std::int64_t>& running,
                                std::size_t waiting) {
  AdmissionDecision d = AdmitManualRun(EventLimits(limits), running, waiting, false);
  if (d.action != Admission::kStart && !limits.max_active_runs) {
    d.why = std::string("one run at a time (overlap: ") +
            (limits.overlap == OverlapPolicy::kQueue ? "queue" : "skip") + "; " +
            DescribeLoad(running, waiting) + ")";
  }
  return d;
}

bool IsEventTrigger(RunTrigger trigger) {
  return trigger == RunTrigger::kFile || trigger == RunTrigger::kWebhook ||
         trigger == RunTrigger::kMqtt;
}

bool HasRoom(const RunLimits& limits, std::size_t running) {
  return !limits.max_active_runs || running < static_cast<std::size_t>(*limits.max_active_runs);
}

AdmissionDecision AdmitManualRun(const RunLimits& limits, const std::vector<std::int64_t>& running,
                                 std::size_t waiting, bool force) {
  if (force || !limits.max_active_runs) return {};
  if (HasRoom(limits, running.size()) && waiting == 0) return {};
  // The loader refuses max_active_runs with overlap: allow; only skip and
  // queue get here.
  AdmissionDecision d;
  d.action = limits.overlap == OverlapPolicy::kQueue ? Admission::kQueue : Admission::kRefuse;
  d.limit = *limits.max_active_runs;
  d.why = "max_active_runs " + std::to_string(d.limit) + " reached (" +
          DescribeLoad(running, waiting) + ")";
  return d;
}

}  // namespace picoflow
