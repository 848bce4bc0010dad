#include "config/topology.hpp"

#include <fmt/core.h>

namespace mlplat::config {

std::vector<Advice> topology_warnings(const Cluster& cluster)
{
  std::vector<Advice> out;
  size_t control_planes = 0;
  const Host* first = nullptr;
  for (const auto& h : cluster.hosts) {
    if (h.role == Role::control_plane) {
      first = first == nullptr ? &h : first;
      ++control_planes;
    }
  }
  if (control_planes >= 2 && cluster.network.control_plane_endpoint.empty()) {
    out.push_back({fmt::format("{} control planes but no spec.network.controlPlaneEndpoint: every node reaches the API servers through "
                               "the first control plane ({}:6443), a single point of failure",
                               control_planes, first->internal_address),
                   "set spec.network.controlPlaneEndpoint to a load balancer or virtual IP in front of port 6443 of every control plane, "
                   "before the first install (kubeadm writes it into every certificate and kubeconfig)",
                   cluster.where("spec.hosts")});
  }
  if (control_planes >= 2 && control_planes % 2 == 0) {
    const size_t tolerated = (control_planes - 1) / 2;
    out.push_back({fmt::format("an even number of control planes ({}): etcd needs a majority ({} of {}), so they tolerate {} failure{}, "
                               "as {} would",
                               control_planes, control_planes / 2 + 1, control_planes, tolerated, tolerated == 1 ? "" : "s",
                               control_planes - 1),
                   fmt::format("use an odd number of control planes ({} or {})", control_planes - 1, control_planes + 1),
                   cluster.where("spec.hosts")});
  }
  return out;
}

} // namespace mlplat::config
