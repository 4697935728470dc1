#include "common/time_format.h"

#include <date/tz.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace picoflow {

namespace {

template <class Duration>
std::string Iso8601(std::chrono::sys_time<Duration> t, const date::time_zone* zone) {
  if (zone == nullptr) return date::format("%FT%TZ", t);
  return date::format("%FT%T%Ez", date::make_zoned(zone, t));
}

}  // namespace

const date::time_zone* LocalTimeZone() {
  // date::current_zone() reads /etc/localtime only; glibc's localtime (and so
  // the log lines) looks at $TZ first. Both must agree.
  const char* env = std::getenv("TZ");
  std::string name = env != nullptr ? env : "";
  if (!name.empty() && name[0] == ':') name.erase(0, 1);
  if (const std::size_t at = name.rfind("zoneinfo/"); at != std::string::npos) {
    name.erase(0, at + 9);
  }
  if (!name.empty()) {
    try {
      return date::locate_zone(name);
    } catch (const std::exception&) {
      // Not a tz database name (e.g. a POSIX rule like "JST-9"): /etc/localtime.
    }
  }
  return date::current_zone();
}

std::string FormatIso8601(std::chrono::sys_seconds t, const date::time_zone* zone) {
  return Iso8601(t, zone);
}

std::string FormatIso8601(std::chrono::sys_time<std::chrono::milliseconds> t,
                          const date::time_zone* zone) {
  return Iso8601(t, zone);
}

namespace {

// Maps a civil time in `zone` to an instant with the same DST policy as cron:
// the earliest of two, or the end of a gap.
std::chrono::sys_seconds FromLocal(date::local_seconds local, const date::time_zone* zone) {
  const date::local_info info = zone->get_info(local);
  switch (info.result) {
    case date::local_info::unique:
    case date::local_info::ambiguous:
      return std::chrono::sys_seconds{local.time_since_epoch() - info.first.offset};
    case date::local_info::nonexistent:
    default: return info.first.end;
  }
}

}  // namespace

Result<std::chrono::sys_seconds> ParseIso8601(std::string_view text, const date::time_zone* zone) {
  auto bad = [&] {
    return Err(ErrorCode::kInvalid, "'" + std::string(text) +
                                        "' is not an ISO 8601 time like 2026-03-29T01:30:00+01:00");
  };
  const std::string s(text);
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0, used = 0;
  char sep = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2d%n", &y, &mo, &d, &used) != 3 || used != 10) return bad();
  std::size_t pos = 10;
  if (pos < s.size()) {
    int n = 0;
    if (std::sscanf(s.c_str() + pos, "%c%2d:%2d%n", &sep, &h, &mi, &n) != 3 ||
        (sep != 'T' && sep != ' ') || n != 6) {
      return bad();
    }
    pos += n;
    if (pos < s.size() && s[pos] == ':') {
      if (std::sscanf(s.c_str() + pos, ":%2d%n", &sec, &n) != 1 || n != 3) return bad();
      pos += n;
    }
  }
  const date::year_month_day ymd{date::year{y}, date::month(mo), date::day(d)};
  if (!ymd.ok() || h > 23 || mi > 59 || sec > 60) return bad();
  const auto civil = date::local_days{ymd} + std::chrono::hours{h} + std::chrono::minutes{mi} +
                     std::chrono::seconds{sec};
  const std::string_view rest = std::string_view(s).substr(pos);
  if (rest.empty()) {
    if (zone == nullptr) return std::chrono::sys_seconds{civil.time_since_epoch()};
    return FromLocal(civil, zone);
  }
  if (rest == "Z" || rest == "z") return std::chrono::sys_seconds{civil.time_since_epoch()};
  int oh = 0, om = 0;
  char sign = 0;
  const std::string r(rest);
  int n = 0;
  if ((std::sscanf(r.c_str(), "%c%2d:%2d%n", &sign, &oh, &om, &n) != 3 || n != 6) &&
      (std::sscanf(r.c_str(), "%c%2d%2d%n", &sign, &oh, &om, &n) != 3 || n != 5)) {
    return bad();
  }
  if ((sign != '+' && sign != '-') || static_cast<std::size_t>(n) != r.size() || oh > 23 ||
      om > 59) {
    return bad();
  }
  const std::chrono::seconds offset = std::chrono::hours{oh} + std::chrono::minutes{om};
  return std::chrono::sys_seconds{civil.time_since_epoch() - (sign == '+' ? offset : -offset)};
}

}  // namespace picoflow
