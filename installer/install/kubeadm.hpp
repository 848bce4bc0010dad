// The "init" phase: kubeadm init on the first control plane from a v1beta4 config that mlplat writes
// from the cluster file and the matrix row (manifests/kubeadm/init.yaml), validated on the host by
// kubeadm itself, never run twice (a journalled once-step), with the token and certificate key
// printing off; then a wait, with a deadline, for the API server to answer /readyz.
#pragma once

#include "compat/matrix.hpp"
#include "config/model.hpp"
#include "install/engine.hpp"

#include <string>

namespace mlplat::install {

// --- Interface ---

inline constexpr const char* k_kubeadm_init_config = "/etc/kubernetes/mlplat/kubeadm-init.yaml";
// Where the programs mlplat runs as services of a host keep their output and exit status (0700).
inline constexpr const char* k_remote_run_dir = "/var/lib/mlplat/run";

// The kubeadm configuration for the first control plane `host` of `cluster`.
Result<std::string> render_init_config(const config::Cluster& cluster, const compat::Row& row, const config::Host& host);

// Whether the control planes also run the workloads: a cluster without workers (one host alone, or
// only control planes). Their nodes then get no control-plane taint (kubeadm's taints: []), else
// storage and Pipelines would never schedule.
bool control_planes_run_workloads(const config::Cluster& cluster);

// The phase on the first control plane.
Result<Phase> init_phase(transport::Fleet& fleet, const config::Cluster& cluster, const compat::Row& row, size_t first_control_plane,
                         std::chrono::seconds api_deadline = std::chrono::seconds(300));

} // namespace mlplat::install
