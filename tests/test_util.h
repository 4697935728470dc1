#pragma once
// Helpers every test suite uses: a temporary directory, Must() for Results
// that a test cannot go on without, and FastestMs() for comparing costs.

#include <doctest/doctest.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <utility>

#include "common/result.h"

namespace picoflow::test {

inline bool Contains(const std::string& haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}

// A fresh directory, removed with everything in it at the end of the test.
// It is made under $TMPDIR (else /tmp), or under `base` when given: Unix
// socket tests pass "/tmp" so their paths stay short enough for sun_path.
class TempDir {
 public:
  explicit TempDir(std::string_view name = "picoflow-test", const char* base = nullptr) {
    if (base == nullptr) base = std::getenv("TMPDIR");
    if (base == nullptr || *base == '\0') base = "/tmp";
    std::string pattern = std::string(base) + "/" + std::string(name) + ".XXXXXX";
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path_ = std::move(pattern);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  /// The path of `name` inside the directory.
  std::string File(std::string_view name) const { return path_ + "/" + std::string(name); }
  /// Writes `content` to `name` inside the directory; returns its path.
  std::string Write(std::string_view name, std::string_view content) const {
    const std::string file = File(name);
    std::ofstream(file, std::ios::binary) << content;
    return file;
  }

 private:
  std::string path_;
};

/// The value of `result`; the test stops with the error message if there is none.
template <class T>
T Must(Result<T> result) {
  REQUIRE_MESSAGE(result.ok(), (result.ok() ? "" : result.error().message));
  return std::move(*result);
}

/// Stops the test with the error message unless `status` is ok.
inline void Must(const Status& status) {
  REQUIRE_MESSAGE(status.ok(), (status.ok() ? "" : status.error().message));
}

/// The least wall-clock time of `passes` calls of f(), in milliseconds: the
/// call a busy machine disturbed least. Tests assert no speed: they only
/// compare such a figure with a calibration measured the same way in the same
/// process (a ratio holds on a slow machine and under qemu alike).
template <class F>
double FastestMs(F&& f, int passes = 3) {
  double fastest = 0;
  for (int i = 0; i < passes; ++i) {
    const auto start = std::chrono::steady_clock::now();
    f();
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    fastest = i == 0 ? ms : std::min(fastest, ms);
  }
  return fastest;
}

}  // namespace picoflow::test
