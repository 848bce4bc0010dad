// The "prepare" phase: what every host needs before containerd and Kubernetes. Sysctls and kernel
// modules persisted in drop-in files (and applied now), swap off now and after reboot. The file
// contents are data (manifests/host/), so they can be reviewed and overridden with --data-dir.
#pragma once

#include "install/engine.hpp"

#include <string>
#include <vector>

namespace mlplat::install {

// --- Interface ---

// The phase for `hosts` of `fleet`. Error when a data file is missing or malformed.
Result<Phase> prepare_phase(transport::Fleet& fleet, const std::vector<size_t>& hosts);

// The remote paths the phase writes.
inline constexpr const char* k_sysctl_file = "/etc/sysctl.d/90-mlplat.conf";
inline constexpr const char* k_modules_file = "/etc/modules-load.d/mlplat.conf";

} // namespace mlplat::install
