// reset/volumes: before the cluster goes, which claim lives in which directory on which node, in the
// state directory (phases/volumes.hpp), so that install gives the data back.
#include "phases/phases.hpp"

#include "phases/volumes.hpp"
#include "util/log.hpp"

#include <fmt/core.h>

namespace mlplat::phases {

using namespace workflow;

namespace {

// The volumes the API server lists now, or nullopt when it does not answer (a cluster already gone).
Result<std::optional<std::vector<VolumeRecord>>> live_volumes(transport::Fleet& fleet, size_t host)
{
  auto cmd = read_only("list the PersistentVolumes (kubectl get pv -o json)",
                       fmt::format("[ -f {} ] || exit 3\n{} get pv -o json --request-timeout=20s || exit 3\n", k_admin_kubeconfig, kubectl()));
  TRY_ASSIGN(const auto r, fleet.exec(host, cmd));
  if (r.exit_status == 3) {
    return std::optional<std::vector<VolumeRecord>>{};
  }
  if (!r.ok()) {
    return fail(ErrorCode::failed, fmt::format("listing the PersistentVolumes failed ({}): {}", r.status_text(), r.err));
  }
  TRY_ASSIGN(auto volumes, local_volumes(r.out));
  // The storage phase's probe (manifests/storage/probe.yaml) holds no data of anyone's.
  std::erase_if(volumes, [](const VolumeRecord& v) { return v.claim_namespace == "mlplat-probe"; });
  return std::optional<std::vector<VolumeRecord>>(std::move(volumes));
}

bool same(const std::vector<VolumeRecord>& a, const std::vector<VolumeRecord>& b)
{
  if (a.size() != b.size()) {
    return false;
  }
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].name != b[i].name || a[i].path != b[i].path || a[i].node != b[i].node || a[i].claim_name != b[i].claim_name ||
        a[i].claim_namespace != b[i].claim_namespace) {
      return false;
    }
  }
  return true;
}

} // namespace

PhaseSpec reset_volumes()
{
  PhaseSpec spec;
  spec.path = "reset/volumes";
  spec.summary = "record which claim lives in which directory on which node (state directory), while the API server answers";
  spec.needs_bundle = false;
  spec.build = [](Context& ctx) -> Result<Phase> {
    Phase p;
    p.name = "volumes";
    p.summary = "record the volumes' directories in the state directory";
    p.hosts = {ctx.first_control_plane};
    p.deadline = std::chrono::seconds(120);
    auto& fleet = ctx.fleet;
    const auto dir = ctx.state_dir;
    p.steps = [&fleet, dir](size_t) {
      auto merged = std::make_shared<std::vector<VolumeRecord>>();
      Step s;
      s.name = "record";
      s.digest = "volumes";
      s.check = [&fleet, dir, merged](size_t h) -> Result<bool> {
        TRY_ASSIGN(const auto live, live_volumes(fleet, h));
        TRY_ASSIGN(const auto old, read_volume_records(dir));
        if (!live) {
          log::write(log::Level::info, fleet.endpoint(h).name, "no API server answers here: no volume to record");
          *merged = old;
          return true;
        }
        *merged = merge_volume_records(old, *live);
        return same(*merged, old);
      };
      s.apply = [&fleet, dir, merged](size_t h) -> Status {
        if (fleet.dry_run()) {
          return {};
        }
        TRY(write_volume_records(dir, *merged));
        for (const auto& v : *merged) {
          log::write(log::Level::info, fleet.endpoint(h).name,
                     fmt::format("recorded volume {} of claim {}/{}: {} on {}", v.name, v.claim_namespace, v.claim_name, v.path, v.node));
        }
        return {};
      };
      return std::vector<Step>{s};
    };
    return p;
  };
  return spec;
}

} // namespace mlplat::phases
