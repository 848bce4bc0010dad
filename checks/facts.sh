# mlplat host facts probe. Strictly read-only: it reads files and runs query commands, never anything
# that changes the host (tests/integration/test_doctor.cpp audits every program and file access).
# Prints "key=value" lines; a key may repeat (one line per item); values never contain newlines.
# mlplat prepends these variables: modules (names), disk_paths (paths), profile (onprem|gcp|ibm-vpc).
# Commands that could hang (DNS, network, sudo) run under `timeout`.
: "${modules:=}" "${disk_paths:=}" "${profile:=onprem}"
# A non-root login's PATH lacks the sbin directories where ip, iptables and friends live.
PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin
os_release=/etc/os-release
[ -r "$os_release" ] || os_release=/usr/lib/os-release
field() { sed -n "s/^$1=//p" "$os_release" 2>/dev/null | head -n 1 | tr -d '"'; }
kv() { printf '%s=%s\n' "$1" "$2"; }

# Identity and OS
kv hostname "$(cat /proc/sys/kernel/hostname)"
kv os.id "$(field ID)"
kv os.version "$(field VERSION_ID)"
kv os.pretty "$(field PRETTY_NAME)"
kv kernel "$(uname -r)"
kv arch "$(uname -m)"
kv machine_id "$(cat /etc/machine-id 2>/dev/null)"
kv product_uuid "$(cat /sys/class/dmi/id/product_uuid 2>/dev/null)"
kv privileged "$([ "$(id -u)" = 0 ] && echo yes || echo no)"
kv systemd "$([ -d /run/systemd/system ] && echo yes || echo no)"
kv time.epoch "$(date -u +%s.%N)"

# CPU, memory, swap
kv cpus "$(getconf _NPROCESSORS_ONLN 2>/dev/null || grep -c ^processor /proc/cpuinfo)"
kv memory.kib "$(sed -n 's/^MemTotal: *\([0-9]*\) kB/\1/p' /proc/meminfo)"
kv swap.kib "$(sed -n 's/^SwapTotal: *\([0-9]*\) kB/\1/p' /proc/meminfo)"
awk 'NR > 1 && NF { print "swap.device=" $1 " " $3 }' /proc/swaps 2>/dev/null

# cgroups
kv cgroup.fs "$(stat -fc %T /sys/fs/cgroup 2>/dev/null)"
kv cgroup.controllers "$(cat /sys/fs/cgroup/cgroup.controllers 2>/dev/null)"

# Kernel settings and modules (loaded, built in, or loadable)
for s in net.ipv4.ip_forward net.bridge.bridge-nf-call-iptables fs.inotify.max_user_instances fs.inotify.max_user_watches; do
  kv "sysctl.$s" "$(cat "/proc/sys/$(echo "$s" | tr . /)" 2>/dev/null)"
done
builtin=/lib/modules/$(uname -r)/modules.builtin
for m in $modules; do
  if grep -qw "^$m" /proc/modules 2>/dev/null || [ -d "/sys/module/$m" ]; then state=loaded
  elif grep -q "/$m.ko" "$builtin" 2>/dev/null; then state=builtin
  elif timeout 5 modprobe -n -q "$m" 2>/dev/null; then state=loadable
  else state=missing
  fi
  kv "module.$m" "$state"
done

# Network: addresses, routes, links, listening sockets, DNS
ip -o addr show 2>/dev/null | awk '{ print "addr=" $2 " " $4 }'
ip -o route show table main 2>/dev/null | awk '{ print "route=" $1 }'
ip -o link show 2>/dev/null | awk '{ for (i = 1; i < NF; i++) if ($i == "mtu") mtu = $(i + 1); for (i = 1; i < NF; i++) if ($i == "link/ether") print "link=" $2 " " mtu " " $(i + 1) }' | sed 's/@[^:]*:/:/; s/: / /'
ss -Hltnup 2>/dev/null | awk '{ proc = ""; for (i = 7; i <= NF; i++) proc = proc $i; print "listen=" $1 " " $5 " " proc }'
kv dns.nameservers "$(grep -c '^nameserver' /etc/resolv.conf 2>/dev/null)"
kv dns.self "$(timeout 5 getent hosts "$(cat /proc/sys/kernel/hostname)" >/dev/null 2>&1 && echo yes || echo no)"

# Tools the kubelet and kubeadm need
for b in ip iptables mount nsenter conntrack socat ebtables ethtool tc; do
  kv "binary.$b" "$(command -v "$b" 2>/dev/null || echo missing)"
done
for f in firewalld ufw nftables; do
  if [ -d /run/systemd/system ]; then kv "firewall.$f" "$(timeout 5 systemctl is-active "$f" 2>/dev/null)"; fi
done

# What is already there: cluster state, container runtime, kubelet
kv leftover.manifests "$(ls -A /etc/kubernetes/manifests 2>/dev/null | wc -l)"
kv leftover.etcd "$(ls -A /var/lib/etcd 2>/dev/null | wc -l)"
kv leftover.kubelet_conf "$([ -e /etc/kubernetes/kubelet.conf ] && echo yes || echo no)"
kv installed.containerd "$(timeout 5 containerd --version 2>/dev/null | awk '{ print $3 }')"
kv installed.kubelet "$(timeout 5 kubelet --version 2>/dev/null | awk '{ print $2 }')"

# Disks: free space where images, kubelet data and volumes go (the nearest existing directory)
for p in $disk_paths; do
  d=$p
  while [ ! -d "$d" ] && [ "$d" != / ]; do d=$(dirname "$d"); done
  printf 'disk=%s %s\n' "$p" "$(df -Pk "$d" 2>/dev/null | awk 'NR == 2 { print $4 " " $6 }')"
done

# Clouds
case $profile in
  gcp) kv metadata "$(timeout 5 curl -fsS -m 3 -H 'Metadata-Flavor: Google' http://169.254.169.254/computeMetadata/v1/instance/id >/dev/null 2>&1 && echo yes || echo no)" ;;
  ibm-vpc) kv metadata "$(timeout 5 curl -fsS -m 3 -o /dev/null -X PUT -H 'Metadata-Flavor: ibm' 'http://api.metadata.cloud.ibm.com/instance_identity/v1/token?version=2022-03-01' >/dev/null 2>&1 && echo yes || echo no)" ;;
esac
