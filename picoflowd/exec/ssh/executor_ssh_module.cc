// The entry point of picoflow-ssh.so: checks the daemon's ABI, initialises
// libssh2 once, and makes the SshExecutor. See executor_module_abi.h.

#include <libssh2.h>

#include "picoflowd/exec/executor_module_entry.h"
#include "picoflowd/exec/ssh/executor_ssh.h"

extern "C" __attribute__((visibility("default"))) picoflow::Executor* picoflow_ssh_executor_create(
    const PicoflowModuleHost* host, uv_loop_t* loop, char* error, std::size_t error_size) noexcept {
  return picoflow::CreateModuleExecutor<picoflow::SshExecutor>(
      host, loop, error, error_size,
      []() -> const char* { return libssh2_init(0) == 0 ? nullptr : "libssh2_init failed"; });
}

// The export must keep the factory's signature.
[[maybe_unused]] static constexpr PicoflowExecutorFactory kFactoryCheck =
    &picoflow_ssh_executor_create;
