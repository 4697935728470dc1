#include "common/cron.h"

#include <date/tz.h>
#include <doctest/doctest.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "tests/test_util.h"

namespace picoflow {
namespace {

const date::time_zone* Zone(std::string_view name) {
  Result<const date::time_zone*> zone = FindZone(name);
  REQUIRE_MESSAGE(zone.ok(), zone.error().message);
  return *zone;
}

// "2024-03-30 12:00:00 +0100" -> the instant. (Not date::parse: g++ 12 warns
// inside it with -Wmaybe-uninitialized.)
SysSeconds At(const std::string& text) {
  int year = 0, hour = 0, minute = 0, second = 0, offset_hours = 0, offset_minutes = 0;
  unsigned month = 0, day = 0;
  char sign = 0;
  const int n = std::sscanf(text.c_str(), "%d-%u-%u %d:%d:%d %c%2d%2d", &year, &month, &day, &hour,
                            &minute, &second, &sign, &offset_hours, &offset_minutes);
  REQUIRE_MESSAGE(n == 9, "bad time '" << text << "'");
  const std::chrono::minutes offset{(sign == '-' ? -1 : 1) * (offset_hours * 60 + offset_minutes)};
  const date::sys_days days{date::year{year} / date::month{month} / date::day{day}};
  return days + std::chrono::hours{hour} + std::chrono::minutes{minute} +
         std::chrono::seconds{second} - offset;
}

// The instant as local time in `zone` with its UTC offset, which names it exactly.
std::string Show(SysSeconds t, const date::time_zone* zone) {
  return date::format("%F %T %z", date::make_zoned(zone, t));
}

CronExpr MustParse(std::string_view text) {
  Result<CronExpr> expr = CronExpr::Parse(text);
  REQUIRE_MESSAGE(expr.ok(), expr.error().message);
  return *expr;
}

// The first `count` fires of `text` after `after`, shown in `zone`; a missing
// fire shows as "none" and ends the list.
std::vector<std::string> Fires(std::string_view text, const std::string& after, int count,
                               std::string_view zone_name = "UTC") {
  const CronExpr expr = MustParse(text);
  const date::time_zone* zone = Zone(zone_name);
  std::vector<std::string> fires;
  SysSeconds t = At(after);
  for (int i = 0; i < count; ++i) {
    const std::optional<SysSeconds> next = expr.NextAfter(t, zone);
    if (!next) {
      fires.push_back("none");
      break;
    }
    fires.push_back(Show(*next, zone));
    t = *next;
  }
  return fires;
}

std::string Next(std::string_view text, const std::string& after, std::string_view zone = "UTC") {
  return Fires(text, after, 1, zone).front();
}

// The parse error message, or "ok".
std::string ParseError(std::string_view text) {
  Result<CronExpr> expr = CronExpr::Parse(text);
  if (expr.ok()) return "ok";
  CHECK(expr.error().code == ErrorCode::kInvalid);
  return expr.error().message;
}

using Strings = std::vector<std::string>;

// ---------------------------------------------------------------- parsing

TEST_CASE("five fields fire at second zero and a sixth field puts seconds first") {
  const CronExpr five = MustParse("*/20 * * * *");
  CHECK_FALSE(five.has_seconds());
  CHECK(five.text() == "*/20 * * * *");
  CHECK(Fires("*/20 * * * *", "2024-01-01 00:00:00 +0000", 3) ==
        Strings{"2024-01-01 00:20:00 +0000", "2024-01-01 00:40:00 +0000",
                "2024-01-01 01:00:00 +0000"});

  const CronExpr six = MustParse("*/30 * * * * *");
  CHECK(six.has_seconds());
  CHECK(Fires("*/30 * * * * *", "2024-01-01 00:00:00 +0000", 3) ==
        Strings{"2024-01-01 00:00:30 +0000", "2024-01-01 00:01:00 +0000",
                "2024-01-01 00:01:30 +0000"});
  CHECK(Fires("0 */5 * * * *", "2024-01-01 00:00:00 +0000", 2) ==
        Strings{"2024-01-01 00:05:00 +0000", "2024-01-01 00:10:00 +0000"});
  CHECK(Fires("15,45 0 12 * * *", "2024-01-01 00:00:00 +0000", 3) ==
        Strings{"2024-01-01 12:00:15 +0000", "2024-01-01 12:00:45 +0000",
                "2024-01-02 12:00:15 +0000"});
}

TEST_CASE("the text is kept as written and surrounding blanks are ignored") {
  const CronExpr expr = MustParse("  0\t12  * * MON ");
  CHECK(expr.text() == "  0\t12  * * MON ");
  CHECK(Next("  0\t12  * * MON ", "2024-01-01 12:00:00 +0000") == "2024-01-08 12:00:00 +0000");
}

TEST_CASE("ranges, lists, steps and start/step expand like cronie") {
  CHECK(Fires("10-20/5 0 1 1 *", "2023-12-31 00:00:00 +0000", 4) ==
        Strings{"2024-01-01 00:10:00 +0000", "2024-01-01 00:15:00 +0000",
                "2024-01-01 00:20:00 +0000", "2025-01-01 00:10:00 +0000"});
  // a/n means a-max/n: 7, 27, 47.
  CHECK(Fires("7/20 0 1 1 *", "2023-12-31 00:00:00 +0000", 4) ==
        Strings{"2024-01-01 00:07:00 +0000", "2024-01-01 00:27:00 +0000",
                "2024-01-01 00:47:00 +0000", "2025-01-01 00:07:00 +0000"});
  CHECK(Fires("0 1,2,5-6 1 1 *", "2023-12-31 00:00:00 +0000", 5) ==
        Strings{"2024-01-01 01:00:00 +0000", "2024-01-01 02:00:00 +0000",
                "2024-01-01 05:00:00 +0000", "2024-01-01 06:00:00 +0000",
                "2025-01-01 01:00:00 +0000"});
  // A step larger than the range keeps only the start.
  CHECK(Fires("*/40 0 1 1 *", "2023-12-31 00:00:00 +0000", 3) ==
        Strings{"2024-01-01 00:00:00 +0000", "2024-01-01 00:40:00 +0000",
                "2025-01-01 00:00:00 +0000"});
  CHECK(Fires("0 0 1 */5 *", "2023-12-31 00:00:00 +0000", 3) ==
        Strings{"2024-01-01 00:00:00 +0000", "2024-06-01 00:00:00 +0000",
                "2024-11-01 00:00:00 +0000"});
}

TEST_CASE("month and day names are accepted in any case, also in ranges and steps") {
  CHECK(Fires("0 0 1 jan,Jul-aug *", "2024-01-15 00:00:00 +0000", 3) ==
        Strings{"2024-07-01 00:00:00 +0000", "2024-08-01 00:00:00 +0000",
                "2025-01-01 00:00:00 +0000"});
  CHECK(Fires("0 0 1 FEB/5 *", "2024-01-15 00:00:00 +0000", 3) ==
        Strings{"2024-02-01 00:00:00 +0000", "2024-07-01 00:00:00 +0000",
                "2024-12-01 00:00:00 +0000"});
  // 2024-01-01 is a Monday.
  CHECK(Fires("0 0 * * mon-Wed,sat", "2024-01-01 00:00:00 +0000", 4) ==
        Strings{"2024-01-02 00:00:00 +0000", "2024-01-03 00:00:00 +0000",
                "2024-01-06 00:00:00 +0000", "2024-01-08 00:00:00 +0000"});
}

TEST_CASE("day-of-week 7 is Sunday and */n steps through 0-7 like cronie") {
  CHECK(Fires("0 0 * * 7", "2024-01-01 00:00:00 +0000", 2) ==
        Strings{"2024-01-07 00:00:00 +0000", "2024-01-14 00:00:00 +0000"});
  CHECK(Fires("0 0 * * FRI-7", "2024-01-01 00:00:00 +0000", 4) ==
        Strings{"2024-01-05 00:00:00 +0000", "2024-01-06 00:00:00 +0000",
                "2024-01-07 00:00:00 +0000", "2024-01-12 00:00:00 +0000"});
  // */7 is {0, 7}: Sundays only.
  CHECK(Fires("0 0 * * */7", "2024-01-01 00:00:00 +0000", 2) ==
        Strings{"2024-01-07 00:00:00 +0000", "2024-01-14 00:00:00 +0000"});
  // 5/2 is {5, 7}: Fridays and Sundays.
  CHECK(Fires("0 0 * * 5/2", "2024-01-01 00:00:00 +0000", 3) ==
        Strings{"2024-01-05 00:00:00 +0000", "2024-01-07 00:00:00 +0000",
                "2024-01-12 00:00:00 +0000"});
}

TEST_CASE("a question mark stands for star in the day fields") {
  CHECK(Fires("0 0 ? * MON", "2024-01-01 00:00:00 +0000", 3) ==
        Fires("0 0 * * MON", "2024-01-01 00:00:00 +0000", 3));
  CHECK(Fires("0 0 13 * ?", "2024-01-01 00:00:00 +0000", 3) ==
        Fires("0 0 13 * *", "2024-01-01 00:00:00 +0000", 3));
  CHECK(ParseError("? * * * *") ==
        "minute field '?': '?' is only allowed in day-of-month and day-of-week");
}

TEST_CASE("macros fire like the expressions they stand for") {
  const std::vector<std::pair<std::string, std::string>> macros = {
      {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
      {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
      {"@hourly", "0 * * * *"}, {"@DAILY", "0 0 * * *"},
  };
  for (const auto& entry : macros) {
    // Not a structured binding: clang 14 cannot capture one (CAPTURE does).
    const std::string& macro = entry.first;
    const std::string& expansion = entry.second;
    CAPTURE(macro);
    const CronExpr expr = MustParse(macro);
    CHECK(expr.text() == macro);
    CHECK_FALSE(expr.has_seconds());
    CHECK(Fires(macro, "2024-02-28 13:14:15 +0000", 3) ==
          Fires(expansion, "2024-02-28 13:14:15 +0000", 3));
  }
  CHECK(Next("@weekly", "2024-01-01 00:00:00 +0000") == "2024-01-07 00:00:00 +0000");
}

TEST_CASE("every parse error names the field and says why") {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "empty cron expression"},
      {"   ", "empty cron expression"},
      {"* * *", "expected 5 or 6 fields, got 3"},
      {"* * * * * * *",
       "expected 5 or 6 fields, got 7 (a year field is not supported; 6 fields mean seconds "
       "first (second minute hour day-of-month month day-of-week))"},
      {"0 0 * * 1 2026",
       "day-of-week field '2026': value 2026 out of range 0-7 (a year field is not supported; 6 "
       "fields mean seconds first (second minute hour day-of-month month day-of-week))"},
      {"60 * * * * *", "second field '60': value 60 out of range 0-59"},
      {"60 * * * *", "minute field '60': value 60 out of range 0-59"},
      {"0 25 * * *", "hour field '25': value 25 out of range 0-23"},
      {"0 0 0 * *", "day-of-month field '0': value 0 out of range 1-31"},
      {"0 0 32 * *", "day-of-month field '32': value 32 out of range 1-31"},
      {"0 0 * 13 *", "month field '13': value 13 out of range 1-12"},
      {"0 0 * 0 *", "month field '0': value 0 out of range 1-12"},
      {"0 0 * * 8", "day-of-week field '8': value 8 out of range 0-7"},
      {"99999999999 * * * *", "minute field '99999999999': value 99999999999 out of range 0-59"},
      {"1-70 * * * *", "minute field '1-70': value 70 out of range 0-59"},
      {"0 0 1-40/0 * *", "day-of-month field '1-40/0': step must be positive"},
      {"*/ * * * *", "minute field '*/': missing step after '/'"},
      {"*/x * * * *", "minute field '*/x': step 'x' is not a number"},
      {"*/5/2 * * * *", "minute field '*/5/2': step '5/2' is not a number"},
      {"5-1 * * * *", "minute field '5-1': range 5-1 is reversed"},
      {"0 0 * DEC-JAN *", "month field 'DEC-JAN': range DEC-JAN is reversed"},
      {"0 0 * * FRI-SUN",
       "day-of-week field 'FRI-SUN': range FRI-SUN is reversed (write Sunday as 7 to end a range)"},
      {"-5 * * * *", "minute field '-5': range '-5' needs a value on each side of '-'"},
      {"5- * * * *", "minute field '5-': range '5-' needs a value on each side of '-'"},
      {"1-2-3 * * * *", "minute field '1-2-3': '2-3' is not a number"},
      {"1,,2 * * * *", "minute field '1,,2': empty list item"},
      {"1, * * * *", "minute field '1,': empty list item"},
      {"x * * * *", "minute field 'x': 'x' is not a number"},
      {"0 0 * FOO *", "month field 'FOO': 'FOO' is not a number or a month name (JAN-DEC)"},
      {"0 0 * JANUARY *",
       "month field 'JANUARY': 'JANUARY' is not a number or a month name (JAN-DEC)"},
      {"0 0 * * MONDAY",
       "day-of-week field 'MONDAY': 'MONDAY' is not a number or a day name (SUN-SAT)"},
      {"0 MON * * *", "hour field 'MON': 'MON' is not a number"},
      {"0 0 ?,1 * *", "day-of-month field '?,1': '?' must be the whole field"},
      {"0 0 * ? *", "month field '?': '?' is only allowed in day-of-month and day-of-week"},
      {"@reboot", "@reboot is not supported: picoflow schedules workflows by time only"},
      {"@fortnightly",
       "unknown macro '@fortnightly' (expected @yearly, @annually, @monthly, @weekly, @daily, "
       "@midnight or @hourly)"},
      {"@daily 5",
       "unknown macro '@daily 5' (expected @yearly, @annually, @monthly, @weekly, "
       "@daily, @midnight or @hourly)"},
      {"0 0 30 2 *", "never fires: day-of-month '30' never occurs in month '2'"},
      {"0 0 31 4,6 *", "never fires: day-of-month '31' never occurs in month '4,6'"},
      {"0 0 0 30-31 FEB *", "never fires: day-of-month '30-31' never occurs in month 'FEB'"},
  };
  for (const auto& entry : cases) {
    // Not a structured binding: clang 14 cannot capture one (CAPTURE does).
    const std::string& text = entry.first;
    const std::string& message = entry.second;
    CAPTURE(text);
    CHECK(ParseError(text) == message);
  }
}

TEST_CASE("a 6-field expression that reads as 5 fields plus one more gets a warning") {
  CHECK(MustParse("0 2 * * * *").warning() ==
        "6 fields mean seconds first (second minute hour day-of-month month day-of-week), so this "
        "fires at minute 2 of every hour; for minute 0 of hour 2, write the 5 fields '0 2 * * *' "
        "(a year field is not supported)");
  CHECK(MustParse("30 6 * * 1 *").warning() ==
        "6 fields mean seconds first (second minute hour day-of-month month day-of-week), so this "
        "fires at minute 6 of every hour; for minute 30 of hour 6, write the 5 fields '30 6 * * 1' "
        "(a year field is not supported)");
  CHECK(Fires("0 2 * * * *", "2024-01-01 00:00:00 +0000", 2) ==
        Strings{"2024-01-01 00:02:00 +0000", "2024-01-01 01:02:00 +0000"});
  // Unambiguous 6-field expressions, and every 5-field one, get none.
  for (const char* text : {"0 0 2 * * *", "0 */5 * * * *", "*/30 * * * * *", "0 30 * * * *",
                           "0 2 * * * MON", "0 2 * * *", "@hourly"}) {
    CAPTURE(text);
    CHECK(MustParse(text).warning().empty());
  }
}

TEST_CASE("day-of-month values that exist in some chosen month are accepted") {
  CHECK(ParseError("0 0 31 4,7 *") == "ok");
  CHECK(ParseError("0 0 29 2 *") == "ok");
  // The weekday alternative fires even if the 30th never does.
  CHECK(ParseError("0 0 30 2 MON") == "ok");
  CHECK(Next("0 0 30 2 MON", "2024-01-01 00:00:00 +0000") == "2024-02-05 00:00:00 +0000");
}

// ---------------------------------------------------------------- next fire in UTC

TEST_CASE("the next fire is strictly after the given instant") {
  CHECK(Next("0 * * * *", "2024-01-01 10:00:00 +0000") == "2024-01-01 11:00:00 +0000");
  CHECK(Next("0 * * * *", "2024-01-01 09:59:59 +0000") == "2024-01-01 10:00:00 +0000");
  CHECK(Next("* * * * * *", "2024-01-01 10:00:00 +0000") == "2024-01-01 10:00:01 +0000");
  CHECK(Next("* * * * *", "2024-01-01 10:00:01 +0000") == "2024-01-01 10:01:00 +0000");
}

TEST_CASE("seconds, minutes, hours, days and months roll over into the next year") {
  CHECK(Next("* * * * * *", "2024-12-31 23:59:59 +0000") == "2025-01-01 00:00:00 +0000");
  CHECK(Next("* * * * *", "2024-12-31 23:59:30 +0000") == "2025-01-01 00:00:00 +0000");
  CHECK(Fires("59 23 31 12 *", "2023-06-01 00:00:00 +0000", 2) ==
        Strings{"2023-12-31 23:59:00 +0000", "2024-12-31 23:59:00 +0000"});
  CHECK(Fires("30 4 1 * *", "2024-01-31 23:00:00 +0000", 2) ==
        Strings{"2024-02-01 04:30:00 +0000", "2024-03-01 04:30:00 +0000"});
  CHECK(Next("0 0 1 JAN *", "2024-01-01 00:00:00 +0000") == "2025-01-01 00:00:00 +0000");
}

TEST_CASE("the 31st fires only in months that have one") {
  CHECK(Fires("0 12 31 * *", "2024-01-31 12:00:00 +0000", 4) ==
        Strings{"2024-03-31 12:00:00 +0000", "2024-05-31 12:00:00 +0000",
                "2024-07-31 12:00:00 +0000", "2024-08-31 12:00:00 +0000"});
  // February overshoot: March 1 must not be skipped (croniter 1.3.5 skips it).
  CHECK(Fires("0 0 1,30 * *", "2023-02-02 00:00:00 +0000", 2) ==
        Strings{"2023-03-01 00:00:00 +0000", "2023-03-30 00:00:00 +0000"});
  CHECK(Next("0 0 */3 * *", "2024-02-29 12:00:00 +0000") == "2024-03-01 00:00:00 +0000");
}

TEST_CASE("February 29 fires only in leap years, and 2100 is not one") {
  CHECK(Fires("0 0 29 2 *", "2024-03-01 00:00:00 +0000", 3) ==
        Strings{"2028-02-29 00:00:00 +0000", "2032-02-29 00:00:00 +0000",
                "2036-02-29 00:00:00 +0000"});
  CHECK(Next("0 0 29 2 *", "2024-02-28 23:59:59 +0000") == "2024-02-29 00:00:00 +0000");
  // 2096 -> 2104 is 8 years: beyond the 5-year horizon.
  CHECK(Next("0 0 29 2 *", "2096-03-01 00:00:00 +0000") == "none");
}

// ---------------------------------------------------------------- DOM / DOW

TEST_CASE("a restricted day-of-month and day-of-week fire when either matches") {
  // The 13th, or any Friday (2024-09-13 is a Friday).
  CHECK(Fires("0 0 13 * FRI", "2024-09-01 00:00:00 +0000", 5) ==
        Strings{"2024-09-06 00:00:00 +0000", "2024-09-13 00:00:00 +0000",
                "2024-09-20 00:00:00 +0000", "2024-09-27 00:00:00 +0000",
                "2024-10-04 00:00:00 +0000"});
  CHECK(Fires("0 0 1,15 * MON", "2024-01-01 00:00:00 +0000", 4) ==
        Strings{"2024-01-08 00:00:00 +0000", "2024-01-15 00:00:00 +0000",
                "2024-01-22 00:00:00 +0000", "2024-01-29 00:00:00 +0000"});
}

TEST_CASE("a star day field lets the other day field alone decide") {
  CHECK(Fires("0 0 13 * *", "2024-09-01 00:00:00 +0000", 2) ==
        Strings{"2024-09-13 00:00:00 +0000", "2024-10-13 00:00:00 +0000"});
  CHECK(Fires("0 0 * * FRI", "2024-09-01 00:00:00 +0000", 2) ==
        Strings{"2024-09-06 00:00:00 +0000", "2024-09-13 00:00:00 +0000"});
}

TEST_CASE("a */n day-of-month and a restricted day-of-week must both match, as in cronie") {
  // Vixie/cronie: the field starts with '*', so AND: Mondays on odd days.
  // croniter 1.3.5 ORs here (any Monday or any odd day).
  CHECK(Fires("0 0 */2 * MON", "2023-12-31 00:00:00 +0000", 5) ==
        Strings{"2024-01-01 00:00:00 +0000", "2024-01-15 00:00:00 +0000",
                "2024-01-29 00:00:00 +0000", "2024-02-05 00:00:00 +0000",
                "2024-02-19 00:00:00 +0000"});
}

TEST_CASE("a */n day-of-week and a restricted day-of-month must both match, as in cronie") {
  // */2 is Sun, Tue, Thu, Sat: the 1st of the month when it falls on one.
  CHECK(Fires("0 0 1 * */2", "2024-01-01 00:00:00 +0000", 5) ==
        Strings{"2024-02-01 00:00:00 +0000", "2024-06-01 00:00:00 +0000",
                "2024-08-01 00:00:00 +0000", "2024-09-01 00:00:00 +0000",
                "2024-10-01 00:00:00 +0000"});
}

TEST_CASE("a full range like 1-31 is still restricted and so ORs with the day-of-week") {
  // cronie: every day (1-31 OR Monday); croniter 1.3.5: Mondays only.
  CHECK(Fires("0 0 1-31 * MON", "2024-01-02 00:00:00 +0000", 2) ==
        Strings{"2024-01-03 00:00:00 +0000", "2024-01-04 00:00:00 +0000"});
}

TEST_CASE("a schedule with no fire within five years returns nothing") {
  // Jan 1 on a Monday: 2024, then 2029.
  CHECK(Next("0 0 */40 1 MON", "2023-06-01 00:00:00 +0000") == "2024-01-01 00:00:00 +0000");
  CHECK(Next("0 0 */40 1 MON", "2024-01-01 00:00:00 +0000") == "none");
  CHECK(Next("0 0 */40 1 MON", "2024-06-01 00:00:00 +0000") == "2029-01-01 00:00:00 +0000");
}

// ---------------------------------------------------------------- time zones

TEST_CASE("fires follow the civil time of the zone") {
  CHECK(Next("0 9 * * *", "2024-06-01 00:00:00 +0000", "Asia/Kolkata") ==
        "2024-06-01 09:00:00 +0530");
  CHECK(Next("0 9 * * *", "2024-06-01 04:00:00 +0000", "Asia/Kolkata") ==
        "2024-06-02 09:00:00 +0530");
  CHECK(Next("0 0 1 1 *", "2024-12-31 09:00:00 +0000", "Pacific/Kiritimati") ==
        "2025-01-01 00:00:00 +1400");
  CHECK(Next("0 0 1 1 *", "2024-12-31 12:00:00 +0000", "America/New_York") ==
        "2025-01-01 00:00:00 -0500");
}

TEST_CASE("Berlin spring-forward: a skipped time fires once at the end of the gap") {
  // 2024-03-31 02:00 CET jumps to 03:00 CEST.
  CHECK(Fires("30 2 * * *", "2024-03-30 12:00:00 +0100", 2, "Europe/Berlin") ==
        Strings{"2024-03-31 03:00:00 +0200", "2024-04-01 02:30:00 +0200"});
  // 02:00, 02:15, 02:30 and 02:45 collapse into one fire at 03:00 CEST.
  CHECK(Fires("*/15 * * * *", "2024-03-31 01:30:00 +0100", 4, "Europe/Berlin") ==
        Strings{"2024-03-31 01:45:00 +0100", "2024-03-31 03:00:00 +0200",
                "2024-03-31 03:15:00 +0200", "2024-03-31 03:30:00 +0200"});
  // 02:00 (skipped) and 03:00 name the same instant: it fires once.
  CHECK(Fires("0 * * * *", "2024-03-31 00:30:00 +0100", 3, "Europe/Berlin") ==
        Strings{"2024-03-31 01:00:00 +0100", "2024-03-31 03:00:00 +0200",
                "2024-03-31 04:00:00 +0200"});
  CHECK(Fires("0 30 2 * * *", "2024-03-30 12:00:00 +0100", 1, "Europe/Berlin") ==
        Strings{"2024-03-31 03:00:00 +0200"});
}

TEST_CASE("Berlin fall-back: a repeated time fires once, at its first occurrence") {
  // 2024-10-27 03:00 CEST falls back to 02:00 CET; 02:00-02:59 happens twice.
  CHECK(Fires("30 2 * * *", "2024-10-26 12:00:00 +0200", 2, "Europe/Berlin") ==
        Strings{"2024-10-27 02:30:00 +0200", "2024-10-28 02:30:00 +0100"});
  CHECK(Fires("*/20 * * * *", "2024-10-27 01:50:00 +0200", 5, "Europe/Berlin") ==
        Strings{"2024-10-27 02:00:00 +0200", "2024-10-27 02:20:00 +0200",
                "2024-10-27 02:40:00 +0200", "2024-10-27 03:00:00 +0100",
                "2024-10-27 03:20:00 +0100"});
  // From inside the second pass, the rest of the repeated hour is skipped.
  CHECK(Next("*/20 * * * *", "2024-10-27 02:10:00 +0100", "Europe/Berlin") ==
        "2024-10-27 03:00:00 +0100");
  // Even an every-second job does not run during the second pass.
  CHECK(Next("* * * * * *", "2024-10-27 02:59:59 +0200", "Europe/Berlin") ==
        "2024-10-27 03:00:00 +0100");
  CHECK(Next("* * * * * *", "2024-10-27 02:00:00 +0100", "Europe/Berlin") ==
        "2024-10-27 03:00:00 +0100");
}

TEST_CASE("New York spring-forward and fall-back follow the same policy") {
  // 2024-03-10 02:00 EST jumps to 03:00 EDT.
  CHECK(Fires("30 2 * * *", "2024-03-09 12:00:00 -0500", 2, "America/New_York") ==
        Strings{"2024-03-10 03:00:00 -0400", "2024-03-11 02:30:00 -0400"});
  // 2024-11-03 02:00 EDT falls back to 01:00 EST; 01:00-01:59 happens twice.
  CHECK(Fires("30 1 * * *", "2024-11-02 12:00:00 -0400", 2, "America/New_York") ==
        Strings{"2024-11-03 01:30:00 -0400", "2024-11-04 01:30:00 -0500"});
  CHECK(Fires("0,30 * * * *", "2024-11-03 00:45:00 -0400", 4, "America/New_York") ==
        Strings{"2024-11-03 01:00:00 -0400", "2024-11-03 01:30:00 -0400",
                "2024-11-03 02:00:00 -0500", "2024-11-03 02:30:00 -0500"});
}

TEST_CASE("Lord Howe's half-hour DST shifts follow the same policy") {
  // 2024-10-06 02:00 +1030 jumps to 02:30 +11.
  CHECK(Fires("15 2 * * *", "2024-10-05 12:00:00 +1030", 2, "Australia/Lord_Howe") ==
        Strings{"2024-10-06 02:30:00 +1100", "2024-10-07 02:15:00 +1100"});
  // 2024-04-07 02:00 +11 falls back to 01:30 +1030.
  CHECK(Fires("45 1 * * *", "2024-04-06 12:00:00 +1100", 2, "Australia/Lord_Howe") ==
        Strings{"2024-04-07 01:45:00 +1100", "2024-04-08 01:45:00 +1030"});
}

TEST_CASE("zones resolve by IANA name and an unknown one is a not-found error") {
  CHECK(FindZone("Europe/Berlin").ok());
  CHECK((*FindZone("UTC"))->name() == "UTC");
  const Result<const date::time_zone*> local = FindZone("");
  REQUIRE(local.ok());
  CHECK(*local != nullptr);
  const Result<const date::time_zone*> unknown = FindZone("Mars/Olympus_Mons");
  REQUIRE_FALSE(unknown.ok());
  CHECK(unknown.error().code == ErrorCode::kNotFound);
  CHECK(unknown.error().message ==
        "unknown time zone 'Mars/Olympus_Mons' (not in the system tz database; names look like "
        "'Europe/Berlin')");
  CHECK_FALSE(FindZone("europe/berlin").ok());
}

// What it costs in absolute terms is for a benchmark; a test only compares
// it with a calibration measured the same way in the same process.
TEST_CASE(
    "a next-fire computation costs about what one a minute ahead costs, also when nothing fires for years") {
  const date::time_zone* zone = Zone("Europe/Berlin");
  constexpr int kRounds = 2000;
  // kRounds calls, 7 h apart, the least of three passes (test::FastestMs).
  const auto cost = [&](const CronExpr& expr) {
    return test::FastestMs([&] {
      SysSeconds after = At("2024-01-01 00:00:00 +0000");
      for (int i = 0; i < kRounds; ++i) {
        (void)expr.NextAfter(after, zone);
        after += std::chrono::hours{7};
      }
    });
  };
  // The calibration: the next fire is always within a minute.
  const double minute_ahead = cost(MustParse("* * * * *"));
  // Stepping minute by minute (or day by day) to a fire years ahead would
  // cost thousands of times as much; a correct search costs a few times.
  for (const std::string text : {"*/5 * * * *", "0 0 29 2 *", "30 2 * * *", "0 0 13 * FRI",
                                 "0 0 */40 1 MON", "*/30 * * * * *"}) {
    const double ms = cost(MustParse(text));
    INFO(text << ": " << ms << " ms for " << kRounds << " calls; '* * * * *': " << minute_ahead
              << " ms");
    CHECK(ms < 100 * minute_ahead);
  }
}

}  // namespace
}  // namespace picoflow
