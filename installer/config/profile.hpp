// A profile (profiles/<name>/profile.yaml) is data: the defaults a kind of site brings (CNI, MTU,
// encapsulation, storage base path, ingress exposure). The cluster file overrides each of them; the
// effective values are what the install phases use.
#pragma once

#include "config/model.hpp"

#include <string>

namespace mlplat::config {

// --- Interface ---

struct Profile {
  std::string name;
  std::string source;              // the file it was read from
  Cni cni = Cni::calico;
  int host_mtu = 1500;             // the site network's MTU
  std::string calico_encapsulation = "VXLAN";  // IPIP, VXLAN, IPIPCrossSubnet, VXLANCrossSubnet, None
  int calico_mtu = 1450;
  std::string flannel_backend = "vxlan";
  int flannel_mtu = 1450;
  std::string base_path = "/var/openebs/local";
  Expose expose = Expose::nodeport;
  // The requests of each Kubeflow Pipelines deployment's main container.
  std::string pipelines_cpu = "100m";
  std::string pipelines_memory = "256Mi";
};

// Reads profiles/<name>/profile.yaml (embedded, or from --data-dir); errors carry file:line:column.
Result<Profile> load_profile(const std::string& name);

// What the cluster runs with: the profile's defaults with the cluster file's values over them.
struct Effective {
  Cni cni;
  int cni_mtu;
  std::string encapsulation;  // Calico's encapsulation, or Flannel's backend
  std::string base_path;
  Expose expose;
  std::string pipelines_cpu;
  std::string pipelines_memory;
};
Effective effective(const Cluster& cluster, const Profile& profile);

} // namespace mlplat::config
