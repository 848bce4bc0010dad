// The "nodes" phase: the labels and taints the cluster file gives each host, applied to its node
// from the first control plane and kept as the file says on every run: what mlplat set before and the
// file no longer has is removed (the node's annotations mlplat.dev/labels and mlplat.dev/taints
// remember what mlplat manages), what anyone else set is left alone.
#pragma once

#include "config/model.hpp"
#include "install/engine.hpp"

#include <string>

namespace mlplat::install {

// --- Interface ---

// The phase, run on `first_control_plane` (where kubectl is the cluster's administrator) for every
// host of `cluster`.
Phase nodes_phase(transport::Fleet& fleet, const config::Cluster& cluster, size_t first_control_plane);

// The read-only script that exits 0 when every node has the labels and taints of `cluster` and
// mlplat's annotations list exactly those, 1 when not (shown by plan, tested on its own).
std::string nodes_check_script(const config::Cluster& cluster);

// The script that converges the nodes (waits, bounded, for a node to register first).
std::string nodes_apply_script(const config::Cluster& cluster);

// The node annotations that list what mlplat manages.
inline constexpr const char* k_labels_annotation = "mlplat.dev/labels";
inline constexpr const char* k_taints_annotation = "mlplat.dev/taints";

} // namespace mlplat::install
