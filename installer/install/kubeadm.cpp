#include "install/kubeadm.hpp"

#include "assets/assets.hpp"
#include "install/steps.hpp"
#include "util/sha256.hpp"
#include "util/text.hpp"

#include <fmt/core.h>

namespace mlplat::install {

Result<std::string> render_init_config(const config::Cluster& cluster, const compat::Row& row, const config::Host& host)
{
  TRY_ASSIGN(std::string text, assets::read("manifests/kubeadm/init.yaml"));
  const std::string address = host.internal_address.empty() ? host.address : host.internal_address;
  // One host alone also runs the workloads (no control-plane taint); otherwise kubeadm's default taint.
  const std::string taints = cluster.hosts.size() == 1 ? "  taints: []" : "";
  const std::vector<std::pair<std::string, std::string>> values{
    {"@ADVERTISE_ADDRESS@", address},
    {"@NODE_NAME@", host.name},
    {"@TAINTS@", taints},
    {"@CLUSTER_NAME@", cluster.name},
    {"@KUBERNETES_VERSION@", row.kubernetes.str()},
    {"@CONTROL_PLANE_ENDPOINT@", cluster.network.control_plane_endpoint.empty() ? address + ":6443" : cluster.network.control_plane_endpoint},
    {"@POD_CIDR@", cluster.network.pod_cidr},
    {"@SERVICE_CIDR@", cluster.network.service_cidr},
  };
  for (const auto& [key, value] : values) {
    text = text::replace_all(std::move(text), key, value);
  }
  // A placeholder that stays empty leaves no blank line behind.
  text = text::replace_all(std::move(text), "\n\n---", "\n---");
  return text;
}

Result<Phase> init_phase(transport::Fleet& fleet, const config::Cluster& cluster, const compat::Row& row, size_t first_control_plane,
                         std::chrono::seconds api_deadline)
{
  TRY_ASSIGN(const std::string config, render_init_config(cluster, row, cluster.hosts[first_control_plane]));
  const std::string init_check = fmt::format("[ -f {} ] && [ -f /etc/kubernetes/manifests/kube-apiserver.yaml ] || exit 1\nexit 0\n",
                                             k_admin_kubeconfig);
  Phase p;
  p.name = "init";
  p.summary = fmt::format("kubeadm init of Kubernetes {} on {}", row.kubernetes.str(), cluster.hosts[first_control_plane].name);
  p.hosts = {first_control_plane};
  p.deadline = api_deadline + std::chrono::seconds(120);
  p.steps = [&fleet, config, init_check, api_deadline](size_t) {
    std::vector<Step> steps;
    // The config (0600: it names the cluster's addresses), checked by kubeadm itself once written.
    steps.push_back(files_step(fleet, "kubeadm-config", {{k_kubeadm_init_config, config, 0600}},
                               fmt::format("kubeadm config validate --config {}", k_kubeadm_init_config)));
    Step init = script_step(fleet, "kubeadm-init", sha256_hex(config), "check whether kubeadm init already ran", init_check,
                            "kubeadm init (the token and the certificate key are not printed)",
                            fmt::format("kubeadm init --config {} --skip-token-print --skip-certificate-key-print", k_kubeadm_init_config));
    init.once = true; // never twice, whatever the host looks like later
    Step ready = wait_step(fleet, "api-ready", "the API server to answer /readyz (kubectl get --raw /readyz)",
                           kubectl() + " get --raw /readyz >/dev/null 2>&1", api_deadline);
    steps.push_back(std::move(init));
    steps.push_back(std::move(ready));
    return steps;
  };
  return p;
}

} // namespace mlplat::install
