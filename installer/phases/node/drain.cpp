// node/drain: each node removed is cordoned and drained from the first control plane (evictions, so
// PodDisruptionBudgets are respected), within ctx's drain deadline.
#include "phases/phases.hpp"

#include "phases/common.hpp"

#include "util/text.hpp"

#include <fmt/core.h>

namespace mlplat::phases {

using namespace workflow;

PhaseSpec node_drain()
{
  PhaseSpec spec;
  spec.path = "node/drain";
  spec.summary = "each node removed cordoned and drained (PodDisruptionBudgets respected, bounded)";
  spec.needs_bundle = false;
  spec.build = [](Context& ctx) -> Result<Phase> {
    const auto names = target_names(ctx);
    Phase p;
    p.name = "drain";
    p.summary = "cordon and drain " + text::join(names, ", ");
    p.hosts = {ctx.first_control_plane};
    const auto deadline = ctx.drain_deadline;
    p.deadline = deadline + std::chrono::seconds(60);
    auto& fleet = ctx.fleet;
    const std::string k = kubectl();
    p.steps = [&fleet, names, k, deadline](size_t) {
      std::vector<Step> steps;
      for (const auto& name : names) {
        const std::string node = text::shell_quote(name);
        // Converged once the node is unschedulable and only DaemonSet and mirror pods are left on it.
        const std::string check = fmt::format(
          "{0} get node {1} >/dev/null 2>&1 || exit 0\n"
          "[ \"$({0} get node {1} -o jsonpath='{{.spec.unschedulable}}')\" = true ] || exit 1\n"
          "left=$({0} get pods -A --field-selector spec.nodeName={1} -o jsonpath='{{range .items[*]}}{{.metadata.ownerReferences[0].kind}}{{\"\\n\"}}{{end}}' "
          "| grep -cvE '^(DaemonSet|Node)$')\n"
          "[ \"$left\" -eq 0 ] || exit 1\nexit 0\n",
          k, node);
        const std::string apply = fmt::format(
          "{0} cordon {1}\n"
          "if ! out=$({0} drain {1} --ignore-daemonsets --delete-emptydir-data --timeout={2}s 2>&1); then\n"
          "  printf '%s\\n' \"$out\" | tail -n 5 >&2\n"
          "  echo 'the drain of node '{1}' did not end within {2} s (its pods are evicted as their PodDisruptionBudgets allow)' >&2\n"
          "  exit 124\nfi\n",
          k, node, deadline.count());
        Step s = script_step(fleet, "drain-" + name, "drain", fmt::format("check whether node {} is drained", name), check,
                             fmt::format("cordon and drain node {} (at most {} s)", name, deadline.count()), apply,
                             {.apply_deadline = deadline + std::chrono::seconds(30)});
        steps.push_back(std::move(s));
      }
      return steps;
    };
    return p;
  };
  return spec;
}

} // namespace mlplat::phases
