// reset/data (--purge-data only): the volumes' directories under the storage base path removed, and
// their records with them.
#include "phases/phases.hpp"

#include "phases/volumes.hpp"
#include "util/sha256.hpp"
#include "util/text.hpp"

#include <fmt/core.h>

#include <mutex>

namespace mlplat::phases {

using namespace workflow;

PhaseSpec reset_data()
{
  PhaseSpec spec;
  spec.path = "reset/data";
  spec.summary = "with --purge-data: the volumes' directories (the storage base path) removed, their records too";
  spec.needs_bundle = false;
  spec.skip_if = [](const Context& ctx) { return ctx.purge_data ? std::string() : std::string("the data is kept (no --purge-data)"); };
  spec.build = [](Context& ctx) -> Result<Phase> {
    Phase p;
    p.name = "data";
    p.summary = fmt::format("the base path {} removed", ctx.effective.base_path);
    p.hosts = ctx.target_hosts();
    auto& fleet = ctx.fleet;
    const std::string base = text::shell_quote(ctx.effective.base_path);
    // A base path that is a mount point keeps its directory, emptied.
    const std::string apply = fmt::format(
      "if awk -v d={0} '$2 == d {{ f = 1 }} END {{ exit !f }}' /proc/mounts; then find {0} -mindepth 1 -maxdepth 1 -exec rm -rf {{}} +; "
      "else rm -rf {0}; fi\n", base);
    const std::string mounted_check = fmt::format(
      "[ -e {0} ] || exit 0\n"
      "awk -v d={0} '$2 == d {{ f = 1 }} END {{ exit !f }}' /proc/mounts && [ -z \"$(ls -A {0})\" ] && exit 0\nexit 1\n", base);
    std::vector<std::string> names;
    for (size_t h : p.hosts) {
      names.push_back(ctx.cluster.hosts[h].name);
    }
    const auto dir = ctx.state_dir;
    const bool dry = ctx.dry_run;
    p.steps = [&fleet, mounted_check, apply, names, dir, dry](size_t) {
      Step s = script_step(fleet, "purge", sha256_hex(apply), "check for the volumes' directories", mounted_check,
                           "remove the volumes' directories (--purge-data)", apply);
      auto inner = s.apply;
      s.apply = [inner, names, dir, dry, &fleet](size_t h) -> Status {
        TRY(inner(h));
        if (dry) {
          return {};
        }
        // Their records go with them: nothing is left to give back (one host's worker at a time).
        static std::mutex records_mutex;
        const std::lock_guard<std::mutex> hold(records_mutex);
        TRY_ASSIGN(auto records, read_volume_records(dir));
        std::erase_if(records, [&](const VolumeRecord& r) { return r.node == fleet.endpoint(h).name; });
        return write_volume_records(dir, records);
      };
      return std::vector<Step>{s};
    };
    return p;
  };
  return spec;
}

} // namespace mlplat::phases
