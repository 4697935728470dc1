#pragma once
// MqttClient: one MQTT 5 connection to a broker, over libmosquitto (loaded
// with dlopen, mosquitto_lib.h) and driven entirely by the daemon's libuv
// loop: a uv_poll on the client's socket, a uv_timer for keepalive pings,
// another for reconnects (backoff with jitter), no thread of its own. The
// session is persistent (clean start off, a session expiry interval), so a
// broker keeps the subscriptions and the QoS 1/2 messages published to them
// while the client is away and delivers them when it comes back.
//
// What blocks the loop, exactly (libmosquitto 2.0.11's connect path:
// mosquitto_connect_bind_async -> mosquitto__reconnect -> net__socket_connect):
//   - the TCP connect does not: the socket is made non-blocking before
//     connect(2), which returns EINPROGRESS; the CONNECT packet waits for the
//     socket to become writable. The TLS handshake does not either (SSL_connect
//     on the non-blocking socket, continued by mosquitto_loop_read/write).
//   - name resolution would (getaddrinfo inside libmosquitto). For mqtt://
//     with a host name the client resolves it first with uv_getaddrinfo (the
//     libuv thread pool) and hands libmosquitto the address. For mqtts:// it
//     does not: libmosquitto checks the broker's certificate against the host
//     it was given, so it must get the name, and its getaddrinfo runs on the
//     loop (a slow resolver stalls the daemon for that long; an address or a
//     name in /etc/hosts costs nothing). IP literals never block.
//   - loading the CA file and the client certificate at each TLS connect
//     (small local files) and connecting a unix socket (immediate).
//
// Publishing while not connected: libmosquitto 2.0.11's mosquitto_publish_v5
// returns MOSQ_ERR_NO_CONN for a QoS 1/2 message yet keeps it in its
// unbounded outgoing list to resend after the next connect (and drops QoS 0).
// The client does not rely on that: until the broker accepted the connection
// (CONNACK), a QoS 1/2 publish waits in the client's own queue of at most
// kMaxOffline messages (the oldest dropped, counted by dropped()), sent in
// order once connected; a QoS 0 publish is refused. Messages already handed
// to libmosquitto when a connection drops are resent by it after the next
// connect (MQTT's in-flight retry).

#include <uv.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/result.h"
#include "picoflowd/util/uv_handle.h"
#include "protocol/broker_url.h"

struct mosquitto;
struct mosquitto_message;
struct mqtt5__property;

namespace picoflow {

struct MosquittoLib;

/// How to reach the broker and what the connection carries.
struct MqttOptions {
  std::string url;        ///< mqtt://host[:port], mqtts://host[:port], unix:///path (broker_url.h)
  std::string client_id;  ///< required: the persistent session is the broker's by this id
  std::string username;   ///< empty: none
  std::string password;   ///< the secret itself (the caller reads its file)
  std::string ca_file;    ///< mqtts: the CA the broker's certificate must chain to (required)
  std::string cert_file;  ///< mqtts: optional client certificate ...
  std::string key_file;   ///< ... and its key (both or neither)
  int keepalive_s = 60;   ///< 5..65535
  std::uint32_t session_expiry_s = 7 * 86400;  ///< how long the broker keeps the session
  /// Published by the broker when the connection dies without DISCONNECT.
  struct Will {
    std::string topic, payload;
    int qos = 1;
    bool retain = true;
  };
  std::optional<Will> will;
};

/// A message the broker delivered.
struct MqttMessage {
  std::string topic, payload;
  int qos = 0;
  bool retain = false;
  std::string response_topic;    ///< MQTT 5 response topic; empty if none
  std::string correlation_data;  ///< MQTT 5 correlation data (bytes); empty if none
};

/// A message to publish.
struct MqttPublish {
  std::string topic, payload;
  int qos = 1;
  bool retain = false;
  std::string response_topic;          ///< empty: none
  std::string correlation_data;        ///< empty: none
  std::uint32_t message_expiry_s = 0;  ///< 0: never expires
};

/// The client: owns its libmosquitto instance and its uv handles.
class MqttClient {
 public:
  /// QoS 1/2 publishes kept while not connected; beyond it the oldest goes.
  static constexpr std::size_t kMaxOffline = 256;

  /// Loads libmosquitto and sets the client up (url, credentials, TLS files,
  /// will, CONNECT properties); connects nothing yet. Returns kUnavailable if
  /// the library cannot be loaded, kInvalid for a bad url, an empty client
  /// id, a keepalive out of range, mqtts without a CA file, a cert without
  /// its key, a bad will, or TLS files libmosquitto cannot open.
  static Result<std::unique_ptr<MqttClient>> Create(uv_loop_t* loop, MqttOptions options);

  /// Closes the handles and the connection without DISCONNECT (the broker
  /// publishes the will): call Stop first for a clean end. Never from inside
  /// one of the client's own callbacks.
  ~MqttClient();
  MqttClient(const MqttClient&) = delete;
  MqttClient& operator=(const MqttClient&) = delete;

  /// Connects, and from then on reconnects whenever the connection is lost
  /// or an attempt fails: after 1 s, doubling to 60 s, each delay ±20%; back
  /// to 1 s after a connection the broker accepted. Once only.
  void Start();

  /// Subscribes to `filter` (a topic filter; `$share/GROUP/...` for a shared
  /// subscription) at `qos`. Remembered: sent now if connected, and at each
  /// connect the broker's session does not already hold it. An invalid
  /// filter or qos is logged and ignored.
  void Subscribe(std::string filter, int qos);

  /// Forgets a subscription: unsubscribed now if connected, else at the
  /// next connect (the broker's session may still hold it).
  void Unsubscribe(const std::string& filter);

  /// Publishes `message` now if connected; otherwise keeps a QoS 1/2 message
  /// for the next connect (bounded, see above; its message expiry counts the
  /// time it waited). Returns kInvalid for a bad topic or qos,
  /// kUnavailable for a QoS 0 message while not connected or after Stop,
  /// kIo if libmosquitto refused it.
  Status Publish(MqttPublish message);

  /// Ends the client: waits (2 s at most) for the broker to acknowledge the
  /// QoS 1/2 publishes in flight, sends DISCONNECT when a connection is open
  /// (so the will is not published; 2 s more at most for it to be written),
  /// stops reconnecting, closes the handles, then calls `done` on a later
  /// loop turn (never inside Stop). The client may be destroyed from `done`.
  /// Publishes still queued offline are dropped (counted by dropped()).
  void Stop(std::function<void()> done);

  /// True between the broker's CONNACK and the connection's end.
  bool connected() const { return state_ == State::kConnected; }
  /// True once the broker granted `filter` in the current session.
  bool subscribed(std::string_view filter) const;
  /// Publishes dropped from the full offline queue (or expired in it).
  std::uint64_t dropped() const { return dropped_; }

  /// Tests only: shuts the socket down without DISCONNECT, as a crash or a
  /// lost network would; the broker publishes the will, the client reconnects.
  void AbortConnectionForTest();

  /// Each message the broker delivers. Must not destroy the client.
  std::function<void(const MqttMessage&)> on_message;
  /// (true, "") when the broker accepted a connection; (false, why) when one
  /// ends or an attempt fails (once per attempt). Must not destroy the client.
  std::function<void(bool connected, const std::string& why)> on_connection;

 private:
  static constexpr std::size_t kMaxPayload = 268435455;  // MQTT's largest remaining length
  static constexpr std::size_t kMaxString = 65535;       // MQTT's strings and binary data

  enum class State { kIdle, kResolving, kConnecting, kConnected, kWaiting, kStopping, kStopped };
  struct Subscription {
    std::string filter;
    int qos = 0;
    int mid = 0;           // of the SUBSCRIBE in flight, 0 if none
    bool granted = false;  // held by the broker's session
  };
  struct Queued {
    MqttPublish message;
    std::uint64_t queued_at_ms = 0;  // uv_now when it was queued
  };

  MqttClient(uv_loop_t* loop, const MosquittoLib* lib, MqttOptions options, BrokerUrl url);
  Status Configure();
  Status StoreConnectProperties();

  // The connection's life: one attempt (resolve, connect), its end, the next.
  void Attempt();
  void Resolve();
  void OnResolved(int status, struct addrinfo* res);
  void Connect(const std::string& host);
  void OnConnack(int reason, bool session_present);
  void OnConnectionLost(const std::string& why);
  void ScheduleRetry();
  void OnTimer();
  void SendDisconnect();
  void FinishStop();

  // Driving libmosquitto from the loop.
  void OnPoll(int status, int events);
  void AfterLibCall(int rc);
  void UpdatePoll();
  void ClosePoll();
  void OnMiscTimer();

  void SendSubscription(Subscription& sub);
  Status SendPublish(const MqttPublish& message, std::uint32_t expiry_s);
  void FlushOffline();
  void Deliver(const mosquitto_message* msg, const mqtt5__property* props);
  void Report(bool up, const std::string& why);
  std::string LibError(int rc) const;

  // The C callbacks: each finds its client in `obj` and guards its body.
  static void ConnectCb(mosquitto* mosq, void* obj, int rc, int flags,
                        const mqtt5__property* props) noexcept;
  static void DisconnectCb(mosquitto* mosq, void* obj, int rc,
                           const mqtt5__property* props) noexcept;
  static void MessageCb(mosquitto* mosq, void* obj, const mosquitto_message* msg,
                        const mqtt5__property* props) noexcept;
  static void PublishCb(mosquitto* mosq, void* obj, int mid, int reason,
                        const mqtt5__property* props) noexcept;
  static void SubscribeCb(mosquitto* mosq, void* obj, int mid, int count, const int* granted,
                          const mqtt5__property* props) noexcept;
  static void LogCb(mosquitto* mosq, void* obj, int level, const char* text) noexcept;
  static void ResolvedCb(uv_getaddrinfo_t* req, int status, struct addrinfo* res) noexcept;

  uv_loop_t* loop_;
  const MosquittoLib* lib_;
  MqttOptions options_;
  BrokerUrl url_;
  mosquitto* mosq_ = nullptr;
  State state_ = State::kIdle;

  std::unique_ptr<UvHandle<uv_poll_t>> poll_;  // on the current socket; remade per connect
  int poll_events_ = 0;
  UvHandle<uv_timer_t> misc_timer_;  // keepalive: mosquitto_loop_misc while connected
  UvHandle<uv_timer_t> timer_;       // the next attempt, a connect's deadline, Stop's end
  uv_getaddrinfo_t* resolving_ = nullptr;
  std::size_t next_address_ = 0;  // rotates over a name's addresses across attempts

  std::uint64_t backoff_ms_ = 0;
  std::string lost_why_;   // what libmosquitto said when it closed the socket
  std::string lib_error_;  // the first error libmosquitto logged in this attempt
  std::vector<Subscription> subscriptions_;
  std::set<std::string> pending_unsubscribes_;  // to send at the next connect
  std::deque<Queued> offline_;
  std::uint64_t dropped_ = 0;
  std::set<int> unacked_;    // mids of QoS 1/2 publishes the broker has not acknowledged
  bool await_read_ = false;  // a TLS handshake waits for the broker (see OnPoll)
  bool disconnect_sent_ = false;
  std::function<void()> stop_done_;
};

}  // namespace picoflow
