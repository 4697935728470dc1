#pragma once
// Durations as written in workflow files: a whole number of seconds (`300`) or
// a string of number+unit parts from largest to smallest (`90s`, `5m`, `1h30m`,
// `2d12h`). Units: d, h, m, s. There is no sub-second unit: every duration in
// picoflow is a whole number of seconds.

#include <chrono>
#include <string>
#include <string_view>

#include "common/result.h"

namespace picoflow {

/// The largest duration accepted anywhere: 365 days. Keeps every later
/// addition to a time point far away from overflow.
inline constexpr std::chrono::seconds kMaxDuration{365LL * 24 * 3600};

/// Parses `300`, `90s`, `5m`, `1h30m`, `1d`, `2h`, `0`. Returns an Error
/// (kInvalid) with a message that quotes the text and says what is wrong if it
/// is empty, negative, has an unknown or repeated unit, units out of order
/// (`30m1h`), a sub-second unit (`500ms`), garbage, or exceeds kMaxDuration.
/// Zero is accepted; callers that need a positive value check it themselves.
Result<std::chrono::seconds> ParseDuration(std::string_view text);

/// The shortest text ParseDuration reads back as `d`: `0s`, `90s` -> `1m30s`,
/// `5400s` -> `1h30m`. Negative values are formatted with a leading `-`.
/// The one formatter of durations in messages (timeouts, delays, limits).
std::string FormatDuration(std::chrono::seconds d);
/// As above for a whole number of seconds; otherwise in milliseconds:
/// `90000ms` -> `1m30s`, `1500ms` -> `1500ms`.
std::string FormatDuration(std::chrono::milliseconds d);

/// An elapsed time for people reading a table or a progress line, rounded to
/// what matters at its size: `850ms`, `1.2s`, `3m04s`, `2h05m`. Negative
/// durations print as `-`.
std::string FormatElapsed(std::chrono::milliseconds d);

}  // namespace picoflow
