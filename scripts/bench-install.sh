#!/usr/bin/env bash
# Benchmark: `mlplat install` (the whole run: cluster and platform layers) on 3 testbed hosts (1
# control plane + 2 workers) and on 20 (1 + 19), on the testbed's real control plane (the upstream
# kubeadm, API server, etcd, controller-manager and scheduler; the kubelet and containerd stand-ins).
# Per size: medians of REPEATS fresh installs (default 3) and of the no-op reruns that follow, and the
# SSH logins each host's sshd accepted per run (from its own log). Targets: 20 hosts take at most 1.5
# times as long as 3 (the workers join in parallel), a rerun at most a third of a first run, one SSH
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
eval "$("$testbed" env)"
# The test matrix: the row naming the Kubernetes the testbed built.
data=$top/build/testbed-programs/data

# The bundle, as scripts/run.sh makes it.
row=$("$mlplat" --data-dir "$data" matrix --output json | python3 -c 'import json,sys; print(json.load(sys.stdin)["defaultRow"])')
"$mlplat" --data-dir "$data" matrix --row "$row" --output json > "$work/row.json"
python3 "$top/tests/testbed/standin-mirror.py" --matrix-json "$work/row.json" --out "$work/www" >/dev/null
python3 "$top/tests/support/httpd.py" --root "$work/www" --log "$work/httpd.log" --max-seconds 3600 > "$work/port" &
server=$!
for _ in $(seq 50); do [[ -s $work/port ]] && break; sleep 0.1; done
# Signed with a key made here; the cluster files name its allowed signers (docs/bundle.md).
ssh-keygen -q -t ed25519 -N '' -C bench@mlplat.test -f "$work/signer"
echo "bench@mlplat.test $(cat "$work/signer.pub")" > "$work/allowed_signers"
"$mlplat" --data-dir "$data" bundle create --base-url "http://127.0.0.1:$(cat "$work/port")" --accept-unpinned all \
  --sign-key "$work/signer" -o "$work/bundle.tar.gz" >/dev/null 2>&1

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
reset_hosts() { # reset_hosts N: node-1..N as a fresh boot leaves them
  local n=$1 i
  for ((i = 1; i <= n; i++)); do "$testbed" wipe "node-$i" >/dev/null; done
}
cluster() { # cluster N -> file
  local n=$1 f=$work/cluster-$1.yaml
  { printf 'apiVersion: mlplat.dev/v1alpha1\nkind: Cluster\nmetadata: {name: bench-%d}\nspec:\n  ssh: {keyPath: %s, knownHosts: %s}\n' "$n" "$TB_KEY" "$TB_KNOWN_HOSTS"
    printf '  bundle: {allowedSigners: %s, signer: bench@mlplat.test}\n  hosts:\n' "$work/allowed_signers"
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
    "$mlplat" --data-dir "$data" install -c "$file" --bundle "$work/bundle.tar.gz" --state-dir "$state" > "$work/out" 2>&1 ||
      { echo "install on $n hosts failed:" >&2; tail -n 20 "$work/out" >&2; exit 1; }
    echo $(($(now_ms) - start)) >> "$work/first"
    echo "scale=2; ($(logins "$n") - $before) / $n" | bc >> "$work/sessions"
    start=$(now_ms)
    "$mlplat" --data-dir "$data" install -c "$file" --bundle "$work/bundle.tar.gz" --state-dir "$state" > "$work/out" 2>&1 ||
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
scale=$(echo "scale=2; ${first[20]} / ${first[3]}" | bc)
ratio3=$(echo "scale=2; ${rerun[3]} / ${first[3]}" | bc); ratio20=$(echo "scale=2; ${rerun[20]} / ${first[20]}" | bc)
echo "targets: 20 hosts / 3 hosts = $scale <= 1.5: $( (( $(echo "$scale <= 1.5" | bc) )) && echo met || echo MISSED);" \
  "rerun / first <= 0.33: $( (( $(echo "$ratio3 <= 0.33 && $ratio20 <= 0.33" | bc) )) && echo met || echo MISSED);" \
  "one SSH session per host per run: $( [[ ${sessions[3]} == 1.00 && ${sessions[20]} == 1.00 ]] && echo met || echo MISSED)"
