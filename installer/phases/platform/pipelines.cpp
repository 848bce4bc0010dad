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

Phase pipelines_phase(transport::Fleet& fleet, const render::PlatformRender& render, const Context& in)
{
  Phase p;
  p.name = "pipelines";
  p.summary = fmt::format("Kubeflow Pipelines {} in namespace {}: {} CRDs, then {} deployments available",
                          in.row->component("pipelines") ? in.row->component("pipelines")->version.str() : "", render.name_space,
                          render.crds.size(), render.deployments.size());
  p.hosts = {in.first_control_plane};
  p.deadline = std::chrono::seconds(1200);
  std::vector<Step> steps;
  steps.push_back(gate_step(fleet, *in.row, compat::Stage::pipelines));
  steps.push_back(apply_step(fleet, "cluster-scoped", std::string(k_platform_dir) + "/pipelines-cluster-scoped.yaml", render.cluster_scoped));
  if (!render.crds.empty()) {
    std::string refs;
    for (const auto& c : render.crds) {
      refs += " crd/" + c;
    }
    steps.push_back(wait_step(fleet, "crds-established", fmt::format("the CRDs to be established ({})", text::join(render.crds, ", ")),
                              fmt::format("{} wait --for=condition=Established --timeout=5s{} >/dev/null 2>&1", kubectl(), refs),
                              std::chrono::seconds(120)));
  }
  steps.push_back(apply_step(fleet, "resources", std::string(k_platform_dir) + "/pipelines.yaml", render.pipelines));
  steps.push_back(deployments_step(fleet, "deployments-available", render.name_space, render.deployments, std::chrono::seconds(900)));
  p.steps = [steps](size_t) { return steps; };
  return p;
}

} // namespace

PhaseSpec pipelines()
{
  PhaseSpec spec;
  spec.path = "platform/pipelines";
  spec.summary = "Kubeflow Pipelines: cluster-scoped resources, CRDs established, the rest, deployments available";
  spec.skip_if = platform_left_out;
  spec.build = [](Context& ctx) -> Result<Phase> {
    if (!ctx.render || !ctx.cert) {
      return fail(ErrorCode::internal, "platform/pipelines was built before the platform was rendered and the ingress certificate settled");
    }
    return pipelines_phase(ctx.fleet, *ctx.render, ctx);
  };
  return spec;
}

} // namespace mlplat::phases
