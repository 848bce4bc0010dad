#include "phases/phases.hpp"

#include "kube/kubeadm.hpp"

#include <fmt/core.h>

namespace mlplat::phases {

using namespace workflow;

namespace {

Result<Phase> build(Context& ctx)
{
  transport::Fleet& fleet = ctx.fleet;
  const config::Cluster& cluster = ctx.cluster;
  const std::string endpoint = kube::control_plane_endpoint(cluster, ctx.first_control_plane);
  if (!ctx.join) {
    ctx.join = std::make_shared<kube::JoinMaterial>(fleet, ctx.first_control_plane);
  }
  Phase p;
  p.name = "join-control-planes";
  p.summary = fmt::format("further control planes join through {}, one at a time", endpoint);
  p.hosts = ctx.other_control_planes();
  p.serial = true;
  p.deadline = std::chrono::seconds(600);
  p.steps = [&fleet, &cluster, endpoint, material = ctx.join](size_t h) {
    return std::vector<Step>{kube::join_step(fleet, cluster, h, endpoint, true, material)};
  };
  return p;
}

} // namespace

PhaseSpec join_control_planes()
{
  PhaseSpec spec;
  spec.path = "cluster/join-control-planes";
  spec.summary = "further control planes join, one at a time";
  spec.build = [](Context& ctx) -> Result<Phase> { return build(ctx); };
  return spec;
}

} // namespace mlplat::phases
