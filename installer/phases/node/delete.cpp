// node/delete: each node removed deleted from the cluster, once its host is reset (a running kubelet
// would register it again).
#include "phases/phases.hpp"

#include "phases/common.hpp"

#include "util/text.hpp"

#include <fmt/core.h>

namespace mlplat::phases {

using namespace workflow;

PhaseSpec node_delete()
{
  PhaseSpec spec;
  spec.path = "node/delete";
  spec.summary = "each node removed deleted from the cluster (after its host is reset)";
  spec.needs_bundle = false;
  spec.build = [](Context& ctx) -> Result<Phase> {
    const auto names = target_names(ctx);
    Phase p;
    p.name = "delete";
    p.summary = "delete node " + text::join(names, ", ");
    p.hosts = {ctx.first_control_plane};
    auto& fleet = ctx.fleet;
    const std::string k = kubectl();
    p.steps = [&fleet, names, k](size_t) {
      std::vector<Step> steps;
      for (const auto& name : names) {
        const std::string node = text::shell_quote(name);
        steps.push_back(script_step(fleet, "delete-" + name, "delete", fmt::format("check whether node {} is gone", name),
                                    fmt::format("{} get node {} >/dev/null 2>&1 && exit 1\nexit 0\n", k, node),
                                    fmt::format("delete node {}", name), fmt::format("{} delete node {} --ignore-not-found\n", k, node)));
      }
      return steps;
    };
    return p;
  };
  return spec;
}

} // namespace mlplat::phases
