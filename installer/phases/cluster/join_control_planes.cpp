#include "phases/phases.hpp"

#include "phases/common.hpp"

#include <fmt/core.h>

namespace mlplat::phases {

using namespace workflow;

PhaseSpec join_control_planes()
{
  PhaseSpec spec;
  spec.path = "cluster/join-control-planes";
  spec.summary = "further control planes join, one at a time";
  spec.build = [](Context& ctx) -> Result<Phase> {
    TRY_ASSIGN(Phase p, join_phase(ctx, "join-control-planes", "further control planes join through {}, one at a time", ctx.other_control_planes(), true));
    p.serial = true;
    return p;
  };
  return spec;
}

} // namespace mlplat::phases
