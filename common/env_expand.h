#pragma once
// Variable references in workflow values: `${NAME}` and `$NAME`, `$$` for a
// literal `$`. Only the `env` values of shell tasks are expanded, from the
// daemon's environment when an attempt starts; elsewhere a reference is
// left as written and the loader warns about it (docs/workflow-format.md,
// "Variables").

#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace picoflow {

/// One `$NAME` or `${NAME}` in a value.
struct EnvReference {
  std::size_t pos = 0;    ///< where its `$` is
  std::string_view text;  ///< as written: `$HOME`, `${HOME}`
  std::string_view name;  ///< `HOME`
};

/// The first `${NAME}` of `value` and, unless `braces_only`, the first
/// `$NAME` (NAME is `[A-Za-z_][A-Za-z0-9_]*`); `$$` is skipped as an escaped
/// `$`. nullopt if there is none.
std::optional<EnvReference> FindEnvReference(std::string_view value, bool braces_only = false);

/// Empty if every `${` of `value` (outside `$$`) opens a `${NAME}`, else why
/// not, e.g. "'${HOME:-/root}' is not a variable reference: only ${NAME} and
/// $NAME are expanded; write $$ for a literal $".
std::string CheckEnvSyntax(std::string_view value);

/// True if `name` is a variable name as references take it:
/// `[A-Za-z_][A-Za-z0-9_]*` (param names and output keys are too).
bool IsVariableName(std::string_view name);

/// Returns a variable's value, or nullopt if it is not set.
using EnvLookup = std::function<std::optional<std::string_view>(std::string_view name)>;

/// `value` with each `$NAME` and `${NAME}` replaced by `lookup(NAME)` (empty if
/// unset) and each `$$` by `$`; any other `$` stays as it is. A `value`
/// without `$` comes back unchanged without calling `lookup`.
std::string ExpandEnvValue(std::string_view value, const EnvLookup& lookup);

}  // namespace picoflow
