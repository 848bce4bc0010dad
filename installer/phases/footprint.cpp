#include "phases/footprint.hpp"

#include "kube/kubeadm.hpp"
#include "util/text.hpp"
#include "workflow/remote_lock.hpp"

#include <fmt/core.h>

namespace mlplat::phases {

const Footprint& host_footprint()
{
  static const Footprint f = [] {
    Footprint p;
    p.services = {"kubelet", "containerd"};
    p.files = {
      // host/prepare
      k_sysctl_dropin, k_modules_dropin, "/etc/fstab.mlplat-backup",
      // host/containerd: the programs of the bundle's archives and files, the configs, the units
      "/usr/local/bin/containerd", "/usr/local/bin/containerd-shim-runc-v2", "/usr/local/bin/containerd-stress", "/usr/local/bin/ctr",
      "/usr/local/sbin/runc", "/usr/local/bin/crictl", "/usr/local/bin/kubeadm", "/usr/local/bin/kubelet", "/usr/local/bin/kubectl",
      "/etc/crictl.yaml", "/usr/local/lib/systemd/system/containerd.service", "/usr/local/lib/systemd/system/kubelet.service",
      // platform/istio
      "/usr/local/bin/istioctl",
      // systemctl enable's links
      "/etc/systemd/system/multi-user.target.wants/containerd.service", "/etc/systemd/system/multi-user.target.wants/kubelet.service"};
    p.directories = {
      "/usr/local/lib/systemd/system/kubelet.service.d", "/etc/containerd", "/opt/cni", "/etc/cni",
      // kubeadm's (kubeadm reset removes most of them; what it leaves goes too) and the kubelet's
      "/etc/kubernetes", "/var/lib/kubelet", "/var/lib/etcd", "/var/log/pods", "/var/log/containers",
      // containerd's state
      "/var/lib/containerd", "/run/containerd",
      // the CNI's (Calico, Flannel)
      "/var/lib/calico", "/run/calico", "/var/log/calico", "/run/flannel", "/var/lib/cni",
      // mlplat's own (the cluster lock's directory in it is removed when the lock is released)
      k_host_state_dir};
    p.interfaces = {"cali*", "vxlan.calico", "vxlan-v6.calico", "tunl0", "flannel.1", "flannel-v6.1", "cni0", "kube-ipvs0", "nodelocaldns"};
    p.chain_marks = {"KUBE-", "cali-", "cali:", "FLANNEL", "CNI-"};
    p.nft_tables = {"ip kube-proxy", "ip6 kube-proxy", "ip calico", "ip6 calico"};
    return p;
  }();
  return f;
}

bool covers(const Footprint& footprint, const std::string& path)
{
  for (const auto& f : footprint.files) {
    if (path == f) {
      return true;
    }
  }
  for (const auto& d : footprint.directories) {
    if (path == d || path.rfind(d + "/", 0) == 0) {
      return true;
    }
  }
  return false;
}

namespace {

std::string quoted_words(const std::vector<std::string>& words)
{
  std::vector<std::string> q;
  for (const auto& w : words) {
    q.push_back(text::shell_quote(w));
  }
  return text::join(q, " ");
}

// The interfaces of the footprint present on the host, one per line (prefixes matched).
std::string interfaces_present(const Footprint& f)
{
  std::string cases;
  for (const auto& i : f.interfaces) {
    cases += (cases.empty() ? "" : "|") + (i.back() == '*' ? text::shell_quote(i.substr(0, i.size() - 1)) + "*" : text::shell_quote(i));
  }
  return fmt::format("for n in $(ls /sys/class/net 2>/dev/null); do case \"$n\" in {}) echo \"$n\" ;; esac; done", cases);
}

std::string marks_pattern(const Footprint& f)
{
  std::vector<std::string> m;
  for (const auto& mark : f.chain_marks) {
    m.push_back(mark);
  }
  return text::shell_quote(text::join(m, "|"));
}

} // namespace

static std::string nft_tables(const Footprint& f)
{
  return quoted_words(f.nft_tables);
}

std::string leftovers_script(const Footprint& f)
{
  std::vector<std::string> paths = f.files;
  for (const auto& d : f.directories) {
    if (d != k_host_state_dir) {
      paths.push_back(d);
    }
  }
  return fmt::format(
    "left=0\n"
    "for s in {services}; do systemctl is-active --quiet \"$s\" && {{ echo \"left: service $s running\"; left=1; }}; "
    "systemctl is-enabled --quiet \"$s\" 2>/dev/null && {{ echo \"left: service $s enabled\"; left=1; }}; done\n"
    // A directory that is a mount point (a disk of its own for /var/lib/containerd) stays, empty.
    "mounted() {{ awk -v d=\"$1\" '$2 == d {{ f = 1 }} END {{ exit !f }}' /proc/mounts; }}\n"
    "for p in {paths}; do if [ -e \"$p\" ] || [ -L \"$p\" ]; then\n"
    "  if [ -d \"$p\" ] && mounted \"$p\" && [ -z \"$(ls -A \"$p\")\" ]; then continue; fi\n"
    "  echo \"left: $p\"; left=1; fi; done\n"
    // mlplat's directory counts once it holds more than the cluster lock of the run under way.
    "if [ -d {state} ] && [ -n \"$(ls -A {state} | grep -vx locks)\" ]; then echo 'left: '{state}; left=1; fi\n"
    "for n in $({interfaces}); do echo \"left: interface $n\"; left=1; done\n"
    "for t in iptables ip6tables; do command -v $t-save >/dev/null 2>&1 || continue; "
    "c=$($t-save 2>/dev/null | grep -E {marks} | wc -l); [ \"$c\" -eq 0 ] || {{ echo \"left: $c $t lines of the cluster\"; left=1; }}; done\n"
    "if command -v nft >/dev/null 2>&1; then for t in {tables}; do nft list table $t >/dev/null 2>&1 && {{ echo \"left: nftables table $t\"; left=1; }}; done; fi\n"
    "[ -f /etc/fstab ] && grep -qF {mark} /etc/fstab && {{ echo 'left: swap lines commented out in /etc/fstab'; left=1; }}\n"
    "exit $left\n",
    fmt::arg("services", quoted_words(f.services)), fmt::arg("paths", quoted_words(paths)), fmt::arg("state", text::shell_quote(k_host_state_dir)),
    fmt::arg("interfaces", interfaces_present(f)), fmt::arg("marks", marks_pattern(f)), fmt::arg("tables", nft_tables(f)),
    fmt::arg("mark", text::shell_quote(k_fstab_mark)));
}

std::string removal_script(const Footprint& f)
{
  // The services first (the kubelet would restart what goes), then the network, then the files; the
  // cluster lock's directory stays until the lock is released (workflow/remote_lock).
  std::vector<std::string> paths = f.files;
  for (const auto& d : f.directories) {
    if (d != k_host_state_dir) {
      paths.push_back(d);
    }
  }
  return fmt::format(
    "for s in {services}; do systemctl stop \"$s\" 2>/dev/null; systemctl disable \"$s\" 2>/dev/null; done\n"
    "for n in $({interfaces}); do ip link delete \"$n\" || exit 1; done\n"
    "for t in iptables ip6tables; do command -v $t-save >/dev/null 2>&1 || continue\n"
    "  if $t-save 2>/dev/null | grep -qE {marks}; then $t-save | grep -vE {marks} | $t-restore || exit 1; fi\ndone\n"
    "if command -v nft >/dev/null 2>&1; then for t in {tables}; do nft list table $t >/dev/null 2>&1 && nft delete table $t; done; fi\n"
    "if [ -f /etc/fstab ] && grep -qF {mark} /etc/fstab; then sed -i 's@^{mark_sed}@@' /etc/fstab; fi\n"
    "mounted() {{ awk -v d=\"$1\" '$2 == d {{ f = 1 }} END {{ exit !f }}' /proc/mounts; }}\n"
    // Mounts under the kubelet's directory (volumes, the pods' tmpfs) go first, deepest first.
    "for m in $(awk '$2 ~ \"^/var/lib/kubelet/\" {{ print $2 }}' /proc/mounts | sort -r); do umount \"$m\" || umount -l \"$m\"; done\n"
    "for p in {paths}; do\n"
    "  if [ -d \"$p\" ] && mounted \"$p\"; then find \"$p\" -mindepth 1 -maxdepth 1 -exec rm -rf {{}} + || exit 1\n"
    "  else rm -rf \"$p\" || exit 1; fi\ndone\n"
    "if [ -d {state} ]; then find {state} -mindepth 1 -maxdepth 1 ! -name locks -exec rm -rf {{}} + || exit 1; fi\n"
    // mlplat's directory goes once empty (on the first control plane, the cluster lock's release removes it).
    "rmdir {state}/locks 2>/dev/null; rmdir {state} 2>/dev/null\n"
    "systemctl daemon-reload 2>/dev/null || true\n",
    fmt::arg("services", quoted_words(f.services)), fmt::arg("interfaces", interfaces_present(f)), fmt::arg("marks", marks_pattern(f)),
    fmt::arg("tables", nft_tables(f)),
    fmt::arg("mark", text::shell_quote(k_fstab_mark)), fmt::arg("mark_sed", k_fstab_mark), fmt::arg("paths", quoted_words(paths)),
    fmt::arg("state", text::shell_quote(k_host_state_dir)));
}

} // namespace mlplat::phases
