#pragma once
// RpcMethods: the handlers of every control-socket method (docs/rpc.md),
// over what the RpcHost (the daemon) offers: its registry, store, runs,
// schedule and the feed that lets run.wait and run.logs follow runs.

#include <cstdint>
#include <memory>
#include <string>

#include "common/result.h"

namespace picoflow {

class Dispatcher;
class RpcCall;
class RpcHost;

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
  void RunWait(RpcCall& call);
  void RunLogs(RpcCall& call);
  void StorePrune(RpcCall& call);
  /// Streams a run's events and output (of one task, if `task` is set) to a
  /// held call as notifications and answers it when the run ends.
  void Follow(const std::shared_ptr<RpcCall>& held, std::int64_t run_id, const std::string& task);
  /// The -32001 for a workflow `name` that is not loaded: says so if the
  /// name is known (only its runs are stored, or its file did not load),
  /// else suggests the closest name the daemon knows, else appends
  /// ` (<otherwise>)` if given.
  Error NoWorkflow(const std::string& name, const std::string& otherwise = "");
  /// run.cancel with `workflow`: cancels each of its runs in progress.
  void CancelWorkflowRuns(RpcCall& call, const std::string& workflow);

  RpcHost& host_;
};

}  // namespace picoflow
