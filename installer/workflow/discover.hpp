// What the hosts say of the cluster before a run trusts its own journal: which control plane already
// runs it (kubeadm init left admin.conf and the API server's manifest there) and which hosts are its
// nodes (their /etc/kubernetes/pki/ca.crt is that cluster's CA). This is how install works from
// another operator machine or after the state directory was lost: it never runs a second kubeadm
// init, and the doctor takes what kubeadm left on the cluster's own nodes as the cluster's.
#pragma once

#include "workflow/context.hpp"

#include <optional>
#include <set>
#include <string>

namespace mlplat::workflow {

// --- Interface ---

struct Discovered {
  std::optional<size_t> control_plane;  // a control plane of the cluster file that runs the cluster
  std::string ca_sha256;                // the cluster CA's certificate, hashed ("" when none runs)
  std::set<size_t> members;             // hosts whose cluster CA is that one (the control plane too)
  std::set<size_t> control_planes;      // the control planes of the file that run it
};

// One read-only command per host (unreachable hosts are left to the preflight). The file's first
// control plane is preferred when it runs the cluster; otherwise the first control plane that does.
Result<Discovered> discover_cluster(Context& ctx);

// Applies `found` to `ctx`: a control plane that runs the cluster becomes the one the run works from
// (with a line saying so when it is not the file's first), and the control planes that run it are
// ctx.running_control_planes; warns when the state directory lacks the
// ingress CA of a cluster that runs (a new CA would replace the gateway's certificate).
void adopt_discovered(Context& ctx, const Discovered& found);

} // namespace mlplat::workflow
