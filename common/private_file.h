#pragma once
// Files that hold a credential (a secret's `file:`, an e-mail target's
// `password_file`): read whole, refused if group or others may access them,
// as ssh refuses a private key that is (docs/workflow-format.md, "Secrets").

#include <cstddef>
#include <string>

#include "common/result.h"

namespace picoflow {

/// The most a credential file may hold; a longer one is refused (a
/// credential is a line, not a data set).
inline constexpr std::size_t kPrivateFileMax = 64 * 1024;

/// The content of `path`, with one trailing newline (or "\r\n") removed, as
/// `$(cat file)` does for the usual one-line credential. Refused (kInvalid)
/// if it is not a regular file, if group or others have any permission on
/// it (the message names the mode and the fix: chmod 600), or if it is
/// longer than kPrivateFileMax; kNotFound / kIo if it cannot be read.
Result<std::string> ReadPrivateFile(const std::string& path);

}  // namespace picoflow
