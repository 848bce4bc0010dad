package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"mlplat.test/testbed/standins/internal/images"
)

// An image named in namespace k8s.io as ctr import names it (its name and its id) is the CRI's: by
// name, by id, with the config digest as id and the repo digest.
func TestImageStatusOfImportedImage(t *testing.T) {
	root := t.TempDir()
	s := newImageService(root, "", filepath.Join(t.TempDir(), "images"), "", "2.3.4")
	cfg := "sha256:" + "c0"[0:2] + "ffee" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789"
	rec := images.Record{Target: images.Descriptor{MediaType: "application/vnd.oci.image.index.v1+json", Digest: "sha256:" + "ab" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789ab"}, Config: cfg, Size: 4096}
	repoDigest := "registry.example:5000/site/app@" + rec.Target.Digest
	if err := s.store.Put(map[string]images.Record{"registry.example:5000/site/app:v1": rec, cfg: rec, repoDigest: rec}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"registry.example:5000/site/app:v1", cfg, repoDigest} {
		st, err := s.ImageStatus(context.Background(), &runtime.ImageStatusRequest{Image: &runtime.ImageSpec{Image: q}})
		if err != nil || st.Image == nil {
			t.Fatalf("%s: %v %v", q, st, err)
		}
		img := st.Image
		if img.Id != cfg || len(img.RepoTags) != 1 || img.RepoTags[0] != "registry.example:5000/site/app:v1" ||
			len(img.RepoDigests) != 1 || img.RepoDigests[0] != repoDigest || img.Size != 4096 {
			t.Errorf("%s: %+v", q, img)
		}
	}
	list, _ := s.ListImages(context.Background(), &runtime.ListImagesRequest{})
	if len(list.Images) != 1 {
		t.Errorf("one image of three references: %+v", list.Images)
	}
	if _, err := s.RemoveImage(context.Background(), &runtime.RemoveImageRequest{Image: &runtime.ImageSpec{Image: cfg}}); err != nil {
		t.Fatal(err)
	}
	if names, _ := s.store.Names(); len(names) != 0 {
		t.Errorf("left after RemoveImage: %v", names)
	}
}

// An offline host: a registry without hosts.toml is unreachable; the wording is containerd's.
func TestPullImageOffline(t *testing.T) {
	cat := filepath.Join(t.TempDir(), "images")
	os.WriteFile(cat, []byte("offline\n*\n"), 0o644)
	s := newImageService(t.TempDir(), filepath.Join(t.TempDir(), "certs.d"), cat, "", "2.3.4")
	s.logf = t.Logf
	_, err := s.PullImage(context.Background(), &runtime.PullImageRequest{Image: &runtime.ImageSpec{Image: "registry.k8s.io/pause:3.10"}})
	want := `failed to pull and unpack image "registry.k8s.io/pause:3.10": failed to resolve image: failed to do request: Head "https://registry.k8s.io/v2/pause/manifests/3.10": dial tcp: connect: network is unreachable`
	if st, _ := status.FromError(err); st.Code() != codes.Unknown || st.Message() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
	// Online, the catalogue's "*" holds it.
	os.WriteFile(cat, []byte("*\n"), 0o644)
	resp, err := s.PullImage(context.Background(), &runtime.PullImageRequest{Image: &runtime.ImageSpec{Image: "registry.k8s.io/pause:3.10"}})
	if err != nil || resp.ImageRef == "" {
		t.Fatalf("%v %v", resp, err)
	}
	st, _ := s.ImageStatus(context.Background(), &runtime.ImageStatusRequest{Image: &runtime.ImageSpec{Image: "registry.k8s.io/pause:3.10"}})
	if st.Image == nil || st.Image.Size == 0 {
		t.Errorf("catalogue image status: %+v", st)
	}
}
