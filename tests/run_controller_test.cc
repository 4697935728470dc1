// RunController on a real loop and a real store, with a fake executor: what
// the observers are told, and what the store holds by then.

#include "picoflowd/engine/run_controller.h"

#include <doctest/doctest.h>
#include <uv.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/workflow_load.h"
#include "picoflowd/exec/executor.h"
#include "picoflowd/store/store.h"
#include "picoflowd/util/uv_handle.h"
#include "tests/executor_test_util.h"
#include "tests/test_util.h"
#include "tests/workflow_test_util.h"  // prints whole vectors of strings

namespace picoflow {
namespace {

using test::Must;
using test::TempDir;
using test::TestLoop;

constexpr const char* kYaml = R"(name: etl
tasks:
  - { name: extract, type: shell, config: { command: "true" } }
  - { name: load, type: shell, depends_on: [extract], config: { command: "true" } }
)";

/// An attempt that reports its process from inside Start, as the local
/// executor does, and succeeds on the next loop iteration.
class QuickAttempt final : public Attempt {
 public:
  QuickAttempt(uv_loop_t* loop, AttemptSink& sink) : sink_(sink), timer_(this) {
    if (uv_timer_init(loop, timer_.get()) == 0) timer_.MarkInitialized();
    StartOneShot<QuickAttempt, &QuickAttempt::Exit>(timer_, 0);
  }
  void Cancel() override {}

 private:
  void Exit() {
    AttemptResult result;
    result.status = AttemptStatus::kSucceeded;
    result.exit_code = 0;
    timer_.Close();
    sink_.OnFinished(result);  // may destroy *this: nothing after
  }

  AttemptSink& sink_;
  UvHandle<uv_timer_t> timer_;
};

class QuickExecutor final : public Executor {
 public:
  explicit QuickExecutor(uv_loop_t* loop) : loop_(loop) {}
  std::unique_ptr<Attempt> Start(const AttemptSpec&, AttemptSink& sink) override {
    auto attempt = std::make_unique<QuickAttempt>(loop_, sink);
    ++next_pid_;
    sink.OnStarted(ProcessIdentity{next_pid_, next_pid_, 1000, "boot"});
    return attempt;
  }

 private:
  uv_loop_t* loop_;
  pid_t next_pid_ = 4000;
};

/// At each `started` event, what the store has of that attempt.
class StartWitness final : public RunObserver {
 public:
  explicit StartWitness(Store& store) : store_(store) {}
  void OnTaskEvent(const TaskEvent& e) override {
    if (e.event != TaskEventKind::kStarted) return;
    std::string line = std::string(e.task) + " #" + std::to_string(e.attempt) + ": ";
    RunDetail run = Must(store_.GetRun(e.run_id));
    std::string found = "no attempt stored";
    for (const AttemptRecord& a : run.attempts) {
      if (a.task != e.task || a.number != e.attempt) continue;
      found = a.status ? "stored as finished" : "stored running";
      found += a.process ? ", pid " + std::to_string(a.process->pid) : ", no process";
    }
    seen.push_back(line + found);
  }
  std::vector<std::string> seen;

 private:
  Store& store_;
};

// A run of the workflow etl (tasks extract and load) `yaml` in a fresh
// store, driven by a RunController to its end.
struct OneRun {
  explicit OneRun(const char* yaml) : wf(LoadWorkflowText(yaml, "etl.yaml")) {
    REQUIRE(wf.ok());
    store = Must(Store::Open(dir.File("picoflow.db")));
    NewRun record;
    record.workflow = "etl";
    record.source = yaml;
    record.tasks = {"extract", "load"};
    id = Must(store->CreateRun(record));
  }

  /// Runs it, every task through `executor`; returns how it ended.
  std::optional<RunStatus> RunWith(Executor& executor, std::vector<RunObserver*> observers = {}) {
    EngineContext ctx;
    ctx.loop = loop.get();
    ctx.store = store.get();
    for (Executor*& e : ctx.executors) e = &executor;
    ctx.observers = std::move(observers);
    std::optional<RunStatus> ended;
    RunController controller(ctx, std::make_unique<Run>(id, wf.workflow, wf.dag), ParamValues{},
                             [&](RunStatus status) { ended = status; });
    controller.Start();
    REQUIRE(loop.RunUntil([&] { return ended.has_value(); }));
    return ended;
  }

  TestLoop loop;
  TempDir dir;
  LoadedWorkflow wf;
  std::unique_ptr<Store> store;
  std::int64_t id = 0;
};

TEST_CASE("observers hear that a task started only once its attempt and process are stored") {
  // A client is shown `started` by an observer (the run feed), and group
  // commit commits before anything is written to a client: what a kill -9
  // right after that must not lose is what the store holds at this moment.
  OneRun run(kYaml);
  QuickExecutor executor(run.loop.get());
  StartWitness witness(*run.store);
  CHECK(run.RunWith(executor, {&witness}) == RunStatus::kSucceeded);
  CHECK(witness.seen == std::vector<std::string>{"extract #1: stored running, pid 4001",
                                                 "load #1: stored running, pid 4002"});
}

constexpr const char* kSecretYaml = R"(name: etl
tasks:
  - name: extract
    type: shell
    secrets: { TOKEN: { env: PFTEST_CONTROLLER_TOKEN } }
    config: { command: "true" }
  - { name: load, type: shell, depends_on: [extract], config: { command: "true" } }
)";

/// An attempt that prints its secret in pieces on both streams, ends with a
/// piece that is the start of the secret, and finishes with the secret in
/// its error (extract: also in an output, and succeeds; load: fails).
class LeakyAttempt final : public Attempt {
 public:
  LeakyAttempt(uv_loop_t* loop, AttemptSink& sink, AttemptSpec spec)
      : sink_(sink), spec_(std::move(spec)), timer_(this) {
    if (uv_timer_init(loop, timer_.get()) == 0) timer_.MarkInitialized();
    StartOneShot<LeakyAttempt, &LeakyAttempt::Exit>(timer_, 0);
  }
  void Cancel() override {}

 private:
  void Exit() {
    AttemptResult result;
    result.status = AttemptStatus::kSucceeded;
    result.exit_code = 0;
    if (!spec_.secrets.empty()) {
      const std::string& value = spec_.secrets[0].second;
      sink_.OnOutput(OutputStream::kStdout, "a " + value.substr(0, 5));
      sink_.OnOutput(OutputStream::kStderr, value.substr(0, 3));
      sink_.OnOutput(OutputStream::kStdout, value.substr(5) + " b " + value.substr(0, 4));
      sink_.OnOutput(OutputStream::kStderr, value.substr(3) + "!");
      result.outputs = {{"token", value}, {"other", "x" + value + "y"}};
      result.error = "warning: GET https://example.com/" + value;
    }
    timer_.Close();
    sink_.OnFinished(result);  // may destroy *this: nothing after
  }

  AttemptSink& sink_;
  AttemptSpec spec_;
  UvHandle<uv_timer_t> timer_;
};

class LeakyExecutor final : public Executor {
 public:
  explicit LeakyExecutor(uv_loop_t* loop) : loop_(loop) {}
  std::unique_ptr<Attempt> Start(const AttemptSpec& spec, AttemptSink& sink) override {
    specs.push_back(spec);
    return std::make_unique<LeakyAttempt>(loop_, sink, spec);
  }
  std::vector<AttemptSpec> specs;

 private:
  uv_loop_t* loop_;
};

TEST_CASE("a secret is masked in output, error and outputs before the store and other tasks") {
  const std::string secret = "s3cr3t-value-42";
  REQUIRE(::setenv("PFTEST_CONTROLLER_TOKEN", secret.c_str(), 1) == 0);
  OneRun run(kSecretYaml);
  LeakyExecutor executor(run.loop.get());
  const std::optional<RunStatus> ended = run.RunWith(executor);
  ::unsetenv("PFTEST_CONTROLLER_TOKEN");
  CHECK(ended == RunStatus::kSucceeded);
  // The value reached the task that has it, and only it; its dependent got
  // the masked output.
  REQUIRE(executor.specs.size() == 2);
  CHECK(executor.specs[0].secrets == EnvList{{"TOKEN", secret}});
  CHECK(executor.specs[1].secrets.empty());
  const EnvList& load_env = executor.specs[1].env;
  CHECK(std::find(load_env.begin(), load_env.end(),
                  std::pair<std::string, std::string>{"PICOFLOW_OUT_EXTRACT_TOKEN", "***"}) !=
        load_env.end());

  std::string out, err;
  OutputQuery query;
  query.run_id = run.id;
  for (const OutputChunk& c : Must(run.store->ReadOutput(query))) {
    (c.stream == OutputStream::kStdout ? out : err) += c.data;
  }
  CHECK(out == "a *** b s3cr");  // the held-back start of a value comes out at the end
  CHECK(err == "***!");
  const RunDetail detail = Must(run.store->GetRun(run.id));
  CHECK(detail.tasks[0].outputs == TaskOutputs{{"token", "***"}, {"other", "x***y"}});
  REQUIRE(detail.attempts.size() == 2);
  CHECK(detail.attempts[0].error == "warning: GET https://example.com/***");
}

}  // namespace
}  // namespace picoflow
