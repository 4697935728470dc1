// Tests of the http executor, loaded as the daemon loads it (LazyExecutor +
// picoflow-http.so), against a real HTTP/HTTPS server on 127.0.0.1
// (tests/http_test_server.py, a child of this test).

#include <dlfcn.h>
#include <doctest/doctest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
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

// The test server and its self-signed certificate, started once for all tests.
// It exits when our end of its stdin closes, even if this process dies.
class TestServer {
 public:
  TestServer() {
    char tmpl[] = "/tmp/picoflow-http-test-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    dir_ = tmpl;
    cert_ = dir_ + "/cert.pem";
    const std::string key = dir_ + "/key.pem";
    const std::string cmd =
        "/usr/bin/openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
        "-nodes -days 1 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 "
        "-keyout " +
        key + " -out " + cert_ + " 2>/dev/null";
    REQUIRE(std::system(cmd.c_str()) == 0);
    int in[2], out[2];
    REQUIRE(::pipe2(in, O_CLOEXEC) == 0);
    REQUIRE(::pipe2(out, O_CLOEXEC) == 0);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in[0], 0);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    std::string script = HTTP_TEST_SERVER;
    std::vector<char*> argv = {const_cast<char*>("/usr/bin/python3"), script.data(), cert_.data(),
                               const_cast<char*>(key.c_str()), nullptr};
    REQUIRE(::posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ) == 0);
    posix_spawn_file_actions_destroy(&actions);
    ::close(in[0]);
    ::close(out[1]);
    stdin_ = in[1];
    const std::string line = ReadLine(out[0], 60s);  // only ends a hang
    ::close(out[0]);
    REQUIRE(std::sscanf(line.c_str(), "%d %d", &http_port_, &https_port_) == 2);
  }
  ~TestServer() {
    ::close(stdin_);
    ::kill(pid_, SIGTERM);
    ::waitpid(pid_, nullptr, 0);
    std::filesystem::remove_all(dir_);
  }

  std::string Url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(http_port_) + path;
  }
  std::string TlsUrl(const std::string& path) const {
    return "https://127.0.0.1:" + std::to_string(https_port_) + path;
  }
  const std::string& cert() const { return cert_; }

 private:
  static std::string ReadLine(int fd, milliseconds limit) {
    std::string line;
    const auto deadline = SteadyClock::now() + limit;
    while (line.find('\n') == std::string::npos && SteadyClock::now() < deadline) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      char buf[128];
      const ssize_t n = ::read(fd, buf, sizeof buf);
      if (n <= 0) break;
      line.append(buf, static_cast<std::size_t>(n));
    }
    return line;
  }

  std::string dir_, cert_;
  pid_t pid_ = 0;
  int stdin_ = -1;
  int http_port_ = 0, https_port_ = 0;
};

TestServer& Server() {
  static TestServer server;
  return server;
}

// Points the module search at this build and keeps proxies out of loopback tests.
void TestEnvironment() {
  ::setenv("PICOFLOW_MODULE_DIR", MODULE_DIR, 1);
  for (const char* var :
       {"http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy"}) {
    ::unsetenv(var);
  }
}

using test::kAddressSanitizer;
using test::Recorder;
using test::TestLoop;
using test::VmRssKb;

Task HttpTask(HttpConfig config) {
  Task task;
  task.name = "call";
  task.type = TaskType::kHttp;
  task.config = std::move(config);
  return task;
}

HttpConfig Get(const std::string& url) {
  HttpConfig c;
  c.url = url;
  return c;
}

// The task timeout of an attempt whose timeout is not what the test is about:
// far past what a loopback request needs on any machine, emulators included.
constexpr milliseconds kNoTimeout = 120s;

// An upper bound on how long an attempt that a timeout or a cancel ends may
// take: it only tells "aborted" from "answered", which /slow puts 60 s away.
constexpr milliseconds kAborted = 30s;

// Runs one attempt to its end.
struct Harness {
  TestLoop loop;
  LazyExecutor executor{loop.get(), kHttpModuleFile, kHttpFactorySymbol};

  Harness() { TestEnvironment(); }

  void Start(Recorder& rec, const Task& task, milliseconds timeout = kNoTimeout) {
    StartAttempt(executor, rec, task, timeout);
  }

  Recorder Run(HttpConfig config, milliseconds timeout = kNoTimeout) {
    const Task task = HttpTask(std::move(config));
    Recorder rec;
    Start(rec, task, timeout);
    WaitFinished(loop, rec);
    return rec;
  }
};

TEST_CASE("picoflowd links neither libcurl nor libssh2") {
  // Under emulation (cross/test.sh) the host's ldd cannot read the foreign
  // binary: the emulator runs its own loader, which lists what it loads.
  const std::string wrapper = test::ExecWrapperCommand();
  const std::string command = !wrapper.empty()
                                  ? "LD_TRACE_LOADED_OBJECTS=1 " + wrapper + " " PICOFLOWD_PATH
                                  : std::string("ldd " PICOFLOWD_PATH);
  FILE* p = ::popen(command.c_str(), "r");
  REQUIRE(p != nullptr);
  std::string text;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p) != nullptr) text += buf;
  CHECK(::pclose(p) == 0);
  CHECK(text.find("libuv") != std::string::npos);
  CHECK(text.find("libcurl") == std::string::npos);
  CHECK(text.find("libssh2") == std::string::npos);
}

TEST_CASE("a module that cannot be loaded fails the attempt, naming the path") {
  TestLoop loop;
  ::setenv("PICOFLOW_MODULE_DIR", "/nonexistent-picoflow-modules", 1);
  LazyExecutor executor(loop.get(), kHttpModuleFile, kHttpFactorySymbol);
  const Task task = HttpTask(Get("http://127.0.0.1:9/"));
  AttemptSpec spec;
  spec.task = &task;
  Recorder rec;
  rec.attempt = executor.Start(spec, rec);
  CHECK(!rec.result);
  REQUIRE(loop.RunUntil([&] { return rec.result.has_value(); }));
  CHECK(rec.result->status == AttemptStatus::kFailed);
  CHECK(rec.result->error.find("/nonexistent-picoflow-modules/picoflow-http.so") !=
        std::string::npos);
  CHECK(!executor.loaded());
  TestEnvironment();
}

TEST_CASE("a module without the factory, or built for another ABI, is refused") {
  TestEnvironment();
  TestLoop loop;
  LazyExecutor executor(loop.get(), kHttpModuleFile, "no_such_factory");
  const Task task = HttpTask(Get("http://127.0.0.1:9/"));
  AttemptSpec spec;
  spec.task = &task;
  Recorder rec;
  rec.attempt = executor.Start(spec, rec);
  REQUIRE(loop.RunUntil([&] { return rec.result.has_value(); }));
  CHECK(rec.result->error == "cannot load executor module " MODULE_DIR
                             "/picoflow-http.so: no symbol no_such_factory");

  void* module = ::dlopen(MODULE_DIR "/picoflow-http.so", RTLD_NOW | RTLD_LOCAL);
  REQUIRE(module != nullptr);
  auto factory = reinterpret_cast<PicoflowExecutorFactory>(::dlsym(module, kHttpFactorySymbol));
  REQUIRE(static_cast<bool>(factory));
  PicoflowModuleHost host = MakeModuleHost([](const char*) {});
  host.sizeof_task += 8;
  char error[256] = "";
  CHECK(factory(&host, loop.get(), error, sizeof error) == nullptr);
  CHECK(std::string(error).find("ABI") != std::string::npos);
  ::dlclose(module);
}

TEST_CASE("every method reaches the server with its headers") {
  Harness h;
  for (const char* method : {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"}) {
    CAPTURE(method);
    HttpConfig c = Get(Server().Url("/echo"));
    c.method = method;
    c.headers = {{"X-Token", "s3cret"}, {"Accept", "application/json"}};
    Recorder rec = h.Run(c);
    CHECK(rec.result->status == AttemptStatus::kSucceeded);
    CHECK(rec.result->exit_code == 200);
    CHECK(rec.err == "HTTP/1.1 200 OK\n");
    if (std::string(method) == "HEAD") {
      CHECK(rec.out.empty());
      continue;
    }
    const auto echo = nlohmann::json::parse(rec.out);
    CHECK(echo["method"] == method);
    CHECK(echo["headers"]["x-token"] == "s3cret");
    CHECK(echo["headers"]["accept"] == "application/json");
    CHECK(echo["body"] == "");
  }
  CHECK(h.executor.loaded());
}

TEST_CASE("a map body is sent as JSON, a string body as it is") {
  Harness h;
  HttpConfig c = Get(Server().Url("/echo"));
  c.method = "POST";
  c.body = R"({"title":"Test","userId":1})";
  c.body_is_json = true;
  auto echo = nlohmann::json::parse(h.Run(c).out);
  CHECK(echo["body"] == R"({"title":"Test","userId":1})");
  CHECK(echo["headers"]["content-type"] == "application/json");

  c.method = "PUT";
  c.body = "plain text";
  c.body_is_json = false;
  echo = nlohmann::json::parse(h.Run(c).out);
  CHECK(echo["method"] == "PUT");
  CHECK(echo["body"] == "plain text");
  CHECK(!echo["headers"].contains("content-type"));

  c.headers = {{"Content-Type", "text/csv"}};
  c.body_is_json = true;  // a given Content-Type wins
  echo = nlohmann::json::parse(h.Run(c).out);
  CHECK(echo["headers"]["content-type"] == "text/csv");
}

TEST_CASE("404 and 500 fail with the status as exit code; expect_status can accept them") {
  Harness h;
  for (int status : {404, 500}) {
    Recorder rec = h.Run(Get(Server().Url("/status/" + std::to_string(status))));
    CHECK(rec.result->status == AttemptStatus::kFailed);
    CHECK(rec.result->exit_code == status);
    CHECK(rec.result->error == "HTTP status " + std::to_string(status) + " (expected 200-299)");
    CHECK(rec.out == "status " + std::to_string(status) + "\n");
  }
  HttpConfig c = Get(Server().Url("/status/404"));
  c.expect_status = {{200, 200}, {404, 404}};
  Recorder rec = h.Run(c);
  CHECK(rec.result->status == AttemptStatus::kSucceeded);
  CHECK(rec.result->exit_code == 404);
}

TEST_CASE("the status is an output, and with output_body the body, within the outputs cap") {
  Harness h;
  // Not 204: the test server sends a body with every status, and a 204's
  // would be left on the kept-alive connection for the next request.
  Recorder rec = h.Run(Get(Server().Url("/status/201")));
  CHECK(rec.result->status == AttemptStatus::kSucceeded);
  CHECK(rec.result->outputs == TaskOutputs{{"status", "201"}});
  HttpConfig c = Get(Server().Url("/status/200"));
  c.output_body = true;
  rec = h.Run(c);
  CHECK(rec.result->outputs == TaskOutputs{{"status", "200"}, {"body", "status 200\n"}});
  c = Get(Server().Url("/status/404"));
  c.output_body = true;
  rec = h.Run(c);  // a failed attempt passes nothing on
  CHECK(rec.result->outputs.empty());
  c = Get(Server().Url("/big"));  // 50 MiB
  c.output_body = true;
  rec = h.Run(c);
  CHECK(rec.result->status == AttemptStatus::kFailed);
  CHECK(rec.result->error ==
        "its outputs: the response body is over 65536 bytes, the limit of a task's outputs "
        "(output_body: true)");
  CHECK(rec.result->outputs.empty());
}

TEST_CASE("the shorter of the request timeout and the task timeout ends a slow response") {
  Harness h;
  HttpConfig c = Get(Server().Url("/slow"));
  c.timeout = 1s;
  auto t0 = SteadyClock::now();
  Recorder rec = h.Run(c, kNoTimeout);
  CHECK(rec.result->status == AttemptStatus::kTimeout);
  CHECK(rec.result->error == "timed out after 1s (request timeout)");
  CHECK(SteadyClock::now() - t0 < kAborted);

  t0 = SteadyClock::now();
  rec = h.Run(c, 500ms);
  CHECK(rec.result->status == AttemptStatus::kTimeout);
  CHECK(rec.result->error == "timed out after 500ms (task timeout)");
  CHECK(SteadyClock::now() - t0 < kAborted);
}

TEST_CASE("a 50 MiB body is streamed to the sink, not buffered") {
  Harness h;
  (void)h.Run(Get(Server().Url("/echo")));  // the module and curl are mapped before measuring
  const long before = VmRssKb();
  const Task task = HttpTask(Get(Server().Url("/big")));
  Recorder rec;
  rec.keep_output = false;
  h.Start(rec, task);
  REQUIRE(h.loop.RunUntil([&] { return rec.result.has_value(); }, kNoTimeout + 60s));
  const long after = VmRssKb();
  CHECK(rec.result->status == AttemptStatus::kSucceeded);
  CHECK(rec.out_bytes == 50u * 1024 * 1024);
  MESSAGE("RSS before " << before << " kB, after " << after << " kB");
  if (!kAddressSanitizer) CHECK(after - before < 8 * 1024);
}

TEST_CASE("a redirect is followed only with follow_redirects") {
  Harness h;
  HttpConfig c = Get(Server().Url("/redirect"));
  Recorder rec = h.Run(c);
  CHECK(rec.result->status == AttemptStatus::kFailed);
  CHECK(rec.result->exit_code == 302);

  c.follow_redirects = true;
  rec = h.Run(c);
  CHECK(rec.result->status == AttemptStatus::kSucceeded);
  CHECK(rec.result->exit_code == 200);
  CHECK(rec.err == "HTTP/1.1 302 Found\nHTTP/1.1 200 OK\n");
  CHECK(nlohmann::json::parse(rec.out)["method"] == "GET");
}

TEST_CASE("HTTPS verifies the server: trusted through ca_file, refused without it") {
  Harness h;
  HttpConfig c = Get(Server().TlsUrl("/echo"));
  c.ca_file = Server().cert();
  Recorder rec = h.Run(c);
  CHECK(rec.result->status == AttemptStatus::kSucceeded);
  CHECK(nlohmann::json::parse(rec.out)["method"] == "GET");

  c.ca_file.clear();
  rec = h.Run(c);
  CHECK(rec.result->status == AttemptStatus::kFailed);
  CHECK(!rec.result->exit_code);
  CHECK(rec.result->error.find("certificate") != std::string::npos);
  CHECK(rec.out.empty());
}

TEST_CASE("sequential tasks reuse one connection") {
  Harness h;
  const std::string first = h.Run(Get(Server().Url("/conn"))).out;
  const std::string second = h.Run(Get(Server().Url("/conn"))).out;
  CHECK(!first.empty());
  CHECK(first == second);
}

TEST_CASE("cancel aborts the transfer and reports cancelled on a later iteration") {
  Harness h;
  const Task task = HttpTask(Get(Server().Url("/slow")));
  Recorder rec;
  const auto t0 = SteadyClock::now();
  h.Start(rec, task);
  h.loop.RunUntil([] { return false; }, 300ms);
  rec.attempt->Cancel();
  CHECK(!rec.result);
  rec.attempt->Cancel();  // idempotent
  REQUIRE(h.loop.RunUntil([&] { return rec.result.has_value(); }));
  CHECK(rec.result->status == AttemptStatus::kCancelled);
  CHECK(rec.finished_calls == 1);
  CHECK(SteadyClock::now() - t0 < kAborted);
}

TEST_CASE("destroying a running attempt reports nothing and leaks nothing") {
  Harness h;
  const Task task = HttpTask(Get(Server().Url("/slow")));
  Recorder rec;
  h.Start(rec, task);
  h.loop.RunUntil([] { return false; }, 200ms);
  rec.attempt.reset();
  h.loop.RunUntil([] { return false; }, 200ms);
  CHECK(!rec.result);
}

TEST_CASE("allow_private_ips: false refuses loopback, also on a reused connection") {
  Harness h;
  (void)h.Run(Get(Server().Url("/conn")));  // leaves a cached connection
  HttpConfig c = Get(Server().Url("/echo"));
  c.allow_private_ips = false;
  Recorder rec = h.Run(c);
  CHECK(rec.result->status == AttemptStatus::kFailed);
  CHECK(rec.result->error ==
        "refused to connect to private address 127.0.0.1 (allow_private_ips: false)");
  CHECK(rec.out.empty());
}

TEST_CASE("a connection failure fails naming the request and the system's reason") {
  Harness h;
  Recorder rec = h.Run(Get("http://127.0.0.1:9/"));  // discard port: nobody listens
  CHECK(rec.result->status == AttemptStatus::kFailed);
  CHECK(!rec.result->exit_code);
  CHECK(rec.result->error == "http: GET http://127.0.0.1:9/: connection refused");
  // A password in the URL is not repeated in the error.
  Recorder secret = h.Run(Get("http://user:hunter2@127.0.0.1:9/x"));
  CHECK(secret.result->error == "http: GET http://127.0.0.1:9/x: connection refused");
}

}  // namespace
}  // namespace picoflow
