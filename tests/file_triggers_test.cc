// FileTriggers (docs/triggers.md, "File triggers"): real directories, real
// inotify, the daemon's kind of loop. A test waits on the loop until what it
// expects was reported or a deadline passed; "nothing else was reported" is
// shown by a sentinel file reported after it, never by waiting.

#include "picoflowd/sched/file_triggers.h"

#include <doctest/doctest.h>
#include <uv.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "tests/test_util.h"

namespace picoflow {
namespace {

using namespace std::chrono_literals;
using test::Must;
using test::TempDir;

struct Reported {
  std::string workflow;
  std::string file;
  std::uint64_t at_ms;
  bool operator==(const Reported& o) const { return workflow == o.workflow && file == o.file; }
};

class Harness {
 public:
  Harness() {
    uv_loop_init(&loop_);
    triggers_ = std::make_unique<FileTriggers>(
        &loop_,
        [this](const std::string& workflow, const std::string& file) {
          reported.push_back({workflow, file, uv_now(&loop_)});
        },
        [this](const std::string& workflow, const std::string& message) {
          problems.push_back(workflow + ": " + message);
        });
  }
  ~Harness() {
    triggers_->Close();
    uv_run(&loop_, UV_RUN_DEFAULT);  // the close callbacks
    uv_loop_close(&loop_);
  }

  FileTriggers& triggers() { return *triggers_; }
  std::uint64_t now() { return uv_now(&loop_); }

  /// Runs the loop until `done` holds or `limit` passed; returns `done()`.
  bool RunUntil(const std::function<bool()>& done, std::chrono::milliseconds limit = 10s) {
    uv_update_time(&loop_);
    const std::uint64_t end = uv_now(&loop_) + static_cast<std::uint64_t>(limit.count());
    uv_timer_t tick;
    uv_timer_init(&loop_, &tick);
    uv_timer_start(
        &tick, [](uv_timer_t*) {}, 10, 10);  // wakes the loop to look again
    while (!done() && uv_now(&loop_) < end) uv_run(&loop_, UV_RUN_ONCE);
    uv_close(reinterpret_cast<uv_handle_t*>(&tick), nullptr);
    uv_run(&loop_, UV_RUN_NOWAIT);
    return done();
  }
  /// Runs the loop for `span`: the time a writer takes between its pieces.
  void RunFor(std::chrono::milliseconds span) {
    uv_update_time(&loop_);
    const std::uint64_t end = uv_now(&loop_) + static_cast<std::uint64_t>(span.count());
    RunUntil([&] { return uv_now(&loop_) >= end; }, span + 1s);
  }
  bool WaitFor(std::size_t count) {
    return RunUntil([&] { return reported.size() >= count; });
  }

  std::vector<Reported> reported;
  std::vector<std::string> problems;

 private:
  uv_loop_t loop_{};
  std::unique_ptr<FileTriggers> triggers_;
};

FileTrigger Spec(const std::string& path, std::chrono::seconds settle = 0s,
                 unsigned events = kFileCreated | kFileMovedIn, std::string pattern = "*") {
  FileTrigger t;
  t.path = path;
  t.settle = settle;
  t.events = events;
  t.pattern = std::move(pattern);
  return t;
}

void Touch(const std::string& path, std::string_view content = "x") {
  std::ofstream(path, std::ios::binary) << content;
}

TEST_CASE("a file written in pieces is reported once, when it has been quiet for settle") {
  TempDir dir;
  Harness h;
  Must(h.triggers().Set("camera", {Spec(dir.path(), 1s, kFileCreated | kFileModified, "*.jpg")}));
  const std::string file = dir.File("shot.jpg");
  const std::string piece(512 * 1024, 'p');
  std::uint64_t last_write = 0;
  {
    std::ofstream out(file, std::ios::binary);
    for (int i = 0; i < 10; ++i) {  // 5 MiB, a piece every 200 ms: never quiet for 1 s
      out.write(piece.data(), static_cast<std::streamsize>(piece.size()));
      out.flush();
      last_write = h.now();
      h.RunFor(200ms);
      CHECK(h.reported.empty());
    }
  }
  last_write = h.now();
  REQUIRE(h.WaitFor(1));
  CHECK(h.reported[0] == Reported{"camera", file, 0});
  CHECK(h.reported[0].at_ms >= last_write + 1000);
  CHECK(std::filesystem::file_size(file) == 10 * piece.size());
  // A sentinel reported after it shows the file was not reported twice.
  Touch(dir.File("sentinel.jpg"));
  REQUIRE(h.WaitFor(2));
  CHECK(h.reported.size() == 2);
  CHECK(h.reported[1].file == dir.File("sentinel.jpg"));
  CHECK(h.triggers().pending() == 0);
}

TEST_CASE("each of 100 files landing at once is reported once") {
  TempDir dir;
  Harness h;
  Must(h.triggers().Set("burst", {Spec(dir.path())}));
  for (int i = 0; i < 100; ++i) Touch(dir.File("f" + std::to_string(i)));
  REQUIRE(h.WaitFor(100));
  std::vector<std::string> files;
  for (const Reported& r : h.reported) files.push_back(r.file);
  std::sort(files.begin(), files.end());
  CHECK(std::unique(files.begin(), files.end()) == files.end());
  CHECK(files.size() == 100);
}

TEST_CASE("events and pattern choose what counts: moved in, created, names, dot files") {
  TempDir dir;
  TempDir outside;
  Harness h;
  const std::string created_only = dir.path() + "/created";
  const std::string moved_only = dir.path() + "/moved";
  std::filesystem::create_directories(created_only);
  std::filesystem::create_directories(moved_only);
  Must(h.triggers().Set("created", {Spec(created_only, 0s, kFileCreated, "*.csv")}));
  Must(h.triggers().Set("moved", {Spec(moved_only, 0s, kFileMovedIn, "*.csv")}));
  // Moved into each: only `moved` counts it.
  Touch(outside.File("a.csv"));
  Touch(outside.File("b.csv"));
  std::filesystem::rename(outside.File("a.csv"), created_only + "/a.csv");
  std::filesystem::rename(outside.File("b.csv"), moved_only + "/b.csv");
  // Created in each: only `created` counts it; names that do not match and
  // dot files never count.
  Touch(moved_only + "/c.csv");
  Touch(created_only + "/d.txt");
  Touch(created_only + "/.e.csv");
  Touch(created_only + "/f.csv");
  REQUIRE(h.WaitFor(2));
  Touch(created_only + "/sentinel.csv");
  REQUIRE(h.WaitFor(3));
  std::vector<std::string> files;
  for (const Reported& r : h.reported) files.push_back(r.workflow + " " + r.file);
  std::sort(files.begin(), files.end());
  CHECK(files == std::vector<std::string>{"created " + created_only + "/f.csv",
                                          "created " + created_only + "/sentinel.csv",
                                          "moved " + moved_only + "/b.csv"});
}

TEST_CASE("a file that leaves before it settled is not reported") {
  TempDir dir;
  Harness h;
  Must(h.triggers().Set("w", {Spec(dir.path(), 1s)}));
  Touch(dir.File("tmp.part"));
  h.RunFor(100ms);  // seen, waiting to settle
  CHECK(h.triggers().pending() == 1);
  std::filesystem::remove(dir.File("tmp.part"));
  Touch(dir.File("sentinel"));
  REQUIRE(h.WaitFor(1));
  CHECK(h.reported.size() == 1);
  CHECK(h.reported[0].file == dir.File("sentinel"));
}

TEST_CASE("a missing directory is watched from its parent, and one deleted is watched again") {
  TempDir dir;
  Harness h;
  const std::string target = dir.path() + "/a/b/incoming";
  Must(h.triggers().Set("w", {Spec(target)}));
  CHECK(h.reported.empty());
  std::filesystem::create_directories(target);
  Touch(target + "/first");
  REQUIRE(h.WaitFor(1));
  CHECK(h.reported[0].file == target + "/first");
  // Deleted with its parents, and made again: files in it count again,
  // even one written right after the directory was made.
  std::filesystem::remove_all(dir.path() + "/a");
  h.RunFor(50ms);
  std::filesystem::create_directories(target);
  Touch(target + "/second");
  REQUIRE(h.WaitFor(2));
  CHECK(h.reported[1].file == target + "/second");
  Touch(target + "/third");
  REQUIRE(h.WaitFor(3));
  CHECK(h.reported.size() == 3);
  CHECK(h.reported[2].file == target + "/third");
  CHECK(h.problems.empty());
}

TEST_CASE("Set replaces a workflow's triggers; an empty list stops them") {
  TempDir one;
  TempDir two;
  Harness h;
  Must(h.triggers().Set("w", {Spec(one.path())}));
  Must(h.triggers().Set("other", {Spec(two.path())}));
  Must(h.triggers().Set("w", {Spec(two.path())}));  // now beside `other`, on one wd
  CHECK(h.triggers().size() == 2);
  Touch(one.File("ignored"));
  Touch(two.File("both"));
  REQUIRE(h.WaitFor(2));
  std::vector<std::string> got;
  for (const Reported& r : h.reported) got.push_back(r.workflow + " " + r.file);
  std::sort(got.begin(), got.end());
  CHECK(got == std::vector<std::string>{"other " + two.File("both"), "w " + two.File("both")});
  Must(h.triggers().Set("w", {}));
  CHECK(h.triggers().size() == 1);
  Touch(two.File("only-other"));
  REQUIRE(h.WaitFor(3));
  CHECK(h.reported.size() == 3);
  CHECK(h.reported[2] == Reported{"other", two.File("only-other"), 0});
}

TEST_CASE("a directory that cannot be watched is an error naming it") {
  TempDir dir;
  Harness h;
  Touch(dir.File("plain-file"));
  const Status s = h.triggers().Set("w", {Spec(dir.File("plain-file"))});
  REQUIRE_FALSE(s.ok());
  CHECK(test::Contains(s.error().message, "cannot watch " + dir.File("plain-file")));
}

}  // namespace
}  // namespace picoflow
