// `mlplat plan`: install's phases in dry-run, printed per host.
#include "commands/commands.hpp"

#include "util/text.hpp"

#include <fmt/core.h>

#include <iostream>

namespace mlplat::commands {

void print_planned_hosts(const workflow::Context& ctx)
{
  const auto& fleet = ctx.fleet;
  const auto planned = fleet.plan();
  for (size_t h = 0; h < fleet.size(); ++h) {
    const std::string& host = fleet.endpoint(h).name;
    std::cout << fmt::format("\n{} ({})\n", host, fleet.endpoint(h).address);
    size_t n = 0;
    for (const auto& c : planned) {
      if (c.host != host) {
        continue;
      }
      ++n;
      std::cout << fmt::format("  {}: {}\n", c.step, c.description);
      if (c.sensitive) {
        std::cout << "      (command withheld: it carries a secret)\n";
      } else if (!c.script.empty()) {
        std::cout << text::indent(c.script, "      ") << "\n";
      }
    }
    if (n == 0) {
      std::cout << "  nothing to change\n";
    }
  }
}

namespace {

// Per host, in the order install would run them: phase/step, what, and the command itself; then the
// phases a run_if left out.
int print_plan(workflow::Context& ctx, const workflow::Summary& summary, double, const workflow::Ui&)
{
  const auto& fleet = ctx.fleet;
  std::cout << fmt::format("plan for cluster {} ({} hosts): {} step{} would change something\n", ctx.cluster.name, fleet.size(),
                           summary.applied(), summary.applied() == 1 ? "" : "s");
  print_planned_hosts(ctx);
  bool header = false;
  for (const auto& s : summary.skipped) {
    if (s.reason == "--skip" || s.reason == "not in --only") {
      continue;
    }
    if (!header) {
      std::cout << "\nleft out:\n";
      header = true;
    }
    std::cout << fmt::format("  {}: {}\n", s.path, s.reason);
  }
  return k_exit_ok;
}

} // namespace

workflow::CommandSpec plan()
{
  workflow::CommandSpec spec = install();
  spec.name = "plan";
  spec.dry_run = true;
  spec.after = print_plan;
  return spec;
}

} // namespace mlplat::commands
