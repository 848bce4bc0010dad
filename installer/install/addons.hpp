// The phases after the joins, all on the first control plane, whose kubectl talks to the API server
// (the operator machine may not reach it): "kubeconfig" (admin.conf fetched to the state directory),
// "cni" (Calico through its operator, or Flannel through an overlay; then every node Ready), "storage"
// (OpenEBS LocalPV hostpath as the default StorageClass, proven by a volume a non-root pod writes),
// and "cleanup" (bootstrap tokens and the kubeadm-certs Secret removed). Objects are applied
// server-side; a step is converged when `kubectl diff` finds nothing to change. Every wait has a
// deadline and names what it waits for.
#pragma once

#include "config/model.hpp"
#include "config/profile.hpp"
#include "install/engine.hpp"
#include "install/runtime.hpp"
#include "install/steps.hpp"

#include <filesystem>
#include <string>

namespace mlplat::install {

// --- Interface ---

// A step that applies the manifest `remote_path` with server-side apply. With `content`, the file is
// first written there (0600, directory 0700); without, it is already on the host (the bundle).
Step apply_step(transport::Fleet& fleet, std::string name, std::string remote_path, std::optional<std::string> content);

// "kubeconfig": the first control plane's admin.conf (never super-admin.conf) to `local` (0600).
Phase kubeconfig_phase(transport::Fleet& fleet, size_t first_control_plane, std::filesystem::path local);

// "cni": Calico or Flannel as the effective settings say, then every node Ready.
Result<Phase> cni_phase(transport::Fleet& fleet, const config::Cluster& cluster, const config::Effective& effective,
                        const RuntimeInputs& in);

// "storage": OpenEBS LocalPV hostpath at the effective base path, the only default StorageClass, proven.
Result<Phase> storage_phase(transport::Fleet& fleet, const config::Effective& effective, const RuntimeInputs& in);

// "cleanup": the bootstrap tokens and the kubeadm-certs Secret removed.
Phase cleanup_phase(transport::Fleet& fleet, size_t first_control_plane);

} // namespace mlplat::install
