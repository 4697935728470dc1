#include "common/private_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace picoflow {
namespace {

// Closes the descriptor on every path out.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

Error OsError(const std::string& path, int err) {
  return Err(err == ENOENT ? ErrorCode::kNotFound : ErrorCode::kIo,
             "cannot read " + path + ": " + std::strerror(err));
}

}  // namespace

Result<std::string> ReadPrivateFile(const std::string& path) {
  // Opened first and checked through the descriptor: the file checked is
  // the file read, even if the path is replaced in between.
  Fd f;
  f.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (f.fd < 0) return OsError(path, errno);
  struct stat st {};
  if (::fstat(f.fd, &st) != 0) return OsError(path, errno);
  if (!S_ISREG(st.st_mode)) return Err(ErrorCode::kInvalid, path + " is not a regular file");
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return Err(ErrorCode::kInvalid, path + ": permissions " + mode +
                                        " are too open (a credential must not be accessible by "
                                        "group or others: chmod 600 " +
                                        path + ")");
  }
  if (static_cast<std::size_t>(st.st_size) > kPrivateFileMax) {
    return Err(ErrorCode::kInvalid, path + " is " + std::to_string(st.st_size) +
                                        " bytes; a credential file holds at most " +
                                        std::to_string(kPrivateFileMax));
  }
  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(f.fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return OsError(path, errno);
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
    if (out.size() > kPrivateFileMax) {
      return Err(ErrorCode::kInvalid,
                 path + " grew past " + std::to_string(kPrivateFileMax) + " bytes while read");
    }
  }
  if (!out.empty() && out.back() == '\n') {
    out.pop_back();
    if (!out.empty() && out.back() == '\r') out.pop_back();
  }
  return out;
}

}  // namespace picoflow
