#include "phases/phases.hpp"

#include <fmt/core.h>

namespace mlplat::phases {

using namespace workflow;

namespace {

Phase cleanup_phase(transport::Fleet& fleet, size_t first_control_plane)
{
  Phase p;
  p.name = "cleanup";
  p.summary = "bootstrap tokens and the kubeadm-certs Secret removed";
  p.hosts = {first_control_plane};
  p.deadline = std::chrono::seconds(120);
  const std::string k = kubectl();
  std::vector<Step> steps;
  // `kubeadm token list` prints whole tokens: its output is never logged, only counted.
  steps.push_back(script_step(fleet, "join-tokens", "tokens", "check that no bootstrap token is left",
                           "[ \"$(kubeadm token list 2>/dev/null | awk 'NR > 1' | wc -l)\" -eq 0 ] || exit 1\nexit 0\n",
                           "delete every bootstrap token",
                           "kubeadm token list | awk 'NR > 1 {print $1}' | while read -r t; do kubeadm token delete \"${t%%.*}\" >/dev/null; done\n",
                           ScriptOptions{transport::Sensitive::yes}));
  steps.push_back(script_step(fleet, "kubeadm-certs", "kubeadm-certs", "check that the kubeadm-certs Secret is gone",
                              fmt::format("{} -n kube-system get secret kubeadm-certs >/dev/null 2>&1 && exit 1\nexit 0\n", k),
                              "delete the kubeadm-certs Secret (the control-plane certificates, encrypted)",
                              fmt::format("{} -n kube-system delete secret kubeadm-certs --ignore-not-found", k)));
  p.steps = [steps](size_t) { return steps; };
  return p;
}

} // namespace

PhaseSpec cleanup()
{
  PhaseSpec spec;
  spec.path = "cluster/cleanup";
  spec.summary = "bootstrap tokens and the kubeadm-certs Secret removed";
  spec.build = [](Context& ctx) -> Result<Phase> { return cleanup_phase(ctx.fleet, ctx.first_control_plane); };
  return spec;
}

} // namespace mlplat::phases
