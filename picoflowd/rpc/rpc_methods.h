#pragma once
// RpcMethods: the handlers of every control-socket method (docs/rpc.md),
// over what the RpcHost (the daemon) offers: its registry, store, runs,
// schedule and the feed that lets run.wait and run.logs follow runs.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "picoflowd/rpc/rpc_reply_cache.h"

namespace picoflow {

class Dispatcher;
class RpcCall;
class RpcHost;
struct AdmissionDecision;
struct RpcError;
struct Workflow;
struct WorkflowVersion;

class RpcMethods {
 public:
  /// `host` must outlive the methods.
  explicit RpcMethods(RpcHost& host);
  ~RpcMethods();
  RpcMethods(const RpcMethods&) = delete;
  RpcMethods& operator=(const RpcMethods&) = delete;

  /// Adds every method to the table.
  void Register(Dispatcher& dispatcher);

 private:
  void DaemonStatus(RpcCall& call);
  void DaemonReload(RpcCall& call);
  void WorkflowValidate(RpcCall& call);
  void WorkflowSubmit(RpcCall& call);
  void WorkflowList(RpcCall& call);
  void WorkflowGet(RpcCall& call);
  void WorkflowRemove(RpcCall& call);
  void WorkflowPause(RpcCall& call, bool paused);
  void WorkflowNext(RpcCall& call);
  void RunStart(RpcCall& call);
  void RunGet(RpcCall& call);
  void RunList(RpcCall& call);
  void RunCancel(RpcCall& call);
  void RunRetry(RpcCall& call);
  void RunWait(RpcCall& call);
  void RunLogs(RpcCall& call);
  void StorePrune(RpcCall& call);
  void NotifyList(RpcCall& call);
  void NotifyTest(RpcCall& call);
  /// Streams a run's events and output (of one task, if `task` is set) to a
  /// held call as notifications and answers it when the run ends.
  void Follow(const std::shared_ptr<RpcCall>& held, std::int64_t run_id, const std::string& task);
  /// The -32001 for a workflow `name` that is not loaded: says so if the
  /// name is known (only its runs are stored, or its file did not load),
  /// else suggests the closest name the daemon knows, else appends
  /// ` (<otherwise>)` if given.
  Error NoWorkflow(const std::string& name, const std::string& otherwise = "");
  /// The tasks a live run has to run: those it did not start with as ended.
  int TasksToRun(std::int64_t run_id);
  /// Whether a run of `workflow` started by hand now (run.start, run.retry;
  /// the call's `force`) starts, waits or is refused, beside the `running`
  /// ones (docs/scheduling.md, "Manual and scheduled runs").
  AdmissionDecision Admit(const Workflow& workflow, const std::vector<std::int64_t>& running,
                          RpcCall& call);
  /// The -32002 of a run refused at max_active_runs: says why and how to
  /// override (`override`, the picoflowctl way); data names the runs.
  static RpcError LimitReached(const RpcCall& call, const std::string& workflow,
                               const std::vector<std::int64_t>& running,
                               const AdmissionDecision& refused, const std::string& override);
  /// run.cancel with `workflow`: cancels each of its runs in progress.
  void CancelWorkflowRuns(RpcCall& call, const std::string& workflow);

  /// The workflow.get result of `version` (as `paused` says), from the
  /// cache or serialised into it.
  std::shared_ptr<const std::string> WorkflowGetResult(
      const std::shared_ptr<const WorkflowVersion>& version, bool paused);

  RpcHost& host_;
  /// workflow.get results per workflow version, serialised once: a version's
  /// source and tasks never change, and a large one costs milliseconds to
  /// serialise, which a read-only client could otherwise make the daemon
  /// spend without end. 4 MiB holds the largest workflow (a 1 MiB file of
  /// 10,000 tasks) and many small ones.
  ReplyCache workflow_get_cache_{4 * 1024 * 1024};
};

}  // namespace picoflow
