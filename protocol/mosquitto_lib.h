#pragma once
// MosquittoLib: the functions of libmosquitto (Debian's libmosquitto1, 2.x)
// the MQTT client uses. The library is loaded with dlopen the first time a
// client is made, so a daemon without MQTT maps none of it and picoflowd
// links nothing for it (docs/architecture.md, "The layers"). <mosquitto.h>
// gives only the types and constants.

#include <mosquitto.h>

#include "common/result.h"

namespace picoflow {

/// The functions of libmosquitto the client calls, resolved by name.
struct MosquittoLib {
  int (*lib_version)(int* major, int* minor, int* revision) = nullptr;
  struct mosquitto* (*create)(const char* id, bool clean_session, void* obj) = nullptr;
  void (*destroy)(struct mosquitto* mosq) = nullptr;
  int (*int_option)(struct mosquitto* mosq, enum mosq_opt_t option, int value) = nullptr;
  int (*username_pw_set)(struct mosquitto* mosq, const char* username,
                         const char* password) = nullptr;
  int (*will_set_v5)(struct mosquitto* mosq, const char* topic, int payloadlen, const void* payload,
                     int qos, bool retain, mosquitto_property* properties) = nullptr;
  int (*tls_set)(struct mosquitto* mosq, const char* cafile, const char* capath,
                 const char* certfile, const char* keyfile,
                 int (*pw_callback)(char* buf, int size, int rwflag, void* userdata)) = nullptr;
  int (*connect_bind_v5)(struct mosquitto* mosq, const char* host, int port, int keepalive,
                         const char* bind_address, const mosquitto_property* properties) = nullptr;
  int (*connect_bind_async)(struct mosquitto* mosq, const char* host, int port, int keepalive,
                            const char* bind_address) = nullptr;
  int (*disconnect_v5)(struct mosquitto* mosq, int reason_code,
                       const mosquitto_property* properties) = nullptr;
  int (*publish_v5)(struct mosquitto* mosq, int* mid, const char* topic, int payloadlen,
                    const void* payload, int qos, bool retain,
                    const mosquitto_property* properties) = nullptr;
  int (*subscribe_v5)(struct mosquitto* mosq, int* mid, const char* sub, int qos, int options,
                      const mosquitto_property* properties) = nullptr;
  int (*loop_read)(struct mosquitto* mosq, int max_packets) = nullptr;
  int (*loop_write)(struct mosquitto* mosq, int max_packets) = nullptr;
  int (*loop_misc)(struct mosquitto* mosq) = nullptr;
  int (*socket)(struct mosquitto* mosq) = nullptr;
  bool (*want_write)(struct mosquitto* mosq) = nullptr;
  void (*connect_v5_callback_set)(struct mosquitto* mosq,
                                  void (*cb)(struct mosquitto*, void*, int, int,
                                             const mosquitto_property*)) = nullptr;
  void (*disconnect_v5_callback_set)(struct mosquitto* mosq,
                                     void (*cb)(struct mosquitto*, void*, int,
                                                const mosquitto_property*)) = nullptr;
  void (*message_v5_callback_set)(struct mosquitto* mosq,
                                  void (*cb)(struct mosquitto*, void*,
                                             const struct mosquitto_message*,
                                             const mosquitto_property*)) = nullptr;
  void (*publish_v5_callback_set)(struct mosquitto* mosq,
                                  void (*cb)(struct mosquitto*, void*, int, int,
                                             const mosquitto_property*)) = nullptr;
  void (*subscribe_v5_callback_set)(struct mosquitto* mosq,
                                    void (*cb)(struct mosquitto*, void*, int, int, const int*,
                                               const mosquitto_property*)) = nullptr;
  void (*log_callback_set)(struct mosquitto* mosq,
                           void (*cb)(struct mosquitto*, void*, int, const char*)) = nullptr;
  int (*property_add_int32)(mosquitto_property** list, int identifier, uint32_t value) = nullptr;
  int (*property_add_string)(mosquitto_property** list, int identifier,
                             const char* value) = nullptr;
  int (*property_add_binary)(mosquitto_property** list, int identifier, const void* value,
                             uint16_t len) = nullptr;
  void (*property_free_all)(mosquitto_property** list) = nullptr;
  const mosquitto_property* (*property_read_string)(const mosquitto_property* list, int identifier,
                                                    char** value, bool skip_first) = nullptr;
  const mosquitto_property* (*property_read_binary)(const mosquitto_property* list, int identifier,
                                                    void** value, uint16_t* len,
                                                    bool skip_first) = nullptr;
  int (*pub_topic_check)(const char* topic) = nullptr;
  int (*sub_topic_check)(const char* topic) = nullptr;
  const char* (*strerror)(int mosq_errno) = nullptr;
  const char* (*reason_string)(int reason_code) = nullptr;
  int (*unsubscribe_v5)(struct mosquitto* mosq, int* mid, const char* sub,
                        const mosquitto_property* properties) = nullptr;
  /// libmosquitto's own blocking loop: picoflowctl's, never the daemon's.
  int (*loop)(struct mosquitto* mosq, int timeout, int max_packets) = nullptr;
};

/// A property list libmosquitto allocated, freed whatever happens.
struct MosquittoProperties {
  const MosquittoLib* lib;
  mosquitto_property* list = nullptr;
  ~MosquittoProperties() { lib->property_free_all(&list); }
};

/// Loads libmosquitto.so.1 once and calls mosquitto_lib_init (later calls
/// return the same table). Returns a kUnavailable Error naming the file and
/// the package to install (libmosquitto1) if it cannot be loaded, lacks a
/// function, or is not major version 2 (the version this code was read
/// against: its non-blocking connect and stored CONNECT properties).
Result<const MosquittoLib*> LoadMosquitto();

}  // namespace picoflow
