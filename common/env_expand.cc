#include "common/env_expand.h"

#include <algorithm>

namespace picoflow {
namespace {

bool IsNameStart(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; }
bool IsNameChar(char c) { return IsNameStart(c) || (c >= '0' && c <= '9'); }

// The reference starting at value[at] == '$' (at + 1 < size), or nullopt if
// the `$` starts none. `${` without `NAME}` is no reference.
std::optional<EnvReference> ReferenceAt(std::string_view value, std::size_t at) {
  std::size_t i = at + 1;
  const bool braces = i < value.size() && value[i] == '{';
  if (braces) ++i;
  const std::size_t name_start = i;
  if (i >= value.size() || !IsNameStart(value[i])) return std::nullopt;
  while (i < value.size() && IsNameChar(value[i])) ++i;
  const std::string_view name = value.substr(name_start, i - name_start);
  if (braces) {
    if (i >= value.size() || value[i] != '}') return std::nullopt;
    ++i;
  }
  return EnvReference{at, value.substr(at, i - at), name};
}

}  // namespace

bool IsVariableName(std::string_view name) {
  return !name.empty() && IsNameStart(name[0]) && std::all_of(name.begin(), name.end(), IsNameChar);
}

std::optional<EnvReference> FindEnvReference(std::string_view value, bool braces_only) {
  for (std::size_t i = 0; i + 1 < value.size(); ++i) {
    if (value[i] != '$') continue;
    if (value[i + 1] == '$') {
      ++i;  // an escaped `$`
      continue;
    }
    if (braces_only && value[i + 1] != '{') continue;
    if (std::optional<EnvReference> ref = ReferenceAt(value, i)) return ref;
  }
  return std::nullopt;
}

std::string CheckEnvSyntax(std::string_view value) {
  for (std::size_t i = 0; i + 1 < value.size(); ++i) {
    if (value[i] != '$') continue;
    if (value[i + 1] == '$') {
      ++i;
      continue;
    }
    if (value[i + 1] != '{' || ReferenceAt(value, i)) continue;
    const std::size_t close = value.find('}', i);
    const std::string_view shown =
        close == std::string_view::npos ? value.substr(i) : value.substr(i, close + 1 - i);
    return "'" + std::string(shown) +
           "' is not a variable reference: only ${NAME} and $NAME are expanded; write $$ for a "
           "literal $";
  }
  return "";
}

std::string ExpandEnvValue(std::string_view value, const EnvLookup& lookup) {
  if (value.find('$') == std::string_view::npos) return std::string(value);
  std::string out;
  out.reserve(value.size());
  for (std::size_t i = 0; i < value.size(); ++i) {
    if (value[i] != '$' || i + 1 == value.size()) {
      out += value[i];
    } else if (value[i + 1] == '$') {
      out += '$';
      ++i;
    } else if (std::optional<EnvReference> ref = ReferenceAt(value, i)) {
      if (std::optional<std::string_view> set = lookup(ref->name)) out += *set;
      i += ref->text.size() - 1;
    } else {
      out += '$';
    }
  }
  return out;
}

}  // namespace picoflow
