package registry

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"mlplat.test/testbed/standins/internal/content"
	"mlplat.test/testbed/standins/internal/images"
)

func TestParseHostsFileOrderAndFields(t *testing.T) {
	dir := t.TempDir()
	b := []byte(`server = "https://registry-1.docker.io"

[host."https://zz-mirror.example:5000"]
  capabilities = ["pull", "resolve"]
  ca = "mirror.crt"
  [host."https://zz-mirror.example:5000".header]
    Authorization = "Basic dXNlcjpwYXNz"

[host."https://aa-mirror.example/sub"]
  capabilities = ["pull"]
  ca = ["/etc/a.pem", "b.pem"]
  skip_verify = true

[host."http://raw.example/v2/upstream"]
  override_path = true
  dial_timeout = "1s"
`)
	hosts, err := ParseHostsFile(dir, b)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, h := range hosts {
		got = append(got, h.URL())
	}
	want := []string{"https://zz-mirror.example:5000/v2", "https://aa-mirror.example/sub/v2", "http://raw.example/v2/upstream", "https://registry-1.docker.io/v2"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("hosts in file order then the server: got %v, want %v", got, want)
	}
	if hosts[0].Capabilities != CapPull|CapResolve || hosts[1].Capabilities != CapPull {
		t.Errorf("capabilities: %v %v", hosts[0].Capabilities, hosts[1].Capabilities)
	}
	if hosts[2].Capabilities != CapPull|CapResolve|CapPush|CapReferrers {
		t.Errorf("no capabilities means all: %v", hosts[2].Capabilities)
	}
	if len(hosts[0].CACerts) != 1 || hosts[0].CACerts[0] != filepath.Join(dir, "mirror.crt") {
		t.Errorf("ca relative to the file: %v", hosts[0].CACerts)
	}
	if strings.Join(hosts[1].CACerts, ",") != "/etc/a.pem,"+filepath.Join(dir, "b.pem") {
		t.Errorf("ca list: %v", hosts[1].CACerts)
	}
	if hosts[1].SkipVerify == nil || !*hosts[1].SkipVerify || hosts[0].SkipVerify != nil {
		t.Errorf("skip_verify: %v %v", hosts[1].SkipVerify, hosts[0].SkipVerify)
	}
	if hosts[0].Header.Get("Authorization") != "Basic dXNlcjpwYXNz" {
		t.Errorf("header: %v", hosts[0].Header)
	}
	if hosts[2].DialTimeout == nil || hosts[2].DialTimeout.String() != "1s" {
		t.Errorf("dial_timeout: %v", hosts[2].DialTimeout)
	}
	if _, err := ParseHostsFile(dir, []byte("[host.\"https://x\"]\n  capabilities = [\"fly\"]\n")); err == nil || err.Error() != "unknown capability fly" {
		t.Errorf("unknown capability: %v", err)
	}
}

func TestHostDirectoryOrder(t *testing.T) {
	root := t.TempDir()
	mk := func(d string) {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	check := func(host, want string) {
		t.Helper()
		got, err := HostDir(root, host)
		if err != nil {
			t.Fatal(err)
		}
		if want != "" {
			want = filepath.Join(root, want)
		}
		if got != want {
			t.Errorf("HostDir(%s) = %q, want %q", host, got, want)
		}
	}
	check("reg.example:5000", "")
	mk("_default")
	check("reg.example:5000", "_default")
	mk("reg.example:5000")
	check("reg.example:5000", "reg.example:5000")
	mk("reg.example_5000_")
	check("reg.example:5000", "reg.example_5000_")
	check("other.example", "_default")

	hosts, configured, err := ConfigureHosts(t.TempDir(), "docker.io")
	if err != nil || configured || len(hosts) != 1 || hosts[0].URL() != "https://registry-1.docker.io/v2" {
		t.Errorf("docker.io without configuration: %v %v %v", hosts, configured, err)
	}
	hosts, _, _ = ConfigureHosts("", "localhost:5000")
	if hosts[0].URL() != "http://localhost:5000/v2" || hosts[0].SkipVerify == nil || !*hosts[0].SkipVerify {
		t.Errorf("localhost with a port: %+v", hosts[0])
	}
	// A directory without hosts.toml: the registry itself with the directory's CA files.
	d := filepath.Join(root, "certs.example")
	mk("certs.example")
	os.WriteFile(filepath.Join(d, "ca.crt"), []byte("x"), 0o644)
	hosts, configured, _ = ConfigureHosts(root, "certs.example")
	if !configured || len(hosts) != 1 || hosts[0].URL() != "https://certs.example/v2" || len(hosts[0].CACerts) != 1 {
		t.Errorf("certificates directory: %+v", hosts)
	}
}

// testImage is an image of one linux/amd64 manifest behind an index (with an arm64 one whose content
// the registry lacks: a pull of amd64 must not need it).
type testImage struct {
	blobs    map[string][]byte // digest -> content
	index    string
	manifest string
	config   string
	layer    string
}

func jsonBlob(v any) []byte { b, _ := json.Marshal(v); return b }

func newTestImage() testImage {
	img := testImage{blobs: map[string][]byte{}}
	layer := []byte("layer of the test image\x00\x01\x02")
	img.layer = content.Digest(layer)
	cfg := jsonBlob(map[string]any{"architecture": "amd64", "os": "linux", "rootfs": map[string]any{"type": "layers", "diff_ids": []string{img.layer}}})
	img.config = content.Digest(cfg)
	mf := jsonBlob(map[string]any{"schemaVersion": 2, "mediaType": MediaTypeOCIManifest,
		"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": img.config, "size": len(cfg)},
		"layers": []any{map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": img.layer, "size": len(layer)}}})
	img.manifest = content.Digest(mf)
	idx := jsonBlob(map[string]any{"schemaVersion": 2, "mediaType": MediaTypeOCIIndex, "manifests": []any{
		map[string]any{"mediaType": MediaTypeOCIManifest, "digest": "sha256:" + strings.Repeat("a", 64), "size": 100, "platform": map[string]string{"os": "linux", "architecture": "arm64"}},
		map[string]any{"mediaType": MediaTypeOCIManifest, "digest": img.manifest, "size": len(mf), "platform": map[string]string{"os": "linux", "architecture": "amd64"}},
	}})
	img.index = content.Digest(idx)
	for _, b := range [][]byte{layer, cfg, mf, idx} {
		img.blobs[content.Digest(b)] = b
	}
	return img
}

// fakeRegistry serves the distribution endpoints a pull uses for repository repo, tag tag.
type fakeRegistry struct {
	srv      *httptest.Server
	img      testImage
	repo     string
	tag      string
	user     string // "": no authentication
	tampered string // a digest served with other bytes
	mu       sync.Mutex
	requests []string // "METHOD path?query"
}

func newFakeRegistry(t *testing.T, repo, tag string) *fakeRegistry {
	f := &fakeRegistry{img: newTestImage(), repo: repo, tag: tag}
	f.srv = httptest.NewTLSServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeRegistry) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests = append(f.requests, r.Method+" "+r.URL.RequestURI())
	f.mu.Unlock()
	if f.user != "" {
		if u, p, ok := r.BasicAuth(); !ok || u+":"+p != f.user {
			w.Header().Set("WWW-Authenticate", `Basic realm="Registry Realm"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
	}
	prefix := "/v2/" + f.repo + "/"
	if !strings.HasPrefix(r.URL.Path, prefix) {
		http.NotFound(w, r)
		return
	}
	kind, obj, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, prefix), "/")
	d := obj
	if kind == "manifests" && obj == f.tag {
		d = f.img.index
	}
	b, ok := f.img.blobs[d]
	if !ok {
		http.NotFound(w, r)
		return
	}
	if d == f.tampered {
		b = append([]byte{}, b...)
		b[0] ^= 0xff
	}
	if kind == "manifests" {
		var mt struct {
			MediaType string `json:"mediaType"`
		}
		json.Unmarshal(b, &mt)
		w.Header().Set("Content-Type", mt.MediaType)
		w.Header().Set("Docker-Content-Digest", d)
	}
	w.Header().Set("Content-Length", fmt.Sprint(len(b)))
	if r.Method != http.MethodHead {
		w.Write(b)
	}
}

func (f *fakeRegistry) host() string { return strings.TrimPrefix(f.srv.URL, "https://") }

// caFile writes the server's certificate as a CA file.
func (f *fakeRegistry) caFile(t *testing.T, dir string) string {
	p := filepath.Join(dir, "registry-ca.pem")
	pemb := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.srv.Certificate().Raw})
	if err := os.WriteFile(p, pemb, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

type testEnv struct {
	hostsDir string
	puller   *Puller
	logs     []string
	mu       sync.Mutex
}

func newEnv(t *testing.T, catalogue string) *testEnv {
	e := &testEnv{hostsDir: filepath.Join(t.TempDir(), "certs.d")}
	cat := filepath.Join(t.TempDir(), "images")
	os.WriteFile(cat, []byte(catalogue), 0o644)
	c, err := images.LoadCatalogue(cat)
	if err != nil {
		t.Fatal(err)
	}
	e.puller = &Puller{HostsDir: e.hostsDir, Content: content.Open(t.TempDir()), Catalogue: c, Version: "2.3.4",
		Log: func(format string, args ...any) {
			e.mu.Lock()
			e.logs = append(e.logs, fmt.Sprintf(format, args...))
			e.mu.Unlock()
		}}
	return e
}

func (e *testEnv) hostsToml(t *testing.T, registry, text string) {
	d := filepath.Join(e.hostsDir, registry)
	os.MkdirAll(d, 0o755)
	if err := os.WriteFile(filepath.Join(d, "hosts.toml"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (e *testEnv) log() string { e.mu.Lock(); defer e.mu.Unlock(); return strings.Join(e.logs, "\n") }

// A site mirror for registry.k8s.io: every request goes to it (with ?ns=), the public server is not
// used, the content is verified and stored, the image id is the config digest.
func TestPullFromMirror(t *testing.T) {
	reg := newFakeRegistry(t, "pause", "3.10")
	e := newEnv(t, "*\n")
	e.hostsToml(t, "registry.k8s.io", fmt.Sprintf("server = \"https://registry.k8s.io\"\n\n[host.\"https://%s\"]\n  capabilities = [\"pull\", \"resolve\"]\n  ca = %q\n",
		reg.host(), reg.caFile(t, t.TempDir())))
	res, err := e.puller.Pull(context.Background(), "registry.k8s.io/pause:3.10", nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Emulated || res.Config != reg.img.config || res.Target.Digest != reg.img.index || res.Host != reg.host() {
		t.Fatalf("result: %+v", res)
	}
	for _, d := range []string{reg.img.index, reg.img.manifest, reg.img.config, reg.img.layer} {
		if !e.puller.Content.Has(d) {
			t.Errorf("blob %s not in the content store", d)
		}
	}
	if strings.Join(res.Platforms, ",") != "linux/amd64,linux/arm64" {
		t.Errorf("platforms: %v", res.Platforms)
	}
	for _, r := range reg.requests {
		if !strings.HasSuffix(r, "?ns=registry.k8s.io") {
			t.Errorf("request without the namespace: %s", r)
		}
	}
	if !strings.HasPrefix(reg.requests[0], "HEAD /v2/pause/manifests/3.10") {
		t.Errorf("first request: %v", reg.requests)
	}
	l := e.log()
	if !strings.Contains(l, "msg=resolving host="+reg.host()) || !strings.Contains(l, "msg=fetch digest="+reg.img.layer) ||
		strings.Contains(l, "host=registry.k8s.io") {
		t.Errorf("log:\n%s", l)
	}
}

// A host that refuses connections is passed over for the next; the last error is reported when no
// host answers.
func TestPullFallsThroughConnectionErrors(t *testing.T) {
	reg := newFakeRegistry(t, "library/busybox", "1.36")
	lis, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := lis.Addr().String()
	lis.Close()
	e := newEnv(t, "offline\n")
	e.hostsToml(t, "docker.io", fmt.Sprintf("server = %q\n\n[host.\"http://%s\"]\n\n[host.\"https://%s\"]\n  skip_verify = true\n",
		"https://"+dead, dead, reg.host()))
	res, err := e.puller.Pull(context.Background(), "busybox:1.36", nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Config != reg.img.config {
		t.Fatalf("result %+v", res)
	}
	if !strings.Contains(e.log(), "msg=\"trying next host\"") {
		t.Errorf("log:\n%s", e.log())
	}

	e2 := newEnv(t, "offline\n")
	e2.hostsToml(t, "docker.io", fmt.Sprintf("server = \"http://%s\"\n", dead))
	_, err = e2.puller.Pull(context.Background(), "busybox:1.36", nil)
	want := fmt.Sprintf(`failed to resolve image: failed to do request: Head "http://%s/v2/library/busybox/manifests/1.36?ns=docker.io": dial tcp %s: connect: connection refused`, dead, dead)
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
}

func TestPullTamperedBlob(t *testing.T) {
	reg := newFakeRegistry(t, "site/app", "v1")
	reg.tampered = reg.img.layer
	e := newEnv(t, "")
	e.hostsToml(t, reg.host(), "[host.\"https://"+reg.host()+"\"]\n  skip_verify = true\n")
	_, err := e.puller.Pull(context.Background(), reg.host()+"/site/app:v1", nil)
	bad := reg.img.blobs[reg.img.layer]
	bad = append([]byte{}, bad...)
	bad[0] ^= 0xff
	want := fmt.Sprintf("failed commit on ref %q: unexpected commit digest %s, expected %s: failed precondition", "layer-"+reg.img.layer, content.Digest(bad), reg.img.layer)
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
	if e.puller.Content.Has(reg.img.layer) || e.puller.Content.Has(content.Digest(bad)) {
		t.Error("a tampered blob was committed")
	}
}

func TestPullUnauthorized(t *testing.T) {
	reg := newFakeRegistry(t, "site/app", "v1")
	reg.user = "user:pass"
	e := newEnv(t, "")
	e.hostsToml(t, "site.example", "server = \"https://"+reg.host()+"\"\nskip_verify = true\n")
	_, err := e.puller.Pull(context.Background(), "site.example/site/app:v1", nil)
	want := "failed to resolve image: pull access denied, repository does not exist or may require authorization: authorization failed: no basic auth credentials"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
	// Wrong credentials from the request: retried, then the 401 stands.
	_, err = e.puller.Pull(context.Background(), "site.example/site/app:v1", func(string) (string, string) { return "user", "wrong" })
	if err == nil || !strings.HasSuffix(err.Error(), "?ns=site.example: 401 Unauthorized") || !strings.Contains(err.Error(), "unexpected status from HEAD request to https://") {
		t.Fatalf("wrong credentials: %v", err)
	}
	// The site's credentials in hosts.toml's header.
	e.hostsToml(t, "site.example", "server = \"https://"+reg.host()+"\"\nskip_verify = true\n[header]\n  Authorization = \"Basic dXNlcjpwYXNz\"\n")
	if _, err := e.puller.Pull(context.Background(), "site.example/site/app:v1", nil); err != nil {
		t.Fatal(err)
	}
}

// Without hosts.toml: the public registry is the testbed's catalogue; offline it cannot be reached,
// and no packet leaves (the address is never even resolved).
func TestPullPublicRegistry(t *testing.T) {
	e := newEnv(t, "registry.k8s.io/pause:3.10\n")
	res, err := e.puller.Pull(context.Background(), "registry.k8s.io/pause:3.10", nil)
	if err != nil || !res.Emulated {
		t.Fatalf("catalogue image: %+v %v", res, err)
	}
	_, err = e.puller.Pull(context.Background(), "registry.k8s.io/other:1", nil)
	if err == nil || err.Error() != "failed to resolve image: registry.k8s.io/other:1: not found" {
		t.Fatalf("not in the catalogue: %v", err)
	}
	off := newEnv(t, "offline\n*\n")
	_, err = off.puller.Pull(context.Background(), "busybox", nil)
	want := `failed to resolve image: failed to do request: Head "https://registry-1.docker.io/v2/library/busybox/manifests/latest": dial tcp: connect: network is unreachable`
	if err == nil || err.Error() != want {
		t.Fatalf("offline: got %v\nwant %s", err, want)
	}
	// A public address literal is no test network either.
	off.hostsToml(t, "docker.io", "server = \"https://8.8.8.8\"\n")
	_, err = off.puller.Pull(context.Background(), "busybox", nil)
	if err == nil || !strings.Contains(err.Error(), "dial tcp: connect: network is unreachable") {
		t.Fatalf("public address: %v", err)
	}
}
