#include "common/secret_masker.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

namespace picoflow {
namespace {

// The masked text as defined, computed on the whole text at once: every
// byte inside any occurrence of any value (of at least kMinMaskedSecret
// bytes) is masked, and each run of masked bytes becomes one `***`.
std::string Expected(const std::string& text, const std::vector<std::string>& values) {
  std::vector<bool> masked(text.size(), false);
  for (const std::string& v : values) {
    if (v.size() < kMinMaskedSecret) continue;
    for (std::size_t at = text.find(v); at != std::string::npos; at = text.find(v, at + 1)) {
      for (std::size_t k = at; k < at + v.size(); ++k) masked[k] = true;
    }
  }
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (!masked[i]) {
      out.push_back(text[i]);
    } else if (i == 0 || !masked[i - 1]) {
      out += kSecretMask;
    }
  }
  return out;
}

// The stream fed in chunks cut at `cuts` (ascending offsets).
std::string Streamed(const std::string& text, const std::vector<std::string>& values,
                     const std::vector<std::size_t>& cuts) {
  SecretMasker masker(values);
  std::string out;
  std::size_t from = 0;
  for (std::size_t cut : cuts) {
    out += masker.Add(std::string_view(text).substr(from, cut - from));
    from = cut;
  }
  out += masker.Add(std::string_view(text).substr(from));
  out += masker.Finish();
  return out;
}

// Every way to cut `text` in two, and in three, gives the masked text.
void CheckEverySplit(const std::string& text, const std::vector<std::string>& values) {
  const std::string want = Expected(text, values);
  CHECK(SecretMasker(values).MaskAll(text) == want);
  for (std::size_t a = 0; a <= text.size(); ++a) {
    CAPTURE(a);
    REQUIRE(Streamed(text, values, {a}) == want);
    for (std::size_t b = a; b <= text.size(); ++b) {
      CAPTURE(b);
      REQUIRE(Streamed(text, values, {a, b}) == want);
    }
  }
}

TEST_CASE("a value is masked wherever the stream is cut, into two chunks or three") {
  CheckEverySplit("user=admin pass=hunter22 done\n", {"hunter22"});
  CheckEverySplit("hunter22", {"hunter22"});
  CheckEverySplit("hunter22hunter22 hunter2 hunter22", {"hunter22"});
  CheckEverySplit("hhhunter22hunte", {"hunter22"});
}

TEST_CASE("one byte at a time, the masked stream is the masked text") {
  const std::string text = "a s3cr3t-value, then s3cr3t-valu and s3cr3t-value.";
  const std::vector<std::string> values{"s3cr3t-value"};
  SecretMasker masker(values);
  std::string out;
  for (char c : text) out += masker.Add(std::string_view(&c, 1));
  out += masker.Finish();
  CHECK(out == "a ***, then s3cr3t-valu and ***.");
}

TEST_CASE("overlapping values are masked as one run of masked bytes") {
  CheckEverySplit("xx abcdefgh yy", {"abcdef", "cdefgh"});
  CHECK(SecretMasker({"abcdef", "cdefgh"}).MaskAll("xx abcdefgh yy") == "xx *** yy");
  CHECK(SecretMasker({"abcd", "cdef"}).MaskAll("abcd cdef abcdef") == "*** *** ***");
  CheckEverySplit("aaaaaaa", {"aaaa"});
}

TEST_CASE("a value that is a prefix of another: the longer one is masked whole") {
  const std::vector<std::string> values{"token", "token-long-part"};
  CHECK(SecretMasker(values).MaskAll("a token-long-part b token- c") == "a *** b ***- c");
  CheckEverySplit("a token-long-part b token- c token-long", values);
  CheckEverySplit("a token-long-part b", {"token-long-part", "token"});
}

TEST_CASE("values shorter than four bytes are not masked; nothing to mask changes nothing") {
  SecretMasker masker({"abc", "", "x"});
  CHECK(masker.empty());
  CHECK(masker.Add("abc x abc") == "abc x abc");
  CHECK(masker.Finish().empty());
  CHECK(SecretMasker({"abc", "abcd"}).MaskAll("abc abcd") == "abc ***");
}

TEST_CASE("only what may still be the start of a value is held back") {
  SecretMasker masker({"password1"});
  CHECK(masker.Add("line one\n") == "line one\n");  // nothing held: no value starts here
  CHECK(masker.Add("say pass") == "say ");          // "pass" may be the start
  CHECK(masker.Add("port\n") == "passport\n");      // it was not
  CHECK(masker.Add("passw") == "");
  CHECK(masker.Add("ord1!") == "***!");
  CHECK(masker.Add("passwo") == "");
  CHECK(masker.Finish() == "passwo");  // the end of the stream shows what was held
}

TEST_CASE("a value split across 64 KiB reads is masked, and so is one inside a read") {
  const std::string secret = "correct-horse-battery-staple";
  const std::size_t kRead = 64 * 1024;
  std::string text(3 * kRead, 'x');
  // One value across each read boundary, at every offset of the value, and
  // one in the middle of a read.
  for (std::size_t k = 1; k < 3; ++k) {
    text.replace(k * kRead - (k * 7) % secret.size(), secret.size(), secret);
  }
  text.replace(kRead / 2, secret.size(), secret);
  std::string out;
  SecretMasker masker({secret});
  for (std::size_t at = 0; at < text.size(); at += kRead) {
    out += masker.Add(std::string_view(text).substr(at, kRead));
  }
  out += masker.Finish();
  CHECK(out == Expected(text, {secret}));
  CHECK(out.find(secret) == std::string::npos);
  CHECK(out.size() == text.size() - 3 * (secret.size() - kSecretMask.size()));
  for (std::size_t offset = 1; offset < secret.size(); ++offset) {
    CAPTURE(offset);
    std::string t(2 * kRead, 'y');
    t.replace(kRead - offset, secret.size(), secret);
    CHECK(Streamed(t, {secret}, {kRead}) == Expected(t, {secret}));
  }
}

TEST_CASE("a masked run that spans chunks gives one mask, not one per chunk") {
  SecretMasker masker({"abcdef", "cdefgh"});
  std::string out = masker.Add("abcd");
  out += masker.Add("efgh!");
  out += masker.Finish();
  CHECK(out == "***!");
}

}  // namespace
}  // namespace picoflow
