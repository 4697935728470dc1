#include "picoflowctl/time_display.h"

#include <date/tz.h>

#include <cctype>
#include <exception>
#include <nlohmann/json.hpp>

#include "common/time_format.h"

namespace picoflow::ctl {
namespace {

bool display_utc = false;

}  // namespace

void SetDisplayUtc(bool utc) { display_utc = utc; }

std::string DisplayTime(std::chrono::sys_seconds t) {
  if (!display_utc) {
    try {
      return date::format("%F %T %Ez", date::make_zoned(LocalTimeZone(), t));
    } catch (const std::exception&) {
      // No local zone to be found: UTC, labelled as such.
    }
  }
  return date::format("%F %T UTC", t);
}

std::string DisplayTime(const nlohmann::json& t) {
  if (!t.is_string()) return "-";
  std::string text = t.get<std::string>();
  // Milliseconds are not shown: drop ".123" before the zone.
  if (text.size() > 19 && text[19] == '.') {
    std::size_t end = 20;
    while (end < text.size() && std::isdigit(static_cast<unsigned char>(text[end])) != 0) ++end;
    text.erase(19, end - 19);
  }
  auto parsed = ParseIso8601(text, nullptr);
  return parsed.ok() ? DisplayTime(*parsed) : t.get<std::string>();
}

}  // namespace picoflow::ctl
