// The testbed's stand-in for containerd (no container can run on a test host). It is what mlplat
// installs as /usr/local/bin/containerd from the bundle, and what the service manager stand-in runs for
// containerd.service. As the real containerd 2.x it:
//   - answers `--version` and `config default`;
//   - refuses to start on a config file whose version is not 3 (containerd 2.x, config version 3);
//   - serves the CRI (k8s.io/cri-api runtime/v1) on /run/containerd/containerd.sock: Version, Status
//     (NetworkReady only once a CNI network config exists in /etc/cni/net.d, as the CRI plugin reports
//     it: "cni plugin not initialized" before), RuntimeConfig (the cgroup driver of SystemdCgroup), and
//     the image service (image.go): a pull follows the registry hosts of config_path's hosts.toml with
//     real distribution requests (package registry) into the content store (package content); a
//     public registry is the testbed's catalogue (package images), unreachable on an offline host;
//     ImageStatus knows what was pulled or imported (ctr, cmd/ctr) into namespace k8s.io;
//   - answers the pod sandbox calls kubeadm reset makes (ListPodSandbox, StopPodSandbox,
//     RemovePodSandbox: sandbox.go) over the pods the kubelet stand-in runs as host processes.
//
// Everything else of the CRI answers Unimplemented: the kubelet stand-in starts its containers itself,
// not through the CRI.
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"

	"google.golang.org/grpc"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"mlplat.test/testbed/standins/internal/content"
	"mlplat.test/testbed/standins/internal/images"
	"mlplat.test/testbed/standins/internal/sandbox"
	"mlplat.test/testbed/standins/internal/standin"
)

const (
	configPath  = "/etc/containerd/config.toml"
	socketPath  = "/run/containerd/containerd.sock"
	cniConfDir  = "/etc/cni/net.d"
	hostsFile   = "/etc/hosts"
	defaultConf = "version = 3\nroot = \"/var/lib/containerd\"\nstate = \"/run/containerd\"\n\n[grpc]\n  address = \"/run/containerd/containerd.sock\"\n"
)

func main() {
	version := standin.Version("containerd")
	args := os.Args[1:]
	if len(args) > 0 {
		switch args[0] {
		case "--version", "-v":
			fmt.Printf("containerd github.com/containerd/containerd/v2 v%s mlplat-testbed-standin\n", version)
			return
		case "config":
			if len(args) > 1 && args[1] == "default" {
				fmt.Print(defaultConf)
				return
			}
		case "--config", "-c":
		default:
			fmt.Fprintf(os.Stderr, "containerd stand-in: '%s' is not handled\n", strings.Join(args, " "))
			os.Exit(1)
		}
	}
	cfg := configPath
	if len(args) > 1 && (args[0] == "--config" || args[0] == "-c") {
		cfg = args[1]
	}
	if err := serve(cfg, version); err != nil {
		fmt.Fprintf(os.Stderr, "containerd: %v\n", err)
		os.Exit(1)
	}
}

type config struct {
	systemdCgroup bool
	configPath    string // the CRI's registry config_path ("" when unset, as containerd's default)
}

var configPathLine = regexp.MustCompile(`(?m)^\s*config_path\s*=\s*['"]([^'"]*)['"]\s*$`)

var versionLine = regexp.MustCompile(`(?m)^\s*version\s*=\s*(\d+)\s*$`)

// loadConfig reads what the stand-in honours of containerd's config; a missing file is the defaults,
// as for the real daemon.
func loadConfig(path string) (config, error) {
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return config{}, nil
	}
	if err != nil {
		return config{}, err
	}
	m := versionLine.FindSubmatch(data)
	if m == nil || string(m[1]) != "3" {
		got := "none"
		if m != nil {
			got = string(m[1])
		}
		return config{}, fmt.Errorf("failed to load TOML %s: unsupported config version %s (containerd 2.x reads version 3)", path, got)
	}
	cfg := config{systemdCgroup: regexp.MustCompile(`(?m)^\s*SystemdCgroup\s*=\s*true\s*$`).Match(data)}
	if m := configPathLine.FindSubmatch(data); m != nil {
		cfg.configPath = string(m[1])
	}
	return cfg, nil
}

func serve(cfgPath, version string) error {
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(socketPath), 0o711); err != nil {
		return err
	}
	_ = os.Remove(socketPath)
	lis, err := net.Listen("unix", socketPath)
	if err != nil {
		return err
	}
	_ = os.Chmod(socketPath, 0o660)
	srv := grpc.NewServer()
	cri := &cri{version: version, cfg: cfg, podsDir: sandbox.PodsDir}
	runtime.RegisterRuntimeServiceServer(srv, cri)
	runtime.RegisterImageServiceServer(srv, newImageService(content.Root, cfg.configPath, images.CataloguePath, hostsFile, version))
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	go func() { <-stop; srv.Stop() }()
	standin.NotifyReady()
	return srv.Serve(lis)
}

type cri struct {
	runtime.UnimplementedRuntimeServiceServer
	version string
	cfg     config
	podsDir string     // the kubelet's pods directory (sandbox.PodsDir; a test's own)
	mu      sync.Mutex // one sandbox call at a time
}

func (c *cri) Version(context.Context, *runtime.VersionRequest) (*runtime.VersionResponse, error) {
	return &runtime.VersionResponse{Version: "0.1.0", RuntimeName: "containerd", RuntimeVersion: "v" + c.version, RuntimeApiVersion: "v1"}, nil
}

// networkConfig returns the first CNI network config file in the conf dir, as libcni orders them.
func networkConfig() string {
	var found []string
	for _, pat := range []string{"*.conf", "*.conflist", "*.json"} {
		m, _ := filepath.Glob(filepath.Join(cniConfDir, pat))
		found = append(found, m...)
	}
	if len(found) == 0 {
		return ""
	}
	first := found[0]
	for _, f := range found {
		if filepath.Base(f) < filepath.Base(first) {
			first = f
		}
	}
	return first
}

func (c *cri) Status(context.Context, *runtime.StatusRequest) (*runtime.StatusResponse, error) {
	netCond := &runtime.RuntimeCondition{Type: runtime.NetworkReady, Status: true}
	if networkConfig() == "" {
		netCond.Status = false
		netCond.Reason = "NetworkPluginNotReady"
		netCond.Message = "Network plugin returns error: cni plugin not initialized"
	}
	// The conditions containerd 2.x reports (internal/cri/server/status.go): RuntimeReady, NetworkReady,
	// and whether it has deprecation warnings (none here).
	return &runtime.StatusResponse{Status: &runtime.RuntimeStatus{Conditions: []*runtime.RuntimeCondition{
		{Type: runtime.RuntimeReady, Status: true}, netCond, {Type: "ContainerdHasNoDeprecationWarnings", Status: true},
	}}}, nil
}

func (c *cri) RuntimeConfig(context.Context, *runtime.RuntimeConfigRequest) (*runtime.RuntimeConfigResponse, error) {
	driver := runtime.CgroupDriver_CGROUPFS
	if c.cfg.systemdCgroup {
		driver = runtime.CgroupDriver_SYSTEMD
	}
	return &runtime.RuntimeConfigResponse{Linux: &runtime.LinuxRuntimeConfiguration{CgroupDriver: driver}}, nil
}

// imageService is the CRI image service of image.go.
