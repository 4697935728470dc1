#pragma once
// RpcMethods: the handlers of every control-socket method (docs/rpc.md),
// over the Daemon's registry, store and runs. Owns the feed that lets
// run.wait and run.logs follow runs as they happen.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "picoflowd/engine/run_observer.h"

namespace picoflow {

class Daemon;
class Dispatcher;
class RpcCall;

/// Fans run events out to the calls subscribed to one run.
class RunFeed final : public RunObserver {
 public:
  struct Subscriber {
    std::int64_t run_id = 0;
    std::function<void(const TaskEvent&)> on_event;    ///< may be empty
    std::function<void(const OutputEvent&)> on_output; ///< may be empty
    std::function<void(RunStatus)> on_finished;        ///< may unsubscribe
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

class RpcMethods {
 public:
  /// Registers the feed as an engine observer of `daemon`.
  explicit RpcMethods(Daemon& daemon);
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

  Daemon& daemon_;
  RunFeed feed_;
};

}  // namespace picoflow
