// Offline artifact bundles: every artifact of one matrix row, downloaded and verified, with a bill of
// materials (bundle.json: each file's URL, sha256, how it was verified; the images the row needs and,
// with --images, each as an OCI archive with its digests; the kustomize remote bases it carries) and a
// SHA256SUMS that `sha256sum -c` reads on any host. Images are copied by skopeo (a process with argv),
// never by a registry client of mlplat's own.
// A bundle is a directory or a .tar.gz / .tar.zst of one. Its bill of materials may be signed
// (bundle.json.sig, an SSH signature made by `ssh-keygen -Y sign -n mlplat-bundle`); a bundle is
// trusted when that signature verifies against the operator's allowed signers, or when the operator
// names its bill of materials' sha256 (docs/bundle.md).
#pragma once

#include "compat/matrix.hpp"
#include "fetch/download.hpp"
#include "transport/fleet.hpp"
#include "util/error.hpp"

#include <cstdint>
#include <chrono>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace mlplat::bundle {

// --- Interface ---

struct BomArtifact {
  std::string name;
  std::string file;          // relative to the bundle: files/<name>/<file name>
  std::string url;           // upstream URL (the matrix's)
  std::string fetched_from;  // where it came from (a mirror, the base URL or upstream)
  std::string sha256;
  std::uint64_t size = 0;
  std::string verification;  // pinned | upstream-checksum | first-download
  std::string checksum_url;  // for upstream-checksum
};

// An image of the row. Only `ref` is set unless the bundle carries the image (create --images).
struct BomImage {
  std::string ref;             // as the row names it: registry/path:tag (or @sha256:...)
  std::string digest;          // sha256:<hex> of the manifest as stored in the archive (index.json's)
  std::string source_digest;   // sha256:<hex> the source registry resolved `ref` to (a list or a manifest)
  std::string file;            // images/<layout name>.tar (image_file)
  std::string sha256;          // of the archive file
  std::uint64_t size = 0;      // bytes of the archive file
  std::string fetched_from;    // the registry or mirror it was copied from (host[:port][/prefix])

  bool carried() const { return !file.empty(); }
};

struct Bom {
  int format = 2;  // 2: images are objects (BomImage); 1 (read only): images are strings
  std::string row;
  std::string kubernetes;
  std::string created;        // UTC, ISO 8601
  std::string mlplat_version;
  std::string matrix_source;
  std::string matrix_verified;
  std::vector<BomArtifact> artifacts;
  std::vector<BomImage> images;
  bool images_included = false;  // created with --images: every image of the row is carried
  std::vector<compat::KustomizeSource> kustomize_sources;

  const BomArtifact* find(const std::string& name) const;
  const BomImage* find_image(const std::string& ref) const;
};

// Where the images of a bundle come from (bundle create --images).
struct ImageOptions {
  bool include = false;  // --images: copy every image of the row into the bundle
  // Registry host of a reference (registry.k8s.io, docker.io, quay.io) -> a mirror location
  // (registry_location): tried first; the mirror keeps the repository path.
  std::map<std::string, std::string> mirrors;
  std::string mirror_ca;   // a PEM CA the mirrors' certificates chain to (empty: the system's CAs)
  std::string auth_file;   // a containers-auth.json (skopeo login / podman write it); empty: skopeo's default
  bool upstream = true;    // false (--no-upstream-images): only mirrors; an image of a registry without one is refused
  std::chrono::seconds deadline{1800};  // one image, all its sources together
};

struct CreateOptions {

  std::string row;                         // empty: the matrix's default row
  std::string output;                      // a directory, or a file ending .tar.gz / .tar.zst
  fetch::Options fetch;
  std::set<std::string> accept_unpinned;   // artifact names (or "all") taken on first download
  std::string sign_key;                    // an SSH private key (no passphrase): bundle.json is signed with it
  ImageOptions images;                     // --images and where they come from
};

// What makes a bundle trusted, beyond its files matching its own bill of materials.
struct Trust {
  // The matrix in use (built-in or --matrix): the bundle's row must be one of its rows, every file in
  // the bill of materials an artifact of that row at the row's own path, and every artifact the row
  // pins must have the pinned sha256. Required.
  const compat::Matrix* matrix = nullptr;
  std::string allowed_signers;  // an ssh-keygen allowed signers file (empty: none configured)
  std::string signer;           // the identity in it that must have signed bundle.json
  // The sha256 of a bundle.json the operator accepts without a good signature (--accept-unsigned-bundle);
  // it names one bill of materials, and so every file of one bundle.
  std::string accept_unsigned;
};

// The SSH signature namespace of a bundle's bill of materials.
inline constexpr const char* k_signature_namespace = "mlplat-bundle";

// Whether `name` is a name of the bundle's own layout: [A-Za-z0-9._+-]+, and not "." or "..".
bool is_layout_name(std::string_view name);

// Downloads every artifact of the row into a staging directory beside `output` (kept on failure, so
// a second run resumes), verifies each, writes bundle.json and SHA256SUMS, then moves or archives the
// result to `output`. Refuses before any download when an unpinned artifact was not accepted.
Result<Bom> create(const compat::Matrix& matrix, const CreateOptions& options);

// The bill of materials of a bundle (directory or archive). Every file path must be of the bundle's
// layout (files/<artifact>/<file name>, is_layout_name for both, the artifact the entry's name) and
// every sha256 64 hex digits; an error names the entry (index, name, line of bundle.json).
Result<Bom> read_bom(const std::filesystem::path& bundle);

// The sha256 of a bundle's bundle.json as stored (what --accept-unsigned-bundle names).
Result<std::string> bom_sha256(const std::filesystem::path& bundle);

// Checks a bundle before anything uses it: its bill of materials against the matrix (row known,
// every file the row's artifact at its layout path, kustomize sources the row's, pinned sha256),
// its signature against `trust` (or the operator's acceptance of this bill of materials by sha256),
// SHA256SUMS line by line, then re-hashes every file. Every problem is listed (exit 1).
Result<Bom> verify(const std::filesystem::path& bundle, const Trust& trust);

// The problems of `bom` against the matrix (see verify); empty when none.
std::vector<Error> check_against_matrix(const Bom& bom, const compat::Matrix& matrix);

// Whether `key` is an SSH private key ssh-keygen can use without a passphrase; the error says a key
// with a passphrase is not supported.
Status check_sign_key(const std::string& key);

// Signs `bom_file` with the SSH private key `key` (ssh-keygen -Y sign -n mlplat-bundle, argv only),
// writing `signature`. A key with a passphrase is refused (not supported).
Status sign(const std::filesystem::path& bom_file, const std::string& key, const std::filesystem::path& signature);

// A bundle as a directory: itself, or an archive extracted into `scratch`.
Result<std::filesystem::path> open_dir(const std::filesystem::path& bundle, const std::filesystem::path& scratch);

// The checksum list (sha256sum format) of the artifacts named in `only` (all when empty).
std::string sums_for(const Bom& bom, const std::set<std::string>& only = {});

// Uploads the artifacts named in `only` (all when empty) of a bundle directory to host `host` under
// `remote_dir`, with their SHA256SUMS and bundle.json, then has the host check them itself
// (`sha256sum --check`). The files arrive atomically with their sha256 checked by the transport.
Status push_host(transport::Fleet& fleet, size_t host, const std::filesystem::path& bundle_dir, const Bom& bom,
                 const std::string& remote_dir, const std::set<std::string>& only = {});

// Uploads a bundle directory's files to every host under `remote_dir` (files arrive atomically with
// their sha256 checked by the transport), then has each host check them itself with
// `sha256sum --check SHA256SUMS`. One result per host.
std::vector<Result<bool>> push(transport::Fleet& fleet, const std::filesystem::path& bundle_dir, const Bom& bom,
                               const std::string& remote_dir);

// For large clusters: host `host` fetches the artifacts named in `only` (all when empty) from
// `mirror_url` (the bundle directory served over HTTP) with curl, resuming partial files, and checks
// each with sha256sum against the bill of materials before it takes its place; then SHA256SUMS.
Status fetch_host(transport::Fleet& fleet, size_t host, const Bom& bom, const std::string& mirror_url, const std::string& remote_dir,
                  const std::set<std::string>& only = {});

// fetch_host on every host, the whole bundle. One result per host.
std::vector<Result<bool>> fetch_on_hosts(transport::Fleet& fleet, const Bom& bom, const std::string& mirror_url,
                                         const std::string& remote_dir);

// --- Images ---

// The parts of an image reference: registry host (docker.io when the first component is not a host),
// the repository path (docker.io's one-word names under library/), the tag and the digest (either may
// be empty, not both for a row's image).
struct ImageName {
  std::string registry;
  std::string path;
  std::string tag;
  std::string digest;  // sha256:<hex>
};

// `ref` split as a registry does (registry.k8s.io/pause:3.10.2 -> registry.k8s.io, pause, 3.10.2;
// mysql:8.4 -> docker.io, library/mysql, 8.4).
ImageName split_image(const std::string& ref);

// The archive of `ref` in a bundle: images/<ref with '/', ':' and '@' as '_'>.tar, e.g.
// images/registry.k8s.io_kube-apiserver_v1.36.4.tar. Errors when the name is not is_layout_name.
Result<std::string> image_file(const std::string& ref);

// A registry or mirror given as https://host[:port][/prefix] or host[:port][/prefix], as skopeo's
// docker:// transport names it: host[:port][/prefix], no trailing '/'. http:// and other schemes,
// credentials in the URL, queries and characters outside [A-Za-z0-9.-_:/] are usage errors naming `what`.
Result<std::string> registry_location(const std::string& url, const std::string& what);

// What an image archive holds, after check_image_archive.
struct ArchiveContents {
  std::string manifest_digest;  // index.json's one manifest
  std::string ref_name;         // its org.opencontainers.image.ref.name
  std::string os;               // from the image's config
  std::string architecture;
  std::uint64_t blobs = 0;      // blob files, all checked
};

// Opens the OCI archive `archive` (the tar program, into `scratch`, which is emptied before and
// removed after) and checks it: members only oci-layout, index.json and blobs/sha256/<hex> (regular
// files), every blob's sha256 its name, index.json one manifest (of `expect_digest` when given), the
// manifest's config and layers present with their descriptors' sizes, no blob the manifest does not
// name. Problems are listed, each naming `what` (the image) and the blob digest; a tar that cannot
// be read is one problem.
Result<ArchiveContents> check_image_archive(const std::filesystem::path& archive, const std::string& what,
                                            const std::string& expect_digest, const std::filesystem::path& scratch,
                                            std::vector<Error>& problems);

// Where fetch_images keeps its records (and its scratch directory) under the staging directory.
inline constexpr const char* k_image_state_dir = ".images-state";

// Copies every image of `row` into `staging`/images (skopeo copy docker://SOURCE oci-archive:FILE:REF,
// only `arch` of linux), from a mirror first and upstream unless options.upstream is false, checking
// each archive (check_image_archive, its digest skopeo's --digestfile) before it takes its name; an
// archive a former run left that still checks is kept (resume: each copied image's record is kept in
// `staging`/k_image_state_dir, which the caller removes once the bundle is complete). Progress: a line per image (redrawn
// in place on a terminal). An error names the image, every source tried, skopeo's reason and a fix.
Result<std::vector<BomImage>> fetch_images(const compat::Row& row, const std::string& arch, const ImageOptions& options,
                                           const std::filesystem::path& staging, Terminal progress = Terminal::detect);

// A registry of the site that the cluster pulls from (push_images).
struct SiteRegistry {
  std::string url;      // https://host[:port][/prefix] or host[:port][/prefix] (registry_location)
  std::string ca_file;  // PEM CA its certificate chains to (empty: the system's CAs)
  // A file of two lines, "username: NAME" and "password: SECRET" ('#' comments and blank lines
  // allowed; keep it 0600). Empty: the environment's MLPLAT_SITE_REGISTRY_USERNAME and
  // MLPLAT_SITE_REGISTRY_PASSWORD, or anonymous when neither is set. mlplat writes skopeo's auth file
  // from it (0600 in a 0700 temporary directory, removed after); the password is never on a command line.
  std::string credentials_file;
};

// The HTTP Authorization value the site registry's credentials make ("Basic <base64 of user:password>",
// what containerd's hosts.toml header sends), registered with the log's redaction; empty when the
// registry is anonymous. Errors as push_images' for an unreadable or malformed credentials file.
Result<std::string> site_authorization(const SiteRegistry& site);

// One image of push_images.
struct PushedImage {
  std::string ref;          // the row's reference
  std::string destination;  // host[:port][/prefix]/path:tag at the site registry
  std::string digest;       // what the site registry serves, equal to the bill of materials' digest
  bool skipped = false;     // the registry had it at that digest already
};

// Copies the image archives of a bundle directory (those whose ref is in `only`; all when empty) to
// the site registry: skopeo copy --preserve-digests oci-archive:FILE:REF docker://SITE/PATH:TAG, where
// PATH is the reference's repository path without its registry (registry.k8s.io/kube-apiserver:v1.36.4
// -> SITE/kube-apiserver:v1.36.4, docker.io/library/mysql:8.4 -> SITE/library/mysql:8.4). Each
// archive's sha256 is checked against the bill of materials first; an image the registry already
// serves at the bill of materials' digest is skipped; after a copy, skopeo inspect --raw must show
// that digest. Errors name the image and the registry with skopeo's reason ("unauthorized: ..." for
// wrong credentials) and a fix; a bundle without images is a usage error.
Result<std::vector<PushedImage>> push_images(const Bom& bom, const std::filesystem::path& bundle_dir, const SiteRegistry& site,
                                             const std::set<std::string>& only = {}, Terminal progress = Terminal::detect);

} // namespace mlplat::bundle
