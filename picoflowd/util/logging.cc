#include "picoflowd/util/logging.h"

#include <spdlog/formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <nlohmann/json.hpp>

#include "common/text_escape.h"
#include "picoflowd/util/callback_guard.h"

namespace picoflow {
namespace {

LogFormat g_format = LogFormat::kText;
bool g_journal = false;  // stderr is connected to journald (JOURNAL_STREAM)
bool g_in_log = false;   // the line being written came through Log()

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

// One line whatever the message and the fields hold: a value from a workflow
// or a request cannot start a line of its own (EscapeControls). JSON lines
// need nothing more: JSON escapes control characters.
std::string TextLine(const LogFields& f, std::string_view msg) {
  std::string line = EscapeControls(msg);
  auto add = [&line](std::string_view key, std::string_view value) {
    line += ' ';
    line += key;
    line += '=';
    line += EscapeControls(value);
  };
  if (!f.workflow.empty()) add("workflow", f.workflow);
  if (f.run != 0) add("run", std::to_string(f.run));
  if (!f.task.empty()) add("task", f.task);
  if (f.attempt != 0) add("attempt", std::to_string(f.attempt));
  if (f.duration_ms) add("duration_ms", std::to_string(*f.duration_ms));
  if (f.exit_code) add("exit_code", std::to_string(*f.exit_code));
  return line;
}

// Formats every line the logger writes, whether it came through Log() (the
// text is already complete) or from a direct spdlog call elsewhere (wrapped
// here, so --log-format json never emits a plain line). Adds our timestamp
// on a terminal/file, or the journald priority prefix under systemd.
class LineFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const std::string_view payload(msg.payload.data(), msg.payload.size());
    std::string line;
    if (g_journal) line += SyslogPrefix(msg.level);
    if (g_format == LogFormat::kText) {
      if (!g_journal) line += TimeStamp(msg.time) + " ";
      const auto level = spdlog::level::to_string_view(msg.level);
      line.append(level.data(), level.size());
      line += ' ';
      line += g_in_log ? std::string(payload) : EscapeControls(payload);
    } else if (g_in_log) {
      line.append(payload);
    } else {
      line += JsonLine(msg.level, LogFields{}, payload);
    }
    line += '\n';
    dest.append(line.data(), line.data() + line.size());
  }

  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<LineFormatter>();
  }

 private:
  static std::string TimeStamp(spdlog::log_clock::time_point t) {
    const std::time_t secs = spdlog::log_clock::to_time_t(t);
    std::tm tm{};
    localtime_r(&secs, &tm);
    char buf[32];
    const std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()) % 1000;
    return std::string(buf, n) + "." + std::to_string(1000 + ms.count()).substr(1);
  }
};

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
  // Under journald the journal keeps the time: no timestamp of our own, a
  // priority prefix instead.
  g_journal = StderrIsJournal();
  g_format = format;
  logger->set_formatter(std::make_unique<LineFormatter>());
  logger->flush_on(spdlog::level::trace);
  callback_error_log = &LogCallbackError;
  return true;
}

bool LogIfFailed(const LogFields& fields, const Status& s, std::string_view what) {
  if (s.ok()) return true;
  LogError(fields, what.empty() ? s.error().message : std::string(what) + ": " + s.error().message);
  return false;
}

void LogCallbackError(const char* message) noexcept { LogError({}, message); }

void Log(spdlog::level::level_enum level, const LogFields& fields, std::string_view message) {
  try {
    auto* logger = spdlog::default_logger_raw();
    if (!logger->should_log(level)) return;
    const std::string line =
        g_format == LogFormat::kJson ? JsonLine(level, fields, message) : TextLine(fields, message);
    g_in_log = true;
    logger->log(level, "{}", line);
    g_in_log = false;
  } catch (...) {
    g_in_log = false;
    // Logging must never take the daemon down.
  }
}

}  // namespace picoflow
