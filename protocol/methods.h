#pragma once
// The names of every RPC method (`noun.verb`), of the notifications the
// daemon sends on a held call, and of the task events they carry. The daemon
// registers and sends under these and picoflowctl reads them; nothing else
// spells them out.

#include <string_view>

namespace picoflow::method {

inline constexpr char kDaemonVersion[] = "daemon.version";        ///< {protocol, version}
inline constexpr char kDaemonStatus[] = "daemon.status";          ///< uptime, runs, load
inline constexpr char kDaemonReload[] = "daemon.reload";          ///< re-read workflow files
inline constexpr char kWorkflowValidate[] = "workflow.validate";  ///< check without loading
inline constexpr char kWorkflowSubmit[] = "workflow.submit";      ///< add or replace a workflow
inline constexpr char kWorkflowList[] = "workflow.list";          ///< loaded workflows
inline constexpr char kWorkflowGet[] = "workflow.get";            ///< one workflow's definition
inline constexpr char kWorkflowRemove[] = "workflow.remove";      ///< unload a workflow
inline constexpr char kWorkflowPause[] = "workflow.pause";        ///< stop scheduled fires
inline constexpr char kWebToken[] = "web.token";                  ///< the HTTP write token
inline constexpr char kWorkflowResume[] = "workflow.resume";      ///< resume scheduled fires
inline constexpr char kWorkflowNext[] = "workflow.next";          ///< upcoming fire times
inline constexpr char kRunStart[] = "run.start";                  ///< trigger a run now
inline constexpr char kRunGet[] = "run.get";                      ///< one run with its tasks
inline constexpr char kRunList[] = "run.list";                    ///< recent runs, filtered
inline constexpr char kRunCancel[] = "run.cancel";                ///< cancel a live run
inline constexpr char kRunRetry[] = "run.retry";      ///< run again what did not succeed
inline constexpr char kRunWait[] = "run.wait";        ///< answer when a run ends
inline constexpr char kRunLogs[] = "run.logs";        ///< output; `follow` streams
inline constexpr char kStorePrune[] = "store.prune";  ///< apply retention now
inline constexpr char kNotifyList[] = "notify.list";  ///< notification deliveries
inline constexpr char kNotifyTest[] = "notify.test";  ///< send a test notification

/// Every method above, for tables and tests.
inline constexpr std::string_view kAll[] = {
    kDaemonVersion, kDaemonStatus, kDaemonReload,   kWorkflowValidate, kWorkflowSubmit,
    kWorkflowList,  kWorkflowGet,  kWorkflowRemove, kWorkflowPause,    kWorkflowResume,
    kWorkflowNext,  kRunStart,     kRunGet,         kRunList,          kRunCancel,
    kRunWait,       kRunLogs,      kRunRetry,       kStorePrune,       kNotifyList,
    kNotifyTest,    kWebToken,
};

}  // namespace picoflow::method

/// Notifications on a held call (run.start and run.logs with follow).
namespace picoflow::notification {

/// {run_id, workflow, tasks, also_running}: the run exists and starts (a
/// queued one: when it starts, after its run.queued).
inline constexpr char kRunStarted[] = "run.started";
/// {run_id, workflow, tasks, also_running, reason}: the run exists and waits
/// for a place among the workflow's runs (max_active_runs).
inline constexpr char kRunQueued[] = "run.queued";
inline constexpr char kRunEvent[] = "run.event";    ///< a task's state changed
inline constexpr char kRunOutput[] = "run.output";  ///< a chunk of task output

}  // namespace picoflow::notification

/// The `event` of a run.event notification.
namespace picoflow::task_event {

inline constexpr char kStarted[] = "started";      ///< an attempt started
inline constexpr char kFinished[] = "finished";    ///< an attempt ended, no retry follows
inline constexpr char kRetrying[] = "retrying";    ///< an attempt ended, another follows
inline constexpr char kSkipped[] = "skipped";      ///< a dependency failed
inline constexpr char kCancelled[] = "cancelled";  ///< the run was cancelled before it ran

}  // namespace picoflow::task_event
