#include "picoflowd/daemon.h"

#include <fcntl.h>
#include <grp.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <set>
#include <vector>

#include "common/task_paths.h"
#include "common/workflow_fields.h"
#include "common/workflow_load.h"
#include "picoflowd/engine/run_manager.h"
#include "picoflowd/exec/containment.h"
#include "picoflowd/exec/executor_local.h"
#include "picoflowd/exec/executor_module.h"
#include "picoflowd/exec/executor_module_abi.h"
#include "picoflowd/fleet.h"
#include "picoflowd/http/http_api.h"
#include "picoflowd/http/http_server.h"
#include "picoflowd/http/web_token.h"
#include "picoflowd/metrics.h"
#include "picoflowd/notifier.h"
#include "picoflowd/pruner.h"
#include "picoflowd/rpc/rpc_dispatch.h"
#include "picoflowd/rpc/rpc_methods.h"
#include "picoflowd/rpc/rpc_server.h"
#include "picoflowd/sched/file_triggers.h"
#include "picoflowd/sched/schedule_timer.h"
#include "picoflowd/store/group_commit.h"
#include "picoflowd/store/store.h"
#include "picoflowd/util/callback_guard.h"
#include "picoflowd/util/logging.h"
#include "picoflowd/util/sd_listen.h"
#include "picoflowd/util/sd_notify.h"

namespace picoflow {
namespace {

using Clock = std::chrono::system_clock;
namespace fs = std::filesystem;

// Creates `dir` and its missing parents; the last component gets `mode`.
Status MakeDirs(const std::string& dir, mode_t mode) {
  std::error_code ec;
  const fs::path path(dir);
  if (path.has_parent_path()) fs::create_directories(path.parent_path(), ec);
  if (mkdir(dir.c_str(), mode) != 0 && errno != EEXIST) {
    return Err(ErrorCode::kIo, "cannot create directory " + dir + ": " + std::strerror(errno));
  }
  struct stat st {};
  if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return Err(ErrorCode::kIo, dir + " is not a directory");
  }
  return {};
}

// --read-group: a group name, or a numeric gid.
Result<gid_t> ResolveGroup(const std::string& name) {
  gid_t gid = 0;
  const char* end = name.data() + name.size();
  if (auto [p, ec] = std::from_chars(name.data(), end, gid); ec == std::errc() && p == end) {
    return gid;
  }
  std::vector<char> buf(16384);
  group gr{};
  group* found = nullptr;
  if (getgrnam_r(name.c_str(), &gr, buf.data(), buf.size(), &found) != 0 || found == nullptr) {
    return Err(ErrorCode::kInvalid,
               "unknown group '" + name + "' (--read-group takes a group name or a gid)");
  }
  return found->gr_gid;
}

// systemd's STATUS= line (`systemctl status picoflowd`).
std::string ActiveRunsStatus(std::size_t live) {
  return std::to_string(live) + (live == 1 ? " active run" : " active runs");
}

bool IsWorkflowFileName(const fs::path& p) {
  const std::string ext = p.extension().string();
  return (ext == ".yaml" || ext == ".yml") && p.filename().string()[0] != '.';
}

RetentionConfig RetentionConfigOf(const DaemonConfig& config) {
  RetentionConfig retention;
  retention.runs = RunRetention{config.retention_max_runs, config.retention_max_age};
  retention.max_output_bytes = config.retention_max_output_bytes;
  return retention;
}

// A workflow's `retention:` over the daemon's defaults; a removed workflow's
// history gets the defaults.
RunRetention RetentionOf(const WorkflowRegistry& registry, const DaemonConfig& config,
                         const std::string& name) {
  RunRetention keep{config.retention_max_runs, config.retention_max_age};
  const WorkflowRegistry::Entry* entry = registry.Find(name);
  if (entry == nullptr || !entry->version) return keep;
  const WorkflowRetention& own = entry->version->workflow->retention;
  if (own.max_runs) keep.max_runs = *own.max_runs;
  if (own.max_age) keep.max_age = *own.max_age;
  return keep;
}

}  // namespace

Daemon::Daemon(DaemonConfig config) : config_(std::move(config)), grace_timer_(this) {
  facts_.started_at = std::chrono::steady_clock::now();
  loop_ready_ = uv_loop_init(&loop_) == 0;
}

Daemon::~Daemon() {
  // Tear down in dependency order, then close whatever handle is left and
  // let the loop run their close callbacks.
  server_.reset();
  http_.reset();
  http_api_.reset();
  dispatcher_.reset();
  methods_.reset();
  runs_.reset();
  pruner_.reset();
  // Their handles are closed here, with the callbacks that free them; the
  // uv_walk below closes what is left without any.
  fleet_.reset();
  file_triggers_.reset();
  signals_.clear();
  grace_timer_.Close();
  schedule_timer_.reset();
  notifier_.reset();
  notify_.reset();  // its sender's transfers before the module's other handles
  for (auto& executor : executors_) executor.reset();
  if (group_commit_) group_commit_->Close();
  if (store_) LogIfFailed({}, store_->Close(), "closing the store");
  store_.reset();
  if (!loop_ready_) return;
  uv_walk(
      &loop_,
      [](uv_handle_t* h, void*) {
        if (!uv_is_closing(h)) uv_close(h, nullptr);
      },
      nullptr);
  uv_run(&loop_, UV_RUN_DEFAULT);
  const int rc = uv_loop_close(&loop_);
  if (rc != 0) LogError({}, std::string("event loop did not close cleanly: ") + uv_strerror(rc));
}

namespace {

// A start on a full disk says so (docs/reliability.md, "Disk full"): the
// store could not record a run, and recovery's own writes would fail.
Status CheckRoom(const std::string& state_dir) {
  constexpr std::uint64_t kMinFreeBytes = 256 * 1024;
  struct statvfs fs {};
  if (statvfs(state_dir.c_str(), &fs) != 0) return {};  // the store's open will say why
  const std::uint64_t free_bytes = std::uint64_t{fs.f_bavail} * fs.f_frsize;
  if (free_bytes >= kMinFreeBytes) return {};
  return Err(ErrorCode::kDiskFull,
             "disk full: the file system of " + state_dir + " has " + std::to_string(free_bytes) +
                 " bytes free; picoflowd needs at least " + std::to_string(kMinFreeBytes) +
                 " to record runs. Free some space and start it again");
}

}  // namespace

// A task's outputs file (docs/workflow-format.md, "Outputs") lives beside
// the socket, whose directory exists once it listens: a tmpfs (/run,
// $XDG_RUNTIME_DIR), not the state directory's SD card. --once, without a
// socket, uses its state directory.
Status Daemon::OpenOutputDir() {
  return local_->SetOutputDir(config_.socket_path.empty() ? config_.state_dir + "/outputs"
                                                          : config_.socket_path + ".outputs");
}

Status Daemon::Open(RunObserver* progress) {
  if (!loop_ready_) return Err(ErrorCode::kInternal, "cannot initialise the event loop");
  facts_.socket_path = config_.socket_path;
  facts_.state_dir = config_.state_dir;
  facts_.workflows_dir = config_.workflows_dir;
  if (Status s = MakeDirs(config_.state_dir, 0700); !s.ok()) {
    return Err(ErrorCode::kIo, s.error().message + " (choose another with --state-dir)");
  }
  // One daemon per state directory: a second one would fight over the runs.
  const std::string lock_path = config_.state_dir + "/picoflowd.lock";
  const int lock_fd = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd < 0 || flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    return Err(ErrorCode::kConflict, "another picoflowd is using the state directory " +
                                         config_.state_dir + " (stop it, or use --state-dir)");
  }
  // lock_fd stays open (and locked) for the life of the process.
  if (Status s = CheckRoom(config_.state_dir); !s.ok()) return s;
  StoreOptions options;
  options.synchronous = config_.synchronous_full ? Synchronous::kFull : Synchronous::kNormal;
  auto store = Store::Open(config_.state_dir + "/picoflow.db", options);
  if (!store.ok()) return store.error();
  store_ = std::move(*store);
  group_commit_ = std::make_unique<GroupCommit>(&loop_, *store_);

  // One executor per task type: shell tasks run here, the others through
  // their module, loaded on the first task of that type.
  // Tasks carry the state directory as their mark (LocalExecutor): the
  // lock above makes it this daemon's alone.
  std::string owner = config_.state_dir;
  if (char* real = ::realpath(config_.state_dir.c_str(), nullptr)) {
    owner = real;
    std::free(real);
  }
  // How a task's processes are kept together, to end with their attempt:
  // its own cgroup, else as our orphans, else its process group only.
  std::unique_ptr<Containment> containment = SetUpContainment(&loop_, owner);
  facts_.containment = ContainmentModeName(containment->mode());
  facts_.containment_reason = containment->reason();
  auto local = std::make_unique<LocalExecutor>(&loop_, owner, std::move(containment));
  if (const int killed = local->KillLeftovers(); killed > 0) {
    LogFields f;
    f.event = "daemon.leftovers_killed";
    LogWarn(f, "killed " + std::to_string(killed) +
                   " process group(s) left running by tasks of a previous picoflowd");
  }
  local_ = local.get();
  executors_[static_cast<std::size_t>(TaskType::kShell)] = std::move(local);
  for (const ExecutorModuleSpec& m : kExecutorModules) {
    executors_[static_cast<std::size_t>(m.type)] =
        std::make_unique<LazyExecutor>(&loop_, m.file, m.factory_symbol);
  }
  engine_.loop = &loop_;
  engine_.store = store_.get();
  for (std::size_t i = 0; i < kTaskTypeCount; ++i) {
    assert(executors_[i] && "every task type has an executor");
    engine_.executors[i] = executors_[i].get();
  }
  engine_.output_cap = config_.output_cap;
  engine_.commit = [this] { group_commit_->CommitNow(); };
  runs_ = std::make_unique<RunManager>(engine_);
  pruner_ = std::make_unique<Pruner>(
      &loop_, *store_, RetentionConfigOf(config_),
      [this](const std::string& name) { return RetentionOf(registry_, config_, name); });
  scheduler_ = std::make_unique<Scheduler>(wall_clock_);
  if (!config_.http_listen.empty()) metrics_ = MakeMetrics();
  // Every run observer, in the order they hear of an event; the daemon
  // itself last, as what it does on a run's end may start another run.
  engine_.observers = {pruner_.get(), &feed_};
  if (metrics_) engine_.observers.push_back(metrics_.get());
  notify_ = std::make_unique<Notifier>(
      &loop_, *store_, std::make_unique<LazyRequestSender>(&loop_), config_.notify,
      [this](const std::string& workflow, const std::string& target, bool sent) {
        if (metrics_) metrics_->CountDelivery(workflow, target, sent);
      });
  engine_.observers.push_back(notify_.get());
  if (progress != nullptr) engine_.observers.push_back(progress);
  engine_.observers.push_back(this);
  if (uv_timer_init(&loop_, grace_timer_.get()) == 0) grace_timer_.MarkInitialized();
  return {};
}

Status Daemon::LoadStoredWorkflows() {
  auto records = store_->ListWorkflows();
  if (!records.ok()) return records.error();
  for (const WorkflowRecord& r : *records) {
    auto full = store_->GetWorkflow(r.name);
    if (!full.ok()) return full.error();
    CompiledWorkflow compiled = CompileWorkflow(full->source, r.name, full->origin, full->base_dir);
    if (!compiled.version) {
      LogError({}, "stored workflow '" + r.name + "' no longer loads; skipped");
      continue;
    }
    registry_.Put(compiled.version);
    registry_.SetPaused(r.name, r.paused);
    Schedule(r.name, r.last_fire_at);
  }
  return {};
}

std::vector<std::string> Daemon::WorkflowFiles() const {
  std::vector<std::string> files;
  if (!config_.workflows_dir.empty()) {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(config_.workflows_dir, ec)) {
      if (IsWorkflowFileName(entry.path())) files.push_back(entry.path().string());
    }
    std::sort(files.begin(), files.end());
  }
  files.insert(files.end(), config_.files.begin(), config_.files.end());
  return files;
}

ReloadReport Daemon::Reload() {
  ReloadReport report;
  load_errors_.clear();
  std::set<std::string> current_files;
  std::set<std::string> names_seen;
  for (const std::string& file : WorkflowFiles()) {
    current_files.insert(file);
    auto source = ReadWorkflowFile(file);
    CompiledWorkflow compiled;
    if (source.ok()) {
      compiled = CompileWorkflow(*source, file, file, FileDirectory(file));
      for (const Diagnostic& d : compiled.warnings) LogWarn({}, d.ToString());
    } else {
      compiled.diagnostics.push_back(Diagnostic{file, {}, source.error().message});
    }
    if (compiled.version) {
      const std::string conflict = FileNameConflict(compiled.version->workflow->name, names_seen);
      if (!conflict.empty()) {
        compiled.diagnostics.push_back(Diagnostic{file, {}, conflict});
        compiled.version = nullptr;
      }
    }
    if (!compiled.version) {
      // The last good version of this file, if any, keeps running; a file
      // that never loaded is reported on its own.
      bool had_version = false;
      for (const auto& [name, entry] : registry_.entries()) {
        if (entry.version && entry.version->origin == file) {
          registry_.MarkBroken(name, file, compiled.diagnostics);
          names_seen.insert(name);
          had_version = true;
        }
      }
      for (const Diagnostic& d : compiled.diagnostics) {
        LogError({}, d.ToString());
        report.errors.push_back(d);
        if (!had_version) load_errors_.push_back(d);
      }
      continue;
    }
    const std::string name = compiled.version->workflow->name;
    const auto* existing = registry_.Find(name);
    if (existing && existing->version && existing->version->source == compiled.version->source &&
        existing->version->base_dir == compiled.version->base_dir &&
        existing->version->origin == file && existing->errors.empty()) {
      report.unchanged.push_back(name);
      continue;
    }
    auto replaced = Submit(compiled.version);
    if (!replaced.ok()) {
      LogError({}, replaced.error().message);
      report.errors.push_back(Diagnostic{file, {}, replaced.error().message});
      continue;
    }
    (*replaced ? report.replaced : report.added).push_back(name);
  }
  // Workflows whose file is gone are unloaded; submitted ones stay.
  std::vector<std::string> gone;
  for (const auto& [name, entry] : registry_.entries()) {
    const std::string origin = entry.version ? entry.version->origin : entry.broken_file;
    if (origin != kSubmittedOrigin && !current_files.count(origin)) gone.push_back(name);
  }
  for (const std::string& name : gone) {
    if (Remove(name).ok()) report.removed.push_back(name);
  }
  LogFields f;
  f.event = "daemon.reloaded";
  LogInfo(f, "workflows loaded: " + std::to_string(report.added.size()) + " added, " +
                 std::to_string(report.replaced.size()) + " replaced, " +
                 std::to_string(report.removed.size()) + " removed, " +
                 CountOf(static_cast<std::int64_t>(report.errors.size()), "error"));
  return report;
}

// A file's workflow may not take a name another file took in this reload,
// nor a submitted workflow's (docs/operations.md, "Where workflows come from").
std::string Daemon::FileNameConflict(const std::string& name, std::set<std::string>& names_seen) {
  if (!names_seen.insert(name).second) {
    return "workflow '" + name + "' is already defined by another file; this one is ignored";
  }
  const WorkflowRegistry::Entry* entry = registry_.Find(name);
  if (entry == nullptr || !entry->version || entry->version->origin != kSubmittedOrigin) return "";
  return "workflow '" + name +
         "' was submitted (picoflowctl submit), and a reload never replaces a submitted "
         "workflow; this file is ignored (remove the submitted one with `picoflowctl remove " +
         name + "` and reload, or rename the workflow in this file)";
}

// The file of the workflows directory (or of the command line) that defines
// `name`, if any: it owns the name (docs/operations.md, "Where workflows come from").
std::string Daemon::FileDefining(const std::string& name) const {
  const WorkflowRegistry::Entry* entry = registry_.Find(name);
  if (entry == nullptr) return "";
  if (entry->version && entry->version->origin != kSubmittedOrigin) return entry->version->origin;
  return entry->broken_file;
}

Result<bool> Daemon::Submit(std::shared_ptr<const WorkflowVersion> version) {
  const std::string& name = version->workflow->name;
  if (version->origin == kSubmittedOrigin) {
    if (const std::string file = FileDefining(name); !file.empty()) {
      return Err(
          ErrorCode::kConflict,
          "workflow '" + name + "' is defined by the file " + file +
              ", and a workflow file's name cannot be submitted; edit the file and "
              "reload (picoflowctl daemon reload), or submit the workflow under another name");
    }
  }
  auto stored =
      store_->PutWorkflow(name, version->source, version->origin, Clock::now(), version->base_dir);
  if (!stored.ok()) return stored.error();
  const auto* existing = registry_.Find(name);
  const bool replaced = existing != nullptr && existing->version != nullptr;
  registry_.Put(std::move(version));
  Schedule(name);
  return replaced;
}

Status Daemon::Remove(const std::string& name) {
  if (!registry_.Remove(name)) return Err(ErrorCode::kNotFound, "no workflow '" + name + "'");
  Schedule(name);
  if (Status s = store_->RemoveWorkflow(name); !s.ok() && s.error().code != ErrorCode::kNotFound) {
    return s;
  }
  return {};
}

Result<PruneCounts> Daemon::PruneNow(bool dry_run) { return pruner_->PruneNow(dry_run); }

Status Daemon::NotifyTest(const std::string& workflow,
                          std::function<void(std::vector<NotifyTestOutcome>)> done) {
  const WorkflowRegistry::Entry* entry = registry_.Find(workflow);
  if (entry == nullptr || !entry->version) {
    return Err(ErrorCode::kNotFound, "no workflow '" + workflow + "'");
  }
  const Workflow& w = *entry->version->workflow;
  if (w.notify && w.notify->empty()) {
    return Err(ErrorCode::kConflict, "workflow '" + workflow +
                                         "' turns notifications off (notify: []): it has no "
                                         "targets to test");
  }
  if (notify_->SetupOf(w).targets.empty()) {
    return Err(ErrorCode::kConflict,
               "workflow '" + workflow +
                   "' has no notify targets (give it notify:, or the daemon a default notify: "
                   "in picoflowd.yaml)");
  }
  notify_->Test(w, std::move(done));
  return {};
}

void Daemon::StartSignals() {
  for (int signum : {SIGTERM, SIGINT, SIGHUP}) {
    auto handle = std::make_unique<UvHandle<uv_signal_t>>(this);
    if (uv_signal_init(&loop_, handle->get()) != 0) continue;
    handle->MarkInitialized();
    uv_signal_start(
        handle->get(),
        [](uv_signal_t* h, int sig) noexcept {
          auto* self = OwnerOf<Daemon>(h);
          if (self == nullptr) return;
          GuardCallback("daemon: signal", [&] { self->OnSignal(sig); });
        },
        signum);
    signals_.push_back(std::move(handle));
  }
}

void Daemon::OnSignal(int signum) {
  LogFields f;
  f.event = "daemon.signal";
  LogInfo(f, std::string("received ") + strsignal(signum));
  if (signum == SIGHUP) {
    if (!stopping_) Reload();
    return;
  }
  Shutdown();
}

void Daemon::Shutdown() {
  if (notify_drain_ == Drain::kDraining) {  // only notifications are left: drop them
    DropNotifications("stopping now");
    FinishShutdown();
    return;
  }
  if (stopping_) return;
  stopping_ = true;
  // --once has no next start to resume its run at: it always cancels.
  const bool interrupt = !once_ && config_.on_shutdown == ShutdownAction::kInterrupt;
  const std::string runs = CountOf(static_cast<std::int64_t>(runs_->active()), "run");
  LogFields f;
  f.event = "daemon.stopping";
  LogInfo(f, interrupt ? "stopping: interrupting " + runs + " (they resume at the next start)"
                       : "stopping: cancelling " + runs);
  if (notifier_) notifier_->Stopping();
  if (server_) server_->Close();
  if (file_triggers_) file_triggers_->Close();  // no event starts a run from now on
  StartOneShot<Daemon, &Daemon::GraceOver>(
      grace_timer_, static_cast<std::uint64_t>(config_.shutdown_grace.count()));
  if (interrupt) {
    runs_->InterruptAll([this] { FinishShutdown(); });
  } else {
    runs_->CancelAll([this] { FinishShutdown(); });
  }
}

void Daemon::GraceOver() {
  if (runs_->active() > 0) {
    LogWarn({}, "shutdown grace period over: killing what still runs");
    notify_drain_ = Drain::kDone;
  } else {
    DropNotifications("shutdown grace period over");
  }
  runs_->AbandonAll();
  FinishShutdown();
}

void Daemon::DropNotifications(std::string_view why) {
  if (notify_ && notify_->pending() > 0) {
    LogWarn({}, std::string(why) + ": dropping " +
                    CountOf(static_cast<std::int64_t>(notify_->pending()), "notification") +
                    " still going (picoflowctl notifications shows their attempts)");
  }
  notify_drain_ = Drain::kDone;
}

bool Daemon::DrainNotifications() {
  if (!notify_ || notify_drain_ == Drain::kDone) return false;
  if (notify_drain_ == Drain::kDraining) return true;
  if (notify_->pending() == 0) return false;
  notify_drain_ = Drain::kDraining;
  LogFields f;
  f.event = "daemon.stopping";
  LogInfo(f, "stopping: sending " +
                 CountOf(static_cast<std::int64_t>(notify_->pending()), "notification") +
                 " still going" + (once_ && !stopping_ ? "" : " (for at most shutdown_grace)"));
  // --once tries them as often as ever (nothing else waits for it; at most
  // ~1 min); a daemon's stop, only until its grace period is over.
  notify_->Drain(once_ && !stopping_, [this] {
    notify_drain_ = Drain::kDone;
    FinishShutdown();
  });
  return true;
}

void Daemon::FinishShutdown() {
  // Everything still open is closed; uv_run() returns once nothing is active.
  // First what could start work; then, once the notifications still going
  // are sent, the rest (the signals stay until then: a signal ends the
  // wait).
  if (pruner_) pruner_->Close();
  if (http_) http_->Close();
  if (schedule_timer_) schedule_timer_->Close();
  if (notifier_) notifier_->Close();
  if (server_) server_->Close();
  // After the runs' ends, which the fleet is told of (docs/fleet.md): the
  // offline status, then DISCONNECT (a few seconds at most); the loop runs
  // until the client's handles are closed.
  if (fleet_ && !fleet_stopping_) {
    fleet_stopping_ = true;
    fleet_->Stop([] {});
  }
  if (DrainNotifications()) return;
  grace_timer_.Close();
  if (notify_) notify_->Close();
  signals_.clear();
  if (group_commit_) group_commit_->Close();
  if (store_) {
    if (Status s = store_->Close(); !s.ok()) LogError({}, s.error().message);
  }
}

int Daemon::Run() {
  if (Status s = Open(); !s.ok()) {
    std::fprintf(stderr, "picoflowd: %s\n", s.error().message.c_str());
    return 1;
  }
  dispatcher_ = std::make_unique<Dispatcher>();
  methods_ = std::make_unique<RpcMethods>(static_cast<RpcHost&>(*this));
  methods_->Register(*dispatcher_);
  RegisterWebToken();
  RpcServerOptions options;
  options.socket_path = config_.socket_path;
  options.before_send = [this] { group_commit_->CommitNow(); };
  if (!config_.read_group.empty()) {
    auto gid = ResolveGroup(config_.read_group);
    if (!gid.ok()) {
      std::fprintf(stderr, "picoflowd: %s\n", gid.error().message.c_str());
      return 1;
    }
    options.group = *gid;
  }
  server_ = std::make_unique<RpcServer>(&loop_, options, *dispatcher_);
  // Socket activation (systemd/picoflowd.socket): the socket is at fd 3.
  const std::optional<int> activated = TakeListenFd();
  if (Status s = activated ? server_->Adopt(*activated) : server_->Listen(); !s.ok()) {
    std::fprintf(stderr, "picoflowd: %s\n", s.error().message.c_str());
    return 1;
  }
  if (Status s = StartHttp(); !s.ok()) {
    std::fprintf(stderr, "picoflowd: %s (fix --http-listen)\n", s.error().message.c_str());
    return 1;
  }
  if (Status s = StartFleet(); !s.ok()) {
    std::fprintf(stderr, "picoflowd: %s (fix the mqtt: section of the config file)\n",
                 s.error().message.c_str());
    return 1;
  }
  if (Status s = OpenOutputDir(); !s.ok()) {
    std::fprintf(stderr, "picoflowd: %s\n", s.error().message.c_str());
    return 1;
  }
  if (Status s = LoadStoredWorkflows(); !s.ok()) {
    std::fprintf(stderr, "picoflowd: %s\n", s.error().message.c_str());
    return 1;
  }
  Reload();
  const int resumed = runs_->RecoverUnfinished();
  // Runs queued before the stop start where the resumed ones leave room.
  for (const std::string& name : runs_->WaitingWorkflows()) StartWaiting(name);
  if (Status s = StartScheduling(); !s.ok()) {
    std::fprintf(stderr, "picoflowd: cannot start the cron timer: %s\n", s.error().message.c_str());
    return 1;
  }
  StartSignals();
  LogFields f;
  f.event = "daemon.ready";
  LogInfo(f, "picoflowd " PICOFLOW_VERSION " ready on " +
                 (activated ? std::string("an activated socket (fd 3)") : config_.socket_path) +
                 " (state " + config_.state_dir + ", " +
                 CountOf(static_cast<std::int64_t>(registry_.entries().size()), "workflow") + ", " +
                 CountOf(resumed, "run") + " resumed)");
  LogInfo(LogEvent("daemon.containment"),
          "task containment: " + facts_.containment + " (" + facts_.containment_reason + ")");
  notifier_ = SdNotifier::FromEnvironment(&loop_);
  notifier_->Ready(ActiveRunsStatus(runs_->active()));
  runs_->SetOnCountChanged([this](std::size_t live) {
    if (notifier_ && !stopping_) notifier_->Status(ActiveRunsStatus(live));
  });
  uv_run(&loop_, UV_RUN_DEFAULT);
  LogInfo({}, "stopped");
  return 0;
}

}  // namespace picoflow
