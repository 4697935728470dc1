#pragma once
// Secrets at run time: reading the values of a task's `secrets:` when an
// attempt starts, and the `${secret:NAME}` references an http task's url
// and headers and an ssh task's env values may hold
// (docs/workflow-format.md, "Secrets").

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "common/workflow.h"

namespace picoflow {

/// The variable of the daemon's environment that systemd's
/// `LoadCredential=` sets: the directory of the service's credentials.
inline constexpr char kCredentialsDirectoryVar[] = "CREDENTIALS_DIRECTORY";

/// One `${secret:NAME}` in a value.
struct SecretRef {
  std::size_t pos = 0;   ///< where its `$` is
  std::size_t size = 0;  ///< its length, `${` to `}`
  std::string_view name;
};

/// The first `${secret:` of `text` at or after `from`, nullopt if none.
/// A reference without its `}` or with an invalid name comes back with an
/// empty `name` (and `size` up to the end of what it could be).
std::optional<SecretRef> FindSecretRef(std::string_view text, std::size_t from = 0);

/// `text` with every `${secret:NAME}` replaced by NAME's value in `values`
/// (name, value pairs); a reference to a name not in `values` stays as
/// written (the loader refuses those).
std::string ExpandSecretRefs(std::string_view text, const EnvList& values);

/// Where a secret is read from, for messages: "file /etc/x", "env TOKEN",
/// "credential db".
std::string SecretSourceText(const Secret& secret);

/// The value of `secret`, read now: a `file` or `credential` through
/// ReadPrivateFile (refused if group or others may access it), an `env`
/// from this process's environment. Returns an Error whose message names
/// the secret, its source and the fix, never a value.
Result<std::string> ReadSecret(const Secret& secret);

/// The values of `secrets`, in order, as (name, value) pairs; the first
/// secret that cannot be read is the error (ReadSecret).
Result<EnvList> ReadSecrets(const std::vector<Secret>& secrets);

}  // namespace picoflow
