// node/etcd-member: the etcd member of each control plane removed, through the first control plane,
// before its host is reset (kubeadm reset is told to leave etcd's membership alone).
#include "phases/phases.hpp"

#include "phases/common.hpp"

#include "kube/etcd.hpp"

#include <fmt/core.h>

namespace mlplat::phases {

using namespace workflow;

PhaseSpec node_etcd_member()
{
  PhaseSpec spec;
  spec.path = "node/etcd-member";
  spec.summary = "the etcd member of each control plane removed";
  spec.needs_bundle = false;
  spec.build = [](Context& ctx) -> Result<Phase> {
    const auto leaving = target_names(ctx, true);
    Phase p;
    p.name = "etcd-member";
    p.summary = "etcd members removed";
    p.hosts = {ctx.first_control_plane};
    auto& fleet = ctx.fleet;
    p.steps = [&fleet, leaving](size_t) {
      std::vector<Step> steps;
      for (const auto& name : leaving) {
        // The member's id, found when the step runs: "" once it is gone.
        auto id_of = [&fleet, name](size_t h) -> Result<std::string> {
          TRY_ASSIGN(const auto r, fleet.run(h, read_only("list etcd's members", kube::etcd_members_script())));
          TRY_ASSIGN(const auto members, kube::parse_etcd_members(r.out));
          for (const auto& m : members) {
            if (m.name == name) {
              return m.id;
            }
          }
          return std::string();
        };
        Step s;
        s.name = "remove-" + name;
        s.digest = name;
        s.check = [id_of](size_t h) -> Result<bool> {
          TRY_ASSIGN(const auto id, id_of(h));
          return id.empty();
        };
        s.apply = [&fleet, id_of, name](size_t h) -> Status {
          TRY_ASSIGN(const auto id, id_of(h));
          if (id.empty()) {
            return {};
          }
          TRY(fleet.run(h, mutating(fmt::format("remove etcd member {} ({})", name, id), kube::etcd_remove_member_script(id))));
          return {};
        };
        s.verify = [id_of, name](size_t h) -> Status {
          TRY_ASSIGN(const auto id, id_of(h));
          return id.empty() ? Status{} : fail(ErrorCode::failed, fmt::format("etcd still lists member {} ({})", name, id));
        };
        steps.push_back(std::move(s));
      }
      return steps;
    };
    return p;
  };
  return spec;
}

} // namespace mlplat::phases
