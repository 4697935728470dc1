// The cgroup mode of containment.h: each attempt in a cgroup v2 of its own
// under the daemon's delegated one, ended with cgroup.kill; and the check
// that finds (and enters) that delegated cgroup at start.

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <list>
#include <string_view>
#include <utility>
#include <vector>

#include "picoflowd/exec/containment.h"
#include "picoflowd/util/callback_guard.h"
#include "picoflowd/util/logging.h"
#include "picoflowd/util/uv_handle.h"

namespace picoflow {
namespace {

// The leaf the daemon moves itself into, and the prefix of attempts' cgroups.
constexpr std::string_view kDaemonLeaf = "daemon";
constexpr std::string_view kAttemptPrefix = "attempt-";

// At the end, how long a killed attempt's cgroup may take to empty before it
// is left for systemd to remove with the unit's (it normally takes less than
// a millisecond: the processes only have to exit).
constexpr std::chrono::milliseconds kFinalRemoveWait{1000};

std::string Errno(int e = errno) { return std::strerror(e); }

// Reads a small file whole; false if it cannot be opened.
bool ReadText(const std::string& path, std::string& out) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return true;
}

// Writes `text` to a cgroup file in one write(). Returns 0 or an errno.
int WriteText(const std::string& path, std::string_view text) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  const ssize_t n = ::write(fd, text.data(), text.size());
  const int e = n == static_cast<ssize_t>(text.size()) ? 0 : (n < 0 ? errno : EIO);
  ::close(fd);
  return e;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    lines.push_back(text.substr(pos, end - pos));
    pos = end + 1;
  }
  return lines;
}

std::vector<std::string> Fields(const std::string& line) {
  std::vector<std::string> fields;
  std::size_t pos = 0;
  while (pos <= line.size()) {
    std::size_t end = line.find(' ', pos);
    if (end == std::string::npos) end = line.size();
    fields.push_back(line.substr(pos, end - pos));
    pos = end + 1;
  }
  return fields;
}

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string Unescape(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      const int v = (s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0');
      out += static_cast<char>(v);
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

// This process's cgroup v2 path ("0::PATH" of /proc/self/cgroup), as a
// directory of the cgroup2 mount that holds it.
Result<std::string> OwnCgroupDir() {
  std::string text;
  std::string path;
  if (ReadText("/proc/self/cgroup", text)) {
    for (const std::string& line : Lines(text)) {
      if (line.rfind("0::", 0) == 0) path = line.substr(3);
    }
  }
  if (path.empty()) return Err(ErrorCode::kUnavailable, "no cgroup v2 hierarchy");
  text.clear();
  ReadText("/proc/self/mountinfo", text);
  for (const std::string& line : Lines(text)) {
    // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER
    const std::vector<std::string> f = Fields(line);
    std::size_t dash = 6;
    while (dash < f.size() && f[dash] != "-") ++dash;
    if (f.size() < 5 || dash + 1 >= f.size() || f[dash + 1] != "cgroup2") continue;
    const std::string root = Unescape(f[3]);
    const std::string mount = Unescape(f[4]);
    if (root == "/") return path == "/" ? mount : mount + path;
    if (path == root) return mount;
    if (path.rfind(root + "/", 0) == 0) return mount + path.substr(root.size());
  }
  return Err(ErrorCode::kUnavailable, "cgroup v2 is not mounted where picoflowd can see it");
}

// systemd marks a cgroup it delegates (Delegate=yes) with trusted.delegate
// (readable by root only) and user.delegate.
bool Delegated(const std::string& dir) {
  for (const char* name : {"trusted.delegate", "user.delegate"}) {
    char value[8];
    const ssize_t n = ::getxattr(dir.c_str(), name, value, sizeof value);
    if (n == 1 && value[0] == '1') return true;
  }
  return false;
}

std::string Parent(const std::string& dir) {
  const std::size_t slash = dir.rfind('/');
  return slash == std::string::npos || slash == 0 ? "/" : dir.substr(0, slash);
}

std::string Basename(const std::string& dir) {
  const std::size_t slash = dir.rfind('/');
  return slash == std::string::npos ? dir : dir.substr(slash + 1);
}

// A pid of `dir`'s cgroup.procs other than ours, or 0.
long OtherMember(const std::string& dir) {
  std::string text;
  if (!ReadText(dir + "/cgroup.procs", text)) return 0;
  for (const std::string& line : Lines(text)) {
    const long pid = std::atol(line.c_str());
    if (pid > 0 && pid != ::getpid()) return pid;
  }
  return 0;
}

void SleepMs(long ms) {
  timespec ts{ms / 1000, (ms % 1000) * 1000000};
  while (::nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

class CgroupTree;

// One attempt's cgroup, from before its spawn to its end.
class AttemptCgroup final : public ContainedAttempt {
 public:
  AttemptCgroup(CgroupTree& tree, std::string path, int procs_fd)
      : tree_(&tree), path_(std::move(path)), procs_fd_(procs_fd) {}
  ~AttemptCgroup() override { End(false); }
  AttemptCgroup(const AttemptCgroup&) = delete;
  AttemptCgroup& operator=(const AttemptCgroup&) = delete;

  int cgroup_procs_fd() const override { return procs_fd_; }
  void End(bool leader_gone) override;

 private:
  CgroupTree* tree_;
  std::string path_;
  int procs_fd_;
  bool ended_ = false;
};

class CgroupTree final : public Containment {
 public:
  CgroupTree(uv_loop_t* loop, std::string dir, std::string reason)
      : Containment(ContainmentMode::kCgroup, std::move(reason)),
        loop_(loop),
        dir_(std::move(dir)) {}

  Result<std::unique_ptr<ContainedAttempt>> Enter(const AttemptMark& key) override {
    const std::string path = dir_ + "/" + Name(key);
    int rc = ::mkdir(path.c_str(), 0755);
    if (rc != 0 && errno == EEXIST) {
      KillNow({path});  // a previous daemon's, of the same run: not ours to keep
      rc = ::mkdir(path.c_str(), 0755);
    }
    if (rc != 0) return Err(ErrorCode::kIo, "cannot make its cgroup " + path + ": " + Errno());
    const int fd = ::open((path + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
      const int e = errno;
      ::rmdir(path.c_str());
      return Err(ErrorCode::kIo, "cannot make its cgroup " + path + ": " + Errno(e));
    }
    return std::unique_ptr<ContainedAttempt>(std::make_unique<AttemptCgroup>(*this, path, fd));
  }

  int KillLeftovers() override {
    const int killed = KillAttemptCgroups();
    if (killed > 0) {
      LogWarn(LogEvent("daemon.leftovers_killed"), "killed what " + std::to_string(killed) +
                                                       " attempt cgroup(s) of a previous " +
                                                       "picoflowd held in " + dir_);
    }
    return killed;
  }

  void KillAll() override {
    KillAttemptCgroups();
    pending_.clear();  // closes the watches; what did not empty in time, systemd removes
  }

  // Ends one attempt's cgroup: everything in it gets SIGKILL at once (new
  // forks included); the directory goes when it is empty, now or later.
  void Kill(const std::string& path) {
    if (const int e = WriteText(path + "/cgroup.kill", "1"); e != 0) {
      if (e != ENOENT) LogError(LogEvent("exec.cgroup"), "cannot kill " + path + ": " + Errno(e));
      return;
    }
    if (::rmdir(path.c_str()) == 0 || errno == ENOENT) return;
    if (errno != EBUSY) {
      LogError(LogEvent("exec.cgroup"), "cannot remove " + path + ": " + Errno());
      return;
    }
    RemoveWhenEmpty(path);
  }

 private:
  // A killed cgroup whose processes have not all exited yet: its
  // cgroup.events changes when the last one has.
  struct Pending {
    CgroupTree* tree;
    std::string path;
    UvHandle<uv_fs_event_t> watch;
    Pending(CgroupTree* t, std::string p) : tree(t), path(std::move(p)), watch(this) {}
  };

  static std::string Name(const AttemptMark& key) {
    std::string name(kAttemptPrefix);
    name += std::to_string(key.run_id) + "-";
    for (char c : key.task) {
      const bool plain = std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
      name += plain ? c : '_';
    }
    name += "-" + std::to_string(key.attempt);
    return name;
  }

  void RemoveWhenEmpty(const std::string& path) {
    Pending& p = pending_.emplace_back(this, path);
    int rc = uv_fs_event_init(loop_, p.watch.get());
    if (rc == 0) {
      p.watch.MarkInitialized();
      uv_unref(p.watch.base());  // a cgroup left to remove keeps no loop alive
      rc = uv_fs_event_start(p.watch.get(), &EventCb, (path + "/cgroup.events").c_str(), 0);
    }
    if (rc != 0) {
      LogWarn(LogEvent("exec.cgroup"), "cannot watch " + path + " (" + uv_strerror(rc) +
                                           "): it stays until picoflowd stops");
    }
    // It may have emptied before the watch began.
    if (rc != 0 || ::rmdir(path.c_str()) == 0 || errno == ENOENT) pending_.pop_back();
  }

  static void EventCb(uv_fs_event_t* h, const char*, int, int) noexcept {
    GuardCallback("cgroup removal", [h] {
      auto* p = OwnerOf<Pending>(h);
      if (p == nullptr) return;
      if (::rmdir(p->path.c_str()) != 0 && errno == EBUSY) return;  // not empty yet
      CgroupTree* tree = p->tree;
      tree->pending_.remove_if([p](const Pending& q) { return &q == p; });
    });
  }

  // Kills `paths` and waits (bounded) until they can be removed: for a
  // start or an end, when nothing else is going on.
  static void KillNow(const std::vector<std::string>& paths) {
    for (const std::string& path : paths) WriteText(path + "/cgroup.kill", "1");
    std::vector<std::string> left = paths;
    for (long waited = 0;; waited += 10) {
      std::vector<std::string> busy;
      for (const std::string& path : left) {
        if (::rmdir(path.c_str()) != 0 && errno == EBUSY) busy.push_back(path);
      }
      if (busy.empty() || waited >= kFinalRemoveWait.count()) return;
      left.swap(busy);
      SleepMs(10);
    }
  }

  // Every attempt-* cgroup of the tree: killed and removed. Returns how many.
  int KillAttemptCgroups() {
    std::vector<std::string> paths;
    if (DIR* d = ::opendir(dir_.c_str())) {
      while (const dirent* e = ::readdir(d)) {
        if (std::string_view(e->d_name).rfind(kAttemptPrefix, 0) == 0) {
          paths.push_back(dir_ + "/" + e->d_name);
        }
      }
      ::closedir(d);
    }
    KillNow(paths);
    return static_cast<int>(paths.size());
  }

  uv_loop_t* loop_;
  std::string dir_;
  std::list<Pending> pending_;  // a list: a Pending never moves (its watch points at it)
};

void AttemptCgroup::End(bool) {
  if (ended_) return;
  ended_ = true;
  ::close(procs_fd_);
  procs_fd_ = -1;
  tree_->Kill(path_);
}

}  // namespace

std::unique_ptr<Containment> CgroupContainment(uv_loop_t* loop, std::string dir,
                                               std::string reason) {
  return std::make_unique<CgroupTree>(loop, std::move(dir), std::move(reason));
}

Result<std::string> AdoptDelegatedCgroup() {
  Result<std::string> own = OwnCgroupDir();
  if (!own.ok()) return own.error();
  std::string base = *own;
  const bool inside = Basename(base) == kDaemonLeaf && Delegated(Parent(base));
  if (inside) {
    base = Parent(base);
  } else if (!Delegated(base)) {
    return Err(ErrorCode::kUnavailable,
               "cgroup " + base + " is not delegated to picoflowd (Delegate=yes in its unit)");
  }
  const std::string leaf = base + "/" + std::string(kDaemonLeaf);
  if (::access((base + "/cgroup.procs").c_str(), W_OK) != 0) {
    const int e = errno;
    return Err(
        ErrorCode::kUnavailable,
        "cannot write to cgroup " + base + ": " + Errno(e) +
            (e == EROFS ? " (ProtectControlGroups=yes makes /sys/fs/cgroup read-only)" : ""));
  }
  if (::access((base + "/cgroup.kill").c_str(), W_OK) != 0) {
    return Err(ErrorCode::kUnavailable,
               "cgroup " + base + " has no cgroup.kill (Linux 5.14 or later has it)");
  }
  long other = OtherMember(base);
  if (other == 0) other = OtherMember(leaf);
  if (other > 0) {
    return Err(ErrorCode::kUnavailable, "cgroup " + base + " is not picoflowd's alone (process " +
                                            std::to_string(other) + " is in it too)");
  }
  if (inside) return base;
  if (::mkdir(leaf.c_str(), 0755) != 0 && errno != EEXIST) {
    return Err(ErrorCode::kUnavailable, "cannot make cgroup " + leaf + ": " + Errno());
  }
  if (const int e = WriteText(leaf + "/cgroup.procs", "0"); e != 0) {
    return Err(ErrorCode::kUnavailable, "cannot move picoflowd into " + leaf + ": " + Errno(e));
  }
  return base;
}

}  // namespace picoflow
