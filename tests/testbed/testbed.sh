#!/usr/bin/env bash
# mlplat testbed: N test hosts on this machine, each a real OpenSSH server in its own network, mount
# and UTS namespaces, on one bridge in one dedicated subnet. Each host has its own hostname, its own
# writable view of /etc, /var, /usr and /opt (overlayfs over the machine's; what the installer writes
# lands in that host alone, under $TB_DIR/hosts/node-N/upper), fresh /root and /home, its own /run
# and /tmp, and shaped /proc and DMI files. Needs root (network namespaces); traffic never leaves the testbed subnet.
#
#   testbed.sh up N            bring up node-1..node-N (idempotent: running hosts are kept)
#   testbed.sh down            stop everything and remove every trace (also after a crash)
#   testbed.sh status          one line per host
#   testbed.sh exec HOST CMD   run CMD as root inside HOST's view (nsenter)
#   testbed.sh knob HOST FILE  replace a shaped file of HOST with stdin: /proc/swaps, /proc/meminfo,
#                              /proc/modules (kernels with modules only), /etc/os-release,
#                              /etc/machine-id, /sys/class/dmi/id/product_uuid,
#                              /sys/devices/system/cpu/online, /sys/fs/cgroup/cgroup.controllers,
#                              /proc/sys/fs/inotify/max_user_instances, .../max_user_watches
#   testbed.sh stock HOST [prepared] [swap] [rocky] [nic2]
#                              how HOST boots from now on (restarts it): as a freshly booted cloud
#                              image by default (forwarding off, the kernel's inotify limits, the CNI's
#                              and Istio's modules loadable but not loaded, Debian 12); `prepared`: as
#                              a host someone already prepared; `swap`: a swap file active, listed in
#                              /etc/fstab; `rocky`: Rocky Linux 9 with RHEL's sudo secure_path;
#                              `nic2`: a second interface eth1 with the address `testbed.sh env`
#                              names (TB_NET.(130+N))
#   testbed.sh kill-sshd HOST  kill every sshd of HOST (listener and sessions): a dropped connection
#   testbed.sh restart HOST    restart HOST (new mount namespace, same files)
#   testbed.sh rekey HOST [--restore]  give HOST a new host key (or its original one) and restart it
#   testbed.sh cgroup HOST v1|v2       give HOST a cgroup v1 or v2 hierarchy (restarts it)
#   testbed.sh audit HOST on|off       record every program and file change of HOST's sessions
#                                      (strace, in $TB_DIR/hosts/HOST/run/mlplat-audit/)
#   testbed.sh wipe HOST       HOST as a fresh boot of its image leaves it: what an install writes
#                              removed, every process of an earlier run stopped (a restart)
#   testbed.sh link HOST RATE|off      a slow link: traffic to HOST limited to RATE (tc's units,
#                                      e.g. 60mbit), or back to the bridge's full speed
#   testbed.sh env             print shell variables describing the testbed
#
# Environment: MLPLAT_TESTBED_DIR (default /tmp/mlplat-testbed), MLPLAT_TESTBED_NET (first three
# octets of the /24, default 10.199.0; hosts get .11 to .120, the bridge .1), MLPLAT_TESTBED_PROGRAMS
# (default build/testbed-programs: the Go programs tests/testbed/build-programs.sh builds; the hosts'
# service manager, and the registry the hosts' container runtime pulls from).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

TB_DIR=${MLPLAT_TESTBED_DIR:-/tmp/mlplat-testbed}
TB_NET=${MLPLAT_TESTBED_NET:-10.199.0}
TB_PROGRAMS=${MLPLAT_TESTBED_PROGRAMS:-$(cd "$here/../.." && pwd)/build/testbed-programs}
# Where a host sees them: bound in at its boot, so that no path of the machine's (a clone under /tmp,
# which each host replaces with its own) needs to be visible inside.
HOST_PROGRAMS=/usr/local/lib/mlplat-testbed
BRIDGE=mlpbr0
# The kernel modules a test host has as loadable modules (the rest it uses are built in): those
# mlplat's prepare loads (manifests/host/modules.conf), with the directory of each under kernel/.
LOADABLE="overlay br_netfilter ip_tables iptable_nat iptable_mangle iptable_raw xt_REDIRECT xt_conntrack xt_owner xt_tcpudp xt_multiport nf_nat"
loadable_dir() {
  case $1 in
    overlay) echo fs/overlayfs ;; br_netfilter) echo net/bridge ;; ip_tables|iptable_*) echo net/ipv4/netfilter ;;
    *) echo net/netfilter ;;
  esac
}
NS_PREFIX=mlp-
MAX_HOSTS=119  # hosts at .11-.129, their second interfaces (nic2) at .131-.249
USER_OK=mlp          # non-root user with NOPASSWD sudo
USER_PW=mlpnopw      # non-root user whose sudo wants a password
KEY_PASSPHRASE=mlplat-test-passphrase

die() { echo "testbed: $*" >&2; exit 1; }
host_index() { [[ $1 =~ ^node-([0-9]+)$ ]] || die "unknown host '$1' (hosts are node-1..node-$MAX_HOSTS)"; echo "${BASH_REMATCH[1]}"; }
host_addr() { echo "$TB_NET.$((10 + $1))"; }
host_dir() { echo "$TB_DIR/hosts/node-$1"; }
ns_of() { echo "${NS_PREFIX}node-$1"; }

sshd_pid() { # pid of the host's listening sshd, or nothing
  local f; f="$(host_dir "$1")/run/sshd-mlplat.pid"
  [[ -s $f ]] && kill -0 "$(cat "$f")" 2>/dev/null && cat "$f"
  return 0
}

require_programs() {
  [[ -x $TB_PROGRAMS/standins/systemctl && -x $TB_PROGRAMS/upstream/kubeadm ]] ||
    die "the testbed's programs are missing in $TB_PROGRAMS: run tests/testbed/build-programs.sh (scripts/test.sh does)"
}

# The hosts' registry: "reference [program]" per line (tests/testbed/go/standins/internal/images).
write_catalogue() {
  local k8s img prog
  k8s=$(sed -n 's/^kubernetes //p' "$TB_PROGRAMS/versions")
  echo "# The testbed's registry: what the hosts' container runtime can pull, and the program a container runs."
  "$TB_PROGRAMS/upstream/kubeadm" config images list --kubernetes-version "$k8s" 2>/dev/null | while read -r img; do
    prog=
    case $img in
      */kube-apiserver:*) prog=kube-apiserver ;;
      */kube-controller-manager:*) prog=kube-controller-manager ;;
      */kube-scheduler:*) prog=kube-scheduler ;;
      */etcd:*) prog=etcd ;;
    esac
    echo "$img${prog:+ $HOST_PROGRAMS/upstream/$prog}"
  done
  echo "*"
}

require_root() { [[ $(id -u) -eq 0 ]] || die "needs root (network namespaces and mounts)"; }

make_keys() {
  mkdir -p "$TB_DIR/keys"; chmod 0700 "$TB_DIR" "$TB_DIR/keys"
  [[ -f $TB_DIR/keys/id_ed25519 ]] || ssh-keygen -q -t ed25519 -N '' -C mlplat-testbed -f "$TB_DIR/keys/id_ed25519"
  [[ -f $TB_DIR/keys/id_wrong ]] || ssh-keygen -q -t ed25519 -N '' -C mlplat-testbed-unauthorized -f "$TB_DIR/keys/id_wrong"
  [[ -f $TB_DIR/keys/id_passphrase ]] ||
    ssh-keygen -q -t ed25519 -N "$KEY_PASSPHRASE" -C mlplat-testbed-passphrase -f "$TB_DIR/keys/id_passphrase"
  echo "$KEY_PASSPHRASE" > "$TB_DIR/keys/passphrase"; chmod 0600 "$TB_DIR/keys/passphrase"
}

network_up() {
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge
    ip addr add "$TB_NET.1/24" dev "$BRIDGE"
  fi
  ip link set "$BRIDGE" up
  # With br_netfilter, bridged frames cross the FORWARD chain: let the testbed talk to itself.
  if command -v iptables >/dev/null 2>&1 && ! iptables -C FORWARD -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT 2>/dev/null; then
    iptables -I FORWARD -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT 2>/dev/null || true
  fi
}

# Files a host starts with: users, sudoers, sshd config and keys, identity, shaped /proc files.
prepare_host() {
  local i=$1 name="node-$1" dir addr
  dir=$(host_dir "$i"); addr=$(host_addr "$i")
  mkdir -p "$dir"/{run/sshd,run/lock,tmp,knobs,home} "$dir"/upper/{etc,var,usr,opt} "$dir"/work/{etc,var,usr,opt}
  # Fresh home directories, as on a new VM: never the operator's own /root or /home.
  if [[ ! -d $dir/roothome ]]; then
    mkdir -m 0700 "$dir/roothome"
    cp -a /etc/skel/. "$dir/roothome/" 2>/dev/null || true
  fi
  chmod 0755 "$dir/run" "$dir/run/sshd"; chmod 1777 "$dir/tmp" "$dir/run/lock"
  local etc=$dir/upper/etc
  mkdir -p "$etc/ssh/authorized_keys" "$etc/sudoers.d"
  if [[ ! -f $etc/ssh/mlplat_host_ed25519_key ]]; then
    ssh-keygen -q -t ed25519 -N '' -C "$name" -f "$etc/ssh/mlplat_host_ed25519_key"
    cp -p "$etc/ssh/mlplat_host_ed25519_key" "$dir/host_key.orig"
    cp -p "$etc/ssh/mlplat_host_ed25519_key.pub" "$dir/host_key.orig.pub"
  fi
  cat > "$etc/ssh/sshd_mlplat.conf" <<EOF
ListenAddress $addr:22
HostKey /etc/ssh/mlplat_host_ed25519_key
PidFile /run/sshd-mlplat.pid
UsePAM no
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
AuthorizedKeysFile /etc/ssh/authorized_keys/%u
MaxStartups 1000:30:2000
MaxSessions 200
LogLevel INFO
PrintMotd no
Subsystem sftp internal-sftp
EOF
  [[ ! -f $dir/knobs/audit ]] || echo "ForceCommand /usr/local/lib/mlplat-audit/session" >> "$etc/ssh/sshd_mlplat.conf"
  local pub pass_pub; pub=$(cat "$TB_DIR/keys/id_ed25519.pub"); pass_pub=$(cat "$TB_DIR/keys/id_passphrase.pub")
  for u in root $USER_OK $USER_PW; do printf '%s\n%s\n' "$pub" "$pass_pub" > "$etc/ssh/authorized_keys/$u"; done
  chmod 0644 "$etc"/ssh/authorized_keys/*
  # Users exist only inside the test hosts: the machine's files plus ours.
  { grep -v -e "^$USER_OK:" -e "^$USER_PW:" /etc/passwd
    echo "$USER_OK:x:2001:2001:mlplat test user:/home/$USER_OK:/bin/bash"
    echo "$USER_PW:x:2002:2002:mlplat test user without NOPASSWD:/home/$USER_PW:/bin/bash"; } > "$etc/passwd"
  { grep -v -e "^$USER_OK:" -e "^$USER_PW:" /etc/group
    echo "$USER_OK:x:2001:"; echo "$USER_PW:x:2002:"; } > "$etc/group"
  { grep -v -e "^$USER_OK:" -e "^$USER_PW:" /etc/shadow
    echo "$USER_OK:*:19000:0:99999:7:::"
    echo "$USER_PW:*:19000:0:99999:7:::"; } > "$etc/shadow" # no NOPASSWD: sudo -n refuses
  chmod 0644 "$etc/passwd" "$etc/group"; chmod 0640 "$etc/shadow"; chgrp shadow "$etc/shadow" 2>/dev/null || true
  echo "$USER_OK ALL=(ALL) NOPASSWD: ALL" > "$etc/sudoers.d/mlplat-testbed"
  echo "$USER_PW ALL=(ALL) ALL" >> "$etc/sudoers.d/mlplat-testbed"
  chmod 0440 "$etc/sudoers.d/mlplat-testbed"
  mkdir -p "$dir/home/$USER_OK" "$dir/home/$USER_PW"
  chown 2001:2001 "$dir/home/$USER_OK"; chown 2002:2002 "$dir/home/$USER_PW"
  # Identity: own hostname (sudo must resolve it without DNS), own machine-id, a Debian 12 os-release.
  echo "$name" > "$etc/hostname"
  printf '127.0.0.1 localhost\n%s %s\n' "$addr" "$name" > "$etc/hosts"
  printf 'nameserver %s.1\noptions timeout:1 attempts:1\n' "$TB_NET" > "$etc/resolv.conf"
  [[ -f $etc/machine-id ]] || (head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n'; echo) > "$etc/machine-id"
  [[ -f $etc/os-release || -f $dir/knobs/rocky ]] || cat > "$etc/os-release" <<'EOF'
PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
EOF
  # Shaped /proc files (bind-mounted over the real ones; `knob` rewrites them in place).
  [[ -f $dir/knobs/swaps ]] || printf 'Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n' > "$dir/knobs/swaps"
  [[ -f $dir/knobs/meminfo ]] || sed -e 's/^MemTotal:.*/MemTotal:       16777216 kB/' -e 's/^SwapTotal:.*/SwapTotal:             0 kB/' \
    -e 's/^SwapFree:.*/SwapFree:              0 kB/' /proc/meminfo > "$dir/knobs/meminfo"
  # DMI identity: a read-only overlay layer over /sys/class adds dmi/id/product_uuid (absent on these
  # machines, present on real VMs); unique per host unless a knob makes two equal.
  mkdir -p "$dir/sysclass/dmi/id"
  [[ -f $dir/sysclass/dmi/id/product_uuid ]] || cat /proc/sys/kernel/random/uuid > "$dir/sysclass/dmi/id/product_uuid"
  # Kernels built without module support have no /proc/modules (this CI kind): nothing to shape then.
  # (Without the modules a test host loads itself: see the modprobe stand-in.)
  [[ -f $dir/knobs/modules || ! -f /proc/modules ]] || grep -v -E "^($(tr ' ' '|' <<< "$LOADABLE")) " /proc/modules > "$dir/knobs/modules" || true
  # A VM as its image boots: 8 CPUs, cgroup v2 with the controllers Kubernetes needs, the kernel's
  # inotify limits (set at each boot, see init.sh), the CNI's and Istio's modules loadable.
  [[ -f $dir/knobs/cpu-online ]] || echo 0-7 > "$dir/knobs/cpu-online"
  [[ -f $dir/knobs/inotify-instances ]] || echo 128 > "$dir/knobs/inotify-instances"
  [[ -f $dir/knobs/inotify-watches ]] || echo 8192 > "$dir/knobs/inotify-watches"
  [[ -f $dir/knobs/cgroup-version ]] || echo 2 > "$dir/knobs/cgroup-version"
  [[ -f $dir/knobs/cgroup.controllers ]] || echo "cpuset cpu io memory hugetlb pids rdma misc" > "$dir/knobs/cgroup.controllers"
  local modules_dir; modules_dir=$dir/upper/usr/lib/modules/$(uname -r)
  if [[ ! -f $modules_dir/modules.builtin ]]; then
    mkdir -p "$modules_dir"
    # The modules the CNI, containerd and Istio need are modules, not built in, as on the supported
    # OSes' kernels: loadable, not loaded at boot (the modprobe stand-in loads them; /sys/module shows
    # what is loaded). The rest of what they use is built in.
    local m
    : > "$modules_dir/modules.dep"
    for m in $LOADABLE; do
      mkdir -p "$modules_dir/kernel/$(loadable_dir "$m")"
      : > "$modules_dir/kernel/$(loadable_dir "$m")/$m.ko"
      echo "kernel/$(loadable_dir "$m")/$m.ko:" >> "$modules_dir/modules.dep"
    done
    printf 'kernel/%s.ko\n' net/bridge/bridge \
      net/ipv4/netfilter/iptable_filter net/netfilter/x_tables \
      net/netfilter/nf_conntrack net/netfilter/xt_connmark \
      net/netfilter/xt_mark net/netfilter/xt_comment net/netfilter/xt_statistic net/netfilter/ipset/ip_set \
      net/ipv6/netfilter/ip6table_nat net/ipv6/netfilter/ip6table_mangle net/ipv6/netfilter/ip6table_raw \
      net/netfilter/ipvs/ip_vs net/sched/sch_htb drivers/net/vxlan > "$modules_dir/modules.builtin"
  fi
  # Stand-ins for what a test host cannot have, where the OS has the real program (so that sudo's
  # search path finds them as it finds the real ones): modprobe, swapon and swapoff
  # (tests/testbed/standins/), and the service manager built from tests/testbed/go/standins
  # (systemctl, and systemd-run as the same program).
  mkdir -p "$dir/upper/usr/sbin" "$dir/upper/usr/bin"
  rm -f "$dir"/upper/usr/local/sbin/{modprobe,systemctl,systemd-run}
  install -m 0755 "$here"/standins/modprobe "$here"/standins/swapon "$dir/upper/usr/sbin/"
  ln -sfn swapon "$dir/upper/usr/sbin/swapoff"
  rm -f "$dir/upper/usr/bin/systemctl" "$dir/upper/usr/bin/systemd-run"
  install -m 0755 "$TB_PROGRAMS/standins/systemctl" "$dir/upper/usr/bin/systemctl"
  ln -sfn systemctl "$dir/upper/usr/bin/systemd-run"
  # How the host boots (testbed.sh stock): its OS and sudo's search path.
  if [[ -f $dir/knobs/rocky ]]; then
    cat > "$etc/os-release" <<'EOF'
NAME="Rocky Linux"
VERSION="9.6 (Blue Onyx)"
ID="rocky"
ID_LIKE="rhel centos fedora"
VERSION_ID="9.6"
PLATFORM_ID="platform:el9"
PRETTY_NAME="Rocky Linux 9.6 (Blue Onyx)"
EOF
    # RHEL's /etc/sudoers: secure_path without /usr/local/sbin and /usr/local/bin.
    { grep -v -e '^Defaults[[:space:]]*secure_path' /etc/sudoers
      echo 'Defaults    secure_path = /sbin:/bin:/usr/sbin:/usr/bin'; } > "$etc/sudoers"
    chmod 0440 "$etc/sudoers"
  fi
  # The registry the hosts' container runtime pulls from: kubeadm's images of the testbed's
  # Kubernetes, those of the control plane with the real program a container of theirs runs, and any
  # other image ("*", as public registries hold them) with none. Where kwok is, for the kubelet.
  mkdir -p "$etc/mlplat-testbed"
  [[ -s $TB_DIR/images ]] || write_catalogue > "$TB_DIR/images"
  cp "$TB_DIR/images" "$etc/mlplat-testbed/images"
  echo "kwok $HOST_PROGRAMS/upstream/kwok" > "$etc/mlplat-testbed/programs"
  # The machine's own enabled services are not the host's (its sshd is the testbed's): the service
  # manager does not start them at boot.
  (cd /etc/systemd/system 2>/dev/null && ls -1 ./*.wants/ 2>/dev/null | grep -v -e '^\./' -e '^$' | sort -u) > "$etc/mlplat-testbed/machine-units" || true
  # systemd's own test for "booted with systemd" (sd_booted): /run/systemd/system exists.
  mkdir -p "$dir/run/systemd/system"
  # The audit stand-in (testbed.sh audit HOST on): every session's command runs under strace.
  mkdir -p "$dir/upper/usr/local/lib/mlplat-audit"
  cat > "$dir/upper/usr/local/lib/mlplat-audit/session" <<'EOS'
#!/bin/sh
# mlplat testbed audit stand-in (sshd ForceCommand): records the command of every session and, with
# strace, every program it executes and every file-changing system call, in /run/mlplat-audit/.
[ -n "$SSH_ORIGINAL_COMMAND" ] || exec /bin/sh -l
mkdir -p /run/mlplat-audit
log=/run/mlplat-audit/$(date +%s%N)-$$
printf '%s\n' "$SSH_ORIGINAL_COMMAND" > "$log.cmd"
# A non-root login: strace runs as root (through the login's own sudo) and runs the command as the
# login user (-u), so that sudo inside it keeps its setuid (a traced setuid program would not).
as=""
if [ "$(id -u)" != 0 ]; then
  as="sudo -n -- env HOME=$HOME USER=$USER LOGNAME=$LOGNAME PATH=$PATH"
  set -- -u "$(id -un)"
fi
exec $as strace "$@" -f -qq -s 512 -o "$log.trace" \
  -e trace=clone,clone3,fork,vfork,execve,open,openat,creat,unlink,unlinkat,rename,renameat,renameat2,mkdir,mkdirat,rmdir,chmod,fchmod,fchmodat,chown,fchown,fchownat,lchown,truncate,ftruncate,link,linkat,symlink,symlinkat,mount,umount2,sethostname,setdomainname,init_module,finit_module,delete_module,swapon,swapoff,reboot \
  /bin/sh -c "$SSH_ORIGINAL_COMMAND"
EOS
  chmod 0755 "$dir/upper/usr/local/lib/mlplat-audit/session"
  cat > "$dir/init.sh" <<EOF
#!/bin/sh
# Runs inside the host's new mount and UTS namespaces (and its network namespace).
set -e
hostname $name
for d in etc var usr opt; do
  mount -t overlay "mlplat-\$d" -o "lowerdir=/\$d,upperdir=$dir/upper/\$d,workdir=$dir/work/\$d" "/\$d"
done
for f in swaps meminfo modules; do
  if [ -f "$dir/knobs/\$f" ] && [ -e "/proc/\$f" ]; then mount --bind "$dir/knobs/\$f" "/proc/\$f"; fi
done
mount --bind "$dir/knobs/cpu-online" /sys/devices/system/cpu/online
mount --bind "$dir/knobs/inotify-instances" /proc/sys/fs/inotify/max_user_instances
mount --bind "$dir/knobs/inotify-watches" /proc/sys/fs/inotify/max_user_watches
if [ "\$(cat $dir/knobs/cgroup-version)" = 2 ]; then
  mount -t cgroup2 mlplat-cgroup2 /sys/fs/cgroup
  mount --bind "$dir/knobs/cgroup.controllers" /sys/fs/cgroup/cgroup.controllers
else
  mount -t tmpfs -o mode=0755 mlplat-cgroup1 /sys/fs/cgroup
  mkdir /sys/fs/cgroup/cpu /sys/fs/cgroup/memory /sys/fs/cgroup/pids
fi
# The kernel's defaults at boot (a prepared host: what an earlier preparation left). Network sysctls
# are per network namespace: setting them here is real and stays in this host; the inotify limits are
# the host's own files.
# (What the boot reads from the host's directory is read now: /tmp, where it may be, is the host's
# own further down.)
prepared=0; [ ! -f "$dir/knobs/prepared" ] || prepared=1
own_sysctl=\$(cd "$dir/upper/etc/sysctl.d" 2>/dev/null && for f in *.conf; do [ ! -f "\$f" ] || echo "\$f"; done || true)
if [ \$prepared = 1 ]; then
  sysctl -q -w net.ipv4.ip_forward=1; echo 2280 > "$dir/knobs/inotify-instances"; echo 1255360 > "$dir/knobs/inotify-watches"
else
  sysctl -q -w net.ipv4.ip_forward=0; echo 128 > "$dir/knobs/inotify-instances"; echo 8192 > "$dir/knobs/inotify-watches"
fi
# Kernel modules: none loaded at boot. /sys/module gets a layer of this boot's own, where the modprobe
# stand-in marks what it loads (the loadable ones the machine's own kernel shows are hidden by
# whiteouts); /proc/sys/net/bridge does not exist until br_netfilter is loaded (the modprobe stand-in
# then removes what hides it), as on a real kernel.
rm -rf "$dir/sysmodule" && mkdir -p "$dir/sysmodule/upper" "$dir/sysmodule/work"
for m in $LOADABLE; do mknod "$dir/sysmodule/upper/\$m" c 0 0; done
mount -t overlay mlplat-sysmodule -o "lowerdir=/sys/module,upperdir=$dir/sysmodule/upper,workdir=$dir/sysmodule/work" /sys/module
mount -t tmpfs -o mode=0555,size=4k mlplat-no-br-netfilter /proc/sys/net/bridge
# Disks: the paths an installer fills get room of their own (tmpfs sizes are limits, not allocations),
# kept across the host's restarts as a disk is across reboots (start_host mounts them outside).
for d in var/lib/containerd var/lib/kubelet var/openebs; do
  mkdir -p "/\$d"
  mount --bind "$dir/disks/\$(echo \$d | tr / -)" "/\$d"
done
# The testbed's programs (the registry's images, kwok), read-only, before /tmp is the host's own.
for k in upstream standins; do
  mkdir -p "$HOST_PROGRAMS/\$k"
  mount --bind -o ro "\$(readlink -f "$TB_PROGRAMS/\$k")" "$HOST_PROGRAMS/\$k"
done
# The pod images whose containers the kubelet stand-in runs itself (go/standins/pod-images), as built.
awk -v dir="$HOST_PROGRAMS/standins/" '{ print \$1, \$2, (\$3 == "-" ? "-" : dir \$3) }' \
  "$HOST_PROGRAMS/standins/images/index" > /etc/mlplat-testbed/pod-images
mount -t overlay mlplat-sysclass -o "lowerdir=$dir/sysclass:/sys/class" /sys/class
mount --bind "$dir/roothome" /root
mount --bind "$dir/home" /home
mount --bind "$dir/run" /run
mount --bind "$dir/tmp" /tmp
mkdir -p -m 1777 /run/mlplat-audit # the audit stand-in's records, written by any login
# Boot, in systemd's order: the modules of /etc/modules-load.d (systemd-modules-load; a prepared
# host's too), the host's sysctl drop-ins (systemd-sysctl; the machine's own are not the host's), the
# swap of /etc/fstab (systemd-fstab-generator's swap units), then the service manager stand-in starts
# what is enabled.
for m in \$(cat /etc/modules-load.d/*.conf 2>/dev/null | sed -e 's/#.*//'); do /usr/sbin/modprobe "\$m" || true; done
[ \$prepared = 0 ] || /usr/sbin/modprobe -a $LOADABLE
for f in \$own_sysctl; do sysctl -q -p "/etc/sysctl.d/\$f" || true; done
/usr/sbin/swapon -a || true
rm -f /run/mlplat-standins/systemd.sock
/usr/bin/systemctl __manager >/dev/null 2>&1 </dev/null &
exec /usr/sbin/sshd -D -f /etc/ssh/sshd_mlplat.conf -E /run/sshd.log
EOF
  chmod 0755 "$dir/init.sh"
}

start_host() {
  local i=$1 ns; ns=$(ns_of "$i")
  if ! ip netns list | grep -qw "$ns"; then
    ip netns add "$ns"
    ip link add "mlpv$i" type veth peer name eth0 netns "$ns"
    ip link set "mlpv$i" master "$BRIDGE" up
    ip netns exec "$ns" ip addr add "$(host_addr "$i")/24" dev eth0
    ip netns exec "$ns" ip link set eth0 up
    ip netns exec "$ns" ip link set lo up
  fi
  nic2 "$i"
  rm -f "$(host_dir "$i")/run/sshd-mlplat.pid"
  local d disk
  for d in var-lib-containerd var-lib-kubelet var-openebs; do
    disk=$(host_dir "$i")/disks/$d
    mkdir -p "$disk"
    mountpoint -q "$disk" || mount -t tmpfs -o size=200g,mode=0755 mlplat-disk "$disk"
  done
  setsid ip netns exec "$ns" unshare --mount --uts --propagation private --fork "$(host_dir "$i")/init.sh" \
    > "$(host_dir "$i")/init.log" 2>&1 < /dev/null &
}

wait_hosts() { # wait until every listed host's sshd accepts connections (bounded: 20 s)
  local deadline=$((SECONDS + 20)) i
  for i in "$@"; do
    until [[ -n $(sshd_pid "$i") ]] && ip netns exec "$(ns_of "$i")" bash -c "exec 3<>/dev/tcp/$(host_addr "$i")/22" 2>/dev/null; do
      ((SECONDS < deadline)) || die "node-$i: sshd did not start within 20 s: $(tail -n 3 "$(host_dir "$i")/init.log" "$(host_dir "$i")/run/sshd.log" 2>/dev/null)"
      sleep 0.05
    done
  done
}

write_known_hosts_and_config() {
  local n=$1 i
  : > "$TB_DIR/known_hosts.tmp"
  for ((i = 1; i <= n; i++)); do
    echo "$(host_addr "$i") $(cut -d' ' -f1,2 "$(host_dir "$i")/host_key.orig.pub")" >> "$TB_DIR/known_hosts.tmp"
  done
  mv "$TB_DIR/known_hosts.tmp" "$TB_DIR/known_hosts"
  { cat <<EOF
# Generated by tests/testbed/testbed.sh: the testbed as an mlplat cluster file.
apiVersion: mlplat.dev/v1alpha1
kind: Cluster
metadata:
  name: testbed
spec:
  profile: onprem
  ssh:
    user: $USER_OK
    keyPath: $TB_DIR/keys/id_ed25519
    knownHosts: $TB_DIR/known_hosts
    hostKeyPolicy: strict
  hosts:
EOF
    for ((i = 1; i <= n; i++)); do
      printf '    - name: node-%d\n      address: %s\n      role: %s\n' "$i" "$(host_addr "$i")" \
        "$([[ $i -eq 1 ]] && echo control-plane || echo worker)"
    done; } > "$TB_DIR/mlplat.yaml"
  echo "$n" > "$TB_DIR/size"
}

cmd_up() {
  local n=${1:-3} i started=()
  [[ $n =~ ^[0-9]+$ ]] && ((n >= 1 && n <= MAX_HOSTS)) || die "up: N must be 1..$MAX_HOSTS"
  require_root
  require_programs
  command -v sshd >/dev/null || [[ -x /usr/sbin/sshd ]] || die "sshd is missing (apt-get install openssh-server)"
  mkdir -p "$TB_DIR/hosts"
  make_keys
  network_up
  for ((i = 1; i <= n; i++)); do
    if [[ -z $(sshd_pid "$i") ]]; then
      # A half-started host from a crashed run: clear its processes, keep its files.
      stop_host_processes "$i"
      prepare_host "$i"
      start_host "$i"
      started+=("$i")
    fi
  done
  wait_hosts "${started[@]}"
  local size=$n
  [[ -f $TB_DIR/size ]] && (( $(cat "$TB_DIR/size") > size )) && size=$(cat "$TB_DIR/size")
  write_known_hosts_and_config "$size"
  echo "testbed: $size hosts up (${#started[@]} started now) in $TB_NET.0/24; cluster file $TB_DIR/mlplat.yaml"
}

stop_host_processes() {
  local ns; ns=$(ns_of "$1")
  ip netns list | grep -qw "$ns" || return 0
  local pids; pids=$(ip netns pids "$ns" 2>/dev/null || true)
  [[ -n $pids ]] && kill -9 $pids 2>/dev/null || true
  # A killed task leaves the namespace's pid list before its listening socket is gone: wait for both
  # (bounded), so a restart can bind port 22 again.
  local deadline=$((SECONDS + 10))
  while [[ -n $(ip netns pids "$ns" 2>/dev/null) || -n $(ip netns exec "$ns" ss -Hltn 'sport = :22' 2>/dev/null) ]]; do
    ((SECONDS < deadline)) || die "node-$1: processes or port 22 still busy 10 s after kill"
    sleep 0.05
  done
}

cmd_down() {
  require_root
  local ns
  # Killed until none is left (bounded): a service a host's supervisor was starting when the list was
  # taken would otherwise outlive its namespace's name and keep the namespace (and its veth) alive.
  local round left
  for ((round = 0; round < 50; round++)); do
    left=0
    for ns in $(ip netns list | awk '{print $1}' | grep "^${NS_PREFIX}node-" || true); do
      local pids; pids=$(ip netns pids "$ns" 2>/dev/null || true)
      [[ -n $pids ]] && { left=1; kill -9 $pids 2>/dev/null || true; }
    done
    ((left)) || break
    sleep 0.1
  done
  for ns in $(ip netns list | awk '{print $1}' | grep "^${NS_PREFIX}node-" || true); do
    ip netns del "$ns" 2>/dev/null || true
  done
  pkill -9 -f "$TB_DIR/hosts/node-[0-9]*/init.sh" 2>/dev/null || true
  iptables -D FORWARD -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT 2>/dev/null || true
  ip link del "$BRIDGE" 2>/dev/null || true
  for m in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//' | grep '^mlpw[0-9]*$' || true); do ip link del "$m" 2>/dev/null || true; done
  local m
  for m in $(awk -v d="$TB_DIR/hosts/" 'index($2, d) == 1 {print $2}' /proc/self/mounts | sort -r); do umount -l "$m" 2>/dev/null || true; done
  rm -rf "$TB_DIR"
  echo "testbed: down"
}

cmd_status() {
  local n=0 i
  [[ -f $TB_DIR/size ]] && n=$(cat "$TB_DIR/size")
  for ((i = 1; i <= n; i++)); do
    local pid; pid=$(sshd_pid "$i")
    printf 'node-%-3d %-15s %s\n' "$i" "$(host_addr "$i")" "$([[ -n $pid ]] && echo "up (sshd $pid)" || echo down)"
  done
}

cmd_exec() {
  local i; i=$(host_index "$1"); shift
  local pid; pid=$(sshd_pid "$i")
  [[ -n $pid ]] || die "node-$i is not running"
  # The machine's TMPDIR (scripts/test.sh points it at a directory of the run) does not exist in the
  # host, which has its own /tmp.
  nsenter -t "$pid" -m -u -n -- env -u TMPDIR "$@"
}

cmd_knob() {
  local i; i=$(host_index "$1")
  case $2 in
    /proc/swaps|/proc/meminfo|/proc/modules) cat > "$(host_dir "$i")/knobs/${2#/proc/}" ;; # in place: the bind mount follows
    /sys/devices/system/cpu/online) cat > "$(host_dir "$i")/knobs/cpu-online" ;;
    /proc/sys/fs/inotify/max_user_instances) cat > "$(host_dir "$i")/knobs/inotify-instances" ;;
    /proc/sys/fs/inotify/max_user_watches) cat > "$(host_dir "$i")/knobs/inotify-watches" ;;
    /sys/fs/cgroup/cgroup.controllers) cat > "$(host_dir "$i")/knobs/cgroup.controllers" ;;
    /sys/class/dmi/id/product_uuid) cat > "$(host_dir "$i")/sysclass/dmi/id/product_uuid" ;;
    /etc/os-release|/etc/machine-id) cmd_exec "$1" sh -c "cat > $2" ;;
    *) die "knob: no knob for '$2'" ;;
  esac
}

cmd_kill_sshd() {
  local i; i=$(host_index "$1")
  local ns pids; ns=$(ns_of "$i")
  pids=$(for p in $(ip netns pids "$ns"); do if [[ $(cat "/proc/$p/comm" 2>/dev/null) == sshd ]]; then echo "$p"; fi; done)
  [[ -n $pids ]] && kill -9 $pids 2>/dev/null || true
}

cmd_restart() {
  local i; i=$(host_index "$1")
  require_root
  stop_host_processes "$i"
  start_host "$i"
  wait_hosts "$i"
}

cmd_rekey() {
  local i dir; i=$(host_index "$1"); dir=$(host_dir "$i")
  local key=$dir/upper/etc/ssh/mlplat_host_ed25519_key
  stop_host_processes "$i"
  if [[ ${2:-} == --restore ]]; then
    cp -p "$dir/host_key.orig" "$key"; cp -p "$dir/host_key.orig.pub" "$key.pub"
  else
    rm -f "$key" "$key.pub"; ssh-keygen -q -t ed25519 -N '' -C "node-$i-replaced" -f "$key"
  fi
  start_host "$i"
  wait_hosts "$i"
}

cmd_cgroup() { # cgroup HOST v1|v2: the host's cgroup hierarchy (restarts it)
  local i; i=$(host_index "$1")
  case $2 in v1) echo 1 ;; v2) echo 2 ;; *) die "cgroup: v1 or v2" ;; esac > "$(host_dir "$i")/knobs/cgroup-version"
  cmd_restart "$1"
}

cmd_audit() { # audit HOST on|off: run every session under the strace audit stand-in (restarts it)
  local i dir; i=$(host_index "$1"); dir=$(host_dir "$i")
  case $2 in on) touch "$dir/knobs/audit" ;; off) rm -f "$dir/knobs/audit" ;; *) die "audit: on or off" ;; esac
  prepare_host "$i"
  cmd_restart "$1"
}

# What an install writes on a host (the cluster layer's files, units, binaries and state), which a wipe
# removes; the rest of the host is its image's.
INSTALLED="/etc/kubernetes /var/lib/kubelet/* /var/lib/etcd /etc/cni /var/log/pods /etc/sysctl.d/90-mlplat.conf
  /etc/modules-load.d/mlplat.conf /var/log/mlplat-standins /var/lib/mlplat /usr/local/bin/containerd* /usr/local/bin/kube*
  /usr/local/bin/crictl /usr/local/bin/ctr /usr/local/sbin/runc /opt/cni /etc/containerd /etc/crictl.yaml /usr/local/lib/systemd
  /etc/systemd/system/multi-user.target.wants/containerd.service /etc/systemd/system/multi-user.target.wants/kubelet.service
  /var/lib/containerd/* /var/openebs/local"

# The second interface of a host with the nic2 knob (eth1, TB_NET.(130+N), on the same bridge), or none.
nic2() {
  local i=$1 ns; ns=$(ns_of "$i")
  if [[ -f $(host_dir "$i")/knobs/nic2 ]]; then
    if ! ip netns exec "$ns" ip link show eth1 >/dev/null 2>&1; then
      ip link add "mlpw$i" type veth peer name eth1 netns "$ns"
      ip link set "mlpw$i" master "$BRIDGE" up
      ip netns exec "$ns" ip addr add "$TB_NET.$((130 + i))/24" dev eth1
      ip netns exec "$ns" ip link set eth1 up
    fi
  else
    ip link del "mlpw$i" 2>/dev/null || true
  fi
}

# What the host's image has on its disk besides the OS: with the swap knob, a swap file listed in
# /etc/fstab (its line as the image has it, whatever an installer did to it since).
SWAPFILE=/var/swapfile
image_files() {
  local i=$1 fstab; fstab=$(host_dir "$i")/upper/etc/fstab
  local src=$fstab; [[ -f $src ]] || src=/etc/fstab # the machine's until the host has its own
  local rest; rest=$( { [[ -f $src ]] && grep -v -F "$SWAPFILE" "$src"; } || true)
  if [[ -f $(host_dir "$i")/knobs/swap ]]; then
    mkdir -p "$(host_dir "$i")/upper/var"
    [[ -f $(host_dir "$i")/upper$SWAPFILE ]] || { truncate -s 64M "$(host_dir "$i")/upper$SWAPFILE"; chmod 0600 "$(host_dir "$i")/upper$SWAPFILE"; }
    printf '%s%s none swap sw 0 0\n' "${rest:+$rest$'\n'}" "$SWAPFILE" > "$fstab"
  else
    rm -f "$(host_dir "$i")/upper$SWAPFILE"
    if [[ -f $fstab ]]; then printf '%s%s' "$rest" "${rest:+$'\n'}" > "$fstab"; fi
  fi
  rm -f "$fstab.mlplat-backup"
}

cmd_stock() { # stock HOST [prepared] [swap] [rocky] [nic2]: how HOST boots from now on (restarts it)
  local i dir k; i=$(host_index "$1"); dir=$(host_dir "$i"); shift
  require_root
  for k in prepared swap rocky nic2; do rm -f "$dir/knobs/$k"; done
  for k in "$@"; do
    case $k in prepared|swap|rocky|nic2) touch "$dir/knobs/$k" ;; *) die "stock: unknown shape '$k' (prepared, swap, rocky, nic2)" ;; esac
  done
  rm -f "$dir/upper/etc/os-release" "$dir/upper/etc/sudoers"
  stop_host_processes "$i"
  prepare_host "$i"
  image_files "$i"
  start_host "$i"
  wait_hosts "$i"
}

cmd_wipe() { # wipe HOST: as a fresh boot leaves it
  require_root
  cmd_link "$1" off
  image_files "$(host_index "$1")"
  # Cleared before the restart, so that the boot starts no service of the earlier run, and after it,
  # for what that run's processes wrote until the restart stopped them (static pods outlive a kubelet,
  # as containers do).
  local paths; paths=$(tr '\n' ' ' <<< "$INSTALLED") # one line; the globs are the host's, expanded by its shell
  cmd_exec "$1" sh -c "rm -rf $paths"
  cmd_restart "$1"
  cmd_exec "$1" sh -c "rm -rf $paths"
}

cmd_link() { # link HOST RATE|off: traffic to HOST shaped by a token bucket on its bridge port
  local i; i=$(host_index "$1")
  require_root
  if [[ $2 == off ]]; then
    tc qdisc del dev "mlpv$i" root 2>/dev/null || true
  else
    tc qdisc replace dev "mlpv$i" root tbf rate "$2" burst 64kb latency 100ms
  fi
}

cmd_env() {
  echo "TB_DIR=$TB_DIR"
  echo "TB_NET=$TB_NET"
  echo "TB_KEY=$TB_DIR/keys/id_ed25519"
  echo "TB_KNOWN_HOSTS=$TB_DIR/known_hosts"
  echo "TB_CONFIG=$TB_DIR/mlplat.yaml"
  echo "TB_SIZE=$(cat "$TB_DIR/size" 2>/dev/null || echo 0)"
}

case ${1:-} in
  up) cmd_up "${2:-3}" ;;
  down) cmd_down ;;
  status) cmd_status ;;
  exec) [[ $# -ge 3 ]] || die "usage: exec HOST CMD..."; shift; cmd_exec "$@" ;;
  knob) [[ $# -eq 3 ]] || die "usage: knob HOST FILE < content"; cmd_knob "$2" "$3" ;;
  kill-sshd) cmd_kill_sshd "$2" ;;
  restart) cmd_restart "$2" ;;
  rekey) cmd_rekey "$2" "${3:-}" ;;
  cgroup) [[ $# -eq 3 ]] || die "usage: cgroup HOST v1|v2"; cmd_cgroup "$2" "$3" ;;
  audit) [[ $# -eq 3 ]] || die "usage: audit HOST on|off"; cmd_audit "$2" "$3" ;;
  wipe) [[ $# -eq 2 ]] || die "usage: wipe HOST"; cmd_wipe "$2" ;;
  stock) [[ $# -ge 2 ]] || die "usage: stock HOST [prepared] [swap] [rocky] [nic2]"; shift; cmd_stock "$@" ;;
  link) [[ $# -eq 3 ]] || die "usage: link HOST RATE|off"; cmd_link "$2" "$3" ;;
  env) cmd_env ;;
  *) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
