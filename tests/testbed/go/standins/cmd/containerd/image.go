package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"mlplat.test/testbed/standins/internal/content"
	"mlplat.test/testbed/standins/internal/images"
	"mlplat.test/testbed/standins/internal/registry"
)

// defaultConfigPath is the CRI plugin's config_path when the config sets none (plugins/cri/images/
// plugin.go). The transfer service takes config_path as one root (core/transfer/registry: WithHostDir,
// HostDirFromRoot), so this list of two finds no host directory: as in containerd, a config without
// config_path has no hosts.toml.
const defaultConfigPath = "/etc/containerd/certs.d:/etc/docker/certs.d"

// imageService is the CRI image service over the k8s.io namespace's images (package images' Store)
// and the content store, as containerd's CRI plugin keeps them (internal/cri/server/images).
type imageService struct {
	runtime.UnimplementedImageServiceServer
	store      *images.Store
	content    *content.Store
	configPath string
	catalogue  string
	hostsFile  string
	version    string
	logf       func(format string, args ...any)
}

func newImageService(contentRoot, configPath, catalogue, hostsFile, version string) *imageService {
	if configPath == "" {
		configPath = defaultConfigPath
	}
	return &imageService{
		store:      images.OpenStore(images.StorePath(contentRoot, images.CRINamespace)),
		content:    content.Open(contentRoot),
		configPath: configPath,
		catalogue:  catalogue,
		hostsFile:  hostsFile,
		version:    version,
		logf:       func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) },
	}
}

// criImage is one image of the CRI's image store: the references sharing an image id.
type criImage struct {
	id   string
	refs []string
	rec  images.Record
}

// list groups the namespace's images by id, as the CRI's image store does (internal/cri/store/image).
func (s *imageService) list() ([]criImage, error) {
	all, err := s.store.All()
	if err != nil {
		return nil, err
	}
	byID := map[string]*criImage{}
	var ids []string
	for name, rec := range all {
		id := rec.ID(name)
		img, ok := byID[id]
		if !ok {
			img = &criImage{id: id, rec: rec}
			byID[id] = img
			ids = append(ids, id)
		}
		img.refs = append(img.refs, name)
	}
	sort.Strings(ids)
	out := make([]criImage, 0, len(ids))
	for _, id := range ids {
		sort.Strings(byID[id].refs)
		out = append(out, *byID[id])
	}
	return out, nil
}

// toCRI is toCRIImage: the tagged references as RepoTags, the digested ones as RepoDigests (the id
// reference is neither).
func toCRI(img criImage) *runtime.Image {
	out := &runtime.Image{Id: img.id, Size: uint64(img.rec.Size)}
	for _, r := range img.refs {
		switch {
		case strings.HasPrefix(r, "sha256:"):
		case strings.Contains(r, "@"):
			out.RepoDigests = append(out.RepoDigests, r)
		default:
			out.RepoTags = append(out.RepoTags, r)
		}
	}
	return out
}

// resolve is LocalResolve: an image id, else the normalised reference's image.
func (s *imageService) resolve(ref string) (*criImage, error) {
	list, err := s.list()
	if err != nil {
		return nil, err
	}
	want := ref
	if !content.ValidDigest(ref) {
		want = images.Normalize(ref)
	}
	for i := range list {
		if list[i].id == want {
			return &list[i], nil
		}
		for _, r := range list[i].refs {
			if r == want {
				return &list[i], nil
			}
		}
	}
	return nil, nil
}

func (s *imageService) ListImages(context.Context, *runtime.ListImagesRequest) (*runtime.ListImagesResponse, error) {
	list, err := s.list()
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	out := &runtime.ListImagesResponse{}
	for _, img := range list {
		out.Images = append(out.Images, toCRI(img))
	}
	return out, nil
}

func (s *imageService) ImageStatus(_ context.Context, req *runtime.ImageStatusRequest) (*runtime.ImageStatusResponse, error) {
	img, err := s.resolve(req.GetImage().GetImage())
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	if img == nil {
		return &runtime.ImageStatusResponse{}, nil // not present: no image, no error, as the CRI says
	}
	return &runtime.ImageStatusResponse{Image: toCRI(*img)}, nil
}

// credentials is ParseAuth of the request's auth (internal/cri/server/images/image_pull.go).
func credentials(auth *runtime.AuthConfig) registry.Creds {
	return func(host string) (string, string) {
		if auth == nil {
			return "", ""
		}
		if auth.ServerAddress != "" {
			u, err := url.Parse(auth.ServerAddress)
			if err != nil || u.Host != host {
				return "", ""
			}
		}
		if auth.Username != "" {
			return auth.Username, auth.Password
		}
		if auth.IdentityToken != "" {
			return "", auth.IdentityToken
		}
		if auth.Auth != "" {
			dec, err := base64.StdEncoding.DecodeString(auth.Auth)
			if err != nil {
				return "", ""
			}
			user, pass, ok := strings.Cut(string(dec), ":")
			if !ok {
				return "", ""
			}
			return user, strings.Trim(pass, "\x00")
		}
		return "", ""
	}
}

// PullImage pulls as the CRI plugin does (always: the kubelet decides by its pull policy): the
// registry's hosts from config_path, the linux/amd64 content into the content store, and the
// references imageID, repoTag and repoDigest (image_pull.go). A registry host that is not on the
// test networks is a public one: the testbed's catalogue stands for it, or, offline, it cannot be
// reached.
func (s *imageService) PullImage(ctx context.Context, req *runtime.PullImageRequest) (*runtime.PullImageResponse, error) {
	ref := images.Normalize(req.GetImage().GetImage())
	fail := func(err error) (*runtime.PullImageResponse, error) {
		code := codes.Unknown
		if errors.Is(err, registry.ErrNotFound) || errors.Is(err, content.ErrNotFound) {
			code = codes.NotFound
		} else if errors.Is(err, content.ErrFailedPrecondition) {
			code = codes.FailedPrecondition
		}
		return nil, status.Errorf(code, "failed to pull and unpack image %q: %v", ref, err)
	}
	cat, err := images.LoadCatalogue(s.catalogue)
	if err != nil {
		return fail(err)
	}
	p := &registry.Puller{HostsDir: s.configPath, Content: s.content, Catalogue: cat, HostsFile: s.hostsFile, Version: s.version, Log: s.logf}
	start := time.Now()
	res, err := p.Pull(ctx, ref, credentials(req.GetAuth()))
	if err != nil {
		return fail(err)
	}
	if res.Emulated {
		rec := images.CatalogueRecord(ref)
		if err := s.store.Put(map[string]images.Record{ref: rec}); err != nil {
			return nil, status.Error(codes.Internal, err.Error())
		}
		registry.LogLine(s.logf, "info", fmt.Sprintf("Pulled image %q with image id %q from the testbed catalogue (a public registry)", ref, rec.ID(ref)), "host", res.Host)
		return &runtime.PullImageResponse{ImageRef: rec.ID(ref)}, nil
	}
	rec := images.Record{Target: res.Target, Config: res.Config, Size: res.Size, Platforms: res.Platforms,
		Labels: map[string]string{images.ManagedLabel: "managed"}, Created: time.Now().UTC()}
	repo := images.Repository(ref)
	repoDigest := repo + "@" + res.Target.Digest
	refs := map[string]images.Record{res.Config: rec, repoDigest: rec}
	if !strings.Contains(ref, "@") {
		refs[ref] = rec // the repo tag
	}
	if err := s.store.Put(refs); err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	repoTag := ""
	if !strings.Contains(ref, "@") {
		repoTag = ref
	}
	registry.LogLine(s.logf, "info", fmt.Sprintf("Pulled image %q with image id %q, repo tag %q, repo digest %q, size %q in %s",
		req.GetImage().GetImage(), res.Config, repoTag, repoDigest, fmt.Sprint(res.Size), time.Since(start)), "host", res.Host)
	return &runtime.PullImageResponse{ImageRef: res.Config}, nil
}

// RemoveImage removes every reference of the image (image_remove.go); an unknown one is no error.
func (s *imageService) RemoveImage(_ context.Context, req *runtime.RemoveImageRequest) (*runtime.RemoveImageResponse, error) {
	img, err := s.resolve(req.GetImage().GetImage())
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	if img == nil {
		return &runtime.RemoveImageResponse{}, nil
	}
	err = s.store.Update(func(set map[string]images.Record) error {
		for _, r := range img.refs {
			delete(set, r)
		}
		return nil
	})
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &runtime.RemoveImageResponse{}, nil
}

func (s *imageService) ImageFsInfo(context.Context, *runtime.ImageFsInfoRequest) (*runtime.ImageFsInfoResponse, error) {
	return &runtime.ImageFsInfoResponse{}, nil
}
