#include "common/cron.h"

#include <date/tz.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cassert>
#include <charconv>
#include <cstdint>
#include <exception>
#include <limits>
#include <span>
#include <utility>
#include <vector>

#include "common/time_format.h"

namespace picoflow {
namespace {

using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;
using LocalSeconds = date::local_seconds;
using Mask = std::uint64_t;

// How far NextAfter looks before giving up (docs/cron.md: nothing within 5 years).
constexpr seconds kHorizon = std::chrono::duration_cast<seconds>(date::years{5});

constexpr std::array<std::string_view, 12> kMonthNames = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                                          "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
constexpr std::array<std::string_view, 7> kDayNames = {"SUN", "MON", "TUE", "WED",
                                                       "THU", "FRI", "SAT"};
// The most days each month can have (index 1..12); February has 29 in leap years.
constexpr std::array<int, 13> kMaxDays = {0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

// One cron field: its name in messages, its value range and its names.
struct FieldSpec {
  std::string_view name;
  int min = 0;
  int max = 0;
  std::span<const std::string_view> names = {};  // names[i] means value names_base + i
  int names_base = 0;
  std::string_view names_hint = {};  // appended to "is not a number"
  bool allows_question = false;      // '?' accepted as '*' (day fields only)
  bool is_day_of_week = false;       // 7 folds into 0 (Sunday)
};

// Fields in 6-field order; a 5-field expression starts at kMinuteField.
enum FieldIndex { kSecondField, kMinuteField, kHourField, kDomField, kMonthField, kDowField };
constexpr std::array<FieldSpec, 6> kFields = {{
    {"second", 0, 59},
    {"minute", 0, 59},
    {"hour", 0, 23},
    {"day-of-month", 1, 31, {}, 0, {}, true},
    {"month", 1, 12, kMonthNames, 1, " or a month name (JAN-DEC)"},
    // 0-7 so that `*/n` and `a/n` step through 7 like cronie; 7 folds into 0.
    {"day-of-week", 0, 7, kDayNames, 0, " or a day name (SUN-SAT)", true, true},
}};

// A parsed field: the set of values and whether its text began with '*' (or
// was '?'), which decides the DOM/DOW rule.
struct ParsedField {
  Mask mask = 0;
  bool star = false;
};

constexpr std::array<std::pair<std::string_view, std::string_view>, 7> kMacros = {{
    {"@yearly", "0 0 1 1 *"},
    {"@annually", "0 0 1 1 *"},
    {"@monthly", "0 0 1 * *"},
    {"@weekly", "0 0 * * 0"},
    {"@daily", "0 0 * * *"},
    {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
}};

// Said wherever 6 fields were probably written as 5 plus one more.
constexpr std::string_view kSecondsFirst =
    "6 fields mean seconds first (second minute hour day-of-month month day-of-week)";
constexpr std::string_view kNoYear = "a year field is not supported";

Error Invalid(std::string message) { return Err(ErrorCode::kInvalid, std::move(message)); }

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

char Upper(char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c; }

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return std::ranges::equal(a, b, [](char x, char y) { return Upper(x) == Upper(y); });
}

std::string_view Trim(std::string_view text) {
  while (!text.empty() && IsSpace(text.front())) text.remove_prefix(1);
  while (!text.empty() && IsSpace(text.back())) text.remove_suffix(1);
  return text;
}

std::vector<std::string_view> Split(std::string_view text, auto is_separator, bool keep_empty) {
  std::vector<std::string_view> parts;
  std::size_t begin = 0;
  for (std::size_t i = 0; i <= text.size(); ++i) {
    if (i < text.size() && !is_separator(text[i])) continue;
    if (keep_empty || i > begin) parts.push_back(text.substr(begin, i - begin));
    begin = i + 1;
  }
  return parts;
}

// Digits only; values past int are reported as out of range by the caller.
std::optional<int> ParseDigits(std::string_view text) {
  if (text.empty() || !std::ranges::all_of(text, [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  int value = 0;
  const std::errc ec = std::from_chars(text.data(), text.data() + text.size(), value).ec;
  if (ec == std::errc::result_out_of_range) return std::numeric_limits<int>::max();
  return value;
}

Result<int> ParseValue(std::string_view token, const FieldSpec& spec) {
  if (const std::optional<int> number = ParseDigits(token)) {
    if (*number < spec.min || *number > spec.max) {
      return Invalid("value " + std::string(token) + " out of range " + std::to_string(spec.min) +
                     "-" + std::to_string(spec.max));
    }
    return *number;
  }
  for (std::size_t i = 0; i < spec.names.size(); ++i) {
    if (EqualsIgnoreCase(token, spec.names[i])) return spec.names_base + static_cast<int>(i);
  }
  return Invalid("'" + std::string(token) + "' is not a number" + std::string(spec.names_hint));
}

// `*`, `v` or `a-b` as a closed range; with a step, a lone `v` means `v-max`.
Result<std::pair<int, int>> ParseRange(std::string_view base, const FieldSpec& spec,
                                       bool has_step) {
  if (base == "*") return std::pair{spec.min, spec.max};
  if (base == "?") return Invalid("'?' must be the whole field");
  const std::size_t dash = base.find('-');
  if (dash == std::string_view::npos) {
    Result<int> value = ParseValue(base, spec);
    if (!value) return value.error();
    return std::pair{*value, has_step ? spec.max : *value};
  }
  const std::string_view low_text = base.substr(0, dash);
  const std::string_view high_text = base.substr(dash + 1);
  if (low_text.empty() || high_text.empty()) {
    return Invalid("range '" + std::string(base) + "' needs a value on each side of '-'");
  }
  Result<int> low = ParseValue(low_text, spec);
  if (!low) return low.error();
  Result<int> high = ParseValue(high_text, spec);
  if (!high) return high.error();
  if (*low > *high) {
    std::string message = "range " + std::string(base) + " is reversed";
    if (spec.is_day_of_week && *high == 0) message += " (write Sunday as 7 to end a range)";
    return Invalid(std::move(message));
  }
  return std::pair{*low, *high};
}

Result<int> ParseStep(std::string_view text) {
  if (text.empty()) return Invalid("missing step after '/'");
  const std::optional<int> step = ParseDigits(text);
  if (!step) return Invalid("step '" + std::string(text) + "' is not a number");
  if (*step == 0) return Invalid("step must be positive");
  return *step;
}

// One list item: `*`, `*/n`, `v`, `v/n`, `a-b`, `a-b/n`.
Result<Mask> ParseItem(std::string_view item, const FieldSpec& spec) {
  if (item.empty()) return Invalid("empty list item");
  const std::size_t slash = item.find('/');
  const bool has_step = slash != std::string_view::npos;
  int step = 1;
  if (has_step) {
    Result<int> parsed = ParseStep(item.substr(slash + 1));
    if (!parsed) return parsed.error();
    step = *parsed;
  }
  Result<std::pair<int, int>> range = ParseRange(item.substr(0, slash), spec, has_step);
  if (!range) return range.error();
  Mask mask = 0;
  // Widened so that a huge step cannot overflow.
  for (long long v = range->first; v <= range->second; v += step) mask |= Mask{1} << v;
  return mask;
}

Result<ParsedField> ParseField(std::string_view text, const FieldSpec& spec) {
  const auto fail = [&](const Error& error) {
    return Invalid(std::string(spec.name) + " field '" + std::string(text) + "': " + error.message);
  };
  if (text == "?") {
    if (!spec.allows_question) {
      return fail(Invalid("'?' is only allowed in day-of-month and day-of-week"));
    }
    text = "*";
  }
  ParsedField field{0, text.front() == '*'};
  for (std::string_view item : Split(
           text, [](char c) { return c == ','; }, true)) {
    Result<Mask> mask = ParseItem(item, spec);
    if (!mask) return fail(mask.error());
    field.mask |= *mask;
  }
  if (spec.is_day_of_week && (field.mask & (Mask{1} << 7)) != 0) {
    field.mask = (field.mask & ~(Mask{1} << 7)) | Mask{1};  // 7 is Sunday too
  }
  return field;
}

Result<std::string_view> ExpandMacro(std::string_view text) {
  for (const auto& [name, expansion] : kMacros) {
    if (EqualsIgnoreCase(text, name)) return expansion;
  }
  if (EqualsIgnoreCase(text, "@reboot")) {
    return Invalid("@reboot is not supported: picoflow schedules workflows by time only");
  }
  return Invalid("unknown macro '" + std::string(text) +
                 "' (expected @yearly, @annually, @monthly, @weekly, @daily, @midnight or "
                 "@hourly)");
}

// A year where the 6-field form has its day of week: `0 0 * * 1 2026`.
bool LooksLikeYear(std::string_view field) {
  return field.size() >= 4 &&
         std::all_of(field.begin(), field.begin() + 4, [](char c) { return c >= '0' && c <= '9'; });
}

// A 6-field expression that reads as a 5-field one plus a trailing `*` (a
// year, or a slip): `0 2 * * * *` was most likely meant as 02:00, but fires at
// minute 2 of every hour. Only fixed second and minute values with a `*` hour
// qualify, and only if the first five fields are a valid 5-field expression;
// `0 */5 * * * *` (every 5 minutes) and `0 0 2 * * *` (02:00) do not.
std::string ExtraFieldWarning(const std::vector<std::string_view>& words) {
  if (words.size() != 6 || (words[5] != "*" && words[5] != "?") || words[2] != "*" ||
      !ParseDigits(words[0]) || !ParseDigits(words[1])) {
    return "";
  }
  std::string five(words[0]);
  for (std::size_t i = 1; i < 5; ++i) five.append(" ").append(words[i]);
  if (!CronExpr::Parse(five).ok()) return "";
  return std::string(kSecondsFirst) + ", so this fires at minute " + std::string(words[1]) +
         " of every hour; for minute " + std::string(words[0]) + " of hour " +
         std::string(words[1]) + ", write the 5 fields '" + five + "' (" + std::string(kNoYear) +
         ")";
}

// With a restricted day-of-month and a '*' day-of-week only the day-of-month
// decides, and it may name days no chosen month has (`0 0 30 2 *`).
Status CheckCanFire(const ParsedField& dom, const ParsedField& month, const ParsedField& dow,
                    std::string_view dom_text, std::string_view month_text) {
  if (dom.star || !dow.star) return {};
  for (int m = 1; m <= 12; ++m) {
    const Mask days_in_month = ((Mask{1} << (kMaxDays[m] + 1)) - 1);
    if ((month.mask >> m & 1) != 0 && (dom.mask & days_in_month) != 0) return {};
  }
  return Invalid("never fires: day-of-month '" + std::string(dom_text) +
                 "' never occurs in month '" + std::string(month_text) + "'");
}

// The smallest set bit >= from, or -1.
int NextSet(Mask mask, int from) {
  if (from >= 64) return -1;
  const Mask rest = mask & (~Mask{0} << from);
  return rest == 0 ? -1 : std::countr_zero(rest);
}

date::year_month_day Ymd(int year, int month, int day) {
  return date::year_month_day{date::year{year}, date::month{static_cast<unsigned>(month)},
                              date::day{static_cast<unsigned>(day)}};
}

int DaysInMonth(int year, int month) {
  const date::month_day_last last{date::month{static_cast<unsigned>(month)}};
  const date::year_month_day_last ymd{date::year{year}, last};
  return static_cast<int>(static_cast<unsigned>(ymd.day()));
}

// The instant a matching local time fires at (docs/cron.md, "Daylight saving time"): a local
// time in a spring-forward gap fires at the end of the gap, a repeated one at
// its first occurrence.
SysSeconds FireInstant(const date::local_info& info, LocalSeconds local) {
  if (info.result == date::local_info::nonexistent) return info.second.begin;
  return SysSeconds{local.time_since_epoch() - info.first.offset};
}

// Where the repeated hour of a fall-back ends, as a local time.
LocalSeconds EndOfRepeat(const date::local_info& info) {
  return LocalSeconds{(info.first.end + info.first.offset).time_since_epoch()};
}

Result<const date::time_zone*> LocateZone(std::string_view name) {
  try {
    const date::time_zone* zone = name.empty() ? LocalTimeZone() : date::locate_zone(name);
    // The zone file loads lazily; make a broken file fail here, not later.
    (void)zone->get_info(SysSeconds{});
    return zone;
  } catch (const std::exception& e) {
    return Err(ErrorCode::kNotFound, e.what());
  }
}

}  // namespace

// A broken-down local time. The search may leave one field one past its end
// (month 13, day 32, hour 24, minute 60); the next lookup of that field finds
// no match and carries into the field above.
struct CronExpr::Civil {
  int year = 1970;
  int month = 1;
  int day = 1;
  int hour = 0;
  int minute = 0;
  int second = 0;

  static Civil From(LocalSeconds t) {
    const auto midnight = date::floor<date::days>(t);
    const date::year_month_day ymd{midnight};
    const date::hh_mm_ss<seconds> time{t - midnight};
    return Civil{static_cast<int>(ymd.year()),
                 static_cast<int>(static_cast<unsigned>(ymd.month())),
                 static_cast<int>(static_cast<unsigned>(ymd.day())),
                 static_cast<int>(time.hours().count()),
                 static_cast<int>(time.minutes().count()),
                 static_cast<int>(time.seconds().count())};
  }

  LocalSeconds ToLocal() const {
    return date::local_days{Ymd(year, month, day)} + hours{hour} + minutes{minute} +
           seconds{second};
  }
};

Result<const date::time_zone*> FindZone(std::string_view name) {
  Result<const date::time_zone*> zone = LocateZone(name);
  if (zone || name.empty()) return zone.ok() ? zone : LocateZone("Etc/UTC");
  return Err(ErrorCode::kNotFound, "unknown time zone '" + std::string(name) +
                                       "' (not in the system tz database; names look like "
                                       "'Europe/Berlin')");
}

Result<CronExpr> CronExpr::Parse(std::string_view text) {
  CronExpr expr;
  expr.text_ = std::string(text);
  std::string_view fields = Trim(text);
  if (!fields.empty() && fields.front() == '@') {
    Result<std::string_view> expansion = ExpandMacro(fields);
    if (!expansion) return expansion.error();
    fields = *expansion;
  }
  if (Status status = expr.ParseFields(fields); !status) return status.error();
  return expr;
}

Status CronExpr::ParseFields(std::string_view text) {
  const std::vector<std::string_view> words = Split(text, IsSpace, false);
  if (words.empty()) return Invalid("empty cron expression");
  if (words.size() != 5 && words.size() != 6) {
    std::string message = "expected 5 or 6 fields, got " + std::to_string(words.size());
    if (words.size() == 7) {
      message += " (" + std::string(kNoYear) + "; " + std::string(kSecondsFirst) + ")";
    }
    return Invalid(std::move(message));
  }
  has_seconds_ = words.size() == 6;
  const std::size_t first = has_seconds_ ? kSecondField : kMinuteField;
  std::array<ParsedField, 6> fields{};
  fields[kSecondField].mask = 1;  // 5 fields fire at second 0
  for (std::size_t i = first; i < kFields.size(); ++i) {
    Result<ParsedField> field = ParseField(words[i - first], kFields[i]);
    if (!field && i == kDowField && has_seconds_ && LooksLikeYear(words[5])) {
      return Invalid(field.error().message + " (" + std::string(kNoYear) + "; " +
                     std::string(kSecondsFirst) + ")");
    }
    if (!field) return field.error();
    fields[i] = *field;
  }
  warning_ = ExtraFieldWarning(words);
  seconds_ = fields[kSecondField].mask;
  minutes_ = fields[kMinuteField].mask;
  hours_ = fields[kHourField].mask;
  days_of_month_ = fields[kDomField].mask;
  months_ = fields[kMonthField].mask;
  days_of_week_ = fields[kDowField].mask;
  dom_star_ = fields[kDomField].star;
  dow_star_ = fields[kDowField].star;
  return CheckCanFire(fields[kDomField], fields[kMonthField], fields[kDowField],
                      words[kDomField - first], words[kMonthField - first]);
}

bool CronExpr::DayMatches(int day_of_month, unsigned weekday) const {
  const bool dom = days_of_month_.test(static_cast<std::size_t>(day_of_month));
  const bool dow = days_of_week_.test(weekday);
  return dom_star_ || dow_star_ ? dom && dow : dom || dow;
}

int CronExpr::NextMatchingDay(const Civil& c) const {
  const int last = DaysInMonth(c.year, c.month);
  if (c.day > last) return -1;
  unsigned weekday = date::weekday{date::sys_days{Ymd(c.year, c.month, c.day)}}.c_encoding();
  for (int day = c.day; day <= last; ++day, weekday = (weekday + 1) % 7) {
    if (DayMatches(day, weekday)) return day;
  }
  return -1;
}

bool CronExpr::FindMatch(Civil& c, int limit_year) const {
  while (c.year <= limit_year) {
    // One phase per field, largest first: keep the field if it matches, else
    // move to its next matching value (resetting lower fields) or carry up.
    const int month = NextSet(months_.to_ullong(), c.month);
    if (month < 0) {
      c = Civil{c.year + 1, 1, 1, 0, 0, 0};
      continue;
    }
    if (month != c.month) c = Civil{c.year, month, 1, 0, 0, 0};

    const int day = NextMatchingDay(c);
    if (day < 0) {
      c = Civil{c.year, c.month + 1, 1, 0, 0, 0};
      continue;
    }
    if (day != c.day) c = Civil{c.year, c.month, day, 0, 0, 0};

    const int hour = NextSet(hours_.to_ullong(), c.hour);
    if (hour < 0) {
      c = Civil{c.year, c.month, c.day + 1, 0, 0, 0};
      continue;
    }
    if (hour != c.hour) c = Civil{c.year, c.month, c.day, hour, 0, 0};

    const int minute = NextSet(minutes_.to_ullong(), c.minute);
    if (minute < 0) {
      c = Civil{c.year, c.month, c.day, c.hour + 1, 0, 0};
      continue;
    }
    if (minute != c.minute) c = Civil{c.year, c.month, c.day, c.hour, minute, 0};

    const int second = NextSet(seconds_.to_ullong(), c.second);
    if (second < 0) {
      c = Civil{c.year, c.month, c.day, c.hour, c.minute + 1, 0};
      continue;
    }
    c.second = second;
    return true;
  }
  return false;
}

std::optional<SysSeconds> CronExpr::NextAfter(SysSeconds after, const date::time_zone* zone) const {
  assert(zone != nullptr);
  const LocalSeconds limit = zone->to_local(after + kHorizon);
  const int limit_year = Civil::From(limit).year;
  Civil c = Civil::From(zone->to_local(after) + seconds{1});
  while (FindMatch(c, limit_year)) {
    const LocalSeconds local = c.ToLocal();
    if (local > limit) break;
    const date::local_info info = zone->get_info(local);
    const SysSeconds fire = FireInstant(info, local);
    if (fire > after) return fire;
    // Only the repeated hour of a fall-back gets here (`after` is in its second
    // pass, the first pass is over): resume where the repeated hour ends.
    LocalSeconds resume = local + seconds{1};
    if (info.result == date::local_info::ambiguous) resume = std::max(resume, EndOfRepeat(info));
    c = Civil::From(resume);
  }
  return std::nullopt;
}

}  // namespace picoflow
