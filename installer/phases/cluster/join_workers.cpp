#include "phases/phases.hpp"

#include "phases/common.hpp"

#include <fmt/core.h>

namespace mlplat::phases {

using namespace workflow;

PhaseSpec join_workers()
{
  PhaseSpec spec;
  spec.path = "cluster/join-workers";
  spec.summary = "workers join, in parallel";
  spec.build = [](Context& ctx) -> Result<Phase> {
    TRY_ASSIGN(Phase p, join_phase(ctx, "join-workers", "workers join through {}", ctx.workers(), false));
    p.batch = ctx.worker_batch;
    return p;
  };
  return spec;
}

} // namespace mlplat::phases
