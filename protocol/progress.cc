#include "protocol/progress.h"

#include <chrono>

#include "common/duration.h"
#include "protocol/methods.h"

namespace picoflow {
namespace {

using nlohmann::json;

std::string Elapsed(const json& ms) {
  return FormatElapsed(std::chrono::milliseconds(ms.get<long long>()));
}

}  // namespace

std::string ColourStatus(const std::string& text, bool colour) {
  if (!colour) return text;
  const char* code = nullptr;
  if (text == "succeeded" || text == "reused" || text == "ok" || text == "valid")
    code = "32";
  else if (text == "failed" || text == "timed_out" || text == "interrupted" || text == "invalid")
    code = "31";
  else if (text == "running" || text == "cancelled" || text == "retrying")
    code = "33";
  else if (text == "skipped" || text == "pending")
    code = "2";
  if (code == nullptr) return text;
  return std::string("\x1b[") + code + "m" + text + "\x1b[0m";
}

std::string TaskEventLine(const json& e, bool colour) {
  const std::string event = e.value("event", "");
  std::string line = "[" + e.value("task", "") + "] " + event;
  if (event == task_event::kStarted) {
    line += " (attempt " + std::to_string(e.value("attempt", 0)) + ")";
  } else if (event == task_event::kFinished || event == task_event::kRetrying) {
    line += ": " + ColourStatus(e.value("status", ""), colour);
    if (e.contains("exit_code")) line += ", exit code " + std::to_string(e["exit_code"].get<int>());
    if (e.contains("signal")) line += ", signal " + std::to_string(e["signal"].get<int>());
    if (e.contains("duration_ms")) line += ", in " + Elapsed(e["duration_ms"]);
    if (e.contains("error")) line += " (" + e["error"].get<std::string>() + ")";
    if (e.contains("retry_in_ms")) line += "; retry in " + Elapsed(e["retry_in_ms"]);
  } else if (e.contains("error")) {  // skipped, cancelled: why
    line += " (" + e["error"].get<std::string>() + ")";
  }
  return line;
}

std::string RunProgress::Line(const json& e, bool colour) {
  const std::string event = e.value("event", "");
  if (event == task_event::kFinished || event == task_event::kSkipped ||
      event == task_event::kCancelled) {
    done_.insert(e.value("task", ""));
  }
  std::string line = TaskEventLine(e, colour);
  if (total_ > 0) {
    line += " [" + std::to_string(done_.size()) + "/" + std::to_string(total_) + " done]";
  }
  return line;
}

void OutputPrinter::Print(const std::string& task, bool is_stderr, const std::string& data) {
  if (!prefix_) {
    std::FILE* out = is_stderr ? stderr : out_;
    std::fwrite(data.data(), 1, data.size(), out);
    std::fflush(out);
    return;
  }
  const std::string key = task + (is_stderr ? " ! " : " | ");
  std::string out;
  // Another stream's line is open: end it so lines never interleave.
  if (!open_key_.empty() && open_key_ != key) out += "\n";
  bool at_start = open_key_ != key;
  for (char c : data) {
    if (at_start) {
      out += key;
      at_start = false;
    }
    out += c;
    if (c == '\n') at_start = true;
  }
  open_key_ = at_start ? "" : key;
  std::fwrite(out.data(), 1, out.size(), out_);
  std::fflush(out_);
}

void OutputPrinter::Finish() {
  if (!open_key_.empty()) std::fputs("\n", out_);
  open_key_.clear();
}

}  // namespace picoflow
