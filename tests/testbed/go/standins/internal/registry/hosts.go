// Package registry is the containerd stand-in's image pull: containerd's registry host configuration
// (hosts.toml under config_path, containerd v2.3.4 docs/hosts.md, core/remotes/docker/config/hosts.go)
// and the OCI distribution requests its resolver and fetcher make (core/remotes/docker/resolver.go,
// fetcher.go), over Go's net/http, into the stand-ins' content store.
//
// The testbed has no Internet. The stand-in dials only addresses of this machine's test networks
// (loopback and private ranges), resolving names from /etc/hosts alone; every other registry host
// (registry.k8s.io, registry-1.docker.io, ...) is a public one, which the testbed emulates with its
// catalogue (package images) or, for an offline host, cannot reach (no packet is sent).
package registry

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	toml "github.com/pelletier/go-toml/v2"
	tomlu "github.com/pelletier/go-toml/v2/unstable"
)

// ConfigPath is mlplat's config_path (manifests/host/containerd-config.toml).
const ConfigPath = "/etc/containerd/certs.d"

// Capabilities of a host (docker.HostCapabilities).
type Capabilities uint8

const (
	CapPull Capabilities = 1 << iota
	CapResolve
	CapPush
	CapReferrers
)

// Has reports whether c has every capability of t.
func (c Capabilities) Has(t Capabilities) bool { return c&t == t }

// Host is one registry host to try, in the order of the list it is in.
type Host struct {
	Scheme       string // https or http
	Host         string // host[:port]
	Path         string // API root, /v2 unless override_path
	Capabilities Capabilities
	CACerts      []string
	ClientPairs  [][2]string
	SkipVerify   *bool
	DialTimeout  *time.Duration
	Header       http.Header
}

// URL is the host's API root.
func (h Host) URL() string { return h.Scheme + "://" + h.Host + h.Path }

// hostDirectory turns ":port" into "_port_" (config.hostDirectory).
func hostDirectory(host string) string {
	if i := strings.LastIndex(host, ":"); i > 0 {
		return host[:i] + "_" + host[i+1:] + "_"
	}
	return host
}

// hostPaths are the directories looked up for host, in order (config_unix.go): host_port_, host:port,
// _default.
func hostPaths(root, host string) []string {
	var out []string
	if ch := hostDirectory(host); ch != host {
		out = append(out, filepath.Join(root, ch))
	}
	return append(out, filepath.Join(root, host), filepath.Join(root, "_default"))
}

// HostDir returns the first directory of hostPaths that exists, "" when none does (HostDirFromRoot).
func HostDir(root, host string) (string, error) {
	for _, p := range hostPaths(root, host) {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
	}
	return "", nil
}

// ConfigureHosts returns the hosts to try for registry host (ConfigureHosts): those of its hosts.toml
// (or a certificates-only directory) and, last, the server (the registry itself when the file names
// none); configured tells whether a host directory was found.
func ConfigureHosts(root, host string) (hosts []Host, configured bool, err error) {
	if root != "" {
		dir, err := HostDir(root, host)
		if err != nil {
			return nil, false, err
		}
		if dir != "" {
			configured = true
			if hosts, err = loadHostDir(dir); err != nil {
				return nil, true, err
			}
		}
	}
	if hosts == nil {
		hosts = make([]Host, 1)
	}
	if last := &hosts[len(hosts)-1]; last.Host == "" {
		switch {
		case host == "docker.io":
			last.Scheme, last.Host = "https", "registry-1.docker.io"
		case isLocalhost(host):
			last.Host = host
			port := ""
			if i := strings.LastIndex(host, ":"); i >= 0 && !strings.HasSuffix(host, "]") {
				port = host[i+1:]
			}
			if port == "" || port == "443" {
				last.Scheme = "https"
			} else {
				last.Scheme = "http"
			}
			if port != "80" {
				t := true
				last.SkipVerify = &t
			}
		default:
			last.Scheme, last.Host = "https", host
		}
		last.Path = "/v2"
		last.Capabilities = CapPull | CapResolve | CapPush | CapReferrers
	}
	return hosts, configured, nil
}

// isLocalhost is docker.IsLocalhost: localhost or a loopback address, with or without a port.
func isLocalhost(host string) bool {
	h := host
	if i := strings.LastIndex(h, ":"); i >= 0 && !strings.HasSuffix(h, "]") && strings.Count(h, ":") == 1 {
		h = h[:i]
	}
	h = strings.Trim(h, "[]")
	if h == "localhost" {
		return true
	}
	return strings.HasPrefix(h, "127.") || h == "::1"
}

func loadHostDir(dir string) ([]Host, error) {
	b, err := os.ReadFile(filepath.Join(dir, "hosts.toml"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if len(b) == 0 {
		return loadCertFiles(dir)
	}
	hosts, err := ParseHostsFile(dir, b)
	if err != nil {
		// containerd logs "failed to decode" and falls back to the certificate files.
		logf("level=error msg=\"failed to decode %s\" error=%q", filepath.Join(dir, "hosts.toml"), err.Error())
		return loadCertFiles(dir)
	}
	return hosts, nil
}

// logf is where the package's log lines go (the daemon's stderr, its journal).
var logf = func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }

// SetLog sends the package's log lines to f.
func SetLog(f func(format string, args ...any)) { logf = f }

type hostFileConfig struct {
	Capabilities []string       `toml:"capabilities"`
	CACert       any            `toml:"ca"`
	Client       any            `toml:"client"`
	SkipVerify   *bool          `toml:"skip_verify"`
	Header       map[string]any `toml:"header"`
	OverridePath bool           `toml:"override_path"`
	DialTimeout  string         `toml:"dial_timeout"`
}

// ParseHostsFile parses a hosts.toml of directory baseDir: its [host."..."] tables in file order,
// then the server (parseHostsFile).
func ParseHostsFile(baseDir string, b []byte) ([]Host, error) {
	ordered, err := sortedHosts(b)
	if err != nil {
		return nil, err
	}
	c := struct {
		hostFileConfig
		Server      string                    `toml:"server"`
		HostConfigs map[string]hostFileConfig `toml:"host"`
	}{}
	if err := toml.Unmarshal(b, &c); err != nil {
		return nil, err
	}
	var hosts []Host
	for _, h := range ordered {
		parsed, err := parseHostConfig(h, baseDir, c.HostConfigs[h])
		if err != nil {
			return nil, err
		}
		hosts = append(hosts, parsed)
	}
	parsed, err := parseHostConfig(c.Server, baseDir, c.hostFileConfig)
	if err != nil {
		return nil, err
	}
	return append(hosts, parsed), nil
}

func parseHostConfig(server, baseDir string, config hostFileConfig) (Host, error) {
	var result Host
	if server != "" {
		if !strings.HasPrefix(server, "http") {
			server = "https://" + server
		}
		u, err := url.Parse(server)
		if err != nil {
			return Host{}, fmt.Errorf("unable to parse server %v: %w", server, err)
		}
		result.Scheme, result.Host = u.Scheme, u.Host
		if len(u.Path) > 0 {
			u.Path = path.Clean(u.Path)
			if !strings.HasSuffix(u.Path, "/v2") && !config.OverridePath {
				u.Path += "/v2"
			}
		} else if !config.OverridePath {
			u.Path = "/v2"
		}
		result.Path = u.Path
	}
	result.SkipVerify = config.SkipVerify
	if len(config.Capabilities) > 0 {
		for _, c := range config.Capabilities {
			switch strings.ToLower(c) {
			case "pull":
				result.Capabilities |= CapPull
			case "resolve":
				result.Capabilities |= CapResolve
			case "push":
				result.Capabilities |= CapPush
			case "referrers":
				result.Capabilities |= CapReferrers
			default:
				return Host{}, fmt.Errorf("unknown capability %v", c)
			}
		}
	} else {
		result.Capabilities = CapPull | CapResolve | CapPush | CapReferrers
	}
	if config.CACert != nil {
		switch cert := config.CACert.(type) {
		case string:
			result.CACerts = []string{absPath(cert, baseDir)}
		case []any:
			s, err := stringSlice(cert, func(p string) string { return absPath(p, baseDir) })
			if err != nil {
				return Host{}, err
			}
			result.CACerts = s
		default:
			return Host{}, fmt.Errorf("invalid type %v for \"ca\"", cert)
		}
	}
	if config.Client != nil {
		switch client := config.Client.(type) {
		case string:
			result.ClientPairs = [][2]string{{absPath(client, baseDir), ""}}
		case []any:
			for _, pairs := range client {
				switch p := pairs.(type) {
				case string:
					result.ClientPairs = append(result.ClientPairs, [2]string{absPath(p, baseDir), ""})
				case []any:
					s, err := stringSlice(p, func(x string) string { return absPath(x, baseDir) })
					if err != nil {
						return Host{}, err
					}
					if len(s) != 2 {
						return Host{}, fmt.Errorf("invalid pair %v for \"client\"", p)
					}
					result.ClientPairs = append(result.ClientPairs, [2]string{s[0], s[1]})
				default:
					return Host{}, fmt.Errorf("invalid type %T for \"client\"", p)
				}
			}
		default:
			return Host{}, fmt.Errorf("invalid type %v for \"client\"", client)
		}
	}
	if config.Header != nil {
		header := http.Header{}
		for key, ty := range config.Header {
			switch value := ty.(type) {
			case string:
				header[key] = []string{value}
			case []any:
				s, err := stringSlice(value, nil)
				if err != nil {
					return Host{}, err
				}
				header[key] = s
			default:
				return Host{}, fmt.Errorf("invalid type %v for header %q", ty, key)
			}
		}
		result.Header = header
	}
	if config.DialTimeout != "" {
		d, err := time.ParseDuration(config.DialTimeout)
		if err != nil {
			return Host{}, err
		}
		result.DialTimeout = &d
	}
	return result, nil
}

// sortedHosts returns the [host."..."] tables in the order the file defines them (getSortedHosts).
func sortedHosts(b []byte) ([]string, error) {
	var out []string
	p := tomlu.Parser{}
	p.Reset(b)
	var host string
	for p.NextExpression() {
		e := p.Expression()
		if e.Kind != tomlu.Table {
			continue
		}
		var parts []string
		for it := e.Key(); it.Next(); {
			parts = append(parts, string(it.Node().Data))
		}
		if len(parts) < 2 || parts[0] != "host" || parts[1] == host {
			continue
		}
		host = parts[1]
		out = append(out, host)
	}
	return out, p.Error()
}

func stringSlice(slice []any, cb func(string) string) ([]string, error) {
	out := make([]string, len(slice))
	for i, v := range slice {
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("unable to cast %v to string", v)
		}
		if cb != nil {
			s = cb(s)
		}
		out[i] = s
	}
	return out, nil
}

func absPath(p, base string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(base, p)
}

// loadCertFiles reads a host directory without hosts.toml in Docker's layout: *.crt CA files,
// *.cert client certificates with their *.key.
func loadCertFiles(dir string) ([]Host, error) {
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	hosts := make([]Host, 1)
	for _, f := range entries {
		if f.IsDir() {
			continue
		}
		if strings.HasSuffix(f.Name(), ".crt") {
			hosts[0].CACerts = append(hosts[0].CACerts, filepath.Join(dir, f.Name()))
		}
		if strings.HasSuffix(f.Name(), ".cert") {
			pair := [2]string{filepath.Join(dir, f.Name()), ""}
			key := filepath.Join(dir, strings.TrimSuffix(f.Name(), ".cert")+".key")
			if _, err := os.Stat(key); err == nil {
				pair[1] = key
			}
			hosts[0].ClientPairs = append(hosts[0].ClientPairs, pair)
		}
	}
	return hosts, nil
}
