// Fuzz target: a cron expression through CronExpr::Parse (common/cron.h) and,
// if it parses, its next fire times: three in a row from fixed instants, in
// zones with a one-hour DST shift, a half-hour one and none. The input is the
// expression's text.
//
// Checked beyond "no crash, no leak, no undefined behaviour": an expression
// keeps its text; an error says what is wrong; each next fire is strictly
// later than the instant it follows and, without a seconds field, on a whole
// minute.

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/cron.h"
#include "fuzz/fuzz_check.h"

namespace picoflow::fuzz {
namespace {

using namespace std::chrono;

// The zones the fires are computed in, resolved once per process.
struct Zones {
  std::array<const date::time_zone*, 3> all{};
  Zones() {
    const std::array<std::string_view, 3> names{"UTC", "Europe/Berlin", "Australia/Lord_Howe"};
    for (std::size_t i = 0; i < names.size(); ++i) {
      auto zone = FindZone(names[i]);
      Require(zone.ok(), "the fuzz zones are in the tz database (tzdata)");
      all[i] = *zone;
    }
  }
};

// 2024-03-31 00:30:15 UTC: half an hour before Berlin springs forward.
constexpr SysSeconds kBeforeDst{seconds{1711845015}};
// 2026-01-01 00:00:00 UTC.
constexpr SysSeconds kNewYear{seconds{1767225600}};

void CheckFires(const CronExpr& expr, const date::time_zone* zone, SysSeconds from) {
  for (int i = 0; i < 3; ++i) {
    auto next = expr.NextAfter(from, zone);
    if (!next) return;
    Require(*next > from, "the next fire is strictly later");
    if (!expr.has_seconds()) {
      Require(next->time_since_epoch().count() % 60 == 0,
              "an expression without seconds fires on a whole minute");
    }
    from = *next;
  }
}

}  // namespace
}  // namespace picoflow::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace picoflow;
  using namespace picoflow::fuzz;
  static const Zones zones;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto expr = CronExpr::Parse(text);
  if (!expr.ok()) {
    Require(!expr.error().message.empty(), "a refused expression says why");
    return 0;
  }
  Require(expr->text() == text, "an expression keeps its text");
  for (const date::time_zone* zone : zones.all) {
    CheckFires(*expr, zone, kBeforeDst);
    CheckFires(*expr, zone, kNewYear);
  }
  return 0;
}
