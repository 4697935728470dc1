#pragma once
// GuardCallback: the one guard of every C callback trampoline (libuv, curl,
// libssh2, sqlite): no exception crosses into C code, and none is dropped
// silently — each is reported, with where it was stopped, to the process's
// callback error log. Header-only: the executor modules use it too, with
// their host's log (docs/architecture.md).

#include <cstdio>
#include <exception>

namespace picoflow {

/// Receives one line per stopped exception. Must never throw.
using CallbackErrorLog = void (*)(const char* message);

/// The log GuardCallback reports to; null means stderr. Set once at start:
/// the daemon's error log (InitLogging), or in an executor module its
/// host's log_error (the module's factory). Each module has its own copy.
inline CallbackErrorLog callback_error_log = nullptr;

/// Reports an exception stopped at `where`: "WHERE: stopped an exception: WHAT".
inline void ReportCallbackException(const char* where, const char* what) noexcept {
  char line[512];
  std::snprintf(line, sizeof line, "%s: stopped an exception: %s", where, what);
  if (CallbackErrorLog log = callback_error_log) {
    log(line);
  } else {
    std::fprintf(stderr, "%s\n", line);
  }
}

/// Runs `body`, a callback's work, and stops any exception it throws,
/// reporting it with `where` ("rpc: reading a request"). Returns false if it
/// stopped one: the caller then undoes what the body left half done (closes
/// the connection, aborts the transfer).
template <class F>
bool GuardCallback(const char* where, F&& body) noexcept {
  try {
    body();
    return true;
  } catch (const std::exception& e) {
    ReportCallbackException(where, e.what());
  } catch (...) {
    ReportCallbackException(where, "an exception of unknown type");
  }
  return false;
}

}  // namespace picoflow
