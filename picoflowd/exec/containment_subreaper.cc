// The subreaper mode of containment.h: this process is a child subreaper, so
// whatever a task leaves behind stays among its descendants; an attempt's
// end kills what of them is no live attempt's.

#include <signal.h>
#include <sys/prctl.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <unordered_set>
#include <utility>
#include <vector>

#include "picoflowd/exec/containment.h"
#include "picoflowd/exec/process_tree.h"
#include "picoflowd/util/logging.h"

namespace picoflow {
namespace {

// Killing a process lets its children go to us; one that forked between a
// look at the tree and the kill is found by the next look. A few looks end
// it (a killed process forks no more); the bound ends a pathological race.
constexpr int kMaxPasses = 8;

class Subreaper;

// One attempt while it lives: its key and, once spawned, its leader.
class HeldAttempt final : public ContainedAttempt {
 public:
  HeldAttempt(Subreaper& owner, AttemptMark key) : owner_(&owner), key_(std::move(key)) {}
  ~HeldAttempt() override { End(false); }
  HeldAttempt(const HeldAttempt&) = delete;
  HeldAttempt& operator=(const HeldAttempt&) = delete;

  void Started(pid_t pid) override { leader_ = pid; }
  void End(bool leader_gone) override;

  const AttemptMark& key() const { return key_; }
  pid_t leader() const { return leader_; }

 private:
  Subreaper* owner_;
  AttemptMark key_;
  pid_t leader_ = 0;
  bool ended_ = false;
};

class Subreaper final : public Containment {
 public:
  Subreaper(std::string owner, std::string reason, bool was_subreaper)
      : Containment(ContainmentMode::kSubreaper, std::move(reason)),
        owner_(std::move(owner)),
        was_subreaper_(was_subreaper) {}
  // A test's containment ends before its process does; a daemon's at exit.
  ~Subreaper() override {
    if (!was_subreaper_) ::prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0);
  }

  Result<std::unique_ptr<ContainedAttempt>> Enter(const AttemptMark& key) override {
    auto held = std::make_unique<HeldAttempt>(*this, key);
    live_.push_back(held.get());
    return std::unique_ptr<ContainedAttempt>(std::move(held));
  }

  void KillAll() override {
    const std::size_t killed = Sweep(0).size();
    if (killed > 0) {
      LogInfo(LogEvent("exec.leftovers_killed"),
              "killed " + std::to_string(killed) + " process(es) that tasks left running");
    }
  }

  // `held` ended: kills what it left (and, if `leader` > 0, the leader's
  // whole tree: it may still be dying, its children not yet ours).
  void Ended(HeldAttempt* held, pid_t leader) {
    live_.erase(std::remove(live_.begin(), live_.end(), held), live_.end());
    std::unordered_set<pid_t> killed = Sweep(leader);
    killed.erase(leader);  // its group's end, not a leftover
    if (killed.empty()) return;
    LogFields f;
    f.event = "task.leftovers_killed";
    f.run = held->key().run_id;
    f.task = held->key().task;
    f.attempt = held->key().attempt;
    LogInfo(f, "killed " + std::to_string(killed.size()) +
                   " leftover process(es) as the attempt ended");
  }

 private:
  // Returns the processes that got SIGKILL.
  std::unordered_set<pid_t> Sweep(pid_t leader) {
    // The usual case, nothing escaped, costs one read of our children (a
    // pread of a file kept open): none, or only running tasks' leaders.
    std::unordered_set<pid_t> killed;
    for (int pass = 0; pass < kMaxPasses; ++pass) {
      ProcessTree tree;
      std::vector<pid_t> roots;
      if (leader > 0) roots.push_back(leader);
      for (pid_t child : tree.OwnChildren()) {
        if (Abandoned(child)) roots.push_back(child);
      }
      const std::size_t before = killed.size();
      for (pid_t root : roots) {
        for (pid_t pid : tree.Subtree(root)) {
          // A zombie is dead already (and not counted as killed).
          if (killed.count(pid) == 0 && ReadProcessState(pid) != 'Z') {
            killed.insert(pid);
            ::kill(pid, SIGKILL);
          }
        }
      }
      if (killed.size() == before) break;
    }
    return killed;
  }

  // Whether a child of ours belongs to no live attempt. A live attempt's
  // leader and what carries its marks do; what carries our marks of an
  // attempt that ended does not. What carries none (a program that cleared
  // its environment) or another daemon's may be any attempt's, so it is
  // left alone while any attempt lives: the daemon starts nothing but tasks.
  bool Abandoned(pid_t child) const {
    for (const HeldAttempt* held : live_) {
      if (held->leader() == child) return false;
    }
    if (ReadProcessState(child) == 'Z') return false;  // dead: the reaper's
    const std::optional<TaskMark> mark = ReadTaskMark(child);
    if (!mark || (!owner_.empty() && mark->state_dir != owner_)) return live_.empty();
    for (const HeldAttempt* held : live_) {
      const AttemptMark& k = held->key();
      if (k.run_id == mark->run_id && k.task == mark->task && k.attempt == mark->attempt) {
        return false;
      }
    }
    return true;
  }

  std::string owner_;
  bool was_subreaper_;
  std::vector<HeldAttempt*> live_;  // not owned; each removes itself when it ends
};

void HeldAttempt::End(bool leader_gone) {
  if (ended_) return;
  ended_ = true;
  owner_->Ended(this, leader_gone ? 0 : leader_);
}

}  // namespace

std::unique_ptr<Containment> SubreaperContainment(std::string owner,
                                                  const std::string& why_not_cgroup) {
  int was = 0;
  ::prctl(PR_GET_CHILD_SUBREAPER, &was, 0, 0, 0);
  if (::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) {
    return ProcessGroupContainment(std::string("cannot become a child subreaper (prctl: ") +
                                   std::strerror(errno) + "); " + why_not_cgroup);
  }
  std::string reason = why_not_cgroup +
                       "; picoflowd is a child subreaper instead: what a task leaves "
                       "behind is killed when its attempt ends";
  return std::make_unique<Subreaper>(std::move(owner), std::move(reason), was != 0);
}

}  // namespace picoflow
