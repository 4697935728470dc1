#pragma once
// FieldReader: the diagnostics of one workflow load, and the typed readers
// that turn YAML nodes into values, reporting each problem at its node with
// a message that names the place (`task 'load': 'retry' must be ...`).
// Shared by workflow_load.cc and workflow_task_config.cc.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/diagnostic.h"
#include "common/yaml_tree.h"

namespace picoflow {

/// Names a value in messages: `prefix` is the context (`task 'load': ` or
/// empty), `key` the YAML key. Messages read `<prefix>'<key>' must be ...`.
struct Where {
  const std::string& prefix;
  std::string_view key;
};

/// Levenshtein distance with adjacent transpositions (optimal string
/// alignment), for "did you mean" hints.
std::size_t EditDistance(std::string_view a, std::string_view b);

/// The candidate closest to `wanted` if it is close enough to be a likely
/// typo (distance <= 1 for short words, <= 2 or 3 for longer ones), else
/// empty. Skips candidates whose length alone rules them out, so it stays
/// cheap over thousands of task names.
std::string_view ClosestMatch(std::string_view wanted,
                              std::span<const std::string_view> candidates);

/// ` (did you mean 'x'?)` or empty.
std::string DidYouMean(std::string_view match);

/// The words as a list for a message: "a", "a or b", "a, b or c".
std::string JoinOr(std::span<const std::string_view> words);

/// A count for a message, its noun plural unless it is 1: "1 task", "0 tasks",
/// "3 runs" (nouns whose plural adds an "s").
std::string CountOf(std::int64_t n, std::string_view noun);

/// Collects diagnostics (at most kMaxDiagnostics errors and as many warnings
/// are kept; the rest are counted) and reads typed values. Every reader returns nullopt both for a
/// null value (a key with no value: treated as not set) and after reporting
/// a problem; `problems()` tells the two apart.
class FieldReader {
 public:
  /// Problems kept per load; later ones are only counted (RPC replies stay small).
  static constexpr std::size_t kMaxDiagnostics = 100;

  /// `label` becomes Diagnostic::file.
  explicit FieldReader(std::string label) : label_(std::move(label)) {}

  /// Records a problem at `pos`.
  void Report(SourcePos pos, std::string message);
  /// Records a warning at `pos`: a likely mistake that leaves the file valid.
  void Warn(SourcePos pos, std::string message);
  /// Number of problems (errors) reported so far (kept or not); warnings do
  /// not count.
  std::size_t problems() const { return diagnostics_.size() + dropped_; }
  /// The problems in file order, plus a last line counting those not kept.
  Diagnostics Take();
  /// The warnings in file order, plus a last line counting those not kept.
  Diagnostics TakeWarnings();

  /// A plain decimal integer in [lo, hi]. Quoted numbers, fractions, other
  /// bases and values out of range (however many digits) are reported.
  std::optional<std::int64_t> Int(const YamlNode& v, Where w, std::int64_t lo, std::int64_t hi);
  /// Plain `true`/`false` (also `True`, `TRUE`, `False`, `FALSE`); anything else,
  /// `yes`/`no`/`on`/`off` and quoted strings included, is reported.
  std::optional<bool> Bool(const YamlNode& v, Where w);
  /// Any scalar, as text. Lists and maps are reported.
  std::optional<std::string> Text(const YamlNode& v, Where w);
  /// A duration (see duration.h) of at least `min`.
  std::optional<std::chrono::seconds> Duration(const YamlNode& v, Where w,
                                               std::chrono::seconds min);
  /// A list of scalars, or a single scalar when `allow_single`. Returns false
  /// (after reporting) if it is neither; bad items are reported and skipped.
  /// `positions`, if given, receives each kept item's position.
  bool TextList(const YamlNode& v, Where w, bool allow_single, std::vector<std::string>& out,
                std::vector<SourcePos>* positions = nullptr);
  /// A map of scalar keys to scalar values (a null value reads as ""), in
  /// file order. Returns false (after reporting) if it is not a map.
  bool TextMap(const YamlNode& v, Where w, std::vector<std::pair<std::string, std::string>>& out,
               std::vector<SourcePos>* key_positions = nullptr);

  /// Reports `<prefix>missing required key '<key>'` at `pos` if `v` is null
  /// or absent; returns true if it is present.
  bool Require(const YamlNode* v, Where w, SourcePos pos);

  /// Reports every key of `map` that is not in `known` as
  /// `<prefix>unknown <noun> '<k>' (did you mean '<x>'?)`, unless `explain`
  /// (if given) returns a message for it, which is reported instead.
  template <class Explain>
  void CheckKeys(const YamlNode& map, std::span<const std::string_view> known,
                 const std::string& prefix, std::string_view noun, Explain explain);
  void CheckKeys(const YamlNode& map, std::span<const std::string_view> known,
                 const std::string& prefix, std::string_view noun);

 private:
  // `<prefix>'<key>' must be <expected>, got <v><hint>` at v.
  void ReportType(const YamlNode& v, Where w, std::string_view expected,
                  std::string_view hint = {});

  std::string label_;
  Diagnostics diagnostics_;
  std::size_t dropped_ = 0;
  Diagnostics warnings_;
  std::size_t dropped_warnings_ = 0;
};

template <class Explain>
void FieldReader::CheckKeys(const YamlNode& map, std::span<const std::string_view> known,
                            const std::string& prefix, std::string_view noun, Explain explain) {
  for (std::size_t i = 0; i < map.entry_count(); ++i) {
    const YamlNode& key = map.key(i);
    bool found = false;
    for (std::string_view k : known) found = found || k == key.text;
    if (found) continue;
    if (std::string message = explain(key.text); !message.empty()) {
      Report(key.pos, prefix + message);
      continue;
    }
    Report(key.pos, prefix + "unknown " + std::string(noun) + " '" + key.text + "'" +
                        DidYouMean(ClosestMatch(key.text, known)));
  }
}

}  // namespace picoflow
