// `mlplat status`: the state of the cluster and the platform, read-only. One SSH session per host and
// one command on it: every host runs host_script() (its OS, kernel, kubeadm, kubelet, containerd and
// identity); the first control plane runs cluster_script() after it in the same command (nodes, the
// control-plane pods, etcd's members and their health, the certificates kubeadm reports, the CNI,
// StorageClasses, deployments, the ingress certificate). Nothing is written anywhere: no journal, no
// lock; the journal and the record of runs are only read. docs/status.md describes the report, what
// counts as degraded and as drift; docs/status.schema.json is its JSON.
#pragma once

#include "compat/matrix.hpp"
#include "config/model.hpp"
#include "state/runs.hpp"
#include "state/state.hpp"
#include "transport/fleet.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace mlplat::commands::status {

// --- Interface ---

// A certificate with fewer days left than this is a warning.
inline constexpr int k_warn_days = 30;

// One node: a host of the cluster file, a node the cluster has that the file does not, or both.
struct Node {
  std::string name;
  std::string address;           // from the cluster file ("" for a node it does not have)
  std::string role;              // the cluster file's: control-plane | worker ("" when not in it)
  bool in_cluster_file = false;
  bool registered = false;       // the API server has a Node of this name
  bool reachable = false;        // its SSH command ran
  std::string error;             // why it could not be reached
  std::string ready;             // the Node's Ready condition: True | False | Unknown ("" when not registered)
  std::vector<std::string> roles;  // node-role.kubernetes.io/* labels
  std::string kubelet;           // nodeInfo.kubeletVersion, else `kubelet --version`
  std::string kubeadm;           // `kubeadm version -o short`
  std::string containerd;        // nodeInfo.containerRuntimeVersion ("containerd://2.3.4" -> 2.3.4), else `containerd --version`
  std::string os;                // nodeInfo.osImage, else os-release's PRETTY_NAME
  std::string kernel;            // nodeInfo.kernelVersion, else uname -r
  std::string identity;          // machine-id and host keys (workflow::identity_command)
};

// A control-plane component (kube-apiserver, kube-controller-manager, kube-scheduler, etcd) on a node.
struct ControlPlanePod {
  std::string node;
  std::string component;
  bool ready = false;
  std::string detail;            // the pod's phase, or "no pod"
};

struct EtcdMember {
  std::string name;
  std::string id;
  std::string client_url;
  bool healthy = false;
  std::string detail;            // etcd's reason, or why it could not be asked
};

// A platform component: cni, storage, pipelines, gateway.
struct Component {
  std::string name;
  std::string state;             // ready | not-ready | absent | disabled
  std::string version;           // live ("" when unknown)
  std::string expected;          // the row's
  std::string detail;
};

struct Certificate {
  std::string name;              // kubeadm's ("apiserver", "ca", "admin.conf") or "ingress"
  std::string kind;              // cluster | cluster-ca | ingress
  std::string expires;           // UTC, ISO 8601 ("" when missing)
  long days_left = 0;
  std::string state;             // ok | expiring | expired | missing
};

// Something that differs from what mlplat installed (docs/status.md, "Drift").
struct Drift {
  std::string kind;              // version | node-missing | node-extra | label | taint | identity | image
  std::string subject;           // a node, a component, an image
  std::string expected;
  std::string actual;
};

// Why the cluster is degraded or worth a look.
struct Problem {
  std::string severity;          // degraded | warning
  std::string subject;
  std::string message;
};

struct Report {
  std::string cluster;
  std::string row;
  std::string kubernetes;        // the API server's version ("" when it did not answer)
  bool api_server = false;       // the API server answered on the first control plane
  std::vector<Node> nodes;       // the cluster file's hosts in order, then the nodes it lacks
  std::vector<ControlPlanePod> control_plane;
  std::vector<EtcdMember> etcd;
  std::vector<Component> components;
  std::vector<Certificate> certificates;
  std::vector<Drift> drift;
  std::optional<state::RunRecord> last_run;
  std::vector<Problem> problems;
  // When no host could be reached: the exit code of their errors together (4 unreachable or key
  // refused, 5 host key not trusted; exit_code_for of the fleet's failures); 0 otherwise.
  int unreachable_exit = 0;

  bool degraded() const;
  // 0 healthy; 8 degraded; unreachable_exit when no host could be reached at all.
  int exit_code() const;
};

// The script every host runs: "key=value" lines (os, kernel, kubeadm, kubelet, containerd, identity).
std::string host_script();

// What the first control plane runs after host_script(), in the same command: "@@ <section>" then its
// lines, sections version, nodes, pods, certs, etcd-members, etcd-health, daemonsets, storageclasses,
// deployments, ingress-cert. Read-only: kubectl get, kubeadm certs check-expiration, curl to etcd.
std::string cluster_script();

// Everything the status needs besides the hosts.
struct Inputs {
  const config::Cluster* cluster = nullptr;
  const compat::Row* row = nullptr;
  const state::Journal* journal = nullptr;       // identities; null when there is no state directory
  std::optional<state::RunRecord> last_run;
  std::chrono::system_clock::time_point now = std::chrono::system_clock::now();
  std::chrono::seconds deadline{60};             // per host
};

// Runs the scripts on every host of `fleet` (the cluster file's hosts, in order; at most its
// concurrency at once, one command per host) and judges what they print.
Report gather(transport::Fleet& fleet, const Inputs& in);

// Judges the output of one command per host (`outputs[h]`: the output, or why host h could not be
// reached) against the inputs: the Report gather returns. Exposed for the unit tests.
Report judge(const Inputs& in, const std::vector<Result<std::string>>& outputs);

// The report as docs/status.schema.json describes it.
nlohmann::json to_json(const Report& report);

// The report as tables for a terminal.
std::string render_text(const Report& report);

} // namespace mlplat::commands::status
