#!/usr/bin/env bash
# Benchmark: `mlplat doctor` on 1, 10 and 50 testbed hosts and, in the same run, the same checks done by
# Ansible ad-hoc (Debian's ansible; `-m script` with the very probe mlplat runs, forks = hosts, a fresh
# SSH control socket directory per run). Prints medians of REPEATS runs (default 3) and the ratios.
# Targets: 50 hosts within 2x the 1-host time; at least 10x faster than Ansible at 50 hosts.
# Needs root (the testbed); installs ansible if it is missing (not needed by the tests).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
repeats=${1:-3}
[[ $(id -u) -eq 0 ]] || exec sudo --preserve-env=PATH "$0" "$@"
"$top/scripts/install-deps.sh" >/dev/null
command -v ansible >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ansible >/dev/null
"$top/scripts/build.sh" --target mlplat -DMLPLAT_BUILD_TESTS=ON >/dev/null
"$top/scripts/build.sh" --target mlplat_bench_fanout -DMLPLAT_BUILD_TESTS=ON >/dev/null
mlplat=$top/build/installer/mlplat
fanout=$top/build/tests/mlplat_bench_fanout
testbed=$top/tests/testbed/testbed.sh
[[ -d ${MLPLAT_TESTBED_DIR:-/tmp/mlplat-testbed}/hosts ]] || trap '"$testbed" down >/dev/null' EXIT
"$testbed" up 50 >/dev/null
eval "$("$testbed" env)"
work=$(mktemp -d)
trap 'rm -rf "$work"; [[ -n ${keep_testbed:-} ]] || true' RETURN

now_ms() { echo $(($(date +%s%N) / 1000000)); }
median() { sort -n | awk '{a[NR]=$1} END {m=(NR+1)/2; if (NR%2) print a[m]; else print (a[NR/2]+a[NR/2+1])/2}'; }

# The probe exactly as mlplat sends it (the same inputs as doctor's catalogue asks for).
{
  echo "modules='br_netfilter overlay ip_tables iptable_nat iptable_mangle iptable_raw xt_REDIRECT xt_conntrack xt_owner xt_tcpudp xt_multiport nf_nat'"
  echo "ports='6443 2379 2380 10250 10257 10259 10256'"
  echo "disk_paths='/var/lib/containerd /var/lib/kubelet /var/openebs/local'"
  echo "profile=onprem"
  cat "$top/checks/facts.sh"
} > "$work/probe.sh"

cluster() { # cluster N -> file
  local n=$1 f=$work/cluster-$1.yaml
  { printf 'apiVersion: mlplat.dev/v1alpha1\nkind: Cluster\nmetadata: {name: bench}\nspec:\n  ssh: {keyPath: %s, knownHosts: %s}\n  hosts:\n' "$TB_KEY" "$TB_KNOWN_HOSTS"
    for ((i = 1; i <= n; i++)); do
      printf '    - {name: node-%d, address: %s.%d, role: %s}\n' "$i" "$TB_NET" $((10 + i)) "$([[ $i == 1 ]] && echo control-plane || echo worker)"
    done; } > "$f"
  echo "$f"
}
inventory() { # inventory N -> file
  local n=$1 f=$work/inventory-$1
  for ((i = 1; i <= n; i++)); do echo "$TB_NET.$((10 + i))"; done > "$f"
  echo "$f"
}

time_mlplat() { # prints "median-wall-ms median-cpu-ms" (cpu: the mlplat process, user + sys)
  local file; file=$(cluster "$1")
  for ((r = 0; r < repeats; r++)); do
    local start; start=$(now_ms)
    /usr/bin/time -f '%U %S' -o "$work/cpu" "$mlplat" doctor -c "$file" --output json > "$work/out.json" 2>/dev/null ||
      { echo "mlplat doctor failed on $1 hosts" >&2; exit 1; }
    echo "$(($(now_ms) - start)) $(awk '{ printf "%d", ($1 + $2) * 1000 }' "$work/cpu")"
  done > "$work/runs"
  echo "$(cut -d' ' -f1 "$work/runs" | median) $(cut -d' ' -f2 "$work/runs" | median)"
}
time_floor() { # the same fan-out running `true`: SSH logins and one remote command, nothing else
  "$fanout" "$(cluster "$1")" "$1" true "$repeats" | median
}
time_ansible() {
  local n=$1 inv; inv=$(inventory "$1")
  for ((r = 0; r < repeats; r++)); do
    local start cp; cp=$(mktemp -d); start=$(now_ms)
    ANSIBLE_SSH_CONTROL_PATH_DIR=$cp ANSIBLE_HOST_KEY_CHECKING=True ANSIBLE_PYTHON_INTERPRETER=auto_silent \
      ansible all -i "$inv" -u root -f "$n" --private-key "$TB_KEY" \
      --ssh-common-args "-F /dev/null -o UserKnownHostsFile=$TB_KNOWN_HOSTS" \
      -m script -a "$work/probe.sh" > "$work/ansible.out" 2>&1 || { echo "ansible failed on $n hosts:" >&2; tail -5 "$work/ansible.out" >&2; exit 1; }
    echo $(($(now_ms) - start))
    rm -rf "$cp"
  done | median
}

printf '%-6s %12s %14s %16s %12s %16s\n' hosts "doctor ms" "mlplat cpu ms" "ssh floor ms" "ansible ms" "ansible/doctor"
declare -A m
for n in 1 10 50; do
  read -r wall cpu < <(time_mlplat "$n")
  m[$n]=$wall
  floor=$(time_floor "$n")
  a=$(time_ansible "$n")
  printf '%-6s %12s %14s %16s %12s %16.1f\n' "$n" "$wall" "$cpu" "$floor" "$a" "$(echo "$a / $wall" | bc -l)"
done
printf 'doctor, 50 hosts / 1 host: %.2f (target <= 2; median of %d runs each)\n' "$(echo "${m[50]} / ${m[1]}" | bc -l)" "$repeats"
echo "ssh floor: 50 logins running 'true' through the same fan-out. The testbed's 50 sshd share this machine's"
echo "$(nproc) cores with mlplat; 'mlplat cpu' is what mlplat itself used."
