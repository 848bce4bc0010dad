// The testbed's stand-in for the kubelet: a test host cannot run pods, so this plays the kubelet's
// part in what kubeadm and the cluster rely on, with the real kubelet's own code where it is a library:
//   - flags and config: the kubelet's flags that kubeadm's drop-in passes (unknown flags are refused,
//     as by the real one), the KubeletConfiguration file (missing file: exit 1, as the real one; the
//     service manager restarts it), failSwapOn (the real kubelet refuses to start with swap on);
//   - client credentials: pkg/kubelet/certificate/bootstrap and pkg/kubelet/certificate, the real
//     kubelet's TLS bootstrap (a CSR made with bootstrap-kubelet.conf, approved and signed by the real
//     controller-manager, kubelet.conf written pointing at kubelet-client-current.pem) and rotation;
//   - static pods: pkg/kubelet/config's file source (the real decoding, defaulting, validation, UIDs
//     and config.hash), each container run as a host process: the image's program from the testbed's
//     registry (pulled through the CRI first) with the manifest's command, args and env; a changed
//     manifest restarts the pod, a removed one stops it; processes outlive a kubelet restart, as
//     containers do, and are adopted again; mirror pods created and their status kept;
//   - the Node: registered with the kubelet's credentials (so the Node authorizer and NodeRestriction
//     apply), status and conditions (Ready only when the CRI reports the network ready), the node
//     Lease renewed, the healthz endpoint on 127.0.0.1:10248;
//   - every other pod bound to the node is played by kwok, started by this stand-in for its node.
//
// What mirrors which upstream source is listed in docs/testbed.md.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/pflag"

	"mlplat.test/testbed/standins/internal/standin"
)

// flags are those of the real kubelet that kubeadm's drop-in and kubeadm-flags.env pass, or that
// mlplat may pass through kubeletExtraArgs.
type flags struct {
	bootstrapKubeconfig string
	kubeconfig          string
	config              string
	runtimeEndpoint     string
	nodeIP              string
	hostnameOverride    string
	nodeLabels          map[string]string
	registerWithTaints  []string
	podInfraImage       string
	certDir             string
	runtimeEndpointSet  bool
	verbosity           int
	version             bool
}

func parseFlags(args []string) (*flags, error) {
	f := &flags{}
	fs := pflag.NewFlagSet("kubelet", pflag.ContinueOnError)
	fs.StringVar(&f.bootstrapKubeconfig, "bootstrap-kubeconfig", "", "")
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "")
	fs.StringVar(&f.config, "config", "", "")
	fs.StringVar(&f.runtimeEndpoint, "container-runtime-endpoint", "", "")
	fs.StringVar(&f.nodeIP, "node-ip", "", "")
	fs.StringVar(&f.hostnameOverride, "hostname-override", "", "")
	fs.StringToStringVar(&f.nodeLabels, "node-labels", nil, "")
	fs.StringSliceVar(&f.registerWithTaints, "register-with-taints", nil, "")
	fs.StringVar(&f.podInfraImage, "pod-infra-container-image", "", "")
	fs.StringVar(&f.certDir, "cert-dir", "/var/lib/kubelet/pki", "")
	fs.IntVarP(&f.verbosity, "v", "v", 0, "")
	fs.BoolVar(&f.version, "version", false, "")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	f.runtimeEndpointSet = fs.Changed("container-runtime-endpoint")
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unknown command %q", strings.Join(fs.Args(), " "))
	}
	return f, nil
}

func main() {
	if len(os.Args) == 3 && os.Args[1] == "__container" { // a container of an API pod (container.go)
		os.Exit(runContainerHelper(os.Args[2]))
	}
	version := standin.Version("kubelet")
	f, err := parseFlags(os.Args[1:])
	if err != nil {
		// As the real kubelet's cobra command: the error, then exit 1.
		fmt.Fprintf(os.Stderr, "Error: %v\n", err)
		os.Exit(1)
	}
	if f.version {
		fmt.Printf("Kubernetes v%s\n", version)
		return
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	k, err := newKubelet(ctx, f, version)
	if err != nil {
		fmt.Fprintf(os.Stderr, "E kubelet: %v\n", err)
		os.Exit(1)
	}
	if err := k.run(ctx); err != nil && ctx.Err() == nil {
		fmt.Fprintf(os.Stderr, "E kubelet: %v\n", err)
		os.Exit(1)
	}
}
