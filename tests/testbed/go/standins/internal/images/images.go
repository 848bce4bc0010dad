// Package images is the testbed's registry and image content, shared by the containerd and kubelet
// stand-ins. A test host cannot run containers, so an image is a name and, for the images whose
// program can run on a host (the control plane's), the path of the real upstream binary built by
// tests/testbed/build-programs.sh. The testbed writes the catalogue of what its "registry" holds
// into every host (/etc/mlplat-testbed/images: one "reference [program]" per line, and "*" for a
// registry that holds every other image too, as the public registries do); an image that is not
// there cannot be pulled, as from a registry that does not have it. A line "offline" makes the host
// one without a route to the public registries: a pull from one (a registry host not on the test
// networks, package registry) fails as unreachable; site registries and mirrors are reached for real.
//
// The images pulled or imported onto a host are in Store (store.go), their blobs in package content.
package images

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

// CataloguePath is where the testbed writes each host's catalogue.
const CataloguePath = "/etc/mlplat-testbed/images"

// Image is one entry of the catalogue.
type Image struct {
	Ref     string // fully qualified, e.g. registry.k8s.io/kube-apiserver:v1.36.3
	Program string // absolute path of the binary a container of this image runs; "" when none can run on a host
}

// LoadCatalogue reads the catalogue at path; an error names the file and line.
func LoadCatalogue(path string) (map[string]Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]Image{}
	sc := bufio.NewScanner(f)
	line := 0
	for sc.Scan() {
		line++
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		if fields[0] == "*" || fields[0] == Offline {
			if len(fields) > 1 {
				return nil, fmt.Errorf("%s:%d: %q takes no program, got %q", path, line, fields[0], sc.Text())
			}
			out[fields[0]] = Image{Ref: fields[0]}
			continue
		}
		if len(fields) > 2 {
			return nil, fmt.Errorf("%s:%d: want \"reference [program]\", got %q", path, line, sc.Text())
		}
		img := Image{Ref: Normalize(fields[0])}
		if len(fields) == 2 {
			img.Program = fields[1]
		}
		out[img.Ref] = img
	}
	return out, sc.Err()
}

// Offline is the catalogue's line for a host without a route to the public registries.
const Offline = "offline"

// IsOffline reports whether the catalogue has the line "offline".
func IsOffline(cat map[string]Image) bool {
	_, ok := cat[Offline]
	return ok
}

// Lookup returns the catalogue's entry for ref, and whether the registry holds it.
func Lookup(cat map[string]Image, ref string) (Image, bool) {
	if img, ok := cat[Normalize(ref)]; ok {
		return img, true
	}
	_, any := cat["*"]
	return Image{Ref: Normalize(ref)}, any
}

// Normalize returns ref fully qualified as containerd names it: docker.io/library/ for short names,
// :latest for a missing tag.
func Normalize(ref string) string {
	name, tag := ref, ""
	if at := strings.Index(name, "@"); at >= 0 {
		name, tag = name[:at], name[at:]
	} else if colon := strings.LastIndex(name, ":"); colon > strings.LastIndex(name, "/") {
		name, tag = name[:colon], name[colon:]
	}
	if tag == "" {
		tag = ":latest"
	}
	first := strings.SplitN(name, "/", 2)[0]
	if !strings.ContainsAny(first, ".:") && first != "localhost" {
		if !strings.Contains(name, "/") {
			name = "library/" + name
		}
		name = "docker.io/" + name
	}
	return name + tag
}

// PodImagesPath lists the images whose containers the kubelet stand-in runs itself, in an API pod,
// instead of leaving the pod to kwok: "REPOSITORY ENTRYPOINT LAYER" per line. REPOSITORY is the image's
// path without registry and tag (calico/node), so that a mirror's copy (registry.example:5000/calico/node)
// is the same image; ENTRYPOINT is the image's entrypoint, a path inside the container; LAYER the
// directory of the testbed's files of that image (its stand-in programs at their paths), "-" for none
// (an image of only a shell and its tools, which the host's system provides).
const PodImagesPath = "/etc/mlplat-testbed/pod-images"

// PodImage is one entry of PodImagesPath.
type PodImage struct {
	Repository string
	Entrypoint string
	Layer      string
}

// LoadPodImages reads the list at path; a missing file is an empty list.
func LoadPodImages(path string) ([]PodImage, error) {
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []PodImage
	for i, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		if len(fields) != 3 {
			return nil, fmt.Errorf("%s:%d: want \"REPOSITORY ENTRYPOINT LAYER\", got %q", path, i+1, line)
		}
		img := PodImage{Repository: fields[0], Entrypoint: fields[1], Layer: fields[2]}
		if img.Layer == "-" {
			img.Layer = ""
		}
		out = append(out, img)
	}
	return out, nil
}

// Repository returns ref's path without its tag or digest (docker.io/calico/node:v3 -> docker.io/calico/node).
func Repository(ref string) string {
	name := Normalize(ref)
	if at := strings.Index(name, "@"); at >= 0 {
		return name[:at]
	}
	if colon := strings.LastIndex(name, ":"); colon > strings.LastIndex(name, "/") {
		return name[:colon]
	}
	return name
}

// FindPodImage returns the entry whose repository ref is (in any registry), and whether there is one.
func FindPodImage(list []PodImage, ref string) (PodImage, bool) {
	repo := Repository(ref)
	for _, p := range list {
		if repo == p.Repository || strings.HasSuffix(repo, "/"+p.Repository) {
			return p, true
		}
	}
	return PodImage{}, false
}
