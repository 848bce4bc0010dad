package registry

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"mlplat.test/testbed/standins/internal/content"
	"mlplat.test/testbed/standins/internal/images"
)

// Media types (core/images/mediatypes.go, image-spec).
const (
	MediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeOCIManifest        = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeOCIIndex           = "application/vnd.oci.image.index.v1+json"
	mediaTypeDockerSchema1      = "application/vnd.docker.distribution.manifest.v1+prettyjws"
)

// MaxManifestSize is the resolver's limit on a manifest (resolver.go: 4 * 1048 * 1048, as written).
const MaxManifestSize int64 = 4 * 1048 * 1048

// The resolver's Accept header (NewResolver).
var resolveAccept = strings.Join([]string{MediaTypeDockerManifest, MediaTypeDockerManifestList, MediaTypeOCIManifest, MediaTypeOCIIndex, "*/*"}, ", ")

const maxAttempts = 5 // resolver.go

// ErrNotFound is errdefs.ErrNotFound: a pull failing with it is a gRPC NotFound.
var ErrNotFound = errors.New("not found")

// ErrInvalidAuthorization is docker.ErrInvalidAuthorization.
var ErrInvalidAuthorization = errors.New("authorization failed")

// Puller pulls images as containerd's CRI plugin does through its transfer service.
type Puller struct {
	HostsDir  string                  // config_path; "" for none
	Content   *content.Store          // where blobs go
	Catalogue map[string]images.Image // the testbed's emulation of the public registries (images.LoadCatalogue)
	HostsFile string                  // the only name resolution the stand-in does (/etc/hosts)
	Version   string                  // containerd's version, for the User-Agent
	Timeout   time.Duration           // the whole pull (0: 5 minutes)
	Log       func(format string, args ...any)
}

// Result is a pulled image.
type Result struct {
	Name      string            // the normalised reference
	Target    images.Descriptor // what the reference resolved to (an index or a manifest)
	Config    string            // the linux/amd64 config's digest: the image id ("" for a catalogue image)
	Size      int64
	Platforms []string
	Host      string // the host it resolved from
	Emulated  bool   // from the testbed's catalogue (a public registry), no content
}

// Creds returns a registry host's credentials (the CRI request's auth), "" for none.
type Creds func(host string) (user, secret string)

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Platform    *platform         `json:"platform,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

type platform struct {
	OS           string `json:"os"`
	Architecture string `json:"architecture"`
	Variant      string `json:"variant,omitempty"`
}

func (p platform) String() string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

type manifest struct {
	MediaType string       `json:"mediaType"`
	Config    descriptor   `json:"config"`
	Layers    []descriptor `json:"layers"`
	Manifests []descriptor `json:"manifests"`
}

// logf writes one log line in containerd's (logrus text) shape.
func (p *Puller) logf(level, msg string, kv ...string) { LogLine(p.Log, level, msg, kv...) }

// LogLine writes one log line to log in containerd's (logrus text) shape: time, level, msg and
// key=value fields.
func LogLine(log func(format string, args ...any), level, msg string, kv ...string) {
	if log == nil {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "time=%q level=%s msg=%s", time.Now().UTC().Format(time.RFC3339Nano), level, quoteIfNeeded(msg))
	for i := 0; i+1 < len(kv); i += 2 {
		fmt.Fprintf(&b, " %s=%s", kv[i], quoteIfNeeded(kv[i+1]))
	}
	log("%s", b.String())
}

func quoteIfNeeded(s string) string {
	if s == "" || strings.ContainsAny(s, " \"=\t\n") || strings.ContainsFunc(s, func(r rune) bool { return r < ' ' || r > '~' }) {
		return strconv.Quote(s)
	}
	return s
}

// spec is a parsed reference.
type spec struct {
	name     string // normalised reference
	host     string // registry host namespace
	repo     string // path inside the registry
	object   string // tag or digest
	isDigest bool
}

func parseRef(ref string) spec {
	n := images.Normalize(ref)
	s := spec{name: n}
	rest := n
	if at := strings.Index(rest, "@"); at >= 0 {
		s.object, s.isDigest = rest[at+1:], true
		rest = rest[:at]
		if c := strings.LastIndex(rest, ":"); c > strings.LastIndex(rest, "/") {
			rest = rest[:c]
		}
	} else if c := strings.LastIndex(rest, ":"); c > strings.LastIndex(rest, "/") {
		s.object = rest[c+1:]
		rest = rest[:c]
	}
	s.host, s.repo, _ = strings.Cut(rest, "/")
	return s
}

// Repository is ref's name without tag or digest, registry included (docker.io/library/busybox).
func (s spec) Repository() string { return s.host + "/" + s.repo }

// isProxy: a host other than the registry itself gets the namespace as ?ns= (RegistryHost.isProxy).
func isProxy(refhost, host string) bool {
	return refhost != host && (refhost != "docker.io" || host != "registry-1.docker.io")
}

// hostClient is a host with its HTTP client.
type hostClient struct {
	Host
	client *http.Client
	public bool // not on this machine's test networks: the testbed's catalogue stands for it
}

// Pull pulls ref and stores its linux/amd64 content.
func (p *Puller) Pull(ctx context.Context, ref string, creds Creds) (Result, error) {
	timeout := p.Timeout
	if timeout == 0 {
		timeout = 5 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	s := parseRef(ref)
	hosts, _, err := ConfigureHosts(p.HostsDir, s.host)
	if err != nil {
		return Result{}, err
	}
	hcs := make([]hostClient, 0, len(hosts))
	for _, h := range hosts {
		c, err := p.clientFor(h)
		if err != nil {
			return Result{}, err
		}
		_, local := p.address(hostOnly(h.Host))
		hcs = append(hcs, hostClient{Host: h, client: c, public: !local})
	}
	if creds == nil {
		creds = func(string) (string, string) { return "", "" }
	}
	res, desc, err := p.resolve(ctx, s, hcs, creds)
	if err != nil {
		return Result{}, fmt.Errorf("failed to resolve image: %w", err)
	}
	if res.Emulated {
		return res, nil
	}
	if desc.MediaType == mediaTypeDockerSchema1 {
		return Result{}, errors.New("schema 1 image manifests are no longer supported: invalid argument")
	}
	if err := p.fetchImage(ctx, s, hcs, creds, desc, &res); err != nil {
		return Result{}, err
	}
	return res, nil
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.Trim(hostport, "[]")
}

// address resolves name as the stand-in may: an address literal, localhost or a name of the hosts
// file, and tells whether it is on this machine's test networks (loopback or a private range).
func (p *Puller) address(name string) (net.IP, bool) {
	ip := net.ParseIP(name)
	if ip == nil && name == "localhost" {
		ip = net.IPv4(127, 0, 0, 1)
	}
	if ip == nil && p.HostsFile != "" {
		ip = lookupHostsFile(p.HostsFile, name)
	}
	if ip == nil {
		return nil, false
	}
	return ip, ip.IsLoopback() || ip.IsPrivate()
}

func lookupHostsFile(file, name string) net.IP {
	f, err := os.Open(file)
	if err != nil {
		return nil
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		for _, n := range fields[1:] {
			if strings.EqualFold(n, name) {
				return net.ParseIP(fields[0])
			}
		}
	}
	return nil
}

// dial connects only to this machine's test networks: any other address is a host without a route
// (the testbed has no Internet), and no packet is sent.
func (p *Puller) dial(timeout time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		ip, local := p.address(host)
		if !local {
			return nil, &net.OpError{Op: "dial", Net: network, Err: os.NewSyscallError("connect", syscall.ENETUNREACH)}
		}
		return d.DialContext(ctx, network, net.JoinHostPort(ip.String(), port))
	}
}

// clientFor is the host's client: containerd's default transport (DefaultHTTPTransport: dial 30 s or
// dial_timeout, TLS handshake 10 s, response headers 30 s) with the host's TLS settings.
func (p *Puller) clientFor(h Host) (*http.Client, error) {
	tc := &tls.Config{}
	if h.SkipVerify != nil {
		tc.InsecureSkipVerify = *h.SkipVerify
	}
	if h.CACerts != nil {
		pool, err := x509.SystemCertPool()
		if err != nil {
			return nil, fmt.Errorf("unable to initialize cert pool: %w", err)
		}
		for _, f := range h.CACerts {
			data, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("unable to read CA cert %q: %w", f, err)
			}
			if !pool.AppendCertsFromPEM(data) {
				return nil, fmt.Errorf("unable to load CA cert %q", f)
			}
		}
		tc.RootCAs = pool
	}
	for _, pair := range h.ClientPairs {
		certPEM, err := os.ReadFile(pair[0])
		if err != nil {
			return nil, fmt.Errorf("unable to read CERT file %q: %w", pair[0], err)
		}
		keyPEM := certPEM
		if pair[1] != "" {
			if keyPEM, err = os.ReadFile(pair[1]); err != nil {
				return nil, fmt.Errorf("unable to read CERT file %q: %w", pair[1], err)
			}
		}
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("failed to load X509 key pair: %w", err)
		}
		tc.Certificates = append(tc.Certificates, cert)
	}
	dialTimeout := 30 * time.Second
	if h.DialTimeout != nil {
		dialTimeout = *h.DialTimeout
	}
	tr := &http.Transport{
		DialContext:           p.dial(dialTimeout),
		MaxIdleConns:          10,
		IdleConnTimeout:       30 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		TLSClientConfig:       tc,
		ExpectContinueTimeout: 5 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
	}
	return &http.Client{Transport: tr, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}}, nil
}

// request is one request to a host: the host's path, the repository, the namespace query for a
// mirror, the host's headers.
func (p *Puller) request(ctx context.Context, s spec, h hostClient, method, accept string, parts ...string) (*http.Request, error) {
	u := h.Scheme + "://" + h.Host.Host + path.Join(append([]string{"/", h.Path, s.repo}, parts...)...)
	if isProxy(s.host, h.Host.Host) {
		u += "?" + url.Values{"ns": {s.host}}.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range h.Header {
		req.Header[k] = append(req.Header[k], v...)
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "containerd/v"+p.Version)
	}
	req.Header.Set("Accept", accept)
	return req, nil
}

// do sends req as doWithRetries does: a Basic challenge answered with the host's credentials (none:
// "no basic auth credentials"), HEAD retried as GET on 405, 408/429 retried, 5xx retried on the last
// host; at most five attempts.
func (p *Puller) do(req *http.Request, h hostClient, creds Creds, lastHost bool) (*http.Response, error) {
	var authz string
	var prev int
	for attempts := maxAttempts; ; {
		r := req.Clone(req.Context())
		if authz != "" {
			r.Header.Set("Authorization", authz)
		}
		resp, err := h.client.Do(r)
		attempts--
		if err != nil {
			var ne net.Error
			if lastHost && attempts > 0 && errors.As(err, &ne) && ne.Timeout() && req.Context().Err() == nil {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			return nil, fmt.Errorf("failed to do request: %w", err)
		}
		retry := false
		switch resp.StatusCode {
		case http.StatusUnauthorized:
			scheme := strings.ToLower(strings.SplitN(strings.TrimSpace(resp.Header.Get("WWW-Authenticate")), " ", 2)[0])
			if scheme == "basic" {
				user, secret := creds(h.Host.Host)
				if user == "" || secret == "" {
					resp.Body.Close()
					return nil, fmt.Errorf("%w: no basic auth credentials", ErrInvalidAuthorization)
				}
				authz = "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+secret))
				retry = true
			}
			// A Bearer challenge (a token service) is not played: the 401 stands.
		case http.StatusMethodNotAllowed:
			if req.Method == http.MethodHead && strings.Contains(req.URL.Path, "/manifests/") {
				req.Method = http.MethodGet
				retry = true
			}
		case http.StatusRequestTimeout, http.StatusTooManyRequests:
			retry = true
		case http.StatusServiceUnavailable, http.StatusGatewayTimeout, http.StatusInternalServerError:
			retry = lastHost && prev != resp.StatusCode
		}
		prev = resp.StatusCode
		if retry && attempts > 0 {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			continue
		}
		return resp, nil
	}
}

// unexpectedStatus is remoteerrors.ErrUnexpectedStatus's text.
func unexpectedStatus(resp *http.Response) error {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64000))
	resp.Body.Close()
	return fmt.Errorf("unexpected status from %s request to %s: %s", resp.Request.Method, resp.Request.URL.String(), resp.Status)
}

// resolve is dockerResolver.Resolve: the hosts with the pull (and, for a tag, resolve) capability in
// order, the error furthest through the resolution kept.
func (p *Puller) resolve(ctx context.Context, s spec, hcs []hostClient, creds Creds) (Result, descriptor, error) {
	caps := CapPull
	var paths [][]string
	if s.isDigest {
		if !content.ValidDigest(s.object) {
			return Result{}, descriptor{}, fmt.Errorf("invalid checksum digest format")
		}
		paths = [][]string{{"manifests", s.object}, {"blobs", s.object}}
	} else {
		paths = [][]string{{"manifests", s.object}}
		caps |= CapResolve
	}
	var hosts []hostClient
	for _, h := range hcs {
		if h.Capabilities.Has(caps) {
			hosts = append(hosts, h)
		}
	}
	if len(hosts) == 0 {
		return Result{}, descriptor{}, fmt.Errorf("no resolve hosts: %w", ErrNotFound)
	}
	var firstErr error
	priority := 0
	next := func(i int) string {
		if i < len(hosts)-1 {
			return "trying next host"
		}
		return "fetch failed"
	}
	offline := images.IsOffline(p.Catalogue)
	for _, u := range paths {
		if priority > 2 {
			break
		}
		for i, h := range hosts {
			req, err := p.request(ctx, s, h, http.MethodHead, resolveAccept, u...)
			if err != nil {
				return Result{}, descriptor{}, err
			}
			fields := []string{"host", h.Host.Host, "method", req.Method, "url", req.URL.String()}
			if h.public && !offline {
				// The testbed's emulation of a public registry: its catalogue, no request.
				p.logf("info", "resolving", append(fields, "source", "testbed catalogue "+images.CataloguePath)...)
				if _, ok := images.Lookup(p.Catalogue, s.name); ok {
					rec := images.CatalogueRecord(s.name)
					return Result{Name: s.name, Target: rec.Target, Size: rec.Size, Host: h.Host.Host, Emulated: true}, descriptor{}, nil
				}
				if priority < 2 {
					firstErr, priority = fmt.Errorf("%s: %w", s.name, ErrNotFound), 2
				}
				p.logf("info", next(i)+" after status: 404 Not Found", fields...)
				continue
			}
			p.logf("info", "resolving", fields...)
			resp, err := p.do(req, h, creds, i == len(hosts)-1)
			if err != nil {
				if errors.Is(err, ErrInvalidAuthorization) {
					err = fmt.Errorf("pull access denied, repository does not exist or may require authorization: %w", err)
				}
				if priority < 1 {
					firstErr, priority = err, 1
				}
				p.logf("info", next(i), append(fields, "error", err.Error())...)
				continue
			}
			if resp.StatusCode > 299 {
				if resp.StatusCode == http.StatusNotFound {
					resp.Body.Close()
					if priority < 2 {
						firstErr, priority = fmt.Errorf("%s: %w", s.name, ErrNotFound), 2
					}
					p.logf("info", next(i)+" after status: "+resp.Status, fields...)
					continue
				}
				if resp.StatusCode > 399 {
					st := resp.Status
					err := unexpectedStatus(resp)
					if priority < 3 {
						firstErr, priority = err, 3
					}
					p.logf("info", next(i)+" after status: "+st, fields...)
					continue
				}
				return Result{}, descriptor{}, unexpectedStatus(resp)
			}
			resp.Body.Close()
			size := resp.ContentLength
			mt := mediaType(resp)
			dgst := ""
			if s.isDigest {
				dgst = s.object
			} else if h := resp.Header.Get("Docker-Content-Digest"); h != "" && size != -1 {
				if !content.ValidDigest(h) {
					return Result{}, descriptor{}, fmt.Errorf("%q in header not a valid digest", h)
				}
				dgst = h
			}
			if dgst == "" || size == -1 {
				greq, err := p.request(ctx, s, h, http.MethodGet, resolveAccept, u...)
				if err != nil {
					return Result{}, descriptor{}, err
				}
				gresp, err := p.do(greq, h, creds, true)
				if err != nil {
					return Result{}, descriptor{}, err
				}
				if gresp.StatusCode >= 400 {
					return Result{}, descriptor{}, unexpectedStatus(gresp)
				}
				mt = mediaType(gresp)
				body, err := io.ReadAll(io.LimitReader(gresp.Body, MaxManifestSize+1))
				gresp.Body.Close()
				if err != nil {
					return Result{}, descriptor{}, err
				}
				if dgst == "" {
					if mt == mediaTypeDockerSchema1 {
						return Result{}, descriptor{}, fmt.Errorf("not implemented: media type %q is no longer supported since containerd v2.0, please rebuild the image as %q or %q",
							mediaTypeDockerSchema1, MediaTypeDockerManifest, MediaTypeOCIManifest)
					}
					dgst = content.Digest(body)
				}
				size = int64(len(body))
			}
			if size > MaxManifestSize {
				if priority < 4 {
					firstErr, priority = fmt.Errorf("rejecting %d byte manifest for %s: %w", size, s.name, ErrNotFound), 4
				}
				continue
			}
			p.logf("info", "resolved", append(fields, "desc.digest", dgst)...)
			return Result{Name: s.name, Target: images.Descriptor{MediaType: mt, Digest: dgst, Size: size}, Host: h.Host.Host}, descriptor{MediaType: mt, Digest: dgst, Size: size}, nil
		}
	}
	if firstErr == nil {
		firstErr = fmt.Errorf("%s: %w", s.name, ErrNotFound)
	}
	return Result{}, descriptor{}, firstErr
}

func mediaType(resp *http.Response) string {
	ct := resp.Header.Get("Content-Type")
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	if ct == "text/plain" {
		ct = mediaTypeDockerSchema1
	}
	return ct
}

func isManifest(mt string) bool { return mt == MediaTypeDockerManifest || mt == MediaTypeOCIManifest }
func isIndex(mt string) bool    { return mt == MediaTypeDockerManifestList || mt == MediaTypeOCIIndex }

// refKey is remotes.MakeRefKey: the ingest's name in errors.
func refKey(d descriptor) string {
	key := d.Digest
	if n, ok := d.Annotations["org.opencontainers.image.ref.name"]; ok {
		key = n + "@" + d.Digest
	}
	switch {
	case isManifest(d.MediaType):
		return "manifest-" + key
	case isIndex(d.MediaType):
		return "index-" + key
	case strings.Contains(d.MediaType, "layer"):
		return "layer-" + key
	case strings.HasSuffix(d.MediaType, "config.v1+json") || strings.HasSuffix(d.MediaType, "container.image.v1+json"):
		return "config-" + key
	}
	return "unknown-" + key
}

// fetch is dockerFetcher.Fetch into the content store: every host in order (manifests by the
// manifests endpoint, the rest by blobs), the first error kept; the blob committed only with the
// descriptor's digest and size.
func (p *Puller) fetch(ctx context.Context, s spec, hcs []hostClient, creds Creds, d descriptor) error {
	if p.Content.Has(d.Digest) {
		return nil // content already exists
	}
	if d.Size > content.MaxBlobSize {
		return fmt.Errorf("blob %s of %d bytes exceeds the stand-in's limit of %d bytes", d.Digest, d.Size, int64(content.MaxBlobSize))
	}
	endpoint := "blobs"
	if isManifest(d.MediaType) || isIndex(d.MediaType) {
		endpoint = "manifests"
	}
	accept := "*/*"
	if d.MediaType != "" {
		accept = d.MediaType + ", */*"
	}
	offline := images.IsOffline(p.Catalogue)
	var firstErr error
	for i, h := range hcs {
		req, err := p.request(ctx, s, h, http.MethodGet, accept, endpoint, d.Digest)
		if err != nil {
			return err
		}
		if h.public && !offline {
			// The catalogue holds names, not content.
			if firstErr == nil {
				firstErr = fmt.Errorf("content at %s not found: %w", req.URL.String(), ErrNotFound)
			}
			continue
		}
		req.Header.Set("Accept-Encoding", "zstd;q=1.0, gzip;q=0.8, deflate;q=0.5")
		p.logf("info", "fetch", "digest", d.Digest, "mediatype", d.MediaType, "size", strconv.FormatInt(d.Size, 10), "host", h.Host.Host, "url", req.URL.String())
		resp, err := p.do(req, h, creds, i == len(hcs)-1)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		if resp.StatusCode > 299 {
			var err error
			if resp.StatusCode == http.StatusNotFound {
				resp.Body.Close()
				err = fmt.Errorf("content at %s not found: %w", req.URL.String(), ErrNotFound)
			} else {
				err = unexpectedStatus(resp)
			}
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		_, err = p.Content.Write(refKey(d), resp.Body, d.Size, d.Digest)
		resp.Body.Close()
		return err
	}
	if errors.Is(firstErr, ErrNotFound) && endpoint == "blobs" {
		firstErr = fmt.Errorf("could not fetch content descriptor %v (%v) from remote: %w", d.Digest, d.MediaType, ErrNotFound)
	}
	return firstErr
}

func (p *Puller) readJSON(d descriptor, v any) error {
	b, err := p.Content.Read(d.Digest, MaxManifestSize+1)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// fetchImage fetches the resolved descriptor and, of an index, the linux/amd64 manifests, each with
// its config and layers (the pull's handlers with platforms.DefaultSpec()).
func (p *Puller) fetchImage(ctx context.Context, s spec, hcs []hostClient, creds Creds, target descriptor, res *Result) error {
	if err := p.fetch(ctx, s, hcs, creds, target); err != nil {
		return err
	}
	res.Size = target.Size
	manifests := []descriptor{target}
	if isIndex(target.MediaType) {
		var idx manifest
		if err := p.readJSON(target, &idx); err != nil {
			return err
		}
		manifests = nil
		seen := map[string]bool{}
		for _, m := range idx.Manifests {
			if m.Platform != nil && m.Platform.OS != "unknown" {
				if ps := m.Platform.String(); !seen[ps] {
					seen[ps] = true
					res.Platforms = append(res.Platforms, ps)
				}
			}
			if m.Platform != nil && m.Platform.OS == "linux" && m.Platform.Architecture == "amd64" && isManifest(m.MediaType) {
				manifests = append(manifests, m)
			}
		}
		sort.Strings(res.Platforms)
		for _, m := range manifests {
			if err := p.fetch(ctx, s, hcs, creds, m); err != nil {
				return err
			}
			res.Size += m.Size
		}
	} else if !isManifest(target.MediaType) {
		return fmt.Errorf("unsupported media type %s", target.MediaType)
	}
	for _, m := range manifests {
		var mf manifest
		if err := p.readJSON(m, &mf); err != nil {
			return err
		}
		for _, d := range append([]descriptor{mf.Config}, mf.Layers...) {
			if err := p.fetch(ctx, s, hcs, creds, d); err != nil {
				return err
			}
			res.Size += d.Size
		}
		if res.Config == "" {
			res.Config = mf.Config.Digest
			if res.Platforms == nil {
				var cfg platform
				if err := p.readJSON(mf.Config, &cfg); err == nil && cfg.OS != "" {
					res.Platforms = []string{cfg.String()}
				}
			}
		}
	}
	if res.Config == "" {
		return fmt.Errorf("get image config descriptor: no match for platform in manifest: %w", ErrNotFound)
	}
	return nil
}
