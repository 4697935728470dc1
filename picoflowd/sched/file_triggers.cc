#include "picoflowd/sched/file_triggers.h"

#include <dirent.h>
#include <fnmatch.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <utility>

#include "picoflowd/util/callback_guard.h"

namespace picoflow {
namespace {

// One mask for every watch: a directory watched for two triggers (or as one
// trigger's directory and another's ancestor) has one wd, and a second
// inotify_add_watch with another mask would replace the first.
constexpr std::uint32_t kMask = IN_CREATE | IN_MOVED_TO | IN_MODIFY | IN_CLOSE_WRITE | IN_DELETE |
                                IN_MOVED_FROM | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR;

// Ancestors climbed or descended before giving up on a path that keeps
// changing under us.
constexpr int kMaxRewatchSteps = 64;

std::string Parent(const std::string& dir) {
  const std::size_t slash = dir.rfind('/');
  return slash == 0 || slash == std::string::npos ? "/" : dir.substr(0, slash);
}

// The component of `path` right below its ancestor `dir`.
std::string NextComponent(const std::string& dir, const std::string& path) {
  const std::size_t start = dir == "/" ? 1 : dir.size() + 1;
  const std::size_t slash = path.find('/', start);
  return path.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
}

bool IsDirectory(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool IsRegularFile(const std::string& path) {
  struct stat st {};
  return lstat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::string ProcValue(const char* path) {
  std::ifstream in(path);
  std::string value;
  in >> value;
  return value.empty() ? "?" : value;
}

Error WatchError(const std::string& dir, int error) {
  if (error == ENOSPC) {
    return Err(ErrorCode::kUnavailable,
               "cannot watch " + dir +
                   ": the inotify watch limit is reached (fs.inotify.max_user_watches = " +
                   ProcValue("/proc/sys/fs/inotify/max_user_watches") +
                   "); raise it with `sysctl -w fs.inotify.max_user_watches=524288`, and in "
                   "/etc/sysctl.d/ to keep it");
  }
  if (error == EACCES) {
    return Err(ErrorCode::kUnavailable,
               "cannot watch " + dir + ": permission denied (the daemon's user must read it)");
  }
  return Err(ErrorCode::kIo, "cannot watch " + dir + ": " + std::strerror(error));
}

bool Matches(const FileTrigger& spec, const std::string& name) {
  return fnmatch(spec.pattern.c_str(), name.c_str(), FNM_PERIOD) == 0;
}

}  // namespace

struct FileTriggers::Watch {
  std::string workflow;
  FileTrigger spec;
  int wd = -1;
  std::string watched;  // spec.path, or its nearest existing ancestor while it is missing
  std::map<std::string, std::uint64_t> pending;  // file name -> last activity (uv_now ms)

  bool on_target() const { return wd >= 0 && watched == spec.path; }
};

FileTriggers::FileTriggers(uv_loop_t* loop, OnFile on_file, OnProblem on_problem)
    : loop_(loop),
      on_file_(std::move(on_file)),
      on_problem_(std::move(on_problem)),
      poll_(this),
      timer_(this) {}

FileTriggers::~FileTriggers() { Close(); }

Status FileTriggers::Open() {
  if (fd_ >= 0) return {};
  fd_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd_ < 0) {
    const int error = errno;
    if (error == EMFILE) {
      return Err(ErrorCode::kUnavailable,
                 "inotify_init1: the limit of inotify instances is reached "
                 "(fs.inotify.max_user_instances = " +
                     ProcValue("/proc/sys/fs/inotify/max_user_instances") +
                     "); raise it with `sysctl -w fs.inotify.max_user_instances=1024`");
    }
    return Err(ErrorCode::kIo, std::string("inotify_init1: ") + std::strerror(error));
  }
  if (int rc = uv_poll_init(loop_, poll_.get(), fd_); rc != 0) {
    return Err(ErrorCode::kIo, std::string("uv_poll_init: ") + uv_strerror(rc));
  }
  poll_.MarkInitialized();
  const int rc = uv_poll_start(poll_.get(), UV_READABLE, [](uv_poll_t* h, int, int) noexcept {
    auto* self = OwnerOf<FileTriggers>(h);
    if (self == nullptr) return;
    GuardCallback("file triggers", [self] { self->OnReadable(); });
  });
  if (rc != 0) return Err(ErrorCode::kIo, std::string("uv_poll_start: ") + uv_strerror(rc));
  if (int t = uv_timer_init(loop_, timer_.get()); t != 0) {
    return Err(ErrorCode::kIo, std::string("uv_timer_init: ") + uv_strerror(t));
  }
  timer_.MarkInitialized();
  return {};
}

Status FileTriggers::Set(const std::string& workflow, const std::vector<FileTrigger>& triggers) {
  for (auto it = watches_.begin(); it != watches_.end();) {
    if ((*it)->workflow != workflow) {
      ++it;
      continue;
    }
    Unwatch(**it);
    it = watches_.erase(it);
  }
  if (triggers.empty()) return {};
  if (Status s = Open(); !s.ok()) return s;
  Status first;
  for (const FileTrigger& spec : triggers) {
    auto w = std::make_unique<Watch>();
    w->workflow = workflow;
    w->spec = spec;
    Status s = Rewatch(*w, false);
    if (!s.ok() && first.ok()) first = s;
    watches_.push_back(std::move(w));
  }
  return first;
}

std::size_t FileTriggers::pending() const {
  std::size_t n = 0;
  for (const auto& w : watches_) n += w->pending.size();
  return n;
}

Status FileTriggers::Rewatch(Watch& w, bool appeared) {
  Unwatch(w);
  w.pending.clear();
  std::string dir = w.spec.path;
  for (int step = 0; step < kMaxRewatchSteps; ++step) {
    const int wd = inotify_add_watch(fd_, dir.c_str(), kMask);
    if (wd < 0) {
      const int error = errno;
      struct stat st {};
      if (error == ENOTDIR && stat(dir.c_str(), &st) == 0) {
        w.watched.clear();
        return Err(ErrorCode::kInvalid, "cannot watch " + dir + ": it is not a directory");
      }
      if ((error == ENOENT || error == ENOTDIR) && dir != "/") {
        dir = Parent(dir);  // watch for it from the nearest ancestor that exists
        continue;
      }
      w.watched.clear();
      return WatchError(dir, error);
    }
    // The next directory down may have been made between the failed watch
    // and this one: its creation was not seen, so go down again.
    if (dir != w.spec.path &&
        IsDirectory(dir + (dir == "/" ? "" : "/") + NextComponent(dir, w.spec.path))) {
      if (by_wd_.find(wd) == by_wd_.end()) inotify_rm_watch(fd_, wd);
      dir = w.spec.path;
      appeared = true;
      continue;
    }
    w.wd = wd;
    w.watched = dir;
    by_wd_.emplace(wd, &w);
    break;
  }
  if (!w.on_target()) return {};
  if (!appeared || (w.spec.events & (kFileCreated | kFileMovedIn)) == 0) return {};
  // The directory was just made: what is in it already arrived after the
  // trigger was set, and no event of it was seen.
  if (DIR* d = opendir(w.spec.path.c_str())) {
    while (const dirent* e = readdir(d)) {
      const std::string name = e->d_name;
      if (Matches(w.spec, name) && IsRegularFile(w.spec.path + "/" + name)) Touch(w, name);
    }
    closedir(d);
  }
  return {};
}

void FileTriggers::Unwatch(Watch& w) {
  if (w.wd < 0) return;
  const auto [first, last] = by_wd_.equal_range(w.wd);
  for (auto it = first; it != last; ++it) {
    if (it->second == &w) {
      by_wd_.erase(it);
      break;
    }
  }
  if (by_wd_.find(w.wd) == by_wd_.end() && fd_ >= 0) inotify_rm_watch(fd_, w.wd);
  w.wd = -1;
}

void FileTriggers::OnReadable() {
  alignas(inotify_event) char buffer[16 * 1024];
  for (;;) {
    const ssize_t n = read(fd_, buffer, sizeof buffer);
    if (n <= 0) return;  // EAGAIN: all read
    for (ssize_t at = 0; at < n;) {
      const auto* e = reinterpret_cast<const inotify_event*>(buffer + at);
      at += static_cast<ssize_t>(sizeof(inotify_event) + e->len);
      OnEvent(e->wd, e->mask, e->len > 0 ? std::string(e->name) : std::string());
    }
  }
}

void FileTriggers::OnEvent(int wd, std::uint32_t mask, const std::string& name) {
  if (mask & IN_Q_OVERFLOW) {
    std::vector<std::string> told;
    for (const auto& w : watches_) {
      if (std::find(told.begin(), told.end(), w->workflow) != told.end()) continue;
      told.push_back(w->workflow);
      on_problem_(w->workflow,
                  "inotify's queue overflowed: file events were lost (raise "
                  "fs.inotify.max_queued_events)");
    }
    return;
  }
  std::vector<Watch*> targets;
  const auto [first, last] = by_wd_.equal_range(wd);
  for (auto it = first; it != last; ++it) targets.push_back(it->second);
  for (Watch* w : targets) {
    if (mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) {
      // The directory is gone (or moved away): watch for it again from its
      // parent. After IN_IGNORED the kernel has dropped the wd already.
      if (mask & IN_IGNORED) {
        for (auto it = by_wd_.lower_bound(wd); it != by_wd_.end() && it->first == wd; ++it) {
          if (it->second == w) {
            by_wd_.erase(it);
            break;
          }
        }
        w->wd = -1;
      }
      if (Status s = Rewatch(*w, true); !s.ok()) on_problem_(w->workflow, s.error().message);
      continue;
    }
    if (!w->on_target()) {
      // An ancestor: only the next directory down matters.
      if ((mask & (IN_CREATE | IN_MOVED_TO)) && name == NextComponent(w->watched, w->spec.path)) {
        if (Status s = Rewatch(*w, true); !s.ok()) on_problem_(w->workflow, s.error().message);
      }
      continue;
    }
    if (name.empty() || (mask & IN_ISDIR) || !Matches(w->spec, name)) continue;
    if (mask & (IN_DELETE | IN_MOVED_FROM)) {
      w->pending.erase(name);
      continue;
    }
    const unsigned wanted = w->spec.events;
    if (w->pending.count(name) != 0 || ((mask & IN_CREATE) && (wanted & kFileCreated)) ||
        ((mask & IN_MOVED_TO) && (wanted & kFileMovedIn)) ||
        ((mask & (IN_MODIFY | IN_CLOSE_WRITE)) && (wanted & kFileModified))) {
      Touch(*w, name);
    }
  }
}

void FileTriggers::Touch(Watch& w, const std::string& name) {
  const std::uint64_t now = uv_now(loop_);
  w.pending[name] = now;
  const std::uint64_t deadline = now + static_cast<std::uint64_t>(w.spec.settle.count()) * 1000;
  if (armed_at_ == 0 || deadline < armed_at_) Arm(deadline);
}

void FileTriggers::Arm(std::uint64_t deadline_ms) {
  if (!timer_.initialized()) return;
  const std::uint64_t now = uv_now(loop_);
  armed_at_ = std::max<std::uint64_t>(deadline_ms, 1);
  uv_timer_start(
      timer_.get(),
      [](uv_timer_t* h) noexcept {
        auto* self = OwnerOf<FileTriggers>(h);
        if (self == nullptr) return;
        GuardCallback("file triggers settle", [self] { self->OnTimer(); });
      },
      deadline_ms > now ? deadline_ms - now : 0, 0);
}

void FileTriggers::OnTimer() {
  armed_at_ = 0;
  const std::uint64_t now = uv_now(loop_);
  std::uint64_t next = std::numeric_limits<std::uint64_t>::max();
  std::vector<std::pair<std::string, std::string>> settled;  // workflow, file
  for (const auto& w : watches_) {
    const auto settle = static_cast<std::uint64_t>(w->spec.settle.count()) * 1000;
    for (auto it = w->pending.begin(); it != w->pending.end();) {
      if (it->second + settle > now) {
        next = std::min(next, it->second + settle);
        ++it;
        continue;
      }
      const std::string file = w->spec.path + "/" + it->first;
      if (IsRegularFile(file)) settled.emplace_back(w->workflow, file);
      it = w->pending.erase(it);
    }
  }
  if (next != std::numeric_limits<std::uint64_t>::max()) Arm(next);
  // Told last: a handler may Set() the triggers again.
  for (const auto& [workflow, file] : settled) on_file_(workflow, file);
}

void FileTriggers::Close() {
  for (auto& w : watches_) w->wd = -1;
  by_wd_.clear();
  watches_.clear();
  poll_.Close();
  timer_.Close();
  if (fd_ >= 0) {
    close(fd_);  // drops every watch
    fd_ = -1;
  }
  armed_at_ = 0;
}

}  // namespace picoflow
