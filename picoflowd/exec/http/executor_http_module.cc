// The entry point of picoflow-http.so: checks the daemon's ABI, initialises
// libcurl once, and makes the HttpExecutor. See executor_module_abi.h.

#include <curl/curl.h>

#include "picoflowd/exec/executor_module_entry.h"
#include "picoflowd/exec/http/executor_http.h"

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
