#include "phases/phases.hpp"

#include "assets/assets.hpp"
#include "phases/common.hpp"
#include "util/sha256.hpp"
#include "util/text.hpp"
#include "yamlio/emit.hpp"

#include <fmt/core.h>

namespace mlplat::phases {

using namespace workflow;

namespace {

Result<Phase> cni_phase(transport::Fleet& fleet, const config::Cluster& cluster, const config::Effective& effective, const Context& in)
{
  const size_t nodes = cluster.hosts.size();
  const std::string k = kubectl();
  const std::string all_ready = fmt::format(
    "[ \"$({k} get nodes --no-headers 2>/dev/null | awk '$2 == \"Ready\"' | wc -l)\" -eq {n} ]", fmt::arg("k", k), fmt::arg("n", nodes));
  std::vector<Step> steps;
  Phase p;
  p.name = "cni";
  p.hosts = {in.first_control_plane};
  p.deadline = std::chrono::seconds(900);
  steps.push_back(gate_step(fleet, *in.row, compat::Stage::cni));
  if (effective.cni == config::Cni::calico) {
    TRY_ASSIGN(const std::string crds, bundle_file_on_host(in, "calico-crds"));
    TRY_ASSIGN(const std::string op, bundle_file_on_host(in, "calico-operator"));
    TRY_ASSIGN(const std::string tmpl, assets::read("manifests/cni/calico-installation.yaml"));
    TRY_ASSIGN(const std::string installation,
               yamlio::fill(tmpl, "manifests/cni/calico-installation.yaml",
                            {{"@MTU@", long(effective.cni_mtu)}, {"@POD_CIDR@", cluster.network.pod_cidr},
                             {"@ENCAPSULATION@", effective.encapsulation}}));
    p.summary = fmt::format("Calico through its operator: pod CIDR {}, {} encapsulation, MTU {}; then {} node{} Ready",
                            cluster.network.pod_cidr, effective.encapsulation, effective.cni_mtu, nodes, nodes == 1 ? "" : "s");
    steps.push_back(apply_step(fleet, "calico-crds", crds, std::nullopt));
    steps.push_back(apply_step(fleet, "tigera-operator", op, std::nullopt));
    steps.push_back(wait_step(fleet, "operator-ready", "the Tigera operator's rollout (deployment tigera-operator in namespace tigera-operator)",
                              fmt::format("{} -n tigera-operator rollout status deployment/tigera-operator --timeout=5s >/dev/null 2>&1", k),
                              std::chrono::seconds(300)));
    steps.push_back(wait_step(fleet, "operator-crds", "the operator's CRDs to be established (installations.operator.tigera.io)",
                              fmt::format("{} wait --for=condition=Established --timeout=5s crd/installations.operator.tigera.io "
                                          "crd/apiservers.operator.tigera.io >/dev/null 2>&1", k),
                              std::chrono::seconds(300)));
    steps.push_back(apply_step(fleet, "calico-installation", std::string(k_manifest_dir) + "/calico-installation.yaml", installation));
  } else {
    TRY_ASSIGN(const std::string upstream, bundle_file_on_host(in, "flannel-manifest"));
    TRY_ASSIGN(const std::string kustomization, assets::read("manifests/cni/flannel/kustomization.yaml"));
    TRY_ASSIGN(const std::string tmpl, assets::read("manifests/cni/flannel/net-conf.yaml"));
    // The values sit in a JSON document inside a YAML string: the YAML is filled by yaml-cpp, and the
    // values (a CIDR, a backend of the profile) are checked at load, so none can end its JSON string.
    TRY_ASSIGN(const std::string patch, yamlio::fill(tmpl, "manifests/cni/flannel/net-conf.yaml",
                                                     {{"@POD_CIDR@", cluster.network.pod_cidr}, {"@BACKEND@", effective.encapsulation}}));
    p.summary = fmt::format("Flannel with mlplat's overlay: pod CIDR {}, backend {}; then {} node{} Ready", cluster.network.pod_cidr,
                            effective.encapsulation, nodes, nodes == 1 ? "" : "s");
    const std::string dir = std::string(k_manifest_dir) + "/flannel";
    // The overlay: kustomization and patch from mlplat, the upstream manifest copied from the bundle.
    steps.push_back(files_step(fleet, "flannel-overlay", {{dir + "/kustomization.yaml", kustomization, 0600}, {dir + "/net-conf.yaml", patch, 0600}},
                               fmt::format("chmod 0700 {0} && cp {1} {0}/kube-flannel.yml && chmod 0600 {0}/kube-flannel.yml", dir,
                                           text::shell_quote(upstream))));
    const std::string render = fmt::format("{} kustomize {}", k, dir);
    steps.push_back(script_step(fleet, "flannel", sha256_hex(patch + kustomization),
                             "check that Flannel is applied as the overlay renders it",
                             fmt::format("{} | {} diff --server-side --force-conflicts -f - >/dev/null 2>&1 || exit 1\nexit 0\n", render, k),
                             "apply Flannel (kubectl kustomize of the overlay)",
                             fmt::format("{} > {d}/rendered.yaml\n{} apply --server-side --force-conflicts -f {d}/rendered.yaml\n",
                                         render, k, fmt::arg("d", dir))));
  }
  steps.push_back(wait_step(fleet, "nodes-ready", fmt::format("all {} node{} to be Ready (kubectl get nodes)", nodes, nodes == 1 ? "" : "s"),
                            all_ready, std::chrono::seconds(600)));
  p.steps = [steps](size_t) { return steps; };
  return p;
}

} // namespace

PhaseSpec cni()
{
  PhaseSpec spec;
  spec.path = "cluster/cni";
  spec.summary = "Calico through its operator (or Flannel); then every node Ready";
  spec.build = [](Context& ctx) -> Result<Phase> { return cni_phase(ctx.fleet, ctx.cluster, ctx.effective, ctx); };
  return spec;
}

} // namespace mlplat::phases
