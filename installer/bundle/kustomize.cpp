#include "bundle/kustomize.hpp"

#include "yamlio/reader.hpp"

#include "util/fs.hpp"
#include "util/process.hpp"
#include "util/text.hpp"

#include <fmt/core.h>
#include <yaml-cpp/yaml.h>

#include <regex>

namespace mlplat::bundle {

namespace sfs = std::filesystem;

std::optional<RemoteRef> parse_remote(const std::string& entry)
{
  // https://github.com/org/repo/path?ref=x, github.com/org/repo//path?ref=x, git::https://..., ssh forms
  static const std::regex re(R"(^(?:git::)?(?:https?://|ssh://git@|git@)?(github\.com)[/:]([^/]+)/([^/?]+?)(?:\.git)?(?:/+([^?]*))?(?:\?(.*))?$)");
  std::smatch m;
  if (!std::regex_match(entry, m, re)) {
    if (entry.rfind("http://", 0) == 0 || entry.rfind("https://", 0) == 0) {
      return RemoteRef{entry, "", ""}; // some other remote: never carried
    }
    return std::nullopt;
  }
  RemoteRef r;
  r.repo = fmt::format("{}/{}/{}", m[1].str(), m[2].str(), m[3].str());
  r.path = m[4].str();
  while (!r.path.empty() && r.path.back() == '/') {
    r.path.pop_back();
  }
  const std::string query = m[5].str();
  static const std::regex ref_re(R"((?:^|&)(?:ref|version)=([^&]+))");
  std::smatch rm;
  if (std::regex_search(query, rm, ref_re)) {
    r.ref = rm[1].str();
  }
  return r;
}

Result<sfs::path> extract_artifact(const sfs::path& bundle_dir, const Bom& bom, const std::string& artifact, const sfs::path& dir)
{
  const BomArtifact* a = bom.find(artifact);
  if (a == nullptr) {
    return fail(ErrorCode::failed, fmt::format("the bundle for row {} has no artifact '{}'", bom.row, artifact),
                "create the bundle again with this mlplat's matrix");
  }
  std::error_code ec;
  sfs::create_directories(dir, ec);
  TRY_ASSIGN(const ProcessResult r, run_process({"tar", "-C", dir.string(), "-xzf", (bundle_dir / a->file).string()},
                                                 std::chrono::minutes(10)));
  if (!r.ok()) {
    return fail(ErrorCode::io, fmt::format("cannot extract {}: {}", a->file, text::trim(r.err)));
  }
  return dir;
}

namespace {

bool is_kustomization(const sfs::path& p)
{
  const auto name = p.filename().string();
  return name == "kustomization.yaml" || name == "kustomization.yml" || name == "Kustomization";
}

} // namespace

Result<int> vendor_remote_bases(const sfs::path& tree, const sfs::path& bundle_dir, const Bom& bom, const sfs::path& vendor_dir)
{
  // Each source extracted once, keyed by repo@ref.
  std::map<std::string, sfs::path> roots;
  for (const auto& s : bom.kustomize_sources) {
    const sfs::path dir = vendor_dir / (s.repo + "@" + s.ref);
    TRY(extract_artifact(bundle_dir, bom, s.artifact, dir));
    roots[s.repo + "@" + s.ref] = sfs::weakly_canonical(dir / s.root);
  }
  int rewritten = 0;
  std::error_code ec;
  std::vector<sfs::path> files;
  for (const auto& entry : sfs::recursive_directory_iterator(tree, ec)) {
    if (entry.is_regular_file() && is_kustomization(entry.path())) {
      files.push_back(entry.path());
    }
  }
  std::sort(files.begin(), files.end());
  for (const auto& file : files) {
    YAML::Node doc;
    try {
      // A kustomization of another project (from the bundle): a few aliases allowed, the limits
      // checked before yaml-cpp expands them.
      TRY_ASSIGN(const std::string text, fs::read_file(file.string()));
      yamlio::Problems problems{file.string(), {}};
      if (!yamlio::check_limits(text, problems, yamlio::Limits{.aliases = yamlio::Aliases::limited})) {
        TRY(problems.to_status());
      }
      doc = YAML::Load(text);
    } catch (const YAML::Exception& e) {
      return fail(ErrorCode::config_invalid, fmt::format("{}:{}:{}: {}", file.string(), e.mark.line + 1, e.mark.column + 1, e.msg));
    }
    bool changed = false;
    for (const char* key : {"resources", "bases", "components"}) {
      YAML::Node list = doc[key];
      if (!list || !list.IsSequence()) {
        continue;
      }
      for (size_t i = 0; i < list.size(); ++i) {
        if (!list[i].IsScalar()) {
          continue;
        }
        const std::string value = list[i].as<std::string>();
        const auto remote = parse_remote(value);
        if (!remote) {
          continue;
        }
        const auto it = roots.find(remote->repo + "@" + remote->ref);
        if (it == roots.end()) {
          std::vector<std::string> carried;
          for (const auto& s : bom.kustomize_sources) {
            carried.push_back(s.repo + "@" + s.ref);
          }
          Error e;
          e.code = ErrorCode::failed;
          e.message = fmt::format("{}:{}:{}: {} '{}' is a remote base the bundle for row {} does not carry", file.string(),
                                  list[i].Mark().line + 1, list[i].Mark().column + 1, key, value, bom.row);
          e.fix = fmt::format("the bundle carries: {}; add the source to the row's kustomizeSources (docs/matrix.md)",
                              carried.empty() ? "nothing" : text::join(carried, ", "));
          return tl::unexpected(std::move(e));
        }
        const sfs::path target = it->second / remote->path;
        if (!sfs::exists(target, ec)) {
          return fail(ErrorCode::failed,
                      fmt::format("{}: {} names {} which the carried {}@{} does not have", file.string(), key, remote->path,
                                  remote->repo, remote->ref),
                      "check the kustomizeSources root in the matrix row");
        }
        list[i] = sfs::relative(target, sfs::weakly_canonical(file.parent_path())).string();
        changed = true;
        ++rewritten;
      }
    }
    if (changed) {
      YAML::Emitter out;
      out << doc;
      TRY(fs::write_file_atomic(file, std::string(out.c_str()) + "\n", 0644));
    }
  }
  return rewritten;
}

} // namespace mlplat::bundle
