package main

// The OpenEBS LocalPV hostpath provisioner (openebs.io/local), after openebs/dynamic-localpv-provisioner
// (cmd/provisioner-localpv/app: provisioner_hostpath.go, helper_hostpath.go; v4.0.0, the latest source
// readable for the 4.x line) on sig-storage-lib-external-provisioner:
//   - a claim of a StorageClass of this provisioner, with the scheduler's selected node
//     (volume.kubernetes.io/selected-node, WaitForFirstConsumer), gets the PV pvc-<claim uid>:
//     first a helper pod on that node (image OPENEBS_IO_HELPER_IMAGE, in OPENEBS_NAMESPACE, under
//     OPENEBS_SERVICE_ACCOUNT) makes the directory <BasePath>/pvc-<uid> with `mkdir -m 0777 -p`, it is
//     waited for and deleted, then the PV (local path, node affinity to that node) is created;
//   - a Released PV of this provisioner with reclaim policy Delete: a helper pod removes the directory,
//     then the PV is deleted.
// Under the provisioner's service account: a verb its RBAC lacks fails here as it fails upstream.

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"os"
	"sigs.k8s.io/yaml"
)

const (
	localProvisioner = "openebs.io/local"
	selectedNode     = "volume.kubernetes.io/selected-node"
	helperTimeout    = 120 * time.Second
)

func runProvisioner(ctx context.Context) error {
	cs, _, err := clients()
	if err != nil {
		return err
	}
	ns, sa, helper := os.Getenv("OPENEBS_NAMESPACE"), os.Getenv("OPENEBS_SERVICE_ACCOUNT"), os.Getenv("OPENEBS_IO_HELPER_IMAGE")
	if ns == "" || helper == "" {
		return fmt.Errorf("OPENEBS_NAMESPACE and OPENEBS_IO_HELPER_IMAGE must be set")
	}
	p := &provisioner{cs: cs, ns: ns, sa: sa, helper: helper}
	logf("openebs localpv provisioner stand-in: helper image %s, namespace %s", helper, ns)
	every(ctx, 2*time.Second, func() error { return p.once(ctx) })
	return nil
}

type provisioner struct {
	cs             *kubernetes.Clientset
	ns, sa, helper string
}

func (p *provisioner) once(ctx context.Context) error {
	claims, err := p.cs.CoreV1().PersistentVolumeClaims("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("listing claims: %w", err)
	}
	for i := range claims.Items {
		c := &claims.Items[i]
		if c.Spec.VolumeName != "" || c.Status.Phase != v1.ClaimPending || c.DeletionTimestamp != nil {
			continue
		}
		if c.Annotations["volume.kubernetes.io/storage-provisioner"] != localProvisioner &&
			c.Annotations["volume.beta.kubernetes.io/storage-provisioner"] != localProvisioner {
			continue
		}
		node := c.Annotations[selectedNode]
		if node == "" {
			continue // WaitForFirstConsumer: not before the scheduler picked a node
		}
		if err := p.provision(ctx, c, node); err != nil {
			logf("claim %s/%s: %v", c.Namespace, c.Name, err)
		}
	}
	pvs, err := p.cs.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("listing volumes: %w", err)
	}
	for i := range pvs.Items {
		pv := &pvs.Items[i]
		if pv.Annotations["pv.kubernetes.io/provisioned-by"] != localProvisioner || pv.Status.Phase != v1.VolumeReleased ||
			pv.Spec.PersistentVolumeReclaimPolicy != v1.PersistentVolumeReclaimDelete || pv.Spec.Local == nil {
			continue
		}
		if err := p.delete(ctx, pv); err != nil {
			logf("volume %s: %v", pv.Name, err)
		}
	}
	return nil
}

// basePath reads the StorageClass's cas.openebs.io/config (a list of name/value).
func basePath(sc *storagev1.StorageClass) (string, error) {
	var items []struct{ Name, Value string }
	if err := yaml.Unmarshal([]byte(sc.Annotations["cas.openebs.io/config"]), &items); err != nil {
		return "", fmt.Errorf("storageclass %s: cas.openebs.io/config: %w", sc.Name, err)
	}
	path := "/var/openebs/local" // the provisioner's default BasePath
	for _, it := range items {
		if it.Name == "BasePath" && it.Value != "" {
			path = it.Value
		}
	}
	return path, nil
}

func (p *provisioner) provision(ctx context.Context, c *v1.PersistentVolumeClaim, node string) error {
	sc, err := p.cs.StorageV1().StorageClasses().Get(ctx, ptr.Deref(c.Spec.StorageClassName, ""), metav1.GetOptions{})
	if err != nil {
		return err
	}
	base, err := basePath(sc)
	if err != nil {
		return err
	}
	n, err := p.cs.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		return err
	}
	hostname := n.Labels[v1.LabelHostname]
	name := "pvc-" + string(c.UID)
	path := filepath.Join(base, name)
	if err := p.runHelper(ctx, "init-"+name, hostname, base, "mkdir -m 0777 -p "+filepath.Join("/data", name)); err != nil {
		return err
	}
	reclaim := v1.PersistentVolumeReclaimDelete
	if sc.ReclaimPolicy != nil {
		reclaim = *sc.ReclaimPolicy
	}
	pv := &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"openebs.io/cas-type": "local-hostpath"},
			Annotations: map[string]string{"pv.kubernetes.io/provisioned-by": localProvisioner}},
		Spec: v1.PersistentVolumeSpec{
			Capacity:                      v1.ResourceList{v1.ResourceStorage: c.Spec.Resources.Requests[v1.ResourceStorage]},
			AccessModes:                   c.Spec.AccessModes,
			PersistentVolumeReclaimPolicy: reclaim,
			StorageClassName:              sc.Name,
			VolumeMode:                    ptr.To(v1.PersistentVolumeFilesystem),
			ClaimRef:                      &v1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: c.Namespace, Name: c.Name, UID: c.UID, ResourceVersion: c.ResourceVersion},
			PersistentVolumeSource:        v1.PersistentVolumeSource{Local: &v1.LocalVolumeSource{Path: path, FSType: ptr.To("")}},
			NodeAffinity: &v1.VolumeNodeAffinity{Required: &v1.NodeSelector{NodeSelectorTerms: []v1.NodeSelectorTerm{{
				MatchExpressions: []v1.NodeSelectorRequirement{{Key: v1.LabelHostname, Operator: v1.NodeSelectorOpIn, Values: []string{hostname}}}}}}},
		},
	}
	if _, err := p.cs.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating volume %s: %w", name, err)
	}
	logf("claim %s/%s: volume %s at %s on %s", c.Namespace, c.Name, name, path, node)
	return nil
}

func (p *provisioner) delete(ctx context.Context, pv *v1.PersistentVolume) error {
	dir, name := filepath.Dir(pv.Spec.Local.Path), filepath.Base(pv.Spec.Local.Path)
	hostname := ""
	if na := pv.Spec.NodeAffinity; na != nil && na.Required != nil && len(na.Required.NodeSelectorTerms) > 0 {
		for _, e := range na.Required.NodeSelectorTerms[0].MatchExpressions {
			if e.Key == v1.LabelHostname && len(e.Values) > 0 {
				hostname = e.Values[0]
			}
		}
	}
	if err := p.runHelper(ctx, "cleanup-"+pv.Name, hostname, dir, "rm -rf "+filepath.Join("/data", name)); err != nil {
		return err
	}
	if err := p.cs.CoreV1().PersistentVolumes().Delete(ctx, pv.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	logf("volume %s deleted with its directory", pv.Name)
	return nil
}

// runHelper runs one command in a helper pod on the node with the given hostname, the host directory
// dir mounted at /data, waits for it to succeed and deletes it (helper_hostpath.go).
func (p *provisioner) runHelper(ctx context.Context, name, hostname, dir, command string) error {
	pods := p.cs.CoreV1().Pods(p.ns)
	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: p.ns},
		Spec: v1.PodSpec{
			RestartPolicy:      v1.RestartPolicyNever,
			ServiceAccountName: p.sa,
			Affinity: &v1.Affinity{NodeAffinity: &v1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &v1.NodeSelector{
				NodeSelectorTerms: []v1.NodeSelectorTerm{{MatchExpressions: []v1.NodeSelectorRequirement{
					{Key: v1.LabelHostname, Operator: v1.NodeSelectorOpIn, Values: []string{hostname}}}}}}}},
			Containers: []v1.Container{{
				Name: "local-path-" + strings.SplitN(name, "-", 2)[0], Image: p.helper,
				Command:      []string{"/bin/sh"},
				Args:         []string{"-c", command},
				VolumeMounts: []v1.VolumeMount{{Name: "data", MountPath: "/data"}},
			}},
			Volumes: []v1.Volume{{Name: "data", VolumeSource: v1.VolumeSource{HostPath: &v1.HostPathVolumeSource{Path: dir, Type: ptr.To(v1.HostPathDirectoryOrCreate)}}}},
		},
	}
	if _, err := pods.Create(ctx, pod, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating helper pod %s/%s: %w", p.ns, name, err)
	}
	defer func() {
		if err := pods.Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			logf("deleting helper pod %s/%s: %v", p.ns, name, err)
		}
	}()
	deadline := time.Now().Add(helperTimeout)
	for time.Now().Before(deadline) {
		cur, err := pods.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("helper pod %s/%s: %w", p.ns, name, err)
		}
		switch cur.Status.Phase {
		case v1.PodSucceeded:
			return nil
		case v1.PodFailed:
			return fmt.Errorf("helper pod %s/%s failed", p.ns, name)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
	return fmt.Errorf("helper pod %s/%s did not complete within %s", p.ns, name, helperTimeout)
}
