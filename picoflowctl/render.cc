#include "picoflowctl/render.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <string_view>

#include "common/duration.h"
#include "common/run_selection.h"
#include "common/text_escape.h"
#include "picoflowctl/time_display.h"
#include "protocol/progress.h"

namespace picoflow::ctl {

bool UseColour(std::FILE* stream, bool allowed) {
  const char* no_colour = std::getenv("NO_COLOR");
  const char* term = std::getenv("TERM");
  return allowed && isatty(fileno(stream)) && (no_colour == nullptr || *no_colour == '\0') &&
         (term == nullptr || std::string_view(term) != "dumb");
}

namespace {

// Display width: bytes outside ANSI escape sequences (UTF-8 continuation bytes
// do not count, so names with accents line up too).
std::size_t VisibleWidth(const std::string& s) {
  std::size_t width = 0;
  bool escape = false;
  for (unsigned char c : s) {
    if (escape) {
      if (c == 'm') escape = false;
    } else if (c == 0x1b) {
      escape = true;
    } else if ((c & 0xC0) != 0x80) {
      ++width;
    }
  }
  return width;
}

constexpr std::size_t kMinLastColumn = 20;

}  // namespace

std::size_t TerminalWidth(std::FILE* stream) {
  winsize ws{};
  if (!isatty(fileno(stream)) || ioctl(fileno(stream), TIOCGWINSZ, &ws) != 0) return 0;
  return ws.ws_col > 0 ? ws.ws_col : 80;
}

std::string Shorten(const std::string& text, std::size_t width) {
  if (width == 0 || VisibleWidth(text) <= width) return text;
  std::string out;
  std::size_t used = 0;
  for (unsigned char c : text) {
    const bool starts_char = (c & 0xC0) != 0x80;
    if (starts_char && used + 1 >= width) break;  // room for the "…"
    if (starts_char) ++used;
    out += static_cast<char>(c);
  }
  return out + "\u2026";
}

void Table::Print(std::FILE* out, std::size_t width) const {
  std::vector<std::size_t> widths;
  for (const auto& row : rows_) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (std::size_t c = 0; c < row.size(); ++c) {
      widths[c] = std::max(widths[c], VisibleWidth(row[c]));
    }
  }
  // What is left of `width` for the last column after the others.
  std::size_t last = 0;
  if (width > 0 && !widths.empty()) {
    std::size_t before = 0;
    for (std::size_t c = 0; c + 1 < widths.size(); ++c) before += widths[c] + 2;
    last = width > before + kMinLastColumn ? width - before : kMinLastColumn;
  }
  for (const auto& row : rows_) {
    std::string line;
    for (std::size_t c = 0; c < row.size(); ++c) {
      line += c + 1 == widths.size() ? Shorten(row[c], last) : row[c];
      if (c + 1 < row.size()) line.append(widths[c] - VisibleWidth(row[c]) + 2, ' ');
    }
    line.erase(line.find_last_not_of(' ') + 1);  // an empty last cell leaves padding
    std::fprintf(out, "%s\n", line.c_str());
  }
}

std::string Str(const nlohmann::json& v) {
  if (v.is_null()) return "-";
  if (v.is_string()) return v.get<std::string>();
  return v.dump();
}

std::string Dur(const nlohmann::json& ms) {
  return ms.is_number() ? FormatElapsed(std::chrono::milliseconds(ms.get<long long>())) : "-";
}

std::string ShortTime(const nlohmann::json& t) { return DisplayTime(t); }

std::string FireTime(const nlohmann::json& t) { return DisplayTime(t); }

void PrintRunTable(const nlohmann::json& run, bool colour, std::size_t width) {
  std::printf("run %lld  %s  %s  trigger %s  started %s  duration %s\n",
              static_cast<long long>(run["id"].get<std::int64_t>()),
              run["workflow"].get<std::string>().c_str(),
              ColourStatus(run["status"].get<std::string>(), colour).c_str(),
              run["trigger"].get<std::string>().c_str(), ShortTime(run["started_at"]).c_str(),
              Dur(run["duration_ms"]).c_str());
  if (!run["error"].get<std::string>().empty()) {
    const std::string line = "error: " + run["error"].get<std::string>();
    std::printf("%s\n", Shorten(line, width).c_str());
  } else if (const std::string reason = run.value("reason", std::string()); !reason.empty()) {
    // Why it was recorded as it is: a skipped fire, a run queued behind
    // max_active_runs (docs/scheduling.md).
    std::printf("%s\n", Shorten("reason: " + reason, width).c_str());
  }
  // The values it was started with (docs/workflow-format.md, "Parameters").
  if (const auto params = run.value("params", nlohmann::json::object()); !params.empty()) {
    std::string line = "params:";
    for (const auto& [name, value] : params.items()) {
      line += "  " + name + "=" + EscapeControls(value.is_string() ? value.get<std::string>() : "");
    }
    std::printf("%s\n", Shorten(line, width).c_str());
  }
  // The tasks it was limited to (run --only).
  if (const auto only = run.value("only", nlohmann::json(nullptr)); only.is_object()) {
    RunSelection selection;
    for (const auto& t : only.value("tasks", nlohmann::json::array())) {
      selection.tasks.push_back(t.is_string() ? EscapeControls(t.get<std::string>()) : "");
    }
    const auto with = only.value("with", nlohmann::json(nullptr));
    selection.with = ParseSelectWith(with.is_string() ? with.get<std::string>() : "")
                         .value_or(SelectWith::kAlone);
    std::printf("%s\n", Shorten("only: " + DescribeSelection(selection), width).c_str());
  }
  bool reasons = false;
  for (const nlohmann::json& t : run["tasks"]) reasons = reasons || !t.value("error", "").empty();
  std::vector<std::string> header = {"TASK", "STATUS", "ATTEMPTS", "DURATION", "EXIT"};
  if (reasons) header.push_back("REASON");
  Table table(header);
  for (const nlohmann::json& t : run["tasks"]) {
    std::vector<std::string> row = {
        t["name"].get<std::string>(), ColourStatus(t["status"].get<std::string>(), colour),
        std::to_string(t["attempts"].get<int>()), Dur(t["duration_ms"]), Str(t["exit_code"])};
    if (reasons) row.push_back(t.value("error", ""));
    table.Add(std::move(row));
  }
  table.Print(stdout, reasons ? width : 0);
}

std::string StoreState(const nlohmann::json& store) {
  if (store.value("state", "ok") == "ok") return "ok";
  return "degraded (" + store.value("reason", std::string()) + ") since " +
         ShortTime(store.value("since", nlohmann::json(nullptr))) + ": " +
         Str(store.value("kept_changes", nlohmann::json(0))) +
         " changes of runs kept in memory until the disk has room; no new run starts meanwhile (" +
         store.value("error", std::string()) + ")";
}

}  // namespace picoflow::ctl
