// Daemon::RunOnce: `picoflowd --once FILE` — one run in the foreground with
// the same engine, store and logs as the daemon, and no socket.

#include <stdlib.h>

#include <cstdio>
#include <filesystem>

#include "common/task_paths.h"
#include "common/workflow_load.h"
#include "picoflowd/daemon.h"
#include "picoflowd/engine/run_manager.h"
#include "picoflowd/engine/run_observer.h"
#include "picoflowd/rpc/rpc_json.h"
#include "picoflowd/store/group_commit.h"
#include "picoflowd/store/store.h"
#include "picoflowd/util/logging.h"
#include "protocol/progress.h"

namespace picoflow {
namespace {

/// Prints task events and output as they happen, in the words and shapes of
/// `picoflowctl run --follow` (protocol/progress.h over the same JSON).
class ProgressPrinter final : public RunObserver {
 public:
  void OnTaskEvent(const TaskEvent& e) override {
    output_.Finish();
    std::printf("%s\n", progress_.Line(TaskEventJson(e), false).c_str());
    std::fflush(stdout);
  }

  void OnOutput(const OutputEvent& e) override {
    output_.Print(std::string(e.task), e.stream == OutputStream::kStderr, std::string(e.data));
  }

  void OnRunFinished(std::int64_t, RunStatus status) override {
    output_.Finish();
    status_ = status;
  }

  RunStatus status() const { return status_; }
  /// How many tasks the run has, for the `[3/8 done]` of event lines.
  void set_tasks(int tasks) { progress_.set_total(tasks); }

 private:
  OutputPrinter output_{true};
  RunProgress progress_;
  RunStatus status_ = RunStatus::kFailed;
};

}  // namespace

int Daemon::RunOnce(const std::string& file) {
  LoadedWorkflow loaded = LoadWorkflowFile(file);
  if (!loaded.ok()) {
    for (const Diagnostic& d : loaded.diagnostics)
      std::fprintf(stderr, "%s\n", d.ToString().c_str());
    return 1;
  }
  std::string private_dir;
  if (config_.state_dir.empty()) {
    char tmpl[] = "/tmp/picoflow-once-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) {
      std::perror("picoflowd: mkdtemp");
      return 1;
    }
    private_dir = config_.state_dir = tmpl;
  }
  int rc = 1;
  ProgressPrinter printer;
  once_ = true;
  Status opened = Open(&printer);
  if (opened.ok()) opened = OpenOutputDir();
  if (!opened.ok()) {
    std::fprintf(stderr, "picoflowd: %s\n", opened.error().message.c_str());
  } else {
    auto source = ReadWorkflowFile(file);
    CompiledWorkflow compiled =
        CompileWorkflow(source.ok() ? *source : "", file, file, FileDirectory(file));
    std::int64_t run_id = 0;
    if (compiled.version) {
      printer.set_tasks(static_cast<int>(compiled.version->workflow->tasks.size()));
      auto id = runs_->StartRun(compiled.version, RunRequest{});
      if (id.ok())
        run_id = *id;
      else
        std::fprintf(stderr, "picoflowd: %s\n", id.error().message.c_str());
    }
    if (run_id != 0) {
      StartSignals();  // TERM/INT cancel the run; HUP has nothing to reload
      uv_run(&loop_, UV_RUN_DEFAULT);
      std::printf("run %lld %s\n", static_cast<long long>(run_id), RunStatusName(printer.status()));
      rc = printer.status() == RunStatus::kSucceeded ? 0 : 1;
    }
    engine_.observers.clear();
  }
  if (!private_dir.empty()) {
    if (group_commit_) group_commit_->Close();
    if (store_) LogIfFailed({}, store_->Close(), "closing the store");
    std::error_code ec;
    std::filesystem::remove_all(private_dir, ec);
  }
  return rc;
}

}  // namespace picoflow
