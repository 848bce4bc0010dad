#!/usr/bin/env bash
# The main job. With a cluster file (-c FILE or $MLPLAT_CONFIG): connect to its hosts and show their
# facts. Without one: bring up a local testbed of 3 real sshd hosts, run the same against it, and
# take the testbed down again (--keep leaves it up; tests/testbed/testbed.sh down removes it).
# Installs what is missing and builds first.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
config=${MLPLAT_CONFIG:-}
keep=no
args=()
while (($#)); do
  case $1 in
    -c|--config) config=$2; shift 2 ;;
    --keep) keep=yes; shift ;;
    *) args+=("$1"); shift ;;
  esac
done
"$top/scripts/install-deps.sh"
"$top/scripts/build.sh" --target mlplat
mlplat=$top/build/installer/mlplat

if [[ -n $config ]]; then
  exec "$mlplat" facts -c "$config" "${args[@]}"
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "run: no cluster file given, so a local testbed is used, and that needs root: re-running with sudo" >&2
  exec sudo --preserve-env=PATH "$0" "${args[@]}" $([[ $keep == yes ]] && echo --keep)
fi
testbed=$top/tests/testbed/testbed.sh
[[ $keep == yes ]] || trap '"$testbed" down >/dev/null' EXIT
"$testbed" up 3
eval "$("$testbed" env)"
"$mlplat" facts -c "$TB_CONFIG" "${args[@]}"
