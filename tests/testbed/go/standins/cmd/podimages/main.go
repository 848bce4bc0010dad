// Command podimages holds the programs of the testbed's pod images: what the components a test host
// cannot run as containers (they ship only as images) do on a host and against the API server, run
// by the kubelet stand-in in an API pod (cmd/kubelet/apipods.go) with the pod's service account. One
// binary, called by the name of the image's program (the image layers of build-programs.sh link it
// under those names):
//
//	operator             quay.io/tigera/operator (the tigera operator: Calico from an Installation)
//	install              calico/cni's /opt/cni/bin/install (writes the CNI configuration and plugins)
//	calico-node          calico/node (runs until stopped)
//	flanneld             flannel's /opt/bin/flanneld (the node's subnet from its podCIDR)
//	flannel              flannel-cni-plugin's /flannel (the CNI plugin file its init container copies)
//	provisioner-localpv  openebs/provisioner-localpv (volumes of the openebs.io/local provisioner)
//	kube-proxy           kube-proxy (node ports to ready endpoints)
//	pilot-agent          istio/proxyv2 as the ingress gateway (TLS by SNI, routes of VirtualServices)
//
// What each follows upstream is listed in docs/testbed.md.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

func main() {
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	name := filepath.Base(os.Args[0])
	var err error
	switch name {
	case "operator":
		err = runOperator(ctx)
	case "install":
		err = installCNI()
	case "calico-node", "flannel":
		<-ctx.Done() // runs until stopped (the CNI plugin file is never run as a pod's program)
	case "flanneld":
		err = runFlanneld(ctx, os.Args[1:])
	case "provisioner-localpv":
		err = runProvisioner(ctx)
	case "kube-proxy":
		err = runKubeProxy(ctx, os.Args[1:])
	case "pilot-agent":
		err = runGateway(ctx)
	default:
		err = fmt.Errorf("podimages: no program %q (operator, install, calico-node, flanneld, flannel, provisioner-localpv, kube-proxy, pilot-agent)", name)
	}
	if err != nil && ctx.Err() == nil {
		logf("%s: %v", name, err)
		os.Exit(1)
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s %s\n", time.Now().UTC().Format(time.RFC3339), fmt.Sprintf(format, args...))
}

// clients are the pod's: its service account token and the API server from the kubelet's
// environment (rest.InClusterConfig, as every in-cluster component).
func clients() (*kubernetes.Clientset, *dynamic.DynamicClient, error) {
	cfg, err := rest.InClusterConfig()
	if err != nil {
		return nil, nil, err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, err
	}
	dc, err := dynamic.NewForConfig(cfg)
	return cs, dc, err
}

// every runs f every period until ctx ends; f's errors are logged, as a controller's reconcile errors.
func every(ctx context.Context, period time.Duration, f func() error) {
	for ctx.Err() == nil {
		if err := f(); err != nil && ctx.Err() == nil {
			logf("%v", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(period):
		}
	}
}
