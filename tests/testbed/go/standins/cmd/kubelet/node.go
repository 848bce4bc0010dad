package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	taintutil "k8s.io/kubernetes/pkg/util/taints"
	"k8s.io/utils/ptr"
)

// syncNode registers the Node (retrying until the API server answers, as the kubelet does), then
// keeps its status every nodeStatusUpdateFrequency and its Lease every renew interval (a quarter of
// nodeLeaseDurationSeconds), as pkg/kubelet/kubelet_node_status.go and pkg/kubelet/nodelease do.
func (k *kubelet) syncNode(ctx context.Context) {
	for ctx.Err() == nil {
		if err := k.register(ctx); err != nil {
			k.logf("unable to register node %q with API server: %v", k.nodeName, err)
			sleep(ctx, 2*time.Second)
			continue
		}
		break
	}
	statusEvery := k.config.NodeStatusUpdateFrequency.Duration
	if statusEvery <= 0 {
		statusEvery = 10 * time.Second
	}
	leaseEvery := time.Duration(k.config.NodeLeaseDurationSeconds) * time.Second / 4
	if leaseEvery <= 0 {
		leaseEvery = 10 * time.Second
	}
	nextStatus, nextLease := time.Now(), time.Now()
	for ctx.Err() == nil {
		if !time.Now().Before(nextStatus) {
			if err := k.updateStatus(ctx); err != nil {
				k.logf("error updating node status: %v", err)
			}
			nextStatus = time.Now().Add(statusEvery)
		}
		if !time.Now().Before(nextLease) {
			if err := k.renewLease(ctx); err != nil {
				k.logf("failed to update lease: %v", err)
			}
			nextLease = time.Now().Add(leaseEvery)
		}
		sleep(ctx, time.Second)
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func (k *kubelet) initialNode() (*v1.Node, error) {
	labels := map[string]string{
		v1.LabelHostname: string(k.nodeName), v1.LabelOSStable: runtime.GOOS, v1.LabelArchStable: runtime.GOARCH,
		"beta.kubernetes.io/os": runtime.GOOS, "beta.kubernetes.io/arch": runtime.GOARCH,
	}
	for key, val := range k.flags.nodeLabels {
		labels[key] = val
	}
	node := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: string(k.nodeName), Labels: labels,
		Annotations: map[string]string{"volumes.kubernetes.io/controller-managed-attach-detach": "true"}}}
	taints := append([]string{}, k.flags.registerWithTaints...)
	for _, t := range k.config.RegisterWithTaints {
		taints = append(taints, fmt.Sprintf("%s=%s:%s", t.Key, t.Value, t.Effect))
	}
	if len(taints) > 0 {
		parsed, _, err := taintutil.ParseTaints(taints)
		if err != nil {
			return nil, err
		}
		node.Spec.Taints = parsed
	}
	// Taints are the node's own only at registration: NodeRestriction refuses a kubelet's later change
	// of them; the node lifecycle controller keeps the not-ready taints in line with the conditions.
	return node, nil
}

func (k *kubelet) register(ctx context.Context) error {
	node, err := k.initialNode()
	if err != nil {
		return err
	}
	// The first status goes with the registration, as the kubelet registers a Node with its status set
	// (pkg/kubelet/kubelet_node_status.go: registerWithAPIServer after setNodeStatus).
	if err := k.fillStatus(ctx, node); err != nil {
		return err
	}
	nodes := k.client.CoreV1().Nodes()
	cur, err := nodes.Create(ctx, node, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		cur, err = nodes.Get(ctx, string(k.nodeName), metav1.GetOptions{})
	}
	if err != nil {
		return err
	}
	k.mu.Lock()
	k.nodeUID = cur.UID
	k.mu.Unlock()
	k.logf("successfully registered node %s", k.nodeName)
	return nil
}

// readiness asks the runtime, as the kubelet's runtime-state check does: Ready needs RuntimeReady and
// NetworkReady (pkg/kubelet/kubelet.go: updateRuntimeUp, runtime_state.go).
func (k *kubelet) readiness(ctx context.Context) (bool, string) {
	st, err := k.runtime.Status(ctx, false)
	if err != nil {
		return false, fmt.Sprintf("container runtime status check may not have completed yet: %v", err)
	}
	var problems []string
	for _, c := range st.GetStatus().GetConditions() {
		// The kubelet requires these two; other conditions a runtime reports do not make a node unready.
		if (c.Type == runtimeapi.RuntimeReady || c.Type == runtimeapi.NetworkReady) && !c.Status {
			problems = append(problems, fmt.Sprintf("%s=false reason:%s message:%s", c.Type, c.Reason, c.Message))
		}
	}
	if len(problems) > 0 {
		return false, "container runtime network not ready: " + strings.Join(problems, ", ")
	}
	return true, "kubelet is posting ready status"
}

func (k *kubelet) updateStatus(ctx context.Context) error {
	nodes := k.client.CoreV1().Nodes()
	node, err := nodes.Get(ctx, string(k.nodeName), metav1.GetOptions{})
	if apierrors.IsNotFound(err) { // deleted (kubectl delete node): register again, as the kubelet does
		return k.register(ctx)
	}
	if err != nil {
		return err
	}
	k.mu.Lock()
	k.nodeUID = node.UID
	k.mu.Unlock()
	if err := k.fillStatus(ctx, node); err != nil {
		return err
	}
	_, err = nodes.UpdateStatus(ctx, node, metav1.UpdateOptions{})
	return err
}

// fillStatus sets the node's status as the kubelet's status setters do (pkg/kubelet/nodestatus):
// conditions, capacity, addresses, daemon endpoints, system info.
func (k *kubelet) fillStatus(ctx context.Context, node *v1.Node) error {
	ready, message := k.readiness(ctx)
	rtv, err := k.runtime.Version(ctx, "0.1.0")
	if err != nil {
		return err
	}
	now := metav1.Now()
	setCondition(node, v1.NodeCondition{Type: v1.NodeMemoryPressure, Status: v1.ConditionFalse, Reason: "KubeletHasSufficientMemory",
		Message: "kubelet has sufficient memory available"}, now)
	setCondition(node, v1.NodeCondition{Type: v1.NodeDiskPressure, Status: v1.ConditionFalse, Reason: "KubeletHasNoDiskPressure",
		Message: "kubelet has no disk pressure"}, now)
	setCondition(node, v1.NodeCondition{Type: v1.NodePIDPressure, Status: v1.ConditionFalse, Reason: "KubeletHasSufficientPID",
		Message: "kubelet has sufficient PID available"}, now)
	readyCond := v1.NodeCondition{Type: v1.NodeReady, Status: v1.ConditionTrue, Reason: "KubeletReady", Message: message}
	if !ready {
		readyCond.Status, readyCond.Reason = v1.ConditionFalse, "KubeletNotReady"
	}
	setCondition(node, readyCond, now)
	capacity := v1.ResourceList{
		v1.ResourceCPU:              *resource.NewQuantity(int64(onlineCPUs()), resource.DecimalSI),
		v1.ResourceMemory:           *resource.NewQuantity(memTotal(), resource.BinarySI),
		v1.ResourcePods:             *resource.NewQuantity(int64(k.config.MaxPods), resource.DecimalSI),
		v1.ResourceEphemeralStorage: *resource.NewQuantity(diskSize("/var/lib/kubelet"), resource.BinarySI),
	}
	node.Status.Capacity, node.Status.Allocatable = capacity, capacity.DeepCopy()
	node.Status.Addresses = []v1.NodeAddress{{Type: v1.NodeInternalIP, Address: k.nodeIP.String()}, {Type: v1.NodeHostName, Address: string(k.nodeName)}}
	node.Status.DaemonEndpoints.KubeletEndpoint.Port = k.config.Port
	uname := syscall.Utsname{}
	_ = syscall.Uname(&uname)
	node.Status.NodeInfo = v1.NodeSystemInfo{
		MachineID: strings.TrimSpace(readFile("/etc/machine-id")), SystemUUID: strings.TrimSpace(readFile("/sys/class/dmi/id/product_uuid")),
		BootID: strings.TrimSpace(readFile("/proc/sys/kernel/random/boot_id")), KernelVersion: utsString(uname.Release[:]),
		OSImage: osImage(), ContainerRuntimeVersion: rtv.RuntimeName + "://" + strings.TrimPrefix(rtv.RuntimeVersion, "v"),
		KubeletVersion: "v" + k.version, OperatingSystem: runtime.GOOS, Architecture: runtime.GOARCH,
	}
	return nil
}

func setCondition(node *v1.Node, c v1.NodeCondition, now metav1.Time) {
	c.LastHeartbeatTime = now
	for i := range node.Status.Conditions {
		old := &node.Status.Conditions[i]
		if old.Type == c.Type {
			c.LastTransitionTime = old.LastTransitionTime
			if old.Status != c.Status {
				c.LastTransitionTime = now
			}
			*old = c
			return
		}
	}
	c.LastTransitionTime = now
	node.Status.Conditions = append(node.Status.Conditions, c)
}

// renewLease keeps kube-node-lease/<node> as pkg/kubelet/nodelease (component-helpers' lease
// controller) does: holder the node, owned by it, duration nodeLeaseDurationSeconds.
func (k *kubelet) renewLease(ctx context.Context) error {
	leases := k.client.CoordinationV1().Leases(v1.NamespaceNodeLease)
	now := metav1.NewMicroTime(time.Now())
	lease, err := leases.Get(ctx, string(k.nodeName), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		k.mu.Lock()
		uid := k.nodeUID
		k.mu.Unlock()
		lease = &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: string(k.nodeName), Namespace: v1.NamespaceNodeLease,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: string(k.nodeName), UID: uid}}},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(string(k.nodeName)), LeaseDurationSeconds: ptr.To(k.config.NodeLeaseDurationSeconds), RenewTime: &now}}
		_, err = leases.Create(ctx, lease, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	lease.Spec.RenewTime = &now
	_, err = leases.Update(ctx, lease, metav1.UpdateOptions{})
	return err
}

func readFile(path string) string {
	data, _ := os.ReadFile(path)
	return string(data)
}

func utsString(b []int8) string {
	out := make([]byte, 0, len(b))
	for _, c := range b {
		if c == 0 {
			break
		}
		out = append(out, byte(c))
	}
	return string(out)
}

// onlineCPUs counts /sys/devices/system/cpu/online (the testbed shapes it per host).
func onlineCPUs() int {
	n := 0
	for _, part := range strings.Split(strings.TrimSpace(readFile("/sys/devices/system/cpu/online")), ",") {
		lo, hi, found := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			continue
		}
		b := a
		if found {
			if b, err = strconv.Atoi(hi); err != nil {
				continue
			}
		}
		n += b - a + 1
	}
	if n == 0 {
		n = runtime.NumCPU()
	}
	return n
}

// memTotal is MemTotal of /proc/meminfo in bytes (shaped per host by the testbed).
func memTotal() int64 {
	sc := bufio.NewScanner(strings.NewReader(readFile("/proc/meminfo")))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "MemTotal:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024
		}
	}
	return 0
}

func diskSize(path string) int64 {
	var st syscall.Statfs_t
	if syscall.Statfs(path, &st) != nil {
		return 0
	}
	return int64(st.Blocks) * st.Bsize
}

func osImage() string {
	sc := bufio.NewScanner(strings.NewReader(readFile("/etc/os-release")))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return "Linux"
}
