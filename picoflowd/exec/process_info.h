#pragma once
// Process identity facts read from /proc: a process's start time and the boot
// id. Together with a pgid they name a process group across a daemon crash
// without ever confusing it with a later process that reused the pid.

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace picoflow {

/// The start time of `pid`: field 22 of /proc/PID/stat, in clock ticks since
/// boot. Readable for a zombie too. Returns nullopt if the process does not
/// exist or the file cannot be parsed.
std::optional<std::uint64_t> ReadProcessStartTime(pid_t pid);

/// CLOCK_BOOTTIME now, in the clock ticks of ReadProcessStartTime (the
/// kernel takes a process's start time from that clock when it forks; time
/// namespaces shift both alike). A process forked between two readings that
/// agree started at exactly that tick, so its start time is known without a
/// read of /proc/PID/stat, which costs more than the spawn itself.
std::uint64_t BootTicks();

/// The current boot id (/proc/sys/kernel/random/boot_id, without the newline),
/// read once and cached for the life of the process. Returns "" if unreadable.
const std::string& ReadBootId();

/// SIGKILLs process group `pgid` only if it is still the group that was
/// recorded: the boot id equals `boot_id` and the group leader (pid == pgid)
/// exists with start time `start_time`. A reused pid is therefore never hit;
/// a group whose leader is gone is left alone, even if members survive (under
/// systemd, KillMode has already killed them). Returns true if the group was
/// signalled. The check and the kill are not atomic: the pid would have to be
/// freed and reused between two syscalls for this to matter.
bool KillProcessGroupIfSame(pid_t pgid, std::uint64_t start_time, const std::string& boot_id);

/// The processes of the calling process's uid whose initial environment
/// (/proc/PID/environ) holds `name`=`value`, the caller excluded. O(processes),
/// for a daemon's start, not a hot path; an unreadable /proc finds none.
std::vector<pid_t> FindProcessesWithEnv(std::string_view name, std::string_view value);

/// True if some process of group `pgid` is not a zombie (reads /proc/*/stat;
/// O(processes), for the end of a kill, not a hot path). False if none is
/// found or /proc is unreadable.
bool ProcessGroupHasLiveMember(pid_t pgid);

}  // namespace picoflow
