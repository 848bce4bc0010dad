// The platform layer of install, after the cluster: "pipelines" (Kubeflow Pipelines from the
// bundle's upstream manifests under mlplat's kustomize overlays: cluster-scoped resources first, their
// CRDs established, then the rest, every deployment available), "istio" (istioctl from the bundle
// installs a minimal control plane and the ingress gateway, exposed as the profile says), "tls" (the
// ingress certificate as a kubernetes.io/tls Secret in the gateway's namespace), "gateway" (Gateway
// on 443 with HTTP redirected, VirtualService to the Pipelines UI and API) and "smoke" (an HTTPS
// request through the gateway, verified against the CA, reaches the UI and the API).
//
// The overlays are rendered on the operator machine with the bundle's kubectl before any host is
// touched (so `plan` shows what would be applied and a broken overlay stops nothing half-done), and
// every stage starts with the matrix gate against the live cluster.
#pragma once

#include "compat/gate.hpp"
#include "config/model.hpp"
#include "config/profile.hpp"
#include "fetch/probe.hpp"
#include "install/engine.hpp"
#include "install/runtime.hpp"
#include "tls/tls.hpp"

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace mlplat::install {

// --- Interface ---

inline constexpr const char* k_gateway_namespace = "istio-system";
inline constexpr const char* k_tls_secret = "mlplat-ingress-tls";

// What the operator renders before the platform phases: the overlays built by kubectl kustomize and
// what install waits for in them.
struct PlatformRender {
  std::string name_space;                // the Pipelines namespace
  std::string domain;                    // the name the UI is served at
  std::vector<std::string> hosts;        // DNS names the Gateway and VirtualService serve
  std::vector<std::string> san_dns;      // the certificate's DNS names (= hosts)
  std::vector<std::string> san_ips;      // the certificate's IP addresses
  std::string cluster_scoped;            // rendered YAML
  std::string pipelines;
  std::string gateway;
  std::string istio_config;              // the IstioOperator istioctl installs from
  std::vector<std::string> crds;         // CRD names in cluster_scoped
  std::vector<std::string> deployments;  // Deployment names in pipelines
  std::vector<std::string> images;       // every image in pipelines, as rendered
  std::string kustomize_version;         // of the kubectl that rendered them
  // Where the smoke test reaches the gateway: address and ports (HTTPS, HTTP). Empty address for a
  // load balancer: read from the Service when the smoke test runs.
  std::string ingress_address;
  int https_port = 443;
  int http_port = 80;
};

// `image` with its registry replaced by the mirror `mirrors` names for it (registry host -> URL);
// unchanged when none does. Docker Hub short names ("mysql:8.4") count as docker.io/library/.
std::string mirrored_image(const std::string& image, const std::map<std::string, std::string>& mirrors);

// The names and address of the ingress, without rendering anything: namespace, domain (default
// pipelines.<cluster>.internal), the Gateway's hosts, the certificate's SANs (the domain and
// spec.ingress.altNames; a load balancer's configured address), where the gateway answers.
PlatformRender ingress_endpoint(const config::Cluster& cluster, const config::Effective& effective, size_t first_control_plane);

// Renders the overlays (manifests/platform, manifests/istio) in `work_dir` (emptied first): the
// bundle's Pipelines source with its remote bases vendored, mlplat's values filled in, built by the
// bundle's kubectl (or the one on PATH when that cannot run here). Checks the kustomize version
// against the row (MAT-011) and, with registry mirrors, that every rendered image was rewritten.
Result<PlatformRender> render_platform(const config::Cluster& cluster, const config::Effective& effective, const RuntimeInputs& in,
                                       const std::filesystem::path& work_dir);

// The ingress certificate the "tls" phase installs: leaf (+ chain) PEM, key PEM, and the CA file a
// client trusts it with (empty: the system's trust store).
struct IngressCertificate {
  std::string cert_pem;  // leaf first, then any intermediates
  std::string key_pem;   // secret
  std::filesystem::path ca_file;
  std::string serial_hex;
};

// self-signed: the ingress CA in `state_dir`/tls (ca.key 0600 in a 0700 directory; made once) and a
// server certificate for the render's SANs, reissued when missing, not covering them, not from that
// CA or within 30 days of expiry (`reissue`: always, for `certs rotate`). provided: the files of the
// cluster file, validated (key, SANs, validity, strength, chain); a refusal names the property
// (exit 2). acme: refused, not built. `write` false (plan): nothing is written, a missing CA or
// certificate is made in memory only.
Result<IngressCertificate> ingress_certificate(const config::Cluster& cluster, const PlatformRender& render,
                                               const std::filesystem::path& state_dir, bool write, bool reissue = false);

// A step that runs the matrix gate before `stage` against the live cluster (the API server's and
// kubelets' versions, read on the first control plane). Converged when the gate passes; a refusal
// is its error (exit 3), so nothing of the stage is applied.
Step gate_step(transport::Fleet& fleet, const compat::Row& row, compat::Stage stage);

// "pipelines": cluster-scoped resources, CRDs established, the rest, every deployment available.
Phase pipelines_phase(transport::Fleet& fleet, const PlatformRender& render, const RuntimeInputs& in);

// "istio": istioctl from the bundle, the IstioOperator config, `istioctl install`, istiod and the
// ingress gateway available (hostnetwork: the ingress nodes labelled first).
Result<Phase> istio_phase(transport::Fleet& fleet, const config::Cluster& cluster, const config::Effective& effective,
                          const PlatformRender& render, const RuntimeInputs& in);

// The step that makes the gateway's kubernetes.io/tls Secret hold `cert` (compared by hash; the key
// travels on stdin, never on a command line or in a log). Used by "tls" and `certs rotate`.
Step tls_secret_step(transport::Fleet& fleet, const IngressCertificate& cert);

// "tls": the Secret.
Phase tls_phase(transport::Fleet& fleet, const IngressCertificate& cert, const RuntimeInputs& in);

// "gateway": the Gateway and VirtualService.
Phase gateway_phase(transport::Fleet& fleet, const PlatformRender& render, const RuntimeInputs& in);

// "smoke": from the operator machine, HTTPS to the gateway (the domain resolved to the ingress
// address) verified against the CA reaches the Pipelines UI and API, and HTTP is redirected to
// HTTPS. Waits up to `deadline` for the gateway to pick up its configuration.
Phase smoke_phase(transport::Fleet& fleet, const PlatformRender& render, const IngressCertificate& cert, const RuntimeInputs& in,
                  std::chrono::seconds deadline = std::chrono::seconds(180));

// The URL the UI is served at ("https://ml.example.com:30443/").
std::string ui_url(const PlatformRender& render);

// A request for ui_url through the gateway at `address`: the domain resolved there (HTTPS and HTTP
// ports), the server verified against `ca_file` (empty: the system's trust store).
fetch::ProbeRequest gateway_request(const PlatformRender& render, const std::string& address, const std::filesystem::path& ca_file);

} // namespace mlplat::install
