package main

// API pods the kubelet stand-in runs itself: a pod bound to this node whose images include one of the
// testbed's pod images (images.PodImagesPath: the CNI's install containers, the tigera operator, the
// OpenEBS provisioner and its helper, a shell image for a probe) does real work on the host, so it is
// run here, as the real kubelet would run it, and kwok leaves it alone (kwok.yaml's selector). Every
// other pod is kwok's.
//
// What follows the real kubelet (pkg/kubelet of the release; docs/testbed.md lists the sources):
//   - init containers run one at a time, each to success, before the containers start; a failure is
//     retried with the crash-loop back-off, or fails the pod under restartPolicy Never;
//   - restartPolicy Always, OnFailure and Never decide what an exited container does; a pod whose
//     containers all ended under Never or OnFailure is Succeeded or Failed;
//   - volumes: hostPath (with its type's checks), emptyDir, configMap, secret, downwardAPI, projected
//     (the service account token from the TokenRequest API, bound to the pod, refreshed at 80 % of its
//     life; kube-root-ca.crt; the namespace) and persistentVolumeClaim (the bound PV's local or hostPath
//     directory); the node may read only what its pods use (the Node authorizer);
//   - env: values, fieldRef, configMapKeyRef, secretKeyRef, envFrom; KUBERNETES_SERVICE_HOST/PORT;
//   - securityContext runAsUser, runAsGroup, supplementalGroups, fsGroup (as a supplementary group);
//     runAsNonRoot is enforced;
//   - a pod being deleted: its containers get SIGTERM, SIGKILL after the grace period, then the pod
//     is deleted from the API with grace 0 (the kubelet's final delete, which NodeRestriction allows
//     for a node's own pods).
// What is simpler: the pod's network is the host's (a pod's IP is the node's); a configMap volume is
// written once; probes are not run (a running container is ready).

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	kubetypes "k8s.io/kubernetes/pkg/kubelet/types"
	"k8s.io/utils/ptr"

	"mlplat.test/testbed/standins/internal/images"
	"mlplat.test/testbed/standins/internal/sandbox"
)

const apiRecordDir = sandbox.APIRecords // under /var/lib/kubelet/pods/<uid>/

type apiContainer struct {
	rec      *containerRecord // nil: never started
	exited   bool
	exitCode int
	finished time.Time
	waiting  string
	message  string
	nextTry  time.Time
	backOff  time.Duration
}

type apiPod struct {
	pod        *v1.Pod
	containers map[string]*apiContainer // init and regular containers by name
	volumes    map[string]string        // volume name -> its source directory or file on the host
	tokenDue   time.Time                // when the projected tokens are refreshed
	phase      v1.PodPhase
	lastStatus string
}

type apiPods struct {
	k      *kubelet
	mu     sync.Mutex
	state  map[types.UID]*apiPod
	images []images.PodImage // the testbed's pod images, written at the host's boot (read once)
}

func newAPIPods(k *kubelet) *apiPods {
	list, err := images.LoadPodImages(images.PodImagesPath)
	if err != nil {
		k.logf("the testbed's pod images: %v (every pod is left to kwok)", err)
	}
	return &apiPods{k: k, state: map[types.UID]*apiPod{}, images: list}
}

func apiDir(uid types.UID) string {
	return filepath.Join(sandbox.PodsDir, string(uid), apiRecordDir)
}

// runsHere reports whether this kubelet runs pod itself (see the package comment).
func (a *apiPods) runsHere(pod *v1.Pod) bool {
	if _, mirror := pod.Annotations[kubetypes.ConfigMirrorAnnotationKey]; mirror {
		return false
	}
	for _, c := range append(append([]v1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...) {
		if _, ok := images.FindPodImage(a.images, c.Image); ok {
			return true
		}
	}
	return false
}

// adopt takes over the containers of API pods that a previous kubelet process started.
func (a *apiPods) adopt() {
	dirs, _ := filepath.Glob(filepath.Join(sandbox.PodsDir, "*", apiRecordDir))
	for _, d := range dirs {
		uid := types.UID(filepath.Base(filepath.Dir(d)))
		ps := &apiPod{containers: map[string]*apiContainer{}, volumes: map[string]string{}}
		files, _ := filepath.Glob(filepath.Join(d, "*.json"))
		for _, f := range files {
			name := strings.TrimSuffix(filepath.Base(f), ".json")
			data, err := os.ReadFile(f)
			var r containerRecord
			if err != nil || json.Unmarshal(data, &r) != nil {
				continue
			}
			c := &apiContainer{rec: &r}
			if !alive(&r) {
				c.exited, c.exitCode, c.finished = true, readExit(filepath.Join(d, name+".exit")), time.Now()
			}
			ps.containers[name] = c
		}
		a.state[uid] = ps
	}
}

func readExit(path string) int {
	data, err := os.ReadFile(path)
	if err != nil {
		return 137 // ended without a word (killed with its helper): as a kill
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return 137
	}
	return n
}

// sync brings the API pods of this node in line with bound (the pods bound to it, by namespace/name).
func (a *apiPods) sync(ctx context.Context, bound map[string]*v1.Pod) {
	a.mu.Lock()
	defer a.mu.Unlock()
	seen := map[types.UID]bool{}
	for _, pod := range bound {
		if !a.runsHere(pod) {
			continue
		}
		seen[pod.UID] = true
		ps := a.state[pod.UID]
		if ps == nil {
			ps = &apiPod{containers: map[string]*apiContainer{}, volumes: map[string]string{}}
			a.state[pod.UID] = ps
		}
		ps.pod = pod
		if pod.DeletionTimestamp != nil {
			a.terminate(ctx, pod.UID, ps, true)
			delete(a.state, pod.UID)
			continue
		}
		a.step(ctx, ps)
		a.report(ctx, ps)
	}
	// Pods gone from the API (deleted at once, or bound elsewhere): their containers stop.
	for uid, ps := range a.state {
		if !seen[uid] {
			a.terminate(ctx, uid, ps, false)
			delete(a.state, uid)
		}
	}
}

// terminate stops a pod's containers and removes its directory; with final, the pod is then deleted
// from the API (grace 0, this pod's UID only).
func (a *apiPods) terminate(ctx context.Context, uid types.UID, ps *apiPod, final bool) {
	grace := 30 * time.Second
	if ps.pod != nil && ps.pod.DeletionGracePeriodSeconds != nil {
		grace = time.Duration(*ps.pod.DeletionGracePeriodSeconds) * time.Second
	}
	for _, c := range ps.containers {
		if c.rec != nil {
			stopContainer(c.rec, grace)
		}
	}
	_ = os.RemoveAll(filepath.Join("/var/lib/kubelet/pods", string(uid)))
	if ps.pod == nil {
		return
	}
	if final {
		opts := metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0), Preconditions: &metav1.Preconditions{UID: ptr.To(ps.pod.UID)}}
		if err := a.k.client.CoreV1().Pods(ps.pod.Namespace).Delete(ctx, ps.pod.Name, opts); err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			a.k.logf("pod %s/%s: final delete: %v", ps.pod.Namespace, ps.pod.Name, err)
		}
	}
	a.k.logf("pod %s/%s: stopped", ps.pod.Namespace, ps.pod.Name)
}

// step advances one pod: volumes, then the next init container, then the containers.
func (a *apiPods) step(ctx context.Context, ps *apiPod) {
	pod := ps.pod
	if ps.phase == v1.PodSucceeded || ps.phase == v1.PodFailed {
		return
	}
	if err := a.prepareVolumes(ctx, ps); err != nil {
		for _, c := range append(append([]v1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...) {
			ac := a.container(ps, c.Name)
			if ac.rec == nil {
				ac.waiting, ac.message = "ContainerCreating", err.Error()
			}
		}
		a.k.logf("pod %s/%s: volumes: %v", pod.Namespace, pod.Name, err)
		return
	}
	policy := pod.Spec.RestartPolicy
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		ac := a.container(ps, c.Name)
		if ac.exited && ac.exitCode == 0 {
			continue
		}
		if ac.rec != nil && !ac.exited {
			a.observe(ps, c.Name, ac)
			if !ac.exited {
				return // running
			}
			if ac.exitCode == 0 {
				continue
			}
		}
		if ac.exited && policy == v1.RestartPolicyNever {
			ps.phase = v1.PodFailed
			return
		}
		a.startWithBackOff(ctx, ps, c, ac)
		return
	}
	allDone, anyFailed := true, false
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		ac := a.container(ps, c.Name)
		if ac.rec != nil && !ac.exited {
			a.observe(ps, c.Name, ac)
		}
		switch {
		case ac.rec != nil && !ac.exited:
			allDone = false
		case ac.exited && (policy == v1.RestartPolicyNever || (policy == v1.RestartPolicyOnFailure && ac.exitCode == 0)):
			anyFailed = anyFailed || ac.exitCode != 0
		default:
			allDone = false
			a.startWithBackOff(ctx, ps, c, ac)
		}
	}
	if allDone {
		ps.phase = v1.PodSucceeded
		if anyFailed {
			ps.phase = v1.PodFailed
		}
	}
}

func (a *apiPods) container(ps *apiPod, name string) *apiContainer {
	ac := ps.containers[name]
	if ac == nil {
		ac = &apiContainer{}
		ps.containers[name] = ac
	}
	return ac
}

// observe notices that a started container has exited.
func (a *apiPods) observe(ps *apiPod, name string, ac *apiContainer) {
	if alive(ac.rec) {
		return
	}
	ac.exited, ac.finished = true, time.Now()
	ac.exitCode = readExit(filepath.Join(apiDir(ps.pod.UID), name+".exit"))
	a.k.logf("pod %s/%s: container %s exited with %d", ps.pod.Namespace, ps.pod.Name, name, ac.exitCode)
}

// startWithBackOff (re)starts a container that is not running, after the crash-loop back-off when it
// ran before.
func (a *apiPods) startWithBackOff(ctx context.Context, ps *apiPod, c *v1.Container, ac *apiContainer) {
	if ac.exited && ac.nextTry.IsZero() {
		if ac.backOff == 0 {
			ac.backOff = backOffInitial
		} else {
			ac.backOff = min(2*ac.backOff, backOffMax)
		}
		ac.nextTry = time.Now().Add(ac.backOff)
		ac.waiting, ac.message = "CrashLoopBackOff", fmt.Sprintf("back-off %s restarting failed container=%s pod=%s", ac.backOff, c.Name, ps.pod.Name)
	}
	if time.Now().Before(ac.nextTry) {
		return
	}
	restarts := 0
	if ac.rec != nil {
		restarts = ac.rec.Restarts + 1
	}
	rec, reason, err := a.start(ctx, ps, c, restarts)
	if err != nil {
		ac.waiting, ac.message = reason, err.Error()
		ac.nextTry = time.Now().Add(backOffInitial)
		a.k.logf("pod %s/%s container %s: %s: %v", ps.pod.Namespace, ps.pod.Name, c.Name, reason, err)
		return
	}
	ac.rec, ac.exited, ac.exitCode, ac.waiting, ac.message, ac.nextTry = rec, false, 0, "", "", time.Time{}
}

// start runs one container through the helper (container.go).
func (a *apiPods) start(ctx context.Context, ps *apiPod, c *v1.Container, restarts int) (*containerRecord, string, error) {
	pod := ps.pod
	if reason, err := a.k.pull(ctx, c.Image); err != nil {
		return nil, reason, err
	}
	img, ok := images.FindPodImage(a.images, c.Image)
	if !ok {
		return nil, "CreateContainerError", fmt.Errorf("image %s: the testbed can run no container of it on a host (only its pod images: %s)",
			c.Image, images.PodImagesPath)
	}
	argv := append(append([]string{}, c.Command...), c.Args...)
	if len(c.Command) == 0 {
		argv = append([]string{img.Entrypoint}, c.Args...)
	}
	uid, gid, groups, err := identity(pod, c)
	if err != nil {
		return nil, "CreateContainerConfigError", err
	}
	env, err := a.environment(ctx, pod, c)
	if err != nil {
		return nil, "CreateContainerConfigError", err
	}
	// $(VAR) in the command and args is the container's variable (pkg/kubelet/container: ExpandContainerCommandAndArgs).
	vars := map[string]string{}
	for _, e := range env {
		k, v, _ := strings.Cut(e, "=")
		vars[k] = v
	}
	for i := range argv {
		argv[i] = expand(argv[i], vars)
	}
	var mounts []mountSpec
	for _, m := range c.VolumeMounts {
		src, ok := ps.volumes[m.Name]
		if !ok {
			return nil, "CreateContainerConfigError", fmt.Errorf("volume mount %s: no volume %q in the pod", m.MountPath, m.Name)
		}
		if m.SubPath != "" {
			src = filepath.Join(src, filepath.Clean("/"+m.SubPath))
			if err := os.MkdirAll(src, 0o755); err != nil {
				return nil, "CreateContainerConfigError", err
			}
		}
		mounts = append(mounts, mountSpec{Source: src, Target: m.MountPath, ReadOnly: m.ReadOnly})
	}
	dir := apiDir(pod.UID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, "CreateContainerError", err
	}
	_ = os.Remove(filepath.Join(dir, c.Name+".exit"))
	cs := containerSpec{Scratch: filepath.Join(dir, c.Name+".ctr"), Layer: img.Layer, Mounts: mounts, Argv: argv, Env: env,
		Dir: c.WorkingDir, UID: uid, GID: gid, Groups: groups, ExitFile: filepath.Join(dir, c.Name+".exit")}
	data, _ := json.Marshal(cs)
	specPath := filepath.Join(dir, c.Name+".spec")
	if err := os.WriteFile(specPath, data, 0o600); err != nil {
		return nil, "CreateContainerError", err
	}
	logFile, err := containerLog(pod, c.Name, restarts)
	if err != nil {
		return nil, "CreateContainerError", err
	}
	defer logFile.Close()
	if err := writeSandboxMeta(pod); err != nil {
		return nil, "CreatePodSandboxError", err
	}
	cmd := exec.Command("/proc/self/exe", "__container", specPath)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Dir = "/"
	// Its own mount namespace, and its own session (startDetached: it outlives a kubelet restart, as a
	// container does).
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	if err := startDetached(cmd); err != nil {
		return nil, "RunContainerError", err
	}
	rec := &containerRecord{PID: cmd.Process.Pid, StartTick: startTick(cmd.Process.Pid), Program: img.Entrypoint, Started: time.Now().UTC(), Restarts: restarts}
	data, _ = json.Marshal(rec)
	_ = os.WriteFile(filepath.Join(dir, c.Name+".json"), data, 0o644)
	a.k.logf("pod %s/%s: started container %s (pid %d): %s", pod.Namespace, pod.Name, c.Name, rec.PID, strings.Join(argv, " "))
	return rec, "", nil
}

// identity is the container's user, group and supplementary groups from the security contexts
// (the container's over the pod's); runAsNonRoot refuses uid 0 as the kubelet does.
func identity(pod *v1.Pod, c *v1.Container) (uint32, uint32, []uint32, error) {
	var uid, gid *int64
	nonRoot := false
	var groups []uint32
	if psc := pod.Spec.SecurityContext; psc != nil {
		uid, gid = psc.RunAsUser, psc.RunAsGroup
		nonRoot = ptr.Deref(psc.RunAsNonRoot, false)
		for _, g := range psc.SupplementalGroups {
			groups = append(groups, uint32(g))
		}
		if psc.FSGroup != nil {
			groups = append(groups, uint32(*psc.FSGroup))
		}
	}
	if sc := c.SecurityContext; sc != nil {
		if sc.RunAsUser != nil {
			uid = sc.RunAsUser
		}
		if sc.RunAsGroup != nil {
			gid = sc.RunAsGroup
		}
		if sc.RunAsNonRoot != nil {
			nonRoot = *sc.RunAsNonRoot
		}
	}
	u, g := ptr.Deref(uid, 0), ptr.Deref(gid, 0)
	if nonRoot && u == 0 {
		// pkg/kubelet/kuberuntime/security_context_others.go verifyRunAsNonRoot
		return 0, 0, nil, fmt.Errorf("container has runAsNonRoot and image will run as root (pod: %q, container: %s)", pod.Name, c.Name)
	}
	return uint32(u), uint32(g), groups, nil
}

// environment is the container's environment as the kubelet makes it (pkg/kubelet/kubelet_pods.go
// makeEnvironmentVariables): the API server's service variables, envFrom, then env.
func (a *apiPods) environment(ctx context.Context, pod *v1.Pod, c *v1.Container) ([]string, error) {
	vars := map[string]string{"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME": pod.Name}
	var order []string
	set := func(k, v string) {
		if _, ok := vars[k]; !ok {
			order = append(order, k)
		}
		vars[k] = v
	}
	set("PATH", vars["PATH"])
	set("HOSTNAME", vars["HOSTNAME"])
	// The kubernetes Service's variables. The testbed has no Service network: they name the API
	// server this kubelet reaches (kubelet.conf's server), which is where the Service leads.
	if u, err := url.Parse(a.k.apiServer); err == nil && u.Host != "" {
		host, port, err := net.SplitHostPort(u.Host)
		if err == nil {
			set("KUBERNETES_SERVICE_HOST", host)
			set("KUBERNETES_SERVICE_PORT", port)
			set("KUBERNETES_SERVICE_PORT_HTTPS", port)
			set("KUBERNETES_PORT", "tcp://"+u.Host)
		}
	}
	for _, from := range c.EnvFrom {
		var data map[string]string
		switch {
		case from.ConfigMapRef != nil:
			cm, err := a.k.client.CoreV1().ConfigMaps(pod.Namespace).Get(ctx, from.ConfigMapRef.Name, metav1.GetOptions{})
			if err != nil {
				if ptr.Deref(from.ConfigMapRef.Optional, false) {
					continue
				}
				return nil, fmt.Errorf("configmap %q not found", from.ConfigMapRef.Name)
			}
			data = cm.Data
		case from.SecretRef != nil:
			s, err := a.k.client.CoreV1().Secrets(pod.Namespace).Get(ctx, from.SecretRef.Name, metav1.GetOptions{})
			if err != nil {
				if ptr.Deref(from.SecretRef.Optional, false) {
					continue
				}
				return nil, fmt.Errorf("secret %q not found", from.SecretRef.Name)
			}
			data = map[string]string{}
			for k, v := range s.Data {
				data[k] = string(v)
			}
		}
		keys := make([]string, 0, len(data))
		for k := range data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			set(from.Prefix+k, data[k])
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			set(e.Name, expand(e.Value, vars))
			continue
		}
		v, err := a.valueFrom(ctx, pod, e.ValueFrom)
		if err != nil {
			return nil, fmt.Errorf("env %s: %w", e.Name, err)
		}
		set(e.Name, v)
	}
	out := make([]string, 0, len(order))
	for _, k := range order {
		out = append(out, k+"="+vars[k])
	}
	return out, nil
}

// expand replaces $(VAR) by an earlier variable's value, as the kubelet does ($$ escapes).
func expand(s string, vars map[string]string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '$' && i+1 < len(s) && s[i+1] == '$' {
			b.WriteByte('$')
			i++
			continue
		}
		if s[i] == '$' && i+1 < len(s) && s[i+1] == '(' {
			if end := strings.IndexByte(s[i:], ')'); end > 0 {
				name := s[i+2 : i+end]
				if v, ok := vars[name]; ok {
					b.WriteString(v)
					i += end
					continue
				}
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func (a *apiPods) valueFrom(ctx context.Context, pod *v1.Pod, src *v1.EnvVarSource) (string, error) {
	switch {
	case src.FieldRef != nil:
		return a.fieldValue(pod, src.FieldRef.FieldPath)
	case src.ConfigMapKeyRef != nil:
		ref := src.ConfigMapKeyRef
		cm, err := a.k.client.CoreV1().ConfigMaps(pod.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		var data map[string]string
		if err == nil {
			data = cm.Data
		}
		return keyOf("ConfigMap", pod.Namespace, ref.Name, ref.Key, ptr.Deref(ref.Optional, false), data, err)
	case src.SecretKeyRef != nil:
		ref := src.SecretKeyRef
		s, err := a.k.client.CoreV1().Secrets(pod.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		data := map[string]string{}
		if err == nil {
			for k, v := range s.Data {
				data[k] = string(v)
			}
		}
		return keyOf("Secret", pod.Namespace, ref.Name, ref.Key, ptr.Deref(ref.Optional, false), data, err)
	case src.ResourceFieldRef != nil:
		return "", nil
	}
	return "", fmt.Errorf("an env source the testbed's kubelet does not know")
}

// keyOf is one key of a ConfigMap's or Secret's data for an env variable, as the kubelet words a
// missing one; an optional reference yields "" instead.
func keyOf(kind, namespace, name, key string, optional bool, data map[string]string, getErr error) (string, error) {
	if getErr != nil {
		if optional {
			return "", nil
		}
		return "", fmt.Errorf("%s %q: %w", strings.ToLower(kind), name, getErr)
	}
	v, ok := data[key]
	if !ok && !optional {
		return "", fmt.Errorf("couldn't find key %s in %s %s/%s", key, kind, namespace, name)
	}
	return v, nil
}

// fieldValue is a downward API field (pkg/fieldpath and the kubelet's podFieldSelectorRuntimeValue).
func (a *apiPods) fieldValue(pod *v1.Pod, path string) (string, error) {
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.hostIP", "status.podIP":
		return a.k.nodeIP.String(), nil
	case "status.hostIPs", "status.podIPs":
		return a.k.nodeIP.String(), nil
	}
	for _, p := range []string{"metadata.labels", "metadata.annotations"} {
		if key, ok := strings.CutPrefix(path, p+"['"); ok && strings.HasSuffix(key, "']") {
			key = strings.TrimSuffix(key, "']")
			if p == "metadata.labels" {
				return pod.Labels[key], nil
			}
			return pod.Annotations[key], nil
		}
	}
	return "", fmt.Errorf("unsupported fieldPath %q", path)
}

// prepareVolumes makes every volume's source on the host (once; projected tokens are refreshed).
func (a *apiPods) prepareVolumes(ctx context.Context, ps *apiPod) error {
	pod := ps.pod
	refresh := !ps.tokenDue.IsZero() && time.Now().After(ps.tokenDue)
	for _, vol := range pod.Spec.Volumes {
		if _, done := ps.volumes[vol.Name]; done && !(refresh && vol.Projected != nil) {
			continue
		}
		src, err := a.volume(ctx, ps, vol)
		if err != nil {
			return fmt.Errorf("volume %q: %w", vol.Name, err)
		}
		ps.volumes[vol.Name] = src
	}
	return nil
}

func volumeDir(pod *v1.Pod, plugin, name string) string {
	return filepath.Join("/var/lib/kubelet/pods", string(pod.UID), "volumes", plugin, name)
}

func (a *apiPods) volume(ctx context.Context, ps *apiPod, vol v1.Volume) (string, error) {
	pod := ps.pod
	core := a.k.client.CoreV1()
	switch {
	case vol.HostPath != nil:
		return hostPathSource(vol.HostPath)
	case vol.EmptyDir != nil:
		dir := volumeDir(pod, "kubernetes.io~empty-dir", vol.Name)
		return dir, os.MkdirAll(dir, 0o777)
	case vol.ConfigMap != nil:
		files, err := a.configMapFiles(ctx, pod.Namespace, vol.ConfigMap.Name, ptr.Deref(vol.ConfigMap.Optional, false), vol.ConfigMap.Items)
		if err != nil {
			return "", err
		}
		return writeVolume(volumeDir(pod, "kubernetes.io~configmap", vol.Name), files, mode(vol.ConfigMap.DefaultMode))
	case vol.Secret != nil:
		files, err := a.secretFiles(ctx, pod.Namespace, vol.Secret.SecretName, ptr.Deref(vol.Secret.Optional, false), vol.Secret.Items)
		if err != nil {
			return "", err
		}
		return writeVolume(volumeDir(pod, "kubernetes.io~secret", vol.Name), files, mode(vol.Secret.DefaultMode))
	case vol.DownwardAPI != nil:
		files, err := a.downwardFiles(pod, vol.DownwardAPI.Items)
		if err != nil {
			return "", err
		}
		return writeVolume(volumeDir(pod, "kubernetes.io~downward-api", vol.Name), files, mode(vol.DownwardAPI.DefaultMode))
	case vol.Projected != nil:
		return a.projected(ctx, ps, vol)
	case vol.PersistentVolumeClaim != nil:
		pvc, err := core.PersistentVolumeClaims(pod.Namespace).Get(ctx, vol.PersistentVolumeClaim.ClaimName, metav1.GetOptions{})
		if err != nil {
			return "", err
		}
		if pvc.Spec.VolumeName == "" || pvc.Status.Phase != v1.ClaimBound {
			return "", fmt.Errorf("persistentvolumeclaim %q is not bound", pvc.Name)
		}
		pv, err := core.PersistentVolumes().Get(ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
		if err != nil {
			return "", err
		}
		switch {
		case pv.Spec.Local != nil:
			return pv.Spec.Local.Path, existingDir(pv.Spec.Local.Path)
		case pv.Spec.HostPath != nil:
			return hostPathSource(pv.Spec.HostPath)
		}
		return "", fmt.Errorf("persistentvolume %s is neither local nor hostPath: no test host can mount it", pv.Name)
	}
	return "", fmt.Errorf("a volume type the testbed's kubelet does not mount")
}

// configMapFiles are a ConfigMap's keys (or the listed items) as files; a missing optional one has none.
func (a *apiPods) configMapFiles(ctx context.Context, ns, name string, optional bool, items []v1.KeyToPath) (map[string][]byte, error) {
	cm, err := a.k.client.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		if optional {
			return map[string][]byte{}, nil
		}
		return nil, fmt.Errorf("configmap %q not found", name)
	}
	return keyFiles(cm.Data, cm.BinaryData, items)
}

// secretFiles are a Secret's keys (or the listed items) as files; a missing optional one has none.
func (a *apiPods) secretFiles(ctx context.Context, ns, name string, optional bool, items []v1.KeyToPath) (map[string][]byte, error) {
	sec, err := a.k.client.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		if optional {
			return map[string][]byte{}, nil
		}
		return nil, fmt.Errorf("secret %q not found", name)
	}
	return keyFiles(nil, sec.Data, items)
}

// downwardFiles are the downward API items of fields as files.
func (a *apiPods) downwardFiles(pod *v1.Pod, items []v1.DownwardAPIVolumeFile) (map[string][]byte, error) {
	files := map[string][]byte{}
	for _, item := range items {
		if item.FieldRef == nil {
			continue
		}
		v, err := a.fieldValue(pod, item.FieldRef.FieldPath)
		if err != nil {
			return nil, err
		}
		files[item.Path] = []byte(v)
	}
	return files, nil
}

func existingDir(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("%s is not a directory", path)
	}
	return nil
}

// hostPathSource checks a hostPath's type as the kubelet's hostPath plugin does (pkg/volume/hostpath).
func hostPathSource(hp *v1.HostPathVolumeSource) (string, error) {
	t := ptr.Deref(hp.Type, v1.HostPathUnset)
	st, err := os.Stat(hp.Path)
	switch t {
	case v1.HostPathDirectoryOrCreate:
		if os.IsNotExist(err) {
			return hp.Path, os.MkdirAll(hp.Path, 0o755)
		}
	case v1.HostPathFileOrCreate:
		if os.IsNotExist(err) {
			if err := os.MkdirAll(filepath.Dir(hp.Path), 0o755); err != nil {
				return "", err
			}
			f, err := os.OpenFile(hp.Path, os.O_CREATE|os.O_WRONLY, 0o644)
			if err != nil {
				return "", err
			}
			return hp.Path, f.Close()
		}
	case v1.HostPathDirectory:
		if err != nil || !st.IsDir() {
			return "", fmt.Errorf("hostPath type check failed: %s is not a directory", hp.Path)
		}
	case v1.HostPathFile:
		if err != nil || !st.Mode().IsRegular() {
			return "", fmt.Errorf("hostPath type check failed: %s is not a file", hp.Path)
		}
	case v1.HostPathUnset:
		if os.IsNotExist(err) { // the runtime creates a missing path as a directory
			return hp.Path, os.MkdirAll(hp.Path, 0o755)
		}
	}
	return hp.Path, nil
}

func mode(m *int32) os.FileMode { return os.FileMode(ptr.Deref(m, 0o644)) }

// keyFiles maps keys (or the listed items) to file paths.
func keyFiles(str map[string]string, bin map[string][]byte, items []v1.KeyToPath) (map[string][]byte, error) {
	all := map[string][]byte{}
	for k, v := range str {
		all[k] = []byte(v)
	}
	for k, v := range bin {
		all[k] = v
	}
	if len(items) == 0 {
		return all, nil
	}
	out := map[string][]byte{}
	for _, it := range items {
		v, ok := all[it.Key]
		if !ok {
			return nil, fmt.Errorf("configuration references non-existent key %q", it.Key)
		}
		out[it.Path] = v
	}
	return out, nil
}

// writeVolume writes files into dir atomically (a new directory swapped in).
func writeVolume(dir string, files map[string][]byte, m os.FileMode) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	for p, data := range files {
		target := filepath.Join(dir, filepath.Clean("/"+p))
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return "", err
		}
		tmp := target + ".tmp"
		if err := os.WriteFile(tmp, data, m); err != nil {
			return "", err
		}
		if err := os.Chmod(tmp, m); err != nil {
			return "", err
		}
		if err := os.Rename(tmp, target); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// projected writes a projected volume: service account tokens from the TokenRequest API (bound to
// the pod, as pkg/kubelet/token does), configMaps, secrets and downward API items.
func (a *apiPods) projected(ctx context.Context, ps *apiPod, vol v1.Volume) (string, error) {
	pod := ps.pod
	core := a.k.client.CoreV1()
	files := map[string][]byte{}
	for _, src := range vol.Projected.Sources {
		switch {
		case src.ServiceAccountToken != nil:
			t := src.ServiceAccountToken
			exp := ptr.Deref(t.ExpirationSeconds, 3607)
			req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
				ExpirationSeconds: ptr.To(exp),
				BoundObjectRef:    &authenticationv1.BoundObjectReference{APIVersion: "v1", Kind: "Pod", Name: pod.Name, UID: pod.UID},
			}}
			if t.Audience != "" {
				req.Spec.Audiences = []string{t.Audience}
			}
			tr, err := core.ServiceAccounts(pod.Namespace).CreateToken(ctx, pod.Spec.ServiceAccountName, req, metav1.CreateOptions{})
			if err != nil {
				return "", fmt.Errorf("token of service account %s/%s: %w", pod.Namespace, pod.Spec.ServiceAccountName, err)
			}
			files[t.Path] = []byte(tr.Status.Token)
			// The kubelet refreshes a token at 80 % of its life (pkg/kubelet/token/token_manager.go).
			ps.tokenDue = time.Now().Add(time.Duration(float64(exp)*0.8) * time.Second)
		case src.ConfigMap != nil:
			f, err := a.configMapFiles(ctx, pod.Namespace, src.ConfigMap.Name, ptr.Deref(src.ConfigMap.Optional, false), src.ConfigMap.Items)
			if err != nil {
				return "", err
			}
			for k, v := range f {
				files[k] = v
			}
		case src.Secret != nil:
			f, err := a.secretFiles(ctx, pod.Namespace, src.Secret.Name, ptr.Deref(src.Secret.Optional, false), src.Secret.Items)
			if err != nil {
				return "", err
			}
			for k, v := range f {
				files[k] = v
			}
		case src.DownwardAPI != nil:
			f, err := a.downwardFiles(pod, src.DownwardAPI.Items)
			if err != nil {
				return "", err
			}
			for k, v := range f {
				files[k] = v
			}
		}
	}
	return writeVolume(volumeDir(pod, "kubernetes.io~projected", vol.Name), files, mode(vol.Projected.DefaultMode))
}

// report writes the pod's status when it changed.
func (a *apiPods) report(ctx context.Context, ps *apiPod) {
	st := a.status(ps)
	key, _ := json.Marshal(struct {
		P v1.PodPhase
		I []v1.ContainerStatus
		C []v1.ContainerStatus
	}{st.Phase, st.InitContainerStatuses, st.ContainerStatuses})
	if string(key) == ps.lastStatus {
		return
	}
	pod := ps.pod.DeepCopy()
	pod.Status = st
	if _, err := a.k.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		if !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
			a.k.logf("pod %s/%s status: %v", pod.Namespace, pod.Name, err)
		}
		return
	}
	ps.lastStatus = string(key)
}

func (a *apiPods) containerStatus(ps *apiPod, c v1.Container) (v1.ContainerStatus, bool) {
	ac := a.container(ps, c.Name)
	s := v1.ContainerStatus{Name: c.Name, Image: c.Image, ImageID: c.Image, Started: ptr.To(false)}
	if ac.rec != nil {
		s.RestartCount = int32(ac.rec.Restarts)
		s.ContainerID = fmt.Sprintf("containerd://pid-%d", ac.rec.PID)
	}
	switch {
	case ac.rec != nil && !ac.exited && ac.waiting == "":
		s.State.Running = &v1.ContainerStateRunning{StartedAt: metav1.NewTime(ac.rec.Started)}
		s.Ready, s.Started = true, ptr.To(true)
		return s, true
	case ac.exited && ac.waiting == "":
		reason := "Completed"
		if ac.exitCode != 0 {
			reason = "Error"
		}
		s.State.Terminated = &v1.ContainerStateTerminated{ExitCode: int32(ac.exitCode), Reason: reason,
			StartedAt: metav1.NewTime(ac.rec.Started), FinishedAt: metav1.NewTime(ac.finished), ContainerID: s.ContainerID}
		return s, false
	default:
		reason := ac.waiting
		if reason == "" {
			reason = "PodInitializing"
		}
		s.State.Waiting = &v1.ContainerStateWaiting{Reason: reason, Message: ac.message}
		return s, false
	}
}

func (a *apiPods) status(ps *apiPod) v1.PodStatus {
	pod := ps.pod
	start := metav1.Now()
	if pod.Status.StartTime != nil {
		start = *pod.Status.StartTime
	}
	ip := a.k.nodeIP.String()
	st := v1.PodStatus{Phase: v1.PodPending, HostIP: ip, PodIP: ip, HostIPs: []v1.HostIP{{IP: ip}}, PodIPs: []v1.PodIP{{IP: ip}},
		StartTime: &start, QOSClass: pod.Status.QOSClass}
	initialized := true
	for _, c := range pod.Spec.InitContainers {
		s, _ := a.containerStatus(ps, c)
		if s.State.Terminated == nil || s.State.Terminated.ExitCode != 0 {
			initialized = false
		}
		st.InitContainerStatuses = append(st.InitContainerStatuses, s)
	}
	ready, running := true, false
	for _, c := range pod.Spec.Containers {
		s, up := a.containerStatus(ps, c)
		if !initialized && s.State.Waiting != nil && s.State.Waiting.Reason == "PodInitializing" {
			s.State.Waiting.Message = ""
		}
		ready = ready && up
		running = running || up
		st.ContainerStatuses = append(st.ContainerStatuses, s)
	}
	switch {
	case ps.phase == v1.PodSucceeded || ps.phase == v1.PodFailed:
		st.Phase = ps.phase
	case running:
		st.Phase = v1.PodRunning
	}
	cond := func(t v1.PodConditionType, ok bool, reason string) v1.PodCondition {
		s := v1.ConditionFalse
		if ok {
			s, reason = v1.ConditionTrue, ""
		}
		return v1.PodCondition{Type: t, Status: s, Reason: reason, LastTransitionTime: start}
	}
	done := st.Phase == v1.PodSucceeded || st.Phase == v1.PodFailed
	st.Conditions = []v1.PodCondition{cond(v1.PodReadyToStartContainers, !done, ""), cond(v1.PodInitialized, initialized, "ContainersNotInitialized"),
		cond(v1.ContainersReady, ready && !done, "ContainersNotReady"), cond(v1.PodReady, ready && !done, "ContainersNotReady"),
		cond(v1.PodScheduled, true, "")}
	return st
}

// run keeps this node's API pods every second, once the node is registered.
func (a *apiPods) run(ctx context.Context) {
	a.mu.Lock()
	a.adopt()
	a.mu.Unlock()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		a.k.mu.Lock()
		registered := a.k.nodeUID != ""
		a.k.mu.Unlock()
		if !registered {
			continue
		}
		bound, err := a.k.boundPods(ctx)
		if err != nil {
			continue
		}
		a.sync(ctx, bound)
	}
}
