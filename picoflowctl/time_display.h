#pragma once
// How picoflowctl prints an instant: every table and list in one zone, labelled.

#include <chrono>
#include <nlohmann/json_fwd.hpp>
#include <string>

namespace picoflow::ctl {

/// Chooses the zone of DisplayTime for the rest of the process: UTC with
/// `picoflowctl --utc`, else the local zone (LocalTimeZone: $TZ, else
/// /etc/localtime).
void SetDisplayUtc(bool utc);

/// `t` as every picoflowctl table prints it: `2026-12-06 11:00:00 +09:00` in
/// the local zone, `2026-12-06 02:00:00 UTC` with --utc. Falls back to UTC if
/// the local zone cannot be found.
std::string DisplayTime(std::chrono::sys_seconds t);

/// A time of an RPC answer or a `--json` field (`2026-11-27T03:40:00.123Z`,
/// `2026-11-27T04:40:00+01:00`) as DisplayTime prints it; "-" for null, and
/// the text unchanged if it does not parse.
std::string DisplayTime(const nlohmann::json& t);

}  // namespace picoflow::ctl
