// What an experienced operator would warn about in the shape of a cluster: never an error (a lab may
// want exactly that), said at plan and install with the fix.
#pragma once

#include "config/model.hpp"
#include "util/error.hpp"

#include <string>
#include <vector>

namespace mlplat::config {

// --- Interface ---

struct Advice {
  std::string message;  // what is risky, in one sentence
  std::string fix;
  Location where;       // the part of the cluster file it is about
};

// HA without spec.network.controlPlaneEndpoint (every node reaches the API servers through the first
// control plane: a single point of failure), and an even number of control planes (etcd's quorum
// makes the last one add no tolerance).
std::vector<Advice> topology_warnings(const Cluster& cluster);

} // namespace mlplat::config
