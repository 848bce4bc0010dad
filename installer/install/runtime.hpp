// The phases that put the container runtime and the Kubernetes binaries on the hosts from a bundle:
// "artifacts" (each host gets the bundle files it needs, verified on the host) and "containerd"
// (binaries installed, containerd config version 3 with SystemdCgroup, systemd units, containerd
// running and the kubelet enabled).
#pragma once

#include "bundle/bundle.hpp"
#include "compat/matrix.hpp"
#include "install/engine.hpp"

#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace mlplat::install {

// --- Interface ---

// Where a host keeps the bundle of a row.
std::string remote_bundle_dir(const std::string& row);

// The artifacts every node needs (the rest only the first control plane needs).
const std::set<std::string>& node_artifacts();

struct RuntimeInputs {
  const compat::Row* row = nullptr;
  const bundle::Bom* bom = nullptr;
  std::filesystem::path bundle_dir;  // the bundle on the operator machine (a directory)
  size_t first_control_plane = 0;
  std::map<std::string, std::string> registry_mirrors;  // spec.registry.mirrors
  std::string bundle_url;       // when set, hosts fetch the bundle's files from here instead of an upload
};

// The remote path of `artifact`'s file in the host's copy of the bundle; an error names a bundle
// without it.
Result<std::string> bundle_file_on_host(const RuntimeInputs& in, const std::string& artifact);

// "artifacts": pushes to each host the files it needs (the first control plane gets all).
Phase artifacts_phase(transport::Fleet& fleet, const std::vector<size_t>& hosts, const RuntimeInputs& in);

// "containerd": binaries, containerd and crictl config, units, services. Error when a data file is
// missing.
Result<Phase> containerd_phase(transport::Fleet& fleet, const std::vector<size_t>& hosts, const RuntimeInputs& in);

} // namespace mlplat::install
