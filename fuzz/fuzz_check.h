#pragma once
// What every fuzz target checks with: an invariant that does not hold is a
// crash libFuzzer records (the input is saved as an artifact), with one line
// naming the invariant.

#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace picoflow::fuzz {

/// Aborts with `what` on stderr unless `holds`.
inline void Require(bool holds, std::string_view what) {
  if (holds) return;
  std::fprintf(stderr, "fuzz invariant broken: %.*s\n", static_cast<int>(what.size()), what.data());
  std::abort();
}

}  // namespace picoflow::fuzz
