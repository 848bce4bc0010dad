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

Phase tls_phase(transport::Fleet& fleet, const tls::IngressCertificate& cert, const Context& in)
{
  Phase p;
  p.name = "tls";
  p.summary = fmt::format("the ingress certificate (serial {}) as Secret {}/{}", cert.serial_hex, k_gateway_namespace, k_tls_secret);
  p.hosts = {in.first_control_plane};
  p.deadline = std::chrono::seconds(120);
  const std::vector<Step> steps{tls_secret_step(fleet, cert)};
  p.steps = [steps](size_t) { return steps; };
  return p;
}

} // namespace

PhaseSpec tls()
{
  PhaseSpec spec;
  spec.path = "platform/tls";
  spec.summary = "the ingress certificate as the gateway's Secret";
  spec.skip_if = platform_left_out;
  spec.needs_bundle = false;
  spec.build = [](Context& ctx) -> Result<Phase> {
    if (!ctx.render || !ctx.cert) {
      return fail(ErrorCode::internal, "platform/tls was built before the platform was rendered and the ingress certificate settled");
    }
    return tls_phase(ctx.fleet, *ctx.cert, ctx);
  };
  return spec;
}

} // namespace mlplat::phases
