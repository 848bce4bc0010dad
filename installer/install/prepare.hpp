// The "prepare" phase: what every host needs before containerd and Kubernetes. Sysctls and kernel
// modules persisted in drop-in files (and applied now), swap off now and after reboot. The file
// contents are data (manifests/host/), so they can be reviewed and overridden with --data-dir.
#pragma once

#include "install/engine.hpp"

#include <functional>
#include <string>
#include <vector>

namespace mlplat::install {

// --- Interface ---

// Judges again, read-only, on one host what the preflight found that prepare fixes; an error names
// what still fails there.
using Recheck = std::function<Status(size_t host)>;

// The phase for `hosts` of `fleet`: modules, sysctls, swap, then `recheck` on each host (its last
// step; not run in dry-run, where nothing was fixed). Error when a data file is missing or malformed.
Result<Phase> prepare_phase(transport::Fleet& fleet, const std::vector<size_t>& hosts, Recheck recheck);

// The remote paths the phase writes.
inline constexpr const char* k_sysctl_file = "/etc/sysctl.d/90-mlplat.conf";
inline constexpr const char* k_modules_file = "/etc/modules-load.d/mlplat.conf";

} // namespace mlplat::install
