#include "picoflowd/logging.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>

namespace picoflow {
namespace {

LogFormat g_format = LogFormat::kText;
bool g_journal = false;  // stderr is connected to journald (JOURNAL_STREAM)

// sd-daemon(3) priority prefix, so journald keeps the level of each line.
const char* SyslogPrefix(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
    case spdlog::level::debug: return "<7>";
    case spdlog::level::info: return "<6>";
    case spdlog::level::warn: return "<4>";
    case spdlog::level::err: return "<3>";
    case spdlog::level::critical: return "<2>";
    default: return "<6>";
  }
}

// True if stderr is the journal stream systemd told us about: JOURNAL_STREAM
// holds "DEVICE:INODE" of that stream.
bool StderrIsJournal() {
  const char* env = std::getenv("JOURNAL_STREAM");
  if (env == nullptr) return false;
  unsigned long long dev = 0, ino = 0;
  if (std::sscanf(env, "%llu:%llu", &dev, &ino) != 2) return false;
  struct stat st {};
  return fstat(STDERR_FILENO, &st) == 0 && st.st_dev == dev && st.st_ino == ino;
}

std::string JsonLine(spdlog::level::level_enum level, const LogFields& f, std::string_view msg) {
  nlohmann::json j;
  const auto now = std::chrono::system_clock::now();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch());
  j["ts"] = static_cast<double>(ms.count()) / 1000.0;
  j["level"] = std::string(spdlog::level::to_string_view(level).data(),
                           spdlog::level::to_string_view(level).size());
  j["msg"] = msg;
  if (!f.event.empty()) j["event"] = f.event;
  if (!f.workflow.empty()) j["workflow"] = f.workflow;
  if (f.run != 0) j["run"] = f.run;
  if (!f.task.empty()) j["task"] = f.task;
  if (f.attempt != 0) j["attempt"] = f.attempt;
  if (f.duration_ms) j["duration_ms"] = *f.duration_ms;
  if (f.exit_code) j["exit_code"] = *f.exit_code;
  // Invalid UTF-8 in a task name or message must not throw: replace it.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string TextLine(const LogFields& f, std::string_view msg) {
  std::string line(msg);
  auto add = [&line](std::string_view key, const std::string& value) {
    line += ' ';
    line += key;
    line += '=';
    line += value;
  };
  if (!f.workflow.empty()) add("workflow", std::string(f.workflow));
  if (f.run != 0) add("run", std::to_string(f.run));
  if (!f.task.empty()) add("task", std::string(f.task));
  if (f.attempt != 0) add("attempt", std::to_string(f.attempt));
  if (f.duration_ms) add("duration_ms", std::to_string(*f.duration_ms));
  if (f.exit_code) add("exit_code", std::to_string(*f.exit_code));
  return line;
}

}  // namespace

std::optional<LogFormat> ParseLogFormat(std::string_view text) {
  if (text == "text") return LogFormat::kText;
  if (text == "json") return LogFormat::kJson;
  return std::nullopt;
}

bool InitLogging(LogFormat format, std::string_view level) {
  const auto parsed = spdlog::level::from_str(std::string(level));
  if (parsed == spdlog::level::off && level != "off") return false;
  spdlog::drop("picoflowd");
  auto logger = spdlog::stderr_logger_st("picoflowd");
  spdlog::set_default_logger(logger);
  logger->set_level(parsed);
  // Under journald the journal timestamps and colours nothing: no time of our
  // own, a priority prefix instead (added per line in Log()).
  g_journal = StderrIsJournal();
  if (format == LogFormat::kJson || g_journal) {
    logger->set_pattern(g_journal && format == LogFormat::kText ? "%l %v" : "%v");
  } else {
    logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");
  }
  logger->flush_on(spdlog::level::trace);
  g_format = format;
  return true;
}

void Log(spdlog::level::level_enum level, const LogFields& fields, std::string_view message) {
  try {
    auto* logger = spdlog::default_logger_raw();
    if (!logger->should_log(level)) return;
    const std::string line = g_format == LogFormat::kJson ? JsonLine(level, fields, message)
                                                           : TextLine(fields, message);
    if (g_journal) {
      logger->log(level, "{}{}", SyslogPrefix(level), line);
    } else {
      logger->log(level, "{}", line);
    }
  } catch (...) {
    // Logging must never take the daemon down.
  }
}

}  // namespace picoflow
