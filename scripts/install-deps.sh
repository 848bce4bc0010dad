#!/usr/bin/env bash
# Installs what mlplat needs to build and test on Debian 12, and only what is missing.
# Every package is from Debian 12 main: no backports, no other registry.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libssh-dev libyaml-cpp-dev libcurl4-openssl-dev libboost-dev libboost-filesystem-dev
  libfmt-dev libcli11-dev libexpected-dev nlohmann-json3-dev libssl-dev catch2
  # the testbed: real OpenSSH servers in network namespaces, sudo for the non-root test users
  openssh-server openssh-client sudo iproute2 iptables util-linux procps bc
  # what a healthy test host has, so a clean host passes doctor; strace is the audit stand-in
  socat ethtool ebtables strace
  # the doctor JSON schema test; the local HTTP server of the download and bundle tests
  python3 python3-jsonschema
  # bundles: tar with gzip and zstd; container images copied by skopeo; the site registry of the
  # air-gapped tests (Debian's docker-registry, htpasswd from apache2-utils for its bcrypt users)
  tar gzip zstd skopeo docker-registry apache2-utils
  # the kubeadm and kubectl stand-ins on test hosts (Debian's python3 with PyYAML; a real CA by openssl)
  python3-yaml openssl
  # the fuzz targets (tests/fuzz/run.sh): clang with libFuzzer and the sanitizers' runtimes
  clang libclang-rt-14-dev
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# The offline kustomize test runs a real kubectl: the machine's when it has one, else Debian's
# (kubernetes-client), whose old kustomize the matrix's MAT-011 gate would then refuse.
command -v kubectl >/dev/null || missing+=(kubernetes-client)
if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
as_root=()
[[ $(id -u) -eq 0 ]] || as_root=(sudo)
"${as_root[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
# Debian starts the machine's own sshd on install; the testbed runs its own per host and does not need it.
