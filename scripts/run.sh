#!/usr/bin/env bash
# The main job: mlplat install. With a cluster file (-c FILE or $MLPLAT_CONFIG): install onto its
# hosts from the bundle of its matrix row: --bundle FILE passes one (docs/install.md), --make-bundle
# first creates it in build/bundles/ (this machine must reach the internet); with neither it says how
# to get one and exits 2 before touching a host (and before `--only prepare`, which needs none, is
# run: pass that through as usual). Without a cluster file: bring up a local
# testbed of 3 real sshd hosts running the real Kubernetes control plane (built from the upstream Go
# modules on the first run, cached after), make a bundle of the default row of the test matrix served
# by a local HTTP server (downloaded and verified for real), install onto the testbed, print the
# summary, and take the testbed down again (--keep leaves it up; tests/testbed/testbed.sh down removes
# it). Installs what is missing and builds first. The exit code is install's: 1 while phases of it are
# not built yet (it names them).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
config=${MLPLAT_CONFIG:-}
keep=no
make_bundle=no
bundle_given=no
only_prepare=no
args=()
while (($#)); do
  case $1 in
    -c|--config) config=$2; shift 2 ;;
    --keep) keep=yes; shift ;;
    --make-bundle) make_bundle=yes; shift ;;
    --bundle|--bundle=*) bundle_given=yes; args+=("$1"); shift ;;
    --only) [[ ${2:-} == prepare || ${2:-} == host/prepare ]] && only_prepare=yes; args+=("$1"); shift ;;
    *) args+=("$1"); shift ;;
  esac
done
"$top/scripts/install-deps.sh"
"$top/scripts/build.sh" --target mlplat
mlplat=$top/build/installer/mlplat

if [[ -n $config ]]; then
  if [[ $bundle_given == no && $only_prepare == no ]]; then
    # The row the cluster file selects (matrix check connects to nothing and needs no SSH key).
    row=$("$mlplat" matrix check -c "$config" --output json | python3 -c 'import json,sys; print(json.load(sys.stdin)["row"])') || {
      echo "run: $config is refused by the compatibility matrix (above); fix it first" >&2
      exit 3
    }
    # The artifacts of that row the matrix has no checksum for: bundle create takes their first
    # download only when they are named (docs/bundle.md).
    unpinned=$("$mlplat" matrix --row "$row" --output json |
      python3 -c 'import json,sys; print(",".join(a["name"] for a in json.load(sys.stdin)["rows"][0]["artifacts"] if a["verification"] == "unpinned"))')
    create=(bundle create --row "$row" -o "$top/build/bundles/$row.tar.zst")
    [[ -z $unpinned ]] || create+=(--accept-unpinned "$unpinned")
    if [[ $make_bundle == no ]]; then
      {
        echo "run: installing onto the hosts of $config needs the bundle of matrix row $row, and none was given. Either"
        echo "  scripts/run.sh -c $config --make-bundle     (creates it in build/bundles/ first; needs the internet)"
        echo "or create it where the internet is reachable and pass it:"
        echo "  $mlplat ${create[*]}"
        echo "  scripts/run.sh -c $config --bundle $top/build/bundles/$row.tar.zst"
        echo "(--only prepare needs no bundle.)"
      } >&2
      exit 2
    fi
    mkdir -p "$top/build/bundles"
    if [[ ! -e $top/build/bundles/$row.tar.zst ]]; then
      "$mlplat" "${create[@]}"
    fi
    args+=(--bundle "$top/build/bundles/$row.tar.zst")
  fi
  exec "$mlplat" install -c "$config" "${args[@]}"
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "run: no cluster file given, so a local testbed is used, and that needs root: re-running with sudo" >&2
  exec sudo --preserve-env=PATH "$0" "${args[@]}" $([[ $keep == yes ]] && echo --keep)
fi
testbed=$top/tests/testbed/testbed.sh
work=$(mktemp -d /tmp/mlplat-run.XXXXXX)
server=
cleanup() {
  [[ -z $server ]] || kill "$server" 2>/dev/null || true
  rm -rf "$work"
  [[ $keep == yes ]] || "$testbed" down >/dev/null
}
trap cleanup EXIT
"$top/tests/testbed/build-programs.sh" "$top/build/testbed-programs"
"$testbed" up 3
eval "$("$testbed" env)"
# The real control plane: the upstream kubeadm, API server, etcd, controller-manager, scheduler and
# kubectl the testbed built, at the version of the test matrix's row (docs/testbed.md).
data=$top/build/testbed-programs/data
mlplat() { "$top/build/installer/mlplat" --data-dir "$data" "$@"; }
mlplat facts -c "$TB_CONFIG"

echo "== a bundle of the default matrix row: the real kubeadm and kubectl, the testbed's stand-ins, on a local mirror"
mlplat matrix --row "$(mlplat matrix --output json | python3 -c 'import json,sys; print(json.load(sys.stdin)["defaultRow"])')" \
  --output json > "$work/row.json"
python3 "$top/tests/testbed/standin-mirror.py" --matrix-json "$work/row.json" --out "$work/www" >/dev/null
python3 "$top/tests/support/httpd.py" --root "$work/www" --log "$work/httpd.log" --max-seconds 600 > "$work/port" &
server=$!
for _ in $(seq 50); do [[ -s $work/port ]] && break; sleep 0.1; done
mlplat bundle create --base-url "http://127.0.0.1:$(cat "$work/port")" --accept-unpinned all -o "$work/bundle.tar.gz"
# The testbed's cluster file names no allowed signers: this run takes the unsigned bundle it just made,
# by the sha256 of its bill of materials (docs/bundle.md).
bom_sha=$(mlplat bundle list "$work/bundle.tar.gz" --output json | python3 -c 'import json,sys; print(json.load(sys.stdin)["bomSha256"])')

echo "== mlplat install onto the testbed"
rc=0
mlplat install -c "$TB_CONFIG" --bundle "$work/bundle.tar.gz" --accept-unsigned-bundle "$bom_sha" --state-dir "$work/state" "${args[@]}" || rc=$?
if [[ $rc -eq 0 ]]; then
  echo "== the ingress certificate, and the one the gateway serves over HTTPS"
  mlplat certs show --live -c "$TB_CONFIG" --state-dir "$work/state" || rc=$?
fi
exit $rc
