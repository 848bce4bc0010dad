package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
	"google.golang.org/grpc"
	criapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"mlplat.test/testbed/standins/internal/content"
	"mlplat.test/testbed/standins/internal/images"
)

type fakeRuntime struct {
	criapi.UnimplementedRuntimeServiceServer
}

func (fakeRuntime) Version(context.Context, *criapi.VersionRequest) (*criapi.VersionResponse, error) {
	return &criapi.VersionResponse{RuntimeName: "containerd", RuntimeVersion: "v2.3.4"}, nil
}

// daemonSocket serves a containerd stand-in's runtime service on a socket of the test's own.
func daemonSocket(t *testing.T) string {
	sock := filepath.Join(t.TempDir(), "containerd.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	criapi.RegisterRuntimeServiceServer(srv, fakeRuntime{})
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return sock
}

// run runs ctr with args and returns its stdout, stderr and error.
func run(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	outR, outW, _ := os.Pipe()
	errR, errW, _ := os.Pipe()
	oldOut, oldErr := os.Stdout, os.Stderr
	os.Stdout, os.Stderr = outW, errW
	app := newApp("v2.3.4")
	app.Writer, app.ErrWriter = outW, errW
	exit := -1
	cli.OsExiter = func(code int) { exit = code }
	err := app.Run(append([]string{"ctr"}, args...))
	os.Stdout, os.Stderr = oldOut, oldErr
	outW.Close()
	errW.Close()
	o, _ := io.ReadAll(outR)
	e, _ := io.ReadAll(errR)
	if exit >= 0 {
		err = fmt.Errorf("exit %d: %v", exit, err)
	}
	return string(o), string(e), err
}

type archiveBlob struct {
	name string
	data []byte
}

// ociArchive writes an OCI image layout tar as skopeo's oci-archive: writes it, one linux/amd64
// image named ref; tamper names a blob ("layer", "manifest") written with other bytes under its name.
func ociArchive(t *testing.T, ref, tamper string) (file, manifestDigest, configDigest, layerDigest string) {
	layer := []byte("a layer of the imported image")
	layerDigest = content.Digest(layer)
	cfg, _ := json.Marshal(map[string]any{"architecture": "amd64", "os": "linux", "rootfs": map[string]any{"type": "layers", "diff_ids": []string{layerDigest}}})
	configDigest = content.Digest(cfg)
	mf, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": configDigest, "size": len(cfg)},
		"layers": []any{map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layerDigest, "size": len(layer)}}})
	manifestDigest = content.Digest(mf)
	idx, _ := json.Marshal(map[string]any{"schemaVersion": 2, "manifests": []any{map[string]any{
		"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifestDigest, "size": len(mf),
		"annotations": map[string]string{"org.opencontainers.image.ref.name": ref}}}})
	flip := func(b []byte) []byte { c := append([]byte{}, b...); c[len(c)-1] ^= 1; return c }
	var files []archiveBlob
	files = append(files, archiveBlob{"oci-layout", []byte(`{"imageLayoutVersion": "1.0.0"}`)})
	for _, b := range []struct {
		kind string
		data []byte
	}{{"layer", layer}, {"config", cfg}, {"manifest", mf}} {
		data := b.data
		if b.kind == tamper {
			data = flip(data)
		}
		files = append(files, archiveBlob{"blobs/sha256/" + content.Digest(b.data)[7:], data})
	}
	files = append(files, archiveBlob{"index.json", idx})
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "blobs/", Typeflag: tar.TypeDir, Mode: 0o755})
	tw.WriteHeader(&tar.Header{Name: "blobs/sha256/", Typeflag: tar.TypeDir, Mode: 0o755})
	for _, f := range files {
		tw.WriteHeader(&tar.Header{Name: f.name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(f.data))})
		tw.Write(f.data)
	}
	tw.Close()
	file = filepath.Join(t.TempDir(), "image.tar")
	os.WriteFile(file, buf.Bytes(), 0o644)
	return
}

func TestImportOCIArchive(t *testing.T) {
	contentRoot = t.TempDir()
	sock := daemonSocket(t)
	ref := "registry.example:5000/site/my-app:v1"
	file, mdgst, cdgst, ldgst := ociArchive(t, ref, "")
	out, errOut, err := run(t, "-a", sock, "-n", "k8s.io", "images", "import", file)
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	want := fmt.Sprintf("%-40.40s\tsaved\t\napplication/vnd.oci.image.manifest.v1+json %s\nImporting\telapsed: ", "registry.example:5000/site/my app:v1", mdgst)
	if !strings.HasPrefix(out, want) || !strings.HasSuffix(out, "\ttotal:   0.0 B\t(0.0 B/s)\t\n") {
		t.Errorf("output:\n%q\nwant a start of\n%q", out, want)
	}
	st := images.OpenStore(images.StorePath(contentRoot, "k8s.io"))
	rec, ok, _ := st.Get(ref)
	if !ok || rec.Config != cdgst || rec.Target.Digest != mdgst || rec.Labels[images.ManagedLabel] != "managed" {
		t.Fatalf("record %+v %v", rec, ok)
	}
	if _, ok, _ := st.Get(cdgst); !ok {
		t.Error("no id reference, as the CRI plugin makes")
	}
	if !content.Open(contentRoot).Has(ldgst) {
		t.Error("layer not in the content store")
	}
	out, _, err = run(t, "-a", sock, "-n", "k8s.io", "images", "ls")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if err != nil || len(lines) != 3 || strings.Join(strings.Fields(lines[0]), " ") != "REF TYPE DIGEST SIZE PLATFORMS LABELS" ||
		strings.Join(strings.Fields(lines[1]), " ") != ref+" application/vnd.oci.image.manifest.v1+json "+mdgst+" 575.0 B linux/amd64 io.cri-containerd.image=managed" {
		t.Errorf("ls: %v\n%s", err, out)
	}
	out, _, _ = run(t, "-a", sock, "-n", "k8s.io", "i", "ls", "-q")
	if out != ref+"\n"+cdgst+"\n" {
		t.Errorf("ls -q: %q", out)
	}
	// Another namespace is another set of images.
	out, _, _ = run(t, "-a", sock, "images", "ls", "-q")
	if out != "" {
		t.Errorf("namespace default: %q", out)
	}
	out, _, err = run(t, "-a", sock, "-n", "k8s.io", "images", "rm", ref)
	if err != nil || out != ref+"\n" {
		t.Errorf("rm: %v %q", err, out)
	}
	if _, ok, _ := st.Get(ref); ok {
		t.Error("still there after rm")
	}
	_, errOut, err = run(t, "-a", sock, "-n", "k8s.io", "images", "rm", ref)
	if err != nil || !strings.Contains(errOut, ref+": image not found") {
		t.Errorf("rm of a missing image: %v %q", err, errOut)
	}
	// A tag-only name gets the base name (or the import-date prefix).
	file, _, _, _ = ociArchive(t, "v2", "")
	if _, _, err := run(t, "-a", sock, "-n", "k8s.io", "images", "import", "--base-name", "site.example/app", file); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := st.Get("site.example/app:v2"); !ok {
		t.Error("base name not applied")
	}
}

func TestImportTamperedBlob(t *testing.T) {
	contentRoot = t.TempDir()
	sock := daemonSocket(t)
	file, _, _, ldgst := ociArchive(t, "site.example/app:v1", "layer")
	_, _, err := run(t, "-a", sock, "-n", "k8s.io", "images", "import", file)
	if err == nil || !strings.HasPrefix(err.Error(), "failed to extract layer (application/vnd.oci.image.layer.v1.tar "+ldgst+") to overlayfs as \"extract-") ||
		!strings.HasSuffix(err.Error(), ": content digest "+ldgst+": not found") {
		t.Fatalf("tampered layer: %v", err)
	}
	contentRoot = t.TempDir() // the first archive's manifest is in the content store now (as in containerd's)
	file, mdgst, _, _ := ociArchive(t, "site.example/app:v1", "manifest")
	_, _, err = run(t, "-a", sock, "-n", "k8s.io", "images", "import", "--no-unpack", file)
	if err == nil || err.Error() != "content digest "+mdgst+": not found" {
		t.Fatalf("tampered manifest: %v", err)
	}
	if _, ok, _ := images.OpenStore(images.StorePath(contentRoot, "k8s.io")).Get("site.example/app:v1"); ok {
		t.Error("a tampered image was named")
	}
}

func TestCtrNeedsContainerd(t *testing.T) {
	contentRoot = t.TempDir()
	missing := filepath.Join(t.TempDir(), "containerd.sock")
	_, _, err := run(t, "-a", missing, "images", "ls")
	if err == nil || err.Error() != "cannot access socket "+missing+": stat "+missing+": no such file or directory" {
		t.Errorf("no socket: %v", err)
	}
	// A socket left by a killed daemon: nothing listens.
	stale := filepath.Join(t.TempDir(), "containerd.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	_, errOut, err := run(t, "-a", stale, "-n", "k8s.io", "images", "import", "x.tar")
	if err == nil || !strings.Contains(err.Error(), "dial unix "+stale+": connect: connection refused") || !strings.HasSuffix(err.Error(), ": unavailable") {
		t.Errorf("stale socket: %v", err)
	}
	if !strings.Contains(errOut, "Failed to check deprecations") {
		t.Errorf("stderr: %q", errOut)
	}
}

func TestCtrCommandLine(t *testing.T) {
	sock := daemonSocket(t)
	out, _, err := run(t, "--version")
	if err != nil || out != "ctr github.com/containerd/containerd/v2 v2.3.4\n" {
		t.Errorf("--version: %v %q", err, out)
	}
	out, _, err = run(t, "-a", sock, "version")
	if err != nil || !strings.Contains(out, "Server:\n  Version:  v2.3.4\n") {
		t.Errorf("version: %v %q", err, out)
	}
	// urfave/cli's answer, as ctr's: "No help topic for 'frob'", exit status 3.
	for _, args := range [][]string{{"frob"}, {"-a", sock, "images", "frob"}} {
		cli.ErrWriter = io.Discard
		if _, _, err := run(t, args...); err == nil || !strings.HasPrefix(err.Error(), "exit 3: No help topic for 'frob'") {
			t.Errorf("%v: %v", args, err)
		}
	}
	_, _, err = run(t, "-a", sock, "images", "ls", "--frob")
	if err == nil || err.Error() != "flag provided but not defined: -frob" {
		t.Errorf("unknown flag: %v", err)
	}
}
