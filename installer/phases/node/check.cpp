// node/check: before remove-node changes anything, on the first control plane: removing the named
// control planes must leave etcd a quorum (kube::quorum_refusal); a refusal names the reason and the fix.
#include "phases/phases.hpp"

#include "phases/common.hpp"

#include "kube/etcd.hpp"
#include "util/text.hpp"

#include <fmt/core.h>

namespace mlplat::phases {

using namespace workflow;

PhaseSpec node_check()
{
  PhaseSpec spec;
  spec.path = "node/check";
  spec.summary = "etcd keeps its quorum without the control planes removed (refused otherwise, nothing changed)";
  spec.needs_bundle = false;
  spec.build = [](Context& ctx) -> Result<Phase> {
    const auto leaving = target_names(ctx, true);
    Phase p;
    p.name = "check";
    p.summary = "etcd's quorum without the control planes removed";
    p.hosts = {ctx.first_control_plane};
    auto& fleet = ctx.fleet;
    p.steps = [&fleet, leaving](size_t) {
      std::vector<Step> steps;
      if (leaving.empty()) {
        return steps;
      }
      Step s;
      s.name = "quorum";
      s.digest = text::join(leaving, ",");
      s.check = [&fleet, leaving](size_t h) -> Result<bool> {
        auto fix = [] {
          return std::string("bring the unhealthy members back first (their hosts up, etcd running), or add a control plane (mlplat install) "
                             "before removing this one; docs/runbooks/remove-node.md");
        };
        TRY_ASSIGN(const auto r, fleet.exec(h, read_only("list etcd's members and their health", kube::etcd_members_script())));
        if (!r.ok()) {
          // etcd without a leader does not answer its member list: no removal could commit either.
          Error e;
          e.code = ErrorCode::preflight_failed;
          e.host = fleet.endpoint(h).name;
          e.message = fmt::format("removing {} is refused: etcd does not answer its member list ({}): without a quorum no member can "
                                  "be removed", text::join(leaving, ", "), text::trim(r.err));
          e.fix = fix();
          return tl::unexpected(std::move(e));
        }
        TRY_ASSIGN(const auto members, kube::parse_etcd_members(r.out));
        std::vector<std::string> still;
        for (const auto& m : members) {
          if (std::find(leaving.begin(), leaving.end(), m.name) != leaving.end()) {
            still.push_back(m.name);
          }
        }
        if (still.empty()) {
          return true;  // removed already (a run that went on after this check)
        }
        if (const auto why = kube::quorum_refusal(members, still); !why.empty()) {
          std::vector<std::string> health;
          for (const auto& m : members) {
            health.push_back(m.name + (m.healthy ? " healthy" : " NOT healthy"));
          }
          Error e;
          e.code = ErrorCode::preflight_failed;
          e.host = fleet.endpoint(h).name;
          e.message = fmt::format("removing {} is refused: {} (members: {})", text::join(still, ", "), why, text::join(health, ", "));
          e.fix = fix();
          return tl::unexpected(std::move(e));
        }
        return true;
      };
      s.apply = [](size_t) -> Status { return {}; };
      steps.push_back(std::move(s));
      return steps;
    };
    return p;
  };
  return spec;
}

} // namespace mlplat::phases
