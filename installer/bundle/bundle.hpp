// Offline artifact bundles: every artifact of one matrix row, downloaded and verified, with a bill of
// materials (bundle.json: each file's URL, sha256, how it was verified; the images the row needs;
// the kustomize remote bases it carries) and a SHA256SUMS that `sha256sum -c` reads on any host.
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
#include <filesystem>
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

struct Bom {
  int format = 1;
  std::string row;
  std::string kubernetes;
  std::string created;        // UTC, ISO 8601
  std::string mlplat_version;
  std::string matrix_source;
  std::string matrix_verified;
  std::vector<BomArtifact> artifacts;
  std::vector<std::string> images;
  std::vector<compat::KustomizeSource> kustomize_sources;

  const BomArtifact* find(const std::string& name) const;
};

struct CreateOptions {
  std::string row;                         // empty: the matrix's default row
  std::string output;                      // a directory, or a file ending .tar.gz / .tar.zst
  fetch::Options fetch;
  std::set<std::string> accept_unpinned;   // artifact names (or "all") taken on first download
  std::string sign_key;                    // an SSH private key (no passphrase): bundle.json is signed with it
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

} // namespace mlplat::bundle
