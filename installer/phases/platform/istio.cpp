#include "phases/phases.hpp"

#include "phases/common.hpp"
#include "render/platform.hpp"
#include "util/sha256.hpp"
#include "util/text.hpp"

#include <fmt/core.h>

namespace mlplat::phases {

using namespace workflow;

namespace {

using render::k_gateway_namespace;
using render::k_tls_secret;

using render::ingress_hosts;

Result<Phase> istio_phase(transport::Fleet& fleet, const config::Cluster& cluster, const config::Effective& effective,
                          const render::PlatformRender& render, const Context& in)
{
  TRY_ASSIGN(const std::string archive, bundle_file_on_host(in, "istio"));
  const compat::Component* istio = in.row->component("istio");
  const std::string version = istio ? istio->version.str() : "";
  const std::string config_path = std::string(k_platform_dir) + "/istio.yaml";
  const std::string k = kubectl();
  const std::string istioctl = fmt::format("istioctl --kubeconfig {}", k_admin_kubeconfig);
  Phase p;
  p.name = "istio";
  p.summary = fmt::format("Istio {} (minimal control plane and the ingress gateway, {})", version,
                          effective.expose == config::Expose::nodeport      ? fmt::format("NodePort {} / {}", cluster.ingress.https_node_port, cluster.ingress.http_node_port)
                          : effective.expose == config::Expose::hostnetwork ? "hostNetwork on the ingress nodes"
                                                                            : "LoadBalancer");
  p.hosts = {in.first_control_plane};
  p.deadline = std::chrono::seconds(900);
  std::vector<Step> steps;
  steps.push_back(gate_step(fleet, *in.row, compat::Stage::ingress));
  steps.push_back(script_step(fleet, "istioctl", archive, fmt::format("check that istioctl {} is installed", version),
                              fmt::format("istioctl version --remote=false 2>/dev/null | grep -qw {} || exit 1\nexit 0\n", version),
                              "install istioctl from the bundle",
                              fmt::format("d=$(mktemp -d)\ntrap 'rm -rf \"$d\"' EXIT\ntar -C \"$d\" -xzf {}\n"
                                          "install -m 0755 \"$d\"/istio-*/bin/istioctl /usr/local/bin/istioctl\n",
                                          text::shell_quote(archive))));
  if (effective.expose == config::Expose::hostnetwork) {
    std::vector<std::string> names;
    for (const size_t h : ingress_hosts(cluster, effective, in.first_control_plane)) {
      names.push_back(cluster.hosts[h].name);
    }
    std::string check, apply;
    for (const auto& n : names) {
      check += fmt::format("[ \"$({} get node {} -o jsonpath='{{.metadata.labels.mlplat\\.dev/ingress}}')\" = true ] || exit 1\n", k, n);
      apply += fmt::format("{} label node {} mlplat.dev/ingress=true --overwrite\n", k, n);
    }
    steps.push_back(script_step(fleet, "ingress-nodes", text::join(names, ","), "check that the ingress nodes are labelled",
                                check + "exit 0\n", "label the ingress nodes mlplat.dev/ingress=true", apply));
  }
  steps.push_back(files_step(fleet, "config", {{config_path, render.istio_config, 0600}}, ""));
  ScriptOptions install_options;
  install_options.apply_deadline = std::chrono::seconds(900);
  steps.push_back(script_step(fleet, "install", sha256_hex(render.istio_config), "check that Istio is installed as configured",
                              fmt::format("{} manifest generate -f {} 2>/dev/null | {} diff --server-side --force-conflicts -f - >/dev/null 2>&1 || exit 1\nexit 0\n",
                                          istioctl, config_path, k),
                              "istioctl install", fmt::format("{} install -f {} --skip-confirmation", istioctl, config_path), install_options));
  steps.push_back(deployments_step(fleet, "available", k_gateway_namespace, {"istiod", "istio-ingressgateway"}, std::chrono::seconds(600)));
  p.steps = [steps](size_t) { return steps; };
  return p;
}

} // namespace

PhaseSpec istio()
{
  PhaseSpec spec;
  spec.path = "platform/istio";
  spec.summary = "Istio's minimal control plane and the ingress gateway, from the bundle's istioctl";
  spec.skip_if = platform_left_out;
  spec.build = [](Context& ctx) -> Result<Phase> {
    if (!ctx.render || !ctx.cert) {
      return fail(ErrorCode::internal, "platform/istio was built before the platform was rendered and the ingress certificate settled");
    }
    return istio_phase(ctx.fleet, ctx.cluster, ctx.effective, *ctx.render, ctx);
  };
  return spec;
}

} // namespace mlplat::phases
