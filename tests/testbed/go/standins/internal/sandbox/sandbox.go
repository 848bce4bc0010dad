// Package sandbox is what the kubelet stand-in and the containerd stand-in share about the pods the
// kubelet stand-in runs as host processes: where their records live, the pod's metadata the CRI
// reports for its sandbox, and how a recorded process is told alive and is stopped.
//
// A pod the kubelet stand-in runs has a directory /var/lib/kubelet/pods/<uid>/ with
//   - mlplat-standin/<container>.json (a static pod) or mlplat-standin-api/<container>.json (an API
//     pod): one record per container started, {"pid": ..., "startTick": ...} and more;
//   - mlplat-standin-sandbox.json: the sandbox's metadata (Meta), written when the pod's first
//     container starts, as the kubelet creates a pod's sandbox before its containers.
//
// The containerd stand-in reports each such pod as a pod sandbox and stops and removes it.
package sandbox

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	// PodsDir is the kubelet's pods directory (its root directory's pods/).
	PodsDir = "/var/lib/kubelet/pods"
	// StaticRecords and APIRecords are the record directories of a static pod and of an API pod,
	// inside the pod's directory.
	StaticRecords = "mlplat-standin"
	APIRecords    = "mlplat-standin-api"
	// MetaFile holds the sandbox's Meta, inside the pod's directory (not in a record directory: the
	// kubelet stand-in takes every *.json there for a container record).
	MetaFile = "mlplat-standin-sandbox.json"
)

// Meta is what the kubelet puts in a pod's PodSandboxConfig and the runtime reports back for the
// sandbox (pkg/kubelet/kuberuntime/kuberuntime_sandbox.go generatePodSandboxConfig: the metadata, the
// labels of newPodLabels, the annotations of newPodAnnotations).
type Meta struct {
	Name        string            `json:"name"`
	Namespace   string            `json:"namespace"`
	UID         string            `json:"uid"`
	Attempt     uint32            `json:"attempt"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	CreatedAt   time.Time         `json:"createdAt"`
}

// WriteMeta writes the sandbox's metadata into podDir unless it is there already: a sandbox is made
// once, and what it reports does not change with later edits of the pod.
func WriteMeta(podDir string, m Meta) error {
	path := filepath.Join(podDir, MetaFile)
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	if err := os.MkdirAll(podDir, 0o755); err != nil {
		return err
	}
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// ID is the sandbox id of the pod with this uid: stable (the same for every reader, across restarts of
// either stand-in) and shaped as containerd's, 64 hex digits.
func ID(uid string) string {
	sum := sha256.Sum256([]byte("mlplat-standin-sandbox:" + uid))
	return hex.EncodeToString(sum[:])
}

// Process is a recorded container process.
type Process struct {
	Container string // the record's name: the container's
	PID       int    `json:"pid"`
	StartTick uint64 `json:"startTick"`
}

// Alive reports whether the recorded process still runs (not a zombie, and not another process that
// was given the same pid since).
func (p Process) Alive() bool { return Alive(p.PID, p.StartTick) }

// Sandbox is one pod of the kubelet stand-in, as found on disk.
type Sandbox struct {
	ID        string
	UID       string
	Dir       string // /var/lib/kubelet/pods/<uid>
	Meta      Meta
	Processes []Process
}

// Ready reports whether a container process of the sandbox lives.
func (s *Sandbox) Ready() bool {
	for _, p := range s.Processes {
		if p.Alive() {
			return true
		}
	}
	return false
}

// List finds the sandboxes under podsDir: every pod directory with a record directory or the
// sandbox's metadata.
func List(podsDir string) ([]*Sandbox, error) {
	entries, err := os.ReadDir(podsDir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []*Sandbox
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if s, ok := read(filepath.Join(podsDir, e.Name())); ok {
			out = append(out, s)
		}
	}
	return out, nil
}

func read(dir string) (*Sandbox, bool) {
	uid := filepath.Base(dir)
	s := &Sandbox{ID: ID(uid), UID: uid, Dir: dir}
	found := false
	for _, rd := range []string{StaticRecords, APIRecords} {
		if st, err := os.Stat(filepath.Join(dir, rd)); err != nil || !st.IsDir() {
			continue
		}
		found = true
		files, _ := filepath.Glob(filepath.Join(dir, rd, "*.json"))
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			p := Process{Container: strings.TrimSuffix(filepath.Base(f), ".json")}
			if json.Unmarshal(data, &p) != nil {
				continue
			}
			s.Processes = append(s.Processes, p)
		}
	}
	if data, err := os.ReadFile(filepath.Join(dir, MetaFile)); err == nil && json.Unmarshal(data, &s.Meta) == nil {
		found = true
	} else {
		// Records written before the kubelet stand-in kept the metadata: the uid is all there is.
		s.Meta = Meta{UID: uid, Labels: map[string]string{"io.kubernetes.pod.uid": uid}}
		if st, err := os.Stat(dir); err == nil {
			s.Meta.CreatedAt = st.ModTime()
		}
	}
	return s, found
}

// Stop ends every process of the sandbox at once with SIGKILL, as containerd's StopPodSandbox stops a
// sandbox's containers (stopContainer with timeout 0: no stop signal, SIGKILL to the task), and waits
// until they have exited or ctx ends. A container is a session of its own (the kubelet stand-in starts
// each with setsid), so every process of that session is killed, as the end of a container's pid
// namespace ends all of its processes.
func (s *Sandbox) Stop(ctx context.Context) error {
	var victims []Process
	var sessions map[int][]Process
	for _, p := range s.Processes {
		if !p.Alive() {
			continue
		}
		if sessions == nil {
			sessions = sessionsByLeader() // one look through /proc for the whole sandbox
		}
		victims = append(victims, p)
		for _, m := range sessions[p.PID] {
			if m.PID != p.PID {
				victims = append(victims, m)
			}
		}
		_ = syscall.Kill(-p.PID, syscall.SIGKILL)
	}
	for _, v := range victims {
		if Alive(v.PID, v.StartTick) {
			_ = syscall.Kill(v.PID, syscall.SIGKILL)
		}
	}
	for {
		left := ""
		for _, v := range victims {
			if Alive(v.PID, v.StartTick) {
				left = fmt.Sprintf("%s (pid %d)", v.Container, v.PID)
				break
			}
		}
		if left == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("an error occurs during waiting for container %s of sandbox %s to be killed: %w", left, s.ID, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Remove deletes the sandbox's records and metadata (the runtime's state of it); the rest of the pod's
// directory (volumes) is the kubelet's.
func (s *Sandbox) Remove() error {
	var errs []error
	for _, p := range []string{filepath.Join(s.Dir, StaticRecords), filepath.Join(s.Dir, APIRecords), filepath.Join(s.Dir, MetaFile)} {
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// stat is what /proc/PID/stat tells of a process.
type stat struct {
	state     string
	session   int
	startTick uint64
}

func readStat(pid int) (stat, bool) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return stat{}, false
	}
	// The fields after the parenthesised command name: state (3), ppid, pgrp, session (6), ...,
	// starttime (22).
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return stat{}, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return stat{}, false
	}
	session, _ := strconv.Atoi(f[3])
	tick, _ := strconv.ParseUint(f[19], 10, 64)
	return stat{state: f[0], session: session, startTick: tick}, true
}

// StartTick is the process's start time in clock ticks after boot (0 when it does not exist).
func StartTick(pid int) uint64 {
	st, _ := readStat(pid)
	return st.startTick
}

// Alive reports whether pid runs and is the process that started at startTick (a zombie has exited).
func Alive(pid int, startTick uint64) bool {
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		return false
	}
	st, ok := readStat(pid)
	return ok && st.state != "Z" && st.startTick == startTick
}

// sessionsByLeader lists the live processes of every session by the session's id (its leader's pid).
func sessionsByLeader() map[int][]Process {
	entries, _ := os.ReadDir("/proc")
	out := map[int][]Process{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, ok := readStat(pid); ok && st.state != "Z" {
			out[st.session] = append(out[st.session], Process{Container: "session " + strconv.Itoa(st.session), PID: pid, StartTick: st.startTick})
		}
	}
	return out
}
