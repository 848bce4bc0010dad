#include "phases/phases.hpp"

#include "assets/assets.hpp"
#include "bundle/bundle.hpp"
#include "render/host.hpp"
#include "util/fs.hpp"
#include "util/sha256.hpp"
#include "util/text.hpp"

#include <fmt/core.h>

namespace mlplat::phases {

using namespace workflow;

namespace {

using transport::Privilege;

std::string component_version(const compat::Row& row, const std::string& name)
{
  const auto* c = row.component(name);
  return c == nullptr ? std::string() : c->version.str();
}

Result<std::string> on_host(const Context& in, const std::string& artifact)
{
  return bundle_file_on_host(in, artifact);
}

Result<Phase> containerd_phase(transport::Fleet& fleet, const std::vector<size_t>& hosts, const Context& in)
{
  const compat::Row& row = *in.row;
  TRY_ASSIGN(const std::string config_template, assets::read("manifests/host/containerd-config.toml"));
  TRY_ASSIGN(const std::string config, render::containerd_config(config_template, "registry.k8s.io/pause:" + component_version(row, "pause")));
  TRY_ASSIGN(const std::string crictl_yaml, assets::read("manifests/host/crictl.yaml"));
  TRY_ASSIGN(const std::string containerd_unit, assets::read("manifests/host/containerd.service"));
  TRY_ASSIGN(const std::string kubelet_unit, assets::read("manifests/host/kubelet.service"));
  TRY_ASSIGN(const std::string kubeadm_dropin, assets::read("manifests/host/10-kubeadm.conf"));
  TRY_ASSIGN(const std::string containerd_tar, on_host(in, "containerd"));
  TRY_ASSIGN(const std::string runc, on_host(in, "runc"));
  TRY_ASSIGN(const std::string cni, on_host(in, "cni-plugins"));
  TRY_ASSIGN(const std::string crictl, on_host(in, "crictl"));
  TRY_ASSIGN(const std::string kubeadm, on_host(in, "kubeadm"));
  TRY_ASSIGN(const std::string kubelet, on_host(in, "kubelet"));
  TRY_ASSIGN(const std::string kubectl, on_host(in, "kubectl"));

  const std::string k8s = row.kubernetes.str();
  // Converged when every binary is there and answers with the row's version.
  const std::string binaries_check = fmt::format(
    "/usr/local/bin/containerd --version 2>/dev/null | grep -q ' v{containerd} ' || exit 1\n"
    "/usr/local/sbin/runc --version 2>/dev/null | grep -q '^runc version {runc}$' || exit 1\n"
    "/usr/local/bin/crictl --version 2>/dev/null | grep -q ' v{crictl}$' || exit 1\n"
    "[ -x /opt/cni/bin/bridge ] && [ -x /opt/cni/bin/host-local ] && [ -x /opt/cni/bin/loopback ] || exit 1\n"
    "[ \"$(/usr/local/bin/kubeadm version -o short 2>/dev/null)\" = v{k8s} ] || exit 1\n"
    "[ \"$(/usr/local/bin/kubelet --version 2>/dev/null)\" = 'Kubernetes v{k8s}' ] || exit 1\n"
    "/usr/local/bin/kubectl version --client -o json 2>/dev/null | grep -q '\"gitVersion\": \"v{k8s}\"' || exit 1\n"
    "exit 0\n",
    fmt::arg("containerd", component_version(row, "containerd")), fmt::arg("runc", component_version(row, "runc")),
    fmt::arg("crictl", component_version(row, "crictl")), fmt::arg("k8s", k8s));
  const std::string binaries_apply = fmt::format(
    "set -e\n"
    "tar -C /usr/local -xzf {containerd}\n"
    "install -m 0755 {runc} /usr/local/sbin/runc\n"
    "mkdir -p /opt/cni/bin\n"
    "tar -C /opt/cni/bin -xzf {cni}\n"
    "tar -C /usr/local/bin -xzf {crictl}\n"
    "install -m 0755 {kubeadm} /usr/local/bin/kubeadm\n"
    "install -m 0755 {kubelet} /usr/local/bin/kubelet\n"
    "install -m 0755 {kubectl} /usr/local/bin/kubectl\n",
    fmt::arg("containerd", text::shell_quote(containerd_tar)), fmt::arg("runc", text::shell_quote(runc)),
    fmt::arg("cni", text::shell_quote(cni)), fmt::arg("crictl", text::shell_quote(crictl)),
    fmt::arg("kubeadm", text::shell_quote(kubeadm)), fmt::arg("kubelet", text::shell_quote(kubelet)),
    fmt::arg("kubectl", text::shell_quote(kubectl)));
  std::string bom_digest;
  for (const auto& name : node_artifacts()) {
    bom_digest += in.bom->find(name) != nullptr ? in.bom->find(name)->sha256 : name;
  }

  std::vector<FileSpec> config_files{{"/etc/containerd/config.toml", config, 0644}, {"/etc/crictl.yaml", crictl_yaml, 0644}};
  const config::SiteRegistry& site = in.cluster.registry.site;
  std::string authorization;
  if (!site.url.empty()) {
    TRY_ASSIGN(authorization, bundle::site_authorization({site.url, site.ca_file, site.credentials_file}));
    if (!site.ca_file.empty()) {
      TRY_ASSIGN(const std::string ca, fs::read_file(site.ca_file));
      config_files.push_back({render::k_site_ca_path, ca, 0644});
    }
  }
  for (const auto& [registry, mirror] : in.registry_mirrors) {
    // The registry's name is a host[:port] (checked at load): it names a directory of certs.d. With
    // the site registry's credentials in it, the file is a secret.
    const bool is_site = !site.url.empty();
    config_files.push_back({"/etc/containerd/certs.d/" + registry + "/hosts.toml",
                            render::registry_hosts(registry, mirror, is_site, is_site && !site.ca_file.empty() ? render::k_site_ca_path : "",
                                                   is_site ? authorization : ""),
                            is_site && !authorization.empty() ? 0600u : 0644u});
  }
  const std::vector<FileSpec> unit_files{{"/usr/local/lib/systemd/system/containerd.service", containerd_unit, 0644},
                                         {"/usr/local/lib/systemd/system/kubelet.service", kubelet_unit, 0644},
                                         {"/usr/local/lib/systemd/system/kubelet.service.d/10-kubeadm.conf", kubeadm_dropin, 0644}};
  const std::string services_check = "systemctl is-active --quiet containerd || exit 1\n"
                                     "systemctl is-enabled --quiet containerd || exit 1\n"
                                     "systemctl is-enabled --quiet kubelet || exit 1\nexit 0\n";

  Phase p;
  p.name = "containerd";
  p.summary = fmt::format("containerd {}, runc, CNI plugins, crictl, kubeadm/kubelet/kubectl {}", component_version(row, "containerd"), k8s);
  p.hosts = hosts;
  p.deadline = std::chrono::seconds(600);
  p.steps = [&fleet, binaries_check, binaries_apply, bom_digest, config_files, unit_files, services_check](size_t) {
    std::vector<Step> steps;
    steps.push_back(script_step(fleet, "binaries", bom_digest, "check the installed binaries and their versions", binaries_check,
                                "install containerd, runc, CNI plugins, crictl, kubeadm, kubelet, kubectl from the bundle",
                                binaries_apply));
    // A changed config restarts containerd when it runs already.
    steps.push_back(files_step(fleet, "containerd-config", config_files,
                               "systemctl is-active --quiet containerd && systemctl restart containerd || true"));
    steps.push_back(files_step(fleet, "units", unit_files, "systemctl daemon-reload"));
    steps.push_back(script_step(fleet, "services", sha256_hex(services_check), "check that containerd runs and both units are enabled",
                                services_check, "enable and start containerd; enable the kubelet (kubeadm starts it)",
                                "set -e\nsystemctl enable --now containerd\nsystemctl enable kubelet\n"));
    return steps;
  };
  return p;
}

} // namespace

PhaseSpec containerd()
{
  PhaseSpec spec;
  spec.path = "host/containerd";
  spec.summary = "containerd, runc, CNI plugins, crictl, kubeadm, kubelet, kubectl; units and services";
  // What kubeadm leaves on a host once mlplat put the kubelet there is this cluster's own.
  spec.owns = {{"services", {"OS-021", "NET-004"}}};
  spec.build = [](Context& ctx) -> Result<Phase> { return containerd_phase(ctx.fleet, ctx.all_hosts(), ctx); };
  return spec;
}

} // namespace mlplat::phases
