// Container images in bundles: copied by skopeo (argv, util/process) into OCI archives, checked blob by
// blob with the tar program and sha256, and pushed to a site registry with their digests preserved.
#include "bundle/bundle.hpp"
#include "util/image_ref.hpp"

#include "util/fs.hpp"
#include "util/log.hpp"
#include "util/process.hpp"
#include "util/sha256.hpp"
#include "util/text.hpp"

#include <fmt/core.h>
#include <nlohmann/json.hpp>
#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <cstdlib>
#include <map>
#include <set>
#include <unistd.h>

namespace mlplat::bundle {

namespace sfs = std::filesystem;
using namespace std::chrono_literals;

namespace {

constexpr const char* k_ref_annotation = "org.opencontainers.image.ref.name";
constexpr std::uint64_t k_max_json = 4u << 20;  // index.json, a manifest, a config

bool is_hex64(std::string_view s)
{
  return s.size() == 64 && s.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

bool is_digest(std::string_view s)
{
  return s.size() == 71 && s.substr(0, 7) == "sha256:" && is_hex64(s.substr(7));
}

bool contains(std::string_view haystack, std::string_view needle)
{
  return haystack.find(needle) != std::string_view::npos;
}

std::string lower(std::string s)
{
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string human_bytes(double bytes)
{
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) {
    bytes /= 1024;
    ++u;
  }
  return u == 0 ? fmt::format("{:.0f} {}", bytes, units[u]) : fmt::format("{:.1f} {}", bytes, units[u]);
}

std::string base64(const std::string& data)
{
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), reinterpret_cast<const unsigned char*>(data.data()),
                                static_cast<int>(data.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

// A private temporary directory (0700, mkdtemp) removed with everything in it at scope end: skopeo's
// cert dir (ca.crt) and auth file live here.
class TempDir {
public:
  static Result<TempDir> make(const std::string& what)
  {
    std::string tmpl = (sfs::temp_directory_path() / ("mlplat-" + what + "-XXXXXX")).string();
    if (::mkdtemp(tmpl.data()) == nullptr) {
      return fail(ErrorCode::io, fmt::format("cannot create a temporary directory {}: {}", tmpl, std::strerror(errno)));
    }
    return TempDir(tmpl);
  }
  TempDir(TempDir&& o) noexcept : m_path(std::move(o.m_path)) { o.m_path.clear(); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  TempDir& operator=(TempDir&&) = delete;
  ~TempDir()
  {
    if (!m_path.empty()) {
      std::error_code ec;
      sfs::remove_all(m_path, ec);
    }
  }
  const sfs::path& path() const { return m_path; }

private:
  explicit TempDir(sfs::path p) : m_path(std::move(p)) {}
  sfs::path m_path;
};

// The state of each image on a terminal, one line redrawn in place; nothing elsewhere, where the
// caller logs one line per finished image.
class ImageProgress {
public:
  ImageProgress(size_t total, Terminal terminal)
    : m_total(total), m_terminal(terminal == Terminal::yes || (terminal == Terminal::detect && ::isatty(STDERR_FILENO) == 1))
  {
  }
  ~ImageProgress() { clear(); }
  ImageProgress(const ImageProgress&) = delete;
  ImageProgress& operator=(const ImageProgress&) = delete;

  void state(size_t index, const std::string& ref, const std::string& what)
  {
    if (!m_terminal) {
      return;
    }
    std::fprintf(stderr, "\r\033[K  [%zu/%zu] %s  %s", index + 1, m_total, ref.c_str(), what.c_str());
    std::fflush(stderr);
    m_drawn = true;
  }
  void clear()
  {
    if (m_terminal && m_drawn) {
      std::fputs("\r\033[K", stderr);
      std::fflush(stderr);
      m_drawn = false;
    }
  }

private:
  size_t m_total;
  bool m_terminal;
  bool m_drawn = false;
};

// skopeo's reason from its stderr: the msg="..." of its fatal line, else the trimmed text; secrets
// the log knows are redacted, and it is cut at 600 characters.
std::string skopeo_reason(const ProcessResult& r)
{
  std::string text(text::trim(r.err.empty() ? r.out : r.err));
  if (const auto at = text.rfind("msg=\""); at != std::string::npos) {
    std::string msg;
    for (size_t i = at + 5; i < text.size(); ++i) {
      if (text[i] == '\\' && i + 1 < text.size()) {
        msg += text[++i];
      } else if (text[i] == '"') {
        break;
      } else {
        msg += text[i];
      }
    }
    text = msg;
  }
  text = log::redact(text);
  if (text.size() > 600) {
    text = text.substr(0, 600) + "...";
  }
  if (text.empty()) {
    text = r.signal != 0 ? fmt::format("killed by signal {}", r.signal) : fmt::format("exit {}", r.exit_code);
  }
  return text;
}

bool is_auth_problem(const std::string& reason)
{
  const std::string l = lower(reason);
  return contains(l, "unauthorized") || contains(l, "authentication required") || contains(l, "denied") || contains(l, "401");
}

bool is_connect_problem(const std::string& reason)
{
  const std::string l = lower(reason);
  return contains(l, "connection refused") || contains(l, "no such host") || contains(l, "i/o timeout") || contains(l, "network is unreachable") ||
         contains(l, "dial tcp") || contains(l, "tls handshake timeout");
}

bool is_tls_problem(const std::string& reason)
{
  const std::string l = lower(reason);
  return contains(l, "x509") || contains(l, "certificate");
}

bool is_not_found(const std::string& reason)
{
  const std::string l = lower(reason);
  return contains(l, "manifest unknown") || contains(l, "name unknown") || contains(l, "not found");
}

// Runs skopeo with `args`; an io error when it cannot start says how to install it.
Result<ProcessResult> skopeo(std::vector<std::string> args, std::chrono::milliseconds deadline)
{
  args.insert(args.begin(), "skopeo");
  auto r = run_process(args, deadline);
  if (!r && r.error().code == ErrorCode::io) {
    return fail(ErrorCode::io, fmt::format("cannot run skopeo: {}", r.error().message),
                "install skopeo (Debian: apt-get install skopeo); the bundle's images are copied with it");
  }
  return r;
}

// A CA file for skopeo: copied as ca.crt into a directory of `dir` (skopeo's --*-cert-dir reads *.crt).
Result<std::string> cert_dir(const TempDir& dir, const std::string& ca_file, const std::string& what)
{
  if (ca_file.empty()) {
    return std::string();
  }
  TRY_ASSIGN(const std::string pem, fs::read_file(ca_file));
  if (!contains(pem, "-----BEGIN CERTIFICATE-----")) {
    return fail(ErrorCode::usage, fmt::format("{} {}: not a PEM certificate", what, ca_file), "give the CA certificate (PEM) the registry's certificate chains to");
  }
  const sfs::path d = dir.path() / "certs";
  std::error_code ec;
  sfs::create_directories(d, ec);
  TRY(fs::write_file_atomic(d / "ca.crt", pem, 0644));
  return d.string();
}

// One image's archive record between runs (create resumes from it).
struct Record {
  std::string digest;
  std::string source_digest;
  std::string fetched_from;
  std::string sha256;
  std::uint64_t size = 0;
};

std::optional<Record> read_record(const sfs::path& file, const std::string& ref)
{
  auto text = fs::read_file(file);
  if (!text) {
    return std::nullopt;
  }
  try {
    const auto j = nlohmann::json::parse(*text);
    if (j.at("ref").get<std::string>() != ref) {
      return std::nullopt;
    }
    return Record{j.at("digest"), j.at("sourceDigest"), j.at("fetchedFrom"), j.at("sha256"), j.at("size")};
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

// The reference as a source at `location` (a mirror or the upstream registry): pinned to `digest`
// when given, so what is copied is what was resolved.
std::string source_ref(const std::string& location, const ImageName& n, const std::string& digest = {})
{
  if (!digest.empty()) {
    return location + "/" + n.path + "@" + digest;
  }
  return location + "/" + n.path + (n.tag.empty() ? "@" + n.digest : ":" + n.tag);
}

// The fix for a failed copy from `source` (registry `registry`), by skopeo's reason.
std::string copy_fix(const std::string& reason, const std::string& registry, const std::string& source, bool mirror, const std::string& ref)
{
  if (is_auth_problem(reason)) {
    return fmt::format("give credentials for {}: --registry-auth FILE or MLPLAT_REGISTRY_AUTH=FILE, a containers-auth.json "
                       "(skopeo login --authfile FILE {} writes one)",
                       source.substr(0, source.find('/')), source.substr(0, source.find('/')));
  }
  if (is_tls_problem(reason)) {
    return mirror ? "give the CA of the mirror's certificate with --image-mirror-ca FILE (PEM)"
                  : "check this machine's CA certificates (Debian: ca-certificates) or use a mirror (--image-mirror)";
  }
  if (is_connect_problem(reason)) {
    return fmt::format("check that {} is reachable from this machine{}", source.substr(0, source.find('/')),
                       mirror ? " (the --image-mirror URL)" : ", or give a mirror with --image-mirror " + registry + "=https://HOST[:PORT]");
  }
  if (is_not_found(reason)) {
    return mirror ? fmt::format("copy the image to the mirror first (skopeo copy docker://{} docker://{}), or check the row's images", ref, source)
                  : "check the row's images (mlplat matrix --row ID): the reference does not exist upstream";
  }
  return fmt::format("check {} and run bundle create again (it resumes)", source);
}

Error copy_error(const std::string& ref, const std::string& source, const std::string& reason, std::string fix)
{
  Error e;
  e.code = is_connect_problem(reason) ? ErrorCode::connect_failed : ErrorCode::failed;
  e.message = fmt::format("{}: copying from {} failed: {}", ref, source, reason);
  e.fix = std::move(fix);
  e.retryable = is_connect_problem(reason) ? Retryable::yes : Retryable::no;
  return e;
}

// The members of an OCI archive, from `tar -tf` and `tar -tvf`: names without a leading "./" and a
// trailing '/', each with its type ('-' file, 'd' directory, anything else refused).
struct Member {
  std::string name;
  char type = '?';
};

Result<std::vector<Member>> list_members(const sfs::path& archive, std::string& why)
{
  TRY_ASSIGN(const ProcessResult names, run_process({"tar", "-tf", archive.string()}, 10min));
  TRY_ASSIGN(const ProcessResult long_list, run_process({"tar", "-tvf", archive.string()}, 10min));
  std::vector<Member> out;
  if (!names.ok() || !long_list.ok()) {
    why = std::string(text::trim(names.err + long_list.err));
    return out;
  }
  auto a = text::split(names.out, '\n');
  auto b = text::split(long_list.out, '\n');
  while (!a.empty() && a.back().empty()) {
    a.pop_back();
  }
  while (!b.empty() && b.back().empty()) {
    b.pop_back();
  }
  if (a.size() != b.size()) {
    why = "tar lists its members inconsistently";
    return out;
  }
  for (size_t i = 0; i < a.size(); ++i) {
    std::string n = a[i];
    if (n.rfind("./", 0) == 0) {
      n = n.substr(2);
    }
    while (!n.empty() && n.back() == '/') {
      n.pop_back();
    }
    out.push_back({n, b[i].empty() ? '?' : b[i][0]});
  }
  return out;
}

Result<nlohmann::json> read_json(const sfs::path& file, const std::string& what, std::vector<Error>& problems, const std::string& name)
{
  std::error_code ec;
  const auto size = sfs::file_size(file, ec);
  if (ec || size > k_max_json) {
    problems.push_back(Error{ErrorCode::failed, fmt::format("{}: {} is {}", what, name, ec ? "missing" : "larger than 4 MiB"), {}, {}, {}, Retryable::no, {}});
    return nlohmann::json();
  }
  TRY_ASSIGN(const std::string text, fs::read_file(file));
  try {
    return nlohmann::json::parse(text);
  } catch (const std::exception& e) {
    problems.push_back(Error{ErrorCode::failed, fmt::format("{}: {} is not JSON: {}", what, name, e.what()), {}, {}, {}, Retryable::no, {}});
    return nlohmann::json();
  }
}

} // namespace

ImageName split_image(const std::string& ref)
{
  ImageName n;
  const auto parsed = parse_image(ref);
  if (!parsed) {
    n.path = ref;
    return n;
  }
  n.registry = parsed->registry;
  n.path = parsed->path;
  if (parsed->suffix.rfind('@', 0) == 0) {
    n.digest = parsed->suffix.substr(1);
  } else if (parsed->tag_written) {
    n.tag = parsed->suffix.substr(1);
  }
  return n;
}

Result<std::string> image_file(const std::string& ref)
{
  std::string name = ref;
  std::replace_if(name.begin(), name.end(), [](char c) { return c == '/' || c == ':' || c == '@'; }, '_');
  name += ".tar";
  if (!is_layout_name(name)) {
    return fail(ErrorCode::config_invalid, fmt::format("image '{}': its archive name '{}' is not [A-Za-z0-9._+-]+", ref, name),
                "write the image as registry/path:tag in the matrix row");
  }
  return "images/" + name;
}

Result<std::string> registry_location(const std::string& url, const std::string& what)
{
  std::string s(text::trim(url));
  const auto scheme = s.find("://");
  if (scheme != std::string::npos) {
    const std::string sch = lower(s.substr(0, scheme));
    if (sch != "https" && sch != "docker") {
      return fail(ErrorCode::usage, fmt::format("{} '{}': only https:// registries are supported", what, url),
                  "serve the registry over TLS and give its CA (for a mirror --image-mirror-ca FILE)");
    }
    s = s.substr(scheme + 3);
  }
  while (!s.empty() && s.back() == '/') {
    s.pop_back();
  }
  const bool chars_ok = !s.empty() && s.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-_:/") == std::string::npos;
  const std::string host = s.substr(0, s.find('/'));
  if (!chars_ok || host.empty() || host.front() == '.' || host.front() == '-' || contains(s, "//") || contains(s, "..")) {
    return fail(ErrorCode::usage, fmt::format("{} '{}' is not https://HOST[:PORT][/PATH]", what, url),
                "give the registry as https://HOST[:PORT] (a path prefix is kept); credentials go in a file, never in the URL");
  }
  return s;
}

Result<ArchiveContents> check_image_archive(const sfs::path& archive, const std::string& what, const std::string& expect_digest,
                                            const sfs::path& scratch, std::vector<Error>& problems)
{
  const auto problem = [&](std::string message) {
    problems.push_back(Error{ErrorCode::failed, std::move(message), {}, {}, {}, Retryable::no, {}});
  };
  ArchiveContents out;
  std::string why;
  TRY_ASSIGN(const std::vector<Member> members, list_members(archive, why));
  if (!why.empty()) {
    problem(fmt::format("{}: {} is not a readable tar archive: {}", what, archive.filename().string(), why));
    return out;
  }
  // Only the OCI layout's own names, as files and directories: nothing that extracts elsewhere.
  std::set<std::string> blobs;
  std::set<std::string> seen;
  for (const auto& m : members) {
    const bool dir_name = m.name.empty() || m.name == "." || m.name == "blobs" || m.name == "blobs/sha256";
    const bool blob = m.name.rfind("blobs/sha256/", 0) == 0 && is_hex64(m.name.substr(13));
    const bool file_name = m.name == "oci-layout" || m.name == "index.json" || blob;
    if (!(dir_name && m.type == 'd') && !(file_name && m.type == '-')) {
      problem(fmt::format("{}: {} has a member '{}' (type '{}') that is not of an OCI layout (oci-layout, index.json, blobs/sha256/<digest>)",
                          what, archive.filename().string(), m.name, m.type));
      continue;
    }
    if (file_name && !seen.insert(m.name).second) {
      problem(fmt::format("{}: {} holds '{}' twice", what, archive.filename().string(), m.name));
    }
    if (blob) {
      blobs.insert(m.name.substr(13));
    }
  }
  if (!problems.empty()) {
    return out;
  }
  std::error_code ec;
  sfs::remove_all(scratch, ec);
  sfs::create_directories(scratch, ec);
  sfs::permissions(scratch, sfs::perms::owner_all, ec);
  struct Cleanup {
    sfs::path p;
    ~Cleanup()
    {
      std::error_code e;
      sfs::remove_all(p, e);
    }
  } cleanup{scratch};
  TRY_ASSIGN(const ProcessResult x, run_process({"tar", "-xf", archive.string(), "-C", scratch.string(), "--no-same-owner", "--no-same-permissions"}, 30min));
  if (!x.ok()) {
    problem(fmt::format("{}: cannot extract {}: {}", what, archive.filename().string(), text::trim(x.err)));
    return out;
  }
  // Every blob's sha256 is its name.
  std::map<std::string, std::uint64_t> sizes;
  for (const auto& hex : blobs) {
    const sfs::path file = scratch / "blobs" / "sha256" / hex;
    TRY_ASSIGN(const std::string sha, sha256_file_hex(file));
    sizes[hex] = sfs::file_size(file, ec);
    ++out.blobs;
    if (sha != hex) {
      problem(fmt::format("{}: blob sha256:{} in {} has sha256 {}: it was changed or damaged", what, hex, archive.filename().string(), sha));
    }
  }
  TRY_ASSIGN(const nlohmann::json layout, read_json(scratch / "oci-layout", what, problems, "oci-layout"));
  if (!layout.is_object() || !layout.contains("imageLayoutVersion")) {
    problem(fmt::format("{}: {} has no oci-layout with an imageLayoutVersion", what, archive.filename().string()));
  }
  TRY_ASSIGN(const nlohmann::json index, read_json(scratch / "index.json", what, problems, "index.json"));
  if (!index.is_object() || !index.contains("manifests") || !index["manifests"].is_array() || index["manifests"].size() != 1) {
    problem(fmt::format("{}: index.json of {} does not name exactly one manifest", what, archive.filename().string()));
    return out;
  }
  const auto& entry = index["manifests"][0];
  // A descriptor: its digest well-formed, its blob present, its size the blob's.
  std::set<std::string> referenced;
  const auto descriptor = [&](const nlohmann::json& d, const std::string& role) -> std::string {
    if (!d.is_object() || !d.contains("digest") || !d["digest"].is_string() || !d.contains("size") || !d["size"].is_number_unsigned()) {
      problem(fmt::format("{}: the {} descriptor has no digest and size", what, role));
      return {};
    }
    const std::string digest = d["digest"];
    if (!is_digest(digest)) {
      problem(fmt::format("{}: the {} descriptor's digest '{}' is not sha256:<64 hex digits>", what, role, digest));
      return {};
    }
    const std::string hex = digest.substr(7);
    referenced.insert(hex);
    const auto it = sizes.find(hex);
    if (it == sizes.end()) {
      problem(fmt::format("{}: blob {} ({}) is missing from {}", what, digest, role, archive.filename().string()));
      return {};
    }
    if (it->second != d["size"].get<std::uint64_t>()) {
      problem(fmt::format("{}: blob {} ({}) has {} bytes, its descriptor says {}", what, digest, role, it->second, d["size"].get<std::uint64_t>()));
    }
    return hex;
  };
  const std::string manifest_hex = descriptor(entry, "manifest");
  if (manifest_hex.empty()) {
    return out;
  }
  out.manifest_digest = "sha256:" + manifest_hex;
  if (entry.contains("annotations") && entry["annotations"].is_object() && entry["annotations"].contains(k_ref_annotation) &&
      entry["annotations"][k_ref_annotation].is_string()) {
    out.ref_name = entry["annotations"][k_ref_annotation];
  }
  if (!expect_digest.empty() && out.manifest_digest != expect_digest) {
    problem(fmt::format("{}: index.json names manifest {}, expected {}", what, out.manifest_digest, expect_digest));
  }
  TRY_ASSIGN(const nlohmann::json manifest, read_json(scratch / "blobs" / "sha256" / manifest_hex, what, problems, "the manifest"));
  if (!manifest.is_object() || !manifest.contains("config") || !manifest.contains("layers") || !manifest["layers"].is_array()) {
    problem(fmt::format("{}: manifest {} is not an image manifest with a config and layers (a list is not carried: one platform only)", what,
                        out.manifest_digest));
    return out;
  }
  const std::string config_hex = descriptor(manifest["config"], "config");
  size_t i = 0;
  for (const auto& layer : manifest["layers"]) {
    descriptor(layer, fmt::format("layer {}", i++));
  }
  for (const auto& hex : blobs) {
    if (referenced.count(hex) == 0) {
      problem(fmt::format("{}: blob sha256:{} in {} is not named by its manifest", what, hex, archive.filename().string()));
    }
  }
  if (!config_hex.empty()) {
    TRY_ASSIGN(const nlohmann::json config, read_json(scratch / "blobs" / "sha256" / config_hex, what, problems, "the config"));
    if (config.is_object()) {
      out.os = config.value("os", "");
      out.architecture = config.value("architecture", "");
    }
  }
  return out;
}

Result<std::vector<BomImage>> fetch_images(const compat::Row& row, const std::string& arch, const ImageOptions& options, const sfs::path& staging,
                                           Terminal progress)
{
  std::vector<BomImage> out;
  if (row.images.empty()) {
    return out;
  }
  if (contains(staging.string(), ":")) {
    return fail(ErrorCode::usage, fmt::format("{}: with --images the output's path must not contain ':' (skopeo's oci-archive:PATH:REF)", staging.string()),
                "give --output a path without ':'");
  }
  if (!options.auth_file.empty() && !sfs::is_regular_file(options.auth_file)) {
    return fail(ErrorCode::usage, fmt::format("registry credentials {}: no such file", options.auth_file),
                "give a containers-auth.json (skopeo login --authfile FILE REGISTRY writes one) with --registry-auth or MLPLAT_REGISTRY_AUTH");
  }
  // Where each image comes from, decided (and refused) before any copy.
  struct Plan {
    BomImage image;
    ImageName name;
    std::vector<std::pair<std::string, bool>> sources;  // location, is a mirror
  };
  std::vector<Plan> plans;
  std::set<std::string> files;
  std::map<std::string, std::vector<std::string>> unmirrored;
  for (const auto& ref : row.images) {
    Plan p;
    p.image.ref = ref;
    p.name = split_image(ref);
    TRY_ASSIGN(p.image.file, image_file(ref));
    if (!files.insert(p.image.file).second) {
      return fail(ErrorCode::config_invalid, fmt::format("row {}: two images share the archive name {} ({})", row.id, p.image.file, ref),
                  "list each image once in the matrix row");
    }
    if (const auto it = options.mirrors.find(p.name.registry); it != options.mirrors.end()) {
      p.sources.emplace_back(it->second, true);
    }
    if (options.upstream) {
      p.sources.emplace_back(p.name.registry, false);
    }
    if (p.sources.empty()) {
      unmirrored[p.name.registry].push_back(ref);
    }
    plans.push_back(std::move(p));
  }
  if (!unmirrored.empty()) {
    std::vector<std::string> parts;
    std::vector<std::string> flags;
    for (const auto& [registry, refs] : unmirrored) {
      parts.push_back(fmt::format("{} ({})", registry, text::join(refs, ", ")));
      flags.push_back(fmt::format("--image-mirror {}=https://HOST[:PORT]", registry));
    }
    return fail(ErrorCode::usage, fmt::format("--no-upstream-images, and no --image-mirror for {}", text::join(parts, "; ")),
                fmt::format("give a mirror for each: {}; or allow upstream (drop --no-upstream-images)", text::join(flags, " ")));
  }
  TRY_ASSIGN(const ProcessResult version, skopeo({"--version"}, 30s));
  if (!version.ok()) {
    return fail(ErrorCode::failed, fmt::format("skopeo --version failed: {}", skopeo_reason(version)), "install skopeo (Debian: apt-get install skopeo)");
  }
  TRY_ASSIGN(const TempDir tmp, TempDir::make("images"));
  TRY_ASSIGN(const std::string certs, cert_dir(tmp, options.mirror_ca, "--image-mirror-ca"));
  const sfs::path state = staging / k_image_state_dir;
  std::error_code ec;
  sfs::create_directories(staging / "images", ec);
  sfs::create_directories(state, ec);
  if (ec) {
    return fail(ErrorCode::io, fmt::format("cannot create {}: {}", state.string(), ec.message()));
  }
  ImageProgress bar(plans.size(), progress);
  for (size_t i = 0; i < plans.size(); ++i) {
    auto& p = plans[i];
    const std::string& ref = p.image.ref;
    const sfs::path final_file = staging / p.image.file;
    const sfs::path record_file = state / (sfs::path(p.image.file).filename().string() + ".json");
    const sfs::path scratch = state / "scratch";
    const std::string counter = fmt::format("[{}/{}]", i + 1, plans.size());
    // Finished in an earlier run: kept when its archive still checks.
    if (sfs::exists(final_file, ec)) {
      bar.state(i, ref, "checking the earlier run's archive");
      const auto rec = read_record(record_file, ref);
      bool good = false;
      if (rec) {
        TRY_ASSIGN(const std::string sha, sha256_file_hex(final_file));
        std::vector<Error> problems;
        TRY_ASSIGN(const ArchiveContents c, check_image_archive(final_file, ref, rec->digest, scratch, problems));
        good = sha == rec->sha256 && problems.empty() && c.ref_name == ref;
        if (good) {
          p.image.digest = rec->digest;
          p.image.source_digest = rec->source_digest;
          p.image.fetched_from = rec->fetched_from;
          p.image.sha256 = sha;
          p.image.size = sfs::file_size(final_file, ec);
        }
      }
      if (good) {
        bar.clear();
        log::info("{} {}: already in the bundle (earlier run), {} {}, archive checked", counter, ref, p.image.digest.substr(0, 19),
                  human_bytes(double(p.image.size)));
        out.push_back(p.image);
        continue;
      }
      sfs::remove(final_file, ec);
      sfs::remove(record_file, ec);
    }
    std::vector<Error> attempts;
    bool copied = false;
    for (const auto& [location, mirror] : p.sources) {
      const std::string source = source_ref(location, p.name);
      std::vector<std::string> auth;
      if (!options.auth_file.empty()) {
        auth = {"--authfile", options.auth_file};
      }
      std::vector<std::string> cert;
      if (mirror && !certs.empty()) {
        cert = {"--cert-dir", certs};
      }
      // The digest the source resolves the reference to; the copy is pinned to it.
      bar.state(i, ref, "resolving at " + location);
      std::vector<std::string> inspect{"inspect", "--raw", "--retry-times", "3"};
      inspect.insert(inspect.end(), auth.begin(), auth.end());
      inspect.insert(inspect.end(), cert.begin(), cert.end());
      inspect.push_back("docker://" + source);
      TRY_ASSIGN(const ProcessResult raw, skopeo(inspect, 2min));
      if (!raw.ok()) {
        const std::string reason = skopeo_reason(raw);
        attempts.push_back(copy_error(ref, source, reason, copy_fix(reason, p.name.registry, source, mirror, ref)));
        continue;
      }
      const std::string source_digest = "sha256:" + sha256_hex(raw.out);
      if (!p.name.digest.empty() && p.name.tag.empty() && source_digest != p.name.digest) {
        attempts.push_back(copy_error(ref, source, fmt::format("it serves {}, the reference pins {}", source_digest, p.name.digest),
                                      "the mirror holds another image under this digest: do not use it"));
        continue;
      }
      bar.state(i, ref, "copying from " + location);
      const sfs::path part = final_file.string() + ".part";
      const sfs::path digest_file = state / (sfs::path(p.image.file).filename().string() + ".digest");
      sfs::remove(part, ec);
      sfs::remove(digest_file, ec);
      std::vector<std::string> copy{"--override-os", "linux", "--override-arch", arch, "copy", "--quiet", "--retry-times", "3", "--digestfile",
                                    digest_file.string()};
      if (!certs.empty() && mirror) {
        copy.insert(copy.end(), {"--src-cert-dir", certs});
      }
      if (!options.auth_file.empty()) {
        copy.insert(copy.end(), {"--src-authfile", options.auth_file});
      }
      copy.push_back("docker://" + source_ref(location, p.name, source_digest));
      copy.push_back("oci-archive:" + part.string() + ":" + ref);
      TRY_ASSIGN(const ProcessResult copied_r, skopeo(copy, options.deadline));
      if (!copied_r.ok()) {
        const std::string reason = skopeo_reason(copied_r);
        attempts.push_back(copy_error(ref, source, reason, copy_fix(reason, p.name.registry, source, mirror, ref)));
        sfs::remove(part, ec);
        continue;
      }
      bar.state(i, ref, "checking the archive");
      const auto written = fs::read_file(digest_file);
      const std::string digest = written ? std::string(text::trim(*written)) : std::string();
      std::vector<Error> problems;
      if (!is_digest(digest)) {
        problems.push_back(Error{ErrorCode::failed, fmt::format("skopeo wrote no digest to {}", digest_file.string()), {}, {}, {}, Retryable::no, {}});
      }
      TRY_ASSIGN(const ArchiveContents c, check_image_archive(part, ref, digest, scratch, problems));
      if (problems.empty() && c.ref_name != ref) {
        problems.push_back(Error{ErrorCode::failed, fmt::format("the archive names '{}', not '{}'", c.ref_name, ref), {}, {}, {}, Retryable::no, {}});
      }
      if (problems.empty() && (c.os != "linux" || c.architecture != arch)) {
        problems.push_back(Error{ErrorCode::failed, fmt::format("the image is for {}/{}, the row needs linux/{}", c.os, c.architecture, arch),
                                 {}, {}, {}, Retryable::no, {}});
      }
      if (!problems.empty()) {
        Error e{ErrorCode::failed, fmt::format("{}: the archive copied from {} does not check", ref, source),
                "the source serves a damaged or unexpected image: check it, or use another mirror", {}, {}, Retryable::no, std::move(problems)};
        attempts.push_back(std::move(e));
        sfs::remove(part, ec);
        continue;
      }
      sfs::rename(part, final_file, ec);
      if (ec) {
        return fail(ErrorCode::io, fmt::format("cannot rename {} to {}: {}", part.string(), final_file.string(), ec.message()));
      }
      TRY_ASSIGN(p.image.sha256, sha256_file_hex(final_file));
      p.image.size = sfs::file_size(final_file, ec);
      p.image.digest = digest;
      p.image.source_digest = source_digest;
      p.image.fetched_from = location;
      const nlohmann::json rec{{"ref", ref},
                               {"digest", digest},
                               {"sourceDigest", source_digest},
                               {"fetchedFrom", location},
                               {"sha256", p.image.sha256},
                               {"size", p.image.size}};
      TRY(fs::write_file_atomic(record_file, rec.dump() + "\n", 0644));
      bar.clear();
      if (!attempts.empty()) {
        log::warn("{}: {} failed ({}); copied from {} instead", ref, attempts.front().message, attempts.size(), location);
      }
      log::info("{} {}: {} from {}, {} ({}{})", counter, ref, human_bytes(double(p.image.size)), location, digest.substr(0, 19),
                c.blobs == 1 ? "1 blob" : fmt::format("{} blobs", c.blobs), source_digest != digest ? fmt::format(", source {}", source_digest.substr(0, 19)) : "");
      copied = true;
      break;
    }
    if (!copied) {
      bar.clear();
      if (attempts.size() == 1) {
        return tl::unexpected(std::move(attempts.front()));
      }
      std::vector<std::string> tried;
      for (const auto& [location, mirror] : p.sources) {
        tried.push_back(source_ref(location, p.name));
      }
      Error e;
      e.code = ErrorCode::failed;
      e.message = fmt::format("{}: not copied into the bundle; tried {}", ref, text::join(tried, ", "));
      e.fix = attempts.back().fix;
      e.children = std::move(attempts);
      return tl::unexpected(std::move(e));
    }
    out.push_back(p.image);
  }
  return out;
}

namespace {

struct Credentials {
  std::string username;
  std::string password;
};

// The site registry's credentials: its file ("username: NAME", "password: SECRET"), else the
// environment, else none (anonymous).
Result<std::optional<Credentials>> read_credentials(const std::string& file)
{
  Credentials c;
  if (file.empty()) {
    const char* user = std::getenv("MLPLAT_SITE_REGISTRY_USERNAME");
    const char* pass = std::getenv("MLPLAT_SITE_REGISTRY_PASSWORD");
    if (user == nullptr && pass == nullptr) {
      return std::optional<Credentials>();
    }
    if (user == nullptr || pass == nullptr || *user == '\0') {
      return fail(ErrorCode::usage, "MLPLAT_SITE_REGISTRY_USERNAME and MLPLAT_SITE_REGISTRY_PASSWORD go together",
                  "set both, or give a credentials file");
    }
    c.username = user;
    c.password = pass;
  } else {
    std::error_code ec;
    const auto perms = sfs::status(file, ec).permissions();
    if (ec) {
      return fail(ErrorCode::usage, fmt::format("site registry credentials {}: {}", file, ec.message()), "give the credentials file's path");
    }
    if ((perms & (sfs::perms::group_all | sfs::perms::others_all)) != sfs::perms::none) {
      log::warn("site registry credentials {} can be read by others than its owner: chmod 0600 {}", file, file);
    }
    TRY_ASSIGN(const std::string text, fs::read_file(file));
    int line_no = 0;
    for (const auto& line : text::split(text, '\n')) {
      ++line_no;
      const auto l = text::trim(line);
      if (l.empty() || l.front() == '#') {
        continue;
      }
      const auto colon = l.find(':');
      const std::string key = colon == std::string_view::npos ? std::string(l) : std::string(text::trim(l.substr(0, colon)));
      const std::string value = colon == std::string_view::npos ? std::string() : std::string(text::trim(l.substr(colon + 1)));
      if (key == "username") {
        c.username = value;
      } else if (key == "password") {
        c.password = value;
      } else {
        return fail(ErrorCode::usage, fmt::format("{}:{}: '{}' is not 'username: NAME' or 'password: SECRET'", file, line_no, key),
                    "write the credentials file as two lines: username: NAME and password: SECRET");
      }
    }
    if (c.username.empty() || c.password.empty()) {
      return fail(ErrorCode::usage, fmt::format("{}: needs a username and a password line", file),
                  "write the credentials file as two lines: username: NAME and password: SECRET");
    }
  }
  log::add_secret(c.password);
  return std::optional<Credentials>(c);
}

} // namespace

Result<std::string> site_authorization(const SiteRegistry& site)
{
  TRY_ASSIGN(const auto credentials, read_credentials(site.credentials_file));
  if (!credentials) {
    return std::string();
  }
  const std::string header = "Basic " + base64(credentials->username + ":" + credentials->password);
  log::add_secret(header.substr(6));
  return header;
}

Result<std::vector<PushedImage>> push_images(const Bom& bom, const sfs::path& bundle_dir, const SiteRegistry& site, const std::set<std::string>& only,
                                             Terminal progress)
{
  TRY_ASSIGN(const std::string location, registry_location(site.url, "site registry"));
  const std::string host = location.substr(0, location.find('/'));
  std::vector<const BomImage*> selected;
  std::set<std::string> unknown = only;
  for (const auto& img : bom.images) {
    if (!only.empty() && only.count(img.ref) == 0) {
      continue;
    }
    unknown.erase(img.ref);
    if (!img.carried()) {
      return fail(ErrorCode::usage, fmt::format("the bundle of row {} does not carry the image {}", bom.row, img.ref),
                  "create the bundle with mlplat bundle create --images");
    }
    selected.push_back(&img);
  }
  if (!unknown.empty()) {
    return fail(ErrorCode::usage, fmt::format("the bundle of row {} has no image {}", bom.row, text::join({unknown.begin(), unknown.end()}, ", ")),
                "name images of the bundle (mlplat bundle list)");
  }
  if (contains(bundle_dir.string(), ":")) {
    return fail(ErrorCode::usage, fmt::format("{}: the bundle directory's path must not contain ':' (skopeo's oci-archive:PATH:REF)", bundle_dir.string()),
                "move or link the bundle to a path without ':'");
  }
  TRY_ASSIGN(const std::optional<Credentials> creds, read_credentials(site.credentials_file));
  TRY_ASSIGN(const TempDir tmp, TempDir::make("push"));
  TRY_ASSIGN(const std::string certs, cert_dir(tmp, site.ca_file, "site registry CA"));
  std::vector<std::string> dest_opts;
  std::vector<std::string> inspect_opts;
  if (!certs.empty()) {
    dest_opts.insert(dest_opts.end(), {"--dest-cert-dir", certs});
    inspect_opts.insert(inspect_opts.end(), {"--cert-dir", certs});
  }
  if (creds) {
    const nlohmann::json auth{{"auths", {{host, {{"auth", base64(creds->username + ":" + creds->password)}}}}}};
    const sfs::path auth_file = tmp.path() / "auth.json";
    TRY(fs::write_file_atomic(auth_file, auth.dump(), 0600));
    dest_opts.insert(dest_opts.end(), {"--dest-authfile", auth_file.string()});
    inspect_opts.insert(inspect_opts.end(), {"--authfile", auth_file.string()});
  } else {
    inspect_opts.push_back("--no-creds");
  }
  const std::string auth_fix = fmt::format("check the credentials for {} (SiteRegistry credentials: 'username:' and 'password:' lines, or "
                                           "MLPLAT_SITE_REGISTRY_USERNAME and MLPLAT_SITE_REGISTRY_PASSWORD) and that the user may push",
                                           host);
  const auto failure = [&](const std::string& ref, const std::string& doing, const std::string& reason) {
    Error e;
    e.code = is_connect_problem(reason) ? ErrorCode::connect_failed : ErrorCode::failed;
    e.message = fmt::format("{}: {} at the site registry {} failed: {}", ref, doing, location, reason);
    e.fix = is_auth_problem(reason)  ? auth_fix
            : is_tls_problem(reason) ? "give the CA the site registry's certificate chains to (SiteRegistry ca_file)"
            : is_connect_problem(reason) ? fmt::format("check that {} is reachable from this machine", host)
                                         : fmt::format("check the site registry {} and try again (pushed images are skipped)", location);
    e.retryable = is_connect_problem(reason) ? Retryable::yes : Retryable::no;
    return e;
  };
  // What the registry serves at `dest`: its digest, or empty when it has no such image.
  const auto served = [&](const std::string& ref, const std::string& dest) -> Result<std::string> {
    std::vector<std::string> args{"inspect", "--raw", "--retry-times", "3"};
    args.insert(args.end(), inspect_opts.begin(), inspect_opts.end());
    args.push_back("docker://" + dest);
    TRY_ASSIGN(const ProcessResult r, skopeo(args, 2min));
    if (r.ok()) {
      return "sha256:" + sha256_hex(r.out);
    }
    const std::string reason = skopeo_reason(r);
    if (is_not_found(reason)) {
      return std::string();
    }
    return tl::unexpected(failure(ref, "reading " + dest, reason));
  };
  ImageProgress bar(selected.size(), progress);
  std::vector<PushedImage> out;
  for (size_t i = 0; i < selected.size(); ++i) {
    const BomImage& img = *selected[i];
    const ImageName n = split_image(img.ref);
    PushedImage pushed;
    pushed.ref = img.ref;
    pushed.destination = location + "/" + n.path + (n.tag.empty() ? "@" + img.digest : ":" + n.tag);
    const sfs::path archive = bundle_dir / img.file;
    bar.state(i, img.ref, "checking the archive");
    TRY_ASSIGN(const std::string sha, sha256_file_hex(archive));
    if (sha != img.sha256) {
      bar.clear();
      return fail(ErrorCode::failed, fmt::format("{}: {} has sha256 {}, the bill of materials says {}", img.ref, img.file, sha, img.sha256),
                  "the bundle changed: verify it (mlplat bundle verify) and do not push it");
    }
    bar.state(i, img.ref, "asking " + location);
    auto before = served(img.ref, pushed.destination);
    if (!before) {
      bar.clear();
      return tl::unexpected(before.error());
    }
    if (*before == img.digest) {
      pushed.digest = *before;
      pushed.skipped = true;
      bar.clear();
      log::info("[{}/{}] {}: {} has it already ({})", i + 1, selected.size(), img.ref, pushed.destination, img.digest.substr(0, 19));
      out.push_back(pushed);
      continue;
    }
    bar.state(i, img.ref, "pushing to " + location);
    std::vector<std::string> copy{"copy", "--quiet", "--retry-times", "3", "--preserve-digests"};
    copy.insert(copy.end(), dest_opts.begin(), dest_opts.end());
    copy.push_back("oci-archive:" + archive.string() + ":" + img.ref);
    copy.push_back("docker://" + pushed.destination);
    TRY_ASSIGN(const ProcessResult r, skopeo(copy, 30min));
    if (!r.ok()) {
      bar.clear();
      return tl::unexpected(failure(img.ref, "pushing " + pushed.destination, skopeo_reason(r)));
    }
    auto after = served(img.ref, pushed.destination);
    if (!after) {
      bar.clear();
      return tl::unexpected(after.error());
    }
    if (*after != img.digest) {
      bar.clear();
      return fail(ErrorCode::failed,
                  fmt::format("{}: the site registry serves {} as {}, the bill of materials says {}", img.ref, pushed.destination,
                              after->empty() ? "nothing" : *after, img.digest),
                  "the registry changed the manifest (it must keep digests): check its configuration");
    }
    pushed.digest = *after;
    bar.clear();
    log::info("[{}/{}] {}: pushed to {} ({}, {})", i + 1, selected.size(), img.ref, pushed.destination, img.digest.substr(0, 19),
              human_bytes(double(img.size)));
    out.push_back(pushed);
  }
  return out;
}

} // namespace mlplat::bundle
