# mlplat host probe. Strictly read-only: it reads files and runs query commands, never anything that
# changes the host (tests/integration/test_audit.cpp audits every program and file access).
# It prints raw sections ("@@ name" then lines) and mlplat interprets them (installer/facts/facts.cpp):
# the shell stays small and cheap (shell builtins read /proc and /sys; about four programs run on a
# healthy host), the logic stays in tested code.
# mlplat prepends: modules (kernel module names), port_hex (ports whose owner to name, as /proc/net
# writes them),
# disk_paths (paths), profile (onprem|gcp|ibm-vpc).
: "${modules:=}" "${port_hex:=}" "${disk_paths:=}" "${profile:=onprem}"
# A non-root login's PATH lacks the sbin directories where ss, modprobe and friends live.
PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin
read -r kernel_release < /proc/sys/kernel/osrelease
read -r host_name < /proc/sys/kernel/hostname

# Every file read at once, with block reads (the shell's own `read` takes a byte per system call).
files=$(grep -H '' /proc/self/status /proc/sys/kernel/hostname /proc/sys/kernel/osrelease /proc/sys/kernel/arch \
  /etc/os-release /usr/lib/os-release /etc/machine-id /sys/class/dmi/id/product_uuid /proc/meminfo /proc/swaps \
  /sys/fs/cgroup/cgroup.controllers /proc/sys/net/ipv4/ip_forward /proc/sys/net/bridge/bridge-nf-call-iptables \
  /proc/sys/fs/inotify/max_user_instances /proc/sys/fs/inotify/max_user_watches /sys/devices/system/cpu/online \
  /etc/resolv.conf /proc/net/route /proc/net/fib_trie /proc/net/if_inet6 \
  /proc/net/tcp /proc/net/tcp6 /proc/net/udp /proc/net/udp6 2>/dev/null)
echo "@@ files"
printf '%s\n' "$files"
[ -r /proc/sys/kernel/arch ] || { echo "@@ arch"; uname -m; }
echo "@@ time"; date -u +%s.%N
echo "@@ state"
echo "systemd $([ -d /run/systemd/system ] && echo yes || echo no)"
set -- /etc/kubernetes/manifests/*; [ -e "$1" ] && echo "leftover.manifests $#" || echo "leftover.manifests 0"
set -- /var/lib/etcd/*; [ -e "$1" ] && echo "leftover.etcd $#" || echo "leftover.etcd 0"
[ -e /etc/kubernetes/kubelet.conf ] && echo "leftover.kubelet_conf yes" || echo "leftover.kubelet_conf no"

# Network links: name, type (1 = Ethernet), MTU, MAC.
echo "@@ links"
for d in /sys/class/net/*; do
  [ -r "$d/type" ] || continue
  read -r type < "$d/type"; read -r mtu < "$d/mtu"; read -r mac < "$d/address"
  echo "${d##*/} $type $mtu $mac"
done

# Listening sockets are in /proc/net (above); the owning processes (ss -p scans every process, which
# is slow) only when a port doctor cares about appears there. port_hex: those ports as /proc/net
# writes them (":192B " for 6443).
echo "@@ listen"
taken=""
for p in $port_hex; do
  case "$files" in *"$p"*) taken=yes ;; esac
done
[ -n "$taken" ] && ss -Hltnup 2>/dev/null

# The hostname resolves: found in /etc/hosts, else asked of the resolver (which may hang: bounded).
echo "@@ resolves"
in_hosts=""
while read -r address names; do
  for n in $names; do [ "$n" = "$host_name" ] && in_hosts=yes; done
done < /etc/hosts
[ -n "$in_hosts" ] && echo "/etc/hosts" || timeout 5 getent hosts "$host_name" 2>/dev/null

# Kernel modules: loaded (/proc/modules, /sys/module), built in (modules.builtin), else loadable?
echo "@@ modules"
# One grep answers "loaded" (/proc/modules: "name ...") and "built in" (modules.builtin: ".../name.ko").
found=""
if [ -n "$modules" ]; then
  pattern=""
  for m in $modules; do pattern="$pattern${pattern:+|}$m"; done
  found=$(grep -ohE "^($pattern) |/($pattern)\.ko" /proc/modules "/lib/modules/$kernel_release/modules.builtin" 2>/dev/null)
fi
for m in $modules; do
  case " $found " in *" $m "*) echo "$m loaded"; continue ;; esac
  [ -d "/sys/module/$m" ] && { echo "$m loaded"; continue; }
  case "$found" in *"/$m.ko"*) echo "$m builtin"; continue ;; esac
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
# One path per line (split on newlines alone, no globbing), each quoted wherever it is used; the
# nearest existing directory of each is what df reports on (a path without a slash ends the walk).
set --
saved_ifs=$IFS
IFS='
'
set -f
for p in $disk_paths; do
  d=$p
  while [ ! -d "$d" ] && [ -n "$d" ]; do
    case $d in */*) d=${d%/*} ;; *) d= ;; esac
  done
  printf '%s\n' "$p"
  set -- "$@" "${d:-/}"
done
set +f
IFS=$saved_ifs
echo "@@ df"
[ $# -gt 0 ] && df -Pk -- "$@" 2>/dev/null

case $profile in
  gcp)
    echo "@@ metadata"
    timeout 5 curl -fsS -m 3 -o /dev/null -H 'Metadata-Flavor: Google' http://169.254.169.254/computeMetadata/v1/instance/id 2>/dev/null && echo yes || echo no ;;
  ibm-vpc)
    echo "@@ metadata"
    timeout 5 curl -fsS -m 3 -o /dev/null -X PUT -H 'Metadata-Flavor: ibm' 'http://api.metadata.cloud.ibm.com/instance_identity/v1/token?version=2022-03-01' 2>/dev/null && echo yes || echo no ;;
esac
echo "@@ end"
