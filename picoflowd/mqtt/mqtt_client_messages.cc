// MqttClient's messages: subscriptions, publishes (and the queue of those
// made while offline), deliveries, and libmosquitto's callbacks about them.
// The connection's life is in mqtt_client.cc.

#include <mqtt_protocol.h>

#include <algorithm>
#include <cstdlib>

#include "common/text_escape.h"
#include "picoflowd/mqtt/mqtt_client.h"
#include "picoflowd/util/callback_guard.h"
#include "picoflowd/util/logging.h"
#include "protocol/mosquitto_lib.h"

namespace picoflow {

void MqttClient::Subscribe(std::string filter, int qos) {
  if (qos < 0 || qos > 2 || lib_->sub_topic_check(filter.c_str()) != MOSQ_ERR_SUCCESS ||
      filter.size() > kMaxString) {
    LogWarn(LogEvent("mqtt.subscribe"), "not a valid subscription: '" + EscapeControls(filter) +
                                            "' at QoS " + std::to_string(qos));
    return;
  }
  pending_unsubscribes_.erase(filter);  // wanted again before it was sent
  auto it = std::find_if(subscriptions_.begin(), subscriptions_.end(),
                         [&](const Subscription& s) { return s.filter == filter; });
  if (it == subscriptions_.end()) {
    subscriptions_.push_back(Subscription{std::move(filter), qos});
    it = subscriptions_.end() - 1;
  } else {
    it->qos = qos;
    it->granted = false;
  }
  if (state_ == State::kConnected) {
    SendSubscription(*it);
    AfterLibCall(MOSQ_ERR_SUCCESS);
  }
}

void MqttClient::Unsubscribe(const std::string& filter) {
  // Also a filter this client never subscribed to: a session the broker
  // kept from an earlier process may hold it (Fleet, docs/fleet.md).
  auto it = std::find_if(subscriptions_.begin(), subscriptions_.end(),
                         [&](const Subscription& s) { return s.filter == filter; });
  if (it != subscriptions_.end()) subscriptions_.erase(it);
  // Not connected: the broker's session may still hold it, so it is sent at
  // the next connect that finds the session present.
  if (state_ != State::kConnected) {
    pending_unsubscribes_.insert(filter);
    return;
  }
  const int rc = lib_->unsubscribe_v5(mosq_, nullptr, filter.c_str(), nullptr);
  if (rc != MOSQ_ERR_SUCCESS) {
    pending_unsubscribes_.insert(filter);
    LogWarn(LogEvent("mqtt.subscribe"),
            "cannot unsubscribe from '" + EscapeControls(filter) + "': " + LibError(rc));
  }
  AfterLibCall(MOSQ_ERR_SUCCESS);
}

void MqttClient::SendSubscription(Subscription& sub) {
  int mid = 0;
  const int rc = lib_->subscribe_v5(mosq_, &mid, sub.filter.c_str(), sub.qos, 0, nullptr);
  if (rc != MOSQ_ERR_SUCCESS) {
    LogWarn(LogEvent("mqtt.subscribe"),
            "cannot subscribe to '" + EscapeControls(sub.filter) + "': " + LibError(rc));
    return;
  }
  sub.mid = mid;
}

bool MqttClient::subscribed(std::string_view filter) const {
  return std::any_of(subscriptions_.begin(), subscriptions_.end(),
                     [&](const Subscription& s) { return s.filter == filter && s.granted; });
}

Status MqttClient::Publish(MqttPublish message) {
  const std::string what = "mqtt publish to '" + EscapeControls(message.topic) + "': ";
  if (message.qos < 0 || message.qos > 2) return Err(ErrorCode::kInvalid, what + "QoS is 0-2");
  if (message.topic.size() > kMaxString ||
      lib_->pub_topic_check(message.topic.c_str()) != MOSQ_ERR_SUCCESS) {
    return Err(ErrorCode::kInvalid, what + "not a topic to publish to");
  }
  if (!message.response_topic.empty() &&
      (message.response_topic.size() > kMaxString ||
       lib_->pub_topic_check(message.response_topic.c_str()) != MOSQ_ERR_SUCCESS)) {
    return Err(ErrorCode::kInvalid, what + "the response topic is not a topic");
  }
  if (message.payload.size() > kMaxPayload || message.correlation_data.size() > kMaxString) {
    return Err(ErrorCode::kInvalid, what + "too big for MQTT");
  }
  if (state_ == State::kStopping || state_ == State::kStopped) {
    return Err(ErrorCode::kUnavailable, what + "the client is stopped");
  }
  if (state_ == State::kConnected) {
    Status s = SendPublish(message, message.message_expiry_s);
    AfterLibCall(MOSQ_ERR_SUCCESS);
    return s;
  }
  if (message.qos == 0) return Err(ErrorCode::kUnavailable, what + "not connected (QoS 0)");
  if (offline_.size() >= kMaxOffline) {
    offline_.pop_front();
    ++dropped_;
    if ((dropped_ & (dropped_ - 1)) == 0) {  // the 1st, 2nd, 4th, 8th...: a line, not a flood
      LogWarn(LogEvent("mqtt.dropped"), "not connected and " + std::to_string(kMaxOffline) +
                                            " publishes waiting: dropped the oldest (" +
                                            std::to_string(dropped_) + " so far)");
    }
  }
  offline_.push_back(Queued{std::move(message), uv_now(loop_)});
  return {};
}

Status MqttClient::SendPublish(const MqttPublish& message, std::uint32_t expiry_s) {
  MosquittoProperties props{lib_};
  int rc = MOSQ_ERR_SUCCESS;
  if (!message.response_topic.empty()) {
    rc = lib_->property_add_string(&props.list, MQTT_PROP_RESPONSE_TOPIC,
                                   message.response_topic.c_str());
  }
  if (rc == MOSQ_ERR_SUCCESS && !message.correlation_data.empty()) {
    rc = lib_->property_add_binary(&props.list, MQTT_PROP_CORRELATION_DATA,
                                   message.correlation_data.data(),
                                   static_cast<std::uint16_t>(message.correlation_data.size()));
  }
  if (rc == MOSQ_ERR_SUCCESS && expiry_s > 0) {
    rc = lib_->property_add_int32(&props.list, MQTT_PROP_MESSAGE_EXPIRY_INTERVAL, expiry_s);
  }
  int mid = 0;
  if (rc == MOSQ_ERR_SUCCESS) {
    rc = lib_->publish_v5(mosq_, &mid, message.topic.c_str(),
                          static_cast<int>(message.payload.size()), message.payload.data(),
                          message.qos, message.retain, props.list);
  }
  if (rc != MOSQ_ERR_SUCCESS) {
    return Err(ErrorCode::kIo,
               "mqtt publish to '" + EscapeControls(message.topic) + "': " + LibError(rc));
  }
  if (message.qos > 0) unacked_.insert(mid);
  return {};
}

// The publishes kept while offline, oldest first; an expired one is dropped.
void MqttClient::FlushOffline() {
  const std::uint64_t now = uv_now(loop_);
  while (!offline_.empty() && state_ == State::kConnected) {
    Queued q = std::move(offline_.front());
    offline_.pop_front();
    std::uint32_t expiry = q.message.message_expiry_s;
    if (expiry > 0) {
      const std::uint64_t waited_s = (now - q.queued_at_ms) / 1000;
      if (waited_s >= expiry) {
        ++dropped_;
        continue;
      }
      expiry -= static_cast<std::uint32_t>(waited_s);
    }
    LogIfFailed(LogEvent("mqtt.publish"), SendPublish(q.message, expiry), "a queued publish");
  }
}

void MqttClient::Deliver(const mosquitto_message* msg, const mosquitto_property* props) {
  if (!on_message || state_ == State::kStopped) return;
  MqttMessage m;
  m.topic = msg->topic != nullptr ? msg->topic : "";
  if (msg->payload != nullptr && msg->payloadlen > 0) {
    m.payload.assign(static_cast<const char*>(msg->payload),
                     static_cast<std::size_t>(msg->payloadlen));
  }
  m.qos = msg->qos;
  m.retain = msg->retain;
  char* topic = nullptr;
  if (lib_->property_read_string(props, MQTT_PROP_RESPONSE_TOPIC, &topic, false) != nullptr &&
      topic != nullptr) {
    m.response_topic = topic;
  }
  std::free(topic);  // libmosquitto's allocation: "must be free()'d by the application"
  void* data = nullptr;
  std::uint16_t len = 0;
  if (lib_->property_read_binary(props, MQTT_PROP_CORRELATION_DATA, &data, &len, false) !=
          nullptr &&
      data != nullptr) {
    m.correlation_data.assign(static_cast<const char*>(data), len);
  }
  std::free(data);
  on_message(m);
}

void MqttClient::MessageCb(mosquitto*, void* obj, const mosquitto_message* msg,
                           const mosquitto_property* props) noexcept {
  auto* self = static_cast<MqttClient*>(obj);
  GuardCallback("mqtt: a message", [&] { self->Deliver(msg, props); });
}

void MqttClient::PublishCb(mosquitto*, void* obj, int mid, int reason,
                           const mosquitto_property*) noexcept {
  auto* self = static_cast<MqttClient*>(obj);
  GuardCallback("mqtt: PUBACK", [&] {
    self->unacked_.erase(mid);
    if (reason >= 0x80) {
      LogWarn(LogEvent("mqtt.publish"),
              std::string("the broker refused a publish: ") + self->lib_->reason_string(reason));
    }
  });
}

void MqttClient::SubscribeCb(mosquitto*, void* obj, int mid, int count, const int* granted,
                             const mosquitto_property*) noexcept {
  auto* self = static_cast<MqttClient*>(obj);
  GuardCallback("mqtt: SUBACK", [&] {
    for (auto& sub : self->subscriptions_) {
      if (sub.mid != mid || mid == 0) continue;
      sub.mid = 0;
      // A granted QoS of 0x80 or more is the broker's refusal (not
      // authorised, shared subscriptions not supported...).
      sub.granted = count >= 1 && granted[0] < 0x80;
      if (!sub.granted) {
        LogWarn(LogEvent("mqtt.subscribe"),
                "the broker refused the subscription '" + EscapeControls(sub.filter) +
                    "': " + (count >= 1 ? self->lib_->reason_string(granted[0]) : "no reason"));
      }
    }
  });
}

}  // namespace picoflow
