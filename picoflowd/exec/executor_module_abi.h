#pragma once
// The C ABI between picoflowd and an executor module (picoflow-http.so, picoflow-ssh.so): the
// one exported factory symbol, the host table the daemon hands it, and the
// layout check that refuses a module built from other headers.
//
// The factory returns a C++ Executor*; daemon and module must therefore be
// built by the same compiler from the same headers. kModuleAbiVersion and
// the struct sizes in PicoflowModuleHost catch a stale module.

#include <uv.h>

#include <cstddef>
#include <cstdint>

#include "common/workflow.h"
#include "picoflowd/exec/executor.h"
#include "picoflowd/exec/request_sender.h"

/// Bump on any incompatible change to this file, executor.h, request_sender.h
/// or common/workflow.h.
inline constexpr std::uint32_t kPicoflowModuleAbiVersion = 3;

/// The http module's file name and its factory's symbol.
inline constexpr char kHttpModuleFile[] = "picoflow-http.so";
inline constexpr char kHttpFactorySymbol[] = "picoflow_http_executor_create";
/// The http module's other factory: the RequestSender of notifications.
inline constexpr char kHttpSenderSymbol[] = "picoflow_http_sender_create";

/// The ssh module's file name and its factory's symbol.
inline constexpr char kSshModuleFile[] = "picoflow-ssh.so";
inline constexpr char kSshFactorySymbol[] = "picoflow_ssh_executor_create";

/// A task type whose executor lives in a module. In a build tree the module
/// is built in picoflowd/exec/<type name>/ (its own meson.build).
struct ExecutorModuleSpec {
  picoflow::TaskType type;
  const char* file;
  const char* factory_symbol;
};

/// Every executor module, one entry per task type that has one.
inline constexpr ExecutorModuleSpec kExecutorModules[] = {
    {picoflow::TaskType::kSsh, kSshModuleFile, kSshFactorySymbol},
    {picoflow::TaskType::kHttp, kHttpModuleFile, kHttpFactorySymbol},
};

extern "C" {

/// What the daemon gives a module: everything the module needs from it, so the
/// module links no daemon symbol.
struct PicoflowModuleHost {
  std::uint32_t abi_version;
  std::uint32_t sizeof_task;
  std::uint32_t sizeof_attempt_spec;
  std::uint32_t sizeof_attempt_result;
  std::uint32_t sizeof_outbound_request;
  /// The daemon's error log (module-internal failures only; never secrets).
  /// Never null; never throws.
  void (*log_error)(const char* message);
};

/// The factory a module exports. Returns a new executor whose attempts run on
/// `loop`, or null with a message in `error` (NUL-terminated, truncated to
/// `error_size`) when the host's ABI differs or the module cannot start.
/// The caller owns the executor; it must be destroyed before the loop closes.
/// Never throws.
using PicoflowExecutorFactory = picoflow::Executor* (*)(const PicoflowModuleHost* host,
                                                        uv_loop_t* loop, char* error,
                                                        std::size_t error_size);

/// The http module's sender factory (kHttpSenderSymbol): as the executor
/// factory, for a RequestSender.
using PicoflowSenderFactory = picoflow::RequestSender* (*)(const PicoflowModuleHost* host,
                                                           uv_loop_t* loop, char* error,
                                                           std::size_t error_size);
}

/// The host table with this build's ABI version and layouts.
inline PicoflowModuleHost MakeModuleHost(void (*log_error)(const char*)) {
  return PicoflowModuleHost{kPicoflowModuleAbiVersion,
                            static_cast<std::uint32_t>(sizeof(picoflow::Task)),
                            static_cast<std::uint32_t>(sizeof(picoflow::AttemptSpec)),
                            static_cast<std::uint32_t>(sizeof(picoflow::AttemptResult)),
                            static_cast<std::uint32_t>(sizeof(picoflow::OutboundRequest)),
                            log_error};
}

/// True if `host` was built with the same ABI version and layouts as the caller.
inline bool SameModuleAbi(const PicoflowModuleHost& host) {
  const PicoflowModuleHost mine = MakeModuleHost(nullptr);
  return host.abi_version == mine.abi_version && host.sizeof_task == mine.sizeof_task &&
         host.sizeof_attempt_spec == mine.sizeof_attempt_spec &&
         host.sizeof_attempt_result == mine.sizeof_attempt_result &&
         host.sizeof_outbound_request == mine.sizeof_outbound_request;
}
