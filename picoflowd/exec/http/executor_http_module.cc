// The entry point of picoflow-http.so: checks the daemon's ABI, initialises
// libcurl once, and makes the HttpExecutor. See executor_module_abi.h.

#include <curl/curl.h>

#include "picoflowd/exec/executor_module_entry.h"
#include "picoflowd/exec/http/executor_http.h"
#include "picoflowd/exec/http/request_sender_curl.h"

extern "C" __attribute__((visibility("default"))) picoflow::Executor* picoflow_http_executor_create(
    const PicoflowModuleHost* host, uv_loop_t* loop, char* error, std::size_t error_size) noexcept {
  return picoflow::CreateModuleExecutor<picoflow::HttpExecutor>(
      host, loop, error, error_size, []() -> const char* {
        const CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
        return rc == CURLE_OK ? nullptr : curl_easy_strerror(rc);
      });
}

// The export must keep the factory's signature.
[[maybe_unused]] static constexpr PicoflowExecutorFactory kFactoryCheck =
    &picoflow_http_executor_create;

// The sender of notifications (request_sender.h), on its own multi handle.
extern "C" __attribute__((visibility("default"))) picoflow::RequestSender*
picoflow_http_sender_create(const PicoflowModuleHost* host, uv_loop_t* loop, char* error,
                            std::size_t error_size) noexcept {
  return picoflow::CreateModuleExecutor<picoflow::CurlRequestSender, const char* (*)(),
                                        picoflow::RequestSender>(
      host, loop, error, error_size, []() -> const char* {
        const CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
        return rc == CURLE_OK ? nullptr : curl_easy_strerror(rc);
      });
}

[[maybe_unused]] static constexpr PicoflowSenderFactory kSenderFactoryCheck =
    &picoflow_http_sender_create;
