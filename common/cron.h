#pragma once
// CronExpr: a parsed cron expression and the computation of its next fire time
// in an IANA time zone (Vixie/cronie semantics, docs/cron.md).

#include <bitset>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"

namespace date {
class time_zone;
}

namespace picoflow {

using SysSeconds = std::chrono::sys_seconds;

/// Resolves an IANA zone name through the system tz database. An empty name
/// means the daemon's local zone (/etc/localtime, UTC if that is unreadable).
/// Returns an Error (kNotFound) naming the zone if it does not exist.
Result<const date::time_zone*> FindZone(std::string_view name);

/// An immutable parsed cron expression.
class CronExpr {
 public:
  /// Parses 5 fields (`m h dom mon dow`), 6 fields (seconds first) or a macro
  /// (`@yearly @annually @monthly @weekly @daily @midnight @hourly`).
  /// Returns an Error (kInvalid) naming the bad field and why, e.g.
  /// `hour field '25': value 25 out of range 0-23`. An expression that can never
  /// fire (`0 0 30 2 *`) is an error too.
  static Result<CronExpr> Parse(std::string_view text);

  /// The first fire time strictly after `after`, evaluated in `zone`'s civil
  /// time. DST: a local time skipped by a spring-forward fires once at the
  /// first instant after the gap; a repeated local time fires once (the first
  /// occurrence). Returns nullopt only if nothing matches within 5 years.
  std::optional<SysSeconds> NextAfter(SysSeconds after, const date::time_zone* zone) const;

  /// The expression as written.
  const std::string& text() const { return text_; }
  /// True if the expression has a seconds field (6 fields).
  bool has_seconds() const { return has_seconds_; }
  /// Why a valid expression is probably not what its author meant, or empty:
  /// a 6-field expression that reads as a 5-field one plus an extra field
  /// (`0 2 * * * *` fires at minute 2 of every hour, not at 02:00).
  const std::string& warning() const { return warning_; }

 private:
  struct Civil;  // a broken-down local time, defined in cron.cc

  CronExpr() = default;

  // Sets the field bitsets from 5 or 6 whitespace-separated fields; an Error
  // names the bad field.
  Status ParseFields(std::string_view fields);
  // Moves `c` to the first local time >= `c` that matches every field; false
  // if there is none up to the end of `limit_year`.
  bool FindMatch(Civil& c, int limit_year) const;
  // The first day >= c.day in c's month matching the DOM/DOW rule, or -1.
  int NextMatchingDay(const Civil& c) const;
  // The Vixie rule: AND when either day field began with '*', else OR.
  bool DayMatches(int day_of_month, unsigned weekday) const;

  std::string text_;
  std::string warning_;
  bool has_seconds_ = false;
  std::bitset<60> seconds_;
  std::bitset<60> minutes_;
  std::bitset<24> hours_;
  std::bitset<32> days_of_month_;  // bit 1..31
  std::bitset<13> months_;         // bit 1..12
  std::bitset<8> days_of_week_;    // bit 0..6, Sunday = 0 (7 folded into 0)
  bool dom_star_ = false;          // day-of-month field began with '*'
  bool dow_star_ = false;          // day-of-week field began with '*'
};

}  // namespace picoflow
