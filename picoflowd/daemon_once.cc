// Daemon::RunOnce: `picoflowd --once FILE` — one run in the foreground with
// the same engine, store and logs as the daemon, and no socket.

#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <set>

#include "common/workflow_load.h"
#include "picoflowd/daemon.h"
#include "picoflowd/util/logging.h"
#include "picoflowd/engine/run_manager.h"
#include "picoflowd/engine/run_observer.h"
#include "picoflowd/store/store.h"

namespace picoflow {
namespace {

/// Prints task events and output as they happen: `task | line`.
class ProgressPrinter final : public RunObserver {
 public:
  void OnTaskEvent(const TaskEvent& e) override {
    std::string line = "[" + std::string(e.task) + "] " + std::string(e.event);
    if (e.event == "started") {
      line += " (attempt " + std::to_string(e.attempt) + ")";
    } else if (e.event == "finished" || e.event == "retrying") {
      line += ": " + std::string(e.status);
      if (e.exit_code) line += ", exit code " + std::to_string(*e.exit_code);
      if (e.signal) line += ", signal " + std::to_string(*e.signal);
      if (!e.error.empty()) line += " (" + std::string(e.error) + ")";
      if (e.retry_in) line += "; next attempt in " + std::to_string(e.retry_in->count()) + " ms";
    }
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
  }

  void OnOutput(const OutputEvent& e) override {
    // `mid_line` holds the streams whose last chunk did not end a line.
    const auto key = std::make_pair(std::string(e.task), e.stream);
    bool at_start = !mid_line_.count(key);
    std::string out;
    for (char c : e.data) {
      if (at_start) {
        out += std::string(e.task) + (e.stream == OutputStream::kStderr ? " ! " : " | ");
        at_start = false;
      }
      out += c;
      if (c == '\n') at_start = true;
    }
    if (at_start) {
      mid_line_.erase(key);
    } else {
      mid_line_.insert(key);
    }
    std::fwrite(out.data(), 1, out.size(), stdout);
    std::fflush(stdout);
  }

  void OnRunFinished(std::int64_t, RunStatus status) override { status_ = status; }

  RunStatus status() const { return status_; }

 private:
  std::set<std::pair<std::string, OutputStream>> mid_line_;
  RunStatus status_ = RunStatus::kFailed;
};


}  // namespace

int Daemon::RunOnce(const std::string& file) {
  LoadedWorkflow loaded = LoadWorkflowFile(file);
  if (!loaded.ok()) {
    for (const Diagnostic& d : loaded.diagnostics) std::fprintf(stderr, "%s\n", d.ToString().c_str());
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
  if (Status s = Open(&printer); !s.ok()) {
    std::fprintf(stderr, "picoflowd: %s\n", s.error().message.c_str());
  } else {
    auto source = ReadWorkflowFile(file);
    CompiledWorkflow compiled = CompileWorkflow(source.ok() ? *source : "", file, file);
    std::int64_t run_id = 0;
    if (compiled.version) {
      auto id = runs_->StartRun(compiled.version, RunTrigger::kManual);
      if (id.ok()) run_id = *id;
      else std::fprintf(stderr, "picoflowd: %s\n", id.error().message.c_str());
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
    if (store_) (void)store_->Close();
    std::error_code ec;
    std::filesystem::remove_all(private_dir, ec);
  }
  return rc;
}

}  // namespace picoflow
