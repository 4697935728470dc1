// Tests of the ssh executor, loaded as the daemon loads it (LazyExecutor +
// picoflow-ssh.so), against a real OpenSSH sshd on 127.0.0.1 and ::1 with
// generated host and user keys (a child of this test, killed at exit).

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/workflow.h"
#include "picoflowd/exec/executor_module.h"
#include "picoflowd/exec/executor_module_abi.h"
#include "picoflowd/util/uv_handle.h"
#include "tests/executor_test_util.h"
#include "tests/sanitizers.h"

extern char** environ;

namespace picoflow {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

void Run(const std::string& cmd) { REQUIRE_MESSAGE(std::system(cmd.c_str()) == 0, cmd); }

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void WriteFile(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

// Runs argv without a shell (so the pattern is in no other command line); its exit status.
int Spawn(std::vector<std::string> args) {
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  const int rc = ::posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return -1;
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

bool RemoteAlive(const std::string& marker) { return Spawn({"/usr/bin/pgrep", "-f", marker}) == 0; }

int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

bool CanConnect(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

// Makes the tests' own login account (tests/ssh_test_user.py): shell /bin/sh,
// its home an empty directory in `dir`. Without root the whole file is
// skipped (exit 77): it never logs in as one of the machine's accounts, whose
// startup files would run for every remote command.
std::string CreateTestUser(const std::string& dir) {
  const std::string cmd =
      "/usr/bin/python3 " SSH_TEST_USER " create " + dir + "/home " + std::to_string(::getpid());
  FILE* out = ::popen(cmd.c_str(), "r");
  REQUIRE(out != nullptr);
  char name[64] = {};
  const bool read = std::fgets(name, sizeof name, out) != nullptr;
  const int status = ::pclose(out);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
    std::filesystem::remove_all(dir);
    std::fflush(nullptr);
    std::_Exit(77);  // meson: skipped (the script said why)
  }
  REQUIRE_MESSAGE((read && status == 0), cmd);
  std::string user = name;
  if (!user.empty() && user.back() == '\n') user.pop_back();
  return user;
}

// sshd with its host key, user keys and known_hosts files, in one temp dir,
// letting in only the tests' own account.
class TestSshd {
 public:
  TestSshd() {
    char tmpl[] = "/tmp/picoflow-ssh-test-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    dir_ = tmpl;
    // The account reaches its home inside, and sshd reads authorized_keys as it.
    REQUIRE(::chmod(tmpl, 0711) == 0);
    user_ = CreateTestUser(dir_);
    port_ = FreePort();
    const std::string kg = "/usr/bin/ssh-keygen -q -t ed25519 -C test -f " + dir_;
    Run(kg + "/host_key -N ''");
    Run(kg + "/other_host_key -N ''");
    Run(kg + "/user_key -N ''");
    Run(kg + "/enc_key -N 'open sesame'");
    Run(kg + "/agent_key -N ''");
    Run(kg + "/bad_key -N ''");
    Run("cp " + dir_ + "/user_key " + dir_ + "/open_key && chmod 644 " + dir_ + "/open_key");
    WriteFile(dir_ + "/authorized_keys", ReadFile(dir_ + "/user_key.pub") +
                                             ReadFile(dir_ + "/enc_key.pub") +
                                             ReadFile(dir_ + "/agent_key.pub"));
    WriteFile(dir_ + "/passphrase", "open sesame\n");
    const std::string p = std::to_string(port_);
    const std::string host_pub = ReadFile(dir_ + "/host_key.pub");
    WriteFile(known(), "[127.0.0.1]:" + p + ",[::1]:" + p + " " + host_pub);
    WriteFile(dir_ + "/known_hosts_hashed", "[localhost]:" + p + " " + host_pub);
    Run("/usr/bin/ssh-keygen -q -H -f " + dir_ + "/known_hosts_hashed >/dev/null 2>&1");
    WriteFile(dir_ + "/known_hosts_changed",
              "[127.0.0.1]:" + p + " " + ReadFile(dir_ + "/other_host_key.pub"));
    WriteFile(dir_ + "/known_hosts_empty", "");
    WriteFile(
        dir_ + "/sshd_config",
        "Port " + p + "\nListenAddress 127.0.0.1\nListenAddress ::1\nHostKey " + dir_ +
            "/host_key\nAuthorizedKeysFile " + dir_ +
            "/authorized_keys\nStrictModes no\nUsePAM no\nPermitUserEnvironment TMPDIR\n"
            "PidFile " +
            dir_ + "/sshd.pid\nPermitRootLogin no\nAllowUsers " + user_ +
            "\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nLogLevel VERBOSE\n");
    ::mkdir("/run/sshd", 0755);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    const std::string log = dir_ + "/sshd.log";
    posix_spawn_file_actions_addopen(&actions, 2, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    std::vector<std::string> args = {"/usr/sbin/sshd", "-D", "-e", "-f", dir_ + "/sshd_config"};
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    REQUIRE(::posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ) == 0);
    posix_spawn_file_actions_destroy(&actions);
    const auto deadline = SteadyClock::now() + 60s;  // only ends a hang
    while (!CanConnect(port_) && SteadyClock::now() < deadline) std::this_thread::sleep_for(20ms);
    REQUIRE_MESSAGE(CanConnect(port_), ReadFile(log));
  }
  ~TestSshd() {
    ::kill(pid_, SIGTERM);
    ::waitpid(pid_, nullptr, 0);
    Spawn({"/usr/bin/python3", SSH_TEST_USER, "remove", user_});
    std::filesystem::remove_all(dir_);
  }

  int port() const { return port_; }
  /// The account the tests log in as.
  const std::string& user() const { return user_; }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  std::string known() const { return dir_ + "/known_hosts"; }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  std::string user_;
  int port_ = 0;
  pid_t pid_ = 0;
};

TestSshd& Sshd() {
  static TestSshd sshd;
  return sshd;
}

using test::kAddressSanitizer;
using test::Recorder;
using test::TestLoop;
using test::VmRssKb;

SshConfig Config(const std::string& command, const std::string& host = "127.0.0.1") {
  SshConfig c;
  c.host = host;
  c.port = Sshd().port();
  c.user = Sshd().user();
  c.command = command;
  c.key_path = Sshd().path("user_key");
  c.known_hosts = Sshd().known();
  return c;
}

// The task timeout of an attempt whose timeout is not what the test is about:
// far past what an ssh task needs on any machine, emulators included.
constexpr milliseconds kNoTimeout = 120s;

// How long a test waits for a remote command to start or end: only ends a hang.
constexpr milliseconds kRemoteWait = 60s;

// Waits (a hang detector) until no process matching `marker` is left.
bool WaitRemoteGone(const std::string& marker) {
  const auto deadline = SteadyClock::now() + kRemoteWait;
  while (RemoteAlive(marker) && SteadyClock::now() < deadline) std::this_thread::sleep_for(50ms);
  return !RemoteAlive(marker);
}

struct Harness {
  TestLoop loop;
  LazyExecutor executor{loop.get(), kSshModuleFile, kSshFactorySymbol};
  Task task;

  Harness() {
    ::setenv("PICOFLOW_MODULE_DIR", MODULE_DIR, 1);
    ::setenv("HOME", Sshd().dir().c_str(), 1);  // no ~/.ssh keys of the real user
    ::unsetenv("SSH_AUTH_SOCK");
  }

  void Start(Recorder& rec, SshConfig config, milliseconds timeout = kNoTimeout) {
    task.name = "remote";
    task.type = TaskType::kSsh;
    task.config = std::move(config);
    StartAttempt(executor, rec, task, timeout, run_env, secrets);
  }

  EnvList run_env;  ///< AttemptSpec::env: what the run adds (params)
  EnvList secrets;  ///< AttemptSpec::secrets

  Recorder Run(SshConfig config, milliseconds timeout = kNoTimeout) {
    Recorder rec;
    Start(rec, std::move(config), timeout);
    WaitFinished(loop, rec);
    return rec;
  }
};

std::string Marker(const char* what) {
  return "picoflow-ssh-test-" + std::to_string(::getpid()) + "-" + what;
}

TEST_CASE("a command runs remotely; stdout and stderr arrive separately; env is exported") {
  Sshd();
  Harness h;
  const long before = VmRssKb();
  SshConfig c = Config("echo out; echo err >&2; echo \"$GREETING\"; echo \"$PICOFLOW_PARAM_WHO\"");
  c.env = {{"GREETING", "it's me"}, {"PICOFLOW_PARAM_WHO", "the task's"}};
  h.run_env = {{"PICOFLOW_PARAM_WHO", "the run's; $(not run)"}};  // wins over the task's
  Recorder rec = h.Run(c);
  const long after = VmRssKb();
  MESSAGE("test process RSS before the first ssh task " << before << " kB, after " << after
                                                        << " kB");
  CHECK_MESSAGE(rec.result->status == AttemptStatus::kSucceeded, rec.result->error);
  CHECK(rec.result->exit_code == 0);
  CHECK(rec.out == "out\nit's me\nthe run's; $(not run)\n");
  CHECK(rec.err == "err\n");
  CHECK(h.executor.loaded());
}

TEST_CASE("secrets reach the remote env through stdin, never the remote command line") {
  Harness h;
  const std::string password = "pa ss'wo\nrd-" + std::to_string(::getpid()) + "\n\n";
  const std::string token = "tok-$(echo no)-" + std::to_string(::getpid());
  h.secrets = {{"DB_PASSWORD", password}, {"TOKEN", token}};
  SshConfig c = Config(
      "printf '[%s]|' \"$DB_PASSWORD\" \"$TOKEN\" \"$PGPASSWORD\"; "
      "for p in /proc/[0-9]*; do cat \"$p/cmdline\"; echo; done > \"$HOME/cmdlines\" 2>/dev/null; "
      "true");
  c.env = {{"PGPASSWORD", "pre ${secret:DB_PASSWORD} ${secret:TOKEN}'${secret:NONE}"}};
  Recorder rec = h.Run(c);
  CHECK_MESSAGE(rec.result->status == AttemptStatus::kSucceeded, rec.result->error);
  CHECK(rec.out ==
        "[" + password + "]|[" + token + "]|[pre " + password + " " + token + "'${secret:NONE}]|");
  // The remote processes' command lines, the wrapper's among them (its
  // watcher keeps it), hold the secrets' lengths, not their values.
  const std::string cmdlines = ReadFile(Sshd().dir() + "/home/cmdlines");
  CHECK(cmdlines.find("dd bs=1 count=" + std::to_string(password.size())) != std::string::npos);
  CHECK(cmdlines.find("pa ss") == std::string::npos);
  CHECK(cmdlines.find(token) == std::string::npos);
  ::unlink((Sshd().dir() + "/home/cmdlines").c_str());
}

TEST_CASE("the tests log in as an account of their own: /bin/sh, an empty home, no startup file") {
  Harness h;
  Recorder rec = h.Run(
      Config("id -un; echo \"$HOME\"; ls -A \"$HOME\"; getent passwd \"$(id -un)\" | cut -d: -f7"));
  CHECK_MESSAGE(rec.result->status == AttemptStatus::kSucceeded, rec.result->error);
  CHECK(rec.out == Sshd().user() + "\n" + Sshd().dir() + "/home\n/bin/sh\n");
  CHECK(rec.err.empty());
}

TEST_CASE("a non-zero exit fails with the remote exit status") {
  Harness h;
  Recorder rec = h.Run(Config("echo partial; exit 3"));
  CHECK(rec.result->status == AttemptStatus::kFailed);
  CHECK(rec.result->exit_code == 3);
  CHECK(rec.out == "partial\n");
  CHECK(rec.result->error == "remote command exited with status 3");
}

TEST_CASE("a command killed by a signal reports the signal") {
  Harness h;
  Recorder rec = h.Run(Config("kill -TERM $$"));
  CHECK(rec.result->status == AttemptStatus::kFailed);
  CHECK(!rec.result->exit_code);
  CHECK(rec.result->signal == 15);
  CHECK(rec.result->error == "remote command killed by SIGTERM");
}

TEST_CASE("background leftovers of a finished command are ended with the session") {
  Harness h;
  const std::string marker = Marker("leftover");
  Recorder rec = h.Run(Config("sleep 300 & # " + marker + "\necho done"));
  CHECK(rec.result->status == AttemptStatus::kSucceeded);
  CHECK(rec.out == "done\n");
  CHECK(WaitRemoteGone(marker));
}

TEST_CASE("a host name resolves, and a hashed [host]:port known_hosts entry matches") {
  Harness h;
  SshConfig c = Config("echo by-name", "localhost");
  c.known_hosts = Sshd().path("known_hosts_hashed");
  Recorder rec = h.Run(c);
  CHECK_MESSAGE(rec.result->status == AttemptStatus::kSucceeded, rec.result->error);
  CHECK(rec.out == "by-name\n");
}

TEST_CASE("an IPv6 literal connects") {
  Harness h;
  Recorder rec = h.Run(Config("echo six", "::1"));
  CHECK_MESSAGE(rec.result->status == AttemptStatus::kSucceeded, rec.result->error);
  CHECK(rec.out == "six\n");
}

TEST_CASE("an unknown host key and a changed host key are refused with different fixes") {
  Harness h;
  const std::string where = "127.0.0.1:" + std::to_string(Sshd().port());
  SshConfig c = Config("echo no");
  c.known_hosts = Sshd().path("known_hosts_empty");
  Recorder rec = h.Run(c);
  CHECK(rec.result->status == AttemptStatus::kFailed);
  CHECK(rec.result->error.rfind("host key of " + where + " is not in " + c.known_hosts +
                                    "; add it with `ssh-keyscan -p",
                                0) == 0);
  CHECK(rec.out.empty());

  c.known_hosts = Sshd().path("known_hosts_changed");
  rec = h.Run(c);
  CHECK(rec.result->status == AttemptStatus::kFailed);
  CHECK(rec.result->error.rfind("HOST KEY CHANGED for " + where, 0) == 0);
  CHECK(rec.result->error.find("ssh-keygen -R '[127.0.0.1]:" + std::to_string(Sshd().port())) !=
        std::string::npos);

  c.known_hosts = Sshd().path("known_hosts_empty");
  c.verify_host_key = false;
  rec = h.Run(c);
  CHECK(rec.result->status == AttemptStatus::kSucceeded);
}

TEST_CASE(
    "keys: a wrong key and a world-readable key are refused, an encrypted key opens with its passphrase") {
  Harness h;
  SshConfig c = Config("echo hi");
  c.key_path = Sshd().path("bad_key");
  Recorder rec = h.Run(c);
  CHECK(rec.result->status == AttemptStatus::kFailed);
  CHECK(rec.result->error.find("authentication as ") == 0);
  CHECK(rec.result->error.find(c.key_path) != std::string::npos);

  c.key_path = Sshd().path("open_key");
  rec = h.Run(c);
  CHECK(rec.result->status == AttemptStatus::kFailed);
  CHECK(rec.result->error.find("permissions 0644 are too open") != std::string::npos);

  c.key_path = Sshd().path("enc_key");
  rec = h.Run(c);
  CHECK(rec.result->status == AttemptStatus::kFailed);
  CHECK(rec.result->error.find("wrong passphrase?") != std::string::npos);

  c.passphrase_file = Sshd().path("passphrase");
  rec = h.Run(c);
  CHECK_MESSAGE(rec.result->status == AttemptStatus::kSucceeded, rec.result->error);
  CHECK(rec.out == "hi\n");

  c.passphrase_file.clear();
  c.passphrase_env = "PICOFLOW_TEST_PASSPHRASE";
  ::setenv("PICOFLOW_TEST_PASSPHRASE", "open sesame", 1);
  rec = h.Run(c);
  CHECK_MESSAGE(rec.result->status == AttemptStatus::kSucceeded, rec.result->error);
}

TEST_CASE("ssh-agent identities are tried first") {
  Harness h;
  const std::string sock = Sshd().path("agent.sock");
  Run("/usr/bin/ssh-agent -a " + sock + " > " + Sshd().path("agent.env"));
  const std::string env = ReadFile(Sshd().path("agent.env"));
  const auto at = env.find("SSH_AGENT_PID=");
  REQUIRE(at != std::string::npos);
  const pid_t agent = std::atoi(env.c_str() + at + 14);
  Run("SSH_AUTH_SOCK=" + sock + " /usr/bin/ssh-add -q " + Sshd().path("agent_key") +
      " 2>/dev/null");
  ::setenv("SSH_AUTH_SOCK", sock.c_str(), 1);
  SshConfig c = Config("echo agent");
  c.key_path = Sshd().path("bad_key");  // only the agent's key is authorized
  Recorder rec = h.Run(c);
  ::unsetenv("SSH_AUTH_SOCK");
  ::kill(agent, SIGTERM);
  CHECK_MESSAGE(rec.result->status == AttemptStatus::kSucceeded, rec.result->error);
  CHECK(rec.out == "agent\n");
}

TEST_CASE("a timeout ends the attempt and the remote command") {
  Harness h;
  // The timeout counts from the start of the attempt, connection included:
  // it must leave the remote command time to start on this machine, however
  // slow (or emulated). Calibrated here: 2 s plus three times a whole ssh
  // task (connection, login, command and close), measured just before.
  const auto t0 = SteadyClock::now();
  REQUIRE(h.Run(Config("true")).result->status == AttemptStatus::kSucceeded);
  const auto timeout = std::chrono::ceil<std::chrono::seconds>(2s + 3 * (SteadyClock::now() - t0));
  const std::string marker = Marker("timeout");
  Recorder rec;
  h.Start(rec, Config("sleep 300; # " + marker), timeout);
  CHECK(h.loop.RunUntil([&] { return RemoteAlive(marker); }, kRemoteWait));
  REQUIRE(h.loop.RunUntil([&] { return rec.result.has_value(); }, timeout + kRemoteWait));
  CHECK(rec.result->status == AttemptStatus::kTimeout);
  CHECK(rec.result->error == "timed out after " + std::to_string(timeout.count()) + "s");
  CHECK(WaitRemoteGone(marker));
}

TEST_CASE("cancel reports cancelled on a later iteration and ends the remote command") {
  Harness h;
  const std::string marker = Marker("cancel");
  Recorder rec;
  h.Start(rec, Config("sleep 300; # " + marker));
  CHECK(h.loop.RunUntil([&] { return RemoteAlive(marker); }, kRemoteWait));
  rec.attempt->Cancel();
  rec.attempt->Cancel();  // idempotent
  CHECK(!rec.result);
  REQUIRE(h.loop.RunUntil([&] { return rec.result.has_value(); }, kRemoteWait));
  CHECK(rec.result->status == AttemptStatus::kCancelled);
  CHECK(rec.finished_calls == 1);
  CHECK(WaitRemoteGone(marker));
}

TEST_CASE("50 MiB of output is streamed to the sink, not buffered") {
  Harness h;
  (void)h.Run(Config("true"));
  const long before = VmRssKb();
  Recorder rec;
  rec.keep_output = false;
  h.Start(rec, Config("head -c 52428800 /dev/zero"));
  REQUIRE(h.loop.RunUntil([&] { return rec.result.has_value(); }, kNoTimeout + kRemoteWait));
  const long after = VmRssKb();
  CHECK_MESSAGE(rec.result->status == AttemptStatus::kSucceeded, rec.result->error);
  CHECK(rec.out_bytes == 50u * 1024 * 1024);
  MESSAGE("RSS before " << before << " kB, after " << after << " kB");
  if (!kAddressSanitizer) CHECK(after - before < 8 * 1024);
}

TEST_CASE("a refused connection and an unresolvable host fail with clear messages") {
  Harness h;
  SshConfig c = Config("true");
  c.port = FreePort();
  Recorder rec = h.Run(c);
  CHECK(rec.result->status == AttemptStatus::kFailed);
  CHECK(rec.result->error ==
        "cannot connect to 127.0.0.1:" + std::to_string(c.port) + ": Connection refused");
  c = Config("true", "no-such-host.invalid");
  rec = h.Run(c);
  CHECK(rec.result->status == AttemptStatus::kFailed);
  CHECK(rec.result->error.rfind("cannot resolve no-such-host.invalid: ", 0) == 0);
}

TEST_CASE("connect_timeout ends a server that never answers the handshake") {
  Harness h;
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(::listen(fd, 4) == 0);  // the kernel accepts; nobody ever speaks
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  SshConfig c = Config("true");
  c.port = ntohs(a.sin_port);
  c.connect_timeout = std::chrono::seconds(1);
  const auto t0 = SteadyClock::now();
  Recorder rec = h.Run(c);  // the task timeout is far longer (kNoTimeout)
  ::close(fd);
  CHECK(rec.result->status == AttemptStatus::kFailed);
  CHECK(rec.result->error == "ssh to 127.0.0.1:" + std::to_string(c.port) +
                                 ": connect_timeout (1s) passed before authentication completed");
  CHECK(SteadyClock::now() - t0 < 30s);  // ended by the connect_timeout, not by a hang
}

TEST_CASE("destroying a running attempt reports nothing and ends the remote command") {
  Harness h;
  const std::string marker = Marker("destroy");
  Recorder rec;
  h.Start(rec, Config("sleep 300; # " + marker));
  CHECK(h.loop.RunUntil([&] { return RemoteAlive(marker); }, kRemoteWait));
  rec.attempt.reset();
  h.loop.RunUntil([] { return false; }, 200ms);
  CHECK(!rec.result);
  CHECK(WaitRemoteGone(marker));
}

// A file in the test account's home (~/.ssh/rc, ~/.ssh/environment: read by
// sshd at each login) for the life of this object; the home is left empty.
class LoginFile {
 public:
  LoginFile(const std::string& name, const std::string& text)
      : dir_(Sshd().dir() + "/home/.ssh"), path_(dir_ + "/" + name) {
    std::filesystem::create_directories(dir_);
    ::chmod(dir_.c_str(), 0755);
    WriteFile(path_, text);
    ::chmod(path_.c_str(), 0644);
  }
  ~LoginFile() {
    std::filesystem::remove(path_);
    std::error_code ignored;
    std::filesystem::remove(dir_, ignored);  // only if empty
  }
  LoginFile(const LoginFile&) = delete;
  LoginFile& operator=(const LoginFile&) = delete;

 private:
  std::string dir_, path_;
};

// The first line of a task's stdout: its PICOFLOW_OUTPUT, as the tests' commands echo it.
std::string FirstLine(const std::string& out) { return out.substr(0, out.find('\n')); }

// The directory of an outputs file (the remote is this machine).
std::string DirOf(const std::string& file) {
  return std::filesystem::path(file).parent_path().string();
}

bool Exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

// Echoes PICOFLOW_OUTPUT first, then runs `then`.
SshConfig OutputsConfig(const std::string& then) {
  return Config("echo \"$PICOFLOW_OUTPUT\"; " + then);
}

TEST_CASE(
    "an ssh task's outputs come back (KEY=VALUE, KEY<<EOF), not its stdout; the remote file is "
    "removed") {
  Harness h;
  SshConfig c = OutputsConfig(R"(echo rows=1200 >> "$PICOFLOW_OUTPUT"
{ echo 'summary<<EOF'; echo 'line one'; echo 'line = two'; echo EOF; } >> "$PICOFLOW_OUTPUT"
echo rows=1201 >> "$PICOFLOW_OUTPUT"
echo not=an-output; echo also=not >&2)");
  c.env = {{"PICOFLOW_OUTPUT", "/etc/passwd"}};  // set by picoflow, last
  Recorder rec = h.Run(c);
  CHECK_MESSAGE(rec.result->status == AttemptStatus::kSucceeded, rec.result->error);
  CHECK(rec.result->exit_code == 0);
  CHECK(rec.result->outputs == TaskOutputs{{"rows", "1201"}, {"summary", "line one\nline = two"}});
  const std::string file = FirstLine(rec.out);
  CHECK(file.rfind("/tmp/picoflow-output.", 0) == 0);
  CHECK(file.size() == std::string("/tmp/picoflow-output./output").size() + 32);
  CHECK(rec.out == file + "\nnot=an-output\n");
  CHECK(rec.err == "also=not\n");
  CHECK(!Exists(DirOf(file)));

  // A task that writes none passes on none; each attempt has a directory of its own.
  rec = h.Run(OutputsConfig("test -d \"${PICOFLOW_OUTPUT%/output}\" && echo made"));
  CHECK_MESSAGE(rec.result->status == AttemptStatus::kSucceeded, rec.result->error);
  CHECK(rec.result->outputs.empty());
  CHECK(FirstLine(rec.out) != file);
  CHECK(rec.out == FirstLine(rec.out) + "\nmade\n");
  CHECK(!Exists(DirOf(FirstLine(rec.out))));
}

TEST_CASE("what the login prints (~/.ssh/rc) is taken neither for outputs nor for their marker") {
  Harness h;
  // ~/.ssh/rc runs before every command of a login, the outputs reader's too,
  // and its stdout is the channel's.
  LoginFile rc("rc", "echo rows=666; echo picoflow-outputs.\n");
  Recorder rec = h.Run(OutputsConfig("echo rows=1 >> \"$PICOFLOW_OUTPUT\""));
  CHECK_MESSAGE(rec.result->status == AttemptStatus::kSucceeded, rec.result->error);
  CHECK(rec.result->outputs == TaskOutputs{{"rows", "1"}});
  CHECK(rec.out.rfind("rows=666\npicoflow-outputs.\n/tmp/picoflow-output.", 0) == 0);
}

TEST_CASE(
    "an outputs file over 64 KiB fails the attempt as a shell task's does, without being read "
    "whole") {
  Harness h;
  // 1 GiB (sparse): the reader sends one byte past the limit, not the file.
  Recorder rec = h.Run(OutputsConfig("truncate -s 1G \"$PICOFLOW_OUTPUT\""));
  CHECK(rec.result->status == AttemptStatus::kFailed);
  CHECK(rec.result->exit_code == 0);
  CHECK(rec.result->error ==
        "its outputs (PICOFLOW_OUTPUT): more than 65536 bytes (the limit of a task's outputs)");
  CHECK(rec.result->outputs.empty());
  CHECK(!Exists(DirOf(FirstLine(rec.out))));

  // Exactly the limit is allowed.
  rec = h.Run(OutputsConfig(
      "{ printf k=; head -c 65533 /dev/zero | tr '\\0' x; echo; } >> \"$PICOFLOW_OUTPUT\""));
  CHECK_MESSAGE(rec.result->status == AttemptStatus::kSucceeded, rec.result->error);
  REQUIRE_MESSAGE(rec.result->outputs.size() == 1, rec.result->error, rec.err);
  CHECK(rec.result->outputs[0].second == std::string(65533, 'x'));
}

TEST_CASE("a malformed outputs file fails the attempt with the shell executor's errors") {
  Harness h;
  Recorder rec = h.Run(OutputsConfig(
      "echo a=1 >> \"$PICOFLOW_OUTPUT\"; echo 'not an output' >> \"$PICOFLOW_OUTPUT\""));
  CHECK(rec.result->status == AttemptStatus::kFailed);
  CHECK(rec.result->exit_code == 0);
  CHECK(rec.result->error ==
        "its outputs (PICOFLOW_OUTPUT): line 2: expected KEY=VALUE or KEY<<DELIMITER");
  CHECK(rec.result->outputs.empty());
  CHECK(!Exists(DirOf(FirstLine(rec.out))));

  rec = h.Run(OutputsConfig("printf 'text<<END\\nno end\\n' >> \"$PICOFLOW_OUTPUT\""));
  CHECK(rec.result->status == AttemptStatus::kFailed);
  CHECK(rec.result->error ==
        "its outputs (PICOFLOW_OUTPUT): line 1: 'text<<END' is not closed by a line 'END'");

  // Not a regular file: refused, never opened (a FIFO would block the reader).
  rec = h.Run(OutputsConfig("mkfifo \"$PICOFLOW_OUTPUT\""));
  CHECK(rec.result->status == AttemptStatus::kFailed);
  CHECK(rec.result->error == "its outputs (PICOFLOW_OUTPUT): it is not a regular file");
  CHECK(!Exists(DirOf(FirstLine(rec.out))));
}

TEST_CASE("a failed command's outputs are not kept, and its remote file is removed") {
  Harness h;
  Recorder rec = h.Run(OutputsConfig("echo a=1 >> \"$PICOFLOW_OUTPUT\"; exit 4"));
  CHECK(rec.result->status == AttemptStatus::kFailed);
  CHECK(rec.result->exit_code == 4);
  CHECK(rec.result->error == "remote command exited with status 4");
  CHECK(rec.result->outputs.empty());
  CHECK(!Exists(DirOf(FirstLine(rec.out))));

  rec = h.Run(OutputsConfig("echo a=1 >> \"$PICOFLOW_OUTPUT\"; kill -TERM $$"));
  CHECK(rec.result->signal == 15);
  CHECK(rec.result->outputs.empty());
  CHECK(!Exists(DirOf(FirstLine(rec.out))));
}

TEST_CASE("a command that closes its stdout early runs to its end and passes its outputs on") {
  Harness h;
  // The executor waits for sshd to close the channel (the command reaped),
  // not just for the end of its output.
  Recorder rec =
      h.Run(Config("exec >&- 2>&- </dev/null; sleep 1; echo k=v >> \"$PICOFLOW_OUTPUT\"; exit 0"));
  CHECK_MESSAGE(rec.result->status == AttemptStatus::kSucceeded, rec.result->error);
  CHECK(rec.result->outputs == TaskOutputs{{"k", "v"}});
}

// Waits (a hang detector) until `path` is gone.
bool WaitGone(const std::string& path) {
  const auto deadline = SteadyClock::now() + kRemoteWait;
  while (Exists(path) && SteadyClock::now() < deadline) std::this_thread::sleep_for(50ms);
  return !Exists(path);
}

TEST_CASE(
    "a cancelled or timed-out command's remote outputs file is removed by the remote watcher") {
  Harness h;
  const std::string marker = Marker("outputs-cancel");
  Recorder rec;
  h.Start(rec, OutputsConfig("echo a=1 >> \"$PICOFLOW_OUTPUT\"; sleep 300; # " + marker));
  REQUIRE(h.loop.RunUntil([&] { return rec.out.find('\n') != std::string::npos; }, kRemoteWait));
  const std::string dir = DirOf(FirstLine(rec.out));
  CHECK(h.loop.RunUntil([&] { return Exists(dir + "/output"); }, kRemoteWait));
  rec.attempt->Cancel();
  REQUIRE(h.loop.RunUntil([&] { return rec.result.has_value(); }, kRemoteWait));
  CHECK(rec.result->status == AttemptStatus::kCancelled);
  CHECK(rec.result->outputs.empty());
  CHECK(WaitRemoteGone(marker));
  CHECK(WaitGone(dir));

  // Destroyed before it ends (the daemon going away): the same.
  Recorder gone;
  h.Start(gone, OutputsConfig("echo a=1 >> \"$PICOFLOW_OUTPUT\"; sleep 300; # " + marker));
  REQUIRE(h.loop.RunUntil([&] { return gone.out.find('\n') != std::string::npos; }, kRemoteWait));
  const std::string dir2 = DirOf(FirstLine(gone.out));
  CHECK(h.loop.RunUntil([&] { return RemoteAlive(marker); }, kRemoteWait));
  gone.attempt.reset();
  CHECK(WaitRemoteGone(marker));
  CHECK(WaitGone(dir2));
}

TEST_CASE(
    "a timeout while the outputs are read back reports it; the remote file is still removed") {
  Harness h;
  const auto t0 = SteadyClock::now();
  REQUIRE(h.Run(Config("true")).result->status == AttemptStatus::kSucceeded);
  const auto timeout = std::chrono::ceil<std::chrono::seconds>(2s + 3 * (SteadyClock::now() - t0));
  // The task leaves ~/slow: the next login (the outputs reader's) waits in
  // ~/.ssh/rc until the test writes to the FIFO ~/hold.
  const std::string hold = Sshd().dir() + "/home/hold";
  REQUIRE(::mkfifo(hold.c_str(), 0666) == 0);
  const std::unique_ptr<const char, void (*)(const char*)> remove_hold(
      hold.c_str(), [](const char* path) { ::unlink(path); });
  LoginFile rc("rc", "if [ -e slow ]; then rm -f slow; cat hold >/dev/null; fi\n");
  Recorder rec;
  h.Start(rec, OutputsConfig("echo k=v >> \"$PICOFLOW_OUTPUT\"; touch \"$HOME/slow\""), timeout);
  REQUIRE(h.loop.RunUntil([&] { return rec.result.has_value(); }, timeout + kRemoteWait));
  CHECK(rec.result->status == AttemptStatus::kTimeout);
  CHECK(rec.result->error ==
        "timed out after " + std::to_string(timeout.count()) + "s (reading its outputs back)");
  CHECK(rec.result->outputs.empty());
  const std::string dir = DirOf(FirstLine(rec.out));
  CHECK(Exists(dir));  // the reader has not run yet
  int fd = -1;
  const auto deadline = SteadyClock::now() + kRemoteWait;
  while ((fd = ::open(hold.c_str(), O_WRONLY | O_NONBLOCK)) < 0 && SteadyClock::now() < deadline)
    std::this_thread::sleep_for(50ms);  // ENXIO until ~/.ssh/rc opens it
  REQUIRE(fd >= 0);
  ::close(fd);
  CHECK(WaitGone(dir));
}

TEST_CASE(
    "the outputs file is in the login's TMPDIR, not the task env's; without a writable one the "
    "command runs without PICOFLOW_OUTPUT and says so") {
  Harness h;
  const std::string tmp = Sshd().dir() + "/home/tmp";
  std::filesystem::create_directories(tmp);
  Run("chown " + Sshd().user() + " " + tmp);
  {
    LoginFile env("environment", "TMPDIR=" + tmp + "\n");
    SshConfig c = OutputsConfig("echo k=v >> \"$PICOFLOW_OUTPUT\"");
    c.env = {{"TMPDIR", "/nonexistent"}};
    Recorder rec = h.Run(c);
    CHECK_MESSAGE(rec.result->status == AttemptStatus::kSucceeded, rec.result->error);
    CHECK(rec.result->outputs == TaskOutputs{{"k", "v"}});
    CHECK(rec.out.rfind(tmp + "/picoflow-output.", 0) == 0);
    CHECK(std::filesystem::is_empty(tmp));
    std::filesystem::remove(tmp);
  }
  LoginFile env("environment", "TMPDIR=" + Sshd().dir() + "/home/no-such-dir\n");
  Recorder rec = h.Run(Config("echo \"${PICOFLOW_OUTPUT-unset}\"; echo ran"));
  CHECK_MESSAGE(rec.result->status == AttemptStatus::kSucceeded, rec.result->error);
  CHECK(rec.result->outputs.empty());
  CHECK(rec.out == "unset\nran\n");
  CHECK(rec.err.find("picoflow: PICOFLOW_OUTPUT is unset: this task cannot pass outputs on\n") !=
        std::string::npos);
  CHECK(rec.err.find("mkdir: cannot create directory") != std::string::npos);
}

}  // namespace
}  // namespace picoflow
