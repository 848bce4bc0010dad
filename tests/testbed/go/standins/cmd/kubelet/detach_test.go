package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"mlplat.test/testbed/standins/internal/sandbox"
)

// TestMain also plays a kubelet that starts kwok or a container and then waits to be stopped
// (MLPLAT_TEST_KUBELET=kwok|container): it prints the child's pid and ends on SIGTERM, as the kubelet
// stand-in's main returns when its context ends.
func TestMain(m *testing.M) {
	switch os.Getenv("MLPLAT_TEST_KUBELET") {
	case "":
		os.Exit(m.Run())
	case "kwok":
		ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM)
		defer cancel()
		cmd := kwokCommand(ctx, os.Getenv("MLPLAT_TEST_KWOK"), "/nonexistent/kwok.yaml", os.TempDir())
		if err := cmd.Start(); err != nil {
			os.Exit(2)
		}
		fmt.Println(cmd.Process.Pid)
		<-ctx.Done()
	case "container":
		ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM)
		defer cancel()
		cmd := exec.Command("sleep", "1000")
		if err := startDetached(cmd); err != nil {
			os.Exit(2)
		}
		fmt.Println(cmd.Process.Pid)
		<-ctx.Done()
	}
}

// kubeletWith starts the test binary as a kubelet (in a process group of its own) and returns it
// with the pid and start tick of the child it started.
func kubeletWith(t *testing.T, role string, env ...string) (*exec.Cmd, int, uint64) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(append(os.Environ(), "MLPLAT_TEST_KUBELET="+role), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	pid, perr := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || perr != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("the kubelet's child: %q, %v", line, err)
	}
	tick := sandbox.StartTick(pid)
	t.Cleanup(func() {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd, pid, tick
}

func waitGone(pid int, tick uint64, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if !sandbox.Alive(pid, tick) {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// kwok is the kubelet's part: it ends when the kubelet is stopped (SIGTERM to its main process, as
// `systemctl stop kubelet` does) and when the kubelet dies without a word (SIGKILL).
func TestKwokEndsWithTheKubelet(t *testing.T) {
	fake := filepath.Join(t.TempDir(), "kwok")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\nexec sleep 1000\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			k, pid, tick := kubeletWith(t, "kwok", "MLPLAT_TEST_KWOK="+fake)
			if !sandbox.Alive(pid, tick) {
				t.Fatalf("kwok (pid %d) is not running", pid)
			}
			_ = k.Process.Signal(sig)
			_ = k.Wait()
			if !waitGone(pid, tick, 5*time.Second) {
				t.Errorf("kwok (pid %d) still runs after the kubelet got %s and ended", pid, sig)
			}
		})
	}
}

// A container's process outlives the kubelet, even a stop that signals the kubelet's whole process
// group: it is the runtime's to stop (StopPodSandbox), as containerd keeps containers running when the
// kubelet stops.
func TestContainerOutlivesTheKubelet(t *testing.T) {
	k, pid, tick := kubeletWith(t, "container")
	_ = syscall.Kill(-k.Process.Pid, syscall.SIGTERM)
	_ = k.Wait()
	if waitGone(pid, tick, time.Second) {
		t.Fatalf("the container's process (pid %d) ended with the kubelet", pid)
	}
}

func TestSandboxMeta(t *testing.T) {
	pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "kube-apiserver-node-1", Namespace: "kube-system", UID: "5f0c",
		Labels:      map[string]string{"component": "kube-apiserver", "tier": "control-plane"},
		Annotations: map[string]string{"kubernetes.io/config.hash": "5f0c", "kubernetes.io/config.source": "file"}}}
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600))
	m := sandboxMeta(pod, created)
	if m.Name != pod.Name || m.Namespace != "kube-system" || m.UID != "5f0c" || m.Attempt != 0 || !m.CreatedAt.Equal(created) {
		t.Errorf("sandbox metadata %+v", m)
	}
	want := map[string]string{"component": "kube-apiserver", "tier": "control-plane", "io.kubernetes.pod.name": pod.Name,
		"io.kubernetes.pod.namespace": "kube-system", "io.kubernetes.pod.uid": "5f0c"}
	if fmt.Sprint(m.Labels) != fmt.Sprint(want) {
		t.Errorf("sandbox labels %v, want %v", m.Labels, want)
	}
	if fmt.Sprint(m.Annotations) != fmt.Sprint(pod.Annotations) {
		t.Errorf("sandbox annotations %v, want the pod's", m.Annotations)
	}
	if _, ok := pod.Labels["io.kubernetes.pod.uid"]; ok {
		t.Errorf("sandboxMeta changed the pod's labels")
	}
}
