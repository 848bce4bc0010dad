#!/usr/bin/env bash
# Builds the libFuzzer targets with Debian's clang in BUILD_DIR/build-fuzz and runs each for a bounded
# time from the seed corpus in tests/fuzz/corpus/{cluster,matrix}. Fails on a crash, a sanitizer
# report, a hang (-timeout per input) or a memory blow-up (-rss_limit_mb); the input that did it is
# left in BUILD_DIR/build-fuzz/artifacts/.
# Usage: tests/fuzz/run.sh BUILD_DIR [SECONDS_PER_TARGET]   (default 30; MLPLAT_FUZZ_JOBS=N builds with -jN, default 1)
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:?usage: run.sh BUILD_DIR [SECONDS_PER_TARGET]}
seconds=${2:-30}
jobs=${MLPLAT_FUZZ_JOBS:-1}
out="$build/build-fuzz"

command -v clang++ >/dev/null || { echo "fuzz: clang++ is missing (scripts/install-deps.sh installs clang and libclang-rt-14-dev)" >&2; exit 1; }
start=$(date +%s)
CC=clang CXX=clang++ cmake -S "$top" -B "$out" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMLPLAT_FUZZ=ON -DMLPLAT_BUILD_TESTS=OFF >/dev/null
nice cmake --build "$out" --parallel "$jobs" --target fuzz_cluster fuzz_matrix
echo "fuzz: built in $(( $(date +%s) - start )) s"

mkdir -p "$out/artifacts"
# A smaller ASan quarantine than its 256 MiB default keeps the run well under -rss_limit_mb.
export ASAN_OPTIONS=${ASAN_OPTIONS:-quarantine_size_mb=64}
status=0
for kind in cluster matrix; do
  # New inputs go to a scratch corpus (kept between runs), never into the source tree's seeds.
  work="$out/corpus-$kind"
  mkdir -p "$work"
  echo "fuzz: fuzz_$kind for ${seconds} s"
  if ! "$out/tests/fuzz/fuzz_$kind" -max_total_time="$seconds" -timeout=2 -rss_limit_mb=1024 -max_len=32768 \
        -print_final_stats=1 -artifact_prefix="$out/artifacts/$kind-" "$work" "$top/tests/fuzz/corpus/$kind" \
        > "$out/fuzz_$kind.log" 2>&1; then
    echo "fuzz: fuzz_$kind FAILED; the input is in $out/artifacts/ (log: $out/fuzz_$kind.log)" >&2
    tail -n 40 "$out/fuzz_$kind.log" >&2
    status=1
  fi
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$out/fuzz_$kind.log" | sed "s/^/fuzz: $kind /" || true
done
echo "fuzz: done in $(( $(date +%s) - start )) s"
exit $status
