#include "workflow/context.hpp"

#include <fmt/core.h>

namespace mlplat::workflow {

Context::Context(transport::Fleet& fleet_, const config::Cluster& cluster_, state::Journal& journal_)
  : fleet(fleet_), cluster(cluster_), journal(journal_)
{
}

std::vector<size_t> Context::all_hosts() const
{
  std::vector<size_t> out(cluster.hosts.size());
  for (size_t i = 0; i < out.size(); ++i) {
    out[i] = i;
  }
  return out;
}

std::vector<size_t> Context::other_control_planes() const
{
  std::vector<size_t> out;
  for (size_t i = 0; i < cluster.hosts.size(); ++i) {
    if (i != first_control_plane && cluster.hosts[i].role == config::Role::control_plane) {
      out.push_back(i);
    }
  }
  return out;
}

std::vector<size_t> Context::workers() const
{
  std::vector<size_t> out;
  for (size_t i = 0; i < cluster.hosts.size(); ++i) {
    if (cluster.hosts[i].role == config::Role::worker) {
      out.push_back(i);
    }
  }
  return out;
}

std::vector<size_t> Context::target_hosts() const
{
  return targets.empty() ? all_hosts() : targets;
}

std::string remote_bundle_dir(const std::string& row)
{
  return "/var/lib/mlplat/bundle/" + row;
}

const std::set<std::string>& node_artifacts()
{
  static const std::set<std::string> names{"kubeadm", "kubelet", "kubectl", "containerd", "runc", "cni-plugins", "crictl"};
  return names;
}

Result<std::string> bundle_file_on_host(const Context& ctx, const std::string& artifact)
{
  const auto* a = ctx.bom == nullptr ? nullptr : ctx.bom->find(artifact);
  if (a == nullptr) {
    return fail(ErrorCode::failed,
                fmt::format("the bundle for row {} has no artifact '{}'", ctx.bom == nullptr ? std::string("(none)") : ctx.bom->row, artifact),
                "create the bundle again with this mlplat (mlplat bundle create)");
  }
  return remote_bundle_dir(ctx.bom->row) + "/" + a->file;
}

} // namespace mlplat::workflow
