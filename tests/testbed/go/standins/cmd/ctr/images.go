package main

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"mlplat.test/testbed/standins/internal/content"
	"mlplat.test/testbed/standins/internal/images"
	"mlplat.test/testbed/standins/internal/registry"
)

func imagesCommand() *cli.Command {
	return &cli.Command{
		Name:        "images",
		Aliases:     []string{"image", "i"},
		Usage:       "Manage images",
		Subcommands: cli.Commands{importCommand(), listCommand(), removeCommand()},
	}
}

func listCommand() *cli.Command {
	return &cli.Command{
		Name:        "list",
		Aliases:     []string{"ls"},
		Usage:       "List images known to containerd",
		ArgsUsage:   "[flags] [<filter>, ...]",
		Description: "list images registered with containerd",
		Flags:       []cli.Flag{&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "Print only the image refs"}},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return errors.New("the testbed's ctr stand-in takes no list filters")
			}
			d, err := connect(c)
			if err != nil {
				return err
			}
			all, err := d.store().All()
			if err != nil {
				return fmt.Errorf("failed to list images: %w", err)
			}
			names := make([]string, 0, len(all))
			for n := range all {
				names = append(names, n)
			}
			sort.Strings(names)
			if c.Bool("quiet") {
				for _, n := range names {
					fmt.Println(n)
				}
				return nil
			}
			tw := tabwriter.NewWriter(os.Stdout, 1, 8, 1, ' ', 0)
			fmt.Fprintln(tw, "REF\tTYPE\tDIGEST\tSIZE\tPLATFORMS\tLABELS\t")
			for _, n := range names {
				r := all[n]
				plat := "-"
				if len(r.Platforms) > 0 {
					plat = strings.Join(r.Platforms, ",")
				}
				labels := "-"
				if len(r.Labels) > 0 {
					var pairs []string
					for k, v := range r.Labels {
						pairs = append(pairs, k+"="+v)
					}
					sort.Strings(pairs)
					labels = strings.Join(pairs, ",")
				}
				fmt.Fprintf(tw, "%v\t%v\t%v\t%v\t%v\t%s\t\n", n, r.Target.MediaType, r.Target.Digest, humanBytes(r.Size), plat, labels)
			}
			return tw.Flush()
		},
	}
}

func removeCommand() *cli.Command {
	return &cli.Command{
		Name:        "delete",
		Aliases:     []string{"del", "remove", "rm"},
		Usage:       "Remove one or more images by reference",
		ArgsUsage:   "[flags] <ref> [<ref>, ...]",
		Description: "remove one or more images by reference",
		Flags:       []cli.Flag{&cli.BoolFlag{Name: "sync", Usage: "Synchronously remove image and all associated resources"}},
		Action: func(c *cli.Context) error {
			d, err := connect(c)
			if err != nil {
				return err
			}
			for _, target := range c.Args().Slice() {
				had, err := d.store().Delete(target)
				if err != nil {
					return fmt.Errorf("unable to delete %v: %w", target, err)
				}
				if !had {
					fmt.Fprintf(os.Stderr, "time=%q level=warning msg=\"%v: image not found\"\n", time.Now().Format(time.RFC3339Nano), target)
					continue
				}
				fmt.Println(target)
			}
			return nil
		},
	}
}

// humanBytes is progress.Bytes: units.CustomSize("%02.1f %s", b, 1024, B..YiB).
func humanBytes(b int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"}
	size, i := float64(b), 0
	for size >= 1024 && i < len(units)-1 {
		size /= 1024
		i++
	}
	return fmt.Sprintf("%02.1f %s", size, units[i])
}

func importCommand() *cli.Command {
	return &cli.Command{
		Name:      "import",
		Usage:     "Import images",
		ArgsUsage: "[flags] <in>",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "base-name", Usage: "Base image name for added images, when provided only images with this name prefix are imported"},
			&cli.BoolFlag{Name: "digests", Usage: "Whether to create digest images (default: false)"},
			&cli.BoolFlag{Name: "skip-digest-for-named", Usage: "Skip applying --digests option to images named in the importing tar (use it in conjunction with --digests)"},
			&cli.StringFlag{Name: "index-name", Usage: "Image name to keep index as, by default index is discarded"},
			&cli.BoolFlag{Name: "all-platforms", Usage: "Imports content for all platforms, false by default"},
			&cli.StringFlag{Name: "platform", Usage: "Imports content for specific platform"},
			&cli.BoolFlag{Name: "no-unpack", Usage: "Skip unpacking the images, cannot be used with --discard-unpacked-layers, false by default"},
			&cli.BoolFlag{Name: "local", Usage: "Run import locally rather than through transfer API"},
			&cli.BoolFlag{Name: "compress-blobs", Usage: "Compress uncompressed blobs when creating manifest (Docker format only)"},
			&cli.BoolFlag{Name: "discard-unpacked-layers", Usage: "Allow the garbage collector to clean layers up from the content store after unpacking, cannot be used with --no-unpack, false by default"},
			&cli.BoolFlag{Name: "sync-fs", Usage: "Synchronize the underlying filesystem containing files when unpack images, false by default"},
			&cli.StringFlag{Name: "snapshotter", Usage: "Snapshotter name. Empty value stands for the default value.", EnvVars: []string{"CONTAINERD_SNAPSHOTTER"}},
			&cli.StringSliceFlag{Name: "label", Usage: "Labels to attach to the image"},
		},
		Action: runImport,
	}
}

type desc struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Platform    *plat             `json:"platform,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

type plat struct {
	OS           string `json:"os"`
	Architecture string `json:"architecture"`
	Variant      string `json:"variant,omitempty"`
}

func (p plat) String() string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

type manifest struct {
	Config    desc   `json:"config"`
	Layers    []desc `json:"layers"`
	Manifests []desc `json:"manifests"`
}

type imageConfig struct {
	OS           string `json:"os"`
	Architecture string `json:"architecture"`
	Variant      string `json:"variant"`
	RootFS       struct {
		DiffIDs []string `json:"diff_ids"`
	} `json:"rootfs"`
}

const refSource = "io.containerd.import.ref-source"

// ingest reads the tar as ImportIndex does (core/images/archive/importer.go): every regular file but
// oci-layout and manifest.json into the content store under the digest its bytes have (the name in
// the tar is not trusted), and returns the descriptor of index.json.
func ingest(cs *content.Store, r io.Reader) (desc, error) {
	tr := tar.NewReader(r)
	var layout struct {
		Version string `json:"imageLayoutVersion"`
	}
	dockerFormat := false
	blobs := map[string]desc{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return desc{}, err
		}
		if hdr.Typeflag != tar.TypeReg && hdr.Typeflag != tar.TypeRegA {
			continue
		}
		name := path.Clean(hdr.Name)
		switch name {
		case "oci-layout":
			if err := json.NewDecoder(io.LimitReader(tr, 20<<20)).Decode(&layout); err != nil {
				return desc{}, fmt.Errorf("untar oci layout %q: %w", hdr.Name, err)
			}
		case "manifest.json":
			dockerFormat = true
		default:
			d, err := cs.Write("tar-"+name, tr, hdr.Size, "")
			if err != nil {
				return desc{}, fmt.Errorf("failed to ingest %q: %w", hdr.Name, err)
			}
			blobs[name] = desc{Digest: d, Size: hdr.Size}
		}
	}
	if layout.Version == "" {
		if dockerFormat {
			return desc{}, errors.New("the testbed's ctr stand-in imports OCI archives only, not Docker's format (manifest.json)")
		}
		return desc{}, errors.New("unrecognized image format")
	}
	if layout.Version != "1.0.0" {
		return desc{}, fmt.Errorf("unsupported OCI version %s", layout.Version)
	}
	idx, ok := blobs["index.json"]
	if !ok {
		return desc{}, fmt.Errorf("missing index.json in OCI layout 1.0.0")
	}
	idx.MediaType = registry.MediaTypeOCIIndex
	return idx, nil
}

func isIndex(mt string) bool {
	return mt == registry.MediaTypeOCIIndex || mt == registry.MediaTypeDockerManifestList
}
func isManifest(mt string) bool {
	return mt == registry.MediaTypeOCIManifest || mt == registry.MediaTypeDockerManifest
}

func readJSON(cs *content.Store, d desc, v any) error {
	b, err := cs.Read(d.Digest, registry.MaxManifestSize+1)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// importer walks the imported index as the transfer service's importStream does.
type importer struct {
	cs        *content.Store
	match     func(*plat) bool // the store's platforms (all with --all-platforms)
	unpack    bool
	unpackFor func(*plat) bool
}

// image is what a descriptor names: its default-platform config and size, its platforms.
type image struct {
	config    string
	size      int64
	platforms []string
}

// walk reads d's children (WalkNotEmpty with the platform filter), unpacking the matching manifests,
// and returns what d is as an image.
func (im *importer) walk(d desc) (image, error) {
	var out image
	switch {
	case isIndex(d.MediaType):
		var idx manifest
		if err := readJSON(im.cs, d, &idx); err != nil {
			return out, err
		}
		out.size = d.Size
		seen := map[string]bool{}
		for _, m := range idx.Manifests {
			if m.Platform != nil && m.Platform.OS != "unknown" && !seen[m.Platform.String()] {
				seen[m.Platform.String()] = true
				out.platforms = append(out.platforms, m.Platform.String())
			}
			if m.Platform != nil && !im.match(m.Platform) {
				continue
			}
			sub, err := im.walk(m)
			if err != nil {
				return out, err
			}
			if out.config == "" && (m.Platform == nil || im.unpackFor(m.Platform)) {
				out.config, out.size = sub.config, out.size+sub.size
			}
		}
		sort.Strings(out.platforms)
	case isManifest(d.MediaType):
		var mf manifest
		if err := readJSON(im.cs, d, &mf); err != nil {
			return out, err
		}
		out.config = mf.Config.Digest
		out.size = d.Size + mf.Config.Size
		for _, l := range mf.Layers {
			out.size += l.Size
		}
		var cfg imageConfig
		cfgErr := readJSON(im.cs, mf.Config, &cfg)
		if cfgErr == nil && cfg.OS != "" {
			out.platforms = []string{plat{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant}.String()}
		}
		if im.unpack && (d.Platform == nil || im.unpackFor(d.Platform)) {
			// The unpacker reads the config, then applies each layer from the content store.
			if cfgErr != nil {
				return out, cfgErr
			}
			if len(cfg.RootFS.DiffIDs) != len(mf.Layers) {
				return out, fmt.Errorf("number of layers and diffIDs don't match: %d != %d", len(mf.Layers), len(cfg.RootFS.DiffIDs))
			}
			chain := ""
			for i, l := range mf.Layers {
				if chain == "" {
					chain = cfg.RootFS.DiffIDs[i]
				} else {
					chain = content.Digest([]byte(chain + " " + cfg.RootFS.DiffIDs[i]))
				}
				if !im.cs.Has(l.Digest) {
					return out, fmt.Errorf("failed to extract layer (%s %s) to overlayfs as \"extract-%d-standin %s\": content digest %s: not found",
						l.MediaType, l.Digest, time.Now().Nanosecond(), chain, l.Digest)
				}
			}
		}
	}
	return out, nil
}

// imageName is the transfer image store's imageName: io.containerd.image.name taken whole (unless the
// translation would change it), else org.opencontainers.image.ref.name translated.
func imageName(ann map[string]string, translate func(string) string) string {
	if n := ann["io.containerd.image.name"]; n != "" {
		if translate(n) != n {
			return ""
		}
		return n
	}
	if n := ann["org.opencontainers.image.ref.name"]; n != "" {
		return translate(n)
	}
	return ""
}

// refTranslator is archive.AddRefPrefix (checkPrefix false) or FilterRefPrefix (true).
func refTranslator(image string, checkPrefix bool) func(string) string {
	return func(ref string) string {
		if image == "" {
			return ""
		}
		if strings.ContainsAny(ref, "/:@") {
			if checkPrefix && !isImagePrefix(ref, image) {
				return ""
			}
			return ref
		}
		return image + ":" + ref
	}
}

func isImagePrefix(s, prefix string) bool {
	if !strings.HasPrefix(s, prefix) {
		return false
	}
	if len(s) > len(prefix) {
		switch s[len(prefix)] {
		case '/', ':', '@':
		default:
			return false
		}
	}
	return true
}

func parsePlatform(s string) (plat, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return plat{}, fmt.Errorf("%q: unknown operating system or architecture: invalid argument", s)
	}
	p := plat{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}

func runImport(c *cli.Context) error {
	in := c.Args().First()
	d, err := connect(c)
	if err != nil {
		return err
	}
	if c.IsSet("discard-unpacked-layers") && !c.Bool("local") {
		return fmt.Errorf("\"--%s\" requires \"--local\" flag", "discard-unpacked-layers")
	}
	prefix, overwrite := c.String("base-name"), false
	if prefix == "" {
		prefix, overwrite = fmt.Sprintf("import-%s", time.Now().Format("2006-01-02")), true
	}
	unpackPlat := plat{OS: "linux", Architecture: "amd64"}
	if p := c.String("platform"); p != "" && !c.Bool("all-platforms") {
		if unpackPlat, err = parsePlatform(p); err != nil {
			return err
		}
	}
	same := func(p *plat) bool { return p.OS == unpackPlat.OS && p.Architecture == unpackPlat.Architecture }
	im := &importer{cs: content.Open(contentRoot), match: same, unpack: !c.Bool("no-unpack"), unpackFor: same}
	if c.Bool("all-platforms") {
		im.match = func(*plat) bool { return true }
	}
	var r io.ReadCloser = os.Stdin
	if in != "-" {
		if r, err = os.Open(in); err != nil {
			return err
		}
	}
	start := time.Now()
	index, err := ingest(im.cs, r)
	closeErr := r.Close()
	if err != nil {
		return err
	}
	if closeErr != nil {
		return closeErr
	}
	// The index's own manifests are the images to name; each is walked (read, unpacked).
	var idx manifest
	if err := readJSON(im.cs, index, &idx); err != nil {
		return err
	}
	top, err := im.walk(index)
	if err != nil {
		return err
	}
	type named struct {
		name string
		d    desc
		img  image
	}
	var saved []named
	labels := map[string]string{}
	for _, l := range c.StringSlice("label") {
		k, v, _ := strings.Cut(l, "=")
		labels[k] = v
	}
	if n := c.String("index-name"); n != "" {
		saved = append(saved, named{n, index, top})
	}
	if c.Bool("digests") && c.String("index-name") != "" {
		saved = append(saved, named{prefix + "@" + index.Digest, index, top})
	}
	translate := refTranslator(prefix, !overwrite)
	for _, m := range idx.Manifests {
		var img image
		if m.Platform == nil || im.match(m.Platform) {
			if img, err = im.walk(m); err != nil {
				return err
			}
		}
		name := imageName(m.Annotations, translate)
		if name == "" {
			if c.Bool("digests") {
				saved = append(saved, named{prefix + "@" + m.Digest, m, img})
			}
			continue
		}
		saved = append(saved, named{name, m, img})
		if c.Bool("digests") && !c.Bool("skip-digest-for-named") {
			saved = append(saved, named{prefix + "@" + m.Digest, m, img})
		}
	}
	recs := map[string]images.Record{}
	for _, s := range saved {
		l := map[string]string{}
		for k, v := range labels {
			l[k] = v
		}
		if d.ns == images.CRINamespace {
			l[images.ManagedLabel] = "managed"
		}
		if len(l) == 0 {
			l = nil
		}
		rec := images.Record{Target: images.Descriptor{MediaType: s.d.MediaType, Digest: s.d.Digest, Size: s.d.Size},
			Config: s.img.config, Size: s.img.size, Platforms: s.img.platforms, Labels: l, Created: time.Now().UTC()}
		recs[s.name] = rec
		// The CRI plugin names every image it manages by its id too (UpdateImage).
		if d.ns == images.CRINamespace && rec.Config != "" {
			recs[rec.Config] = rec
		}
	}
	if err := d.store().Put(recs); err != nil {
		return err
	}
	if c.Bool("local") {
		if !c.Bool("no-unpack") {
			for _, s := range saved {
				fmt.Printf("unpacking %s (%s)...", s.name, s.d.Digest)
				fmt.Println("done")
			}
		}
		return nil
	}
	// The transfer service's progress (ProgressHandler, DisplayHierarchy), as printed when stdin is no
	// terminal: after each "saved" event every image so far, their descriptors and the status line.
	for i := range saved {
		var b strings.Builder
		for _, s := range saved[:i+1] {
			fmt.Fprintf(&b, "%-40.40s\t%s\t\n", displayName(s.name), "saved")
		}
		for _, s := range saved[:i+1] {
			fmt.Fprintf(&b, "%s %s\n", s.d.MediaType, s.d.Digest)
		}
		fmt.Fprintf(&b, "%s\telapsed: %-4.1fs\ttotal: %7.6v\t(%v)\t\n", "Importing", time.Since(start).Seconds(), humanBytes(0), humanBytes(0)+"/s")
		fmt.Print(b.String())
	}
	return nil
}

// displayName is the progress display's: "-" shown as " ", 64-hex digests shortened.
func displayName(name string) string {
	parts := strings.Split(name, "-")
	for i, p := range parts {
		if strings.HasPrefix(p, "sha256:") && len(p) == 71 {
			parts[i] = "(" + p[7:19] + ")"
		}
	}
	return strings.Join(parts, " ")
}
