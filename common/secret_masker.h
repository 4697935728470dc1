#pragma once
// SecretMasker: replaces every secret value in one stream of bytes by `***`
// as the bytes arrive in chunks of any size, a value split between two
// chunks included (docs/workflow-format.md, "Secrets").

#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace picoflow {

/// Values shorter than this are not masked: `***` in place of every "a" or
/// "12" would garble the output and hide nothing worth hiding.
inline constexpr std::size_t kMinMaskedSecret = 4;

/// The replacement of a masked value.
inline constexpr std::string_view kSecretMask = "***";

/// Masks one stream. Where values overlap in the text (one ends inside
/// another, or one is a prefix of another), every byte that belongs to any
/// of them is masked, and a run of masked bytes becomes one `***`. To see a
/// value split between chunks, Add() holds back the end of a chunk that
/// could be the start of a value: at most the longest value's length - 1
/// bytes, and only while they could still be one; Finish() hands them out.
class SecretMasker {
 public:
  /// `values`: the secrets to mask; those shorter than kMinMaskedSecret and
  /// duplicates are ignored.
  explicit SecretMasker(const std::vector<std::string>& values);

  /// True if there is nothing to mask: Add() returns its input unchanged.
  bool empty() const { return values_.empty(); }

  /// Takes the next chunk; returns what may be shown of the stream so far,
  /// masked (possibly empty, while a held-back end may be a value's start).
  std::string Add(std::string_view data);
  /// The end of the stream: returns what was held back, masked.
  std::string Finish();

  /// `text` (a whole string: an error, an output) with every value masked.
  std::string MaskAll(std::string_view text) const;

 private:
  // Scans held_ + the new data; with `final`, holds nothing back.
  std::string Scan(std::string_view data, bool final);
  // The longest value that starts at text[i] (0 if none).
  std::size_t MatchAt(std::string_view text, std::size_t i) const;
  // True if text[i..] is shorter than some value and that value starts with it.
  bool MayStartValue(std::string_view text, std::size_t i) const;

  std::vector<std::string> values_;
  std::array<bool, 256> first_{};  ///< bytes some value starts with
  std::size_t max_len_ = 0;
  std::string held_;         ///< bytes not shown yet: a possible start of a value
  std::size_t covered_ = 0;  ///< bytes at the front of held_ that a match already masks
  bool masking_ = false;     ///< the last thing shown was `***` (a masked run may go on)
};

}  // namespace picoflow
