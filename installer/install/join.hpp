// The join phases: further control planes (one at a time, each with the key of freshly uploaded
// certificates) and workers (in parallel), each with a short-lived bootstrap token and the cluster
// CA pinned by the hash of its public key. The secrets are made on the first control plane when a
// host needs them (never when every host has joined), travel only through stdin into a 0600 file
// in a 0700 directory on the joining host, and that file is removed after the join. A join refused
// because its token expired is retried once with a new token.
#pragma once

#include "compat/matrix.hpp"
#include "config/model.hpp"
#include "install/engine.hpp"

#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace mlplat::install {

// --- Interface ---

inline constexpr const char* k_join_config = "/etc/kubernetes/mlplat/kubeadm-join.yaml";

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
  JoinMaterial(transport::Fleet& fleet, size_t first_control_plane) : m_fleet(fleet), m_first(first_control_plane) {}
  // The CA hash; the CA certificate is read from the first control plane.
  Result<std::string> ca_hash();
  // A bootstrap token (15 minutes); `renew` replaces `stale` with a new one (another host may have
  // renewed it already).
  Result<std::string> token();
  Result<std::string> renew_token(const std::string& stale);
  // The key of the control-plane certificates, uploaded to the cluster on first use.
  Result<std::string> certificate_key();

private:
  transport::Fleet& m_fleet;
  size_t m_first;
  std::mutex m_mutex;
  std::optional<std::string> m_ca_hash, m_token, m_certificate_key;
  Result<std::string> create_token_locked();
};

// The kubeadm join configuration for `host` of `cluster` (certificate_key empty for a worker): its
// node IP is its internalAddress; a control plane of a cluster without workers gets no taint.
Result<std::string> render_join_config(const config::Cluster& cluster, const config::Host& host, const std::string& endpoint,
                                       const std::string& token, const std::string& ca_hash, const std::string& certificate_key);

// "join-control-planes" (serial) and "join-workers" (parallel); either may have no hosts.
std::vector<Phase> join_phases(transport::Fleet& fleet, const config::Cluster& cluster, size_t first_control_plane,
                               std::shared_ptr<JoinMaterial> material);

} // namespace mlplat::install
