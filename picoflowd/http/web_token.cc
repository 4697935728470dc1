#include "picoflowd/http/web_token.h"

#include <fcntl.h>
#include <strings.h>
#include <sys/random.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "common/private_file.h"

namespace picoflow {

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  }
  return diff == 0;
}

Status WebToken::Load() {
  if (::access(path_.c_str(), F_OK) != 0) return {};
  auto text = ReadPrivateFile(path_);
  if (!text.ok()) return text.error();
  token_ = *text;
  return {};
}

Result<std::string> WebToken::Get(bool rotate) {
  if (!token_.empty() && !rotate) return token_;
  unsigned char bytes[32];
  std::size_t got = 0;
  while (got < sizeof bytes) {
    const ssize_t n = getrandom(bytes + got, sizeof bytes - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Err(ErrorCode::kIo, std::string("getrandom: ") + std::strerror(errno));
    got += static_cast<std::size_t>(n);
  }
  std::string token;
  for (unsigned char b : bytes) {
    char hex[3];
    std::snprintf(hex, sizeof hex, "%02x", b);
    token += hex;
  }
  // Written beside the file and renamed over it: a reader sees the old
  // token or the new one, whole.
  const std::string tmp = path_ + ".new";
  ::unlink(tmp.c_str());  // a leftover may have another mode: O_EXCL makes ours
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return Err(ErrorCode::kIo, "cannot write " + tmp + ": " + std::strerror(errno));
  const std::string line = token + "\n";
  const bool written = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) &&
                       ::fsync(fd) == 0;
  ::close(fd);
  if (!written || ::rename(tmp.c_str(), path_.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    ::unlink(tmp.c_str());
    return Err(ErrorCode::kIo, "cannot write " + path_ + ": " + why);
  }
  // The rename itself reaches the disk with the directory.
  const std::string dir = path_.substr(0, path_.rfind('/') + 1);
  if (const int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  token_ = token;
  return token_;
}

TokenCheck WebToken::Check(const HttpRequest& request) const {
  return CheckBearer(request, token_);
}

TokenCheck CheckBearer(const HttpRequest& request, std::string_view token) {
  const std::string* header = request.Header("authorization");
  if (token.empty()) return TokenCheck::kOff;
  if (header == nullptr) return TokenCheck::kMissing;
  constexpr std::string_view kBearer = "bearer ";  // the scheme is case-insensitive
  if (header->size() < kBearer.size() ||
      strncasecmp(header->c_str(), kBearer.data(), kBearer.size()) != 0) {
    return TokenCheck::kWrong;
  }
  return ConstantTimeEquals(std::string_view(*header).substr(kBearer.size()), token)
             ? TokenCheck::kValid
             : TokenCheck::kWrong;
}

}  // namespace picoflow
