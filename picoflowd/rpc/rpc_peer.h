#pragma once
// Peer credentials of a control-socket connection (SO_PEERCRED) and the
// access they grant. The decision is made once per connection; the
// dispatcher enforces it per method.

#include <sys/types.h>

#include <optional>
#include <span>
#include <string>

#include "common/result.h"

namespace picoflow {

/// What a connection may do.
enum class Access {
  kNone,   ///< nothing: the first request is refused and the connection closed
  kRead,   ///< read-only methods (members of the configured group)
  kWrite,  ///< everything (root and the daemon's own uid)
};

/// "none", "read", "write".
const char* AccessName(Access access);

/// Who may connect: the daemon's uid (and root) fully, `read_group` read-only.
struct AccessPolicy {
  uid_t owner_uid = 0;
  std::optional<gid_t> read_group;
};

/// The process at the other end of a connection, as the kernel saw it at
/// connect() time, and the access that grants.
struct Peer {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  Access access = Access::kNone;
  /// Set for a caller that did not come over the control socket (the HTTP
  /// API: `http 127.0.0.1:51234`); then uid and pid mean nothing.
  std::string remote;

  /// `uid 1000 pid 4242` (or `remote`) for logs and error messages.
  std::string ToString() const;
};

/// The pure decision: root or the owner -> kWrite; `gid` or any of
/// `groups` equal to the read group -> kRead; else kNone.
Access DecideAccess(uid_t uid, gid_t gid, std::span<const gid_t> groups,
                    const AccessPolicy& policy);

/// Reads SO_PEERCRED (and, only when the read group matters, the peer's
/// supplementary groups: SO_PEERGROUPS, else getgrouplist of its uid) of the
/// connected Unix socket `fd` and decides its access. Returns an Error (kIo)
/// if the kernel does not give the credentials.
Result<Peer> IdentifyPeer(int fd, const AccessPolicy& policy);

}  // namespace picoflow
