#include "common/task_paths.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "common/paths.h"

namespace picoflow {

namespace {

// Appends the components of `path` to `out` ("" or "/a/b", no trailing slash).
void AppendComponents(std::string& out, std::string_view path) {
  std::size_t start = 0;
  while (start <= path.size()) {
    const std::size_t slash = std::min(path.find('/', start), path.size());
    const std::string_view part = path.substr(start, slash - start);
    if (part == "..") {
      out.erase(std::min(out.rfind('/'), out.size()));
    } else if (!part.empty() && part != ".") {
      out.append("/").append(part);
    }
    start = slash + 1;
  }
}

}  // namespace

std::string JoinPath(std::string_view dir, std::string_view path) {
  std::string out;
  AppendComponents(out, dir);
  AppendComponents(out, path);
  return out.empty() ? "/" : out;
}

std::string AbsolutePath(std::string_view file) {
  if (!file.empty() && file.front() == '/') return JoinPath("/", file.substr(1));
  std::vector<char> buf(4096);
  while (::getcwd(buf.data(), buf.size()) == nullptr) {
    if (errno != ERANGE) return JoinPath("/", file);  // no cwd (deleted): best effort
    buf.resize(buf.size() * 2);
  }
  return JoinPath(buf.data(), file);
}

std::string FileDirectory(std::string_view file) {
  const std::string absolute = AbsolutePath(file);
  const std::size_t slash = absolute.rfind('/');
  return slash == 0 ? "/" : absolute.substr(0, slash);
}

Result<std::string> ResolvePath(std::string_view path, std::string_view base,
                                const PathBase& paths) {
  if (!path.empty() && path.front() == '~') {
    const std::size_t slash = path.find('/');
    if (slash != 1 && path.size() != 1) {
      return Err(ErrorCode::kInvalid,
                 "'" + std::string(path.substr(0, slash)) +
                     "' is not supported: only ~ and ~/... (the daemon user's home) are; write "
                     "the path out");
    }
    const std::string home = paths.home.empty() ? HomeDir() : paths.home;
    return path.size() <= 2 ? JoinPath(home, "") : JoinPath(home, path.substr(2));
  }
  if (path.empty() || path.front() == '/' || base.empty()) return std::string(path);
  return JoinPath(base, path);
}

}  // namespace picoflow
