#include "picoflowd/store/output_log.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

namespace picoflow {
namespace {

Error IoError(const std::string& what, const std::string& path) {
  return Err(ErrorCode::kIo, "store: " + what + " " + path + ": " + std::strerror(errno));
}

// "<id>.log" -> id; nullopt for any other name.
std::optional<std::int64_t> SegmentId(std::string_view name) {
  constexpr std::string_view kSuffix = ".log";
  if (name.size() <= kSuffix.size() || !name.ends_with(kSuffix)) return std::nullopt;
  name.remove_suffix(kSuffix.size());
  std::int64_t id = 0;
  auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), id);
  if (ec != std::errc() || end != name.data() + name.size() || id <= 0) return std::nullopt;
  return id;
}

}  // namespace

OutputLog::~OutputLog() {
  if (writer_) ::close(writer_->second);
}

std::string OutputLog::PathOf(std::int64_t id) const {
  return dir_ + "/" + std::to_string(id) + ".log";
}

Status OutputLog::Open() {
  sizes_.clear();
  total_ = 0;
  DIR* d = ::opendir(dir_.c_str());
  if (d == nullptr) return errno == ENOENT ? Status{} : Status(IoError("read", dir_));
  while (const dirent* e = ::readdir(d)) {
    const auto id = SegmentId(e->d_name);
    struct stat st {};
    if (!id || ::stat(PathOf(*id).c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    sizes_[*id] = static_cast<std::uint64_t>(st.st_size);
    total_ += static_cast<std::uint64_t>(st.st_size);
  }
  ::closedir(d);
  return {};
}

Result<int> OutputLog::Writer(std::int64_t id) {
  if (writer_ && writer_->first == id) return writer_->second;
  if (writer_) {
    ::close(writer_->second);
    writer_.reset();
  }
  const std::string path = PathOf(id);
  constexpr int kFlags = O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC;
  int fd = ::open(path.c_str(), kFlags, 0600);
  if (fd < 0 && errno == ENOENT) {
    // The first large chunk: the directory is made now, not at Open.
    if (::mkdir(dir_.c_str(), 0700) != 0 && errno != EEXIST) return IoError("create", dir_);
    fd = ::open(path.c_str(), kFlags, 0600);
  }
  if (fd < 0) return IoError("open", path);
  writer_.emplace(id, fd);
  return fd;
}

Result<std::uint64_t> OutputLog::Append(std::int64_t id, std::string_view data) {
  auto fd = Writer(id);
  if (!fd) return fd.error();
  const std::uint64_t offset = Size(id);
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(*fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      // What was written of a failed chunk is dead space in the segment;
      // the size moves past it so the next chunk starts at the file's end.
      Error error = IoError("write", PathOf(id));
      sizes_[id] = offset + done;
      total_ += done;
      return error;
    }
    done += static_cast<std::size_t>(n);
  }
  sizes_[id] = offset + data.size();
  total_ += data.size();
  unsynced_.insert(id);
  return offset;
}

Result<std::string> OutputLog::Read(std::int64_t id, std::uint64_t offset, std::uint64_t length) {
  const std::string path = PathOf(id);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::string();  // pruned, or lost with its directory
    return IoError("open", path);
  }
  std::string data(length, '\0');
  std::size_t done = 0;
  while (done < length) {
    const ssize_t n =
        ::pread(fd, data.data() + done, length - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      Error error = IoError("read", path);
      ::close(fd);
      return error;
    }
    if (n == 0) break;  // shorter than recorded: a power loss took the tail
    done += static_cast<std::size_t>(n);
  }
  ::close(fd);
  data.resize(done);
  return data;
}

Status OutputLog::Remove(std::int64_t id) {
  if (writer_ && writer_->first == id) {
    ::close(writer_->second);
    writer_.reset();
  }
  const std::string path = PathOf(id);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return IoError("remove", path);
  if (auto it = sizes_.find(id); it != sizes_.end()) {
    total_ -= it->second;
    sizes_.erase(it);
  }
  unsynced_.erase(id);
  return {};
}

Status OutputLog::Sync() {
  while (!unsynced_.empty()) {
    const std::int64_t id = *unsynced_.begin();
    const bool current = writer_ && writer_->first == id;
    const std::string path = PathOf(id);
    const int fd = current ? writer_->second : ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return IoError("open", path);
    if (::fdatasync(fd) != 0) {
      Error error = IoError("sync", path);
      if (!current) ::close(fd);
      return error;
    }
    if (!current) ::close(fd);
    unsynced_.erase(unsynced_.begin());
  }
  return {};
}

std::uint64_t OutputLog::Size(std::int64_t id) const {
  auto it = sizes_.find(id);
  return it == sizes_.end() ? 0 : it->second;
}

}  // namespace picoflow
