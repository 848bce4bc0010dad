// cluster/volumes: the volumes a reset recorded (phases/volumes.hpp) given back before the platform
// creates its claims again: each a PersistentVolume pre-bound to its claim on its old directory and
// node, so the claim binds to its data instead of a new, empty directory. Without a record the phase
// has no step.
#include "phases/phases.hpp"

#include "phases/volumes.hpp"
#include "util/log.hpp"
#include "util/sha256.hpp"
#include "util/text.hpp"

#include <fmt/core.h>

namespace mlplat::phases {

using namespace workflow;

namespace {

// The records whose node is a host of the cluster file; the others are named in a warning.
std::vector<VolumeRecord> restorable(const Context& ctx, const std::vector<VolumeRecord>& records)
{
  std::vector<VolumeRecord> out;
  for (const auto& r : records) {
    bool known = false;
    for (const auto& h : ctx.cluster.hosts) {
      known = known || h.name == r.node;
    }
    if (known) {
      out.push_back(r);
    } else {
      log::warn("volume {} of claim {}/{} was kept on {}, which is not a host of {} now: it is not given back (its data stays in {} there)",
                r.name, r.claim_namespace, r.claim_name, r.node, ctx.cluster.source_file, r.path);
    }
  }
  return out;
}

} // namespace

PhaseSpec volumes()
{
  PhaseSpec spec;
  spec.path = "cluster/volumes";
  spec.summary = "the volumes a reset kept given back to their claims (pre-bound PersistentVolumes on their directories)";
  spec.needs_bundle = false;
  spec.build = [](Context& ctx) -> Result<Phase> {
    TRY_ASSIGN(const auto records, read_volume_records(ctx.state_dir));
    const auto wanted = restorable(ctx, records);
    Phase p;
    p.name = "volumes";
    p.summary = fmt::format("{} kept volume{} given back", wanted.size(), wanted.size() == 1 ? "" : "s");
    p.hosts = {ctx.first_control_plane};
    auto& fleet = ctx.fleet;
    const std::string k = kubectl();
    p.steps = [&fleet, wanted, k](size_t) {
      std::vector<Step> steps;
      for (const auto& r : wanted) {
        const std::string manifest = restored_volume_manifest(r);
        // Converged once the volume exists, whatever its phase: bound, its claim's, is the goal; a
        // PersistentVolume is never re-created over one the cluster already has.
        const std::string check = fmt::format("{} get pv {} >/dev/null 2>&1 && exit 0\nexit 1\n", k, text::shell_quote(r.name));
        const std::string apply = fmt::format("{} create -f - <<'MLPLAT_PV'\n{}MLPLAT_PV\n", k, manifest);
        Step s = script_step(fleet, "restore-" + r.name, sha256_hex(manifest),
                             fmt::format("check for volume {} (claim {}/{})", r.name, r.claim_namespace, r.claim_name), check,
                             fmt::format("give volume {} on {}:{} back to claim {}/{}", r.name, r.node, r.path, r.claim_namespace, r.claim_name),
                             apply);
        s.once = true;  // given back once: a claim deleted later is not bound to it again by the next install
        steps.push_back(std::move(s));
      }
      return steps;
    };
    return p;
  };
  return spec;
}

} // namespace mlplat::phases
