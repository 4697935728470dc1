#pragma once
// Structured logging for picoflowd over spdlog: one line per event on stderr,
// either text for humans or JSON with stable field names (`ts`, `level`,
// `msg`, `event`, `workflow`, `run`, `task`, `attempt`, `duration_ms`,
// `exit_code`).

#include <spdlog/common.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"

namespace picoflow {

enum class LogFormat { kText, kJson };

/// Fields attached to a log line; empty/zero ones are left out.
struct LogFields {
  std::string_view event;  ///< a stable machine name: "run.started", "task.finished"
  std::string_view workflow;
  std::int64_t run = 0;
  std::string_view task;
  int attempt = 0;
  std::optional<std::int64_t> duration_ms;
  std::optional<int> exit_code;
};

/// Fields with only an event name: `LogWarn(LogEvent("rpc.server"), ...)`.
inline LogFields LogEvent(std::string_view event) {
  LogFields f;
  f.event = event;
  return f;
}

/// Sets up the default spdlog logger on stderr. Returns false and leaves the
/// previous setup if `level` does not name a level (trace debug info warn error).
bool InitLogging(LogFormat format, std::string_view level);

/// Parses "text" / "json".
std::optional<LogFormat> ParseLogFormat(std::string_view text);

/// Writes one line at `level` with `fields`. Never throws.
void Log(spdlog::level::level_enum level, const LogFields& fields, std::string_view message);

inline void LogInfo(const LogFields& f, std::string_view m) { Log(spdlog::level::info, f, m); }
inline void LogWarn(const LogFields& f, std::string_view m) { Log(spdlog::level::warn, f, m); }
inline void LogError(const LogFields& f, std::string_view m) { Log(spdlog::level::err, f, m); }
inline void LogDebug(const LogFields& f, std::string_view m) { Log(spdlog::level::debug, f, m); }

/// The one way to drop a failed Status: logs its message (after `what: ` if
/// given) at error level with `fields`. Returns s.ok().
bool LogIfFailed(const LogFields& fields, const Status& s, std::string_view what = {});

/// The daemon's log as a GuardCallback sink (util/callback_guard.h); set by
/// InitLogging. Never throws.
void LogCallbackError(const char* message) noexcept;

}  // namespace picoflow
