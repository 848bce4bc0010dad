# mlplat host probe. Strictly read-only: it reads files and runs query commands, never anything that
# changes the host (tests/integration/test_audit.cpp audits every program and file access).
# It prints raw sections ("@@ name" then lines) and mlplat interprets them (installer/facts/facts.cpp):
# the shell stays small and cheap (about a dozen processes), the logic stays in tested code.
# mlplat prepends: modules (kernel module names), ports (TCP/UDP ports whose owner to name),
# disk_paths (paths), profile (onprem|gcp|ibm-vpc).
: "${modules:=}" "${ports:=}" "${disk_paths:=}" "${profile:=onprem}"
# A non-root login's PATH lacks the sbin directories where ip, ss and friends live.
PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin
read -r kernel_release < /proc/sys/kernel/osrelease
read -r host_name < /proc/sys/kernel/hostname

echo "@@ files"
grep -H '' /proc/self/status /proc/sys/kernel/hostname /proc/sys/kernel/osrelease /etc/os-release /usr/lib/os-release \
  /etc/machine-id /sys/class/dmi/id/product_uuid /proc/meminfo /proc/swaps /sys/fs/cgroup/cgroup.controllers \
  /proc/sys/net/ipv4/ip_forward /proc/sys/net/bridge/bridge-nf-call-iptables \
  /proc/sys/fs/inotify/max_user_instances /proc/sys/fs/inotify/max_user_watches \
  /sys/devices/system/cpu/online /etc/resolv.conf 2>/dev/null
echo "@@ arch"; uname -m
echo "@@ time"; date -u +%s.%N
echo "@@ state"
echo "systemd $([ -d /run/systemd/system ] && echo yes || echo no)"
set -- /etc/kubernetes/manifests/*; [ -e "$1" ] && echo "leftover.manifests $#" || echo "leftover.manifests 0"
set -- /var/lib/etcd/*; [ -e "$1" ] && echo "leftover.etcd $#" || echo "leftover.etcd 0"
[ -e /etc/kubernetes/kubelet.conf ] && echo "leftover.kubelet_conf yes" || echo "leftover.kubelet_conf no"

# Two calls, not `ip -batch`: commands on the command line are auditable, commands on stdin are not.
echo "@@ ip"; ip -j addr show 2>/dev/null; echo; ip -j route show table main 2>/dev/null
# Listening sockets; the owning processes (ss -p scans every process, which is slow) only when a
# port doctor cares about is taken.
echo "@@ listen"
listening=$(ss -Hltnu 2>/dev/null)
taken=""
for port in $ports; do
  case "$listening" in *":$port "*) taken=yes ;; esac
done
if [ -n "$taken" ]; then ss -Hltnup 2>/dev/null; else printf '%s\n' "$listening"; fi
# The hostname resolves: found in /etc/hosts, else asked of the resolver (which may hang: bounded).
echo "@@ resolves"
in_hosts=""
while read -r address names; do
  for n in $names; do [ "$n" = "$host_name" ] && in_hosts=yes; done
done < /etc/hosts
[ -n "$in_hosts" ] && echo "/etc/hosts" || timeout 5 getent hosts "$host_name" 2>/dev/null

# Kernel modules: loaded (/proc/modules, /sys/module), built in (modules.builtin), else loadable?
echo "@@ modules"
loaded=" "
[ -r /proc/modules ] && while read -r name rest; do loaded="$loaded$name "; done < /proc/modules
builtin=""
if [ -n "$modules" ] && [ -r "/lib/modules/$kernel_release/modules.builtin" ]; then
  pattern=""
  for m in $modules; do pattern="$pattern${pattern:+|}$m"; done
  builtin=$(grep -ohE "/($pattern)\.ko" "/lib/modules/$kernel_release/modules.builtin")
fi
for m in $modules; do
  case "$loaded" in *" $m "*) echo "$m loaded"; continue ;; esac
  [ -d "/sys/module/$m" ] && { echo "$m loaded"; continue; }
  case "$builtin" in *"/$m.ko"*) echo "$m builtin"; continue ;; esac
  if modprobe -n -q "$m" 2>/dev/null; then echo "$m loadable"; else echo "$m missing"; fi
done

echo "@@ binaries"
for b in ip iptables mount nsenter conntrack socat ebtables ethtool tc; do
  printf '%s ' "$b"; command -v "$b" 2>/dev/null || echo missing
done
# Active firewall units: systemd marks every running unit in /run/systemd/units (systemd 243+).
echo "@@ firewall"
for f in firewalld ufw nftables; do
  [ -e "/run/systemd/units/invocation:$f.service" ] && echo "$f active" || echo "$f inactive"
done
echo "@@ installed"
command -v containerd >/dev/null 2>&1 && echo "containerd $(timeout 5 containerd --version 2>/dev/null)"
command -v kubelet >/dev/null 2>&1 && echo "kubelet $(timeout 5 kubelet --version 2>/dev/null)"

# Free space where images, kubelet data and volumes go: each path, then df of its nearest existing
# directory (one df row per path, in the same order).
echo "@@ diskpaths"
dirs=""
for p in $disk_paths; do
  d=$p
  while [ ! -d "$d" ] && [ -n "$d" ]; do d=${d%/*}; done
  echo "$p"
  dirs="$dirs ${d:-/}"
done
echo "@@ df"
[ -n "$dirs" ] && df -Pk $dirs 2>/dev/null

case $profile in
  gcp)
    echo "@@ metadata"
    timeout 5 curl -fsS -m 3 -o /dev/null -H 'Metadata-Flavor: Google' http://169.254.169.254/computeMetadata/v1/instance/id 2>/dev/null && echo yes || echo no ;;
  ibm-vpc)
    echo "@@ metadata"
    timeout 5 curl -fsS -m 3 -o /dev/null -X PUT -H 'Metadata-Flavor: ibm' 'http://api.metadata.cloud.ibm.com/instance_identity/v1/token?version=2022-03-01' 2>/dev/null && echo yes || echo no ;;
esac
echo "@@ end"
