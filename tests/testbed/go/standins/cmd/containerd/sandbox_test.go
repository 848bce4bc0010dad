package main

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc"
	internalapi "k8s.io/cri-api/pkg/apis"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
	criclient "k8s.io/cri-client/pkg"
	kubeadmruntime "k8s.io/kubernetes/cmd/kubeadm/app/util/runtime"

	"mlplat.test/testbed/standins/internal/sandbox"
)

// testPod is one pod directory of a test's pods dir, as the kubelet stand-in leaves it.
type testPod struct {
	uid       string
	records   string // sandbox.StaticRecords, sandbox.APIRecords or "" (no records: not a sandbox)
	meta      *sandbox.Meta
	container string
	leader    *exec.Cmd // the container's process, a session leader; nil: a record of an exited one
}

// TestMain also plays a process of a container that moves into a process group of its own (as a
// shell with job control puts a background job): a kill of the container's process group misses it.
func TestMain(m *testing.M) {
	if os.Getenv("MLPLAT_TEST_OWN_GROUP") == "1" {
		if err := syscall.Setpgid(0, 0); err != nil {
			os.Exit(2)
		}
		sleep, err := exec.LookPath("sleep")
		if err == nil {
			err = syscall.Exec(sleep, []string{"sleep", "1000"}, os.Environ())
		}
		os.Exit(3)
	}
	os.Exit(m.Run())
}

// startContainer starts a container's process as the kubelet stand-in starts one (its own session):
// a shell that ignores SIGTERM (only a SIGKILL ends it at once), with a child in its process group and
// one in a process group of its own.
func startContainer(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", `trap '' TERM; "$HELPER" & sleep 1000; wait`)
	cmd.Env = append(os.Environ(), "HELPER="+os.Args[0], "MLPLAT_TEST_OWN_GROUP=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		for _, p := range session(cmd.Process.Pid) {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		<-done
	})
	// Wait until both sleeps run.
	deadline := time.Now().Add(5 * time.Second)
	for len(session(cmd.Process.Pid)) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("the container's processes did not start: session %v", session(cmd.Process.Pid))
		}
		time.Sleep(10 * time.Millisecond)
	}
	return cmd
}

// session lists the live (not zombie) processes of the session leader leads.
func session(leader int) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(data)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) > 3 && f[3] == strconv.Itoa(leader) && f[0] != "Z" {
			out = append(out, pid)
		}
	}
	return out
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// makePods lays the pods out under dir.
func makePods(t *testing.T, dir string, pods []*testPod) {
	t.Helper()
	for _, p := range pods {
		podDir := filepath.Join(dir, p.uid)
		// A volume: the kubelet's, which the runtime leaves alone.
		if err := os.MkdirAll(filepath.Join(podDir, "volumes", "kubernetes.io~empty-dir", "data"), 0o755); err != nil {
			t.Fatal(err)
		}
		if p.meta != nil {
			if err := sandbox.WriteMeta(podDir, *p.meta); err != nil {
				t.Fatal(err)
			}
		}
		if p.records == "" {
			continue
		}
		rec := map[string]any{"pid": 0, "startTick": 0, "program": "/bin/sh", "restarts": 0}
		if p.leader != nil {
			rec["pid"], rec["startTick"] = p.leader.Process.Pid, sandbox.StartTick(p.leader.Process.Pid)
		} else {
			// A process that has exited: its pid is free again (or another process's, with another start).
			exited := exec.Command("/bin/true")
			if err := exited.Run(); err != nil {
				t.Fatal(err)
			}
			rec["pid"], rec["startTick"] = exited.Process.Pid, 1
		}
		writeJSON(t, filepath.Join(podDir, p.records, p.container+".json"), rec)
	}
}

// serveCRI runs the stand-in's CRI server over podsDir on a socket of the test's own.
func serveCRI(t *testing.T, podsDir string) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "containerd.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	c := &cri{version: "2.3.4", podsDir: podsDir}
	runtime.RegisterRuntimeServiceServer(srv, c)
	// kubeadm's client connects to both
	runtime.RegisterImageServiceServer(srv, newImageService(t.TempDir(), "", filepath.Join(t.TempDir(), "images"), "", "2.3.4"))
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return "unix://" + sock
}

func meta(name, namespace, uid string, extra map[string]string, created time.Time) *sandbox.Meta {
	labels := map[string]string{"io.kubernetes.pod.name": name, "io.kubernetes.pod.namespace": namespace, "io.kubernetes.pod.uid": uid}
	for k, v := range extra {
		labels[k] = v
	}
	return &sandbox.Meta{Name: name, Namespace: namespace, UID: uid, Labels: labels,
		Annotations: map[string]string{"kubernetes.io/config.source": "file"}, CreatedAt: created}
}

// fixture: etcd (a static pod, running), a helper pod whose container has exited (an API pod), and a
// pod directory without records (not the stand-in's: no sandbox).
func fixture(t *testing.T) (string, []*testPod) {
	podsDir := t.TempDir()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	pods := []*testPod{
		{uid: "0d6a4f2e-etcd", records: sandbox.StaticRecords, container: "etcd", leader: startContainer(t),
			meta: meta("etcd-node-1", "kube-system", "0d6a4f2e-etcd", map[string]string{"component": "etcd", "tier": "control-plane"}, t0)},
		{uid: "7c1b9e55-helper", records: sandbox.APIRecords, container: "helper",
			meta: meta("init-pvc-1", "openebs", "7c1b9e55-helper", nil, t0.Add(time.Minute))},
		{uid: "99999999-norecords"},
	}
	makePods(t, podsDir, pods)
	return podsDir, pods
}

func runtimeClient(t *testing.T, endpoint string) internalapi.RuntimeService {
	t.Helper()
	rs, err := criclient.NewRemoteRuntimeService(context.Background(), endpoint, 5*time.Second, noop.NewTracerProvider(), false)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func TestListPodSandbox(t *testing.T) {
	podsDir, pods := fixture(t)
	rs := runtimeClient(t, serveCRI(t, podsDir))
	ctx := context.Background()

	all, err := rs.ListPodSandbox(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 {
		t.Fatalf("ListPodSandbox: %d sandboxes, want 2 (a pod directory without records is none): %v", len(all), all)
	}
	etcd, helper := all[0], all[1] // in creation order
	if etcd.Id != sandbox.ID(pods[0].uid) || len(etcd.Id) != 64 {
		t.Errorf("etcd's sandbox id %q, want %q", etcd.Id, sandbox.ID(pods[0].uid))
	}
	if m := etcd.Metadata; m.Name != "etcd-node-1" || m.Namespace != "kube-system" || m.Uid != pods[0].uid || m.Attempt != 0 {
		t.Errorf("etcd's sandbox metadata %v", m)
	}
	if etcd.Labels["component"] != "etcd" || etcd.Labels["io.kubernetes.pod.namespace"] != "kube-system" || etcd.Labels["io.kubernetes.pod.uid"] != pods[0].uid {
		t.Errorf("etcd's sandbox labels %v", etcd.Labels)
	}
	if etcd.Annotations["kubernetes.io/config.source"] != "file" {
		t.Errorf("etcd's sandbox annotations %v", etcd.Annotations)
	}
	if etcd.CreatedAt != time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano() {
		t.Errorf("etcd's sandbox created at %d", etcd.CreatedAt)
	}
	if etcd.State != runtime.PodSandboxState_SANDBOX_READY {
		t.Errorf("etcd's sandbox (its process runs) is %v, want READY", etcd.State)
	}
	if helper.State != runtime.PodSandboxState_SANDBOX_NOTREADY || helper.Metadata.Name != "init-pvc-1" {
		t.Errorf("the helper's sandbox (its process exited): %v", helper)
	}

	ids := func(f *runtime.PodSandboxFilter) []string {
		t.Helper()
		got, err := rs.ListPodSandbox(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, s := range got {
			out = append(out, s.Metadata.Name)
		}
		return out
	}
	cases := []struct {
		name   string
		filter *runtime.PodSandboxFilter
		want   string
	}{
		{"label", &runtime.PodSandboxFilter{LabelSelector: map[string]string{"io.kubernetes.pod.namespace": "kube-system"}}, "etcd-node-1"},
		{"labels all match", &runtime.PodSandboxFilter{LabelSelector: map[string]string{"io.kubernetes.pod.namespace": "kube-system", "component": "kube-apiserver"}}, ""},
		{"ready", &runtime.PodSandboxFilter{State: &runtime.PodSandboxStateValue{State: runtime.PodSandboxState_SANDBOX_READY}}, "etcd-node-1"},
		{"not ready", &runtime.PodSandboxFilter{State: &runtime.PodSandboxStateValue{State: runtime.PodSandboxState_SANDBOX_NOTREADY}}, "init-pvc-1"},
		{"id", &runtime.PodSandboxFilter{Id: helper.Id}, "init-pvc-1"},
		{"id prefix", &runtime.PodSandboxFilter{Id: etcd.Id[:12]}, "etcd-node-1"},
		{"unknown id", &runtime.PodSandboxFilter{Id: "ffff" + etcd.Id}, ""},
	}
	for _, c := range cases {
		if got := strings.Join(ids(c.filter), ","); got != c.want {
			t.Errorf("filter %s: %q, want %q", c.name, got, c.want)
		}
	}
}

func TestStopPodSandboxKillsAtOnceAndKeepsTheSandbox(t *testing.T) {
	podsDir, pods := fixture(t)
	rs := runtimeClient(t, serveCRI(t, podsDir))
	leader := pods[0].leader.Process.Pid
	members := session(leader)
	if len(members) < 3 {
		t.Fatalf("the container's session %v", members)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second) // kubeadm's timeout
	defer cancel()
	start := time.Now()
	// By a prefix of the id, as crictl allows.
	if err := rs.StopPodSandbox(ctx, sandbox.ID(pods[0].uid)[:16]); err != nil {
		t.Fatalf("StopPodSandbox: %v", err)
	}
	// SIGKILL at once: a container that ignores SIGTERM is gone without a grace period.
	if d := time.Since(start); d > time.Second {
		t.Errorf("StopPodSandbox took %s", d)
	}
	if left := session(leader); len(left) != 0 {
		t.Errorf("processes of the stopped container still run: %v (of %v)", left, members)
	}
	// Stopped, not removed: listed NOTREADY, its records kept.
	got, err := rs.ListPodSandbox(context.Background(), &runtime.PodSandboxFilter{Id: sandbox.ID(pods[0].uid)})
	if err != nil || len(got) != 1 || got[0].State != runtime.PodSandboxState_SANDBOX_NOTREADY {
		t.Errorf("after StopPodSandbox: %v, %v; want the sandbox, NOTREADY", got, err)
	}
	if _, err := os.Stat(filepath.Join(podsDir, pods[0].uid, sandbox.StaticRecords, "etcd.json")); err != nil {
		t.Errorf("StopPodSandbox removed the record: %v", err)
	}
	// Idempotent, and an unknown id is no error (containerd's sandbox_stop.go).
	for _, id := range []string{sandbox.ID(pods[0].uid), sandbox.ID("no-such-pod")} {
		if err := rs.StopPodSandbox(context.Background(), id); err != nil {
			t.Errorf("StopPodSandbox(%s): %v", id, err)
		}
	}
	if err := rs.StopPodSandbox(context.Background(), ""); err == nil {
		t.Errorf("StopPodSandbox of an empty id: no error")
	}
}

func TestRemovePodSandboxStopsFirst(t *testing.T) {
	podsDir, pods := fixture(t)
	rs := runtimeClient(t, serveCRI(t, podsDir))
	leader := pods[0].leader.Process.Pid
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	// A running sandbox: RemovePodSandbox stops it forcibly first (sandbox_remove.go).
	if err := rs.RemovePodSandbox(ctx, sandbox.ID(pods[0].uid)); err != nil {
		t.Fatalf("RemovePodSandbox: %v", err)
	}
	if left := session(leader); len(left) != 0 {
		t.Errorf("processes of the removed sandbox still run: %v", left)
	}
	for _, p := range []string{sandbox.StaticRecords, sandbox.MetaFile} {
		if _, err := os.Stat(filepath.Join(podsDir, pods[0].uid, p)); !os.IsNotExist(err) {
			t.Errorf("%s of the removed sandbox: %v, want it gone", p, err)
		}
	}
	if _, err := os.Stat(filepath.Join(podsDir, pods[0].uid, "volumes", "kubernetes.io~empty-dir", "data")); err != nil {
		t.Errorf("the pod's volume (the kubelet's) went with the sandbox: %v", err)
	}
	got, err := rs.ListPodSandbox(context.Background(), nil)
	if err != nil || len(got) != 1 || got[0].Metadata.Name != "init-pvc-1" {
		t.Errorf("after RemovePodSandbox: %v, %v; want only the helper's sandbox", got, err)
	}
	if err := rs.RemovePodSandbox(context.Background(), sandbox.ID(pods[0].uid)); err != nil {
		t.Errorf("RemovePodSandbox of a removed sandbox: %v, want none (containerd's sandbox_remove.go)", err)
	}
}

// TestKubeadmResetRemovesTheSandboxes runs kubeadm v1.36.3's own runtime client, as its reset's
// cleanup-node phase does (cmd/kubeadm/app/cmd/phases/reset/cleanupnode.go removeContainers), against
// the stand-in.
func TestKubeadmResetRemovesTheSandboxes(t *testing.T) {
	podsDir, pods := fixture(t)
	rt := kubeadmruntime.NewContainerRuntime(serveCRI(t, podsDir))
	if err := rt.Connect(); err != nil {
		t.Fatal(err)
	}
	defer rt.Close(context.Background())
	ids, err := rt.ListKubeContainers()
	if err != nil {
		t.Fatalf("ListKubeContainers: %v", err)
	}
	want := []string{sandbox.ID(pods[0].uid), sandbox.ID(pods[1].uid)}
	sort.Strings(ids)
	sort.Strings(want)
	if strings.Join(ids, ",") != strings.Join(want, ",") {
		t.Fatalf("ListKubeContainers: %v, want %v", ids, want)
	}
	leader := pods[0].leader.Process.Pid
	if err := rt.RemoveContainers(ids); err != nil {
		t.Fatalf("RemoveContainers: %v", err)
	}
	if left := session(leader); len(left) != 0 {
		t.Errorf("etcd's processes still run after kubeadm's RemoveContainers: %v", left)
	}
	for _, p := range pods[:2] {
		if _, err := os.Stat(filepath.Join(podsDir, p.uid, p.records)); !os.IsNotExist(err) {
			t.Errorf("records of %s: %v, want them gone", p.uid, err)
		}
	}
	if ids, err := rt.ListKubeContainers(); err != nil || len(ids) != 0 {
		t.Errorf("ListKubeContainers after the reset: %v, %v; want none", ids, err)
	}
}
