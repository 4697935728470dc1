#include "picoflowd/exec/process_info.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace picoflow {
namespace {

// Reads a small /proc file into `buf` with one read(): /proc files are
// generated whole on the first read. Returns the bytes read, or -1. Plain
// syscalls rather than streams: this runs once per task attempt.
ssize_t ReadSmallFile(const char* path, char* buf, std::size_t size) {
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n;
  do {
    n = ::read(fd, buf, size);
  } while (n < 0 && errno == EINTR);
  ::close(fd);
  return n;
}

// Field 22 (starttime) of a /proc/PID/stat line. The comm field (2) may hold
// spaces and parentheses, so counting starts after the last ')': the next
// field there is field 3.
std::optional<std::uint64_t> ParseStartTime(std::string_view stat) {
  std::size_t pos = stat.rfind(')');
  if (pos == std::string_view::npos) return std::nullopt;
  int field = 2;
  while (field < 22) {
    pos = stat.find(' ', pos + 1);
    if (pos == std::string_view::npos) return std::nullopt;
    ++field;
  }
  const char* begin = stat.data() + pos + 1;
  const char* end = stat.data() + stat.size();
  std::uint64_t value = 0;
  auto [ptr, ec] = std::from_chars(begin, end, value);
  if (ec != std::errc() || ptr == begin) return std::nullopt;
  return value;
}

// State (field 3) and process group (field 5) of a /proc/PID/stat line.
bool ParseStateAndGroup(std::string_view stat, char* state, long* pgrp) {
  const std::size_t close = stat.rfind(')');
  if (close == std::string_view::npos || close + 4 > stat.size()) return false;
  *state = stat[close + 2];
  // Fields 4 (ppid) and 5 (pgrp) follow the state.
  std::size_t pos = stat.find(' ', close + 3);  // after the state
  if (pos == std::string_view::npos) return false;
  pos = stat.find(' ', pos + 1);  // after ppid
  if (pos == std::string_view::npos) return false;
  auto [ptr, ec] = std::from_chars(stat.data() + pos + 1, stat.data() + stat.size(), *pgrp);
  return ec == std::errc();
}

std::string LoadBootId() {
  char buf[128];
  ssize_t n = ReadSmallFile("/proc/sys/kernel/random/boot_id", buf, sizeof buf);
  if (n <= 0) return {};
  std::string_view id(buf, static_cast<std::size_t>(n));
  while (!id.empty() && (id.back() == '\n' || id.back() == ' ')) id.remove_suffix(1);
  return std::string(id);
}

}  // namespace

std::optional<std::uint64_t> ReadProcessStartTime(pid_t pid) {
  if (pid <= 0) return std::nullopt;
  char path[32];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  char buf[2048];  // the whole line is at most ~1.1 KiB
  ssize_t n = ReadSmallFile(path, buf, sizeof buf);
  if (n <= 0) return std::nullopt;
  return ParseStartTime(std::string_view(buf, static_cast<std::size_t>(n)));
}

std::uint64_t BootTicks() {
  static const std::uint64_t ns_per_tick =
      1000000000ull / static_cast<std::uint64_t>(::sysconf(_SC_CLK_TCK));
  timespec ts{};
  ::clock_gettime(CLOCK_BOOTTIME, &ts);
  const std::uint64_t ns = static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ull +
                           static_cast<std::uint64_t>(ts.tv_nsec);
  return ns / ns_per_tick;
}

const std::string& ReadBootId() {
  static const std::string boot_id = LoadBootId();
  return boot_id;
}

bool ProcessGroupHasLiveMember(pid_t pgid) {
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return false;
  bool live = false;
  while (const dirent* entry = ::readdir(proc)) {
    if (entry->d_name[0] < '1' || entry->d_name[0] > '9') continue;
    char path[300];
    std::snprintf(path, sizeof path, "/proc/%s/stat", entry->d_name);
    char buf[2048];
    const ssize_t n = ReadSmallFile(path, buf, sizeof buf);
    char state = 0;
    long pgrp = 0;
    if (n > 0 &&
        ParseStateAndGroup(std::string_view(buf, static_cast<std::size_t>(n)), &state, &pgrp) &&
        pgrp == pgid && state != 'Z' && state != 'X') {
      live = true;
      break;
    }
  }
  ::closedir(proc);
  return live;
}

std::vector<pid_t> FindProcessesWithEnv(std::string_view name, std::string_view value) {
  std::vector<pid_t> found;
  std::string wanted(name);
  wanted += '=';
  wanted += value;
  wanted += '\0';
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return found;
  const uid_t uid = ::geteuid();
  const pid_t self = ::getpid();
  std::string environ;
  while (const dirent* entry = ::readdir(proc)) {
    if (entry->d_name[0] < '1' || entry->d_name[0] > '9') continue;
    const pid_t pid = static_cast<pid_t>(std::strtol(entry->d_name, nullptr, 10));
    char path[300];
    std::snprintf(path, sizeof path, "/proc/%s", entry->d_name);
    struct stat st {};
    if (pid == self || ::stat(path, &st) != 0 || st.st_uid != uid) continue;
    std::snprintf(path, sizeof path, "/proc/%s/environ", entry->d_name);
    const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    // The environment is NUL-separated and may be large: read it whole.
    environ.assign(1, '\0');  // so that every entry, the first too, follows a NUL
    char buf[4096];
    for (;;) {
      const ssize_t n = ::read(fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      environ.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    if (environ.back() != '\0') environ += '\0';
    if (environ.find('\0' + wanted) != std::string::npos) found.push_back(pid);
  }
  ::closedir(proc);
  return found;
}

bool KillProcessGroupIfSame(pid_t pgid, std::uint64_t start_time, const std::string& boot_id) {
  if (pgid <= 1 || boot_id.empty() || ReadBootId() != boot_id) return false;
  std::optional<std::uint64_t> now = ReadProcessStartTime(pgid);
  if (!now || *now != start_time) return false;  // leader gone, or the pid was reused
  return ::kill(-pgid, SIGKILL) == 0;
}

}  // namespace picoflow
