// The entry point of picoflow-ssh.so: checks the daemon's ABI, initialises
// libssh2 once, and makes the SshExecutor. See executor_module_abi.h.

#include <libssh2.h>

#include <cstdio>
#include <exception>

#include "picoflowd/executor_ssh.h"
#include "picoflowd/executor_module_abi.h"

namespace {

void SetError(char* error, std::size_t size, const char* message) {
  if (error != nullptr && size > 0) std::snprintf(error, size, "%s", message);
}

}  // namespace

extern "C" __attribute__((visibility("default"))) picoflow::Executor* picoflow_ssh_executor_create(
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
  // Once per process; the module is never unloaded, so neither is libssh2.
  static const int global = libssh2_init(0);
  if (global != 0) {
    SetError(error, error_size, "libssh2_init failed");
    return nullptr;
  }
  try {
    return new picoflow::SshExecutor(loop, host->log_error);
  } catch (const std::exception& e) {
    SetError(error, error_size, e.what());
  } catch (...) {
    SetError(error, error_size, "unknown error");
  }
  return nullptr;
}

// The export must keep the factory's signature.
[[maybe_unused]] static constexpr PicoflowExecutorFactory kFactoryCheck = &picoflow_ssh_executor_create;
