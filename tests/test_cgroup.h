#pragma once
// TestCgroup: a cgroup v2 directory of the test's own, for the tests of the
// cgroup containment. They need root and a cgroup2 mount that is writable
// (a root container, a VM); WritableCgroup2() says where, or why there is
// none, and those tests then skip with that reason. The directory is marked
// delegated (trusted.delegate=1) as systemd marks a Delegate=yes unit's.

#include <dirent.h>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace picoflow::test {

/// The cgroup2 mount point if this process can make cgroups under it and
/// they have cgroup.kill; else nullopt, with the reason in `why`.
inline std::optional<std::string> WritableCgroup2(std::string& why) {
  if (::geteuid() != 0) {
    why = "not root: cannot make cgroups";
    return std::nullopt;
  }
  std::ifstream in("/proc/self/mountinfo");
  for (std::string line; std::getline(in, line);) {
    std::istringstream f(line);
    std::vector<std::string> fields;
    for (std::string w; f >> w;) fields.push_back(w);
    std::size_t dash = 6;
    while (dash < fields.size() && fields[dash] != "-") ++dash;
    if (dash + 1 >= fields.size() || fields[dash + 1] != "cgroup2") continue;
    const std::string mount = fields[4];
    if (fields[3] != "/" || ("," + fields[5] + ",").find(",ro,") != std::string::npos ||
        ::access(mount.c_str(), W_OK) != 0) {
      why = "the cgroup2 mount " + mount + " is not writable here";
      return std::nullopt;
    }
    return mount;
  }
  why = "no cgroup2 mount";
  return std::nullopt;
}

/// Writes `text` to a cgroup file; false if it could not.
inline bool WriteCgroupFile(const std::string& path, const std::string& text) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  return ok;
}

/// This process's cgroup v2 directory under `mount` (from /proc/self/cgroup).
inline std::string OwnCgroup(const std::string& mount) {
  std::ifstream in("/proc/self/cgroup");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("0::", 0) == 0) return line == "0::/" ? mount : mount + line.substr(3);
  }
  return mount;
}

/// The cgroup v2 path of `pid` ("0::" line of /proc/PID/cgroup), "" if gone.
inline std::string CgroupOf(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cgroup");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("0::", 0) == 0) return line.substr(3);
  }
  return "";
}

class TestCgroup {
 public:
  /// Makes MOUNT/picoflow-test-PID-N, marked delegated if `delegated`.
  TestCgroup(const std::string& mount, bool delegated) {
    static int n = 0;
    path_ = mount + "/picoflow-test-" + std::to_string(::getpid()) + "-" + std::to_string(++n);
    REQUIRE(::mkdir(path_.c_str(), 0755) == 0);
    if (delegated) {
      REQUIRE(::setxattr(path_.c_str(), "trusted.delegate", "1", 1, 0) == 0);
    }
  }
  /// Kills whatever is in it or below (cgroup.kill) and removes it all. The
  /// test process must have left it.
  ~TestCgroup() { Remove(path_); }
  TestCgroup(const TestCgroup&) = delete;
  TestCgroup& operator=(const TestCgroup&) = delete;

  const std::string& path() const { return path_; }
  /// Its path relative to the mount, as /proc/PID/cgroup shows it.
  std::string relative(const std::string& mount) const { return path_.substr(mount.size()); }

  /// Moves this whole process into `dir`.
  static bool Enter(const std::string& dir) {
    return WriteCgroupFile(dir + "/cgroup.procs", std::to_string(::getpid()));
  }

  /// The names of the cgroups directly under `dir`.
  static std::vector<std::string> Children(const std::string& dir) {
    std::vector<std::string> names;
    if (DIR* d = ::opendir(dir.c_str())) {
      while (const dirent* e = ::readdir(d)) {
        const std::string name = e->d_name;
        struct stat st {};
        if (name != "." && name != ".." && ::stat((dir + "/" + name).c_str(), &st) == 0 &&
            S_ISDIR(st.st_mode)) {
          names.push_back(name);
        }
      }
      ::closedir(d);
    }
    return names;
  }

 private:
  static void Remove(const std::string& dir) {
    for (const std::string& child : Children(dir)) Remove(dir + "/" + child);
    WriteCgroupFile(dir + "/cgroup.kill", "1");
    // Only ends a hang: the killed processes have only to exit.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (::rmdir(dir.c_str()) != 0 && errno == EBUSY &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

  std::string path_;
};

}  // namespace picoflow::test
