package main

// kube-proxy's part the tests reach: a Service's node ports answer on every node and lead to a ready
// endpoint of the Service (pkg/proxy of the release: a NodePort or LoadBalancer Service's nodePort
// on every local address, endpoints from EndpointSlices, only ready ones, any of them). The real one
// programs iptables or nftables; this one forwards TCP connections in user space, as kube-proxy's
// old userspace mode did. Its credentials and API server are the kubeconfig its --config names (the
// kube-proxy ConfigMap kubeadm writes: controlPlaneEndpoint, the pod's service account token).

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"
)

func runKubeProxy(ctx context.Context, args []string) error {
	config := ""
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, "--config="); ok {
			config = v
		} else if a == "--config" && i+1 < len(args) {
			config = args[i+1]
		}
	}
	if config == "" {
		return fmt.Errorf("the testbed's kube-proxy needs --config (kubeadm's DaemonSet passes it)")
	}
	data, err := os.ReadFile(config)
	if err != nil {
		return err
	}
	var cfg struct {
		ClientConnection struct {
			Kubeconfig string `json:"kubeconfig"`
		} `json:"clientConnection"`
	}
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		return fmt.Errorf("%s: %w", config, err)
	}
	rc, err := clientcmd.BuildConfigFromFlags("", cfg.ClientConnection.Kubeconfig)
	if err != nil {
		return fmt.Errorf("kubeconfig %s: %w", cfg.ClientConnection.Kubeconfig, err)
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
	p := &proxier{cs: cs, listeners: map[int32]net.Listener{}, routes: map[int32]route{}}
	logf("kube-proxy stand-in: node ports through %s", rc.Host)
	every(ctx, 2*time.Second, func() error { return p.sync(ctx) })
	p.mu.Lock()
	for _, l := range p.listeners {
		l.Close()
	}
	p.mu.Unlock()
	return nil
}

type route struct {
	namespace, service, portName string
	protocol                     v1.Protocol
}

type proxier struct {
	cs        *kubernetes.Clientset
	mu        sync.Mutex
	listeners map[int32]net.Listener
	routes    map[int32]route
}

func (p *proxier) sync(ctx context.Context) error {
	svcs, err := p.cs.CoreV1().Services("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("listing services: %w", err)
	}
	want := map[int32]route{}
	for _, s := range svcs.Items {
		if s.Spec.Type != v1.ServiceTypeNodePort && s.Spec.Type != v1.ServiceTypeLoadBalancer {
			continue
		}
		for _, port := range s.Spec.Ports {
			if port.NodePort != 0 && port.Protocol == v1.ProtocolTCP {
				want[port.NodePort] = route{s.Namespace, s.Name, port.Name, port.Protocol}
			}
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for port, l := range p.listeners {
		if _, ok := want[port]; !ok {
			l.Close()
			delete(p.listeners, port)
		}
	}
	p.routes = want
	for port := range want {
		if _, ok := p.listeners[port]; ok {
			continue
		}
		l, err := net.Listen("tcp", ":"+strconv.Itoa(int(port)))
		if err != nil {
			logf("node port %d: %v", port, err)
			continue
		}
		p.listeners[port] = l
		go p.serve(ctx, port, l)
	}
	return nil
}

func (p *proxier) serve(ctx context.Context, port int32, l net.Listener) {
	for {
		conn, err := l.Accept()
		if err != nil {
			return
		}
		go p.forward(ctx, port, conn)
	}
}

// forward connects a client to one ready endpoint of the Service (a connection refused when there is
// none, as the REJECT rule of the real one).
func (p *proxier) forward(ctx context.Context, port int32, conn net.Conn) {
	defer conn.Close()
	p.mu.Lock()
	r, ok := p.routes[port]
	p.mu.Unlock()
	if !ok {
		return
	}
	slices, err := p.cs.DiscoveryV1().EndpointSlices(r.namespace).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + r.service})
	if err != nil {
		return
	}
	var targets []string
	for _, sl := range slices.Items {
		for _, sp := range sl.Ports {
			if sp.Port == nil || (sp.Name != nil && *sp.Name != r.portName) {
				continue
			}
			for _, ep := range sl.Endpoints {
				if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
					continue
				}
				for _, a := range ep.Addresses {
					targets = append(targets, net.JoinHostPort(a, strconv.Itoa(int(*sp.Port))))
				}
			}
		}
	}
	if len(targets) == 0 {
		return
	}
	up, err := net.DialTimeout("tcp", targets[rand.IntN(len(targets))], 5*time.Second)
	if err != nil {
		return
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, conn); done <- struct{}{} }()
	go func() { _, _ = io.Copy(conn, up); done <- struct{}{} }()
	<-done
}
