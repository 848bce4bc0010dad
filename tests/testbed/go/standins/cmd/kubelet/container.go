package main

// A container of an API pod, as far as a test host can make one without a container runtime: the
// kubelet stand-in starts `kubelet __container SPEC` in a mount namespace of its own (CLONE_NEWNS).
// That helper builds the container's root on a tmpfs, mounts the pod's volumes there, runs the image's
// program chrooted in it with the container's user, groups, environment and working directory, waits
// for it and records its exit code, so a status can say Completed or Error even after a kubelet restart.
//
// The root, per top-level directory of the host:
//   - bin, sbin, lib*, usr, etc, var, opt: an overlay whose lower layers are the image's layer of the
//     testbed (tests/testbed/go/standins/images: the stand-in programs at the paths the real image
//     has them) over the host's directory, and whose upper layer is the container's own (tmpfs): the
//     image's base is the host's system, writes stay in the container, as with a real image;
//   - proc, sys, dev: the host's;
//   - anything else (home, root, tmp, run, mnt, ...): empty, as in an image.
// Volumes are bind mounts of their sources (hostPath, the pod's emptyDir, configMap, secret and
// projected files, a PersistentVolume's local or hostPath directory), read-only where the mount says so.
// The network is the host's (no pod network on a test host): every pod is in effect hostNetwork.

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	securejoin "github.com/cyphar/filepath-securejoin"
)

// containerSpec is what the kubelet stand-in hands the helper, in a file of the pod's directory (0600:
// the environment may hold a Secret's values).
type containerSpec struct {
	Scratch  string      `json:"scratch"` // the container's directory: its tmpfs holds root/, upper/, work/
	Layer    string      `json:"layer"`   // the image's layer directory ("" for none)
	Mounts   []mountSpec `json:"mounts"`
	Argv     []string    `json:"argv"`
	Env      []string    `json:"env"`
	Dir      string      `json:"dir"`
	UID      uint32      `json:"uid"`
	GID      uint32      `json:"gid"`
	Groups   []uint32    `json:"groups"`
	ExitFile string      `json:"exitFile"` // the exit code is written here when the program ends
}

type mountSpec struct {
	Source   string `json:"source"`
	Target   string `json:"target"`
	ReadOnly bool   `json:"readOnly"`
}

var (
	overlaidDirs = map[string]bool{"bin": true, "sbin": true, "lib": true, "lib32": true, "lib64": true, "libx32": true,
		"usr": true, "etc": true, "var": true, "opt": true}
	hostDirs = map[string]bool{"proc": true, "sys": true, "dev": true}
)

// runContainerHelper is `kubelet __container SPEC`; it returns the exit code of the helper.
func runContainerHelper(specPath string) int {
	data, err := os.ReadFile(specPath)
	if err != nil {
		fmt.Fprintf(os.Stderr, "container: %v\n", err)
		return 128
	}
	var spec containerSpec
	if err := json.Unmarshal(data, &spec); err != nil {
		fmt.Fprintf(os.Stderr, "container: %s: %v\n", specPath, err)
		return 128
	}
	code := 128
	cmd, err := spec.prepare()
	if err == nil {
		code, err = run(cmd)
	}
	if err != nil {
		// As the runtime reports a container that cannot start (StartError, exit code 128).
		fmt.Fprintf(os.Stderr, "container: %v\n", err)
	}
	_ = writeExit(spec.ExitFile, code)
	return code
}

func writeExit(path string, code int) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(code)+"\n"), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// run starts the program and waits for it, passing SIGTERM and SIGINT on (the helper and the program
// share the process group the kubelet stand-in signals, so both get them).
func run(cmd *exec.Cmd) (int, error) {
	signal.Ignore(syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	if err := cmd.Start(); err != nil {
		return 128, err
	}
	err := cmd.Wait()
	if err == nil {
		return 0, nil
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		if st, ok := exit.Sys().(syscall.WaitStatus); ok && st.Signaled() {
			return 128 + int(st.Signal()), nil
		}
		return exit.ExitCode(), nil
	}
	return 128, err
}

// prepare builds the root and the mounts (the helper runs in a mount namespace of its own) and returns
// the program's command.
func (spec *containerSpec) prepare() (*exec.Cmd, error) {
	if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		return nil, fmt.Errorf("making the mounts private: %w", err)
	}
	if err := os.MkdirAll(spec.Scratch, 0o700); err != nil {
		return nil, err
	}
	if err := syscall.Mount("mlplat-container", spec.Scratch, "tmpfs", 0, "mode=0755"); err != nil {
		return nil, fmt.Errorf("tmpfs for the container: %w", err)
	}
	root := filepath.Join(spec.Scratch, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir("/")
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		name := e.Name()
		target := filepath.Join(root, name)
		if e.Type()&os.ModeSymlink != 0 { // merged /usr: bin -> usr/bin
			link, err := os.Readlink("/" + name)
			if err != nil {
				return nil, err
			}
			if err := os.Symlink(link, target); err != nil {
				return nil, err
			}
			continue
		}
		if !e.IsDir() {
			continue
		}
		if err := os.Mkdir(target, 0o755); err != nil {
			return nil, err
		}
		switch {
		case hostDirs[name]:
			if err := syscall.Mount("/"+name, target, "", syscall.MS_BIND|syscall.MS_REC, ""); err != nil {
				return nil, fmt.Errorf("/%s: %w", name, err)
			}
		case overlaidDirs[name]:
			if err := spec.overlay(name, target); err != nil {
				return nil, err
			}
		}
	}
	// The image's own top-level entries the host has not (its /operator, its /flannel).
	if spec.Layer != "" {
		layer, err := os.ReadDir(spec.Layer)
		if err != nil {
			return nil, err
		}
		for _, e := range layer {
			if _, err := os.Lstat(filepath.Join(root, e.Name())); err == nil {
				continue
			}
			if err := bindInto(filepath.Join(spec.Layer, e.Name()), filepath.Join(root, e.Name()), true); err != nil {
				return nil, err
			}
		}
	}
	// Volumes, shallowest first (a mount inside another volume's mount comes after it).
	mounts := append([]mountSpec{}, spec.Mounts...)
	sort.SliceStable(mounts, func(i, j int) bool {
		return strings.Count(filepath.Clean(mounts[i].Target), "/") < strings.Count(filepath.Clean(mounts[j].Target), "/")
	})
	for _, m := range mounts {
		target, err := inRoot(root, m.Target)
		if err != nil {
			return nil, err
		}
		if err := bindInto(m.Source, target, m.ReadOnly); err != nil {
			return nil, fmt.Errorf("volume mount %s: %w", m.Target, err)
		}
	}
	path, err := lookPath(root, spec.Argv[0], spec.Env)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(path, spec.Argv[1:]...)
	cmd.Args[0] = spec.Argv[0]
	cmd.Env = spec.Env
	cmd.Dir = spec.Dir
	if cmd.Dir == "" {
		cmd.Dir = "/"
	}
	dir, err := inRoot(root, cmd.Dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root,
		Credential: &syscall.Credential{Uid: spec.UID, Gid: spec.GID, Groups: spec.Groups}}
	return cmd, nil
}

// overlay mounts the image's layer (when it has this directory) over the host's, with the container's
// own upper layer.
func (spec *containerSpec) overlay(name, target string) error {
	upper, work := filepath.Join(spec.Scratch, "upper", name), filepath.Join(spec.Scratch, "work", name)
	for _, d := range []string{upper, work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	lower := "/" + name
	if spec.Layer != "" {
		if st, err := os.Stat(filepath.Join(spec.Layer, name)); err == nil && st.IsDir() {
			lower = filepath.Join(spec.Layer, name) + ":" + lower
		}
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", lower, upper, work)
	if err := syscall.Mount("mlplat-image", target, "overlay", 0, opts); err != nil {
		return fmt.Errorf("the image's /%s (overlay %s): %w", name, opts, err)
	}
	return nil
}

// inRoot returns path inside root with its symbolic links resolved inside root too (an image's
// /var/run -> /run is the container's /run, not the host's), as runc does with securejoin.
func inRoot(root, path string) (string, error) {
	return securejoin.SecureJoin(root, path)
}

// bindInto bind-mounts source at target, creating target as a directory or an empty file (in the
// container's own layers).
func bindInto(source, target string, readOnly bool) error {
	st, err := os.Stat(source)
	if err != nil {
		return err
	}
	if st.IsDir() {
		if err := os.MkdirAll(target, 0o755); err != nil {
			return err
		}
	} else {
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		if _, err := os.Lstat(target); err != nil {
			f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY, 0o644)
			if err != nil {
				return err
			}
			f.Close()
		}
	}
	if err := syscall.Mount(source, target, "", syscall.MS_BIND|syscall.MS_REC, ""); err != nil {
		return fmt.Errorf("bind %s: %w", source, err)
	}
	if readOnly {
		if err := syscall.Mount("", target, "", syscall.MS_BIND|syscall.MS_REMOUNT|syscall.MS_RDONLY, ""); err != nil {
			return fmt.Errorf("read-only %s: %w", target, err)
		}
	}
	return nil
}

// lookPath finds the program as the runtime does: a path as given, else in the container's $PATH.
// The returned path is inside the root (the program is run chrooted).
func lookPath(root, name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		if _, err := os.Stat(filepath.Join(root, name)); err != nil {
			return "", fmt.Errorf("exec: %q: no such file or directory in the image", name)
		}
		return name, nil
	}
	path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(filepath.Join(root, p)); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("exec: %q: executable file not found in $PATH", name)
}
