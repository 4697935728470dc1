// Integration: a workflow's secrets on a real picoflowd
// (docs/workflow-format.md, "Secrets"): read from a private file, the
// daemon's environment and a systemd credential when an attempt starts,
// given to the task as variables, and masked in everything the daemon keeps
// or shows — the SQLite file, its WAL, the output files beside them, the
// daemon's log, run.logs and the task's outputs — even when the task prints
// a value split across 64 KiB reads, on stdout and on stderr.

#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "tests/daemon_harness.h"

namespace picoflow::test {
namespace {

namespace fs = std::filesystem;

// Values no test input holds otherwise: finding one on disk is a leak.
const std::string kFileSecret = "pf-file-secret-" + std::to_string(::getpid()) + "-Zq81";
const std::string kEnvSecret = "pf-env-secret-" + std::to_string(::getpid()) + "-Wv27";
const std::string kCredSecret = "pf-cred-secret-" + std::to_string(::getpid()) + "-Kx54";

// Every byte of every file under `dir` (the database, its -wal and -shm,
// the output files beside them).
std::string AllBytesUnder(const std::string& dir) {
  std::string all;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file()) all += ReadFileText(entry.path().string());
  }
  return all;
}

std::string PrivateFile(const DaemonHarness& h, const std::string& name, const std::string& text,
                        mode_t mode) {
  const std::string path = h.WriteFile(name, text + "\n");
  REQUIRE(::chmod(path.c_str(), mode) == 0);
  return path;
}

// The task prints each secret in one write of more than 64 KiB that the
// pipe (64 KiB) cuts inside the value, on stdout and (at another offset) on
// stderr, then in two writes of half a value each, and passes it on as an
// output.
constexpr char kLeaky[] = R"(name: leaky
config: { retry_default: 0 }
secrets:
  DB_PASSWORD: { file: db-password }
  API_TOKEN: { env: PFTEST_API_TOKEN }
tasks:
  - name: print
    type: shell
    secrets:
      CRED: { credential: cred }
    config:
      command: |
        for v in "$DB_PASSWORD" "$API_TOKEN" "$CRED"; do
          python3 -c 'import sys, os; v = sys.argv[1]; os.write(1, b"x" * 65533 + v.encode() + b"\n"); os.write(2, b"y" * 65530 + v.encode() + b"\n")' "$v"
          printf '%s' "${v%??????????}"; printf '%s\n' "${v#"${v%??????????}"}"
        done
        echo "token=$API_TOKEN" >> "$PICOFLOW_OUTPUT"
  - name: after
    type: shell
    depends_on: [print]
    config: { command: 'echo "got $PICOFLOW_OUT_PRINT_TOKEN"; [ "$PICOFLOW_OUT_PRINT_TOKEN" = "***" ]' }
)";

}  // namespace

TEST_CASE("secrets reach the task and never the store, its WAL or the log: *** in their place") {
  TempDir credentials;
  const std::string cred = credentials.Write("cred", kCredSecret);
  REQUIRE(::chmod(cred.c_str(), 0600) == 0);
  REQUIRE(::setenv("PFTEST_API_TOKEN", kEnvSecret.c_str(), 1) == 0);
  REQUIRE(::setenv("CREDENTIALS_DIRECTORY", credentials.path().c_str(), 1) == 0);
  DaemonHarness h;  // its daemon inherits both variables
  ::unsetenv("PFTEST_API_TOKEN");
  ::unsetenv("CREDENTIALS_DIRECTORY");
  PrivateFile(h, "db-password", kFileSecret, 0600);
  REQUIRE(h.Start().ok());
  REQUIRE(h.RunCtl({"submit", h.WriteFile("leaky.yaml", kLeaky)}).code == 0);

  // Followed live, as the output arrives.
  const ProcessResult followed = h.RunCtl({"run", "leaky", "--follow"});
  CHECK(followed.code == 0);
  const json run = h.GetRun(1);
  CHECK(run["status"] == "succeeded");
  const ProcessResult logs = h.RunCtl({"logs", "--run", "1"});
  REQUIRE(logs.code == 0);
  const json raw = *h.Call("run.logs", {{"run_id", 1}});

  for (const std::string& secret : {kFileSecret, kEnvSecret, kCredSecret}) {
    CAPTURE(secret);
    CHECK(followed.out.find(secret) == std::string::npos);
    CHECK(followed.err.find(secret) == std::string::npos);
    CHECK(logs.out.find(secret) == std::string::npos);
    CHECK(raw.dump().find(secret) == std::string::npos);
    CHECK(run.dump().find(secret) == std::string::npos);
    // Not even a part of the value on either side of a read boundary.
    CHECK(logs.out.find(secret.substr(0, secret.size() - 3)) == std::string::npos);
    CHECK(logs.out.find(secret.substr(3)) == std::string::npos);
  }
  // Each value: masked in the big write on stdout and stderr and in the
  // two small writes.
  const std::string out = logs.out;
  CHECK(out.find(std::string(65533, 'x') + "***\n") != std::string::npos);
  CHECK(out.find(std::string(65530, 'y') + "***\n") != std::string::npos);
  std::size_t masks = 0;
  for (std::size_t at = out.find("***"); at != std::string::npos; at = out.find("***", at + 3)) {
    ++masks;
  }
  CHECK(masks >= 9 + 1);  // 3 secrets x 3 prints, and "got ***"
  CHECK(out.find("got ***") != std::string::npos);

  // On disk, while the daemon runs (the WAL not checkpointed away), and
  // after it stopped.
  const fs::path db = fs::path(h.state_dir()) / "picoflow.db";
  CHECK(fs::exists(db));
  std::string disk = AllBytesUnder(h.state_dir());
  CHECK(disk.find("***") != std::string::npos);
  const std::string wal = ReadFileText(db.string() + "-wal");
  for (const std::string& secret : {kFileSecret, kEnvSecret, kCredSecret}) {
    CAPTURE(secret);
    CHECK(disk.find(secret) == std::string::npos);
    CHECK(wal.find(secret) == std::string::npos);
    CHECK(h.log().find(secret) == std::string::npos);
  }
  CHECK(h.Stop() == 0);
  disk = AllBytesUnder(h.state_dir());
  for (const std::string& secret : {kFileSecret, kEnvSecret, kCredSecret}) {
    CHECK(disk.find(secret) == std::string::npos);
    CHECK(h.log().find(secret) == std::string::npos);
  }
}

TEST_CASE("a secret that cannot be read fails the attempt with its name, source and fix") {
  DaemonHarness h;
  const std::string open = PrivateFile(h, "open", kFileSecret, 0644);
  REQUIRE(h.Start().ok());
  const std::int64_t id = h.StartRun(R"(name: refused
tasks:
  - name: t
    type: shell
    retry: 1
    secrets: { DB: { file: )" + open +
                                     R"( } }
    config: { command: 'echo ran > "$PFIT_DIR/ran"' }
)");
  const json run = h.WaitRun(id);
  CHECK(run["status"] == "failed");
  // Retried as any failed attempt is: the file may be fixed meanwhile.
  CHECK(AttemptStatuses(run, "t") == std::vector<std::string>{"failed", "failed"});
  const std::string error = run["tasks"][0]["error"];
  CHECK(error == "cannot start: secret 'DB' (file " + open + "): " + open +
                     ": permissions 0644 are too open (a credential must not be accessible by "
                     "group or others: chmod 600 " +
                     open + ")");
  CHECK_FALSE(fs::exists(h.Path("ran")));
  CHECK(h.log().find(kFileSecret) == std::string::npos);

  // Fixed: the next run reads it.
  REQUIRE(::chmod(open.c_str(), 0600) == 0);
  const json fixed = h.WaitRun(h.StartRun(
      "name: refused\ntasks:\n  - name: t\n    type: shell\n    secrets: { DB: { file: " + open +
      " } }\n    config: { command: '[ \"$DB\" = \"$(cat " + open +
      ")\" ] && echo ran > \"$PFIT_DIR/ran\"' }\n"));
  CHECK(fixed["status"] == "succeeded");
  CHECK(fs::exists(h.Path("ran")));
}

}  // namespace picoflow::test
