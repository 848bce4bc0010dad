// Every phase, one file each, reusable by any command. A phase is a workflow::PhaseSpec: its path
// (group/name), when it is left out, and how it builds its steps from the run's Context. The groups:
//   host/      what every host needs before Kubernetes (phases/host/)
//   cluster/   kubeadm, the CNI, storage, the first control plane's housekeeping (phases/cluster/)
//   platform/  Kubeflow Pipelines, Istio, the ingress certificate and the HTTPS check (phases/platform/)
// Every remote change of a phase goes through ctx.fleet (dry-run aware); a phase never opens a
// connection of its own.
#pragma once

#include "workflow/context.hpp"

#include <string>

namespace mlplat::phases {

// --- Interface ---

// host/prepare: kernel modules and sysctls persisted in drop-in files (manifests/host/) and applied
// now, swap off now and at boot, then what the preflight found fixable judged again (ctx.recheck).
workflow::PhaseSpec prepare();

// host/artifacts: each host gets the bundle files it needs (the first control plane all of them),
// uploaded or fetched from --bundle-url, verified on the host against the bill of materials.
workflow::PhaseSpec artifacts();

// host/containerd: containerd, runc, CNI plugins, crictl, kubeadm/kubelet/kubectl from the bundle;
// containerd's config (registry mirrors in certs.d), systemd units, containerd running, the kubelet
// enabled.
workflow::PhaseSpec containerd();
// host/images: the bundle's container images loaded into containerd (no site registry; phases/host/images.cpp).
workflow::PhaseSpec images();

// cluster/init: kubeadm init on the first control plane from mlplat's v1beta4 config, as a transient
// service of the host, never twice; then the API server answering /readyz.
workflow::PhaseSpec init();

// cluster/join-control-planes: the other control planes join, one at a time, each with the key of
// freshly uploaded certificates.
workflow::PhaseSpec join_control_planes();

// cluster/join-workers: the workers join in parallel (in batches of ctx.worker_batch when set).
workflow::PhaseSpec join_workers();

// cluster/kubeconfig: the first control plane's admin.conf (never super-admin.conf) to the state
// directory (0600).
workflow::PhaseSpec kubeconfig();

// cluster/nodes: each host's labels and taints from the cluster file, kept as the file says.
workflow::PhaseSpec nodes();

// cluster/cni: Calico through its operator (or Flannel through an overlay), then every node Ready.
workflow::PhaseSpec cni();

// cluster/storage: OpenEBS LocalPV hostpath as the only default StorageClass, proven by a volume a
// non-root pod writes.
workflow::PhaseSpec storage();

// cluster/volumes: the volumes a reset kept (the state directory's record) given back to their claims
// as pre-bound PersistentVolumes on their directories and nodes, before the platform claims them.
workflow::PhaseSpec volumes();

// cluster/cleanup: bootstrap tokens and the kubeadm-certs Secret removed.
workflow::PhaseSpec cleanup();

// platform/pipelines: Kubeflow Pipelines from the rendered overlays: cluster-scoped resources, CRDs
// established, the rest, every deployment available.
workflow::PhaseSpec pipelines();

// platform/istio: istioctl from the bundle installs a minimal control plane and the ingress gateway,
// exposed as the profile says (hostNetwork: the ingress nodes labelled first).
workflow::PhaseSpec istio();

// platform/tls: the ingress certificate (ctx.cert) as the gateway's kubernetes.io/tls Secret.
workflow::PhaseSpec tls();

// platform/gateway: the Gateway on 443 with HTTP redirected, the VirtualService to the UI and API.
workflow::PhaseSpec gateway();

// platform/smoke: from the operator machine, HTTPS through the gateway verified against the CA
// reaches the Pipelines UI and API, and HTTP is redirected to HTTPS.
workflow::PhaseSpec smoke();

// reset/volumes: on the first control plane, while its API server answers: which claim lives in which
// directory on which node, recorded in the state directory (merged with earlier records).
workflow::PhaseSpec reset_volumes();

// reset/kubeadm: kubeadm reset on each target host (its containers through the CRI, the kubelet,
// kubeadm's files); etcd membership is left to remove-node.
workflow::PhaseSpec reset_kubeadm();

// reset/host: host_footprint() removed from each target host (phases/footprint.hpp).
workflow::PhaseSpec reset_host();

// reset/data: with ctx.purge_data, the storage base path removed on each target host, and the
// records of its volumes.
workflow::PhaseSpec reset_data();

// node/check (remove-node): on the first control plane, refuses (exit 3, nothing changed) when
// removing the target control planes would leave etcd without a quorum.
workflow::PhaseSpec node_check();

// node/drain (remove-node): each target node cordoned and drained (evictions: PodDisruptionBudgets
// respected), within ctx.drain_deadline.
workflow::PhaseSpec node_drain();

// node/etcd-member (remove-node): the etcd member of each target control plane removed.
workflow::PhaseSpec node_etcd_member();

// node/delete (remove-node): each target Node deleted, after its host was reset.
workflow::PhaseSpec node_delete();

// Why a platform phase is left out for `ctx` (Kubeflow Pipelines disabled), or empty.
std::string platform_left_out(const workflow::Context& ctx);

// The nodes phase's read-only check (exit 0 when every node has the labels and taints of `cluster`
// and mlplat's annotations list exactly those) and its converging script; shown by plan, tested on
// their own.
std::string nodes_check_script(const config::Cluster& cluster);
std::string nodes_apply_script(const config::Cluster& cluster);

// The node annotations that list what mlplat manages.
inline constexpr const char* k_labels_annotation = "mlplat.dev/labels";
inline constexpr const char* k_taints_annotation = "mlplat.dev/taints";

} // namespace mlplat::phases
