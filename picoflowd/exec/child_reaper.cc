#include "picoflowd/exec/child_reaper.h"

#include <fmt/format.h>
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>

#include "picoflowd/util/callback_guard.h"
#include "picoflowd/util/logging.h"

namespace picoflow {

ChildReaper::ChildReaper(uv_loop_t* loop) : signal_(this) {
  if (uv_signal_init(loop, signal_.get()) != 0) return;  // cannot fail on Linux
  signal_.MarkInitialized();
  const int rc = uv_signal_start(
      signal_.get(),
      [](uv_signal_t* h, int) noexcept {
        auto* self = OwnerOf<ChildReaper>(h);
        if (self == nullptr) return;
        GuardCallback("child reaper: SIGCHLD", [self] { self->OnSigchld(); });
      },
      SIGCHLD);
  if (rc != 0)
    LogError(LogEvent("exec.reaper"),
             fmt::format("child reaper: cannot watch SIGCHLD: {}", uv_strerror(rc)));
  uv_unref(signal_.base());  // referenced only while there are children to reap
}

// While children are watched the loop must not end, as with uv_spawn's
// process handles: a task may close its output and keep running.
void ChildReaper::Watch(pid_t pid, ChildWatcher* watcher) {
  children_.push_back(Child{pid, watcher, false, 0, 0});
  if (signal_.initialized()) uv_ref(signal_.base());
}

void ChildReaper::Forget(pid_t pid) {
  for (Child& c : children_) {
    if (c.pid == pid) c.watcher = nullptr;
  }
}

// SIGCHLDs coalesce, so every watched pid is polled. Reaping first and telling
// afterwards keeps the list stable while watchers run: a watcher may destroy
// another attempt (Forget) or start a new one (Watch, which appends).
void ChildReaper::OnSigchld() {
  for (Child& c : children_) {
    if (c.reaped) continue;
    int wstatus = 0;
    pid_t r;
    do {
      r = ::waitpid(c.pid, &wstatus, WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r == 0) continue;  // still running
    Reaped(c, r, wstatus);
  }
  if (reap_orphans_) ReapUnwatched();
  for (;;) {
    auto it =
        std::find_if(children_.begin(), children_.end(), [](const Child& c) { return c.reaped; });
    if (it == children_.end()) return;
    const Child c = *it;
    children_.erase(it);
    if (children_.empty() && signal_.initialized()) uv_unref(signal_.base());
    if (c.watcher != nullptr) c.watcher->OnChildExit(c.status, c.term_signal);
  }
}

// Records how `c` ended: waitpid returned `r` with `wstatus`.
void ChildReaper::Reaped(Child& c, pid_t r, int wstatus) {
  c.reaped = true;
  if (r < 0) {  // ECHILD: someone else reaped it; report it as killed
    LogError(LogEvent("exec.reaper"),
             fmt::format("child reaper: waitpid({}): {}", c.pid, std::strerror(errno)));
    c.term_signal = SIGKILL;
  } else if (WIFSIGNALED(wstatus)) {
    c.term_signal = WTERMSIG(wstatus);
  } else {
    c.status = WEXITSTATUS(wstatus);
  }
}

// Each dead child, looked at without reaping it (WNOWAIT) so that a watched
// one, which may have died since the loop above, is reaped as watched: its
// status is its attempt's. Each turn reaps one, so this ends.
void ChildReaper::ReapUnwatched() {
  for (;;) {
    siginfo_t info{};
    if (::waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) != 0) {
      if (errno == EINTR) continue;
      return;  // ECHILD: no child at all
    }
    const pid_t pid = info.si_pid;
    if (pid == 0) return;  // none has exited
    int wstatus = 0;
    pid_t r;
    do {
      r = ::waitpid(pid, &wstatus, WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r <= 0) return;  // cannot happen: it was there a moment ago
    auto watched = std::find_if(children_.begin(), children_.end(),
                                [pid](const Child& c) { return c.pid == pid && !c.reaped; });
    if (watched != children_.end()) {
      Reaped(*watched, r, wstatus);
    } else {
      ++orphans_reaped_;
    }
  }
}

}  // namespace picoflow
