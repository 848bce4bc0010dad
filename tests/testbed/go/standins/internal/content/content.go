// Package content is the stand-ins' content store: blobs named by their sha256 digest under
// ROOT/blobs/sha256/<hex>, as containerd's local content store lays them out
// (plugins/content/local/store.go), written through ROOT/ingest and committed only when their digest
// and size are the expected ones (plugins/content/local/writer.go). The containerd stand-in (a pull)
// and the ctr stand-in (an import) share it.
package content

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
)

// Root is the content store of a host, containerd's own directory for it.
const Root = "/var/lib/containerd/io.containerd.content.v1.content"

// MaxBlobSize bounds one blob (the testbed's images are small; a larger descriptor is refused before
// anything is read).
const MaxBlobSize = 1 << 30

// ErrNotFound is the error class of a missing blob (errdefs.ErrNotFound's text).
var ErrNotFound = errors.New("not found")

// ErrFailedPrecondition is the class of a blob whose digest or size is not the expected one.
var ErrFailedPrecondition = errors.New("failed precondition")

var digestRE = regexp.MustCompile(`^sha256:[a-f0-9]{64}$`)

// Store is a content store at a root directory.
type Store struct{ Root string }

// Open returns the store at root.
func Open(root string) *Store { return &Store{Root: root} }

// ValidDigest reports whether d is a sha256 digest in canonical form.
func ValidDigest(d string) bool { return digestRE.MatchString(d) }

// Path returns where the blob of digest d lives.
func (s *Store) Path(d string) (string, error) {
	if !ValidDigest(d) {
		return "", fmt.Errorf("cannot calculate blob path from invalid digest: %s: invalid argument", d)
	}
	return filepath.Join(s.Root, "blobs", "sha256", d[len("sha256:"):]), nil
}

// Has reports whether the blob of digest d is present.
func (s *Store) Has(d string) bool {
	p, err := s.Path(d)
	if err != nil {
		return false
	}
	_, err = os.Stat(p)
	return err == nil
}

// Read returns the whole blob of digest d (for manifests, indexes and configs), at most max bytes.
func (s *Store) Read(d string, max int64) ([]byte, error) {
	p, err := s.Path(d)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("content digest %s: %w", d, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, max))
}

// Size returns the size of the blob of digest d.
func (s *Store) Size(d string) (int64, error) {
	p, err := s.Path(d)
	if err != nil {
		return 0, err
	}
	st, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("content digest %s: %w", d, ErrNotFound)
	}
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

// Write copies r into the store as the blob of digest expected and size size (0: any size, "" : any
// digest) and returns the digest it has. Nothing is committed unless both match: the errors are
// containerd's writer's ("unexpected commit digest ...", "unexpected commit size ...", "short read").
// ref names the ingest, as containerd's ref keys do ("layer-sha256:...").
func (s *Store) Write(ref string, r io.Reader, size int64, expected string) (string, error) {
	if size > MaxBlobSize {
		return "", fmt.Errorf("blob %s of %d bytes exceeds the stand-in's limit of %d bytes", expected, size, int64(MaxBlobSize))
	}
	ingest := filepath.Join(s.Root, "ingest")
	if err := os.MkdirAll(ingest, 0o700); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(ingest, "data-")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	limit := int64(MaxBlobSize) + 1
	if size > 0 {
		limit = size + 1 // one byte more tells an overlong blob
	}
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(r, limit))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("failed to copy: %w", err)
	}
	if size > 0 && n < size {
		return "", fmt.Errorf("short read: expected %d bytes but got %d: unexpected EOF", size, n)
	}
	if n > MaxBlobSize {
		return "", fmt.Errorf("blob %s exceeds the stand-in's limit of %d bytes", expected, int64(MaxBlobSize))
	}
	dgst := "sha256:" + hex.EncodeToString(h.Sum(nil))
	if size > 0 && n != size {
		return "", fmt.Errorf("failed commit on ref %q: unexpected commit size %d, expected %d: %w", ref, n, size, ErrFailedPrecondition)
	}
	if expected != "" && dgst != expected {
		return "", fmt.Errorf("failed commit on ref %q: unexpected commit digest %s, expected %s: %w", ref, dgst, expected, ErrFailedPrecondition)
	}
	target, _ := s.Path(dgst)
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return "", err
	}
	if err := os.Rename(tmp.Name(), target); err != nil {
		return "", err
	}
	_ = os.Chmod(target, 0o444)
	return dgst, nil
}

// Digest returns the sha256 digest of b.
func Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}
