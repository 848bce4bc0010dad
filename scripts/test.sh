#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test: unit tests, then the SSH and CLI tests
# against a 107-host testbed of real sshd servers that CTest brings up and always tears down.
# Needs root (network namespaces); re-runs itself with sudo when started as another user.
# Extra arguments go to ctest (e.g. -L unit, -R ssh, --repeat until-fail:3).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
if [[ $(id -u) -ne 0 ]]; then
  exec sudo --preserve-env=PATH "$0" "$@"
fi
"$top/scripts/install-deps.sh"
"$top/scripts/build.sh" -DMLPLAT_BUILD_TESTS=ON
# The testbed's Go programs: the real kubeadm, API server, etcd, ... and the stand-ins (cached by version).
"$top/tests/testbed/build-programs.sh" "$top/build/testbed-programs"
cd "$top/build"
# Every temporary file of the run goes into one directory, removed afterwards.
TMPDIR=$(mktemp -d /tmp/mlplat-tests.XXXXXX)
export TMPDIR
trap 'rm -rf "$TMPDIR"' EXIT
ctest --output-on-failure --parallel 2 --timeout 600 "$@"
