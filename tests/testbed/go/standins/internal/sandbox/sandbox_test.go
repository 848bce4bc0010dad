package sandbox

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

func TestWriteMetaKeepsTheFirst(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "uid-1")
	first := Meta{Name: "a", Namespace: "ns", UID: "uid-1", Labels: map[string]string{"app": "a"}, CreatedAt: time.Unix(100, 0).UTC()}
	if err := WriteMeta(dir, first); err != nil {
		t.Fatal(err)
	}
	if err := WriteMeta(dir, Meta{Name: "b", UID: "uid-1", CreatedAt: time.Unix(200, 0).UTC()}); err != nil {
		t.Fatal(err)
	}
	all, err := List(filepath.Dir(dir))
	if err != nil || len(all) != 1 {
		t.Fatalf("List: %v, %v", all, err)
	}
	if m := all[0].Meta; m.Name != "a" || !m.CreatedAt.Equal(first.CreatedAt) || m.Labels["app"] != "a" {
		t.Errorf("the sandbox's metadata %+v, want the first written", m)
	}
}

func TestListWithoutMeta(t *testing.T) {
	pods := t.TempDir()
	for _, d := range []string{"old/" + StaticRecords, "api/" + APIRecords, "kubelets-only/volumes"} {
		if err := os.MkdirAll(filepath.Join(pods, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	all, err := List(pods)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*Sandbox{}
	for _, s := range all {
		got[s.UID] = s
	}
	if len(got) != 2 || got["old"] == nil || got["api"] == nil {
		t.Fatalf("List: %v, want the two pods with records", all)
	}
	if s := got["old"]; s.ID != ID("old") || s.Meta.UID != "old" || s.Meta.Labels["io.kubernetes.pod.uid"] != "old" || s.Ready() {
		t.Errorf("a sandbox without metadata: %+v", s)
	}
}

func TestAlive(t *testing.T) {
	cmd := exec.Command("sleep", "1000")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	tick := StartTick(pid)
	if tick == 0 || !Alive(pid, tick) {
		t.Fatalf("a running process (pid %d, tick %d) is not alive", pid, tick)
	}
	if Alive(pid, tick+1) {
		t.Errorf("a process with another start tick (a reused pid) counts as the recorded one")
	}
	_ = cmd.Process.Kill()
	// Not reaped yet: a zombie, which has exited.
	deadline := time.Now().Add(5 * time.Second)
	for Alive(pid, tick) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if Alive(pid, tick) {
		t.Errorf("a killed process (a zombie until reaped) counts as alive")
	}
	_ = cmd.Wait()
}
