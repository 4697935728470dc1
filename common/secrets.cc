#include "common/secrets.h"

#include <cstdlib>

#include "common/env_expand.h"
#include "common/private_file.h"

namespace picoflow {
namespace {

constexpr std::string_view kRefOpen = "${secret:";

std::string Prefix(const Secret& secret) {
  return "secret '" + secret.name + "' (" + SecretSourceText(secret) + "): ";
}

Result<std::string> ReadFileSecret(const Secret& secret, const std::string& path,
                                   const std::string& missing_fix) {
  Result<std::string> value = ReadPrivateFile(path);
  if (value.ok()) return value;
  std::string message = Prefix(secret) + value.error().message;
  switch (value.error().code) {
    case ErrorCode::kNotFound: message += " (" + missing_fix + ")"; break;
    case ErrorCode::kIo:
      message += " (picoflowd's user must be able to read it: make that user its owner, chmod 600)";
      break;
    default: break;  // ReadPrivateFile's message says what to do
  }
  return Err(value.error().code, std::move(message));
}

}  // namespace

std::optional<SecretRef> FindSecretRef(std::string_view text, std::size_t from) {
  const std::size_t at = text.find(kRefOpen, from);
  if (at == std::string_view::npos) return std::nullopt;
  SecretRef ref;
  ref.pos = at;
  const std::size_t start = at + kRefOpen.size();
  const std::size_t close = text.find('}', start);
  if (close == std::string_view::npos) {
    ref.size = text.size() - at;
    return ref;
  }
  ref.size = close + 1 - at;
  const std::string_view name = text.substr(start, close - start);
  if (IsVariableName(name)) ref.name = name;
  return ref;
}

std::string ExpandSecretRefs(std::string_view text, const EnvList& values) {
  std::string out;
  std::size_t from = 0;
  while (std::optional<SecretRef> ref = FindSecretRef(text, from)) {
    out.append(text, from, ref->pos - from);
    const std::string_view written = text.substr(ref->pos, ref->size);
    bool found = false;
    for (const auto& [name, value] : values) {
      if (!ref->name.empty() && name == ref->name) {
        out += value;
        found = true;
        break;
      }
    }
    if (!found) out.append(written);
    from = ref->pos + ref->size;
  }
  out.append(text, from);
  return out;
}

std::string SecretSourceText(const Secret& secret) {
  return std::string(kSecretSourceNames[static_cast<std::size_t>(secret.source)]) + " " +
         secret.from;
}

Result<std::string> ReadSecret(const Secret& secret) {
  switch (secret.source) {
    case SecretSource::kFile:
      return ReadFileSecret(secret, secret.from,
                            "create it, readable by picoflowd's user only (chmod 600), or fix the "
                            "path in 'secrets:'");
    case SecretSource::kEnv: {
      const char* value = std::getenv(secret.from.c_str());
      if (value != nullptr) return std::string(value);
      return Err(ErrorCode::kNotFound,
                 Prefix(secret) + secret.from +
                     " is not set in picoflowd's environment (set it where the daemon starts, "
                     "e.g. Environment= or EnvironmentFile= in its systemd unit, or use a "
                     "'file:' or 'credential:' secret)");
    }
    case SecretSource::kCredential: {
      const char* dir = std::getenv(kCredentialsDirectoryVar);
      const std::string fix = "add LoadCredential=" + secret.from +
                              ":/path/to/file (or SetCredentialEncrypted=) to picoflowd's "
                              "systemd unit and restart it";
      if (dir == nullptr || *dir == '\0') {
        return Err(ErrorCode::kNotFound,
                   Prefix(secret) + "$" + kCredentialsDirectoryVar +
                       " is not set: picoflowd was not given any systemd credential (" + fix + ")");
      }
      return ReadFileSecret(secret, std::string(dir) + "/" + secret.from, fix);
    }
  }
  return Err(ErrorCode::kInternal, Prefix(secret) + "unknown source");
}

Result<EnvList> ReadSecrets(const std::vector<Secret>& secrets) {
  EnvList values;
  values.reserve(secrets.size());
  for (const Secret& secret : secrets) {
    Result<std::string> value = ReadSecret(secret);
    if (!value.ok()) return value.error();
    values.emplace_back(secret.name, std::move(*value));
  }
  return values;
}

}  // namespace picoflow
