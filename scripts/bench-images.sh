#!/usr/bin/env bash
# Benchmark: container images into a bundle and out to a site registry, against skopeo alone, in one
# run on this machine (loopback only). Prints the median of RUNS runs of each and the ratios.
#   A  mlplat bundle create --images      (skopeo copy per image + digest and blob checks + bundle.json)
#   B  skopeo copy docker:// -> oci-archive of the same images, one after another
#   C  mlplat bundle push                 (bundle verify, every blob, then skopeo copy --preserve-digests)
#   D  skopeo copy oci-archive -> docker:// of the same archives to an empty registry
# Two Debian docker-registry servers with TLS (a CA made here) and htpasswd: the source and, fresh for
# each run of C and D, the site. Usage: scripts/bench-images.sh  (N=12 images of SIZE_MIB=8, RUNS=3)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
N=${N:-12}
SIZE_MIB=${SIZE_MIB:-8}
RUNS=${RUNS:-3}
"$top/scripts/install-deps.sh" >/dev/null
"$top/scripts/build.sh" --target mlplat >/dev/null
mlplat=$top/build/installer/mlplat

w=$(mktemp -d /tmp/mlplat-bench-images.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$w"; }
trap cleanup EXIT
chmod 0700 "$w"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$w/ca.key" -out "$w/ca.crt" -days 1 -subj /CN=bench-ca 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout "$w/srv.key" -out "$w/srv.csr" -subj /CN=127.0.0.1 2>/dev/null
openssl x509 -req -in "$w/srv.csr" -CA "$w/ca.crt" -CAkey "$w/ca.key" -CAcreateserial -out "$w/srv.crt" -days 1 \
  -extfile <(printf 'subjectAltName=IP:127.0.0.1\n') 2>/dev/null
mkdir -p "$w/certs" && cp "$w/ca.crt" "$w/certs/ca.crt"
password=$(openssl rand -hex 16)
printf '%s\n' "$password" | htpasswd -iBc "$w/htpasswd" bench 2>/dev/null
auth=$(printf 'bench:%s' "$password" | base64 -w0)
printf 'username: bench\npassword: %s\n' "$password" > "$w/site.creds"; chmod 0600 "$w/site.creds"

# registry NAME PORT: a registry with its own storage, waited for (30 s).
registry() {
  local name=$1 port=$2
  rm -rf "$w/$name"; mkdir -p "$w/$name"
  cat > "$w/$name.yml" <<EOF
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $w/$name}, delete: {enabled: true}}
http: {addr: 127.0.0.1:$port, tls: {certificate: $w/srv.crt, key: $w/srv.key}}
auth: {htpasswd: {realm: bench, path: $w/htpasswd}}
EOF
  docker-registry serve "$w/$name.yml" >"$w/$name.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 300); do
    curl -s -o /dev/null --cacert "$w/ca.crt" "https://127.0.0.1:$port/v2/" && return 0
    sleep 0.1
  done
  echo "bench-images: registry $name did not answer in 30 s" >&2; exit 1
}
src_port=$(free_port)
registry source "$src_port"
printf '{"auths": {"127.0.0.1:%s": {"auth": "%s"}}}\n' "$src_port" "$auth" > "$w/auth.json"; chmod 0600 "$w/auth.json"

# N small OCI images (one layer of SIZE_MIB random bytes each), pushed to the source registry.
python3 - "$w/layouts" "$N" "$SIZE_MIB" <<'EOF'
import gzip, hashlib, io, json, os, sys, tarfile
out, n, mib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def blob(d, data):
    h = hashlib.sha256(data).hexdigest()
    os.makedirs(os.path.join(d, "blobs", "sha256"), exist_ok=True)
    open(os.path.join(d, "blobs", "sha256", h), "wb").write(data)
    return {"digest": "sha256:" + h, "size": len(data)}
for i in range(n):
    d = os.path.join(out, str(i))
    os.makedirs(d)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as t:
        data = os.urandom(mib << 20)
        info = tarfile.TarInfo("data"); info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    layer = gzip.compress(raw.getvalue(), compresslevel=1)
    diff = "sha256:" + hashlib.sha256(raw.getvalue()).hexdigest()
    cfg = blob(d, json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [diff]}, "config": {}}).encode())
    cfg["mediaType"] = "application/vnd.oci.image.config.v1+json"
    lay = blob(d, layer); lay["mediaType"] = "application/vnd.oci.image.layer.v1.tar+gzip"
    man = blob(d, json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": cfg, "layers": [lay]}).encode())
    man["mediaType"] = "application/vnd.oci.image.manifest.v1+json"
    man["annotations"] = {"org.opencontainers.image.ref.name": "v1"}
    json.dump({"schemaVersion": 2, "manifests": [man]}, open(os.path.join(d, "index.json"), "w"))
    open(os.path.join(d, "oci-layout"), "w").write('{"imageLayoutVersion": "1.0.0"}')
EOF
images=""
for i in $(seq 0 $((N - 1))); do
  skopeo copy -q --dest-cert-dir "$w/certs" --dest-authfile "$w/auth.json" "oci:$w/layouts/$i:v1" "docker://127.0.0.1:$src_port/bench/img$i:v1"
  images+="${images:+, }bench.example/bench/img$i:v1"
done

# A matrix whose row has one small pinned artifact (served on loopback) and these images.
mkdir -p "$w/www/dl.k8s.io/release/v1.36.4/bin/linux/amd64"
head -c 65536 /dev/urandom > "$w/www/dl.k8s.io/release/v1.36.4/bin/linux/amd64/kubeadm"
sum=$(sha256sum "$w/www/dl.k8s.io/release/v1.36.4/bin/linux/amd64/kubeadm" | cut -d' ' -f1)
http_port=$(free_port)
python3 -m http.server --bind 127.0.0.1 --directory "$w/www" "$http_port" >/dev/null 2>&1 &
pids+=($!)
cat > "$w/matrix.yaml" <<EOF
apiVersion: mlplat.dev/v1alpha1
kind: CompatibilityMatrix
verified: "2026-11-22"
defaultRow: bench-1.36
arch: amd64
hostOS: {kernelMinimum: "4.15", supported: ["debian 12"]}
rows:
  - id: bench-1.36
    status: default
    kubernetes: "1.36.4"
    kubeadmApi: kubeadm.k8s.io/v1beta4
    containerdConfigVersion: 3
    profiles: [onprem]
    components:
      pipelines: {version: "2.17.0"}
      argoWorkflows: {version: "4.0.5"}
      kustomize: {version: "5.8.1", accepts: ">=5.2.1"}
    artifacts:
      - name: kubeadm
        url: https://dl.k8s.io/release/v1.36.4/bin/linux/amd64/kubeadm
        sha256: $sum
    kustomizeSources: []
    images: [$images]
EOF
sleep 0.5

now() { date +%s.%N; }
declare -a A B C D
for r in $(seq "$RUNS"); do
  t=$(now)
  "$mlplat" --matrix "$w/matrix.yaml" bundle create -o "$w/bundle$r" --base-url "http://127.0.0.1:$http_port" --images --no-upstream-images \
    --image-mirror "bench.example=https://127.0.0.1:$src_port" --image-mirror-ca "$w/ca.crt" --registry-auth "$w/auth.json" >/dev/null 2>"$w/create.err" ||
    { cat "$w/create.err" >&2; exit 1; }
  A+=("$(echo "$(now) - $t" | bc)")
  mkdir -p "$w/skopeo$r"
  t=$(now)
  for i in $(seq 0 $((N - 1))); do
    skopeo --override-os linux --override-arch amd64 copy -q --src-cert-dir "$w/certs" --src-authfile "$w/auth.json" \
      "docker://127.0.0.1:$src_port/bench/img$i:v1" "oci-archive:$w/skopeo$r/img$i.tar:bench.example/bench/img$i:v1"
  done
  B+=("$(echo "$(now) - $t" | bc)")

  site_port=$(free_port)
  registry "site$r" "$site_port"
  t=$(now)
  "$mlplat" --matrix "$w/matrix.yaml" bundle push "$w/bundle$r" --site "https://127.0.0.1:$site_port" --site-ca "$w/ca.crt" \
    --site-credentials "$w/site.creds" --accept-unsigned-bundle "$(sha256sum "$w/bundle$r/bundle.json" | cut -d' ' -f1)" >/dev/null 2>"$w/push.err" ||
    { cat "$w/push.err" >&2; exit 1; }
  C+=("$(echo "$(now) - $t" | bc)")
  printf '{"auths": {"127.0.0.1:%s": {"auth": "%s"}}}\n' "$site_port" "$auth" > "$w/site-auth.json"; chmod 0600 "$w/site-auth.json"
  plain_port=$(free_port)
  registry "plain$r" "$plain_port"
  printf '{"auths": {"127.0.0.1:%s": {"auth": "%s"}}}\n' "$plain_port" "$auth" > "$w/plain-auth.json"; chmod 0600 "$w/plain-auth.json"
  t=$(now)
  for i in $(seq 0 $((N - 1))); do
    skopeo copy -q --preserve-digests --dest-cert-dir "$w/certs" --dest-authfile "$w/plain-auth.json" \
      "oci-archive:$w/skopeo$r/img$i.tar" "docker://127.0.0.1:$plain_port/bench/img$i:v1"
  done
  D+=("$(echo "$(now) - $t" | bc)")
done

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
mib=$((N * SIZE_MIB))
ma=$(median "${A[@]}"); mb=$(median "${B[@]}"); mc=$(median "${C[@]}"); md=$(median "${D[@]}")
printf 'images: %d x %d MiB = %d MiB, %d runs, medians\n' "$N" "$SIZE_MIB" "$mib" "$RUNS"
printf 'A bundle create --images   %6.2f s  %6.1f MiB/s\n' "$ma" "$(echo "$mib / $ma" | bc -l)"
printf 'B skopeo copy to archives  %6.2f s  %6.1f MiB/s\n' "$mb" "$(echo "$mib / $mb" | bc -l)"
printf 'C bundle push (site)       %6.2f s  %6.1f MiB/s\n' "$mc" "$(echo "$mib / $mc" | bc -l)"
printf 'D skopeo copy to registry  %6.2f s  %6.1f MiB/s\n' "$md" "$(echo "$mib / $md" | bc -l)"
printf 'ratio A/B %.2f  C/D %.2f  (mlplat over skopeo alone: checks, bill of materials, verify)\n' "$(echo "$ma / $mb" | bc -l)" "$(echo "$mc / $md" | bc -l)"
