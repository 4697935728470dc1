// Store: what it does when the disk is full (docs/reliability.md, "Disk
// full"). A write of a run's history that the disk refuses, and those of a
// group SQLite rolled back, are kept in memory (StoreBacklog) in their order;
// every later one joins them, so that they are saved in the order they were
// made, all at once, when SaveKept() finds room. Until then the store is
// degraded: reads of a run show the kept writes, no new run is created.

#include <utility>

#include "picoflowd/store/sqlite_db.h"
#include "picoflowd/store/store.h"
#include "picoflowd/store/store_backlog.h"
#include "picoflowd/util/logging.h"

namespace picoflow {

Status Store::Write(RunWrite write) {
  if (!kept_->empty()) {  // after what is kept, never before it
    kept_->Push(std::move(write));
    return {};
  }
  LostOutput none;
  Status s = Apply(write, none);
  if (s) {
    if (db_->group_open()) kept_->Grouped(std::move(write));
    return s;
  }
  if (s.error().code != ErrorCode::kDiskFull) return s;
  Keep(std::move(write), s.error());
  return {};
}

void Store::Keep(RunWrite write, const Error& why) {
  db_->CheckGroup();  // the group SQLite rolled back, if it did, goes first
  kept_->Push(std::move(write));
  Degrade(why);
}

void Store::GroupLost(const Error& why) {
  const std::size_t kept = kept_->GroupLost();
  if (kept_->empty()) {
    LogError(LogEvent("store.group_lost"),
             why.message + ": lost (it held no change of a run's history)");
    return;
  }
  LogWarn(LogEvent("store.group_lost"),
          why.message + ": its " + std::to_string(kept) +
              " changes of runs are kept to be saved later; changes of workflows in it are lost");
  Degrade(why);
}

void Store::Degrade(const Error& why) {
  health_.error = why.message;
  if (health_.degraded) return;
  health_.degraded = true;
  health_.reason = why.code == ErrorCode::kDiskFull ? "disk full" : "writes failing";
  health_.since = std::chrono::system_clock::now();
  LogError(LogEvent("store.degraded"),
           "store degraded (" + health_.reason + "): " + why.message +
               "; changes of runs in progress are kept in memory and saved once " + db_->path() +
               " can grow again; no new run starts meanwhile");
}

StoreHealth Store::Health() const {
  StoreHealth health = health_;
  health.kept_writes = kept_->size();
  health.lost_output = kept_->lost_output_bytes();
  return health;
}

Status Store::Apply(const RunWrite& write, LostOutput& lost) {
  return std::visit([&](const auto& w) { return Apply(w, lost); }, write);
}

Status Store::Apply(const CreateRunWrite& w, LostOutput&) {
  auto id = InsertRun(w.run, w.run_id);
  return id ? Status{} : Status{id.error()};
}

Status Store::SaveKept() {
  if (kept_->empty()) return {};
  // The kept writes are saved alone, in one transaction: first what the
  // open group holds (it may fail as they would).
  if (db_->group_open()) {
    if (Status s = Commit(); !s) return s;
  }
  const std::size_t count = kept_->size();
  std::size_t dropped = 0;
  saving_ = true;
  Status saved = [&]() -> Status {
    auto tx = Transaction::Begin(*db_, "save kept writes");
    if (!tx) return tx.error();
    LostOutput lost;
    for (const RunWrite& w : kept_->writes()) {
      Status s = Apply(w, lost);
      if (s) continue;
      if (s.error().code == ErrorCode::kDiskFull) return s;
      // Not the disk: this write cannot be made (its run was deleted
      // meanwhile, say); the others still can.
      LogError(LogEvent("store.save_kept"), s.error().message + " (a kept change, dropped)");
      ++dropped;
    }
    if (Status s = tx->Commit(); !s) return s;
    return db_->group_commit() ? db_->CommitGroup() : Status{};
  }();
  saving_ = false;
  if (!saved) {
    db_->CheckGroup();
    return saved;
  }
  const auto degraded_for = std::chrono::duration_cast<std::chrono::seconds>(
      std::chrono::system_clock::now() - health_.since.value_or(std::chrono::system_clock::now()));
  LogInfo(LogEvent("store.recovered"),
          "store healthy again: saved the " + std::to_string(count - dropped) +
              " changes kept in memory" +
              (dropped > 0 ? " (" + std::to_string(dropped) + " could not be made)" : "") +
              " (degraded for " + std::to_string(degraded_for.count()) + " s; " +
              std::to_string(kept_->lost_output_bytes()) + " bytes of output lost)");
  kept_->Clear();
  health_ = {};
  if (!started_.empty()) FlushStarted();
  return {};
}

}  // namespace picoflow
