package images

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"time"

	"mlplat.test/testbed/standins/internal/standin"
)

// CRINamespace is the containerd namespace the CRI plugin keeps its images in.
const CRINamespace = "k8s.io"

// ManagedLabel is the label the CRI plugin puts on the images it manages (internal/cri/labels).
const ManagedLabel = "io.cri-containerd.image"

// Descriptor is an OCI content descriptor, as much of it as the stores need.
type Descriptor struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
}

// Record is one image of a namespace: a name and the content it points at. A catalogue image
// (pulled from the testbed's emulation of a public registry) has no content: no Config, a stand-in
// digest as Target.
type Record struct {
	Target    Descriptor        `json:"target"`
	Config    string            `json:"config,omitempty"` // the config's digest: the image's id
	Size      int64             `json:"size"`             // the content of linux/amd64 (index, manifest, config, layers)
	Platforms []string          `json:"platforms,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
	Created   time.Time         `json:"created"`
}

// CatalogueSize is the size a catalogue image has (kubeadm counts an image as present only with a
// non-zero size: cri-client remote_image.go).
const CatalogueSize = 1 << 20

// CatalogueRecord is the record of an image pulled from the testbed's catalogue.
func CatalogueRecord(ref string) Record {
	return Record{
		Target:  Descriptor{MediaType: "application/vnd.oci.image.manifest.v1+json", Digest: "sha256:" + standin.Digest(ref)},
		Size:    CatalogueSize,
		Created: time.Now().UTC(),
	}
}

// ID is the image's id as the CRI names it: the config digest, or for a catalogue image a stand-in
// digest of its name.
func (r Record) ID(name string) string {
	if r.Config != "" {
		return r.Config
	}
	return "sha256:" + standin.Digest(name)
}

// Store is the set of images of one containerd namespace, persisted in a JSON file (containerd's
// metadata database stands behind this in the real runtime); the containerd and ctr stand-ins both
// change it, under a file lock.
type Store struct {
	path string
	mu   sync.Mutex
}

// StorePath is the file of namespace ns's images in content root root: the CRI's namespace keeps the
// name the store always had.
func StorePath(root, ns string) string {
	if ns == CRINamespace {
		return filepath.Join(root, "mlplat-standin-images.json")
	}
	return filepath.Join(root, "mlplat-standin-images."+ns+".json")
}

// OpenStore returns the store kept at path.
func OpenStore(path string) *Store { return &Store{path: path} }

func (s *Store) load() (map[string]Record, error) {
	data, err := os.ReadFile(s.path)
	if os.IsNotExist(err) {
		return map[string]Record{}, nil
	}
	if err != nil {
		return nil, err
	}
	raw := map[string]json.RawMessage{}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("%s: %w", s.path, err)
	}
	set := map[string]Record{}
	for name, v := range raw {
		if string(v) == "true" { // the store's first format: a set of catalogue names
			set[name] = CatalogueRecord(name)
			continue
		}
		var r Record
		if err := json.Unmarshal(v, &r); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", s.path, name, err)
		}
		set[name] = r
	}
	return set, nil
}

func (s *Store) save(set map[string]Record) error {
	data, err := json.MarshalIndent(set, "", "  ")
	if err != nil {
		return err
	}
	tmp := s.path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, s.path)
}

// locked runs f with the store's lock held, in this process and against the other stand-in.
func (s *Store) locked(f func() error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.MkdirAll(filepath.Dir(s.path), 0o755); err != nil {
		return err
	}
	lf, err := os.OpenFile(s.path+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer lf.Close()
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX); err != nil {
		return err
	}
	defer syscall.Flock(int(lf.Fd()), syscall.LOCK_UN)
	return f()
}

// All returns every image by name.
func (s *Store) All() (map[string]Record, error) {
	var set map[string]Record
	err := s.locked(func() (err error) { set, err = s.load(); return })
	return set, err
}

// Names returns the names of the images, sorted (as containerd's image store lists them).
func (s *Store) Names() ([]string, error) {
	set, err := s.All()
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(set))
	for n := range set {
		out = append(out, n)
	}
	sort.Strings(out)
	return out, nil
}

// Get returns the image of name exactly (no normalisation: ctr names are taken as they are).
func (s *Store) Get(name string) (Record, bool, error) {
	set, err := s.All()
	if err != nil {
		return Record{}, false, err
	}
	r, ok := set[name]
	return r, ok, nil
}

// Update changes the stored set under the lock and writes it back atomically.
func (s *Store) Update(change func(map[string]Record) error) error {
	return s.locked(func() error {
		set, err := s.load()
		if err != nil {
			return err
		}
		if err := change(set); err != nil {
			return err
		}
		return s.save(set)
	})
}

// Put records images by name, replacing what those names pointed at.
func (s *Store) Put(recs map[string]Record) error {
	return s.Update(func(set map[string]Record) error {
		for n, r := range recs {
			set[n] = r
		}
		return nil
	})
}

// Delete forgets name; it reports whether there was such an image.
func (s *Store) Delete(name string) (bool, error) {
	var had bool
	err := s.Update(func(set map[string]Record) error {
		_, had = set[name]
		delete(set, name)
		return nil
	})
	return had, err
}

// Add records ref (normalised) as pulled from the testbed's catalogue.
func (s *Store) Add(ref string) error {
	return s.Put(map[string]Record{Normalize(ref): CatalogueRecord(Normalize(ref))})
}
