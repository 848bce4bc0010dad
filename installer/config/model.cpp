#include "config/model.hpp"

namespace mlplat::config {

Location Cluster::where(const std::string& path) const
{
  if (auto it = positions.find(path); it != positions.end()) {
    return it->second;
  }
  return Location{source_file, 1, 1};
}

size_t Cluster::first_control_plane() const
{
  for (size_t i = 0; i < hosts.size(); ++i) {
    if (hosts[i].role == Role::control_plane) {
      return i;
    }
  }
  return 0;
}

const Host* Cluster::find_host(const std::string& host_name) const
{
  for (const auto& h : hosts) {
    if (h.name == host_name) {
      return &h;
    }
  }
  return nullptr;
}

std::string to_string(Role role)
{
  return role == Role::control_plane ? "control-plane" : "worker";
}

std::string to_string(HostKeyPolicy policy)
{
  return policy == HostKeyPolicy::strict ? "strict" : "accept-new";
}

const std::vector<std::string>& version_components()
{
  static const std::vector<std::string> components{"kubernetes", "containerd", "calico",   "flannel",
                                                   "openebs",    "istio",      "pipelines"};
  return components;
}

const std::vector<std::string>& profiles()
{
  static const std::vector<std::string> names{"onprem", "gcp", "ibm-vpc"};
  return names;
}

} // namespace mlplat::config
