#!/usr/bin/env bash
# Builds the testbed's Go programs from their upstream modules, into a cache keyed by their versions,
# and links them into OUT (default: build/testbed-programs):
#   OUT/upstream/  kubeadm kube-apiserver kube-controller-manager kube-scheduler kubectl  (k8s.io/kubernetes)
#                  etcd etcdctl                                                         (go.etcd.io/etcd)
#                  kwok                                                                 (sigs.k8s.io/kwok)
#   OUT/standins/  the testbed's own stand-ins (tests/testbed/go/standins), with images/: the pod
#                  images' layers and their index
#   OUT/versions   one "name version" line per upstream program
#   OUT/data/manifests/matrix.yaml  the test matrix: the shipped one with the row of the built minor
#                  naming exactly the built Kubernetes (tests pass OUT/data as --data-dir)
# Each build's time is printed; on a warm cache nothing is built and this takes seconds. Go is for the
# test world only (mlplat needs none): /usr/local/go, modules from the Go module proxy.
#
#   build-programs.sh [OUT]
# Environment: MLPLAT_TESTBED_CACHE (default /var/cache/mlplat-testbed), the cache directory.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
out=${1:-$top/build/testbed-programs}
cache=${MLPLAT_TESTBED_CACHE:-/var/cache/mlplat-testbed}
mods=$here/go

die() { echo "build-programs: $*" >&2; exit 1; }
[[ -x /usr/local/go/bin/go ]] || command -v go >/dev/null || die "Go is missing: the testbed builds Kubernetes from its Go modules with /usr/local/go"
export PATH=/usr/local/go/bin:$PATH
# Go keeps its build and module caches under $HOME: a CI environment may come without it.
[[ -n ${HOME:-} ]] || export HOME=$(getent passwd "$(id -u)" | cut -d: -f6)
# Builds are reproducible and static, as upstream's release builds (hack/lib/golang.sh: CGO_ENABLED=0
# for these programs, -trimpath, stripped).
export CGO_ENABLED=0 GOFLAGS=-mod=readonly

# version MODULE_DIR PATH: the version of PATH that module MODULE_DIR requires.
version() { (cd "$1" && go list -m -f '{{.Version}}' "$2"); }
module_dir() { (cd "$1" && go list -m -f '{{.Dir}}' "$2"); }

k8s=$(version "$mods/kubernetes" k8s.io/kubernetes)
etcd=$(version "$mods/etcd" go.etcd.io/etcd/server/v3)
etcdctl=$(version "$mods/etcd" go.etcd.io/etcd/etcdctl/v3)
kwok=$(version "$mods/kwok" sigs.k8s.io/kwok)
[[ $etcd == "$etcdctl" ]] || die "etcd $etcd and etcdctl $etcdctl differ in tests/testbed/go/etcd/go.mod"

# The module zip of k8s.io/kubernetes must be present to read kubeadm's constants (downloads it once).
(cd "$mods/kubernetes" && go mod download k8s.io/kubernetes)
k8s_src=$(module_dir "$mods/kubernetes" k8s.io/kubernetes)
# etcd: the version kubeadm's constants pin for this Kubernetes (DefaultEtcdVersion "3.6.8-0").
pinned=$(sed -n 's/^[[:space:]]*DefaultEtcdVersion = "\([0-9.]*\)-[0-9]*"/\1/p' "$k8s_src/cmd/kubeadm/app/constants/constants.go")
[[ -n $pinned ]] || die "no DefaultEtcdVersion in $k8s_src/cmd/kubeadm/app/constants/constants.go"
[[ v$pinned == "$etcd" ]] || die "kubeadm $k8s pins etcd $pinned, tests/testbed/go/etcd/go.mod has $etcd: make them equal"

sum_of() { cat "$@" | sha256sum | cut -c1-16; }
upstream_key="k8s-$k8s.etcd-$etcd.kwok-$kwok.$(sum_of "$mods"/kubernetes/go.sum "$mods"/etcd/go.sum "$mods"/kwok/go.sum)"

# progress NAME: reads `go build -v` (one package per line) and prints a line every 100 packages, so
# a cold build shows it is moving instead of a silent wait.
progress() {
  local n=0 line
  while IFS= read -r line; do
    case $line in
      *.go:*|"# "*|go:*) echo "  $line" >&2 ;;
      *) n=$((n + 1)); (( n % 100 )) || echo "  $1: $n packages compiled" ;;
    esac
  done
}

# build DIR OUTFILE PACKAGE LDFLAGS: one program, timed.
build() {
  local dir=$1 target=$2 pkg=$3 ldflags=$4 start=$SECONDS
  echo "building $(basename "$target") ($pkg)"
  (cd "$dir" && go build -v -trimpath -ldflags "-s -w $ldflags" -o "$target.tmp" "$pkg") 2>&1 | progress "$(basename "$target")"
  [[ ${PIPESTATUS[0]} -eq 0 && -x $target.tmp ]] || die "building $pkg failed"
  mv "$target.tmp" "$target"
  echo "built $(basename "$target") in $((SECONDS - start)) s"
}

build_upstream() {
  local dest=$1 tmp=$1.partial
  rm -rf "$tmp"; mkdir -p "$tmp"
  # Kubernetes' version stamps, as hack/lib/version.sh sets them for a release build from its tag: the
  # module proxy serves the tagged tree (verified against the checksum database), hence a clean tree;
  # the release's date is the module version's time. The proxy serves no commit id for a tag: gitCommit
  # names the module and its checksum instead (go version -m shows the same).
  local date major minor commit ld="" p
  date=$(cd "$mods/kubernetes" && go list -m -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' k8s.io/kubernetes)
  major=${k8s#v}; major=${major%%.*}
  minor=${k8s#v*.}; minor=${minor%%.*}
  commit=$(cd "$mods/kubernetes" && go mod download -json k8s.io/kubernetes | sed -n 's/.*"Sum": "\(.*\)",/\1/p')
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X '$p.gitVersion=$k8s' -X '$p.gitMajor=$major' -X '$p.gitMinor=$minor' -X '$p.gitTreeState=clean'"
    ld+=" -X '$p.buildDate=$date' -X '$p.gitCommit=k8s.io/kubernetes@$k8s $commit'"
  done
  for p in kube-apiserver kube-controller-manager kube-scheduler kubeadm kubectl; do
    build "$mods/kubernetes" "$tmp/$p" "k8s.io/kubernetes/cmd/$p" "$ld"
  done
  build "$mods/etcd" "$tmp/etcd" go.etcd.io/etcd/server/v3 ""
  build "$mods/etcd" "$tmp/etcdctl" go.etcd.io/etcd/etcdctl/v3 ""
  build "$mods/kwok" "$tmp/kwok" sigs.k8s.io/kwok/cmd/kwok "-X 'sigs.k8s.io/kwok/pkg/consts.Version=$kwok'"
  { echo "kubernetes $k8s"; echo "etcd $etcd"; echo "kwok $kwok"; } > "$tmp/versions"
  rm -rf "$dest"; mv "$tmp" "$dest"
}

build_standins() {
  local dest=$1 tmp=$1.partial p
  rm -rf "$tmp"; mkdir -p "$tmp"
  local ld="-X 'k8s.io/component-base/version.gitVersion=$k8s' -X 'k8s.io/component-base/version.gitTreeState=clean'"
  for p in "$mods"/standins/cmd/*/; do
    build "$mods/standins" "$tmp/$(basename "$p")" "./cmd/$(basename "$p")" "$ld"
  done
  # The pod images' layers (standins/pod-images): images/<repository>/<path> links to podimages;
  # images/index has "REPOSITORY ENTRYPOINT LAYER" with LAYER relative to this directory.
  local repo entry files f layer
  mkdir -p "$tmp/images"
  while read -r repo entry files; do
    [[ -z $repo || $repo == \#* ]] && continue
    layer=-
    if [[ $files != - ]]; then
      layer=images/${repo//\//_}
      for f in $files; do
        mkdir -p "$tmp/$layer$(dirname "$f")"
        ln "$tmp/podimages" "$tmp/$layer$f"
      done
    fi
    echo "$repo $entry $layer" >> "$tmp/images/index"
  done < "$mods/standins/pod-images"
  rm -rf "$dest"; mv "$tmp" "$dest"
}

# The stand-ins' key: every file of their module by name and content (a file moved from one program to
# another changes both), the Go toolchain, the Kubernetes version stamped into them and this script's
# build of them.
standins_key="standins.$( {
  go version
  echo "$k8s"
  declare -f build build_standins
  cd "$mods/standins" && find . -type f | LC_ALL=C sort | while IFS= read -r f; do printf '== %s\n' "$f"; cat "$f"; done
} | sha256sum | cut -c1-16)"

mkdir -p "$cache"
total=$SECONDS
if [[ -f $cache/$upstream_key/versions ]]; then
  echo "upstream programs: cached ($cache/$upstream_key)"
else
  echo "upstream programs: building Kubernetes $k8s, etcd $etcd, kwok $kwok into $cache/$upstream_key"
  build_upstream "$cache/$upstream_key"
fi
if [[ -d $cache/$standins_key ]]; then
  echo "stand-ins: cached ($cache/$standins_key)"
else
  build_standins "$cache/$standins_key"
  # Earlier builds of the stand-ins are of no use once their sources changed.
  find "$cache" -maxdepth 1 -name 'standins.*' ! -name "$standins_key" -exec rm -rf {} +
fi
# test_matrix: manifests/matrix.yaml with every version string of the built minor's row replaced
# by the built one (its artifacts' URLs and images too), so the tests' row names what was built.
test_matrix() {
  local v=${k8s#v} minor
  minor=${v%.*}
  awk -v id="k8s-$minor" -v new="$v" '
    /^  - id: / { inrow = ($3 == id) }
    inrow && /^    kubernetes: "/ { old = $2; gsub(/"/, "", old) }
    inrow && old != "" { gsub(old, new) }
    { print }
    END { if (old == "") { print "build-programs: the matrix has no row " id > "/dev/stderr"; exit 1 } }
  ' "$top/manifests/matrix.yaml"
}

mkdir -p "$out/data/manifests"
test_matrix > "$out/data/manifests/matrix.yaml.tmp"
mv "$out/data/manifests/matrix.yaml.tmp" "$out/data/manifests/matrix.yaml"
ln -sfn "$cache/$upstream_key" "$out/upstream"
ln -sfn "$cache/$standins_key" "$out/standins"
cp "$cache/$upstream_key/versions" "$out/versions"
echo "testbed programs ready in $((SECONDS - total)) s: $out"
