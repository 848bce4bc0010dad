#include "bundle/bundle.hpp"

#include "config/grammar.hpp"
#include "util/fs.hpp"
#include "util/log.hpp"
#include "util/process.hpp"
#include "util/sha256.hpp"
#include "util/text.hpp"

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <algorithm>
#include <ctime>
#include <map>
#include <optional>

namespace mlplat::bundle {

namespace sfs = std::filesystem;
using namespace std::chrono_literals;

bool is_layout_name(std::string_view name)
{
  if (name.empty() || name == "." || name == "..") {
    return false;
  }
  for (const char c : name) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '+' || c == '-';
    if (!ok) {
      return false;
    }
  }
  return true;
}

const BomArtifact* Bom::find(const std::string& name) const
{
  for (const auto& a : artifacts) {
    if (a.name == name) {
      return &a;
    }
  }
  return nullptr;
}

const BomImage* Bom::find_image(const std::string& ref) const
{
  for (const auto& i : images) {
    if (i.ref == ref) {
      return &i;
    }
  }
  return nullptr;
}

namespace {

constexpr const char* k_bom = "bundle.json";
constexpr const char* k_sums = "SHA256SUMS";
constexpr const char* k_sig = "bundle.json.sig";

enum class Kind { dir, tar_gz, tar_zst };

Kind kind_of(const std::string& path)
{
  auto ends = [&](const char* suffix) {
    const std::string s(suffix);
    return path.size() > s.size() && path.compare(path.size() - s.size(), s.size(), s) == 0;
  };
  return ends(".tar.gz") || ends(".tgz") ? Kind::tar_gz : ends(".tar.zst") ? Kind::tar_zst : Kind::dir;
}

std::string now_utc()
{
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

nlohmann::json to_json(const Bom& b)
{
  nlohmann::json artifacts = nlohmann::json::array();
  for (const auto& a : b.artifacts) {
    nlohmann::json j{{"name", a.name},     {"file", a.file}, {"url", a.url}, {"fetchedFrom", a.fetched_from},
                     {"sha256", a.sha256}, {"size", a.size}, {"verification", a.verification}};
    if (!a.checksum_url.empty()) {
      j["checksumUrl"] = a.checksum_url;
    }
    artifacts.push_back(j);
  }
  nlohmann::json images = nlohmann::json::array();
  for (const auto& i : b.images) {
    nlohmann::json j{{"ref", i.ref}};
    if (i.carried()) {
      j.update({{"digest", i.digest}, {"sourceDigest", i.source_digest}, {"file", i.file}, {"sha256", i.sha256}, {"size", i.size},
                {"fetchedFrom", i.fetched_from}});
    }
    images.push_back(j);
  }
  nlohmann::json sources = nlohmann::json::array();
  for (const auto& s : b.kustomize_sources) {
    sources.push_back({{"repo", s.repo}, {"ref", s.ref}, {"artifact", s.artifact}, {"root", s.root}});
  }
  return {{"format", b.format},          {"row", b.row},
          {"kubernetes", b.kubernetes},  {"created", b.created},
          {"mlplatVersion", b.mlplat_version},
          {"matrix", {{"source", b.matrix_source}, {"verified", b.matrix_verified}}},
          {"artifacts", artifacts},      {"images", images},
          {"imagesIncluded", b.images_included},
          {"kustomizeSources", sources}};
}

bool is_hex64(const std::string& s)
{
  return s.size() == 64 && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

// The line of bundle.json on which `key: value` is written (bundle create writes it with dump(2)), or 0.
int line_of(const std::string& text, const std::string& key, const std::string& value)
{
  const std::string needle = nlohmann::json(key).dump() + ": " + nlohmann::json(value).dump();
  const auto at = text.find(needle);
  if (at == std::string::npos) {
    return 0;
  }
  return 1 + static_cast<int>(std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(at), '\n'));
}

// Why `file` is not files/<name>/<file name> of the bundle's layout for artifact `name`; empty when it is.
std::string layout_problem(const std::string& name, const std::string& file)
{
  if (!is_layout_name(name)) {
    return fmt::format("the artifact name '{}' is not [A-Za-z0-9._+-]+", name);
  }
  const auto parts = text::split(file, '/');
  if (parts.size() != 3 || parts[0] != "files") {
    return fmt::format("'{}' is not files/<artifact>/<file name>", file);
  }
  if (parts[1] != name) {
    return fmt::format("'{}' is not under files/{}/, the artifact's own directory", file, name);
  }
  if (!is_layout_name(parts[2])) {
    return fmt::format("the file name '{}' in '{}' is not [A-Za-z0-9._+-]+ (and not . or ..)", parts[2], file);
  }
  return {};
}

bool is_digest(const std::string& s)
{
  return s.size() == 71 && s.compare(0, 7, "sha256:") == 0 && is_hex64(s.substr(7));
}

// Why an image entry is not of the bundle's layout: its reference of the grammar, its archive at
// images/<its layout name>.tar with digests and a sha256, or no archive in a bundle without images.
std::string image_problem(const BomImage& img, bool included)
{
  if (auto ok = config::grammar::image_reference(img.ref); !ok) {
    return ok.error().message;
  }
  if (!img.carried()) {
    return included ? "the bundle carries its images (imagesIncluded), and this one has no archive" : std::string();
  }
  if (!included) {
    return "an archive in a bundle without images (imagesIncluded is false)";
  }
  auto file = image_file(img.ref);
  if (!file || img.file != *file) {
    return fmt::format("file '{}' is not the image's archive '{}'", img.file, file ? *file : std::string("?"));
  }
  if (!is_hex64(img.sha256)) {
    return fmt::format("sha256 '{}' is not 64 lowercase hex digits", img.sha256);
  }
  if (!is_digest(img.digest) || !is_digest(img.source_digest)) {
    return "digest and sourceDigest must be sha256:<64 lowercase hex digits>";
  }
  return {};
}

Error problem(std::string message, std::string fix = {})
{
  return Error{ErrorCode::failed, std::move(message), std::move(fix), {}, {}, Retryable::no, {}};
}

Result<Bom> from_json(const std::string& text, const std::string& where)
{
  Bom b;
  try {
    const auto j = nlohmann::json::parse(text);
    b.format = j.at("format").get<int>();
    if (b.format != 1 && b.format != 2) {
      return fail(ErrorCode::config_invalid, fmt::format("{}: bundle format {} is not one this mlplat reads", where, b.format),
                  "create the bundle with this version of mlplat");
    }
    b.row = j.at("row");
    b.kubernetes = j.at("kubernetes");
    b.created = j.at("created");
    b.mlplat_version = j.at("mlplatVersion");
    b.matrix_source = j.at("matrix").at("source");
    b.matrix_verified = j.at("matrix").at("verified");
    for (const auto& a : j.at("artifacts")) {
      BomArtifact x;
      x.name = a.at("name");
      x.file = a.at("file");
      x.url = a.at("url");
      x.fetched_from = a.at("fetchedFrom");
      x.sha256 = a.at("sha256");
      x.size = a.at("size");
      x.verification = a.at("verification");
      x.checksum_url = a.value("checksumUrl", "");
      b.artifacts.push_back(std::move(x));
    }
    // Format 1 lists the row's images as strings; format 2 as objects, with the archive's record when
    // the bundle carries the image.
    for (const auto& i : j.at("images")) {
      BomImage x;
      if (i.is_string()) {
        x.ref = i.get<std::string>();
      } else {
        x.ref = i.at("ref");
        if (i.contains("file")) {
          x.file = i.at("file");
          x.digest = i.at("digest");
          x.source_digest = i.at("sourceDigest");
          x.sha256 = i.at("sha256");
          x.size = i.at("size");
          x.fetched_from = i.at("fetchedFrom");
        }
      }
      b.images.push_back(std::move(x));
    }
    b.images_included = j.value("imagesIncluded", false);
    for (const auto& s : j.at("kustomizeSources")) {
      b.kustomize_sources.push_back({s.at("repo"), s.at("ref"), s.at("artifact"), s.at("root")});
    }
  } catch (const std::exception& e) {
    return fail(ErrorCode::config_invalid, fmt::format("{}: not a bundle bill of materials: {}", where, e.what()),
                "create the bundle again with mlplat bundle create");
  }
  // Every value that names a file or a directory, here or on a host, is of the bundle's own layout;
  // anything else is refused before it reaches a path or a command.
  const std::string fix = "do not use this bundle: create it again with mlplat bundle create";
  if (!is_layout_name(b.row)) {
    const int line = line_of(text, "row", b.row);
    return fail(ErrorCode::failed, fmt::format("{}{}: row '{}' is not [A-Za-z0-9._+-]+", where, line ? fmt::format(":{}", line) : "", b.row), fix);
  }
  std::set<std::string> names;
  for (size_t i = 0; i < b.artifacts.size(); ++i) {
    const auto& a = b.artifacts[i];
    std::string why = layout_problem(a.name, a.file);
    if (why.empty() && !is_hex64(a.sha256)) {
      why = fmt::format("sha256 '{}' is not 64 lowercase hex digits", a.sha256);
    }
    if (why.empty() && !names.insert(a.name).second) {
      why = "the artifact is listed twice";
    }
    if (!why.empty()) {
      const int line = line_of(text, "file", a.file);
      return fail(ErrorCode::failed,
                  fmt::format("{}{}: artifacts[{}] ('{}', file '{}'): {}", where, line ? fmt::format(":{}", line) : "", i, a.name, a.file, why),
                  fix);
    }
  }
  std::set<std::string> refs;
  for (size_t i = 0; i < b.images.size(); ++i) {
    const auto& img = b.images[i];
    std::string why = image_problem(img, b.images_included);
    if (why.empty() && !refs.insert(img.ref).second) {
      why = "the image is listed twice";
    }
    if (!why.empty()) {
      const int line = line_of(text, "ref", img.ref);
      return fail(ErrorCode::failed, fmt::format("{}{}: images[{}] ('{}'): {}", where, line ? fmt::format(":{}", line) : "", i, img.ref, why), fix);
    }
  }
  for (size_t i = 0; i < b.kustomize_sources.size(); ++i) {
    const auto& s = b.kustomize_sources[i];
    if (!is_layout_name(s.artifact) || !is_layout_name(s.root) || !is_layout_name(s.ref) ||
        s.repo.find_first_of(" \t\n'\"\\$`;&|<>") != std::string::npos || s.repo.find("..") != std::string::npos) {
      return fail(ErrorCode::failed, fmt::format("{}: kustomizeSources[{}] ({}@{}, artifact '{}', root '{}') is not of the bundle's layout", where,
                                                 i, s.repo, s.ref, s.artifact, s.root),
                  fix);
    }
  }
  return b;
}

// The bundle's SHA256SUMS: its artifacts, then its image archives.
std::string sums_text(const Bom& b)
{
  std::string out = sums_for(b, {});
  for (const auto& i : b.images) {
    if (i.carried()) {
      out += i.sha256 + "  " + i.file + "\n";
    }
  }
  return out;
}

Status run_tar(const std::vector<std::string>& argv, const std::string& what)
{
  TRY_ASSIGN(const ProcessResult r, run_process(argv, std::chrono::minutes(30)));
  if (!r.ok()) {
    return fail(ErrorCode::io, fmt::format("{} failed: {}", what, text::trim(r.err)),
                "check free space, and that tar (and zstd for .tar.zst) are installed");
  }
  return {};
}

} // namespace

Result<Bom> create(const compat::Matrix& matrix, const CreateOptions& options)
{
  const compat::Row* row = options.row.empty() ? &matrix.default_() : matrix.find(options.row);
  if (row == nullptr) {
    std::vector<std::string> ids;
    for (const auto& r : matrix.rows) {
      ids.push_back(r.id);
    }
    return fail(ErrorCode::usage, fmt::format("the matrix has no row '{}'", options.row), "rows: " + text::join(ids, ", "));
  }
  // Refuse before downloading anything: an unpinned artifact must be accepted by name.
  std::vector<std::string> refused;
  for (const auto& a : row->artifacts) {
    if (a.verification == compat::Verification::unpinned && options.accept_unpinned.count(a.name) == 0 &&
        options.accept_unpinned.count("all") == 0) {
      refused.push_back(a.name);
    }
  }
  if (!refused.empty()) {
    return fail(ErrorCode::usage,
                fmt::format("row {} has artifacts with no published checksum: {}; they are never taken silently", row->id,
                            text::join(refused, ", ")),
                fmt::format("accept them by name with --accept-unpinned {} (their sha256 is then recorded in the bill of "
                            "materials and enforced from there on), or pin them in the matrix",
                            text::join(refused, ",")));
  }
  // A bundle only of names its readers accept (read_bom): refused before any download.
  if (!is_layout_name(row->id)) {
    return fail(ErrorCode::config_invalid, fmt::format("{}: row id '{}' is not [A-Za-z0-9._+-]+", matrix.source, row->id),
                "rename the row in the matrix");
  }
  for (const auto& a : row->artifacts) {
    if (const auto why = layout_problem(a.name, "files/" + a.name + "/" + a.file_name()); !why.empty()) {
      return fail(ErrorCode::config_invalid, fmt::format("{}:{}:{}: artifact '{}': {}", a.where.file, a.where.line, a.where.column, a.name, why),
                  "name the artifact with letters, digits, '.', '_', '+', '-', and give it a URL whose last part is such a file name");
    }
  }
  if (!options.sign_key.empty()) {
    TRY(check_sign_key(options.sign_key));  // before any download
  }
  const Kind kind = kind_of(options.output);
  const sfs::path output = options.output;
  std::error_code ec;
  if (sfs::exists(output, ec)) {
    return fail(ErrorCode::usage, fmt::format("{} already exists; not overwriting it", output.string()),
                "remove it, or give another --output");
  }
  // Work happens in a staging directory beside the output, so nothing named like a bundle exists
  // before it is complete; it stays after a failure, so running again resumes the downloads.
  const sfs::path staging = output.string() + ".partial";
  sfs::create_directories(staging / "files", ec);
  if (ec) {
    return fail(ErrorCode::io, fmt::format("cannot create {}: {}", staging.string(), ec.message()));
  }
  Bom bom;
  bom.row = row->id;
  bom.kubernetes = row->kubernetes.str();
  bom.created = now_utc();
  bom.mlplat_version = MLPLAT_VERSION;
  bom.matrix_source = matrix.source;
  bom.matrix_verified = matrix.verified;
  if (options.images.include) {
    TRY_ASSIGN(bom.images, fetch_images(*row, matrix.arch, options.images, staging, options.fetch.progress));
    bom.images_included = true;
  } else {
    for (const auto& ref : row->images) {
      bom.images.push_back(BomImage{ref, {}, {}, {}, {}, 0, {}});
    }
  }
  bom.kustomize_sources = row->kustomize_sources;
  size_t index = 0;
  for (const auto& a : row->artifacts) {
    ++index;
    fetch::Expect expect;
    BomArtifact entry;
    entry.name = a.name;
    entry.url = a.url;
    entry.file = "files/" + a.name + "/" + a.file_name();
    switch (a.verification) {
    case compat::Verification::pinned:
      expect.sha256 = a.sha256;
      entry.verification = "pinned";
      break;
    case compat::Verification::upstream_checksum: {
      TRY_ASSIGN(const std::string sums, fetch::fetch_text(a.name + " checksum", a.checksum_url, options.fetch));
      auto sha = fetch::parse_checksum_file(sums, a.file_name());
      if (!sha) {
        return fail(ErrorCode::failed, fmt::format("{}: {} has no sha256 for {}", a.name, a.checksum_url, a.file_name()),
                    "check the checksumUrl in the matrix row");
      }
      expect.sha256 = *sha;
      entry.verification = "upstream-checksum";
      entry.checksum_url = a.checksum_url;
      break;
    }
    case compat::Verification::unpinned:
      expect.first_download = true;
      entry.verification = "first-download";
      break;
    }
    const sfs::path dest = staging / entry.file;
    if (sfs::exists(dest, ec)) {
      // Finished in an earlier run of this command; still checked.
      TRY_ASSIGN(const std::string sha, sha256_file_hex(dest));
      if (expect.sha256.empty() || sha == expect.sha256) {
        entry.sha256 = sha;
        entry.size = sfs::file_size(dest, ec);
        entry.fetched_from = "(earlier run)";
        log::info("[{}/{}] {}: already downloaded, sha256 ok", index, row->artifacts.size(), a.name);
        bom.artifacts.push_back(std::move(entry));
        continue;
      }
      sfs::remove(dest, ec);
    }
    TRY_ASSIGN(const fetch::Fetched got, fetch::download(a.name, a.url, dest, expect, options.fetch));
    entry.sha256 = got.sha256;
    entry.size = got.bytes;
    entry.fetched_from = got.url;
    log::info("[{}/{}] {}: {} bytes, sha256 {} ({}{})", index, row->artifacts.size(), a.name, got.bytes,
              got.sha256.substr(0, 12), entry.verification, got.resumed ? ", resumed" : "");
    if (a.verification == compat::Verification::unpinned) {
      log::warn("{}: taken on first download (--accept-unpinned); recorded sha256 {}", a.name, got.sha256);
    }
    bom.artifacts.push_back(std::move(entry));
  }
  TRY(fs::write_file_atomic(staging / k_sums, sums_text(bom), 0644));
  TRY(fs::write_file_atomic(staging / k_bom, to_json(bom).dump(2) + "\n", 0644));
  if (!options.sign_key.empty()) {
    TRY(sign(staging / k_bom, options.sign_key, staging / k_sig));
    log::info("bundle.json signed with {} (namespace {})", options.sign_key, k_signature_namespace);
  } else {
    sfs::remove(staging / k_sig, ec);  // an earlier run's signature is not this bill of materials'
  }
  sfs::remove_all(staging / k_image_state_dir, ec);  // the image copies' records: the bundle is complete
  if (kind == Kind::dir) {
    sfs::rename(staging, output, ec);
    if (ec) {
      return fail(ErrorCode::io, fmt::format("cannot rename {} to {}: {}", staging.string(), output.string(), ec.message()));
    }
  } else {
    const std::string tmp = output.string() + ".tmp";
    std::vector<std::string> argv{"tar", "-C", staging.string(), kind == Kind::tar_zst ? "--zstd" : "-z", "-cf", tmp, "."};
    TRY(run_tar(argv, "tar " + tmp));
    sfs::rename(tmp, output, ec);
    if (ec) {
      return fail(ErrorCode::io, fmt::format("cannot rename {} to {}: {}", tmp, output.string(), ec.message()));
    }
    sfs::remove_all(staging, ec);
  }
  return bom;
}

Result<sfs::path> open_dir(const sfs::path& bundle, const sfs::path& scratch)
{
  std::error_code ec;
  if (sfs::is_directory(bundle, ec)) {
    return bundle;
  }
  if (!sfs::is_regular_file(bundle, ec)) {
    return fail(ErrorCode::usage, fmt::format("{} is neither a bundle directory nor a bundle archive", bundle.string()),
                "give the --output of mlplat bundle create");
  }
  // Extracted into an empty directory: files of an earlier, other bundle must not linger beside it.
  sfs::remove_all(scratch, ec);
  sfs::create_directories(scratch, ec);
  const Kind kind = kind_of(bundle.string());
  TRY(run_tar({"tar", "-C", scratch.string(), kind == Kind::tar_zst ? "--zstd" : "-z", "-xf", bundle.string()},
              "extracting " + bundle.string()));
  return scratch;
}

namespace {

// bundle.json of a bundle (directory or archive) as stored, and where it was read from.
struct BomText {
  std::string text;
  std::string where;
};

Result<BomText> read_bom_text(const sfs::path& bundle)
{
  std::error_code ec;
  if (sfs::is_directory(bundle, ec)) {
    TRY_ASSIGN(std::string text, fs::read_file(bundle / k_bom));
    return BomText{std::move(text), (bundle / k_bom).string()};
  }
  const Kind kind = kind_of(bundle.string());
  TRY_ASSIGN(const ProcessResult r, run_process({"tar", kind == Kind::tar_zst ? "--zstd" : "-z", "-xOf", bundle.string(),
                                                  std::string("./") + k_bom},
                                                 std::chrono::minutes(5)));
  if (!r.ok()) {
    return fail(ErrorCode::usage, fmt::format("{} is not a bundle: {}", bundle.string(), text::trim(r.err)),
                "give the --output of mlplat bundle create");
  }
  return BomText{r.out, bundle.string() + ":" + k_bom};
}

// The signature check: the bundle is trusted when bundle.json.sig verifies against the allowed
// signers for the signer, or when the operator named this bill of materials' sha256.
std::optional<Error> check_signature(const sfs::path& dir, const BomText& bom, const Trust& trust, const std::string& bundle_name)
{
  const std::string sha = sha256_hex(bom.text);
  const bool accepted = !trust.accept_unsigned.empty() && trust.accept_unsigned == sha;
  const std::string accept_fix =
    fmt::format("or, having checked where this bundle came from, accept it by name: --accept-unsigned-bundle {} (the sha256 of its bundle.json)", sha);
  if (!trust.accept_unsigned.empty() && !accepted) {
    return problem(fmt::format("--accept-unsigned-bundle names the bill of materials {}, but this bundle's bundle.json has sha256 {}",
                               trust.accept_unsigned, sha),
                   "the acceptance is for another bundle (or this one changed): check it, and name this one if you mean it");
  }
  std::error_code ec;
  const bool has_sig = sfs::exists(dir / k_sig, ec);
  if (trust.allowed_signers.empty() || trust.signer.empty()) {
    if (accepted) {
      log::warn("bundle {}: signature not checked (no allowed signers given); accepted by name: bill of materials sha256 {}", bundle_name, sha);
      return std::nullopt;
    }
    return problem(fmt::format("bundle {} is {}, and no allowed signers were given to check it against", bundle_name,
                               has_sig ? "signed" : "not signed (no bundle.json.sig)"),
                   fmt::format("name the allowed signers file and the identity (spec.bundle.allowedSigners and spec.bundle.signer in the "
                               "cluster file; --allowed-signers and --signer for bundle verify) and sign bundles with "
                               "mlplat bundle create --sign-key; {}",
                               accept_fix));
  }
  if (!has_sig) {
    if (accepted) {
      log::warn("bundle {} is not signed; accepted by name: bill of materials sha256 {}", bundle_name, sha);
      return std::nullopt;
    }
    return problem(fmt::format("bundle {} is not signed (no bundle.json.sig); {} trusts only bundles signed by '{}'", bundle_name,
                               trust.allowed_signers, trust.signer),
                   fmt::format("create it again with mlplat bundle create --sign-key <the signer's private key>; {}", accept_fix));
  }
  auto r = run_process({"ssh-keygen", "-Y", "verify", "-f", trust.allowed_signers, "-I", trust.signer, "-n", k_signature_namespace, "-s",
                        (dir / k_sig).string()},
                       std::chrono::seconds(60), bom.text);
  if (!r) {
    return problem(fmt::format("cannot check the signature of bundle {}: {}", bundle_name, r.error().message),
                   "install OpenSSH's ssh-keygen (Debian: openssh-client, 8.2 or later)");
  }
  if (!r->ok()) {
    if (accepted) {
      log::warn("bundle {}: the signature does not verify for '{}' ({}); accepted by name: bill of materials sha256 {}", bundle_name,
                trust.signer, std::string(text::trim(r->err)), sha);
      return std::nullopt;
    }
    return problem(fmt::format("bundle {}: bundle.json.sig is not a good signature of bundle.json by '{}' in {} (ssh-keygen: {})", bundle_name,
                               trust.signer, trust.allowed_signers, std::string(text::trim(r->out + r->err))),
                   fmt::format("the bundle was changed or signed by another key: do not use it; create it again with mlplat bundle create "
                               "--sign-key <the signer's key>, or add its signer to {}; {}",
                               trust.allowed_signers, accept_fix));
  }
  log::info("bundle {}: bundle.json signed by '{}' ({})", bundle_name, trust.signer, trust.allowed_signers);
  return std::nullopt;
}

// SHA256SUMS as written by create: "<sha256>  files/<artifact>/<file>" lines of the bundle's layout,
// exactly those of the bill of materials.
std::vector<Error> check_sums(const std::string& sums, const Bom& bom)
{
  std::vector<Error> out;
  const auto lines = text::split(sums, '\n');
  for (size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].empty() && i + 1 == lines.size()) {
      break;
    }
    const auto& l = lines[i];
    const auto sep = l.find("  ");
    const std::string sha = sep == std::string::npos ? std::string() : l.substr(0, sep);
    const std::string file = sep == std::string::npos ? l : l.substr(sep + 2);
    const auto parts = text::split(file, '/');
    const bool image = parts.size() == 2 && parts[0] == "images" && is_layout_name(parts[1]);
    const std::string why = !is_hex64(sha) ? "no sha256 of 64 lowercase hex digits"
                            : image        ? std::string()
                            : parts.size() != 3 ? std::string("not files/<artifact>/<file name> or images/<image>.tar")
                                                : layout_problem(parts[1], file);
    if (!why.empty()) {
      out.push_back(problem(fmt::format("SHA256SUMS:{}: '{}': {}", i + 1, l, why)));
    }
  }
  if (out.empty() && sums != sums_text(bom)) {
    out.push_back(problem("SHA256SUMS does not match the bill of materials"));
  }
  return out;
}

// The layout of a bill of materials made in code rather than read (read_bom checks a read one).
Status check_layout(const Bom& bom)
{
  for (const auto& a : bom.artifacts) {
    if (const auto why = layout_problem(a.name, a.file); !why.empty() || !is_hex64(a.sha256) || !is_layout_name(bom.row)) {
      return fail(ErrorCode::internal, fmt::format("artifact '{}' is not of the bundle's layout: {}", a.name, why.empty() ? "sha256 or row" : why));
    }
  }
  return {};
}

} // namespace

Result<Bom> read_bom(const sfs::path& bundle)
{
  TRY_ASSIGN(const BomText t, read_bom_text(bundle));
  return from_json(t.text, t.where);
}

Result<std::string> bom_sha256(const sfs::path& bundle)
{
  TRY_ASSIGN(const BomText t, read_bom_text(bundle));
  return sha256_hex(t.text);
}

std::vector<Error> check_against_matrix(const Bom& bom, const compat::Matrix& matrix)
{
  std::vector<Error> out;
  const compat::Row* row = matrix.find(bom.row);
  if (row == nullptr) {
    out.push_back(problem(fmt::format("the bundle is for row '{}', which the matrix in use ({}) does not have", bom.row, matrix.source),
                          "use the matrix the bundle was made with (--matrix FILE), or create a bundle of one of its rows"));
    return out;
  }
  const std::string again = fmt::format("create the bundle again with this matrix (mlplat bundle create --row {}); do not use this one", row->id);
  for (size_t i = 0; i < bom.artifacts.size(); ++i) {
    const auto& a = bom.artifacts[i];
    const compat::Artifact* m = row->artifact(a.name);
    if (m == nullptr) {
      out.push_back(problem(fmt::format("bundle.json artifacts[{}] ('{}', file '{}'): row {} of {} has no artifact '{}'", i, a.name, a.file,
                                        row->id, matrix.source, a.name),
                            again));
      continue;
    }
    const std::string expected = "files/" + m->name + "/" + m->file_name();
    if (a.file != expected) {
      out.push_back(problem(fmt::format("bundle.json artifacts[{}] ('{}'): file '{}' is not the row's '{}'", i, a.name, a.file, expected), again));
    }
  }
  for (const auto& m : row->artifacts) {
    const BomArtifact* a = bom.find(m.name);
    if (a == nullptr) {
      out.push_back(problem(fmt::format("{}: the bundle has no such artifact; row {} of {} lists it", m.name, row->id, matrix.source), again));
      continue;
    }
    if (m.verification == compat::Verification::pinned && a->sha256 != m.sha256) {
      out.push_back(problem(fmt::format("{}: the bundle's file has sha256 {}, the matrix in use ({}) pins {}", m.name, a->sha256, matrix.source,
                                        m.sha256),
                            fmt::format("the file is not the one the matrix names: do not use this bundle; create it again with this matrix "
                                        "(mlplat bundle create --row {}), or give the matrix it was made with (--matrix)",
                                        row->id)));
    }
  }
  const auto same_source = [](const compat::KustomizeSource& x, const compat::KustomizeSource& y) {
    return x.repo == y.repo && x.ref == y.ref && x.artifact == y.artifact && x.root == y.root;
  };
  if (bom.kustomize_sources.size() != row->kustomize_sources.size() ||
      !std::equal(bom.kustomize_sources.begin(), bom.kustomize_sources.end(), row->kustomize_sources.begin(), same_source)) {
    out.push_back(problem(fmt::format("bundle.json kustomizeSources are not those of row {} of {}", row->id, matrix.source), again));
  }
  // Images: only the row's; with --images, every one of them.
  const std::set<std::string> row_images(row->images.begin(), row->images.end());
  for (size_t i = 0; i < bom.images.size(); ++i) {
    if (row_images.count(bom.images[i].ref) == 0) {
      out.push_back(problem(fmt::format("bundle.json images[{}] ('{}'): row {} of {} has no such image", i, bom.images[i].ref, row->id, matrix.source),
                            again));
    }
  }
  if (bom.images_included) {
    for (const auto& ref : row->images) {
      const BomImage* img = bom.find_image(ref);
      if (img == nullptr || !img->carried()) {
        out.push_back(problem(fmt::format("{}: the bundle carries its images, but not this one; row {} of {} lists it", ref, row->id, matrix.source),
                              fmt::format("create the bundle again (mlplat bundle create --row {} --images); do not use this one", row->id)));
      }
    }
  }
  return out;
}

Result<Bom> verify(const sfs::path& bundle, const Trust& trust)
{
  if (trust.matrix == nullptr) {
    return fail(ErrorCode::internal, "bundle::verify without a matrix");
  }
  const sfs::path scratch = sfs::temp_directory_path() / fmt::format("mlplat-verify-{}", ::getpid());
  std::error_code ec;
  sfs::remove_all(scratch, ec);
  struct Cleanup {
    sfs::path p;
    ~Cleanup()
    {
      std::error_code e;
      sfs::remove_all(p, e);
    }
  } cleanup{scratch};
  TRY_ASSIGN(const sfs::path dir, open_dir(bundle, scratch));
  TRY_ASSIGN(const BomText bom_text, read_bom_text(dir));
  TRY_ASSIGN(const Bom bom, from_json(bom_text.text, bom_text.where));
  std::vector<Error> problems = check_against_matrix(bom, *trust.matrix);
  if (auto bad = check_signature(dir, bom_text, trust, bundle.string())) {
    problems.insert(problems.begin(), std::move(*bad));
  }
  std::set<std::string> listed;
  for (const auto& a : bom.artifacts) {
    listed.insert(a.file);
    const sfs::path file = dir / a.file;
    if (!sfs::is_regular_file(file, ec)) {
      problems.push_back(problem(fmt::format("{}: {} is missing", a.name, a.file)));
      continue;
    }
    TRY_ASSIGN(const std::string sha, sha256_file_hex(file));
    if (sha != a.sha256) {
      problems.push_back(problem(fmt::format("{}: {} has sha256 {}, the bill of materials says {}", a.name, a.file, sha, a.sha256)));
    }
  }
  // Image archives: the file's sha256 and size, then every blob inside (a blob changed with the
  // archive's sha256 updated in bundle.json is still caught).
  const sfs::path image_scratch = scratch.string() + "-image";
  struct CleanupImage {
    sfs::path p;
    ~CleanupImage()
    {
      std::error_code e;
      sfs::remove_all(p, e);
    }
  } cleanup_image{image_scratch};
  for (const auto& img : bom.images) {
    if (!img.carried()) {
      continue;
    }
    listed.insert(img.file);
    const sfs::path file = dir / img.file;
    if (!sfs::is_regular_file(file, ec)) {
      problems.push_back(problem(fmt::format("{}: {} is missing", img.ref, img.file)));
      continue;
    }
    TRY_ASSIGN(const std::string sha, sha256_file_hex(file));
    if (sha != img.sha256) {
      problems.push_back(problem(fmt::format("{}: {} has sha256 {}, the bill of materials says {}", img.ref, img.file, sha, img.sha256)));
    }
    if (const auto size = sfs::file_size(file, ec); size != img.size) {
      problems.push_back(problem(fmt::format("{}: {} has {} bytes, the bill of materials says {}", img.ref, img.file, size, img.size)));
    }
    std::vector<Error> inside;
    TRY_ASSIGN(const ArchiveContents c, check_image_archive(file, img.ref, img.digest, image_scratch, inside));
    if (inside.empty() && c.ref_name != img.ref) {
      inside.push_back(problem(fmt::format("{}: {} names the image '{}'", img.ref, img.file, c.ref_name)));
    }
    if (inside.empty()) {
      log::debug("{}: {} checked: manifest {}, {} blobs", img.ref, img.file, c.manifest_digest, c.blobs);
    }
    for (auto& e : inside) {
      problems.push_back(std::move(e));
    }
  }
  for (const char* top : {"files", "images"}) {
    for (const auto& entry : sfs::recursive_directory_iterator(dir / top, ec)) {
      if (!entry.is_directory()) {
        const std::string rel = sfs::relative(entry.path(), dir).string();
        if (listed.count(rel) == 0) {
          problems.push_back(problem(fmt::format("{} is not in the bill of materials", rel)));
        }
      }
    }
  }
  TRY_ASSIGN(const std::string sums, fs::read_file(dir / k_sums));
  for (auto& e : check_sums(sums, bom)) {
    problems.push_back(std::move(e));
  }
  if (!problems.empty()) {
    Error e;
    e.code = ErrorCode::failed;
    e.message = fmt::format("bundle {} failed verification ({} problem(s))", bundle.string(), problems.size());
    e.fix = "create the bundle again (mlplat bundle create); do not use this one";
    e.children = std::move(problems);
    return tl::unexpected(std::move(e));
  }
  return bom;
}

Status check_sign_key(const std::string& key)
{
  // -P '': a key with a passphrase fails here instead of prompting on the terminal.
  TRY_ASSIGN(const ProcessResult r, run_process({"ssh-keygen", "-y", "-P", "", "-f", key}, std::chrono::seconds(30)));
  if (!r.ok()) {
    return fail(ErrorCode::usage,
                fmt::format("--sign-key {}: not an SSH private key without a passphrase (ssh-keygen: {})", key, std::string(text::trim(r.out + r.err))),
                "give an SSH private key with no passphrase (a key with a passphrase is not supported): ssh-keygen -t ed25519 -N '' -f <file>; "
                "its public key goes into the allowed signers file as '<identity> <public key>'");
  }
  return {};
}

Status sign(const sfs::path& bom_file, const std::string& key, const sfs::path& signature)
{
  TRY(check_sign_key(key));
  TRY_ASSIGN(const std::string text, fs::read_file(bom_file));
  TRY_ASSIGN(const ProcessResult r, run_process({"ssh-keygen", "-Y", "sign", "-n", k_signature_namespace, "-f", key}, std::chrono::seconds(60), text));
  if (!r.ok() || r.out.find("BEGIN SSH SIGNATURE") == std::string::npos) {
    return fail(ErrorCode::failed, fmt::format("signing {} with {} failed: {}", bom_file.string(), key, std::string(text::trim(r.err))),
                "check the key (ssh-keygen -y -f KEY prints its public key); OpenSSH 8.2 or later is needed");
  }
  TRY(fs::write_file_atomic(signature, r.out, 0644));
  return {};
}

std::string sums_for(const Bom& bom, const std::set<std::string>& only)
{
  std::string out;
  for (const auto& a : bom.artifacts) {
    if (only.empty() || only.count(a.name) != 0) {
      out += a.sha256 + "  " + a.file + "\n";
    }
  }
  return out;
}

Status push_host(transport::Fleet& fleet, size_t host, const sfs::path& bundle_dir, const Bom& bom, const std::string& remote_dir,
                 const std::set<std::string>& only)
{
  TRY(check_layout(bom));
  std::set<std::string> dirs{remote_dir};
  for (const auto& a : bom.artifacts) {
    if (only.empty() || only.count(a.name) != 0) {
      dirs.insert(remote_dir + "/" + sfs::path(a.file).parent_path().string());
    }
  }
  transport::Command mkdir;
  mkdir.script = "mkdir -p -m 0755 " + text::shell_join({dirs.begin(), dirs.end()});
  mkdir.description = "create the bundle directories";
  mkdir.privilege = transport::Privilege::root;
  mkdir.effect = transport::Effect::mutating;
  TRY(fleet.run(host, mkdir));
  for (const auto& a : bom.artifacts) {
    if (only.empty() || only.count(a.name) != 0) {
      TRY(fleet.upload_file(host, bundle_dir / a.file, remote_dir + "/" + a.file, 0644, transport::Privilege::root));
    }
  }
  TRY(fleet.upload_bytes(host, sums_for(bom, only), remote_dir + "/" + k_sums, 0644, transport::Privilege::root));
  TRY(fleet.upload_bytes(host, to_json(bom).dump(2) + "\n", remote_dir + "/" + k_bom, 0644, transport::Privilege::root));
  transport::Command check;
  check.script = "cd " + text::shell_quote(remote_dir) + " && sha256sum --check --strict --quiet " + k_sums;
  check.description = "verify the bundle on the host (sha256sum --check)";
  check.privilege = transport::Privilege::root;
  check.deadline = 10min;
  // In dry-run the files were not sent: there is nothing to check yet.
  check.effect = transport::Effect::mutating;
  TRY(fleet.run(host, check));
  return {};
}

std::vector<Result<bool>> push(transport::Fleet& fleet, const sfs::path& bundle_dir, const Bom& bom, const std::string& remote_dir)
{
  return fleet.for_each<bool>([&](size_t i) -> Result<bool> {
    TRY(push_host(fleet, i, bundle_dir, bom, remote_dir));
    return true;
  });
}

Status fetch_host(transport::Fleet& fleet, size_t host, const Bom& bom, const std::string& mirror_url, const std::string& remote_dir,
                  const std::set<std::string>& only)
{
  TRY(check_layout(bom));
  std::string base = mirror_url;
  while (!base.empty() && base.back() == '/') {
    base.pop_back();
  }
  // One script per host: each file is fetched to .part (resuming), checked, then renamed.
  std::string script = "set -eu\numask 022\n";
  for (const auto& a : bom.artifacts) {
    if (!only.empty() && only.count(a.name) == 0) {
      continue;
    }
    // Every value is quoted: the file names are of the bundle's layout (read_bom), and still never
    // spliced raw into the script.
    const std::string dest = remote_dir + "/" + a.file;
    const std::string url = base + "/" + a.file;
    script += fmt::format(
      "mkdir -p {dir}\n"
      "if ! printf '%s\\n' {dest_line} | sha256sum --check --status 2>/dev/null; then\n"
      "  curl -fsS --retry 3 --retry-delay 1 --connect-timeout 10 --max-time 1800 -C - -o {part} {url} || "
      "{{ rm -f {part}; curl -fsS --retry 3 --connect-timeout 10 --max-time 1800 -o {part} {url}; }}\n"
      "  printf '%s\\n' {part_line} | sha256sum --check --quiet || {{ rm -f {part}; printf '%s\\n' {mismatch} >&2; exit 3; }}\n"
      "  mv -f {part} {dest}\n"
      "fi\n",
      fmt::arg("dir", text::shell_quote(sfs::path(dest).parent_path().string())),
      fmt::arg("dest_line", text::shell_quote(a.sha256 + "  " + dest)), fmt::arg("dest", text::shell_quote(dest)),
      fmt::arg("part_line", text::shell_quote(a.sha256 + "  " + dest + ".part")), fmt::arg("part", text::shell_quote(dest + ".part")),
      fmt::arg("mismatch", text::shell_quote("sha256 mismatch: " + a.name + " from " + url)), fmt::arg("url", text::shell_quote(url)));
  }
  script += fmt::format("printf '%s' {} > {}/{}\n", text::shell_quote(sums_for(bom, only)), text::shell_quote(remote_dir), k_sums);
  script += fmt::format("cd {} && sha256sum --check --strict --quiet {}\n", text::shell_quote(remote_dir), k_sums);
  transport::Command cmd;
  cmd.script = script;
  cmd.description = fmt::format("fetch the bundle for row {} from {} and verify it", bom.row, base);
  cmd.privilege = transport::Privilege::root;
  cmd.effect = transport::Effect::mutating;
  cmd.deadline = 60min;
  TRY(fleet.run(host, cmd));
  return {};
}

std::vector<Result<bool>> fetch_on_hosts(transport::Fleet& fleet, const Bom& bom, const std::string& mirror_url,
                                         const std::string& remote_dir)
{
  return fleet.for_each<bool>([&](size_t i) -> Result<bool> {
    TRY(fetch_host(fleet, i, bom, mirror_url, remote_dir));
    return true;
  });
}

} // namespace mlplat::bundle
