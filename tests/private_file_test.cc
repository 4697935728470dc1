#include "common/private_file.h"

#include <doctest/doctest.h>
#include <sys/stat.h>

#include "tests/test_util.h"

namespace picoflow {
namespace {

using test::Contains;
using test::TempDir;

std::string PrivateFile(const TempDir& dir, std::string_view name, std::string_view content,
                        mode_t mode) {
  const std::string path = dir.Write(name, content);
  REQUIRE(::chmod(path.c_str(), mode) == 0);
  return path;
}

TEST_CASE("a private file is read whole, less one trailing newline") {
  TempDir dir;
  CHECK(*ReadPrivateFile(PrivateFile(dir, "a", "s3cret\n", 0600)) == "s3cret");
  CHECK(*ReadPrivateFile(PrivateFile(dir, "b", "s3cret\r\n", 0400)) == "s3cret");
  CHECK(*ReadPrivateFile(PrivateFile(dir, "c", "two\nlines\n\n", 0600)) == "two\nlines\n");
  CHECK(*ReadPrivateFile(PrivateFile(dir, "d", "no newline\r", 0600)) == "no newline\r");
  CHECK(*ReadPrivateFile(PrivateFile(dir, "e", "", 0600)) == "");
}

TEST_CASE("a file group or others may access is refused with the fix") {
  TempDir dir;
  for (mode_t mode : {0640, 0604, 0610, 0620, 0644}) {
    CAPTURE(mode);
    const std::string path = PrivateFile(dir, "key", "s3cret", mode);
    auto r = ReadPrivateFile(path);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == ErrorCode::kInvalid);
    CHECK(Contains(r.error().message, "chmod 600 " + path));
    CHECK_FALSE(Contains(r.error().message, "s3cret"));
  }
  const std::string path = dir.File("key");
  REQUIRE(::chmod(path.c_str(), 0644) == 0);
  CHECK(Contains(ReadPrivateFile(path).error().message, "permissions 0644 are too open"));
}

TEST_CASE("what is not a small regular file is refused") {
  TempDir dir;
  auto missing = ReadPrivateFile(dir.File("nope"));
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().code == ErrorCode::kNotFound);
  CHECK(Contains(missing.error().message, dir.File("nope")));

  REQUIRE(::chmod(dir.path().c_str(), 0700) == 0);
  auto directory = ReadPrivateFile(dir.path());
  REQUIRE_FALSE(directory.ok());
  CHECK(Contains(directory.error().message, "not a regular file"));

  const std::string fifo = dir.File("fifo");
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  auto pipe = ReadPrivateFile(fifo);  // must not block on the open or the read
  REQUIRE_FALSE(pipe.ok());
  CHECK(Contains(pipe.error().message, "not a regular file"));

  const std::string big = PrivateFile(dir, "big", std::string(kPrivateFileMax + 1, 'x'), 0600);
  auto too_long = ReadPrivateFile(big);
  REQUIRE_FALSE(too_long.ok());
  CHECK(Contains(too_long.error().message, "at most 65536"));
  CHECK(ReadPrivateFile(PrivateFile(dir, "max", std::string(kPrivateFileMax, 'x'), 0600))->size() ==
        kPrivateFileMax);
}

}  // namespace
}  // namespace picoflow
