#include "picoflowd/engine/run_admission.h"

#include <doctest/doctest.h>

#include "picoflowd/engine/workflow_registry.h"

namespace picoflow {
namespace {

RunLimits Limits(std::optional<int> max, OverlapPolicy overlap) { return {max, overlap}; }

const char* ActionName(Admission a) {
  switch (a) {
    case Admission::kStart: return "start";
    case Admission::kQueue: return "queue";
    case Admission::kRefuse: return "refuse";
  }
  return "?";
}

TEST_CASE("without max_active_runs a run started by hand always starts") {
  for (OverlapPolicy overlap :
       {OverlapPolicy::kSkip, OverlapPolicy::kQueue, OverlapPolicy::kAllow}) {
    const auto d = AdmitManualRun(Limits(std::nullopt, overlap), {1, 2, 3}, 2, false);
    CHECK(ActionName(d.action) == std::string("start"));
    CHECK(d.why.empty());
  }
}

TEST_CASE("below max_active_runs with nothing waiting a run starts") {
  CHECK(AdmitManualRun(Limits(2, OverlapPolicy::kSkip), {7}, 0, false).action == Admission::kStart);
  CHECK(AdmitManualRun(Limits(1, OverlapPolicy::kQueue), {}, 0, false).action == Admission::kStart);
}

TEST_CASE("at max_active_runs overlap skip refuses and overlap queue queues, naming the runs") {
  const auto refused = AdmitManualRun(Limits(1, OverlapPolicy::kSkip), {12}, 0, false);
  CHECK(ActionName(refused.action) == std::string("refuse"));
  CHECK(refused.why == "max_active_runs 1 reached (run 12 running)");
  CHECK(refused.limit == 1);
  const auto queued = AdmitManualRun(Limits(2, OverlapPolicy::kQueue), {12, 13}, 0, false);
  CHECK(ActionName(queued.action) == std::string("queue"));
  CHECK(queued.why == "max_active_runs 2 reached (runs 12, 13 running)");
  CHECK(queued.limit == 2);
}

TEST_CASE("a run queues behind those already waiting even below the limit") {
  const auto d = AdmitManualRun(Limits(2, OverlapPolicy::kQueue), {12, 13}, 3, false);
  CHECK(d.why == "max_active_runs 2 reached (runs 12, 13 running, 3 waiting)");
  // Only waiting (a place freed in this very turn): it does not jump ahead.
  const auto behind = AdmitManualRun(Limits(2, OverlapPolicy::kQueue), {12}, 1, false);
  CHECK(behind.action == Admission::kQueue);
  CHECK(behind.why == "max_active_runs 2 reached (run 12 running, 1 waiting)");
}

TEST_CASE("force starts a run past max_active_runs whatever overlap says") {
  CHECK(AdmitManualRun(Limits(1, OverlapPolicy::kSkip), {12}, 0, true).action == Admission::kStart);
  CHECK(AdmitManualRun(Limits(1, OverlapPolicy::kQueue), {12}, 4, true).action ==
        Admission::kStart);
}

TEST_CASE("the loaded version's limits hold for its name; a name not loaded keeps its own") {
  WorkflowRegistry registry;
  auto loaded = CompileWorkflow(
      "name: w\nmax_active_runs: 3\noverlap: queue\ntasks:\n  - {name: t, type: shell, config: "
      "{command: 'true'}}\n",
      "w.yaml", "submitted", "");
  REQUIRE(loaded.version);
  registry.Put(loaded.version);
  Workflow own;
  own.name = "w";
  own.max_active_runs = 1;
  const RunLimits w = LimitsFor(registry, own);
  CHECK(w.max_active_runs == 3);
  CHECK(w.overlap == OverlapPolicy::kQueue);
  own.name = "one-off";
  const RunLimits one_off = LimitsFor(registry, own);
  CHECK(one_off.max_active_runs == 1);
  CHECK(one_off.overlap == OverlapPolicy::kSkip);
}

TEST_CASE("there is room below max_active_runs, and always without it") {
  CHECK(HasRoom(Limits(2, OverlapPolicy::kSkip), 1));
  CHECK_FALSE(HasRoom(Limits(2, OverlapPolicy::kSkip), 2));
  CHECK(HasRoom(Limits(std::nullopt, OverlapPolicy::kSkip), 100));
}

}  // namespace
}  // namespace picoflow

namespace picoflow {
namespace {

TEST_CASE("runs started by events go one at a time unless overlap: allow or max_active_runs") {
  RunLimits skip;  // no max_active_runs, overlap: skip
  CHECK(AdmitEventRun(skip, {}, 0).action == Admission::kStart);
  const auto refused = AdmitEventRun(skip, {12}, 0);
  CHECK(refused.action == Admission::kRefuse);
  CHECK(refused.why == "one run at a time (overlap: skip; run 12 running)");
  RunLimits queue;
  queue.overlap = OverlapPolicy::kQueue;
  const auto queued = AdmitEventRun(queue, {12}, 2);
  CHECK(queued.action == Admission::kQueue);
  CHECK(queued.why == "one run at a time (overlap: queue; run 12 running, 2 waiting)");
  RunLimits allow;
  allow.overlap = OverlapPolicy::kAllow;
  CHECK(AdmitEventRun(allow, {12, 13, 14}, 0).action == Admission::kStart);
  // A max_active_runs of the workflow's own is named as for runs by hand.
  RunLimits two;
  two.max_active_runs = 2;
  two.overlap = OverlapPolicy::kQueue;
  CHECK(AdmitEventRun(two, {12}, 0).action == Admission::kStart);
  CHECK(AdmitEventRun(two, {12, 13}, 0).why == "max_active_runs 2 reached (runs 12, 13 running)");
  CHECK(IsEventTrigger(RunTrigger::kFile));
  CHECK(IsEventTrigger(RunTrigger::kMqtt));
  CHECK_FALSE(IsEventTrigger(RunTrigger::kFleet));  // a request: a run by hand, from afar
  CHECK_FALSE(IsEventTrigger(RunTrigger::kCron));
}

}  // namespace
}  // namespace picoflow
