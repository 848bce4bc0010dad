// Reading the live cluster from the first control plane, whose kubectl is the cluster's administrator
// (the operator machine may not reach the API server): the versions the matrix gate judges. Status
// and upgrade read the cluster through here too.
#pragma once

#include "compat/gate.hpp"
#include "transport/fleet.hpp"

#include <optional>
#include <string>

namespace mlplat::kube {

// --- Interface ---

// The read-only script that prints the API server's and kubectl's versions (kubectl version -o json),
// a line "---mlplat---", and the nodes (kubectl get nodes -o json); empty parts when the API server
// does not answer.
std::string live_versions_script();

// The versions in the output of live_versions_script, or nullopt when the API server did not answer
// (a plan before kubeadm init) or the output is not what kubectl prints.
std::optional<compat::LiveVersions> parse_live_versions(const std::string& out);

// Runs the script on `host` and parses it.
Result<std::optional<compat::LiveVersions>> live_versions(transport::Fleet& fleet, size_t host);

} // namespace mlplat::kube
