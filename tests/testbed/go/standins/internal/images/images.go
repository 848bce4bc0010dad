// Package images is the testbed's registry and image content, shared by the containerd and kubelet
// stand-ins. A test host cannot run containers, so an image is a name and, for the images whose
// program can run on a host (the control plane's), the path of the real upstream binary built by
// tests/testbed/build-programs.sh. The testbed writes the catalogue of what its "registry" holds
// into every host (/etc/mlplat-testbed/images: one "reference [program]" per line, and "*" for a
// registry that holds every other image too, as the public registries do); an image that is not
// there cannot be pulled, as from a registry that does not have it.
package images

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

// CataloguePath is where the testbed writes each host's catalogue.
const CataloguePath = "/etc/mlplat-testbed/images"

// Image is one entry of the catalogue.
type Image struct {
	Ref     string // fully qualified, e.g. registry.k8s.io/kube-apiserver:v1.36.3
	Program string // absolute path of the binary a container of this image runs; "" when none can run on a host
}

// Store is the set of images pulled onto this host, persisted in a JSON file (containerd's content
// store stands behind this in the real runtime).
type Store struct {
	path string
	mu   sync.Mutex
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
		if fields[0] == "*" {
			out["*"] = Image{Ref: "*"}
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

// OpenStore returns the store kept at path.
func OpenStore(path string) *Store { return &Store{path: path} }

func (s *Store) load() (map[string]bool, error) {
	data, err := os.ReadFile(s.path)
	if os.IsNotExist(err) {
		return map[string]bool{}, nil
	}
	if err != nil {
		return nil, err
	}
	set := map[string]bool{}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("%s: %w", s.path, err)
	}
	return set, nil
}

func (s *Store) save(set map[string]bool) error {
	data, err := json.MarshalIndent(set, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(s.path), 0o755); err != nil {
		return err
	}
	tmp := s.path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, s.path)
}

// Pulled returns the references pulled so far, sorted.
func (s *Store) Pulled() ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	set, err := s.load()
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(set))
	for ref := range set {
		out = append(out, ref)
	}
	sort.Strings(out)
	return out, nil
}

// Has reports whether ref was pulled.
func (s *Store) Has(ref string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	set, err := s.load()
	return set[Normalize(ref)], err
}

// Add records ref as pulled.
func (s *Store) Add(ref string) error {
	return s.update(func(set map[string]bool) { set[Normalize(ref)] = true })
}

// Remove forgets ref.
func (s *Store) Remove(ref string) error {
	return s.update(func(set map[string]bool) { delete(set, Normalize(ref)) })
}

// update changes the stored set under the lock and writes it back atomically.
func (s *Store) update(change func(map[string]bool)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	set, err := s.load()
	if err != nil {
		return err
	}
	change(set)
	return s.save(set)
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
