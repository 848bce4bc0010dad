// Kubernetes version-skew and upgrade-path rules as code (kubernetes.io/releases/version-skew-policy,
// and kubeadm's own rules in "Creating a cluster with kubeadm" and "Upgrading kubeadm clusters").
// Every verdict names its rule and, when refused, what would be supported instead. The install and
// upgrade gates call these with live versions; tests/unit/test_compat.cpp checks them against a table.
#pragma once

#include "util/error.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace mlplat::compat {

// --- Interface ---

struct Version {
  int major = 0;
  int minor = 0;
  int patch = 0;
  bool has_patch = false;  // "1.36" names a minor; "1.36.2" a release

  // "1.36", "v1.36.2", "1.36.2-rc.1" (pre-release and build suffixes are kept out of the comparison).
  static Result<Version> parse(std::string_view text);
  // "1.36" or "1.36.2".
  std::string str() const;
  // The minor as a comparable number (1.36 -> 136 for major 1).
  int minor_index() const { return major * 1000 + minor; }
};

// Compares releases; a minor without patch compares as its .0.
int compare(const Version& a, const Version& b);

struct Verdict {
  bool ok = true;
  std::string rule;       // e.g. "SKEW-001"
  std::string reason;     // what holds or does not, in words
  std::string supported;  // when refused: what would be supported instead
};

// SKEW-001: the kubelet is not newer than the API server and at most 3 minors older (2 when the
// kubelet is older than 1.25).
Verdict kubelet_vs_apiserver(const Version& apiserver, const Version& kubelet);

// SKEW-002: kubectl within one minor (older or newer) of the API server.
Verdict kubectl_vs_apiserver(const Version& apiserver, const Version& kubectl);

// SKEW-003: kube-controller-manager, kube-scheduler, cloud-controller-manager: not newer than the API
// server, at most one minor older.
Verdict control_plane_vs_apiserver(const Version& apiserver, const Version& component);

// SKEW-004: the newest and oldest API servers of an HA control plane within one minor.
Verdict apiservers_ha(const std::vector<Version>& apiservers);

// SKEW-005: kube-proxy not newer than the API server, at most 3 minors older, and within 3 minors of
// the kubelet beside it.
Verdict kube_proxy(const Version& apiserver, const Version& kubelet, const Version& proxy);

// SKEW-006: kubeadm init/upgrade: kubernetesVersion is kubeadm's minor or one older.
Verdict kubeadm_vs_kubernetes(const Version& kubeadm, const Version& kubernetes);

// SKEW-007: the kubelet is kubeadm's minor or up to three older.
Verdict kubeadm_vs_kubelet(const Version& kubeadm, const Version& kubelet);

// SKEW-008: kubeadm join uses the kubeadm minor that initialised or last upgraded the cluster.
Verdict kubeadm_join(const Version& cluster_kubeadm, const Version& joining_kubeadm);

// SKEW-009: an upgrade goes one minor at a time and never down (a lower patch of the same minor is a
// downgrade too); staying on the same release is allowed (a reconcile).
Verdict upgrade_path(const Version& current, const Version& target);

// SKEW-010: the kubeadm upgrading a node is the node's kubeadm minor or one newer.
Verdict kubeadm_upgrade(const Version& node_kubeadm, const Version& upgrading_kubeadm);

} // namespace mlplat::compat
