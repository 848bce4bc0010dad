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

Phase gateway_phase(transport::Fleet& fleet, const render::PlatformRender& render, const Context& in)
{
  Phase p;
  p.name = "gateway";
  p.summary = fmt::format("Gateway mlplat-gateway (HTTPS 443, HTTP redirected) and VirtualService kubeflow-pipelines for {}", text::join(render.hosts, ", "));
  p.hosts = {in.first_control_plane};
  p.deadline = std::chrono::seconds(300);
  const std::vector<Step> steps{apply_step(fleet, "gateway", std::string(k_platform_dir) + "/gateway.yaml", render.gateway)};
  p.steps = [steps](size_t) { return steps; };
  return p;
}

} // namespace

PhaseSpec gateway()
{
  PhaseSpec spec;
  spec.path = "platform/gateway";
  spec.summary = "the Gateway (HTTPS 443, HTTP redirected) and the VirtualService";
  spec.skip_if = platform_left_out;
  spec.build = [](Context& ctx) -> Result<Phase> {
    if (!ctx.render || !ctx.cert) {
      return fail(ErrorCode::internal, "platform/gateway was built before the platform was rendered and the ingress certificate settled");
    }
    return gateway_phase(ctx.fleet, *ctx.render, ctx);
  };
  return spec;
}

} // namespace mlplat::phases
