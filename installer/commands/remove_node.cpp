// `mlplat remove-node NAME...`: each node drained, its etcd member (a control plane's) removed, its
// host reset (its data kept unless --purge-data), the Node deleted. Refused for the last control
// plane, and for one whose removal would break etcd's quorum (node/check), with nothing changed.
#include "commands/commands.hpp"

#include "phases/phases.hpp"
#include "util/log.hpp"
#include "util/text.hpp"

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <iostream>
#include <set>

namespace mlplat::commands {

namespace {

// The targets against the cluster file: a control plane stays, and the run works from one that does.
Status check_targets(workflow::Context& ctx)
{
  if (ctx.targets.empty()) {
    return fail(ErrorCode::usage, "remove-node needs the names of the nodes to remove", "name them after the command");
  }
  std::set<size_t> leaving(ctx.targets.begin(), ctx.targets.end());
  // The control planes that run the cluster now (a host of the file removed before no longer does);
  // the file's when none was found running.
  std::optional<size_t> staying;
  for (size_t h = 0; h < ctx.cluster.hosts.size(); ++h) {
    const bool control_plane = ctx.running_control_planes.empty() ? ctx.cluster.hosts[h].role == config::Role::control_plane
                                                                  : ctx.running_control_planes.count(h) != 0;
    if (control_plane && leaving.count(h) == 0) {
      staying = staying ? staying : h;
    }
  }
  if (!staying) {
    Error e;
    e.code = ErrorCode::preflight_failed;
    e.message = "removing every control plane of the cluster is refused: the cluster would have none left";
    e.fix = "keep one; to remove the whole cluster, run mlplat reset";
    return tl::unexpected(std::move(e));
  }
  if (leaving.count(ctx.first_control_plane) != 0) {
    log::info("{} is removed: this run works from {}", ctx.cluster.hosts[ctx.first_control_plane].name, ctx.cluster.hosts[*staying].name);
    ctx.first_control_plane = *staying;
  }
  for (size_t h : ctx.targets) {
    log::warn("{} is still in {}: the next mlplat install joins it again; remove it from spec.hosts once it is removed", ctx.cluster.hosts[h].name,
              ctx.cluster.source_file);
  }
  return {};
}

int after_remove(workflow::Context& ctx, const workflow::Summary& summary, double seconds, const workflow::Ui& ui)
{
  std::set<std::string> names;
  for (size_t h : ctx.target_hosts()) {
    names.insert(ctx.cluster.hosts[h].name);
  }
  if (!ctx.dry_run) {
    if (auto forgotten = ctx.journal.forget_hosts(names); !forgotten) {
      return ui.error(forgotten.error());
    }
  }
  const std::vector<std::string> removed(names.begin(), names.end());
  if (ui.json) {
    nlohmann::json doc = {{"cluster", ctx.cluster.name}, {"dryRun", ctx.dry_run}, {"removed", removed},
                          {"stepsApplied", summary.applied()}, {"stepsInPlace", summary.steps.size() - summary.applied()},
                          {"seconds", seconds}, {"dataPurged", ctx.purge_data}, {"stillInClusterFile", removed}};
    std::cout << doc.dump(2) << "\n";
    return k_exit_ok;
  }
  if (ctx.dry_run) {
    print_planned_hosts(ctx, summary);
  }
  std::cout << fmt::format("{} {} from cluster {} ({} step{} {}, {} already in place, {:.1f} s); {} still list{} {}\n",
                           ctx.dry_run ? "would remove" : "removed", text::join(removed, ", "), ctx.cluster.name, summary.applied(),
                           summary.applied() == 1 ? "" : "s", ctx.dry_run ? "would change" : "applied", summary.steps.size() - summary.applied(),
                           seconds, ctx.cluster.source_file, removed.size() == 1 ? "s it" : " them", "in spec.hosts: remove it there");
  return k_exit_ok;
}

} // namespace

std::vector<workflow::PhaseSpec> remove_node_phases()
{
  return {phases::reset_volumes(),  phases::node_check(), phases::node_drain(), phases::node_etcd_member(),
          phases::reset_kubeadm(),  phases::reset_host(), phases::reset_data(),  phases::node_delete()};
}

workflow::CommandSpec remove_node(bool dry_run)
{
  workflow::CommandSpec spec;
  spec.name = "remove-node";
  spec.dry_run = dry_run;
  spec.matrix_gate = false;
  spec.doctor = false;
  spec.phases = remove_node_phases();
  spec.before_hosts = check_targets;
  spec.after = after_remove;
  return spec;
}

} // namespace mlplat::commands
