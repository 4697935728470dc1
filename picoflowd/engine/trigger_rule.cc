#include "picoflowd/engine/trigger_rule.h"

namespace picoflow {

TriggerVerdict EvaluateTrigger(TriggerRule rule, const UpstreamCounts& up) {
  using enum TriggerVerdict;
  if (up.total() == 0) return kRun;
  const bool ended = up.pending == 0;
  switch (rule) {
    case TriggerRule::kAllSuccess:
      if (up.failed + up.skipped + up.cancelled > 0) return kSkip;
      return ended ? kRun : kWait;
    case TriggerRule::kAllFailed:
      if (up.succeeded + up.skipped + up.cancelled > 0) return kSkip;
      return ended ? kRun : kWait;
    case TriggerRule::kNoneFailed:
      if (up.failed + up.cancelled > 0) return kSkip;
      return ended ? kRun : kWait;
    case TriggerRule::kOneFailed:
      if (up.failed > 0) return kRun;
      return ended ? kSkip : kWait;
    case TriggerRule::kOneSuccess:
      if (up.succeeded > 0) return kRun;
      return ended ? kSkip : kWait;
    case TriggerRule::kAllDone:
    case TriggerRule::kAlways: return ended ? kRun : kWait;
  }
  return kWait;
}

}  // namespace picoflow
