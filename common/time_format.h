#pragma once
// ISO 8601 parsing and formatting of instants, in UTC or a time zone.

#include <chrono>
#include <string>
#include <string_view>

#include "common/result.h"

namespace date {
class time_zone;
}

namespace picoflow {

/// The one formatter of instants: `t` as `2026-03-29T03:00:00+02:00` in
/// `zone`, or `2026-03-29T01:00:00Z` in UTC (the default).
std::string FormatIso8601(std::chrono::sys_seconds t, const date::time_zone* zone = nullptr);
/// As above with milliseconds: `2026-11-27T03:40:00.123Z` (RPC replies).
std::string FormatIso8601(std::chrono::sys_time<std::chrono::milliseconds> t,
                          const date::time_zone* zone = nullptr);

/// The local time zone, as the C library's localtime (the daemon's log lines)
/// sees it: the zone `$TZ` names if it is set and names a zone of the tz
/// database (`Asia/Tokyo`, `:Asia/Tokyo`, or a path ending in
/// `zoneinfo/Asia/Tokyo`), else /etc/localtime (docs/workflow-format.md,
/// "Schedule"). Throws std::runtime_error if neither names a zone.
const date::time_zone* LocalTimeZone();

/// Parses `YYYY-MM-DDTHH:MM[:SS]` (or a space instead of `T`) followed by `Z`,
/// `+HH:MM`, `+HHMM`, or nothing; without an offset the civil time is taken in
/// `zone` (UTC if null; the earliest instant if ambiguous, the instant after
/// the gap if skipped). A bare date `YYYY-MM-DD` means its midnight.
/// Returns an Error (kInvalid) quoting the text if it does not parse.
Result<std::chrono::sys_seconds> ParseIso8601(std::string_view text, const date::time_zone* zone);

}  // namespace picoflow
