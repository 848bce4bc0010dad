#!/usr/bin/env bash
# Configures and builds mlplat in build/. Usage: scripts/build.sh [--target T] [cmake -D args...]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
target=()
if [[ ${1:-} == --target ]]; then
  target=(--target "$2")
  shift 2
fi
cmake -S "$top" -B "$top/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
cmake --build "$top/build" --parallel "$(nproc)" "${target[@]}"
