// Steps more than one phase uses: the matrix gate against the live cluster that starts every stage,
// a wait for deployments, and the ingress certificate's Secret (the "tls" phase and `certs rotate`).
#pragma once

#include "compat/gate.hpp"
#include "tls/ingress.hpp"
#include "workflow/context.hpp"
#include "workflow/steps.hpp"

#include <chrono>
#include <string>
#include <vector>

namespace mlplat::phases {

// --- Interface ---

// Where the cluster layer's and the platform layer's manifests are written on the first control plane.
inline constexpr const char* k_manifest_dir = "/etc/kubernetes/mlplat/manifests";
inline constexpr const char* k_platform_dir = "/etc/kubernetes/mlplat/platform";

// A step that runs the matrix gate before `stage` against the live cluster (the API server's and
// kubelets' versions, read on the first control plane). Converged when the gate passes; a refusal
// is its error (exit 3), so nothing of the stage is applied.
workflow::Step gate_step(transport::Fleet& fleet, const compat::Row& row, compat::Stage stage);

// A wait for deployments of namespace `ns` to be available, whose error at the deadline lists the
// ones still not available.
workflow::Step deployments_step(transport::Fleet& fleet, std::string name, const std::string& ns, const std::vector<std::string>& names,
                                std::chrono::seconds deadline);

// The step that makes the gateway's kubernetes.io/tls Secret hold `cert` (compared by hash; the key
// travels on stdin, never on a command line or in a log).
workflow::Step tls_secret_step(transport::Fleet& fleet, const tls::IngressCertificate& cert);

// A join phase: `hosts` join through the cluster's endpoint as control planes or workers, with the
// join secrets the run's Context shares (made on the first control plane through its channel).
Result<workflow::Phase> join_phase(workflow::Context& ctx, std::string name, std::string summary_format, std::vector<size_t> hosts,
                                   bool control_plane);

// The names of the hosts a day-2 command works on (ctx.target_hosts()), in file order; with
// `control_planes_only`, only those whose role is control-plane.
std::vector<std::string> target_names(const workflow::Context& ctx, bool control_planes_only = false);

} // namespace mlplat::phases
