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
  p.name = "join-workers";
  p.summary = fmt::format("workers join through {}", endpoint);
  p.hosts = ctx.workers();
  p.batch = ctx.worker_batch;
  p.deadline = std::chrono::seconds(600);
  p.steps = [&fleet, &cluster, endpoint, material = ctx.join](size_t h) {
    return std::vector<Step>{kube::join_step(fleet, cluster, h, endpoint, false, material)};
  };
  return p;
}

} // namespace

PhaseSpec join_workers()
{
  PhaseSpec spec;
  spec.path = "cluster/join-workers";
  spec.summary = "workers join, in parallel";
  spec.build = [](Context& ctx) -> Result<Phase> { return build(ctx); };
  return spec;
}

} // namespace mlplat::phases
