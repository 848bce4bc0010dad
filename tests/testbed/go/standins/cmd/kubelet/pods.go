package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	kubelettypes "k8s.io/kubelet/pkg/types"
	"k8s.io/kubernetes/pkg/kubelet/config"
	kubetypes "k8s.io/kubernetes/pkg/kubelet/types"
	"k8s.io/utils/ptr"

	"mlplat.test/testbed/standins/internal/images"
	"mlplat.test/testbed/standins/internal/sandbox"
)

const (
	fileCheckFrequency = 20 * time.Second // the kubelet's default (fileCheckFrequency)
	// The kubelet's crash-loop back-off of a container: 10 s, doubling, at most 300 s
	// (pkg/kubelet/kubelet.go: backOffPeriod, MaxContainerBackOff).
	backOffInitial = 10 * time.Second
	backOffMax     = 300 * time.Second
)

// containerRecord is what the stand-in keeps of a running container, so that a restarted kubelet adopts it
// (as containerd keeps containers running across kubelet restarts).
type containerRecord struct {
	PID       int       `json:"pid"`
	StartTick uint64    `json:"startTick"` // /proc/PID/stat starttime: tells a reused pid apart
	Program   string    `json:"program"`
	Started   time.Time `json:"started"`
	Restarts  int       `json:"restarts"`
}

type containerState struct {
	rec     *containerRecord
	nextTry time.Time
	backOff time.Duration
	waiting string // reason while not running
	message string
}

type podState struct {
	pod        *v1.Pod
	containers map[string]*containerState
}

type staticPods struct {
	k       *kubelet
	mu      sync.Mutex
	desired map[types.UID]*v1.Pod
	state   map[types.UID]*podState
}

type sliObserver struct{}

func (sliObserver) ObservedPodOnWatch(*v1.Pod, time.Time) {}

func newStaticPods(k *kubelet) *staticPods {
	return &staticPods{k: k, desired: map[types.UID]*v1.Pod{}, state: map[types.UID]*podState{}}
}

func podDir(uid types.UID) string {
	return filepath.Join(sandbox.PodsDir, string(uid), sandbox.StaticRecords)
}

// run reads the static pods through the kubelet's own file source and keeps their processes and
// mirror pods in line with them.
func (s *staticPods) run(ctx context.Context) {
	path := s.k.config.StaticPodPath
	if path == "" {
		return
	}
	pc := config.NewPodConfig(record.NewFakeRecorder(100), sliObserver{})
	config.NewSourceFile(s.k.logger, path, s.k.nodeName, fileCheckFrequency, pc.Channel(ctx, kubetypes.FileSource))
	s.adopt()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case u := <-pc.Updates():
			s.mu.Lock()
			for _, p := range u.Pods {
				switch u.Op {
				case kubetypes.ADD, kubetypes.UPDATE:
					s.desired[p.UID] = p
				case kubetypes.DELETE, kubetypes.REMOVE:
					delete(s.desired, p.UID)
				}
			}
			s.mu.Unlock()
			s.sync(ctx)
		case <-tick.C:
			s.sync(ctx)
		}
	}
}

// adopt takes over the containers a previous kubelet process started that still run.
func (s *staticPods) adopt() {
	dirs, _ := filepath.Glob(filepath.Join(sandbox.PodsDir, "*", sandbox.StaticRecords))
	for _, d := range dirs {
		uid := types.UID(filepath.Base(filepath.Dir(d)))
		files, _ := filepath.Glob(filepath.Join(d, "*.json"))
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			var r containerRecord
			if json.Unmarshal(data, &r) != nil || !alive(&r) {
				_ = os.Remove(f)
				continue
			}
			ps := s.state[uid]
			if ps == nil {
				ps = &podState{containers: map[string]*containerState{}}
				s.state[uid] = ps
			}
			ps.containers[strings.TrimSuffix(filepath.Base(f), ".json")] = &containerState{rec: &r}
		}
	}
}

func startTick(pid int) uint64 { return sandbox.StartTick(pid) }

// alive reports whether the recorded process still runs (not a zombie, not a reused pid).
func alive(r *containerRecord) bool { return r != nil && sandbox.Alive(r.PID, r.StartTick) }

// sandboxMeta is the pod's sandbox as the kubelet hands it to the runtime in the PodSandboxConfig
// (pkg/kubelet/kuberuntime/kuberuntime_sandbox.go generatePodSandboxConfig; labels.go newPodLabels,
// newPodAnnotations): the pod's name, namespace and uid, attempt 0, the pod's labels with the
// io.kubernetes.pod.* ones, the pod's annotations.
func sandboxMeta(pod *v1.Pod, created time.Time) sandbox.Meta {
	labels := map[string]string{}
	for k, v := range pod.Labels {
		labels[k] = v
	}
	labels[kubelettypes.KubernetesPodNameLabel] = pod.Name
	labels[kubelettypes.KubernetesPodNamespaceLabel] = pod.Namespace
	labels[kubelettypes.KubernetesPodUIDLabel] = string(pod.UID)
	return sandbox.Meta{Name: pod.Name, Namespace: pod.Namespace, UID: string(pod.UID), Labels: labels,
		Annotations: pod.Annotations, CreatedAt: created.UTC()}
}

// writeSandboxMeta records the pod's sandbox in its directory before its first container starts (the
// kubelet creates a pod's sandbox first), for the containerd stand-in to report (internal/sandbox).
func writeSandboxMeta(pod *v1.Pod) error {
	return sandbox.WriteMeta(filepath.Join(sandbox.PodsDir, string(pod.UID)), sandboxMeta(pod, time.Now()))
}

func (s *staticPods) sync(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// Pods no longer wanted: stop their containers, delete their mirror pods.
	for uid, ps := range s.state {
		if _, ok := s.desired[uid]; ok {
			continue
		}
		for name, cs := range ps.containers {
			stopContainer(cs.rec, 30*time.Second)
			_ = os.Remove(filepath.Join(podDir(uid), name+".json"))
		}
		_ = os.RemoveAll(filepath.Dir(podDir(uid)))
		if ps.pod != nil {
			s.deleteMirror(ctx, ps.pod, "")
		}
		delete(s.state, uid)
	}
	s.k.mu.Lock()
	registered := s.k.nodeUID != ""
	s.k.mu.Unlock()
	var bound map[string]*v1.Pod
	if registered {
		var err error
		if bound, err = s.k.boundPods(ctx); err != nil {
			s.k.logf("listing the pods bound to this node: %v", err)
			registered = false
		}
	}
	for uid, pod := range s.desired {
		ps := s.state[uid]
		if ps == nil {
			ps = &podState{containers: map[string]*containerState{}}
			s.state[uid] = ps
		}
		ps.pod = pod
		for _, c := range pod.Spec.Containers {
			cs := ps.containers[c.Name]
			if cs == nil {
				cs = &containerState{}
				ps.containers[c.Name] = cs
			}
			if alive(cs.rec) {
				continue
			}
			if cs.rec != nil && cs.rec.PID > 0 { // it ran and has exited: back off before the next start
				if cs.backOff == 0 {
					cs.backOff = backOffInitial
				} else {
					cs.backOff = min(2*cs.backOff, backOffMax)
				}
				cs.nextTry = time.Now().Add(cs.backOff)
				cs.waiting, cs.message = "CrashLoopBackOff", fmt.Sprintf("back-off %s restarting failed container=%s pod=%s", cs.backOff, c.Name, pod.Name)
				cs.rec = &containerRecord{PID: -1, Restarts: cs.rec.Restarts + 1}
				_ = os.Remove(filepath.Join(podDir(pod.UID), c.Name+".json"))
				s.k.logf("static pod %s/%s: container %s exited; %s", pod.Namespace, pod.Name, c.Name, cs.message)
			}
			if time.Now().Before(cs.nextTry) {
				continue
			}
			restarts := 0
			if cs.rec != nil {
				restarts = cs.rec.Restarts
			}
			rec, reason, err := s.start(ctx, pod, &c, restarts)
			if err != nil {
				cs.waiting, cs.message = reason, err.Error()
				cs.nextTry = time.Now().Add(backOffInitial)
				s.k.logf("static pod %s/%s container %s: %s: %v", pod.Namespace, pod.Name, c.Name, reason, err)
				continue
			}
			cs.rec, cs.waiting, cs.message = rec, "", ""
		}
		if registered {
			s.syncMirror(ctx, ps, bound)
		}
	}
}

// pull makes sure image is on the host, pulling it through the CRI when it is not (IfNotPresent), as
// the kubelet does; it returns the waiting reason of a failure.
func (k *kubelet) pull(ctx context.Context, image string) (string, error) {
	spec := &runtimeapi.ImageSpec{Image: image}
	st, err := k.images.ImageStatus(ctx, spec, false)
	if err != nil {
		return "ErrImagePull", err
	}
	if st.GetImage() == nil {
		if _, err := k.images.PullImage(ctx, spec, nil, nil); err != nil {
			return "ErrImagePull", err
		}
	}
	return "", nil
}

// program returns the host program that image's container runs: the image is pulled first, then
// looked up in the testbed's registry.
func (s *staticPods) program(ctx context.Context, image string) (string, string, error) {
	if reason, err := s.k.pull(ctx, image); err != nil {
		return "", reason, err
	}
	cat, err := images.LoadCatalogue(images.CataloguePath)
	if err != nil {
		return "", "CreateContainerError", err
	}
	img, ok := images.Lookup(cat, image)
	if !ok || img.Program == "" {
		return "", "CreateContainerError", fmt.Errorf("image %s has no program a test host can run (only the control plane's images do)", image)
	}
	return img.Program, "", nil
}

func (s *staticPods) start(ctx context.Context, pod *v1.Pod, c *v1.Container, restarts int) (*containerRecord, string, error) {
	program, reason, err := s.program(ctx, c.Image)
	if err != nil {
		return nil, reason, err
	}
	argv := append(append([]string{}, c.Command...), c.Args...)
	if len(c.Command) == 0 {
		argv = append([]string{program}, c.Args...)
	} else if !strings.Contains(argv[0], "/") {
		// The image's PATH: its own program, or another of the same image (etcd's etcdctl).
		if filepath.Base(program) == argv[0] {
			argv[0] = program
		} else {
			argv[0] = filepath.Join(filepath.Dir(program), argv[0])
		}
	}
	for _, m := range c.VolumeMounts {
		for _, vol := range pod.Spec.Volumes {
			if vol.Name == m.Name && vol.HostPath != nil && filepath.Clean(vol.HostPath.Path) != filepath.Clean(m.MountPath) {
				return nil, "CreateContainerError", fmt.Errorf("volume %s: hostPath %s mounted at %s: a host process sees the host's paths only",
					vol.Name, vol.HostPath.Path, m.MountPath)
			}
		}
	}
	logFile, err := containerLog(pod, c.Name, restarts)
	if err != nil {
		return nil, "CreateContainerError", err
	}
	defer logFile.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Dir = "/"
	if c.WorkingDir != "" {
		cmd.Dir = c.WorkingDir
	}
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME=" + string(s.k.nodeName)}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			cmd.Env = append(cmd.Env, e.Name+"="+e.Value)
		}
	}
	if err := writeSandboxMeta(pod); err != nil {
		return nil, "CreatePodSandboxError", err
	}
	if err := startDetached(cmd); err != nil {
		return nil, "RunContainerError", err
	}
	rec := &containerRecord{PID: cmd.Process.Pid, StartTick: startTick(cmd.Process.Pid), Program: program, Started: time.Now().UTC(), Restarts: restarts}
	if err := os.MkdirAll(podDir(pod.UID), 0o755); err == nil {
		data, _ := json.Marshal(rec)
		_ = os.WriteFile(filepath.Join(podDir(pod.UID), c.Name+".json"), data, 0o644)
	}
	s.k.logf("static pod %s/%s: started container %s (pid %d): %s", pod.Namespace, pod.Name, c.Name, rec.PID, strings.Join(argv, " "))
	return rec, "", nil
}

// containerLog opens the log of one run of a container where the kubelet keeps it:
// /var/log/pods/<namespace>_<name>_<uid>/<container>/<restart count>.log.
func containerLog(pod *v1.Pod, container string, restarts int) (*os.File, error) {
	dir := filepath.Join("/var/log/pods", fmt.Sprintf("%s_%s_%s", pod.Namespace, pod.Name, pod.UID), container)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return os.OpenFile(filepath.Join(dir, strconv.Itoa(restarts)+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
}

// startDetached starts a container's process in a session of its own and reaps it while this kubelet
// lives: it outlives the kubelet (a stop or restart of the kubelet leaves it running, as containerd keeps
// a container running across kubelet restarts) until the kubelet stops it or the runtime's
// StopPodSandbox does. No parent-death signal: only kwok dies with the kubelet.
func startDetached(cmd *exec.Cmd) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setsid = true
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() { _ = cmd.Wait() }() // an adopted process (of an earlier kubelet) is reaped by init
	return nil
}

// stopContainer ends a container's process group: SIGTERM, then SIGKILL after the grace period.
func stopContainer(r *containerRecord, grace time.Duration) {
	if !alive(r) {
		return
	}
	_ = syscall.Kill(-r.PID, syscall.SIGTERM)
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if !alive(r) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = syscall.Kill(-r.PID, syscall.SIGKILL)
}

// mirrorPod builds the API object of a static pod as the kubelet's mirror client does
// (pkg/kubelet/pod/mirror_client.go): the config.mirror annotation, the node as controlling owner.
func (s *staticPods) mirrorPod(pod *v1.Pod) *v1.Pod {
	m := pod.DeepCopy()
	m.UID = ""
	m.ResourceVersion = ""
	if m.Annotations == nil {
		m.Annotations = map[string]string{}
	}
	m.Annotations[kubetypes.ConfigMirrorAnnotationKey] = pod.Annotations[kubetypes.ConfigHashAnnotationKey]
	s.k.mu.Lock()
	nodeUID := s.k.nodeUID
	s.k.mu.Unlock()
	m.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: string(s.k.nodeName), UID: nodeUID, Controller: ptr.To(true)}}
	m.Status = v1.PodStatus{}
	return m
}

func (s *staticPods) status(ps *podState) v1.PodStatus {
	now := metav1.Now()
	st := v1.PodStatus{Phase: v1.PodRunning, HostIP: s.k.nodeIP.String(), PodIP: s.k.nodeIP.String(),
		HostIPs: []v1.HostIP{{IP: s.k.nodeIP.String()}}, PodIPs: []v1.PodIP{{IP: s.k.nodeIP.String()}}, QOSClass: v1.PodQOSBurstable}
	ready := true
	var started *metav1.Time
	for _, c := range ps.pod.Spec.Containers {
		cs := ps.containers[c.Name]
		status := v1.ContainerStatus{Name: c.Name, Image: c.Image, ImageID: c.Image}
		if cs != nil && alive(cs.rec) {
			t := metav1.NewTime(cs.rec.Started)
			if started == nil || t.Before(started) {
				started = &t
			}
			status.Ready, status.Started = true, ptr.To(true)
			status.RestartCount = int32(cs.rec.Restarts)
			status.State.Running = &v1.ContainerStateRunning{StartedAt: t}
			status.ContainerID = fmt.Sprintf("containerd://pid-%d", cs.rec.PID)
		} else {
			ready = false
			reason, msg := "ContainerCreating", ""
			if cs != nil && cs.waiting != "" {
				reason, msg = cs.waiting, cs.message
			}
			if cs != nil && cs.rec != nil {
				status.RestartCount = int32(cs.rec.Restarts)
			}
			status.State.Waiting = &v1.ContainerStateWaiting{Reason: reason, Message: msg}
			status.Started = ptr.To(false)
		}
		st.ContainerStatuses = append(st.ContainerStatuses, status)
	}
	if started == nil {
		st.Phase = v1.PodPending
		started = &now
	}
	st.StartTime = started
	cond := func(t v1.PodConditionType, ok bool) v1.PodCondition {
		s := v1.ConditionFalse
		if ok {
			s = v1.ConditionTrue
		}
		return v1.PodCondition{Type: t, Status: s, LastTransitionTime: *started}
	}
	st.Conditions = []v1.PodCondition{cond(v1.PodReadyToStartContainers, true), cond(v1.PodInitialized, true),
		cond(v1.ContainersReady, ready), cond(v1.PodReady, ready), cond(v1.PodScheduled, true)}
	return st
}

// syncMirror creates the mirror pod once the node is registered, replaces one whose hash is not the
// manifest's (as the kubelet does), and keeps its status.
// The node's pods as the kubelet's pod informer sees them: a node may list the pods bound to it (the
// Node authorizer refuses a get of a pod that is not, and of one that does not exist).
func (k *kubelet) boundPods(ctx context.Context) (map[string]*v1.Pod, error) {
	list, err := k.client.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + string(k.nodeName)})
	if err != nil {
		return nil, err
	}
	out := map[string]*v1.Pod{}
	for i := range list.Items {
		out[list.Items[i].Namespace+"/"+list.Items[i].Name] = &list.Items[i]
	}
	return out, nil
}

func (s *staticPods) syncMirror(ctx context.Context, ps *podState, bound map[string]*v1.Pod) {
	pods := s.k.client.CoreV1().Pods(ps.pod.Namespace)
	cur := bound[ps.pod.Namespace+"/"+ps.pod.Name]
	hash := ps.pod.Annotations[kubetypes.ConfigHashAnnotationKey]
	if cur != nil && cur.Annotations[kubetypes.ConfigMirrorAnnotationKey] != hash {
		s.deleteMirror(ctx, cur, string(cur.UID))
		cur = nil
	}
	if cur == nil {
		var err error
		if cur, err = pods.Create(ctx, s.mirrorPod(ps.pod), metav1.CreateOptions{}); err != nil {
			if !apierrors.IsAlreadyExists(err) {
				s.k.logf("mirror pod %s/%s: %v", ps.pod.Namespace, ps.pod.Name, err)
			}
			return
		}
	}
	want := s.status(ps)
	if sameStatus(cur.Status, want) {
		return
	}
	cur.Status = want
	if _, err := pods.UpdateStatus(ctx, cur, metav1.UpdateOptions{}); err != nil && !apierrors.IsConflict(err) {
		s.k.logf("mirror pod %s/%s status: %v", ps.pod.Namespace, ps.pod.Name, err)
	}
}

// sameStatus tells whether the API's status `a` already says what the kubelet would write, `b`: the
// phase, the containers and each condition's status. A condition another component changed (the
// node lifecycle controller marks the pods of a NotReady node not Ready) is written back, as the
// kubelet's status manager reconciles a status that differs from its own (kubernetes v1.36.3
// pkg/kubelet/status/status_manager.go, needsReconcile).
func sameStatus(a, b v1.PodStatus) bool {
	if a.Phase != b.Phase || len(a.ContainerStatuses) != len(b.ContainerStatuses) || a.PodIP != b.PodIP {
		return false
	}
	for _, want := range b.Conditions {
		found := false
		for _, have := range a.Conditions {
			if have.Type == want.Type {
				found = have.Status == want.Status
			}
		}
		if !found {
			return false
		}
	}
	for i := range a.ContainerStatuses {
		x, y := a.ContainerStatuses[i], b.ContainerStatuses[i]
		if x.Ready != y.Ready || x.RestartCount != y.RestartCount || x.ContainerID != y.ContainerID {
			return false
		}
	}
	return true
}

func (s *staticPods) deleteMirror(ctx context.Context, pod *v1.Pod, uid string) {
	opts := metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}
	if uid != "" {
		opts.Preconditions = &metav1.Preconditions{UID: ptr.To(types.UID(uid))}
	}
	if err := s.k.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, opts); err != nil && !apierrors.IsNotFound(err) {
		s.k.logf("mirror pod %s/%s: delete: %v", pod.Namespace, pod.Name, err)
	}
}
