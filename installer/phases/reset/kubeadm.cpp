// reset/kubeadm: `kubeadm reset` on each host kubeadm set up: its containers stopped and removed
// through the CRI, the kubelet stopped, its files and certificates gone. The etcd member of a control
// plane is not removed here (the whole cluster goes, or remove-node removed it first).
#include "phases/phases.hpp"

#include "util/sha256.hpp"

#include <fmt/core.h>

namespace mlplat::phases {

using namespace workflow;

namespace {

// Converged when nothing kubeadm writes is left, or when kubeadm is not there to run (reset/host
// removes those files then).
const char* const k_check =
  "[ -x /usr/local/bin/kubeadm ] || exit 0\n"
  "for f in /etc/kubernetes/kubelet.conf /etc/kubernetes/admin.conf /etc/kubernetes/super-admin.conf /var/lib/kubelet/config.yaml; do "
  "[ -e \"$f\" ] && exit 1; done\n"
  // kubeadm empties its certificate directory and keeps it; etcd's data is reset/host's (its member
  // phase is skipped).
  "[ -n \"$(ls -A /etc/kubernetes/pki 2>/dev/null)\" ] && exit 1\n"
  "ls /etc/kubernetes/manifests/*.yaml >/dev/null 2>&1 && exit 1\n"
  "exit 0\n";

const char* const k_apply =
  // kubeadm stops and removes the containers through the CRI: containerd must run for that.
  "systemctl is-active --quiet containerd || systemctl start containerd || true\n"
  "/usr/local/bin/kubeadm reset --force --skip-phases remove-etcd-member --cri-socket unix:///run/containerd/containerd.sock\n";

} // namespace

PhaseSpec reset_kubeadm()
{
  PhaseSpec spec;
  spec.path = "reset/kubeadm";
  spec.summary = "kubeadm reset on each host: its containers, the kubelet, its files and certificates";
  spec.needs_bundle = false;
  spec.build = [](Context& ctx) -> Result<Phase> {
    Phase p;
    p.name = "kubeadm";
    p.summary = "kubeadm reset";
    p.hosts = ctx.target_hosts();
    p.deadline = std::chrono::seconds(300);
    auto& fleet = ctx.fleet;
    p.steps = [&fleet](size_t) {
      return std::vector<Step>{script_step(fleet, "kubeadm-reset", sha256_hex(k_apply), "check for what kubeadm set up on the host", k_check,
                                           "kubeadm reset (containers, the kubelet, kubeadm's files)", k_apply,
                                           {.apply_deadline = std::chrono::seconds(240)})};
    };
    return p;
  };
  return spec;
}

} // namespace mlplat::phases
