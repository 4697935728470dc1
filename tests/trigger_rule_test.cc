#include "picoflowd/engine/trigger_rule.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

namespace picoflow {
namespace {

// One letter per dependency state: succeeded, failed (or timed out),
// skipped, cancelled, pending (not ended yet).
UpstreamCounts Mix(std::string_view letters) {
  UpstreamCounts up;
  for (char c : letters) {
    switch (c) {
      case 'S': ++up.succeeded; break;
      case 'F': ++up.failed; break;
      case 'K': ++up.skipped; break;
      case 'C': ++up.cancelled; break;
      case 'P': ++up.pending; break;
      default: FAIL("bad letter ", c);
    }
  }
  return up;
}

const char* Word(TriggerVerdict v) {
  switch (v) {
    case TriggerVerdict::kWait: return "wait";
    case TriggerVerdict::kRun: return "run";
    case TriggerVerdict::kSkip: return "skip";
  }
  return "?";
}

// The verdicts of every rule, in kTriggerRuleNames order, as words.
std::string Row(const UpstreamCounts& up) {
  std::string out;
  for (std::size_t i = 0; i < std::size(kTriggerRuleNames); ++i) {
    if (!out.empty()) out += ' ';
    out += Word(EvaluateTrigger(static_cast<TriggerRule>(i), up));
  }
  return out;
}

constexpr char kStates[] = {'S', 'F', 'K', 'C', 'P'};

// Every multiset of `n` states, as letters in kStates order.
void Mixes(int n, std::string prefix, std::size_t from, std::vector<std::string>& out) {
  if (n == 0) {
    out.push_back(prefix);
    return;
  }
  for (std::size_t i = from; i < std::size(kStates); ++i) {
    Mixes(n - 1, prefix + kStates[i], i, out);
  }
}

}  // namespace

TEST_CASE("every trigger rule over every mix of up to two dependencies' states") {
  CHECK(std::size(kTriggerRuleNames) == 7);
  // Columns: all_success all_done all_failed one_failed one_success
  // none_failed always. Rows: S succeeded, F failed or timed out, K skipped,
  // C cancelled, P still pending.
  const std::vector<std::pair<std::string, std::string>> table = {
      {"", "run run run run run run run"},  // no dependencies: starts at once
      {"S", "run run skip skip run run run"},       {"F", "skip run run run skip skip run"},
      {"K", "skip run skip skip skip run run"},     {"C", "skip run skip skip skip skip run"},
      {"P", "wait wait wait wait wait wait wait"},  {"SS", "run run skip skip run run run"},
      {"SF", "skip run skip run run skip run"},     {"SK", "skip run skip skip run run run"},
      {"SC", "skip run skip skip run skip run"},    {"SP", "wait wait skip wait run wait wait"},
      {"FF", "skip run run run skip skip run"},     {"FK", "skip run skip run skip skip run"},
      {"FC", "skip run skip run skip skip run"},    {"FP", "skip wait wait run wait skip wait"},
      {"KK", "skip run skip skip skip run run"},    {"KC", "skip run skip skip skip skip run"},
      {"KP", "skip wait skip wait wait wait wait"}, {"CC", "skip run skip skip skip skip run"},
      {"CP", "skip wait skip wait wait skip wait"}, {"PP", "wait wait wait wait wait wait wait"},
  };
  std::vector<std::string> all;
  for (int n = 0; n <= 2; ++n) Mixes(n, "", 0, all);
  REQUIRE(all.size() == table.size());  // the table covers every mix
  for (const auto& entry : table) {
    CAPTURE(entry.first);
    CHECK(Row(Mix(entry.first)) == entry.second);
  }
}

TEST_CASE("a rule's verdict never changes once made, and every rule decides once all ended") {
  // Over every mix of up to four dependencies: ending a pending dependency in
  // any way keeps a run or skip verdict, and with nothing pending no rule
  // waits. This is what lets a rule fire early (one_failed, one_success).
  std::vector<std::string> all;
  for (int n = 0; n <= 4; ++n) Mixes(n, "", 0, all);
  for (const std::string& mix : all) {
    CAPTURE(mix);
    const UpstreamCounts up = Mix(mix);
    for (std::size_t r = 0; r < std::size(kTriggerRuleNames); ++r) {
      const auto rule = static_cast<TriggerRule>(r);
      CAPTURE(kTriggerRuleNames[r]);
      const TriggerVerdict verdict = EvaluateTrigger(rule, up);
      if (up.pending == 0) CHECK(verdict != TriggerVerdict::kWait);
      if (verdict == TriggerVerdict::kWait || up.pending == 0) continue;
      for (char end : {'S', 'F', 'K', 'C'}) {
        std::string later = mix;
        later[later.find('P')] = end;
        CHECK(EvaluateTrigger(rule, Mix(later)) == verdict);
      }
    }
  }
}

TEST_CASE("all_done and always wait for every dependency, then run whatever happened") {
  for (TriggerRule rule : {TriggerRule::kAllDone, TriggerRule::kAlways}) {
    CHECK(EvaluateTrigger(rule, Mix("FFFKP")) == TriggerVerdict::kWait);
    CHECK(EvaluateTrigger(rule, Mix("FFFKC")) == TriggerVerdict::kRun);
  }
}

}  // namespace picoflow
