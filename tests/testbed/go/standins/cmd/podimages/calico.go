package main

// The tigera operator's part that a cluster's readiness depends on, after tigera/operator v1.42.3
// (pkg/controller/installation/core_controller.go, pkg/render/node.go): once the Installation
// "default" exists, the calico-system namespace, the calico-node service account and DaemonSet (an
// install-cni init container of calico/cni that writes the CNI configuration on every node, and
// calico-node), from the Installation's registry (default quay.io/, pkg/components/images.go) and the
// Calico release the operator pins; then the Installation's status. Everything under the operator's
// own service account, so the RBAC of the tigera-operator manifest applies.
// The operator also writes its defaults back into the Installation's spec with a JSON merge patch,
// which replaces the whole ipPools list (writeBackDefaults). Not played: typha, the API server, the
// CSI driver's and typha's work (their workloads exist, with the release's images, and are played by
// kwok), the flexvol-driver init container of calico-node (its image, calico/pod2daemon-flexvol, is
// deployed by the real operator for this Installation), IP pools as Calico objects.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

var installations = schema.GroupVersionResource{Group: "operator.tigera.io", Version: "v1", Resource: "installations"}

const calicoNS = "calico-system"

func runOperator(ctx context.Context) error {
	cs, dc, err := clients()
	if err != nil {
		return err
	}
	// The Calico release this operator deploys (compiled into the real one: CalicoRelease); the
	// testbed's manifest names it.
	release := os.Getenv("MLPLAT_TESTBED_CALICO_RELEASE")
	if release == "" {
		return fmt.Errorf("MLPLAT_TESTBED_CALICO_RELEASE is not set (the testbed's tigera-operator manifest sets it)")
	}
	logf("tigera operator stand-in: Calico %s", release)
	every(ctx, 2*time.Second, func() error {
		inst, err := dc.Resource(installations).Get(ctx, "default", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("installation default: %w", err)
		}
		if err := writeBackDefaults(ctx, dc, inst); err != nil {
			return err
		}
		spec, _, _ := unstructured.NestedMap(inst.Object, "spec")
		registry, _, _ := unstructured.NestedString(spec, "registry")
		if registry == "" {
			registry = "quay.io/"
		}
		if !strings.HasSuffix(registry, "/") {
			registry += "/"
		}
		mtu, found, _ := unstructured.NestedInt64(spec, "calicoNetwork", "mtu")
		if !found {
			mtu = 0 // auto-detected by calico-node
		}
		if err := ensureCalicoNode(ctx, cs, registry, release, mtu); err != nil {
			return err
		}
		if err := ensureCalicoComponents(ctx, cs, dc, registry, release); err != nil {
			return err
		}
		ds, err := cs.AppsV1().DaemonSets(calicoNS).Get(ctx, "calico-node", metav1.GetOptions{})
		if err != nil {
			return err
		}
		ready := ds.Status.DesiredNumberScheduled > 0 && ds.Status.NumberReady == ds.Status.DesiredNumberScheduled
		status := map[string]any{"variant": "Calico", "calicoVersion": release, "mtu": mtu, "computed": spec,
			"conditions": []any{map[string]any{"type": "Ready", "status": map[bool]string{true: "True", false: "False"}[ready],
				"reason": map[bool]string{true: "AllObjectsAvailable", false: "ResourceNotReady"}[ready], "message": "",
				"lastTransitionTime": metav1.Now().UTC().Format("2006-01-02T15:04:05Z"), "observedGeneration": inst.GetGeneration()}}}
		if variant, _, _ := unstructured.NestedString(inst.Object, "status", "variant"); variant == "Calico" && readyOf(inst) == ready {
			return nil
		}
		inst.Object["status"] = status
		if _, err := dc.Resource(installations).UpdateStatus(ctx, inst, metav1.UpdateOptions{}); err != nil && !apierrors.IsConflict(err) {
			return fmt.Errorf("installation status: %w", err)
		}
		return nil
	})
	return nil
}

// writeBackDefaults fills in what the operator of v1.42.3 defaults on a plain Kubernetes cluster with
// the Calico CNI and persists it, as its two controllers do with client.MergeFrom and Patch (a JSON
// merge patch: the ipPools list is replaced by the defaulted copy):
// pkg/controller/installation/core_controller.go fillDefaults (variant, cni, calicoNetwork's
// dataplanes, bgp, hostPorts, multiInterfaceMode, logging.cni, controlPlaneReplicas, the kubelet
// paths, nodeUpdateStrategy), and pkg/controller/ippool/defaults.go fillDefaults for each pool
// (allowedUses, disableNewAllocations, assignmentMode, and name, blockSize, encapsulation,
// natOutgoing, nodeSelector when not given). On success `inst` is the patched object.
func writeBackDefaults(ctx context.Context, dc dynamic.Interface, inst *unstructured.Unstructured) error {
	spec, _, _ := unstructured.NestedMap(inst.Object, "spec")
	if spec == nil {
		spec = map[string]any{}
	}
	before, _ := json.Marshal(spec)
	orDefault := func(m map[string]any, key string, value any) {
		if _, ok := m[key]; !ok {
			m[key] = value
		}
	}
	sub := func(m map[string]any, key string) map[string]any {
		if v, ok := m[key].(map[string]any); ok {
			return v
		}
		v := map[string]any{}
		m[key] = v
		return v
	}
	orDefault(spec, "variant", "Calico")
	cni := sub(spec, "cni")
	orDefault(cni, "type", "Calico")
	orDefault(sub(cni, "ipam"), "type", "Calico")
	orDefault(cni, "confDir", "/etc/cni/net.d")
	orDefault(cni, "binDir", "/opt/cni/bin")
	network := sub(spec, "calicoNetwork")
	orDefault(network, "linuxDataplane", "Iptables")
	orDefault(network, "windowsDataplane", "Disabled")
	orDefault(network, "bgp", "Enabled")
	orDefault(network, "linuxPolicySetupTimeoutSeconds", int64(0))
	orDefault(network, "hostPorts", "Enabled")
	orDefault(network, "multiInterfaceMode", "None")
	logging := sub(sub(spec, "logging"), "cni")
	orDefault(logging, "logSeverity", "Info")
	orDefault(logging, "logFileMaxCount", int64(10))
	orDefault(logging, "logFileMaxAgeDays", int64(30))
	orDefault(logging, "logFileMaxSize", "100Mi")
	orDefault(spec, "controlPlaneReplicas", int64(2))
	orDefault(spec, "flexVolumePath", "/usr/libexec/kubernetes/kubelet-plugins/volume/exec/")
	orDefault(spec, "kubeletVolumePluginPath", "/var/lib/kubelet")
	orDefault(spec, "nodeUpdateStrategy", map[string]any{"type": "RollingUpdate", "rollingUpdate": map[string]any{"maxUnavailable": int64(1)}})
	if pools, ok := network["ipPools"].([]any); ok {
		for i, p := range pools {
			pool, ok := p.(map[string]any)
			if !ok {
				continue
			}
			orDefault(pool, "name", fmt.Sprintf("default-ipv4-ippool-%d", i))
			orDefault(pool, "encapsulation", "IPIP")
			orDefault(pool, "natOutgoing", "Enabled")
			orDefault(pool, "nodeSelector", "all()")
			orDefault(pool, "blockSize", int64(26))
			orDefault(pool, "allowedUses", []any{"Workload", "Tunnel"})
			orDefault(pool, "disableNewAllocations", false)
			orDefault(pool, "assignmentMode", "Automatic")
		}
	}
	after, _ := json.Marshal(spec)
	if string(before) == string(after) {
		return nil
	}
	patch, _ := json.Marshal(map[string]any{"spec": spec})
	patched, err := dc.Resource(installations).Patch(ctx, "default", types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "operator"})
	if err != nil {
		if apierrors.IsConflict(err) {
			return nil
		}
		return fmt.Errorf("installation default: writing back the defaults: %w", err)
	}
	logf("tigera operator stand-in: defaults written back into Installation default")
	*inst = *patched
	return nil
}

// ensureCalicoComponents creates the other workloads the operator of v1.42.3 renders for a default
// Installation and APIServer (pkg/render/typha.go, kubecontrollers/kube-controllers.go, csi.go,
// apiserver.go), each with its service account and the image of the Calico release from the
// Installation's registry (pkg/components/calico.go): calico-typha and calico-kube-controllers
// Deployments, the csi-node-driver DaemonSet (calico-csi, csi-node-driver-registrar) and, once the
// APIServer "default" exists, calico-apiserver. They have no pod image here: kwok plays them.
func ensureCalicoComponents(ctx context.Context, cs *kubernetes.Clientset, dc dynamic.Interface, registry, release string) error {
	image := func(name string) string { return registry + "calico/" + name + ":" + release }
	type workload struct {
		name       string
		daemon     bool
		containers []v1.Container
	}
	list := []workload{
		{"calico-typha", false, []v1.Container{{Name: "calico-typha", Image: image("typha")}}},
		{"calico-kube-controllers", false, []v1.Container{{Name: "calico-kube-controllers", Image: image("kube-controllers")}}},
		{"csi-node-driver", true, []v1.Container{{Name: "calico-csi", Image: image("csi")},
			{Name: "csi-node-driver-registrar", Image: image("node-driver-registrar")}}},
	}
	apiservers := schema.GroupVersionResource{Group: "operator.tigera.io", Version: "v1", Resource: "apiservers"}
	if _, err := dc.Resource(apiservers).Get(ctx, "default", metav1.GetOptions{}); err == nil {
		list = append(list, workload{"calico-apiserver", false, []v1.Container{{Name: "calico-apiserver", Image: image("apiserver")}}})
	}
	for _, w := range list {
		sa := &v1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: w.name, Namespace: calicoNS}}
		if _, err := cs.CoreV1().ServiceAccounts(calicoNS).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("service account %s: %w", w.name, err)
		}
		labels := map[string]string{"k8s-app": w.name}
		template := v1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: v1.PodSpec{
			ServiceAccountName: w.name, NodeSelector: map[string]string{"kubernetes.io/os": "linux"},
			Tolerations: []v1.Toleration{{Operator: v1.TolerationOpExists}}, Containers: w.containers}}
		meta := metav1.ObjectMeta{Name: w.name, Namespace: calicoNS, Labels: labels}
		var err error
		if w.daemon {
			_, err = cs.AppsV1().DaemonSets(calicoNS).Create(ctx, &appsv1.DaemonSet{ObjectMeta: meta,
				Spec: appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: template}}, metav1.CreateOptions{})
		} else {
			_, err = cs.AppsV1().Deployments(calicoNS).Create(ctx, &appsv1.Deployment{ObjectMeta: meta,
				Spec: appsv1.DeploymentSpec{Replicas: ptr.To(int32(1)), Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: template}},
				metav1.CreateOptions{})
		}
		if err == nil {
			logf("created %s/%s (%s)", calicoNS, w.name, w.containers[0].Image)
		} else if !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("%s: %w", w.name, err)
		}
	}
	return nil
}

// cniConfig is the network configuration the operator gives install-cni (render/node.go).
func cniConfig(mtu int64) string {
	conf := map[string]any{"name": "k8s-pod-network", "cniVersion": "0.3.1", "plugins": []any{
		map[string]any{"type": "calico", "datastore_type": "kubernetes", "mtu": mtu, "nodename_file_optional": false,
			"log_level": "Info", "log_file_path": "/var/log/calico/cni/cni.log",
			"ipam":       map[string]any{"type": "calico-ipam", "assign_ipv4": "true", "assign_ipv6": "false"},
			"policy":     map[string]any{"type": "k8s"},
			"kubernetes": map[string]any{"kubeconfig": "__KUBECONFIG_FILEPATH__"}},
		map[string]any{"type": "bandwidth", "capabilities": map[string]any{"bandwidth": true}},
		map[string]any{"type": "portmap", "snat": true, "capabilities": map[string]any{"portMappings": true}}}}
	data, _ := json.Marshal(conf)
	return string(data)
}

func ensureCalicoNode(ctx context.Context, cs *kubernetes.Clientset, registry, release string, mtu int64) error {
	core := cs.CoreV1()
	if _, err := core.Namespaces().Create(ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: calicoNS}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("namespace %s: %w", calicoNS, err)
	}
	sa := &v1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "calico-node", Namespace: calicoNS}}
	if _, err := core.ServiceAccounts(calicoNS).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("service account calico-node: %w", err)
	}
	labels := map[string]string{"k8s-app": "calico-node"}
	hostPath := func(name, path string) v1.Volume {
		return v1.Volume{Name: name, VolumeSource: v1.VolumeSource{HostPath: &v1.HostPathVolumeSource{Path: path, Type: ptr.To(v1.HostPathDirectoryOrCreate)}}}
	}
	node := func(name string) v1.EnvVar {
		return v1.EnvVar{Name: name, ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}}
	}
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "calico-node", Namespace: calicoNS, Labels: labels},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: v1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: v1.PodSpec{
					ServiceAccountName: "calico-node", HostNetwork: true, PriorityClassName: "system-node-critical",
					NodeSelector: map[string]string{"kubernetes.io/os": "linux"},
					// calico-node tolerates every taint (render/node.go: rmeta.TolerateAll)
					Tolerations: []v1.Toleration{{Operator: v1.TolerationOpExists}},
					InitContainers: []v1.Container{{
						Name: "install-cni", Image: registry + "calico/cni:" + release, Command: []string{"/opt/cni/bin/install"},
						Env: []v1.EnvVar{{Name: "CNI_CONF_NAME", Value: "10-calico.conflist"}, {Name: "SLEEP", Value: "false"},
							{Name: "CNI_NET_DIR", Value: "/etc/cni/net.d"}, {Name: "CNI_NETWORK_CONFIG", Value: cniConfig(mtu)}, node("KUBERNETES_NODE_NAME")},
						VolumeMounts: []v1.VolumeMount{{Name: "cni-bin-dir", MountPath: "/host/opt/cni/bin"}, {Name: "cni-net-dir", MountPath: "/host/etc/cni/net.d"}},
					}},
					Containers: []v1.Container{{
						Name: "calico-node", Image: registry + "calico/node:" + release,
						Env:          []v1.EnvVar{node("NODENAME"), {Name: "DATASTORE_TYPE", Value: "kubernetes"}, {Name: "CALICO_NETWORKING_BACKEND", Value: "bird"}},
						VolumeMounts: []v1.VolumeMount{{Name: "var-run-calico", MountPath: "/var/run/calico"}, {Name: "var-lib-calico", MountPath: "/var/lib/calico"}},
					}},
					Volumes: []v1.Volume{hostPath("cni-bin-dir", "/opt/cni/bin"), hostPath("cni-net-dir", "/etc/cni/net.d"),
						hostPath("var-run-calico", "/var/run/calico"), hostPath("var-lib-calico", "/var/lib/calico")},
				},
			},
		},
	}
	apps := cs.AppsV1().DaemonSets(calicoNS)
	cur, err := apps.Get(ctx, ds.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = apps.Create(ctx, ds, metav1.CreateOptions{})
		if err == nil {
			logf("created daemonset %s/calico-node (%scalico/node:%s)", calicoNS, registry, release)
		}
		return err
	}
	if err != nil {
		return err
	}
	want := ds.Spec.Template.Spec.InitContainers[0].Image + ds.Spec.Template.Spec.Containers[0].Image + cniConfig(mtu)
	have := ""
	if len(cur.Spec.Template.Spec.InitContainers) > 0 && len(cur.Spec.Template.Spec.Containers) > 0 {
		have = cur.Spec.Template.Spec.InitContainers[0].Image + cur.Spec.Template.Spec.Containers[0].Image
		for _, e := range cur.Spec.Template.Spec.InitContainers[0].Env {
			if e.Name == "CNI_NETWORK_CONFIG" {
				have += e.Value
			}
		}
	}
	if have == want {
		return nil
	}
	cur.Spec.Template = ds.Spec.Template
	_, err = apps.Update(ctx, cur, metav1.UpdateOptions{})
	return err
}

// installCNI is calico/cni's install (cni-plugin/pkg/install/install.go): the plugins into the host's
// CNI bin directory, the network configuration (its placeholders filled) and calico-kubeconfig
// (with the pod's token) into the host's CNI configuration directory.
func installCNI() error {
	name := envOr("CNI_CONF_NAME", "10-calico.conflist")
	conf := os.Getenv("CNI_NETWORK_CONFIG")
	if conf == "" {
		return fmt.Errorf("CNI_NETWORK_CONFIG is empty")
	}
	self, err := os.ReadFile("/proc/self/exe")
	if err != nil {
		return err
	}
	for _, p := range []string{"calico", "calico-ipam"} {
		if err := writeAtomic(filepath.Join("/host/opt/cni/bin", p), self, 0o755); err != nil {
			return err
		}
	}
	token, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/token")
	if err != nil {
		return err
	}
	kubeconfig := fmt.Sprintf("apiVersion: v1\nkind: Config\nclusters:\n- name: local\n  cluster:\n    server: https://%s:%s\n"+
		"    certificate-authority: /var/run/secrets/kubernetes.io/serviceaccount/ca.crt\nusers:\n- name: calico\n  user:\n    token: %s\n"+
		"contexts:\n- name: calico-context\n  context:\n    cluster: local\n    user: calico\ncurrent-context: calico-context\n",
		os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT"), strings.TrimSpace(string(token)))
	if err := writeAtomic("/host/etc/cni/net.d/calico-kubeconfig", []byte(kubeconfig), 0o600); err != nil {
		return err
	}
	conf = strings.NewReplacer("__KUBERNETES_NODE_NAME__", os.Getenv("KUBERNETES_NODE_NAME"),
		"__KUBECONFIG_FILEPATH__", "/etc/cni/net.d/calico-kubeconfig", "__CNI_MTU__", envOr("CNI_MTU", "1500")).Replace(conf)
	if !json.Valid([]byte(conf)) {
		return fmt.Errorf("CNI_NETWORK_CONFIG is not valid JSON")
	}
	if err := writeAtomic(filepath.Join("/host/etc/cni/net.d", name), []byte(conf), 0o644); err != nil {
		return err
	}
	logf("CNI plugin installed: /etc/cni/net.d/%s", name)
	return nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func writeAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// readyOf reads the Ready condition of an Installation's status.
func readyOf(inst *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(inst.Object, "status", "conditions")
	for _, c := range conds {
		if m, ok := c.(map[string]any); ok && m["type"] == "Ready" {
			return m["status"] == "True"
		}
	}
	return false
}
