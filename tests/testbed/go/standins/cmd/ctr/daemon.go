package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	criapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"mlplat.test/testbed/standins/internal/content"
	"mlplat.test/testbed/standins/internal/images"
)

// contentRoot is the content store the daemon stand-in keeps (a test points it elsewhere).
var contentRoot = content.Root

func goVersion() string { return runtime.Version() }

// daemon is a connection to the containerd stand-in.
type daemon struct {
	conn *grpc.ClientConn
	ns   string
}

// connect reaches containerd at --address as commands.NewClient does: a missing socket is "cannot
// access socket"; then one call, whose failure (nothing listening) is the command's error, after the
// warning ctr logs when its first call (the deprecation check) fails.
func connect(c *cli.Context) (*daemon, error) {
	addr := c.String("address")
	if _, err := os.Stat(addr); err != nil {
		return nil, fmt.Errorf("cannot access socket %s: %w", addr, err)
	}
	conn, err := grpc.NewClient("unix://"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("failed to dial %q: %w", addr, err)
	}
	d := &daemon{conn: conn, ns: c.String("namespace")}
	timeout := c.Duration("connect-timeout")
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if _, err := criapi.NewRuntimeServiceClient(conn).Version(ctx, &criapi.VersionRequest{}); err != nil {
		nerr := toNative(err)
		fmt.Fprintf(os.Stderr, "time=%q level=warning msg=\"Failed to check deprecations\" error=%q\n", time.Now().Format(time.RFC3339Nano), nerr.Error())
		return nil, nerr
	}
	return d, nil
}

// toNative is errgrpc.ToNative's message: the status's description and its class (": unavailable").
func toNative(err error) error {
	s, ok := status.FromError(err)
	if !ok {
		return err
	}
	cls := map[codes.Code]string{codes.Unavailable: "unavailable", codes.NotFound: "not found", codes.Unknown: "unknown",
		codes.DeadlineExceeded: "context deadline exceeded", codes.Unimplemented: "not implemented", codes.Internal: "internal"}[s.Code()]
	if cls == "" {
		cls = "unknown"
	}
	msg := strings.TrimSuffix(s.Message(), ": "+cls)
	if msg == cls {
		return fmt.Errorf("%s", cls)
	}
	return fmt.Errorf("%s: %s", msg, cls)
}

func (d *daemon) version(ctx context.Context) (string, error) {
	v, err := criapi.NewRuntimeServiceClient(d.conn).Version(ctx, &criapi.VersionRequest{})
	if err != nil {
		return "", err
	}
	return v.RuntimeVersion, nil
}

// uuid is the daemon's, stable for a host (its machine id).
func (d *daemon) uuid() string {
	id, _ := os.ReadFile("/etc/machine-id")
	s := sha256.Sum256(append([]byte("containerd"), id...))
	return fmt.Sprintf("%x-%x-%x-%x-%x", s[0:4], s[4:6], s[6:8], s[8:10], s[10:16])
}

func (d *daemon) store() *images.Store {
	return images.OpenStore(images.StorePath(contentRoot, d.ns))
}
