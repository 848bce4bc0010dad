// reset/host: everything of phases::host_footprint() removed from each host: services, the CNI's
// interfaces and firewall chains, programs, configuration, drop-ins, containerd's state, mlplat's
// directory; /etc/fstab's swap lines put back. The volumes' directories stay (reset/data).
#include "phases/phases.hpp"

#include "phases/footprint.hpp"
#include "util/sha256.hpp"

namespace mlplat::phases {

using namespace workflow;

PhaseSpec reset_host()
{
  PhaseSpec spec;
  spec.path = "reset/host";
  spec.summary = "every service, program, file, interface and chain install put on the host removed (its data kept)";
  spec.needs_bundle = false;
  spec.build = [](Context& ctx) -> Result<Phase> {
    Phase p;
    p.name = "host";
    p.summary = "what install put on the host";
    p.hosts = ctx.target_hosts();
    p.deadline = std::chrono::seconds(300);
    auto& fleet = ctx.fleet;
    const std::string check = leftovers_script(host_footprint());
    const std::string apply = removal_script(host_footprint());
    p.steps = [&fleet, check, apply](size_t) {
      return std::vector<Step>{script_step(fleet, "footprint", sha256_hex(apply), "check for anything install put on the host", check,
                                           "remove what install put on the host", apply)};
    };
    return p;
  };
  return spec;
}

} // namespace mlplat::phases
