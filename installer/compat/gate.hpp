// The version gates. Every stage of install and upgrade calls one before it changes anything: the
// config before any connection, the hosts' facts after doctor gathered them, the live cluster before
// each stage that needs it, the upgrade path before an upgrade. A gate returns findings, each with
// the rule and the matrix row behind it and, when refused, what would be supported instead; an error
// finding stops the run (GateResult::to_status gives the error with every finding as a child).
#pragma once

#include "compat/matrix.hpp"
#include "config/model.hpp"

#include <optional>
#include <string>
#include <vector>

namespace mlplat::compat {

// --- Interface ---

enum class Level { pass, warning, error };
std::string to_string(Level level);

struct Finding {
  std::string rule;       // MAT-nnn or SKEW-nnn
  std::string row;        // the matrix row judged against
  std::string subject;    // a host name or a component ("istio")
  Level level = Level::pass;
  std::string reason;     // what holds or not, in words
  std::string supported;  // when refused: what would be supported instead
};

struct GateResult {
  std::string gate;       // "config", "hosts", "before cni", "upgrade"
  const Row* row = nullptr;
  std::vector<Finding> findings;

  bool passed() const;    // no error finding
  // Ok when passed; else an error (exit 3, preflight) naming the gate, a child per error finding.
  Status to_status() const;
};

struct GateOptions {
  bool allow_preview = false;  // --allow-preview: a preview row's refusals become warnings
};

// The row a cluster file asks for: spec.versions.kubernetes ("1.36" or "1.36.4") or the default row.
// Error when no row has that minor.
Result<const Row*> select_row(const Matrix& matrix, const config::Cluster& cluster);

// Before any connection: a row exists for the requested Kubernetes (MAT-001); every version the
// file names is the row's (MAT-002); the chosen CNI is in the row (MAT-003); a preview row needs
// --allow-preview (MAT-004); each component to be installed supports the row's Kubernetes (MAT-005);
// the row is offered on the cluster's profile (MAT-012).
GateResult check_config(const Matrix& matrix, const config::Cluster& cluster, const GateOptions& options = {});

// What a host runs, as facts gathered it. Empty strings: not installed / unknown.
struct HostVersions {
  std::string host;
  std::string os_id;       // "debian" (os-release ID)
  std::string os_version;  // "12", "9.4" (os-release VERSION_ID); "rhel 9" in the matrix admits 9.x
  std::string kernel;      // "6.1.0-18-amd64"
  std::string containerd;  // installed containerd version
  std::string kubelet;     // installed kubelet version
  std::string kubeadm;     // installed kubeadm version
};

// After facts: supported OS (MAT-006), kernel floor (MAT-007), an installed containerd the row
// accepts (MAT-008), an installed kubelet/kubeadm of the row's minor (MAT-009).
GateResult check_hosts(const Matrix& matrix, const Row& row, const std::vector<HostVersions>& hosts);

enum class Stage { containerd, kubernetes, cni, storage, pipelines, ingress };
std::string to_string(Stage stage);

// What the live cluster and the operator's tools report before a stage.
struct LiveVersions {
  std::optional<Version> apiserver;                      // kubectl version: serverVersion
  std::vector<std::pair<std::string, Version>> kubelets;  // node name, kubelet version
  std::optional<Version> kubectl;
  std::optional<Version> kustomize;
};

// Before a stage: the API server runs the row's minor (MAT-010, every stage after kubernetes),
// kubelets within skew of it (SKEW-001), kubectl within one minor (SKEW-002), kustomize the row
// accepts before manifests are built (MAT-011, pipelines stage).
GateResult check_live(const Row& row, Stage stage, const LiveVersions& live);

// Before an upgrade from `current` (the API server's version) to the row for `target`: the target
// has a row (MAT-001) that is not preview unless allowed (MAT-004), one minor at a time and never
// down (SKEW-009).
GateResult check_upgrade(const Matrix& matrix, const Version& current, const Version& target, const GateOptions& options = {});

// The findings as text lines ("error  MAT-002  row k8s-1.36  istio: ... (supported instead: ...)").
std::string render(const GateResult& result, bool include_passes);

} // namespace mlplat::compat
