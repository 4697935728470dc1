#include "common/env_expand.h"

#include <doctest/doctest.h>

#include <map>
#include <string>
#include <vector>

namespace picoflow {
namespace {

std::string Expand(std::string_view value) {
  const std::map<std::string, std::string, std::less<>> env = {
      {"PATH", "/usr/bin:/bin"}, {"HOME", "/home/pf"}, {"EMPTY", ""}};
  return ExpandEnvValue(value, [&](std::string_view name) -> std::optional<std::string_view> {
    auto it = env.find(name);
    if (it == env.end()) return std::nullopt;
    return it->second;
  });
}

TEST_CASE("${NAME} and $NAME expand, unset ones to nothing, and $$ is a literal $") {
  CHECK(Expand("/opt/bin:${PATH}") == "/opt/bin:/usr/bin:/bin");
  CHECK(Expand("$HOME/.cache") == "/home/pf/.cache");
  CHECK(Expand("${HOME}x $HOMEx") == "/home/pfx ");  // $HOMEx names HOMEx, which is unset
  CHECK(Expand("a${UNSET}b$EMPTY") == "ab");
  CHECK(Expand("price: $$5, $$HOME, $$$HOME") == "price: $5, $HOME, $/home/pf");
  // A `$` that starts no reference stays.
  CHECK(Expand("$ $1 $- ${ x} ${1} $(date) $") == "$ $1 $- ${ x} ${1} $(date) $");
  CHECK(Expand("no dollar at all") == "no dollar at all");
}

TEST_CASE("FindEnvReference finds the first reference, $$ excluded, braces only if asked") {
  auto ref = FindEnvReference("cd $$x; a=${HOME}/$PATH");
  REQUIRE(ref.has_value());
  CHECK(ref->pos == 10);
  CHECK(ref->text == "${HOME}");
  CHECK(ref->name == "HOME");
  CHECK(FindEnvReference("$filter=x&${T}", true)->text == "${T}");
  CHECK_FALSE(FindEnvReference("https://h/odata?$filter=x", true).has_value());
  CHECK(FindEnvReference("https://h/odata?$filter=x")->text == "$filter");
  CHECK_FALSE(FindEnvReference("$$HOME $ $1 ${}").has_value());
}

TEST_CASE("CheckEnvSyntax refuses ${ that is not ${NAME}, and nothing else") {
  for (const char* ok : {"", "${PATH}", "$HOME", "$$", "$${x", "$ ", "$1", "a$", "$(date)"}) {
    CAPTURE(ok);
    CHECK(CheckEnvSyntax(ok).empty());
  }
  CHECK(CheckEnvSyntax("${HOME:-/root}/x") ==
        "'${HOME:-/root}' is not a variable reference: only ${NAME} and $NAME are expanded; "
        "write $$ for a literal $");
  CHECK(CheckEnvSyntax("/a:${PATH") ==
        "'${PATH' is not a variable reference: only ${NAME} and $NAME are expanded; write $$ "
        "for a literal $");
  CHECK(CheckEnvSyntax("${}").rfind("'${}' is not a variable reference", 0) == 0);
}

}  // namespace
}  // namespace picoflow
