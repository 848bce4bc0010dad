// The platform as the operator machine renders it before any host is touched (so `plan` shows what
// would be applied and a broken overlay stops nothing half-done): the names and address of the
// ingress, image references rewritten to the registry mirrors, and the Kubeflow Pipelines, gateway
// and Istio overlays (manifests/platform, manifests/istio) built by the bundle's kubectl.
#pragma once

#include "bundle/bundle.hpp"
#include "compat/matrix.hpp"
#include "config/model.hpp"
#include "config/profile.hpp"
#include "fetch/probe.hpp"

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace mlplat::render {

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
  // What the platform's pods request in all (Pipelines' workloads and Istio's control plane and
  // gateway, each pod's max(sum of containers, largest init container) times its replicas).
  double requested_cpus = 0;
  double requested_memory_gib = 0;
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

// What rendering reads besides the cluster file: the row, the bundle (its Pipelines source and
// kubectl), the first control plane and the registry mirrors.
struct Inputs {
  const compat::Row* row = nullptr;
  const bundle::Bom* bom = nullptr;
  std::filesystem::path bundle_dir;
  size_t first_control_plane = 0;
  std::map<std::string, std::string> registry_mirrors;
};

// Renders the overlays (manifests/platform, manifests/istio) in `work_dir` (emptied first): the
// bundle's Pipelines source with its remote bases vendored, mlplat's values filled in, built by the
// bundle's kubectl (or the one on PATH when that cannot run here). Checks the kustomize version
// against the row (MAT-011) and, with registry mirrors, that every rendered image was rewritten.
Result<PlatformRender> render_platform(const config::Cluster& cluster, const config::Effective& effective, const Inputs& in,
                                       const std::filesystem::path& work_dir);

// A Kubernetes quantity as a number: CPU in cores ("250m" -> 0.25, "2" -> 2), memory in bytes
// ("500Mi", "1G", "128974848"); nothing when it is not one.
std::optional<double> quantity(const std::string& text);

// The hosts the ingress gateway answers on, in order (hostNetwork: the ingress nodes; NodePort: every
// node, the first control plane first; LoadBalancer: none).
std::vector<size_t> ingress_hosts(const config::Cluster& cluster, const config::Effective& effective, size_t first_cp);

// The row's image whose repository ends with `repository` ("openebs/linux-utils"); an error names a
// row without one.
Result<std::string> row_image(const compat::Row& row, const std::string& repository);

// The URL the UI is served at ("https://ml.example.com:30443/").
std::string ui_url(const PlatformRender& render);

// A request for ui_url through the gateway at `address`: the domain resolved there (HTTPS and HTTP
// ports), the server verified against `ca_file` (empty: the system's trust store).
fetch::ProbeRequest gateway_request(const PlatformRender& render, const std::string& address, const std::filesystem::path& ca_file);

} // namespace mlplat::render
