// The entry point of picoflow-http.so: checks the daemon's ABI, initialises
// libcurl once, and makes the HttpExecutor. See executor_module_abi.h.

#include <curl/curl.h>

#include <cstdio>
#include <exception>

#include "picoflowd/executor_http.h"
#include "picoflowd/executor_module_abi.h"

namespace {

void SetError(char* error, std::size_t size, const char* message) {
  if (error != nullptr && size > 0) std::snprintf(error, size, "%s", message);
}

}  // namespace

extern "C" __attribute__((visibility("default"))) picoflow::Executor* picoflow_http_executor_create(
    const PicoflowModuleHost* host, uv_loop_t* loop, char* error, std::size_t error_size) noexcept {
  if (host == nullptr || loop == nullptr || host->log_error == nullptr) {
    SetError(error, error_size, "no host table or loop given");
    return nullptr;
  }
  if (!SameModuleAbi(*host)) {
    SetError(error, error_size,
             "module ABI differs from the daemon's (module and daemon come from different builds)");
    return nullptr;
  }
  // Once per process; the module is never unloaded, so neither is libcurl.
  static const CURLcode global = curl_global_init(CURL_GLOBAL_DEFAULT);
  if (global != CURLE_OK) {
    SetError(error, error_size, curl_easy_strerror(global));
    return nullptr;
  }
  try {
    return new picoflow::HttpExecutor(loop, host->log_error);
  } catch (const std::exception& e) {
    SetError(error, error_size, e.what());
  } catch (...) {
    SetError(error, error_size, "unknown error");
  }
  return nullptr;
}

// The export must keep the factory's signature.
[[maybe_unused]] static constexpr PicoflowExecutorFactory kFactoryCheck = &picoflow_http_executor_create;
