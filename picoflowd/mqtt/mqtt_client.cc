#include "picoflowd/mqtt/mqtt_client.h"

#include <arpa/inet.h>
#include <mqtt_protocol.h>
#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <random>

#include "common/text_escape.h"
#include "picoflowd/util/callback_guard.h"
#include "picoflowd/util/logging.h"
#include "protocol/mosquitto_lib.h"

namespace picoflow {
namespace {

constexpr std::uint64_t kFirstRetryMs = 1000;
constexpr std::uint64_t kMaxRetryMs = 60000;
constexpr std::uint64_t kConnectTimeoutMs = 30000;  // TCP, TLS and CONNACK together
constexpr std::uint64_t kStopTimeoutMs = 2000;

// `ms` ±20%, so that a fleet of daemons that lost one broker do not all
// come back in the same instant.
std::uint64_t Jitter(std::uint64_t ms) {
  static std::mt19937_64 rng{std::random_device{}()};
  std::uniform_real_distribution<double> factor(0.8, 1.2);
  return static_cast<std::uint64_t>(static_cast<double>(ms) * factor(rng));
}

bool IsAddressLiteral(const std::string& host) {
  in6_addr v6{};
  in_addr v4{};
  return inet_pton(AF_INET, host.c_str(), &v4) == 1 || inet_pton(AF_INET6, host.c_str(), &v6) == 1;
}

// libmosquitto writes with write(2): a broker that vanished would raise
// SIGPIPE and kill the daemon. EPIPE as an error is what we want (as
// rpc_server.cc does for its sockets).
void IgnoreSigpipe() {
  struct sigaction current {};
  if (::sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL) {
    ::signal(SIGPIPE, SIG_IGN);
  }
}

}  // namespace

Result<std::unique_ptr<MqttClient>> MqttClient::Create(uv_loop_t* loop, MqttOptions options) {
  auto url = ParseBrokerUrl(options.url);
  if (!url) return url.error();
  const std::string where = "mqtt broker " + EscapeControls(options.url) + ": ";
  if (options.client_id.empty() || options.client_id.size() > kMaxString) {
    return Err(ErrorCode::kInvalid,
               where + "a client id is required (the broker keeps the session by it)");
  }
  if (options.keepalive_s < 5 || options.keepalive_s > 65535) {
    return Err(ErrorCode::kInvalid, where + "keepalive must be 5-65535 s");
  }
  const bool tls = url->scheme == BrokerScheme::kMqtts;
  if (tls && options.ca_file.empty()) {
    return Err(ErrorCode::kInvalid, where + "mqtts:// needs a CA file");
  }
  if (!tls && !(options.ca_file.empty() && options.cert_file.empty() && options.key_file.empty())) {
    return Err(ErrorCode::kInvalid, where + "TLS files are given but the url is not mqtts://");
  }
  if (options.cert_file.empty() != options.key_file.empty()) {
    return Err(ErrorCode::kInvalid,
               where + "a client certificate needs its key, and a key its certificate");
  }
  auto lib = LoadMosquitto();
  if (!lib) return lib.error();
  std::unique_ptr<MqttClient> client(
      new MqttClient(loop, *lib, std::move(options), std::move(*url)));
  if (Status s = client->Configure(); !s) return Err(s.error().code, where + s.error().message);
  return client;
}

MqttClient::MqttClient(uv_loop_t* loop, const MosquittoLib* lib, MqttOptions options, BrokerUrl url)
    : loop_(loop),
      lib_(lib),
      options_(std::move(options)),
      url_(std::move(url)),
      misc_timer_(this),
      timer_(this) {
  if (uv_timer_init(loop_, misc_timer_.get()) == 0) misc_timer_.MarkInitialized();
  if (uv_timer_init(loop_, timer_.get()) == 0) timer_.MarkInitialized();
}

MqttClient::~MqttClient() {
  if (resolving_ != nullptr) {  // its callback frees it
    resolving_->data = nullptr;
    uv_cancel(reinterpret_cast<uv_req_t*>(resolving_));
  }
  ClosePoll();  // before mosquitto_destroy closes the socket under it
  misc_timer_.Close();
  timer_.Close();
  if (mosq_ != nullptr) lib_->destroy(mosq_);
}

// Everything libmosquitto needs before a connect, once.
Status MqttClient::Configure() {
  // clean_session false: MQTT 5's clean start off, the session resumed.
  mosq_ = lib_->create(options_.client_id.c_str(), false, this);
  if (mosq_ == nullptr) {
    return Err(ErrorCode::kIo, std::string("mosquitto_new: ") + std::strerror(errno));
  }
  int rc = lib_->int_option(mosq_, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
  if (rc == MOSQ_ERR_SUCCESS) rc = lib_->int_option(mosq_, MOSQ_OPT_TCP_NODELAY, 1);
  if (rc != MOSQ_ERR_SUCCESS) return Err(ErrorCode::kInternal, LibError(rc));
  if (!options_.username.empty()) {
    rc = lib_->username_pw_set(mosq_, options_.username.c_str(),
                               options_.password.empty() ? nullptr : options_.password.c_str());
    if (rc != MOSQ_ERR_SUCCESS) return Err(ErrorCode::kInvalid, "username: " + LibError(rc));
  }
  if (const auto& will = options_.will) {
    if (will->payload.size() > kMaxPayload) return Err(ErrorCode::kInvalid, "the will is too big");
    rc = lib_->will_set_v5(mosq_, will->topic.c_str(), static_cast<int>(will->payload.size()),
                           will->payload.data(), will->qos, will->retain, nullptr);
    if (rc != MOSQ_ERR_SUCCESS) {
      return Err(ErrorCode::kInvalid,
                 "will on '" + EscapeControls(will->topic) + "': " + LibError(rc));
    }
  }
  if (url_.scheme == BrokerScheme::kMqtts) {
    // Reads the files now: a missing one fails Create, not every connect.
    rc = lib_->tls_set(mosq_, options_.ca_file.c_str(), nullptr,
                       options_.cert_file.empty() ? nullptr : options_.cert_file.c_str(),
                       options_.key_file.empty() ? nullptr : options_.key_file.c_str(), nullptr);
    if (rc != MOSQ_ERR_SUCCESS) {
      return Err(ErrorCode::kInvalid, "TLS files (" + options_.ca_file + "): " + LibError(rc));
    }
  }
  lib_->connect_v5_callback_set(mosq_, &ConnectCb);
  lib_->disconnect_v5_callback_set(mosq_, &DisconnectCb);
  lib_->message_v5_callback_set(mosq_, &MessageCb);
  lib_->publish_v5_callback_set(mosq_, &PublishCb);
  lib_->subscribe_v5_callback_set(mosq_, &SubscribeCb);
  lib_->log_callback_set(mosq_, &LogCb);
  return StoreConnectProperties();
}

// The CONNECT's properties: the session expiry interval. libmosquitto 2.0.11
// sends CONNECT properties only from mosq->connect_properties, which only
// mosquitto_connect_bind_v5 sets, and that call connects blocking (its
// mosquitto__reconnect(mosq, true)). It stores the properties before it
// checks its host, though, and every later connect (the async ones
// included) sends the stored ones. So: a call without a host stores them and
// returns MOSQ_ERR_INVAL without touching the network. The persistent
// session test (tests/mqtt_client_test.cc) fails if this stops holding.
Status MqttClient::StoreConnectProperties() {
  if (options_.session_expiry_s == 0) return {};  // the session ends with the connection
  MosquittoProperties props{lib_};
  int rc = lib_->property_add_int32(&props.list, MQTT_PROP_SESSION_EXPIRY_INTERVAL,
                                    options_.session_expiry_s);
  if (rc != MOSQ_ERR_SUCCESS) return Err(ErrorCode::kInternal, LibError(rc));
  rc = lib_->connect_bind_v5(mosq_, nullptr, url_.port, options_.keepalive_s, nullptr, props.list);
  if (rc != MOSQ_ERR_INVAL) {
    return Err(ErrorCode::kInternal, "storing the CONNECT properties: " + LibError(rc));
  }
  return {};
}

void MqttClient::Start() {
  if (state_ != State::kIdle) return;
  IgnoreSigpipe();
  backoff_ms_ = kFirstRetryMs;
  Attempt();
}

// One connection attempt: a host name of mqtt:// is resolved off the loop
// first; addresses, unix paths and mqtts:// names go straight to libmosquitto.
void MqttClient::Attempt() {
  if (url_.scheme == BrokerScheme::kMqtt && !IsAddressLiteral(url_.host)) return Resolve();
  Connect(url_.host);
}

void MqttClient::Resolve() {
  state_ = State::kResolving;
  resolving_ = new uv_getaddrinfo_t{};
  resolving_->data = this;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  const int rc = uv_getaddrinfo(loop_, resolving_, &ResolvedCb, url_.host.c_str(), nullptr, &hints);
  if (rc != 0) {
    delete resolving_;
    resolving_ = nullptr;
    OnConnectionLost("cannot resolve " + url_.host + ": " + uv_strerror(rc));
  }
}

void MqttClient::ResolvedCb(uv_getaddrinfo_t* req, int status, addrinfo* res) noexcept {
  auto* self = static_cast<MqttClient*>(req->data);
  delete req;
  if (self == nullptr) {
    uv_freeaddrinfo(res);
    return;
  }
  self->resolving_ = nullptr;
  GuardCallback("mqtt: resolving the broker", [&] { self->OnResolved(status, res); });
}

// Each attempt takes the next of the name's addresses, so one that does not
// answer does not keep the client from the others.
void MqttClient::OnResolved(int status, addrinfo* res) {
  std::vector<std::string> addresses;
  for (addrinfo* a = res; a != nullptr; a = a->ai_next) {
    char text[INET6_ADDRSTRLEN] = {};
    const void* addr =
        a->ai_family == AF_INET6
            ? static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(a->ai_addr)->sin6_addr)
            : static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(a->ai_addr)->sin_addr);
    if ((a->ai_family == AF_INET || a->ai_family == AF_INET6) &&
        inet_ntop(a->ai_family, addr, text, sizeof text) != nullptr &&
        std::find(addresses.begin(), addresses.end(), text) == addresses.end()) {
      addresses.emplace_back(text);
    }
  }
  uv_freeaddrinfo(res);
  if (status != 0 || addresses.empty()) {
    return OnConnectionLost("cannot resolve " + url_.host + ": " +
                            (status != 0 ? uv_strerror(status) : "no address"));
  }
  Connect(addresses[next_address_++ % addresses.size()]);
}

// A non-blocking connect (see the header for what still blocks); the
// CONNECT packet goes out when the socket is writable, the CONNACK arrives
// through the poll. The socket is new at each connect, and so is the poll.
void MqttClient::Connect(const std::string& host) {
  state_ = State::kConnecting;
  await_read_ = false;
  lost_why_.clear();
  lib_error_.clear();
  const int rc =
      lib_->connect_bind_async(mosq_, host.c_str(), url_.port, options_.keepalive_s, nullptr);
  if (rc != MOSQ_ERR_SUCCESS) return OnConnectionLost(LibError(rc));
  const int fd = lib_->socket(mosq_);
  if (fd < 0) return OnConnectionLost("libmosquitto made no socket");
  poll_ = std::make_unique<UvHandle<uv_poll_t>>(this);
  if (int e = uv_poll_init_socket(loop_, poll_->get(), fd); e != 0) {
    return OnConnectionLost(std::string("uv_poll_init_socket: ") + uv_strerror(e));
  }
  poll_->MarkInitialized();
  poll_events_ = 0;
  UpdatePoll();
  StartOneShot<MqttClient, &MqttClient::OnTimer>(timer_, kConnectTimeoutMs);
}

// Readable: mosquitto_loop_read (packets, or the TLS handshake's next step);
// writable, asked for only while libmosquitto wants to write:
// mosquitto_loop_write. While connecting, writable also runs loop_read, the
// one entry that continues a TLS handshake (as mosquitto_loop does).
//
// libmosquitto 2.0.x sets its want_write flag when a TLS handshake step
// could not write (SSL_ERROR_WANT_WRITE: the first one, while the TCP
// connect is still in progress) and nothing in the handshake clears it, so
// mosquitto_want_write can stay true while the handshake waits for the
// broker: polling for writable then would spin for an RTT (a stalled broker:
// for the connect deadline). So during a TLS connect, a writable turn is
// followed by waiting for the socket to be readable before writable is asked
// for again: each handshake step writes what it can at once, then waits for
// the broker's answer. (On loopback the TCP connect is done before the first
// handshake step, so the tests do not reach this case.)
void MqttClient::OnPoll(int status, int events) {
  if (status < 0) return OnConnectionLost(std::string("socket: ") + uv_strerror(status));
  const bool connecting = state_ == State::kConnecting;
  int rc = MOSQ_ERR_SUCCESS;
  if ((events & UV_READABLE) != 0 || (connecting && (events & UV_WRITABLE) != 0)) {
    rc = lib_->loop_read(mosq_, 1);
  }
  if (rc == MOSQ_ERR_SUCCESS && (events & UV_WRITABLE) != 0 && lib_->socket(mosq_) >= 0) {
    rc = lib_->loop_write(mosq_, 1);
  }
  if (connecting && url_.scheme == BrokerScheme::kMqtts) {
    await_read_ = (events & UV_READABLE) == 0 && (events & UV_WRITABLE) != 0;
  }
  AfterLibCall(rc);
}

// After every call that may have read, written or closed the socket: a
// closed socket (or a failed read/write) ends the connection, an open one
// is polled for what libmosquitto wants now.
void MqttClient::AfterLibCall(int rc) {
  if (state_ == State::kStopping) {
    if (lib_->socket(mosq_) < 0) return FinishStop();
    if (!disconnect_sent_ && unacked_.empty()) return SendDisconnect();
    return UpdatePoll();
  }
  if (state_ != State::kConnecting && state_ != State::kConnected) return;
  if (lib_->socket(mosq_) < 0 || rc != MOSQ_ERR_SUCCESS) {
    std::string why = !lost_why_.empty() ? lost_why_ : LibError(rc == 0 ? MOSQ_ERR_CONN_LOST : rc);
    if (!lib_error_.empty()) why += " (" + lib_error_ + ")";
    return OnConnectionLost(why);
  }
  UpdatePoll();
}

void MqttClient::UpdatePoll() {
  if (!poll_ || !poll_->initialized()) return;
  const bool write = lib_->want_write(mosq_) && !(await_read_ && state_ == State::kConnecting);
  const int events = UV_READABLE | (write ? UV_WRITABLE : 0);
  if (events == poll_events_) return;
  poll_events_ = events;
  uv_poll_start(poll_->get(), events, [](uv_poll_t* handle, int status, int ev) noexcept {
    auto* self = OwnerOf<MqttClient>(handle);
    if (self == nullptr) return;
    if (!GuardCallback("mqtt: the broker's socket", [&] { self->OnPoll(status, ev); })) {
      GuardCallback("mqtt: dropping the connection", [&] {
        if (self->connected()) self->OnConnectionLost("an exception in the client");
      });
    }
  });
}

void MqttClient::ClosePoll() {
  poll_.reset();  // uv_close stops it now; the memory goes in the close callback
  poll_events_ = 0;
}

// keepalive: PINGREQ after keepalive s without a packet out, and the
// connection dropped when the PINGRESP does not come. A period of a quarter
// of it sends the ping at most 1.25 keepalives after the last packet; the
// broker waits 1.5 before it drops the client.
void MqttClient::OnMiscTimer() {
  if (state_ != State::kConnected) return;
  AfterLibCall(lib_->loop_misc(mosq_));
}

void MqttClient::OnConnack(int reason, bool session_present) {
  if (reason != 0) {
    lost_why_ = std::string("the broker refused the connection: ") + lib_->reason_string(reason);
    return;  // libmosquitto closes the socket after this callback
  }
  if (state_ != State::kConnecting) return;
  state_ = State::kConnected;
  backoff_ms_ = kFirstRetryMs;
  uv_timer_stop(timer_.get());
  const std::uint64_t period =
      std::max<std::uint64_t>(1000, static_cast<std::uint64_t>(options_.keepalive_s) * 250);
  uv_timer_start(
      misc_timer_.get(),
      [](uv_timer_t* handle) noexcept {
        auto* self = OwnerOf<MqttClient>(handle);
        if (self == nullptr) return;
        GuardCallback("mqtt: keepalive", [self] { self->OnMiscTimer(); });
      },
      period, period);
  // Forgotten while offline: a resumed session still holds them. Before
  // the subscriptions, which never name them (Subscribe drops a pending
  // unsubscribe of its filter).
  for (const std::string& filter : pending_unsubscribes_) {
    if (session_present) lib_->unsubscribe_v5(mosq_, nullptr, filter.c_str(), nullptr);
  }
  pending_unsubscribes_.clear();
  for (auto& sub : subscriptions_) {
    if (!session_present) sub.granted = false;
    sub.mid = 0;
    if (!sub.granted) SendSubscription(sub);
  }
  FlushOffline();
  LogInfo(LogEvent("mqtt.connected"),
          "connected to " + EscapeControls(options_.url) + " as " +
              EscapeControls(options_.client_id) +
              (session_present ? " (session resumed)" : " (new session)"));
  Report(true, "");
}

// The end of a connection or of an attempt: the next one is scheduled.
void MqttClient::OnConnectionLost(const std::string& why) {
  const bool was_connected = state_ == State::kConnected;
  ClosePoll();
  uv_timer_stop(misc_timer_.get());
  uv_timer_stop(timer_.get());
  for (auto& sub : subscriptions_) sub.mid = 0;
  state_ = State::kWaiting;
  ScheduleRetry();
  LogWarn(LogEvent(was_connected ? "mqtt.disconnected" : "mqtt.connect_failed"),
          (was_connected ? "lost the connection to " : "cannot connect to ") +
              EscapeControls(options_.url) + ": " + EscapeControls(why));
  Report(false, why);
}

void MqttClient::ScheduleRetry() {
  const std::uint64_t delay = Jitter(backoff_ms_);
  backoff_ms_ = std::min(backoff_ms_ * 2, kMaxRetryMs);
  StartOneShot<MqttClient, &MqttClient::OnTimer>(timer_, delay);
}

// The one-shot timer's meaning follows the state: the next attempt, an
// attempt's deadline, Stop's deadline, Stop's end.
void MqttClient::OnTimer() {
  switch (state_) {
    case State::kWaiting: return Attempt();
    case State::kConnecting:
      return OnConnectionLost("no CONNACK within " + std::to_string(kConnectTimeoutMs / 1000) +
                              " s");
    case State::kStopping:
      if (!disconnect_sent_) {
        LogWarn(LogEvent("mqtt.stop"), std::to_string(unacked_.size()) +
                                           " publish(es) not acknowledged by the broker in time");
        return SendDisconnect();
      }
      return FinishStop();  // DISCONNECT not written in time
    case State::kStopped: {
      auto done = std::move(stop_done_);
      stop_done_ = nullptr;
      if (done) done();  // may destroy this client: last
      return;
    }
    default: return;
  }
}

void MqttClient::Stop(std::function<void()> done) {
  if (state_ == State::kStopping || state_ == State::kStopped) {
    auto first = std::move(stop_done_);
    stop_done_ = [first = std::move(first), done = std::move(done)] {
      if (first) first();
      if (done) done();
    };
    return;
  }
  stop_done_ = std::move(done);
  if (resolving_ != nullptr) {
    resolving_->data = nullptr;
    uv_cancel(reinterpret_cast<uv_req_t*>(resolving_));
    resolving_ = nullptr;
  }
  uv_timer_stop(misc_timer_.get());
  uv_timer_stop(timer_.get());
  const bool was_connected = state_ == State::kConnected;
  const bool open = (was_connected || state_ == State::kConnecting) && mosq_ != nullptr &&
                    lib_->socket(mosq_) >= 0;
  state_ = State::kStopping;
  disconnect_sent_ = false;
  if (!open) return FinishStop();
  if (was_connected && !unacked_.empty()) {  // AfterLibCall sends DISCONNECT once they are acked
    StartOneShot<MqttClient, &MqttClient::OnTimer>(timer_, kStopTimeoutMs);
    return UpdatePoll();
  }
  SendDisconnect();
}

void MqttClient::SendDisconnect() {
  disconnect_sent_ = true;
  // libmosquitto closes the socket as soon as the DISCONNECT is written; a
  // socket closed with unread input sends a TCP reset, which can make the
  // broker lose the DISCONNECT and publish the will. What has arrived (the
  // acks of the last publishes, often) is read first.
  if (lib_->loop_read(mosq_, 1) != MOSQ_ERR_SUCCESS || lib_->socket(mosq_) < 0) {
    return FinishStop();
  }
  if (lib_->disconnect_v5(mosq_, MQTT_RC_NORMAL_DISCONNECTION, nullptr) != MOSQ_ERR_SUCCESS) {
    return FinishStop();
  }
  StartOneShot<MqttClient, &MqttClient::OnTimer>(timer_, kStopTimeoutMs);
  AfterLibCall(MOSQ_ERR_SUCCESS);  // the DISCONNECT may be written (and the socket closed) now
}

// A socket still open here (a DISCONNECT not written in time) is closed by
// the destructor.
void MqttClient::FinishStop() {
  state_ = State::kStopped;
  unacked_.clear();
  ClosePoll();
  uv_timer_stop(misc_timer_.get());
  if (!offline_.empty()) {
    dropped_ += offline_.size();
    LogWarn(LogEvent("mqtt.dropped"),
            "stopped with " + std::to_string(offline_.size()) + " publish(es) never sent");
    offline_.clear();
  }
  StartOneShot<MqttClient, &MqttClient::OnTimer>(timer_, 0);  // done, on a later turn
}

void MqttClient::AbortConnectionForTest() {
  const int fd = mosq_ != nullptr ? lib_->socket(mosq_) : -1;
  if (fd >= 0) ::shutdown(fd, SHUT_RDWR);
}

void MqttClient::Report(bool up, const std::string& why) {
  if (on_connection) on_connection(up, why);
}

std::string MqttClient::LibError(int rc) const {
  const int saved = errno;  // libmosquitto's detail of ERRNO and EAI
  if (rc == MOSQ_ERR_ERRNO) return std::strerror(saved);
  std::string text = lib_->strerror(rc);
  if (rc == MOSQ_ERR_EAI) text += std::string(" ") + gai_strerror(saved);
  return text;
}

// --- libmosquitto's callbacks: they run inside loop_read/write/misc and
// disconnect, record what happened, and leave the socket to AfterLibCall.

void MqttClient::ConnectCb(mosquitto*, void* obj, int rc, int flags,
                           const mosquitto_property*) noexcept {
  auto* self = static_cast<MqttClient*>(obj);
  GuardCallback("mqtt: CONNACK", [&] { self->OnConnack(rc, (flags & 1) != 0); });
}

void MqttClient::DisconnectCb(mosquitto*, void* obj, int rc, const mosquitto_property*) noexcept {
  auto* self = static_cast<MqttClient*>(obj);
  GuardCallback("mqtt: disconnect", [&] {
    if (!self->lost_why_.empty()) return;  // the first cause (a refused CONNACK) stays
    // A broker's DISCONNECT gives a reason code (>= 0x80 for errors),
    // libmosquitto's own ends a MOSQ_ERR_* value.
    self->lost_why_ = rc >= 0x80
                          ? std::string("the broker disconnected: ") + self->lib_->reason_string(rc)
                          : self->LibError(rc == 0 ? MOSQ_ERR_CONN_LOST : rc);
  });
}

// libmosquitto's errors (a TLS failure's OpenSSL text among them) explain
// the next lost connection; all but its per-packet lines go to the debug log.
void MqttClient::LogCb(mosquitto*, void* obj, int level, const char* text) noexcept {
  auto* self = static_cast<MqttClient*>(obj);
  GuardCallback("mqtt: libmosquitto's log", [&] {
    if (level == MOSQ_LOG_DEBUG) return;  // a line per packet
    const std::string line = EscapeControls(text != nullptr ? text : "");
    if (level == MOSQ_LOG_ERR && self->lib_error_.empty()) self->lib_error_ = line;
    LogDebug(LogEvent("mqtt.lib"), line);
  });
}

}  // namespace picoflow
