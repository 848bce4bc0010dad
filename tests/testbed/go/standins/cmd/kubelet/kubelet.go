package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace/noop"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	clientset "k8s.io/client-go/kubernetes"
	restclient "k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/certificate"
	nodeutil "k8s.io/component-helpers/node/util"
	internalapi "k8s.io/cri-api/pkg/apis"
	criclient "k8s.io/cri-client/pkg"
	"k8s.io/klog/v2"
	kubeletconfig "k8s.io/kubernetes/pkg/kubelet/apis/config"
	kubeletcertificate "k8s.io/kubernetes/pkg/kubelet/certificate"
	"k8s.io/kubernetes/pkg/kubelet/certificate/bootstrap"
	"k8s.io/kubernetes/pkg/kubelet/kubeletconfig/configfiles"
	"k8s.io/kubernetes/pkg/kubelet/util/swap"
	utilfs "k8s.io/kubernetes/pkg/util/filesystem"
)

type kubelet struct {
	flags     *flags
	version   string
	config    *kubeletconfig.KubeletConfiguration
	nodeName  types.NodeName
	nodeIP    net.IP
	runtime   internalapi.RuntimeService
	images    internalapi.ImageManagerService
	client    clientset.Interface
	apiServer string // the API server's URL this kubelet uses

	mu      sync.Mutex
	nodeUID types.UID // once registered
	pods    *staticPods
	logger  klog.Logger
}

func newKubelet(ctx context.Context, f *flags, version string) (*kubelet, error) {
	logger := klog.FromContext(ctx)
	k := &kubelet{flags: f, version: version, logger: logger}
	if f.config == "" {
		return nil, fmt.Errorf("the kubelet stand-in needs --config (kubeadm's drop-in passes it)")
	}
	loader, err := configfiles.NewFsLoader(&utilfs.DefaultFs{}, f.config)
	if err != nil {
		return nil, err
	}
	k.config, err = loader.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("failed to load kubelet config file, path: %s, error: %w", f.config, err)
	}
	if k.config.FailSwapOn {
		on, err := swap.IsSwapOn()
		if err != nil {
			return nil, fmt.Errorf("failed to determine if swap is on: %w", err)
		}
		if on {
			return nil, fmt.Errorf("failed to run Kubelet: running with swap on is not supported, please disable swap or set --fail-swap-on flag to false")
		}
	}
	// The runtime endpoint: the flag when given, else the config file's (kubeadm writes it there).
	if !f.runtimeEndpointSet {
		f.runtimeEndpoint = k.config.ContainerRuntimeEndpoint
	}
	if f.runtimeEndpoint == "" {
		return nil, fmt.Errorf("failed to run Kubelet: the container runtime endpoint is not set (containerRuntimeEndpoint or --container-runtime-endpoint)")
	}
	hostname, err := nodeutil.GetHostname(f.hostnameOverride)
	if err != nil {
		return nil, err
	}
	k.nodeName = types.NodeName(hostname)
	if k.nodeIP, err = chooseNodeIP(f.nodeIP, hostname); err != nil {
		return nil, err
	}
	tp := noop.NewTracerProvider()
	if k.runtime, err = criclient.NewRemoteRuntimeService(ctx, f.runtimeEndpoint, 2*time.Minute, tp, false); err != nil {
		return nil, err
	}
	if k.images, err = criclient.NewRemoteImageService(ctx, f.runtimeEndpoint, 2*time.Minute, tp, false); err != nil {
		return nil, err
	}
	// As the real kubelet at start: the runtime must answer (the kubelet exits otherwise and is restarted).
	if _, err := k.runtime.Version(ctx, "0.1.0"); err != nil {
		return nil, fmt.Errorf("failed to run Kubelet: validate service connection: validate CRI v1 runtime API for endpoint %q: %w", f.runtimeEndpoint, err)
	}
	if err := k.buildClient(ctx); err != nil {
		return nil, err
	}
	return k, nil
}

// chooseNodeIP is the kubelet's choice of its node address: --node-ip, else the first address of its
// hostname that is not a loopback one (pkg/kubelet/nodestatus/setters.go, NodeAddress).
func chooseNodeIP(flag, hostname string) (net.IP, error) {
	if flag != "" {
		ip := net.ParseIP(flag)
		if ip == nil {
			return nil, fmt.Errorf("failed to run Kubelet: bad --node-ip %q", flag)
		}
		return ip, nil
	}
	addrs, err := net.LookupIP(hostname)
	if err != nil {
		return nil, fmt.Errorf("failed to run Kubelet: can't get ip address of node %s: %w", hostname, err)
	}
	for _, a := range addrs {
		if !a.IsLoopback() && a.To4() != nil {
			return a, nil
		}
	}
	return nil, fmt.Errorf("failed to run Kubelet: no non-loopback address for node %s", hostname)
}

// buildClient follows cmd/kubelet/app/server.go (buildKubeletClientConfig) of the release: with
// certificate rotation, the client certificate manager is seeded from kubelet.conf (kubeadm's init
// node) or bootstraps through bootstrap-kubelet.conf (a join); without it, LoadClientCert.
func (k *kubelet) buildClient(ctx context.Context) error {
	f := k.flags
	if k.config.RotateCertificates {
		certConfig, clientConfig, err := bootstrap.LoadClientConfig(k.logger, f.kubeconfig, f.bootstrapKubeconfig, f.certDir)
		if err != nil {
			return err
		}
		newClientset := func(current *tls.Certificate) (clientset.Interface, error) {
			cfg := certConfig
			if current != nil {
				cfg = clientConfig
			}
			return clientset.NewForConfig(cfg)
		}
		var mgr certificate.Manager
		mgr, err = kubeletcertificate.NewKubeletClientCertificateManager(f.certDir, k.nodeName, clientConfig.CertData, clientConfig.KeyData,
			clientConfig.CertFile, clientConfig.KeyFile, newClientset)
		if err != nil {
			return err
		}
		transportConfig := restclient.AnonymousClientConfig(clientConfig)
		if _, err := kubeletcertificate.UpdateTransport(k.logger, wait.NeverStop, transportConfig, mgr, 5*time.Minute); err != nil {
			return err
		}
		mgr.Start()
		k.apiServer = transportConfig.Host
		k.client, err = clientset.NewForConfig(transportConfig)
		return err
	}
	if f.bootstrapKubeconfig != "" {
		if err := bootstrap.LoadClientCert(ctx, f.kubeconfig, f.bootstrapKubeconfig, f.certDir, k.nodeName); err != nil {
			return err
		}
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(&clientcmd.ClientConfigLoadingRules{ExplicitPath: f.kubeconfig},
		&clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return fmt.Errorf("invalid kubeconfig: %w", err)
	}
	k.apiServer = cfg.Host
	k.client, err = clientset.NewForConfig(cfg)
	return err
}

func (k *kubelet) run(ctx context.Context) error {
	errs := make(chan error, 2)
	go func() { errs <- k.serveHealthz(ctx) }()
	k.pods = newStaticPods(k)
	go k.pods.run(ctx)
	go newAPIPods(k).run(ctx)
	go k.syncNode(ctx)
	go k.runKwok(ctx)
	select {
	case <-ctx.Done():
		return nil
	case err := <-errs:
		return err
	}
}

// serveHealthz serves the kubelet's healthz endpoint (healthzBindAddress:healthzPort, 127.0.0.1:10248
// by default), which kubeadm polls after starting the kubelet.
func (k *kubelet) serveHealthz(ctx context.Context) error {
	if k.config.HealthzPort == 0 {
		<-ctx.Done()
		return nil
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	srv := &http.Server{Addr: net.JoinHostPort(k.config.HealthzBindAddress, strconv.Itoa(int(k.config.HealthzPort))), Handler: mux}
	go func() { <-ctx.Done(); _ = srv.Close() }()
	if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		return fmt.Errorf("failed to start healthz server: %w", err)
	}
	return nil
}

// logf writes one line to the kubelet's log (stderr: the service manager keeps it).
func (k *kubelet) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s kubelet: %s\n", time.Now().UTC().Format(time.RFC3339), fmt.Sprintf(format, args...))
}
