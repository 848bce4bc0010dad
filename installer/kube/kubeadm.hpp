// kubeadm as mlplat drives it: the v1beta4 init and join configurations rendered from the cluster file
// and the matrix row (manifests/kubeadm/), the API server endpoint every node joins through, and the
// join secrets made on the first control plane when a host first needs them (a short-lived bootstrap
// token, the key of freshly uploaded control-plane certificates, the CA pinned by the hash of its
// public key). The secrets travel only through stdin into a 0600 file in a 0700 directory on the
// joining host, removed after the join; a join refused because its token expired is retried once with
// a new token.
#pragma once

#include "compat/matrix.hpp"
#include "config/model.hpp"
#include "transport/fleet.hpp"
#include "workflow/engine.hpp"
#include "workflow/steps.hpp"

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace mlplat::kube {

// --- Interface ---

inline constexpr const char* k_kubeadm_init_config = "/etc/kubernetes/mlplat/kubeadm-init.yaml";
inline constexpr const char* k_join_config = "/etc/kubernetes/mlplat/kubeadm-join.yaml";
// Where the programs mlplat runs as services of a host keep their output and exit status (0700).
inline constexpr const char* k_remote_run_dir = "/var/lib/mlplat/run";
// The shell test that holds on a host where kubeadm init ran: what it leaves at its end (the admin
// kubeconfig and the API server's static pod manifest).
inline constexpr const char* k_initialized_test =
  "[ -f /etc/kubernetes/admin.conf ] && [ -f /etc/kubernetes/manifests/kube-apiserver.yaml ]";

// The kubeadm configuration for the first control plane `host` of `cluster`.
Result<std::string> render_init_config(const config::Cluster& cluster, const compat::Row& row, const config::Host& host);

// The ClusterConfiguration `kubeadm kubeconfig user` reads (manifests/kubeadm/user.yaml): the
// cluster's name, the row's Kubernetes version and the endpoint the kubeconfig points at (as the init
// configuration has them), for the first control plane `first_control_plane`.
Result<std::string> render_user_config(const config::Cluster& cluster, const compat::Row& row, size_t first_control_plane);

// Whether the control planes also run the workloads: a cluster without workers (one host alone, or
// only control planes). Their nodes then get no control-plane taint (kubeadm's taints: []), else
// storage and Pipelines would never schedule.
bool control_planes_run_workloads(const config::Cluster& cluster);

// "sha256:<hex>" of the DER SubjectPublicKeyInfo of the PEM certificate `ca_pem` (kubeadm's
// --discovery-token-ca-cert-hash), computed with OpenSSL.
Result<std::string> ca_cert_hash(const std::string& ca_pem);

// host:port every node reaches the API servers at (spec.network.controlPlaneEndpoint, else the first
// control plane's internal address and port 6443).
std::string control_plane_endpoint(const config::Cluster& cluster, size_t first_control_plane);

// What joining needs from the first control plane, made once per run when a host first needs it.
// Thread-safe: the joining hosts' workers share one.
class JoinMaterial {
public:
  // `cp`: the run's channel to the first control plane, where every secret is made.
  explicit JoinMaterial(workflow::ControlPlane cp) : m_cp(cp) {}
  // The CA hash; the CA certificate is read from the first control plane.
  Result<std::string> ca_hash();
  // A bootstrap token (15 minutes); `renew` replaces `stale` with a new one (another host may have
  // renewed it already).
  Result<std::string> token();
  Result<std::string> renew_token(const std::string& stale);
  // The key of the control-plane certificates, uploaded to the cluster on first use.
  Result<std::string> certificate_key();

private:
  workflow::ControlPlane m_cp;
  std::mutex m_mutex;
  std::optional<std::string> m_ca_hash, m_token, m_certificate_key;
  Result<std::string> create_token_locked();
};

// The kubeadm join configuration for `host` of `cluster` (certificate_key empty for a worker): its
// node IP is its internalAddress; a control plane of a cluster without workers gets no taint.
Result<std::string> render_join_config(const config::Cluster& cluster, const config::Host& host, const std::string& endpoint,
                                       const std::string& token, const std::string& ca_hash, const std::string& certificate_key);

// The command that runs `kubeadm join` with `config` (which holds the token): the configuration on
// its stdin, in k_join_config only while kubeadm runs, removed however the command ends.
transport::Command join_command(const std::string& config, bool control_plane);

// The step that joins `host` through `endpoint` as a control plane or a worker, with the secrets of
// `material`; converged when the host has its kubelet.conf, verified when its Node registered.
workflow::Step join_step(transport::Fleet& fleet, const config::Cluster& cluster, size_t host, const std::string& endpoint, bool control_plane,
                         std::shared_ptr<JoinMaterial> material);

} // namespace mlplat::kube
