// MqttClient against a real mosquitto broker that each test starts on
// 127.0.0.1 (a free port, a config file of its own in a temporary
// directory; TLS with a CA and a server certificate made by the openssl CLI)
// and stops: QoS 1 round trips with MQTT 5's response topic and correlation
// data, a shared subscription, a persistent session, the will, a broker
// restart, the bounded offline queue, TLS with the right and a wrong CA, a
// unix socket. Every wait runs the loop until a condition or a deadline.

#include "picoflowd/mqtt/mqtt_client.h"

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace picoflow {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kDeadline = std::chrono::seconds(20);  // ends a hang; never a speed claim

// A temporary directory, removed with everything in it.
struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/picoflow-mqtt-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

void WriteFile(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Runs argv to its end, its output appended to `log`; returns its exit status.
int Run(const std::vector<std::string>& argv, const std::string& log) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

bool TcpAccepts(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

bool UnixAccepts(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

// A CA, a server certificate it signed for 127.0.0.1, and a second CA that
// signed nothing, made with the openssl CLI.
struct Certificates {
  std::string ca, other_ca, cert, key;
  explicit Certificates(const std::string& dir) {
    const std::string log = dir + "/openssl.log";
    auto ssl = [&](std::vector<std::string> args) {
      args.insert(args.begin(), OPENSSL_PATH);
      REQUIRE_MESSAGE(Run(args, log) == 0, ReadFile(log));
    };
    const std::vector<std::string> ec = {"-newkey", "ec", "-pkeyopt",
                                         "ec_paramgen_curve:prime256v1", "-nodes"};
    auto make_ca = [&](const std::string& name) {
      std::vector<std::string> args = {"req",     "-x509",
                                       "-days",   "2",
                                       "-subj",   "/CN=" + name,
                                       "-keyout", dir + "/" + name + ".key",
                                       "-out",    dir + "/" + name + ".crt"};
      args.insert(args.end(), ec.begin(), ec.end());
      ssl(args);
      return dir + "/" + name + ".crt";
    };
    ca = make_ca("test-ca");
    other_ca = make_ca("other-ca");
    key = dir + "/server.key";
    cert = dir + "/server.crt";
    std::vector<std::string> req = {"req", "-subj", "/CN=127.0.0.1",    "-keyout",
                                    key,   "-out",  dir + "/server.csr"};
    req.insert(req.end(), ec.begin(), ec.end());
    ssl(req);
    WriteFile(dir + "/san.cnf", "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
    ssl({"x509", "-req", "-days", "2", "-in", dir + "/server.csr", "-CA", ca, "-CAkey",
         dir + "/test-ca.key", "-CAcreateserial", "-extfile", dir + "/san.cnf", "-out", cert});
  }
};

// A mosquitto of the test's own: a TCP listener, optionally a TLS one and a
// unix socket. Stop and Start again keep the ports (a restarted broker).
class Broker {
 public:
  explicit Broker(const std::string& dir, const Certificates* tls = nullptr,
                  bool unix_socket = false)
      : dir_(dir), port_(FreePort()) {
    const passwd* pw = ::getpwuid(::getuid());
    std::string conf = "per_listener_settings false\nallow_anonymous true\npersistence false\n";
    conf += "log_dest stderr\nlog_type all\n";
    if (pw != nullptr) conf += "user " + std::string(pw->pw_name) + "\n";
    conf += "listener " + std::to_string(port_) + " 127.0.0.1\n";
    if (tls != nullptr) {
      tls_port_ = FreePort();
      conf += "listener " + std::to_string(tls_port_) + " 127.0.0.1\n";
      conf += "cafile " + tls->ca + "\ncertfile " + tls->cert + "\nkeyfile " + tls->key + "\n";
    }
    if (unix_socket) {
      socket_ = dir + "/mqtt.sock";
      conf += "listener 0 " + socket_ + "\n";
    }
    WriteFile(dir + "/mosquitto.conf", conf);
    Start();
  }
  ~Broker() { Stop(); }

  void Start() {
    const std::string log = dir_ + "/broker.log";
    pid_ = ::fork();
    if (pid_ == 0) {
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      ::execl(MOSQUITTO_PATH, MOSQUITTO_PATH, "-c", (dir_ + "/mosquitto.conf").c_str(), nullptr);
      ::_exit(127);
    }
    const auto deadline = Clock::now() + kDeadline;
    while (!(TcpAccepts(port_) && (tls_port_ == 0 || TcpAccepts(tls_port_)) &&
             (socket_.empty() || UnixAccepts(socket_)))) {
      int status = 0;
      REQUIRE_MESSAGE(::waitpid(pid_, &status, WNOHANG) == 0,
                      (std::string("mosquitto exited: ") + Log()));
      REQUIRE_MESSAGE(Clock::now() < deadline,
                      (std::string("mosquitto is not listening: ") + Log()));
      std::this_thread::sleep_for(std::chrono::milliseconds(20));  // readiness polling
    }
  }

  void Stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    const auto deadline = Clock::now() + kDeadline;
    int status = 0;
    while (::waitpid(pid_, &status, WNOHANG) == 0) {
      if (Clock::now() > deadline) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    pid_ = 0;
  }

  std::string Log() const { return ReadFile(dir_ + "/broker.log"); }
  std::string url() const { return "mqtt://127.0.0.1:" + std::to_string(port_); }
  std::string tls_url() const { return "mqtts://127.0.0.1:" + std::to_string(tls_port_); }
  std::string unix_url() const { return "unix://" + socket_; }

 private:
  std::string dir_;
  int port_;
  int tls_port_ = 0;
  std::string socket_;
  pid_t pid_ = 0;
};

// The test's loop; RunUntil turns it until a condition holds or the deadline.
class Loop {
 public:
  Loop() {
    uv_loop_init(&loop_);
    uv_timer_init(&loop_, &tick_);
  }
  ~Loop() {
    uv_close(reinterpret_cast<uv_handle_t*>(&tick_), nullptr);
    uv_run(&loop_, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop_) == 0);
  }
  uv_loop_t* get() { return &loop_; }

  // True if nothing is left to wake the loop once closed handles are gone.
  bool Quiet() {
    uv_run(&loop_, UV_RUN_NOWAIT);
    return uv_loop_alive(&loop_) == 0;
  }

  bool RunUntil(const std::function<bool()>& done) {
    const auto deadline = Clock::now() + kDeadline;
    // A tick so that each turn returns even while nothing else happens.
    uv_timer_start(
        &tick_, [](uv_timer_t*) {}, 10, 10);
    bool ok = true;
    while (!done()) {
      if (Clock::now() > deadline) {
        ok = false;
        break;
      }
      uv_run(&loop_, UV_RUN_ONCE);
    }
    uv_timer_stop(&tick_);
    return ok;
  }

 private:
  uv_loop_t loop_;
  uv_timer_t tick_;
};

// A client with what it received and each connection change it reported.
struct TestClient {
  std::unique_ptr<MqttClient> client;
  std::vector<MqttMessage> messages;
  std::vector<std::pair<bool, std::string>> events;
  std::function<void(bool)> on_up;

  TestClient(Loop& loop, MqttOptions options) {
    auto made = MqttClient::Create(loop.get(), std::move(options));
    REQUIRE_MESSAGE(made.ok(), (made.ok() ? "" : made.error().message));
    client = std::move(*made);
    client->on_message = [this](const MqttMessage& m) { messages.push_back(m); };
    client->on_connection = [this](bool up, const std::string& why) {
      events.emplace_back(up, why);
      if (on_up) on_up(up);
    };
  }
  MqttClient* operator->() { return client.get(); }

  std::vector<std::string> Payloads(const std::string& topic = "") const {
    std::vector<std::string> out;
    for (const auto& m : messages) {
      if (topic.empty() || m.topic == topic) out.push_back(m.payload);
    }
    return out;
  }
  int Ups() const {
    return static_cast<int>(
        std::count_if(events.begin(), events.end(), [](const auto& e) { return e.first; }));
  }
  int Downs() const { return static_cast<int>(events.size()) - Ups(); }

  void StopAndWait(Loop& loop) {
    bool done = false;
    client->Stop([&done] { done = true; });
    REQUIRE(loop.RunUntil([&] { return done; }));
  }
};

// "a|b|c": sequences compared whole, and printed whole when they differ.
std::string Join(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : "|") + p;
  return out;
}

MqttOptions Options(const std::string& url, const std::string& id) {
  MqttOptions o;
  o.url = url;
  o.client_id = id;
  o.keepalive_s = 10;
  return o;
}

MqttPublish Message(const std::string& topic, const std::string& payload, int qos = 1) {
  MqttPublish m;
  m.topic = topic;
  m.payload = payload;
  m.qos = qos;
  return m;
}

// Starts `c` and waits for it to be connected with each filter granted.
void Connect(Loop& loop, TestClient& c, const std::vector<std::string>& filters = {}) {
  for (const auto& f : filters) c->Subscribe(f, 1);
  c->Start();
  REQUIRE(loop.RunUntil([&] {
    return c->connected() && std::all_of(filters.begin(), filters.end(),
                                         [&](const std::string& f) { return c->subscribed(f); });
  }));
}

}  // namespace

TEST_CASE("Create refuses a bad url and options that cannot work, with what is wrong") {
  Loop loop;
  auto refused = [&](MqttOptions o, const std::string& why) {
    auto made = MqttClient::Create(loop.get(), std::move(o));
    REQUIRE_FALSE(made.ok());
    CHECK(made.error().code == ErrorCode::kInvalid);
    CHECK_MESSAGE(made.error().message.find(why) != std::string::npos, made.error().message);
  };
  refused(Options("http://127.0.0.1", "a"), "unknown scheme");
  refused(Options("mqtt://[::1", "a"), "lacks its ']'");
  refused(Options("mqtt://127.0.0.1", ""), "a client id is required");
  MqttOptions o = Options("mqtt://127.0.0.1", "a");
  o.keepalive_s = 1;
  refused(o, "keepalive");
  refused(Options("mqtts://127.0.0.1", "a"), "needs a CA file");
  o = Options("mqtts://127.0.0.1", "a");
  o.ca_file = "/nonexistent/ca.crt";
  refused(o, "TLS files");
  o = Options("mqtt://127.0.0.1", "a");
  o.ca_file = "/etc/hostname";
  refused(o, "not mqtts://");
  o = Options("mqtt://127.0.0.1", "a");
  o.will = MqttOptions::Will{"status/#", "offline"};
  refused(o, "will on 'status/#'");
}

TEST_CASE("a QoS 1 request and its answer travel with MQTT 5's response topic and correlation") {
  TempDir dir;
  Broker broker(dir.path);
  Loop loop;
  TestClient server(loop, Options(broker.url(), "server"));
  TestClient caller(loop, Options(broker.url(), "caller"));
  // The server answers each request on its response topic, with its correlation data.
  server.client->on_message = [&](const MqttMessage& m) {
    server.messages.push_back(m);
    MqttPublish answer = Message(m.response_topic, "answer to " + m.payload);
    answer.correlation_data = m.correlation_data;
    CHECK(server->Publish(answer).ok());
  };
  Connect(loop, server, {"picoflow/run/backup"});
  Connect(loop, caller, {"reply/caller"});

  MqttPublish request = Message("picoflow/run/backup", "run it");
  request.response_topic = "reply/caller";
  request.correlation_data = std::string("\x00\x01id-7", 6);  // bytes, a NUL among them
  request.message_expiry_s = 60;
  REQUIRE(caller->Publish(request).ok());
  REQUIRE(loop.RunUntil([&] { return !caller.messages.empty(); }));

  REQUIRE(server.messages.size() == 1);
  const MqttMessage& got = server.messages[0];
  CHECK(got.topic == "picoflow/run/backup");
  CHECK(got.payload == "run it");
  CHECK(got.qos == 1);
  CHECK_FALSE(got.retain);
  CHECK(got.response_topic == "reply/caller");
  CHECK(got.correlation_data == std::string("\x00\x01id-7", 6));
  REQUIRE(caller.messages.size() == 1);
  CHECK(caller.messages[0].topic == "reply/caller");
  CHECK(caller.messages[0].payload == "answer to run it");
  CHECK(caller.messages[0].correlation_data == std::string("\x00\x01id-7", 6));
  CHECK(caller.messages[0].response_topic.empty());
  server.StopAndWait(loop);
  caller.StopAndWait(loop);
  CHECK(server.Downs() == 0);  // a Stop is not reported as a lost connection
}

TEST_CASE("a shared subscription gives each of 20 messages to exactly one of its two members") {
  TempDir dir;
  Broker broker(dir.path);
  Loop loop;
  TestClient a(loop, Options(broker.url(), "member-a"));
  TestClient b(loop, Options(broker.url(), "member-b"));
  TestClient publisher(loop, Options(broker.url(), "publisher"));
  Connect(loop, a, {"$share/g/t"});
  Connect(loop, b, {"$share/g/t"});
  Connect(loop, publisher);
  std::set<std::string> sent;
  for (int i = 0; i < 20; ++i) {
    sent.insert("m" + std::to_string(i));
    REQUIRE(publisher->Publish(Message("t", "m" + std::to_string(i))).ok());
  }
  // Twice one message would leave another out when 20 have come.
  REQUIRE(loop.RunUntil([&] { return a.messages.size() + b.messages.size() >= 20; }));
  std::vector<std::string> all = a.Payloads();
  for (const auto& p : b.Payloads()) all.push_back(p);
  CHECK(all.size() == 20);
  CHECK(std::set<std::string>(all.begin(), all.end()) == sent);
  CHECK_FALSE(a.messages.empty());  // shared, not one member taking all
  CHECK_FALSE(b.messages.empty());
  for (auto* c : {&a, &b, &publisher}) c->StopAndWait(loop);
}

TEST_CASE("a persistent session gets the messages published while the client was away") {
  TempDir dir;
  Broker broker(dir.path);
  Loop loop;
  {
    TestClient first(loop, Options(broker.url(), "keeper"));
    Connect(loop, first, {"jobs/+"});
    first.StopAndWait(loop);  // a clean DISCONNECT: the session stays (expiry 7 days)
  }
  TestClient publisher(loop, Options(broker.url(), "publisher"));
  Connect(loop, publisher);
  for (const char* p : {"one", "two", "three"}) {
    REQUIRE(publisher->Publish(Message("jobs/a", p)).ok());
  }
  publisher.StopAndWait(loop);  // the PUBLISHes went out before its DISCONNECT

  // The same client id again, subscribing to nothing: the session has it all.
  TestClient again(loop, Options(broker.url(), "keeper"));
  again->Start();
  REQUIRE(loop.RunUntil([&] { return again.messages.size() >= 3; }));
  CHECK(Join(again.Payloads()) == "one|two|three");
  again.StopAndWait(loop);
}

TEST_CASE("the will is published when the connection dies without DISCONNECT, not after Stop") {
  TempDir dir;
  Broker broker(dir.path);
  Loop loop;
  MqttOptions o = Options(broker.url(), "node-1");
  o.will = MqttOptions::Will{"picoflow/status/node-1", "offline", 1, true};
  TestClient node(loop, o);
  // As the daemon will: "online" (retained) at each connect; the will says "offline".
  node.on_up = [&](bool up) {
    if (!up) return;
    MqttPublish online = Message("picoflow/status/node-1", "online");
    online.retain = true;
    CHECK(node->Publish(online).ok());
  };
  TestClient watcher(loop, Options(broker.url(), "watcher"));
  Connect(loop, watcher, {"picoflow/status/+"});
  Connect(loop, node);
  REQUIRE(loop.RunUntil([&] { return watcher.Payloads().size() == 1; }));
  CHECK(Join(watcher.Payloads()) == "online");

  node->AbortConnectionForTest();
  REQUIRE(loop.RunUntil([&] { return watcher.Payloads().size() == 2; }));
  CHECK(watcher.Payloads()[1] == "offline");
  CHECK(watcher.messages[1].retain == false);  // a live delivery (retained on the broker)
  // The node comes back by itself (backoff 1 s ±20%) and says so.
  REQUIRE(loop.RunUntil([&] { return watcher.Payloads().size() == 3; }));
  CHECK(watcher.Payloads()[2] == "online");
  CHECK(node.Downs() == 1);
  CHECK(node.Ups() == 2);

  node.StopAndWait(loop);
  node.client.reset();  // its socket closed for good: a will would go now
  TestClient sentinel(loop, Options(broker.url(), "sentinel"));
  Connect(loop, sentinel);
  REQUIRE(sentinel->Publish(Message("picoflow/status/sentinel", "end")).ok());
  REQUIRE(loop.RunUntil([&] { return watcher.Payloads().size() == 4; }));
  CHECK(Join(watcher.Payloads()) == "online|offline|online|end");
  sentinel.StopAndWait(loop);
  watcher.StopAndWait(loop);
}

TEST_CASE("the client reconnects when the broker restarts and sends what was published meanwhile") {
  TempDir dir;
  Broker broker(dir.path);
  Loop loop;
  TestClient c(loop, Options(broker.url(), "survivor"));
  Connect(loop, c, {"orders/new"});

  broker.Stop();
  REQUIRE(loop.RunUntil([&] { return c.Downs() >= 1; }));
  CHECK_FALSE(c->connected());
  CHECK_FALSE(c.events.back().second.empty());  // a reason
  MqttPublish kept = Message("orders/kept", "published while the broker was down");
  kept.retain = true;
  CHECK(c->Publish(kept).ok());
  const Status qos0 = c->Publish(Message("orders/kept", "lost", 0));
  REQUIRE_FALSE(qos0.ok());
  CHECK(qos0.error().code == ErrorCode::kUnavailable);

  broker.Start();  // the same port; a new broker without the old session
  REQUIRE(loop.RunUntil([&] { return c->connected() && c->subscribed("orders/new"); }));
  TestClient other(loop, Options(broker.url(), "other"));
  Connect(loop, other, {"orders/kept"});
  REQUIRE(loop.RunUntil([&] { return !other.messages.empty(); }));
  CHECK(Join(other.Payloads()) == "published while the broker was down");
  REQUIRE(other->Publish(Message("orders/new", "after the restart")).ok());
  REQUIRE(loop.RunUntil([&] { return !c.messages.empty(); }));
  CHECK(Join(c.Payloads()) == "after the restart");
  CHECK(c->dropped() == 0);
  c.StopAndWait(loop);
  other.StopAndWait(loop);
}

TEST_CASE("publishes made while offline are kept up to 256, the oldest dropped, sent in order") {
  TempDir dir;
  Broker broker(dir.path);
  Loop loop;
  {
    TestClient reader(loop, Options(broker.url(), "reader"));
    Connect(loop, reader, {"q/#"});
    reader.StopAndWait(loop);  // its session keeps what comes next
  }
  TestClient writer(loop, Options(broker.url(), "writer"));
  for (int i = 0; i < 300; ++i) {
    REQUIRE(writer->Publish(Message("q/" + std::to_string(i % 3), std::to_string(i))).ok());
  }
  CHECK(writer->dropped() == 300 - MqttClient::kMaxOffline);
  writer->Start();
  REQUIRE(loop.RunUntil([&] { return writer->connected(); }));
  writer.StopAndWait(loop);

  TestClient reader(loop, Options(broker.url(), "reader"));
  reader->Start();
  REQUIRE(loop.RunUntil([&] { return reader.messages.size() >= MqttClient::kMaxOffline; }));
  std::vector<std::string> expected;
  for (int i = 300 - static_cast<int>(MqttClient::kMaxOffline); i < 300; ++i) {
    expected.push_back(std::to_string(i));
  }
  CHECK(Join(reader.Payloads()) == Join(expected));
  reader.StopAndWait(loop);
}

TEST_CASE("mqtts connects with the broker's CA, and a wrong CA fails, reported, without a crash") {
  TempDir dir;
  const Certificates certs(dir.path);
  Broker broker(dir.path, &certs);
  Loop loop;
  MqttOptions good = Options(broker.tls_url(), "tls-good");
  good.ca_file = certs.ca;
  TestClient c(loop, good);
  Connect(loop, c, {"secure/t"});
  REQUIRE(c->Publish(Message("secure/t", "over TLS")).ok());
  REQUIRE(loop.RunUntil([&] { return !c.messages.empty(); }));
  CHECK(Join(c.Payloads()) == "over TLS");

  MqttOptions bad = Options(broker.tls_url(), "tls-bad");
  bad.ca_file = certs.other_ca;
  TestClient d(loop, bad);
  d->Start();
  REQUIRE(loop.RunUntil([&] { return d.Downs() >= 1; }));
  CHECK(d.Ups() == 0);
  CHECK_FALSE(d->connected());
  CAPTURE(d.events[0].second);
  CHECK_FALSE(d.events[0].second.empty());
  d.StopAndWait(loop);
  c.StopAndWait(loop);
}

TEST_CASE("unix:// reaches a broker listening on a unix socket") {
  TempDir dir;
  Broker broker(dir.path, nullptr, true);
  Loop loop;
  TestClient c(loop, Options(broker.unix_url(), "local"));
  Connect(loop, c, {"local/t"});
  REQUIRE(c->Publish(Message("local/t", "over a unix socket")).ok());
  REQUIRE(loop.RunUntil([&] { return !c.messages.empty(); }));
  CHECK(Join(c.Payloads()) == "over a unix socket");
  c.StopAndWait(loop);
}

TEST_CASE("keepalive pings keep an idle connection open") {
  TempDir dir;
  Broker broker(dir.path);
  Loop loop;
  MqttOptions o = Options(broker.url(), "pinger");
  o.keepalive_s = 5;  // the broker drops a client silent for 7.5 s
  TestClient c(loop, o);
  Connect(loop, c);
  REQUIRE(loop.RunUntil(
      [&] { return broker.Log().find("Sending PINGRESP to pinger") != std::string::npos; }));
  CHECK(c->connected());
  CHECK(c.Downs() == 0);
  c.StopAndWait(loop);
}

TEST_CASE("a host name is resolved off the loop and its addresses tried in turn") {
  TempDir dir;
  Broker broker(dir.path);  // on 127.0.0.1 only: "localhost" may give ::1 first
  Loop loop;
  std::string url = broker.url();
  url.replace(url.find("127.0.0.1"), 9, "localhost");
  TestClient c(loop, Options(url, "by-name"));
  Connect(loop, c, {"named/t"});
  CHECK(c.Ups() == 1);
  c.StopAndWait(loop);
}

TEST_CASE("a client that cannot reach its broker keeps trying, reports each attempt, and stops") {
  Loop loop;
  TestClient c(loop, Options("mqtt://127.0.0.1:" + std::to_string(FreePort()), "lonely"));
  c->Start();
  REQUIRE(loop.RunUntil([&] { return c.Downs() >= 2; }));  // the second after ~1 s
  CHECK(c.Ups() == 0);
  CHECK_MESSAGE(c.events[0].second.find("refused") != std::string::npos, c.events[0].second);
  c.StopAndWait(loop);
  CHECK(loop.Quiet());  // no timer left to try again, no socket watched
}

}  // namespace picoflow
