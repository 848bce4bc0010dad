#include "bundle/bundle.hpp"

#include "util/fs.hpp"
#include "util/log.hpp"
#include "util/process.hpp"
#include "util/sha256.hpp"
#include "util/text.hpp"

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <ctime>
#include <map>

namespace mlplat::bundle {

namespace sfs = std::filesystem;
using namespace std::chrono_literals;

const BomArtifact* Bom::find(const std::string& name) const
{
  for (const auto& a : artifacts) {
    if (a.name == name) {
      return &a;
    }
  }
  return nullptr;
}

namespace {

constexpr const char* k_bom = "bundle.json";
constexpr const char* k_sums = "SHA256SUMS";

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
  nlohmann::json sources = nlohmann::json::array();
  for (const auto& s : b.kustomize_sources) {
    sources.push_back({{"repo", s.repo}, {"ref", s.ref}, {"artifact", s.artifact}, {"root", s.root}});
  }
  return {{"format", b.format},          {"row", b.row},
          {"kubernetes", b.kubernetes},  {"created", b.created},
          {"mlplatVersion", b.mlplat_version},
          {"matrix", {{"source", b.matrix_source}, {"verified", b.matrix_verified}}},
          {"artifacts", artifacts},      {"images", b.images},
          {"kustomizeSources", sources}};
}

Result<Bom> from_json(const std::string& text, const std::string& where)
{
  try {
    const auto j = nlohmann::json::parse(text);
    Bom b;
    b.format = j.at("format").get<int>();
    if (b.format != 1) {
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
      if (x.file.find("..") != std::string::npos || x.file.empty() || x.file.front() == '/') {
        return fail(ErrorCode::config_invalid, fmt::format("{}: artifact '{}' has an unsafe path '{}'", where, x.name, x.file));
      }
      b.artifacts.push_back(std::move(x));
    }
    b.images = j.at("images").get<std::vector<std::string>>();
    for (const auto& s : j.at("kustomizeSources")) {
      b.kustomize_sources.push_back({s.at("repo"), s.at("ref"), s.at("artifact"), s.at("root")});
    }
    return b;
  } catch (const std::exception& e) {
    return fail(ErrorCode::config_invalid, fmt::format("{}: not a bundle bill of materials: {}", where, e.what()),
                "create the bundle again with mlplat bundle create");
  }
}

std::string sums_text(const Bom& b)
{
  return sums_for(b, {});
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
  bom.images = row->images;
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

Result<Bom> read_bom(const sfs::path& bundle)
{
  std::error_code ec;
  if (sfs::is_directory(bundle, ec)) {
    TRY_ASSIGN(const std::string text, fs::read_file(bundle / k_bom));
    return from_json(text, (bundle / k_bom).string());
  }
  const Kind kind = kind_of(bundle.string());
  TRY_ASSIGN(const ProcessResult r, run_process({"tar", kind == Kind::tar_zst ? "--zstd" : "-z", "-xOf", bundle.string(),
                                                  std::string("./") + k_bom},
                                                 std::chrono::minutes(5)));
  if (!r.ok()) {
    return fail(ErrorCode::usage, fmt::format("{} is not a bundle: {}", bundle.string(), text::trim(r.err)),
                "give the --output of mlplat bundle create");
  }
  return from_json(r.out, bundle.string() + ":" + k_bom);
}

Result<Bom> verify(const sfs::path& bundle)
{
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
  TRY_ASSIGN(const Bom bom, read_bom(dir));
  std::vector<Error> problems;
  std::set<std::string> listed;
  for (const auto& a : bom.artifacts) {
    listed.insert(a.file);
    const sfs::path file = dir / a.file;
    if (!sfs::exists(file, ec)) {
      problems.push_back(Error{ErrorCode::failed, fmt::format("{}: {} is missing", a.name, a.file), {}, {}, {}, Retryable::no, {}});
      continue;
    }
    TRY_ASSIGN(const std::string sha, sha256_file_hex(file));
    if (sha != a.sha256) {
      problems.push_back(Error{ErrorCode::failed,
                               fmt::format("{}: {} has sha256 {}, the bill of materials says {}", a.name, a.file, sha, a.sha256),
                               {}, {}, {}, Retryable::no, {}});
    }
  }
  for (const auto& entry : sfs::recursive_directory_iterator(dir / "files", ec)) {
    if (entry.is_regular_file()) {
      const std::string rel = sfs::relative(entry.path(), dir).string();
      if (listed.count(rel) == 0) {
        problems.push_back(Error{ErrorCode::failed, fmt::format("{} is not in the bill of materials", rel), {}, {}, {}, Retryable::no, {}});
      }
    }
  }
  TRY_ASSIGN(const std::string sums, fs::read_file(dir / k_sums));
  if (sums != sums_text(bom)) {
    problems.push_back(Error{ErrorCode::failed, "SHA256SUMS does not match the bill of materials", {}, {}, {}, Retryable::no, {}});
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
    const std::string dest = remote_dir + "/" + a.file;
    script += fmt::format(
      "mkdir -p {dir}\n"
      "if ! echo '{sha}  {dest}' | sha256sum --check --status 2>/dev/null; then\n"
      "  curl -fsS --retry 3 --retry-delay 1 --connect-timeout 10 --max-time 1800 -C - -o {part} {url} || "
      "{{ rm -f {part}; curl -fsS --retry 3 --connect-timeout 10 --max-time 1800 -o {part} {url}; }}\n"
      "  echo '{sha}  {part}' | sha256sum --check --quiet || {{ rm -f {part}; echo 'sha256 mismatch: {name} from {url}' >&2; exit 3; }}\n"
      "  mv -f {part} {dest}\n"
      "fi\n",
      fmt::arg("dir", text::shell_quote(sfs::path(dest).parent_path().string())), fmt::arg("sha", a.sha256),
      fmt::arg("dest", dest), fmt::arg("part", text::shell_quote(dest + ".part")), fmt::arg("name", a.name),
      fmt::arg("url", text::shell_quote(base + "/" + a.file)));
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
