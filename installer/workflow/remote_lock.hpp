// The cluster lock on the first control plane, for runs from different operator machines (the local
// lock only sees runs from this one). The lock file names its holder; a heartbeat keeps it alive
// while the holder's SSH connection to that host lives: a detached loop, started as a transient
// service with systemd-run (never a child of the SSH session), touches the heartbeat every 10 s until
// that connection's sshd process ends or the lock changes hands. A lock whose heartbeat is older than
// 30 s is stale: taken over with a warning that names the old holder.
#pragma once

#include "transport/fleet.hpp"

#include <chrono>
#include <string>

namespace mlplat::workflow {

// --- Interface ---

inline constexpr const char* k_remote_lock_dir = "/var/lib/mlplat/locks";

struct RemoteLockTiming {
  std::chrono::seconds stale{30};
  std::chrono::seconds beat{10};
};

// This operator machine's id (/etc/machine-id), which the lock's holder line ends with.
std::string machine_id();

// Takes the lock of `cluster` on `host` for `holder` (one line naming the run, ending with
// " on machine <machine_id()>"). Fails with ErrorCode::locked (exit 6) naming the live holder and
// how old its heartbeat is. A lock held by an earlier run of this machine is taken over at once (this
// run holds the machine's local lock, so that run is gone), one with a heartbeat older than 30 s too.
// With `only_if_present`, a host without mlplat's directory (/var/lib/mlplat: nothing of mlplat's
// to guard, a host reset already) is not locked, and nothing is written there: false is returned.
Result<bool> acquire_remote_lock(transport::Fleet& fleet, size_t host, const std::string& cluster, const std::string& holder,
                                 RemoteLockTiming timing = {}, bool only_if_present = false);

// Releases it when `holder` still holds it (the heartbeat loop then ends by itself). With
// `remove_empty` (reset), the lock directory and mlplat's directory go too once nothing else is in them.
Status release_remote_lock(transport::Fleet& fleet, size_t host, const std::string& cluster, const std::string& holder,
                           bool remove_empty = false);

} // namespace mlplat::workflow
