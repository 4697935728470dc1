#include "protocol/mosquitto_lib.h"

#include <dlfcn.h>

#include <string>

namespace picoflow {
namespace {

constexpr const char* kLibrary = "libmosquitto.so.1";
constexpr const char* kPackage = "libmosquitto1";

template <class F>
bool Bind(void* handle, const char* name, F& slot) {
  slot = reinterpret_cast<F>(dlsym(handle, name));
  return slot != nullptr;
}

bool BindAll(void* handle, MosquittoLib& lib) {
  return Bind(handle, "mosquitto_lib_version", lib.lib_version) &&
         Bind(handle, "mosquitto_new", lib.create) &&
         Bind(handle, "mosquitto_destroy", lib.destroy) &&
         Bind(handle, "mosquitto_int_option", lib.int_option) &&
         Bind(handle, "mosquitto_username_pw_set", lib.username_pw_set) &&
         Bind(handle, "mosquitto_will_set_v5", lib.will_set_v5) &&
         Bind(handle, "mosquitto_tls_set", lib.tls_set) &&
         Bind(handle, "mosquitto_connect_bind_v5", lib.connect_bind_v5) &&
         Bind(handle, "mosquitto_connect_bind_async", lib.connect_bind_async) &&
         Bind(handle, "mosquitto_disconnect_v5", lib.disconnect_v5) &&
         Bind(handle, "mosquitto_publish_v5", lib.publish_v5) &&
         Bind(handle, "mosquitto_subscribe_v5", lib.subscribe_v5) &&
         Bind(handle, "mosquitto_loop_read", lib.loop_read) &&
         Bind(handle, "mosquitto_loop_write", lib.loop_write) &&
         Bind(handle, "mosquitto_loop_misc", lib.loop_misc) &&
         Bind(handle, "mosquitto_socket", lib.socket) &&
         Bind(handle, "mosquitto_want_write", lib.want_write) &&
         Bind(handle, "mosquitto_connect_v5_callback_set", lib.connect_v5_callback_set) &&
         Bind(handle, "mosquitto_disconnect_v5_callback_set", lib.disconnect_v5_callback_set) &&
         Bind(handle, "mosquitto_message_v5_callback_set", lib.message_v5_callback_set) &&
         Bind(handle, "mosquitto_publish_v5_callback_set", lib.publish_v5_callback_set) &&
         Bind(handle, "mosquitto_subscribe_v5_callback_set", lib.subscribe_v5_callback_set) &&
         Bind(handle, "mosquitto_log_callback_set", lib.log_callback_set) &&
         Bind(handle, "mosquitto_property_add_int32", lib.property_add_int32) &&
         Bind(handle, "mosquitto_property_add_string", lib.property_add_string) &&
         Bind(handle, "mosquitto_property_add_binary", lib.property_add_binary) &&
         Bind(handle, "mosquitto_property_free_all", lib.property_free_all) &&
         Bind(handle, "mosquitto_property_read_string", lib.property_read_string) &&
         Bind(handle, "mosquitto_property_read_binary", lib.property_read_binary) &&
         Bind(handle, "mosquitto_pub_topic_check", lib.pub_topic_check) &&
         Bind(handle, "mosquitto_sub_topic_check", lib.sub_topic_check) &&
         Bind(handle, "mosquitto_strerror", lib.strerror) &&
         Bind(handle, "mosquitto_unsubscribe_v5", lib.unsubscribe_v5) &&
         Bind(handle, "mosquitto_loop", lib.loop) &&
         Bind(handle, "mosquitto_reason_string", lib.reason_string);
}

Result<const MosquittoLib*> Load() {
  void* handle = dlopen(kLibrary, RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = dlerror();
    return Err(ErrorCode::kUnavailable, std::string("cannot load ") + kLibrary + " (" +
                                            (why != nullptr ? why : "unknown error") +
                                            "): install the package " + kPackage);
  }
  static MosquittoLib lib;
  int (*lib_init)() = nullptr;
  if (!BindAll(handle, lib) || !Bind(handle, "mosquitto_lib_init", lib_init)) {
    dlclose(handle);
    return Err(ErrorCode::kUnavailable, std::string(kLibrary) +
                                            " lacks a function picoflowd needs: install the "
                                            "package " +
                                            kPackage + " (version 2)");
  }
  int major = 0, minor = 0, revision = 0;
  lib.lib_version(&major, &minor, &revision);
  if (major != 2) {
    dlclose(handle);
    return Err(ErrorCode::kUnavailable,
               std::string(kLibrary) + " is version " + std::to_string(major) + "." +
                   std::to_string(minor) + "." + std::to_string(revision) +
                   ", picoflowd needs 2.x: install the package " + kPackage);
  }
  // Once per process, before any client (OpenSSL's setup among others); the
  // handle stays open for the process and mosquitto_lib_cleanup is never
  // called.
  if (int rc = lib_init(); rc != MOSQ_ERR_SUCCESS) {
    return Err(ErrorCode::kUnavailable,
               std::string(kLibrary) + ": mosquitto_lib_init failed (" + lib.strerror(rc) + ")");
  }
  return static_cast<const MosquittoLib*>(&lib);
}

}  // namespace

Result<const MosquittoLib*> LoadMosquitto() {
  static const Result<const MosquittoLib*> loaded = Load();
  return loaded;
}

}  // namespace picoflow
