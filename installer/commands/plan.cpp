// `mlplat plan`: install's phases in dry-run, printed per host (text, or JSON: docs/schemas/plan.schema.json).
#include "commands/commands.hpp"

#include "util/text.hpp"

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <iostream>

namespace mlplat::commands {

namespace {

// How many steps would change on `host` (steps, not commands: a step may run several).
size_t would_change(const workflow::Summary& summary, const std::string& host)
{
  return static_cast<size_t>(std::count_if(summary.steps.begin(), summary.steps.end(), [&](const workflow::StepOutcome& s) {
    return s.host == host && s.what == workflow::StepOutcome::What::planned;
  }));
}

std::string steps(size_t n)
{
  return fmt::format("{} step{}", n, n == 1 ? "" : "s");
}

// The phases a run_if left out (not those the operator's --only/--skip deselected).
std::vector<workflow::Skipped> left_out(const workflow::Summary& summary)
{
  std::vector<workflow::Skipped> out;
  for (const auto& s : summary.skipped) {
    if (s.reason != "--skip" && s.reason != "not in --only") {
      out.push_back(s);
    }
  }
  return out;
}

void print_json(const workflow::Context& ctx, const workflow::Summary& summary)
{
  const auto& fleet = ctx.fleet;
  const auto planned = fleet.plan();
  nlohmann::json hosts = nlohmann::json::array();
  for (size_t h = 0; h < fleet.size(); ++h) {
    const std::string& host = fleet.endpoint(h).name;
    nlohmann::json commands = nlohmann::json::array();
    for (const auto& c : planned) {
      if (c.host == host) {
        nlohmann::json one{{"step", c.step}, {"description", c.description}, {"sensitive", c.sensitive}};
        if (!c.sensitive && !c.script.empty()) {
          one["script"] = c.script;
        }
        commands.push_back(std::move(one));
      }
    }
    hosts.push_back({{"name", host}, {"address", fleet.endpoint(h).address}, {"wouldChange", would_change(summary, host)}, {"commands", commands}});
  }
  nlohmann::json skipped = nlohmann::json::array();
  for (const auto& s : left_out(summary)) {
    skipped.push_back({{"path", s.path}, {"reason", s.reason}});
  }
  nlohmann::json ignored = nlohmann::json::array();
  for (const auto& f : ctx.ignored) {
    ignored.push_back({{"id", f.id}, {"host", f.host}, {"title", f.title}, {"observed", f.observed}});
  }
  std::cout << nlohmann::json{{"cluster", ctx.cluster.name}, {"wouldChange", summary.applied()}, {"hosts", hosts},
                              {"leftOut", skipped},           {"ignored", ignored}}
                 .dump(2)
            << "\n";
}

// Per host, in the order install would run them: phase/step, what, and the command itself; then the
// phases a run_if left out and the preflight errors --ignore let pass. A plan changed nothing: it
// says what would change, never what was done.
int print_plan(workflow::Context& ctx, const workflow::Summary& summary, double, const workflow::Ui& ui)
{
  if (ui.json) {
    print_json(ctx, summary);
    return k_exit_ok;
  }
  const auto& fleet = ctx.fleet;
  std::cout << fmt::format("plan for cluster {} ({} host{}): {} would change something\n", ctx.cluster.name, fleet.size(),
                           fleet.size() == 1 ? "" : "s", steps(summary.applied()));
  print_planned_hosts(ctx, summary);
  const auto skipped = left_out(summary);
  if (!skipped.empty()) {
    std::cout << "\nleft out:\n";
    for (const auto& s : skipped) {
      std::cout << fmt::format("  {}: {}\n", s.path, s.reason);
    }
  }
  if (!ctx.ignored.empty()) {
    std::cout << "\nignored with --ignore (preflight errors install would not stop at):\n";
    for (const auto& f : ctx.ignored) {
      std::cout << fmt::format("  {}{} {}: {}\n", f.host.empty() ? "" : f.host + ": ", f.id, f.title, f.observed);
    }
  }
  return k_exit_ok;
}

} // namespace

void print_planned_hosts(const workflow::Context& ctx, const workflow::Summary& summary)
{
  const auto& fleet = ctx.fleet;
  const auto planned = fleet.plan();
  for (size_t h = 0; h < fleet.size(); ++h) {
    const std::string& host = fleet.endpoint(h).name;
    const size_t n = would_change(summary, host);
    std::cout << fmt::format("\n{} ({}): {}\n", host, fleet.endpoint(h).address, n == 0 ? "nothing would change" : steps(n) + " would change");
    for (const auto& c : planned) {
      if (c.host != host) {
        continue;
      }
      std::cout << fmt::format("  {}: {}\n", c.step, c.description);
      if (c.sensitive) {
        std::cout << "      (command withheld: it carries a secret)\n";
      } else if (!c.script.empty()) {
        std::cout << text::indent(c.script, "      ") << "\n";
      }
    }
  }
}

workflow::CommandSpec plan()
{
  workflow::CommandSpec spec = install();
  spec.name = "plan";
  spec.dry_run = true;
  spec.after = print_plan;
  return spec;
}

} // namespace mlplat::commands
