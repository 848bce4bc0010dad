// `mlplat reset`: the named hosts (default: all) back to "nothing mlplat installed", the volumes'
// data kept unless --purge-data (recorded first, so that the next install gives it back).
#include "commands/commands.hpp"

#include "phases/phases.hpp"
#include "phases/volumes.hpp"
#include "util/log.hpp"
#include "util/text.hpp"

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <iostream>
#include <set>

namespace mlplat::commands {

namespace {

int after_reset(workflow::Context& ctx, const workflow::Summary& summary, double seconds, const workflow::Ui& ui)
{
  std::set<std::string> names;
  for (size_t h : ctx.target_hosts()) {
    names.insert(ctx.cluster.hosts[h].name);
  }
  const bool whole = names.size() == ctx.cluster.hosts.size();
  if (!ctx.dry_run) {
    // The reset hosts start afresh: their steps (install's and this reset's) are forgotten.
    if (auto forgotten = ctx.journal.forget_hosts(names); !forgotten) {
      return ui.error(forgotten.error());
    }
    if (whole) {
      std::error_code ec;
      std::filesystem::remove(ctx.state_dir / "kubeconfig", ec);  // the admin kubeconfig of a cluster that is gone
    }
  }
  auto records = phases::read_volume_records(ctx.state_dir);
  if (!records) {
    return ui.error(records.error());
  }
  std::vector<phases::VolumeRecord> kept;
  for (const auto& r : *records) {
    if (names.count(r.node) != 0) {
      kept.push_back(r);
    }
  }
  const std::vector<std::string> hosts(names.begin(), names.end());
  if (ui.json) {
    nlohmann::json doc = {{"cluster", ctx.cluster.name},
                          {"dryRun", ctx.dry_run},
                          {"hosts", hosts},
                          {"wholeCluster", whole},
                          {"stepsApplied", summary.applied()},
                          {"stepsInPlace", summary.steps.size() - summary.applied()},
                          {"seconds", seconds},
                          {"dataPurged", ctx.purge_data},
                          {"stateDir", ctx.state_dir.string()},
                          {"keptVolumes", nlohmann::json::array()}};
    for (const auto& r : kept) {
      doc["keptVolumes"].push_back({{"name", r.name}, {"claim", r.claim_namespace + "/" + r.claim_name}, {"node", r.node}, {"path", r.path}});
    }
    std::cout << doc.dump(2) << "\n";
    return k_exit_ok;
  }
  std::cout << fmt::format("reset of cluster {}{}: {} ({} step{} {}, {} already in place, {:.1f} s)\n", ctx.cluster.name,
                           ctx.dry_run ? " (dry run: nothing changed)" : "", text::join(hosts, ", "), summary.applied(),
                           summary.applied() == 1 ? "" : "s", ctx.dry_run ? "would change" : "applied",
                           summary.steps.size() - summary.applied(), seconds);
  if (ctx.dry_run) {
    print_planned_hosts(ctx, summary);
  }
  if (ctx.purge_data) {
    std::cout << "the volumes' directories were removed (--purge-data)\n";
  } else if (!kept.empty()) {
    std::cout << fmt::format("data kept on the hosts ({} volume{}, recorded in {}); mlplat install gives them back to their claims:\n",
                             kept.size(), kept.size() == 1 ? "" : "s", (ctx.state_dir / "volumes.json").string());
    for (const auto& r : kept) {
      std::cout << fmt::format("  {}/{}  {}:{}\n", r.claim_namespace, r.claim_name, r.node, r.path);
    }
  }
  return k_exit_ok;
}

// Some control planes of a cluster that runs, not all: their etcd members would stay in the cluster
// (kubeadm reset leaves membership to remove-node), which costs the quorum. Refused, naming remove-node.
Status check_partial(workflow::Context& ctx)
{
  if (ctx.targets.empty()) {
    return {};
  }
  std::vector<std::string> leaving;
  bool one_stays = false;
  for (size_t h : ctx.running_control_planes) {
    if (std::find(ctx.targets.begin(), ctx.targets.end(), h) != ctx.targets.end()) {
      leaving.push_back(ctx.cluster.hosts[h].name);
    } else {
      one_stays = true;
    }
  }
  if (leaving.empty() || !one_stays) {
    return {};
  }
  Error e;
  e.code = ErrorCode::usage;
  e.message = fmt::format("{} {} a control plane of the running cluster: reset would leave {} etcd member{} behind", text::join(leaving, ", "),
                          leaving.size() == 1 ? "is" : "are", leaving.size() == 1 ? "its" : "their", leaving.size() == 1 ? "" : "s");
  e.fix = "take it out with mlplat remove-node " + text::join(leaving, " ") + " (which removes the member first), or reset every host";
  return tl::unexpected(std::move(e));
}

} // namespace

std::vector<workflow::PhaseSpec> reset_phases()
{
  return {phases::reset_volumes(), phases::reset_kubeadm(), phases::reset_host(), phases::reset_data()};
}

workflow::CommandSpec reset(bool dry_run)
{
  workflow::CommandSpec spec;
  spec.name = "reset";
  spec.dry_run = dry_run;
  spec.matrix_gate = false;
  spec.doctor = false;
  spec.lock_if_present = true;
  spec.phases = reset_phases();
  spec.before_hosts = check_partial;
  spec.after = after_reset;
  return spec;
}

} // namespace mlplat::commands
