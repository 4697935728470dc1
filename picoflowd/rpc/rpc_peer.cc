#include "picoflowd/rpc/rpc_peer.h"

#include <grp.h>
#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

namespace picoflow {
namespace {

// The peer process's own supplementary groups (Linux >= 4.13).
std::optional<std::vector<gid_t>> PeerGroups(int fd) {
  std::vector<gid_t> groups(64);
  for (int tries = 0; tries < 4; ++tries) {
    socklen_t len = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &len) == 0) {
      groups.resize(len / sizeof(gid_t));
      return groups;
    }
    if (errno != ERANGE) return std::nullopt;
    groups.resize(len / sizeof(gid_t) + 1);
  }
  return std::nullopt;
}

// The groups the uid's account belongs to, from the user database.
std::vector<gid_t> AccountGroups(uid_t uid) {
  std::vector<char> buf(16384);
  passwd pw{};
  passwd* found = nullptr;
  if (::getpwuid_r(uid, &pw, buf.data(), buf.size(), &found) != 0 || found == nullptr) {
    return {};
  }
  int count = 64;
  std::vector<gid_t> groups(static_cast<std::size_t>(count));
  if (::getgrouplist(pw.pw_name, pw.pw_gid, groups.data(), &count) < 0) {
    groups.resize(static_cast<std::size_t>(count));
    if (::getgrouplist(pw.pw_name, pw.pw_gid, groups.data(), &count) < 0) return {};
  }
  groups.resize(static_cast<std::size_t>(count));
  return groups;
}

}  // namespace

const char* AccessName(Access access) {
  switch (access) {
    case Access::kNone: return "none";
    case Access::kRead: return "read";
    case Access::kWrite: return "write";
  }
  return "?";
}

std::string Peer::ToString() const {
  if (!remote.empty()) return remote;
  return "uid " + std::to_string(uid) + " pid " + std::to_string(pid);
}

Access DecideAccess(uid_t uid, gid_t gid, std::span<const gid_t> groups,
                    const AccessPolicy& policy) {
  if (uid == 0 || uid == policy.owner_uid) return Access::kWrite;
  if (!policy.read_group) return Access::kNone;
  const gid_t group = *policy.read_group;
  if (gid == group || std::find(groups.begin(), groups.end(), group) != groups.end()) {
    return Access::kRead;
  }
  return Access::kNone;
}

Result<Peer> IdentifyPeer(int fd, const AccessPolicy& policy) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || len != sizeof cred) {
    return Err(ErrorCode::kIo, std::string("SO_PEERCRED: ") + std::strerror(errno));
  }
  Peer peer{cred.pid, cred.uid, cred.gid, Access::kNone};
  peer.access = DecideAccess(cred.uid, cred.gid, {}, policy);
  if (peer.access == Access::kNone && policy.read_group) {
    auto groups = PeerGroups(fd);
    std::vector<gid_t> list = groups ? std::move(*groups) : AccountGroups(cred.uid);
    peer.access = DecideAccess(cred.uid, cred.gid, list, policy);
  }
  return peer;
}

}  // namespace picoflow
