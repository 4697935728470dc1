#pragma once
// CreateModuleExecutor: the body every executor module's exported factory
// shares — check the host table and ABI, initialise the module's library
// once, construct the executor — so each module only names its library's
// init and its Executor type. Included by module entry points only.

#include <cstdio>
#include <exception>

#include "picoflowd/exec/executor_module_abi.h"
#include "picoflowd/util/callback_guard.h"

namespace picoflow {

/// `init` is called once per process (the module is never unloaded) and
/// returns null on success or a message. `E(loop, host->log_error)` is the
/// executor (or, with `Base` RequestSender, the sender). Returns null with
/// `error` filled if anything fails; never throws.
template <class E, class Init, class Base = Executor>
Base* CreateModuleExecutor(const PicoflowModuleHost* host, uv_loop_t* loop, char* error,
                           std::size_t error_size, Init init) noexcept {
  auto fail = [&](const char* message) -> Base* {
    if (error != nullptr && error_size > 0) std::snprintf(error, error_size, "%s", message);
    return nullptr;
  };
  if (host == nullptr || loop == nullptr || host->log_error == nullptr) {
    return fail("no host table or loop given");
  }
  if (!SameModuleAbi(*host)) {
    return fail(
        "module ABI differs from the daemon's (module and daemon come from different builds)");
  }
  // What this module's callbacks stop goes to the daemon's log.
  callback_error_log = host->log_error;
  static const char* const init_error = init();
  if (init_error != nullptr) return fail(init_error);
  try {
    return new E(loop, host->log_error);
  } catch (const std::exception& e) {
    return fail(e.what());
  } catch (...) {
    return fail("unknown error");
  }
}

}  // namespace picoflow
