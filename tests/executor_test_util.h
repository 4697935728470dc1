#pragma once
// Test helpers shared by the executor tests: a sink that records what an
// attempt reports, and a private loop that must close cleanly.

#include <doctest/doctest.h>
#include <uv.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/workflow.h"
#include "picoflowd/exec/executor.h"
#include "picoflowd/util/uv_handle.h"

namespace picoflow::test {

// Records everything an attempt reports. By default it owns the attempt and
// destroys it from OnFinished, as the daemon's runs may.
class Recorder final : public AttemptSink {
 public:
  std::unique_ptr<Attempt> attempt;
  bool destroy_on_finish = true;
  bool keep_output = true;
  std::optional<ProcessIdentity> started;
  int started_calls = 0;
  std::string out, err;
  std::uint64_t out_bytes = 0, err_bytes = 0;
  std::size_t max_chunk = 0;
  std::optional<AttemptResult> result;
  int finished_calls = 0;

  void OnStarted(const ProcessIdentity& identity) override {
    started = identity;
    ++started_calls;
  }
  void OnOutput(OutputStream stream, std::string_view data) override {
    const bool is_out = stream == OutputStream::kStdout;
    (is_out ? out_bytes : err_bytes) += data.size();
    max_chunk = std::max(max_chunk, data.size());
    if (keep_output) (is_out ? out : err).append(data);
  }
  void OnFinished(const AttemptResult& r) override {
    result = r;
    ++finished_calls;
    if (destroy_on_finish) attempt.reset();
  }
};

// One loop per test, closed cleanly at the end (nothing leaked). Declare it
// before the executor, so the executor is destroyed first.
class TestLoop {
 public:
  TestLoop() { uv_loop_init(&loop_); }
  ~TestLoop() {
    uv_run(&loop_, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop_) == 0);
  }
  TestLoop(const TestLoop&) = delete;
  TestLoop& operator=(const TestLoop&) = delete;
  uv_loop_t* get() { return &loop_; }

  /// Runs the loop until pred() holds or `limit` (a hang detector) passes;
  /// returns pred().
  bool RunUntil(const std::function<bool()>& pred,
                std::chrono::milliseconds limit = std::chrono::seconds(60)) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    UvHandle<uv_timer_t> tick(nullptr);  // bounds each uv_run so the deadline is seen
    uv_timer_init(&loop_, tick.get());
    tick.MarkInitialized();
    uv_timer_start(
        tick.get(), [](uv_timer_t*) {}, 50, 50);
    while (!pred() && std::chrono::steady_clock::now() < deadline) uv_run(&loop_, UV_RUN_ONCE);
    return pred();
  }

 private:
  uv_loop_t loop_;
};

/// Starts attempt 1 of `task` (workflow "wf", run 1) on `executor`, owned by
/// `rec`, and checks that nothing was reported from inside Start.
inline void StartAttempt(Executor& executor, Recorder& rec, const Task& task,
                         std::chrono::milliseconds timeout, EnvList run_env = {},
                         EnvList secrets = {}) {
  AttemptSpec spec;
  spec.task = &task;
  spec.workflow = "wf";
  spec.run_id = 1;
  spec.timeout = timeout;
  spec.env = std::move(run_env);
  spec.secrets = std::move(secrets);
  rec.attempt = executor.Start(spec, rec);
  REQUIRE(rec.attempt != nullptr);
  CHECK(!rec.result);  // never from inside Start
}

/// Runs `loop` until `rec` has its result, which must come once. The limit
/// only ends a hang: it is longer than the task timeouts the tests give
/// attempts that are not about timeouts (120 s).
inline void WaitFinished(TestLoop& loop, Recorder& rec) {
  REQUIRE(loop.RunUntil([&] { return rec.result.has_value(); }, std::chrono::seconds(180)));
  CHECK(rec.finished_calls == 1);
}

/// The emulator command that runs this build's programs when the tests run
/// under qemu-user (cross/test.sh sets PICOFLOW_TEST_EXEC_WRAPPER); "" natively.
inline std::string ExecWrapperCommand() {
  const char* wrapper = std::getenv("PICOFLOW_TEST_EXEC_WRAPPER");
  return wrapper != nullptr ? wrapper : "";
}

/// This process's resident memory in KiB (VmRSS), or -1 if unreadable.
inline long VmRssKb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

}  // namespace picoflow::test
