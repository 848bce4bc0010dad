#!/usr/bin/env bash
# Benchmark: `mlplat install` (the whole cluster layer) on 3 testbed hosts (1 control plane + 2
# workers) and on 20 (1 + 19), from a bundle of testbed stand-ins. The stand-ins answer at once, so
# this measures mlplat's own overhead: SSH, uploads, checks, journal. Per size: medians of REPEATS
# fresh installs (default 3) and of the no-op reruns that follow, and the SSH logins each host's sshd
# accepted per run (from its own log). Targets: 3 hosts under 20 s, 20 hosts under 60 s, one SSH
# session per host per run. Needs root (the testbed).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
repeats=${1:-3}
[[ $(id -u) -eq 0 ]] || exec sudo --preserve-env=PATH "$0" "$@"
"$top/scripts/install-deps.sh" >/dev/null
"$top/scripts/build.sh" --target mlplat >/dev/null
mlplat=$top/build/installer/mlplat
testbed=$top/tests/testbed/testbed.sh
work=$(mktemp -d /tmp/mlplat-bench-install.XXXXXX)
server=
cleanup() { [[ -z $server ]] || kill "$server" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
"$top/tests/testbed/build-programs.sh" "$top/build/testbed-programs"
"$testbed" up 20 >/dev/null
# The install layer still runs on the shell stand-ins (kubeadm with its API server stand-in) until it
# moves onto the real control plane (docs/testbed.md).
for ((h = 1; h <= 20; h++)); do "$testbed" legacy "node-$h" on >/dev/null; done
eval "$("$testbed" env)"

# The bundle, as scripts/run.sh makes it.
row=$("$mlplat" matrix --output json | python3 -c 'import json,sys; print(json.load(sys.stdin)["defaultRow"])')
"$mlplat" matrix --row "$row" --output json > "$work/row.json"
python3 "$top/tests/testbed/standin-mirror.py" --matrix-json "$work/row.json" --out "$work/www" --legacy >/dev/null
python3 "$top/tests/support/httpd.py" --root "$work/www" --log "$work/httpd.log" --max-seconds 3600 > "$work/port" &
server=$!
for _ in $(seq 50); do [[ -s $work/port ]] && break; sleep 0.1; done
"$mlplat" bundle create --base-url "http://127.0.0.1:$(cat "$work/port")" --accept-unpinned all -o "$work/bundle.tar.gz" >/dev/null 2>&1

now_ms() { echo $(($(date +%s%N) / 1000000)); }
median() { sort -n | awk '{a[NR]=$1} END {m=(NR+1)/2; if (NR%2) print a[m]; else print (a[NR/2]+a[NR/2+1])/2}'; }
logins() { # logins N: accepted SSH logins so far, summed over node-1..N
  local n=$1 total=0 i c
  for ((i = 1; i <= n; i++)); do
    c=$(grep -c 'Accepted publickey' "$TB_DIR/hosts/node-$i/run/sshd.log" 2>/dev/null || true)
    total=$((total + ${c:-0}))
  done
  echo "$total"
}
reset_hosts() { # what an install leaves, removed (as the tests' reset_host does)
  local n=$1 i
  for ((i = 1; i <= n; i++)); do
    "$testbed" exec "node-$i" sh -c 'f=/var/lib/mlplat-standin/apiserver/pid; [ ! -f $f ] || kill $(cat $f) 2>/dev/null
      rm -rf /etc/kubernetes /var/lib/kubelet/* /var/lib/mlplat-standin /etc/sysctl.d/90-mlplat.conf /etc/modules-load.d/mlplat.conf \
        /var/log/mlplat-standins /run/mlplat-standins/systemd /var/lib/mlplat /usr/local/bin/containerd* /usr/local/bin/ctr \
        /usr/local/bin/kube* /usr/local/bin/crictl /usr/local/sbin/runc /opt/cni /etc/containerd /etc/crictl.yaml \
        /usr/local/lib/systemd /var/openebs/local; true' >/dev/null 2>&1 || true
  done
}
cluster() { # cluster N -> file
  local n=$1 f=$work/cluster-$1.yaml
  { printf 'apiVersion: mlplat.dev/v1alpha1\nkind: Cluster\nmetadata: {name: bench-%d}\nspec:\n  ssh: {keyPath: %s, knownHosts: %s}\n  hosts:\n' "$n" "$TB_KEY" "$TB_KNOWN_HOSTS"
    for ((i = 1; i <= n; i++)); do
      printf '    - {name: node-%d, address: %s.%d, role: %s}\n' "$i" "$TB_NET" $((10 + i)) "$([[ $i == 1 ]] && echo control-plane || echo worker)"
    done; } > "$f"
  echo "$f"
}

declare -A first rerun sessions
for n in 3 20; do
  file=$(cluster "$n")
  : > "$work/first" ; : > "$work/rerun"; : > "$work/sessions"
  for ((r = 0; r < repeats; r++)); do
    reset_hosts "$n"
    state=$work/state-$n-$r
    before=$(logins "$n"); start=$(now_ms)
    "$mlplat" install -c "$file" --bundle "$work/bundle.tar.gz" --state-dir "$state" > "$work/out" 2>&1 ||
      { echo "install on $n hosts failed:" >&2; tail -n 20 "$work/out" >&2; exit 1; }
    echo $(($(now_ms) - start)) >> "$work/first"
    echo "scale=2; ($(logins "$n") - $before) / $n" | bc >> "$work/sessions"
    start=$(now_ms)
    "$mlplat" install -c "$file" --bundle "$work/bundle.tar.gz" --state-dir "$state" > "$work/out" 2>&1 ||
      { echo "rerun on $n hosts failed:" >&2; tail -n 20 "$work/out" >&2; exit 1; }
    grep -q ' 0 steps applied' "$work/out" || { echo "the rerun on $n hosts changed something" >&2; exit 1; }
    echo $(($(now_ms) - start)) >> "$work/rerun"
  done
  first[$n]=$(median < "$work/first"); rerun[$n]=$(median < "$work/rerun"); sessions[$n]=$(median < "$work/sessions")
done
reset_hosts 20

printf '%-28s %12s %12s %14s %18s\n' "install (medians of $repeats)" "first (ms)" "rerun (ms)" "rerun/first" "SSH logins/host"
for n in 3 20; do
  printf '%-28s %12s %12s %14s %18s\n' "$([[ $n == 3 ]] && echo '3 hosts (1 + 2)' || echo '20 hosts (1 + 19)')" "${first[$n]}" "${rerun[$n]}" \
    "$(echo "scale=2; ${rerun[$n]} / ${first[$n]}" | bc)" "${sessions[$n]}"
done
echo "targets: 3 hosts < 20000 ms: $( (( ${first[3]%.*} < 20000 )) && echo met || echo MISSED); 20 hosts < 60000 ms: $( (( ${first[20]%.*} < 60000 )) && echo met || echo MISSED); one SSH session per host per run: $( [[ ${sessions[3]} == 1.00 && ${sessions[20]} == 1.00 ]] && echo met || echo MISSED)"
