#!/usr/bin/env bash
# Benchmark: one trivial command (`true`) on 1, 10 and 50 testbed hosts through mlplat's fan-out
# (one libssh session per host, 32 at once), and in the same run through OpenSSH's `ssh` in a shell
# loop and with `xargs -P <hosts>`. Prints the median wall time of REPEATS runs (default 5) and the
# ratios. Connection setup is included in every figure. Needs root (the testbed).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
repeats=${1:-5}
[[ $(id -u) -eq 0 ]] || exec sudo --preserve-env=PATH "$0" "$@"
"$top/scripts/install-deps.sh" >/dev/null
"$top/scripts/build.sh" --target mlplat_bench_fanout -DMLPLAT_BUILD_TESTS=ON >/dev/null 2>&1 ||
  { "$top/scripts/build.sh" -DMLPLAT_BUILD_TESTS=ON >/dev/null; }
bench=$top/build/tests/mlplat_bench_fanout
testbed=$top/tests/testbed/testbed.sh
kept=$([[ -d ${MLPLAT_TESTBED_DIR:-/tmp/mlplat-testbed}/hosts ]] && echo yes || echo no)
[[ $kept == yes ]] || trap '"$testbed" down >/dev/null' EXIT
"$testbed" up 50 >/dev/null
eval "$("$testbed" env)"

ssh_opts=(-F /dev/null -o BatchMode=yes -o UserKnownHostsFile="$TB_KNOWN_HOSTS" -o StrictHostKeyChecking=yes -i "$TB_KEY" -l root)
addresses() { for ((i = 1; i <= $1; i++)); do echo "$TB_NET.$((10 + i))"; done; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
median() { sort -n | awk '{a[NR]=$1} END {m=(NR+1)/2; if (NR%2) print a[m]; else print (a[NR/2]+a[NR/2+1])/2}'; }

time_ssh_loop() {
  local n=$1 start h
  for ((r = 0; r < repeats; r++)); do
    start=$(now_ms)
    for h in $(addresses "$n"); do ssh "${ssh_opts[@]}" "$h" true; done
    echo $(($(now_ms) - start))
  done | median
}
time_xargs() {
  local n=$1 start
  for ((r = 0; r < repeats; r++)); do
    start=$(now_ms)
    addresses "$n" | xargs -P "$n" -I{} ssh "${ssh_opts[@]}" {} true
    echo $(($(now_ms) - start))
  done | median
}

printf '%-6s %12s %14s %12s %12s %12s\n' hosts "mlplat ms" "ssh loop ms" "xargs -P ms" "loop/mlplat" "xargs/mlplat"
declare -A mlplat_ms
for n in 1 10 50; do
  m=$("$bench" "$TB_CONFIG" "$n" true "$repeats" | median)
  l=$(time_ssh_loop "$n")
  x=$(time_xargs "$n")
  mlplat_ms[$n]=$m
  printf '%-6s %12s %14s %12s %12.1f %12.1f\n' "$n" "$m" "$l" "$x" "$(echo "$l / $m" | bc -l)" "$(echo "$x / $m" | bc -l)"
done
printf 'mlplat 50 hosts / 1 host: %.2f (median of %d runs each)\n' "$(echo "${mlplat_ms[50]} / ${mlplat_ms[1]}" | bc -l)" "$repeats"
