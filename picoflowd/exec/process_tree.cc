#include "picoflowd/exec/process_tree.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace picoflow {
namespace {

// Appends the whole of a /proc file to `out`. Returns false if it cannot be
// opened (the process is gone, or the file does not exist).
bool AppendFile(const char* path, std::string& out) {
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
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

// Appends the space-separated pids of `text` to `out`.
void ParsePids(std::string_view text, std::vector<pid_t>& out) {
  const char* p = text.data();
  const char* end = p + text.size();
  while (p < end) {
    while (p < end && (*p == ' ' || *p == '\n')) ++p;
    long pid = 0;
    auto [next, ec] = std::from_chars(p, end, pid);
    if (ec != std::errc() || next == p) break;
    out.push_back(static_cast<pid_t>(pid));
    p = next;
  }
}

// The parent (field 4) of a /proc/PID/stat line, or 0. The command name
// (field 2) may hold spaces and parentheses: fields count from the last ')'.
pid_t ParseParent(std::string_view stat) {
  const std::size_t close = stat.rfind(')');
  if (close == std::string_view::npos || close + 4 >= stat.size()) return 0;
  const std::size_t pos = stat.find(' ', close + 3);  // after the state
  if (pos == std::string_view::npos) return 0;
  long ppid = 0;
  auto [ptr, ec] = std::from_chars(stat.data() + pos + 1, stat.data() + stat.size(), ppid);
  return ec == std::errc() ? static_cast<pid_t>(ppid) : 0;
}

bool IsPid(const char* name) { return name[0] >= '1' && name[0] <= '9'; }

// Our main thread's /proc/self/task/PID/children, opened once and for good:
// a pread at offset 0 makes a seq_file start over, so each look costs one
// system call instead of three. -1 if the kernel has no children files.
int OwnChildrenFd() {
  static const int fd = [] {
    char path[64];
    std::snprintf(path, sizeof path, "/proc/self/task/%d/children", static_cast<int>(::getpid()));
    return ::open(path, O_RDONLY | O_CLOEXEC);
  }();
  return fd;
}

// Whether this kernel has /proc/PID/task/TID/children.
bool HaveChildrenFiles() { return OwnChildrenFd() >= 0; }

// The value of `name` in a NUL-separated environment block, if set.
std::optional<std::string_view> EnvValue(std::string_view block, std::string_view name) {
  std::size_t pos = 0;
  while (pos < block.size()) {
    std::size_t end = block.find('\0', pos);
    if (end == std::string_view::npos) end = block.size();
    const std::string_view entry = block.substr(pos, end - pos);
    if (entry.size() > name.size() && entry.compare(0, name.size(), name) == 0 &&
        entry[name.size()] == '=') {
      return entry.substr(name.size() + 1);
    }
    pos = end + 1;
  }
  return std::nullopt;
}

template <class T>
bool ParseNumber(std::string_view text, T& value) {
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return ec == std::errc() && ptr == text.data() + text.size();
}

}  // namespace

char ReadProcessState(pid_t pid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  std::string stat;
  if (!AppendFile(path, stat)) return '\0';
  const std::size_t close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() ? stat[close + 2] : '\0';
}

std::optional<TaskMark> ReadTaskMark(pid_t pid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/environ", static_cast<int>(pid));
  std::string block;
  if (!AppendFile(path, block)) return std::nullopt;
  const auto run = EnvValue(block, "PICOFLOW_RUN_ID");
  if (!run) return std::nullopt;
  TaskMark mark;
  if (!ParseNumber(*run, mark.run_id)) return std::nullopt;
  if (auto v = EnvValue(block, "PICOFLOW_ATTEMPT"); !v || !ParseNumber(*v, mark.attempt)) {
    return std::nullopt;
  }
  if (auto v = EnvValue(block, "PICOFLOW_TASK")) mark.task = std::string(*v);
  if (auto v = EnvValue(block, "PICOFLOW_STATE_DIR")) mark.state_dir = std::string(*v);
  return mark;
}

ProcessTree::ProcessTree(bool scan) : scan_(scan || !HaveChildrenFiles()) {}

std::optional<std::vector<pid_t>> ProcessTree::ReadChildrenFile(pid_t pid, pid_t tid) {
  char path[96];
  std::snprintf(path, sizeof path, "/proc/%d/task/%d/children", static_cast<int>(pid),
                static_cast<int>(tid));
  std::string text;
  if (!AppendFile(path, text)) return std::nullopt;
  std::vector<pid_t> children;
  ParsePids(text, children);
  return children;
}

// One pass over /proc/*/stat: every live process under its parent.
const std::vector<pid_t>& ProcessTree::ScannedChildrenOf(pid_t pid) {
  if (!scanned_) {
    scanned_ = true;
    if (DIR* proc = ::opendir("/proc")) {
      std::string stat;
      while (const dirent* entry = ::readdir(proc)) {
        if (!IsPid(entry->d_name)) continue;
        char path[300];
        std::snprintf(path, sizeof path, "/proc/%s/stat", entry->d_name);
        stat.clear();
        if (!AppendFile(path, stat)) continue;
        if (const pid_t parent = ParseParent(stat); parent > 0) {
          by_parent_[parent].push_back(static_cast<pid_t>(std::atol(entry->d_name)));
        }
      }
      ::closedir(proc);
    }
  }
  return by_parent_[pid];
}

std::vector<pid_t> ProcessTree::ChildrenOf(pid_t pid) {
  if (scan_) return ScannedChildrenOf(pid);
  std::vector<pid_t> children;
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/task", static_cast<int>(pid));
  DIR* tasks = ::opendir(path);
  if (tasks == nullptr) return children;
  while (const dirent* entry = ::readdir(tasks)) {
    if (!IsPid(entry->d_name)) continue;
    const auto tid = static_cast<pid_t>(std::atol(entry->d_name));
    if (auto of_thread = ReadChildrenFile(pid, tid)) {
      children.insert(children.end(), of_thread->begin(), of_thread->end());
    }
  }
  ::closedir(tasks);
  return children;
}

std::vector<pid_t> ProcessTree::OwnChildren() {
  std::vector<pid_t> children;
  const int fd = OwnChildrenFd();
  if (scan_) {
    // No child at all (one system call) spares the scan.
    siginfo_t info{};
    if (::waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) != 0 && errno == ECHILD) {
      return children;
    }
    return ScannedChildrenOf(::getpid());
  }
  // One read holds a few hundred children; more take more reads.
  char buf[4096];
  std::string more;
  for (off_t offset = 0;;) {
    const ssize_t n = ::pread(fd, buf, sizeof buf, offset);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (offset == 0 && static_cast<std::size_t>(n) < sizeof buf) {
      ParsePids(std::string_view(buf, static_cast<std::size_t>(n)), children);
      return children;
    }
    more.append(buf, static_cast<std::size_t>(n));
    offset += n;
  }
  ParsePids(more, children);
  return children;
}

std::vector<pid_t> ProcessTree::Subtree(pid_t root) {
  // Bounded: pids reused while the tree is read could make a cycle of it.
  constexpr std::size_t kMaxProcesses = 1 << 16;
  std::vector<pid_t> all{root};
  for (std::size_t i = 0; i < all.size() && all.size() < kMaxProcesses; ++i) {
    for (pid_t child : ChildrenOf(all[i])) all.push_back(child);
  }
  return all;
}

}  // namespace picoflow
