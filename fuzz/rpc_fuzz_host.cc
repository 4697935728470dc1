#include "fuzz/rpc_fuzz_host.h"

#include <memory>
#include <string>
#include <string_view>

#include "fuzz/fuzz_check.h"
#include "picoflowd/engine/run_manager.h"
#include "picoflowd/exec/executor.h"
#include "picoflowd/pruner.h"
#include "picoflowd/store/group_commit.h"
#include "picoflowd/store/store.h"
#include "picoflowd/util/callback_guard.h"
#include "picoflowd/util/uv_handle.h"

namespace picoflow::fuzz {
namespace {

// Enough turns of the loop after each request for a chain of a few dozen
// tasks to end; a fixed number, so that an input always does the same.
constexpr int kTurnsPerRequest = 64;

// One attempt of FakeExecutor: reports its start, a line of output and its
// end from a zero-delay timer, i.e. at the next loop turn (never from inside
// Start, as the Executor contract says).
class FakeAttempt final : public Attempt {
 public:
  FakeAttempt(uv_loop_t* loop, const AttemptSpec& spec, AttemptSink& sink)
      : sink_(sink), name_(spec.task->name), timer_(this) {
    if (uv_timer_init(loop, timer_.get()) != 0) return;
    timer_.MarkInitialized();
    StartOneShot<FakeAttempt, &FakeAttempt::End>(timer_, 0);
  }

  void Cancel() override { cancelled_ = true; }

 private:
  void End() {
    timer_.Close();
    sink_.OnStarted(ProcessIdentity{4242, 4242, 1, "fuzz"});
    AttemptResult result;
    if (cancelled_) {
      result.status = AttemptStatus::kCancelled;
      result.signal = 15;
    } else if (name_.find("fail") != std::string::npos) {
      sink_.OnOutput(OutputStream::kStderr, name_ + ": failing as its name says\n");
      result.status = AttemptStatus::kFailed;
      result.exit_code = 1;
    } else {
      sink_.OnOutput(OutputStream::kStdout, name_ + "\n");
      result.status = AttemptStatus::kSucceeded;
      result.exit_code = 0;
    }
    sink_.OnFinished(result);  // may destroy *this: nothing after this
  }

  AttemptSink& sink_;
  std::string name_;
  bool cancelled_ = false;
  UvHandle<uv_timer_t> timer_;
};

// Runs every task type: nothing is spawned, connected to or requested.
class FakeExecutor final : public Executor {
 public:
  explicit FakeExecutor(uv_loop_t* loop) : loop_(loop) {}
  std::unique_ptr<Attempt> Start(const AttemptSpec& spec, AttemptSink& sink) override {
    return std::make_unique<FakeAttempt>(loop_, spec, sink);
  }

 private:
  uv_loop_t* loop_;
};

// Small limits, so that a few runs are enough to make store.prune delete.
RetentionConfig FuzzRetention() {
  RetentionConfig config;
  config.runs = RunRetention{3, std::chrono::hours(1)};
  config.max_output_bytes = 256;
  config.batch_runs = 2;
  config.batch_chunks = 2;
  return config;
}

}  // namespace

TimePoint FixedClock::Now() const { return TimePoint(std::chrono::seconds(1767225600)); }

RpcFuzzHost::RpcFuzzHost(const std::string& dir) {
  Require(uv_loop_init(&loop_) == 0, "the loop opens");
  facts_.socket_path = dir + "/fuzz.sock";
  facts_.state_dir = dir;
  facts_.started_at = std::chrono::steady_clock::now();
  auto store = Store::Open(dir + "/picoflow.db");
  Require(store.ok(), store.ok() ? "" : store.error().message);
  store_ = std::move(*store);
  group_commit_ = std::make_unique<GroupCommit>(&loop_, *store_);
  executor_ = std::make_unique<FakeExecutor>(&loop_);
  engine_.loop = &loop_;
  engine_.store = store_.get();
  for (Executor*& e : engine_.executors) e = executor_.get();
  engine_.output_cap = 64;  // small: the cap is reached with short outputs too
  engine_.commit = [this] { group_commit_->CommitNow(); };
  pruner_ = std::make_unique<Pruner>(&loop_, *store_, FuzzRetention(),
                                     [](const std::string&) { return FuzzRetention().runs; });
  engine_.observers = {pruner_.get(), &feed_};
  runs_ = std::make_unique<RunManager>(engine_);
}

RpcFuzzHost::~RpcFuzzHost() {
  // As Daemon::~Daemon: the runs, then what they use, then the loop.
  runs_.reset();
  pruner_.reset();
  executor_.reset();
  group_commit_->Close();
  const Status closed = store_->Close();
  Require(closed.ok(), closed.ok() ? "" : closed.error().message);
  store_.reset();
  uv_walk(
      &loop_,
      [](uv_handle_t* h, void*) {
        if (!uv_is_closing(h)) uv_close(h, nullptr);
      },
      nullptr);
  uv_run(&loop_, UV_RUN_DEFAULT);
  Require(uv_loop_close(&loop_) == 0, "every handle of the loop is closed");
}

void RpcFuzzHost::Turn() {
  for (int i = 0; i < kTurnsPerRequest; ++i) uv_run(&loop_, UV_RUN_NOWAIT);
}

void RpcFuzzHost::CommitNow() { group_commit_->CommitNow(); }

// As Daemon::Submit, without workflow files (none can own a name here).
Result<bool> RpcFuzzHost::Submit(std::shared_ptr<const WorkflowVersion> version) {
  const std::string name = version->workflow->name;
  auto stored =
      store_->PutWorkflow(name, version->source, version->origin, clock_.Now(), version->base_dir);
  if (!stored.ok()) return stored.error();
  const auto* existing = registry_.Find(name);
  const bool replaced = existing != nullptr && existing->version != nullptr;
  registry_.Put(std::move(version));
  Schedule(name);
  return replaced;
}

// As Daemon::Remove.
Status RpcFuzzHost::Remove(const std::string& name) {
  if (!registry_.Remove(name)) return Err(ErrorCode::kNotFound, "no workflow '" + name + "'");
  Schedule(name);
  if (Status s = store_->RemoveWorkflow(name); !s.ok() && s.error().code != ErrorCode::kNotFound) {
    return s;
  }
  return {};
}

// As Daemon::SetPaused.
Status RpcFuzzHost::SetPaused(const std::string& name, bool paused) {
  if (!registry_.SetPaused(name, paused)) {
    return Err(ErrorCode::kNotFound, "no workflow '" + name + "'");
  }
  if (Status s = store_->SetPaused(name, paused); !s.ok()) return s;
  scheduler_.SetPaused(name, paused);
  return {};
}

Result<PruneCounts> RpcFuzzHost::PruneNow(bool dry_run) { return pruner_->PruneNow(dry_run); }

// As Daemon::Schedule, without a timer to arm.
void RpcFuzzHost::Schedule(const std::string& name) {
  const auto* entry = registry_.Find(name);
  std::optional<ScheduleSpec> spec;
  if (entry != nullptr && entry->version) {
    auto made = ScheduleSpec::FromWorkflow(*entry->version->workflow);
    if (made.ok()) spec = std::move(*made);
  }
  if (!spec) {
    scheduler_.Remove(name);
    return;
  }
  scheduler_.Set(std::move(*spec));
  scheduler_.SetPaused(name, entry->paused);
}

}  // namespace picoflow::fuzz
