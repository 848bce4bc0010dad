package main

// flanneld with --kube-subnet-mgr, after flannel-io/flannel v0.28.9 (pkg/subnet/kube/kube.go,
// main.go): the network from /etc/kube-flannel/net-conf.json, the node's subnet from its
// spec.podCIDR (assigned by the controller-manager; flanneld waits for it, as the real one does),
// written to /run/flannel/subnet.env for the CNI plugin; then it runs until stopped. The VXLAN device
// and routes are not made (a test host has no pod network).

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func runFlanneld(ctx context.Context, args []string) error {
	kubeSubnetMgr := false
	for _, a := range args {
		if a == "--kube-subnet-mgr" || a == "-kube-subnet-mgr" {
			kubeSubnetMgr = true
		}
	}
	if !kubeSubnetMgr {
		return fmt.Errorf("the testbed's flanneld plays --kube-subnet-mgr only")
	}
	data, err := os.ReadFile("/etc/kube-flannel/net-conf.json")
	if err != nil {
		return fmt.Errorf("failed to read net conf: %w", err)
	}
	var conf struct {
		Network string
		Backend struct{ Type string }
	}
	if err := json.Unmarshal(data, &conf); err != nil {
		return fmt.Errorf("error parsing subnet config: %w", err)
	}
	_, network, err := net.ParseCIDR(conf.Network)
	if err != nil {
		return fmt.Errorf("error parsing subnet config: Network %q: %w", conf.Network, err)
	}
	cs, _, err := clients()
	if err != nil {
		return err
	}
	node := os.Getenv("NODE_NAME")
	if node == "" {
		// flannel takes the node from the pod: POD_NAME and POD_NAMESPACE, then the pod's spec.nodeName.
		pod, err := cs.CoreV1().Pods(os.Getenv("POD_NAMESPACE")).Get(ctx, os.Getenv("POD_NAME"), metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("error retrieving pod spec for '%s/%s': %w", os.Getenv("POD_NAMESPACE"), os.Getenv("POD_NAME"), err)
		}
		node = pod.Spec.NodeName
	}
	var subnet *net.IPNet
	for subnet == nil {
		n, err := cs.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if n.Spec.PodCIDR != "" {
			_, subnet, err = net.ParseCIDR(n.Spec.PodCIDR)
			if err != nil {
				return err
			}
			break
		}
		logf("Waiting 10s for node controller to sync (node %q has no podCIDR)", node)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(10 * time.Second):
		}
	}
	gw := append(net.IP{}, subnet.IP.To4()...)
	gw[3]++
	ones, _ := subnet.Mask.Size()
	env := fmt.Sprintf("FLANNEL_NETWORK=%s\nFLANNEL_SUBNET=%s/%d\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n", network, gw, ones)
	if err := os.MkdirAll("/run/flannel", 0o755); err != nil {
		return err
	}
	if err := writeAtomic("/run/flannel/subnet.env", []byte(env), 0o644); err != nil {
		return err
	}
	logf("flanneld: %s backend, node %s, subnet %s/%d of %s", conf.Backend.Type, node, gw, ones, network)
	<-ctx.Done()
	return nil
}
