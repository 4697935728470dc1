// cron_oracle: answers next-fire queries for tests/cron_differential.py.
// Reads lines `EXPR<TAB>ZONE<TAB>UNIX_SECONDS` on stdin and prints, per line,
// the next fire strictly after that instant as unix seconds, `none` (nothing
// within 5 years) or `error: <message>` (bad expression or zone).

#include <charconv>
#include <chrono>
#include <iostream>
#include <map>
#include <string>
#include <string_view>

#include "common/cron.h"

namespace {

std::string Answer(std::string_view line, std::map<std::string, const date::time_zone*>& zones) {
  const std::size_t tab1 = line.find('\t');
  const std::size_t tab2 = tab1 == std::string_view::npos ? tab1 : line.find('\t', tab1 + 1);
  if (tab2 == std::string_view::npos) return "error: expected EXPR<TAB>ZONE<TAB>UNIX_SECONDS";
  const std::string zone_name(line.substr(tab1 + 1, tab2 - tab1 - 1));
  auto it = zones.find(zone_name);
  if (it == zones.end()) {
    picoflow::Result<const date::time_zone*> zone = picoflow::FindZone(zone_name);
    if (!zone) return "error: " + zone.error().message;
    it = zones.emplace(zone_name, *zone).first;
  }
  picoflow::Result<picoflow::CronExpr> expr = picoflow::CronExpr::Parse(line.substr(0, tab1));
  if (!expr) return "error: " + expr.error().message;
  const std::string_view seconds_text = line.substr(tab2 + 1);
  long long seconds = 0;
  const char* end = seconds_text.data() + seconds_text.size();
  if (std::from_chars(seconds_text.data(), end, seconds).ec != std::errc{}) {
    return "error: bad UNIX_SECONDS '" + std::string(seconds_text) + "'";
  }
  const picoflow::SysSeconds after{std::chrono::seconds{seconds}};
  const std::optional<picoflow::SysSeconds> next = expr->NextAfter(after, it->second);
  return next ? std::to_string(next->time_since_epoch().count()) : "none";
}

}  // namespace

int main() {
  std::ios::sync_with_stdio(false);
  std::map<std::string, const date::time_zone*> zones;
  std::string line;
  while (std::getline(std::cin, line)) std::cout << Answer(line, zones) << '\n';
  return 0;
}
