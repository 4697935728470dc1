#include "common/task_paths.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <string>

namespace picoflow {
namespace {

TEST_CASE("JoinPath resolves ., .. and repeated slashes lexically") {
  CHECK(JoinPath("/srv/wf", "data") == "/srv/wf/data");
  CHECK(JoinPath("/srv/wf/", "./bin//tool") == "/srv/wf/bin/tool");
  CHECK(JoinPath("/srv/wf", "../data/") == "/srv/data");
  CHECK(JoinPath("/srv/./wf/..", "a/../../b") == "/b");
  CHECK(JoinPath("/srv", "../../..") == "/");
  CHECK(JoinPath("/srv/wf", ".") == "/srv/wf");
  CHECK(JoinPath("/", "x") == "/x");
  CHECK(JoinPath("/", "") == "/");
}

TEST_CASE("FileDirectory and AbsolutePath take a relative path from the working directory") {
  char cwd[4096];
  REQUIRE(::getcwd(cwd, sizeof cwd) != nullptr);
  const std::string here = cwd;
  CHECK(AbsolutePath("wf/./a.yaml") == JoinPath(here, "wf/a.yaml"));
  CHECK(AbsolutePath("/srv//wf/./a.yaml") == "/srv/wf/a.yaml");
  CHECK(AbsolutePath("/srv/x/../wf/a.yaml") == "/srv/wf/a.yaml");
  CHECK(FileDirectory("a.yaml") == here);
  CHECK(FileDirectory("./wf/a.yaml") == JoinPath(here, "wf"));
  CHECK(FileDirectory("/srv/wf/a.yaml") == "/srv/wf");
  CHECK(FileDirectory("/a.yaml") == "/");
}

TEST_CASE("ResolvePath: ~ is the home, absolute stays, relative joins the base, ~user is refused") {
  const PathBase paths{"/srv/wf", "/home/pf"};
  CHECK(*ResolvePath("~", "/srv/wf", paths) == "/home/pf");
  CHECK(*ResolvePath("~/", "/srv/wf", paths) == "/home/pf");
  CHECK(*ResolvePath("~/backups/./x", "/srv/wf", paths) == "/home/pf/backups/x");
  CHECK(*ResolvePath("/var/tmp", "/srv/wf", paths) == "/var/tmp");
  CHECK(*ResolvePath("./backup.sh", "/srv/wf", paths) == "/srv/wf/backup.sh");
  CHECK(*ResolvePath("bin/tool", "/opt/app", paths) == "/opt/app/bin/tool");
  CHECK(*ResolvePath("data", "", paths) == "data");  // no base: left relative
  Result<std::string> other = ResolvePath("~backup/x", "/srv/wf", paths);
  REQUIRE_FALSE(other.ok());
  CHECK(other.error().message ==
        "'~backup' is not supported: only ~ and ~/... (the daemon user's home) are; write the path "
        "out");
  ::setenv("HOME", "/home/from-env", 1);
  CHECK(*ResolvePath("~/x", "", PathBase{}) == "/home/from-env/x");
}

}  // namespace
}  // namespace picoflow
