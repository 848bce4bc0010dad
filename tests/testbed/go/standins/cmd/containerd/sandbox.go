package main

// The CRI's pod sandbox calls over the kubelet stand-in's pods (internal/sandbox): each pod directory
// of /var/lib/kubelet/pods with the stand-in's records is a sandbox, READY while one of its container
// processes runs. What kubeadm reset asks (cmd/kubeadm/app/util/runtime/runtime.go of Kubernetes
// v1.36.3: ListPodSandbox without a filter, then per sandbox StopPodSandbox and RemovePodSandbox, each
// call within 2 s) is answered as containerd v2.3.4 answers it (internal/cri/server):
//   - ListPodSandbox (sandbox_list.go): every sandbox with the metadata, labels and annotations the
//     kubelet gave it, its state and creation time; the filter's id (a full id or a unique prefix),
//     state and label selector (every label must match);
//   - StopPodSandbox (sandbox_stop.go): an unknown id is no error (the call is idempotent); the
//     containers are stopped forcibly (stopContainer with timeout 0: SIGKILL, no stop signal, no grace
//     period) and the call returns once they have exited;
//   - RemovePodSandbox (sandbox_remove.go): an unknown id is no error; the sandbox is forcibly stopped
//     first, even when it is not ready, then its containers and the sandbox are removed (here: the
//     records and the metadata), and ListPodSandbox no longer shows it.

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"mlplat.test/testbed/standins/internal/sandbox"
)

var errNotFound = fmt.Errorf("not found")

// findSandbox resolves id as containerd's sandbox store does (pkg/truncindex): the full id or a prefix
// of exactly one.
func (c *cri) findSandbox(id string) (*sandbox.Sandbox, error) {
	if id == "" {
		return nil, fmt.Errorf("prefix can't be empty")
	}
	all, err := sandbox.List(c.podsDir)
	if err != nil {
		return nil, err
	}
	var found *sandbox.Sandbox
	for _, s := range all {
		if s.ID == id {
			return s, nil
		}
		if strings.HasPrefix(s.ID, id) {
			if found != nil {
				return nil, fmt.Errorf("ambiguous prefix %q", id)
			}
			found = s
		}
	}
	if found == nil {
		return nil, errNotFound
	}
	return found, nil
}

func toCRISandbox(s *sandbox.Sandbox) *runtime.PodSandbox {
	state := runtime.PodSandboxState_SANDBOX_NOTREADY
	if s.Ready() {
		state = runtime.PodSandboxState_SANDBOX_READY
	}
	return &runtime.PodSandbox{
		Id:          s.ID,
		Metadata:    &runtime.PodSandboxMetadata{Name: s.Meta.Name, Namespace: s.Meta.Namespace, Uid: s.Meta.UID, Attempt: s.Meta.Attempt},
		State:       state,
		CreatedAt:   s.Meta.CreatedAt.UnixNano(),
		Labels:      s.Meta.Labels,
		Annotations: s.Meta.Annotations,
	}
}

func (c *cri) ListPodSandbox(_ context.Context, r *runtime.ListPodSandboxRequest) (*runtime.ListPodSandboxResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	all, err := sandbox.List(c.podsDir)
	if err != nil {
		return nil, status.Error(codes.Unknown, err.Error())
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Meta.CreatedAt.Before(all[j].Meta.CreatedAt) })
	f := r.GetFilter()
	id := f.GetId()
	if id != "" { // a unique prefix stands for the full id (normalizePodSandboxFilter)
		if s, err := c.findSandbox(id); err == nil {
			id = s.ID
		}
	}
	out := &runtime.ListPodSandboxResponse{}
	for _, s := range all {
		cs := toCRISandbox(s)
		if f != nil {
			if id != "" && cs.Id != id {
				continue
			}
			if f.GetState() != nil && f.GetState().GetState() != cs.State {
				continue
			}
			match := true
			for k, v := range f.GetLabelSelector() {
				if got, ok := cs.Labels[k]; !ok || got != v {
					match = false
					break
				}
			}
			if !match {
				continue
			}
		}
		out.Items = append(out.Items, cs)
	}
	return out, nil
}

func (c *cri) StopPodSandbox(ctx context.Context, r *runtime.StopPodSandboxRequest) (*runtime.StopPodSandboxResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, err := c.findSandbox(r.GetPodSandboxId())
	if err == errNotFound {
		return &runtime.StopPodSandboxResponse{}, nil
	}
	if err != nil {
		return nil, status.Errorf(codes.Unknown, "an error occurred when try to find sandbox %q: %v", r.GetPodSandboxId(), err)
	}
	if err := s.Stop(ctx); err != nil {
		return nil, status.Error(codeOf(ctx), err.Error())
	}
	return &runtime.StopPodSandboxResponse{}, nil
}

func (c *cri) RemovePodSandbox(ctx context.Context, r *runtime.RemovePodSandboxRequest) (*runtime.RemovePodSandboxResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, err := c.findSandbox(r.GetPodSandboxId())
	if err == errNotFound {
		return &runtime.RemovePodSandboxResponse{}, nil
	}
	if err != nil {
		return nil, status.Errorf(codes.Unknown, "an error occurred when try to find sandbox %q: %v", r.GetPodSandboxId(), err)
	}
	if err := s.Stop(ctx); err != nil {
		return nil, status.Errorf(codeOf(ctx), "failed to forcibly stop sandbox %q: %v", s.ID, err)
	}
	if err := s.Remove(); err != nil {
		return nil, status.Errorf(codes.Unknown, "failed to remove sandbox %q: %v", s.ID, err)
	}
	return &runtime.RemovePodSandboxResponse{}, nil
}

// codeOf is the gRPC code of a failure while waiting under ctx (containerd's errgrpc maps a context's
// error to its code).
func codeOf(ctx context.Context) codes.Code {
	switch ctx.Err() {
	case context.DeadlineExceeded:
		return codes.DeadlineExceeded
	case context.Canceled:
		return codes.Canceled
	}
	return codes.Unknown
}
