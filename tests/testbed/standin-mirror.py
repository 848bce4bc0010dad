#!/usr/bin/env python3
"""Builds a local mirror of one matrix row's artifacts made of testbed stand-ins.

Reads the row as `mlplat matrix --row ID --output json` prints it and writes, under OUT, every
artifact at its upstream path (OUT/<host>/<path>, the layout `bundle create --base-url` and
`--mirror` use) plus the checksum files the row names, so `mlplat bundle create` downloads and
verifies them for real. kubeadm and kubectl are the real upstream programs the testbed built
(tests/testbed/build-programs.sh: PROGRAMS/upstream), which must be the row's Kubernetes version; the
kubelet, containerd and ctr are the testbed's Go stand-ins (PROGRAMS/standins) marked with the row's
version; the rest are the stand-ins of tests/testbed/standins/bin with the row's versions filled in.
The archives have the real ones' layout.

MLPLAT_UPSTREAM_PIPELINES and MLPLAT_UPSTREAM_ARGO, when set, name the directories of the real upstream
source trees (kubeflow/pipelines and argoproj/argo-workflows at the row's tags, the directory that holds
manifests/) served instead of the fixture trees: the upstream render test (test_install.cpp, [upstream])
builds the real manifests with them (docs/bundle.md, "Checking against the upstream sources").
"""
import argparse
import hashlib
import io
import json
import os
import sys
import tarfile
from urllib.parse import urlparse

HERE = os.path.dirname(os.path.abspath(__file__))
PROGRAMS = os.path.join(HERE, "..", "..", "build", "testbed-programs")
FIXTURES = os.path.join(HERE, "..", "fixtures", "kustomize")


def standin(name, version):
    with open(os.path.join(HERE, "standins", "bin", name)) as f:
        return f.read().replace("@VERSION@", version).encode()


def program(kind, name):
    with open(os.path.join(PROGRAMS, kind, name), "rb") as f:
        return f.read()


def marked(name, version):
    """A Go stand-in served as the artifact of one version (internal/standin reads the mark)."""
    return program("standins", name) + ("\nMLPLAT-STANDIN-VERSION %s\n" % version).encode()


def built_kubernetes():
    with open(os.path.join(PROGRAMS, "versions")) as f:
        for line in f:
            name, version = line.split()
            if name == "kubernetes":
                return version.lstrip("v")
    sys.exit("no kubernetes line in %s/versions" % PROGRAMS)


def tar_gz(members):
    """members: list of (path, bytes, mode); directories are implied."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for path, data, mode in members:
            info = tarfile.TarInfo(path)
            info.size = len(data)
            info.mode = mode
            info.mtime = 0
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def tree(root, prefix):
    out = []
    for d, _, files in os.walk(root):
        for f in sorted(files):
            full = os.path.join(d, f)
            with open(full, "rb") as fh:
                out.append((prefix + "/" + os.path.relpath(full, root), fh.read(), 0o644))
    return out


def content(artifact, row):
    name = artifact["name"]
    comp = row["components"]
    k8s = row["kubernetes"]
    if name in ("kubeadm", "kubectl"):
        return program("upstream", name)
    if name == "kubelet":
        return marked("kubelet", k8s)
    if name == "containerd":
        v = comp["containerd"]["version"]
        return tar_gz([("bin/containerd", marked("containerd", v), 0o755),
                       ("bin/containerd-shim-runc-v2", standin("containerd", v), 0o755),
                       ("bin/ctr", marked("ctr", v), 0o755)])
    if name == "runc":
        return standin("runc", comp["runc"]["version"])
    if name == "cni-plugins":
        v = comp["cniPlugins"]["version"]
        return tar_gz([("./" + p, standin("cni-plugin", v), 0o755) for p in ("bridge", "host-local", "loopback", "portmap")])
    if name == "crictl":
        return tar_gz([("crictl", standin("crictl", comp["crictl"]["version"]), 0o755)])
    if name == "istio":
        v = comp["istio"]["version"]
        return tar_gz([("istio-%s/bin/istioctl" % v, standin("istioctl", v), 0o755)])
    if name == "pipelines-source":
        v = comp["pipelines"]["version"]
        return tar_gz(tree(os.environ.get("MLPLAT_UPSTREAM_PIPELINES") or os.path.join(FIXTURES, "pipelines-standin"), "pipelines-" + v))
    if name == "argo-workflows-source":
        v = comp["argoWorkflows"]["version"]
        return tar_gz(tree(os.environ.get("MLPLAT_UPSTREAM_ARGO") or os.path.join(FIXTURES, "argo-workflows-standin"), "argo-workflows-" + v))
    if name in ("calico-crds", "calico-operator", "flannel-manifest"):
        return cni_fixture(name, row)
    # other manifests (cert-manager): a recognisable stand-in document
    return ("# mlplat testbed stand-in for %s\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s-standin\n" % (name, name)).encode()


CNI_FIXTURES = os.path.join(HERE, "..", "fixtures", "cni")


def image_tag(row, repository):
    for image in row.get("images", []):
        repo, _, tag = image.rpartition(":")
        if repo.endswith("/" + repository):
            return tag
    sys.exit("the row %s lists no image of %s" % (row["id"], repository))


def cni_fixture(name, row):
    """The CNI manifests shaped as upstream's, whose images run the testbed's pod images."""
    comp = row["components"]
    file, values = {
        "calico-crds": ("v1_crd_projectcalico_org.yaml", {"@VERSION@": comp["calico"]["version"]}),
        "calico-operator": ("tigera-operator.yaml", {"@VERSION@": comp["calico"]["version"], "@OPERATOR@": image_tag(row, "tigera/operator")}),
        "flannel-manifest": ("kube-flannel.yml", {"@VERSION@": comp["flannel"]["version"],
                                                  "@CNI_PLUGIN@": image_tag(row, "flannel-io/flannel-cni-plugin")}),
    }[name]
    with open(os.path.join(CNI_FIXTURES, file)) as f:
        text = f.read()
    for k, v in values.items():
        text = text.replace(k, v)
    return text.encode()


def local_path(out, url):
    u = urlparse(url)
    return os.path.join(out, u.netloc, u.path.lstrip("/"))


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def main():
    global PROGRAMS
    p = argparse.ArgumentParser()
    p.add_argument("--matrix-json", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--programs", default=PROGRAMS, help="what tests/testbed/build-programs.sh built")
    args = p.parse_args()
    PROGRAMS = args.programs
    with open(args.matrix_json) as f:
        doc = json.load(f)
    if len(doc["rows"]) != 1:
        sys.exit("give the JSON of exactly one row (mlplat matrix --row ID --output json)")
    row = doc["rows"][0]
    if row["kubernetes"] != built_kubernetes():
        sys.exit("the row %s names Kubernetes %s, the testbed built %s: use the test matrix (%s/data as --data-dir)"
                 % (row["id"], row["kubernetes"], built_kubernetes(), PROGRAMS))
    for a in row["artifacts"]:
        data = content(a, row)
        write(local_path(args.out, a["url"]), data)
        digest = hashlib.sha256(data).hexdigest()
        if "sha256" in a and a["sha256"] != digest:
            print("note: %s is pinned; the stand-in does not match the pin (a test of refusal may want that)" % a["name"])
        if "checksumUrl" in a:
            file_name = os.path.basename(urlparse(a["url"]).path)
            if urlparse(a["checksumUrl"]).netloc == "dl.k8s.io":
                text = digest + "\n"  # dl.k8s.io: the bare digest
            else:
                text = "%s  %s\n" % (hashlib.sha256(b"another file").hexdigest(), "other-" + file_name) + "%s  %s\n" % (digest, file_name)
            write(local_path(args.out, a["checksumUrl"]), text.encode())
    print(row["id"])


if __name__ == "__main__":
    main()
