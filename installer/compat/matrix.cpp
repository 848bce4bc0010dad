#include "compat/matrix.hpp"

#include "assets/assets.hpp"
#include "config/grammar.hpp"
#include "config/model.hpp"
#include "util/fs.hpp"
#include "util/text.hpp"
#include "yamlio/reader.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <mutex>
#include <set>
#include <sstream>

namespace mlplat::compat {

using yamlio::MapReader;
using yamlio::Need;

Result<Constraint> Constraint::parse(std::string_view text)
{
  Constraint c;
  c.text = std::string(text);
  std::istringstream in{std::string(text)};
  std::string word;
  while (in >> word) {
    Term t;
    for (const char* op : {">=", "<=", ">", "<", "="}) {
      if (word.rfind(op, 0) == 0) {
        t.op = op;
        break;
      }
    }
    if (t.op.empty()) {
      return fail(ErrorCode::config_invalid, fmt::format("'{}' in '{}' has no operator", word, text),
                  "write terms like '>=1.32 <=1.36' (operators >=, <=, >, <, =)");
    }
    auto v = Version::parse(word.substr(t.op.size()));
    if (!v) {
      return fail(ErrorCode::config_invalid, fmt::format("'{}' in '{}': {}", word, text, v.error().message),
                  "write terms like '>=1.32 <=1.36'");
    }
    t.version = *v;
    c.terms.push_back(t);
  }
  if (c.terms.empty()) {
    return fail(ErrorCode::config_invalid, "an empty version constraint", "write terms like '>=1.32 <=1.36'");
  }
  return c;
}

bool Constraint::admits(const Version& v) const
{
  for (const auto& t : terms) {
    // A term without patch compares at minor precision.
    Version lhs = v;
    if (!t.version.has_patch) {
      lhs.patch = 0;
      lhs.has_patch = false;
    }
    const int c = compare(lhs, t.version);
    const bool ok = t.op == ">=" ? c >= 0 : t.op == "<=" ? c <= 0 : t.op == ">" ? c > 0 : t.op == "<" ? c < 0 : c == 0;
    if (!ok) {
      return false;
    }
  }
  return true;
}

std::string to_string(Verification v)
{
  switch (v) {
  case Verification::pinned: return "pinned";
  case Verification::upstream_checksum: return "upstream-checksum";
  case Verification::unpinned: return "unpinned";
  }
  return "?";
}

std::string to_string(RowStatus s)
{
  switch (s) {
  case RowStatus::default_row: return "default";
  case RowStatus::supported: return "supported";
  case RowStatus::preview: return "preview";
  case RowStatus::legacy: return "legacy";
  }
  return "?";
}

std::string Artifact::file_name() const
{
  std::string path = url.substr(0, url.find_first_of("?#"));
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

const Component* Row::component(const std::string& name) const
{
  for (const auto& c : components) {
    if (c.name == name) {
      return &c;
    }
  }
  return nullptr;
}

const Artifact* Row::artifact(const std::string& name) const
{
  for (const auto& a : artifacts) {
    if (a.name == name) {
      return &a;
    }
  }
  return nullptr;
}

const Row* Matrix::find(const std::string& id) const
{
  for (const auto& r : rows) {
    if (r.id == id) {
      return &r;
    }
  }
  return nullptr;
}

const Row* Matrix::for_kubernetes(const Version& minor) const
{
  for (const auto& r : rows) {
    if (r.kubernetes.major == minor.major && r.kubernetes.minor == minor.minor) {
      return &r;
    }
  }
  return nullptr;
}

const Row& Matrix::default_() const
{
  return *find(default_row); // load_matrix guarantees it exists
}

const std::vector<std::string>& component_names()
{
  static const std::vector<std::string> names{"containerd", "runc",  "cniPlugins",  "crictl",    "pause",
                                              "calico",     "flannel", "openebs",   "istio",     "certManager",
                                              "pipelines",  "argoWorkflows", "kustomize"};
  return names;
}

namespace {

namespace grammar = config::grammar;

// Adds "<path>: <value> <what is wrong>" at the value's position when `ok` refused it; returns whether
// it passed.
bool require(yamlio::Problems& problems, yamlio::Positions& positions, const std::string& path, const std::string& value,
             const Status& ok)
{
  if (ok) {
    return true;
  }
  problems.add(positions[path], fmt::format("{}: {} {}", path, grammar::quoted(value), ok.error().message), ok.error().fix);
  return false;
}

// Reads "key: '<constraint>'" into `out`, adding a positioned problem when it does not parse.
void read_constraint(MapReader& r, yamlio::Problems& problems, yamlio::Positions& positions, const std::string& key,
                     Constraint& out)
{
  std::string text;
  if (r.str(key, text)) {
    auto c = Constraint::parse(text);
    if (!c) {
      problems.add(positions[r.path() + "." + key], fmt::format("{}.{}: {}", r.path(), key, c.error().message), c.error().fix);
    } else {
      out = *c;
    }
  }
}

void read_version(MapReader& r, yamlio::Problems& problems, yamlio::Positions& positions, const std::string& key,
                  Version& out, Need need)
{
  std::string text;
  if (r.str(key, text, need) && require(problems, positions, r.path() + "." + key, text, grammar::version(text))) {
    auto v = Version::parse(text);
    if (!v) {
      problems.add(positions[r.path() + "." + key], fmt::format("{}.{}: {}", r.path(), key, v.error().message),
                   "quote versions and write them like \"1.36.4\"");
    } else {
      out = *v;
    }
  }
}

void read_artifact(yamlio::Problems& problems, yamlio::Positions& positions, const YAML::Node& node, const std::string& path,
                   Row& row)
{
  MapReader r(problems, positions, node, path);
  if (!r.valid()) {
    return;
  }
  Artifact a;
  a.where = positions[path];
  // The name is a directory of a bundle; the URL's last segment the file's name in it (both go into
  // paths and remote commands); the URL is fetched.
  if (r.str("name", a.name, Need::required)) {
    require(problems, positions, path + ".name", a.name, grammar::matrix_id(a.name));
  }
  if (r.str("url", a.url, Need::required) && require(problems, positions, path + ".url", a.url, grammar::artifact_url(a.url))) {
    if (auto ok = grammar::file_name(a.file_name()); !ok) {
      problems.add(positions[path + ".url"], fmt::format("{}.url: the file name {} {}", path, grammar::quoted(a.file_name()), ok.error().message),
                   "the URL must end in the artifact's file name");
    }
  }
  const bool has_sha = r.str("sha256", a.sha256);
  const bool has_checksum_url = r.str("checksumUrl", a.checksum_url);
  const bool has_unpinned = r.str("unpinned", a.unpinned_reason);
  if (int(has_sha) + int(has_checksum_url) + int(has_unpinned) != 1) {
    problems.add(a.where, fmt::format("{}: artifact '{}' needs exactly one of sha256, checksumUrl or unpinned", path, a.name),
                 "pin its sha256 when the project publishes one; else name the upstream checksum file; else say why it is unpinned");
  }
  if (has_sha) {
    a.verification = Verification::pinned;
    require(problems, positions, path + ".sha256", a.sha256, grammar::sha256_hex(a.sha256));
  } else if (has_checksum_url) {
    a.verification = Verification::upstream_checksum;
    require(problems, positions, path + ".checksumUrl", a.checksum_url, grammar::artifact_url(a.checksum_url));
  } else {
    a.verification = Verification::unpinned;
    if (has_unpinned) {
      require(problems, positions, path + ".unpinned", a.unpinned_reason, grammar::text_line(a.unpinned_reason)); // shown only
    }
  }
  r.finish();
  if (row.artifact(a.name) != nullptr) {
    problems.add(positions[path + ".name"], fmt::format("{}.name: '{}' is listed twice in row {}", path, a.name, row.id));
  }
  row.artifacts.push_back(std::move(a));
}

void read_row(yamlio::Problems& problems, yamlio::Positions& positions, const YAML::Node& node, const std::string& path,
              Matrix& m)
{
  MapReader r(problems, positions, node, path);
  if (!r.valid()) {
    return;
  }
  Row row;
  row.where = positions[path];
  if (r.str("id", row.id, Need::required)) {
    if (require(problems, positions, path + ".id", row.id, grammar::matrix_id(row.id)) && m.find(row.id) != nullptr) {
      problems.add(positions[path + ".id"], fmt::format("{}.id: '{}' is used twice", path, row.id), "row ids are unique");
    }
  }
  r.choice<RowStatus>("status", row.status,
                      {{"default", RowStatus::default_row}, {"supported", RowStatus::supported},
                       {"preview", RowStatus::preview}, {"legacy", RowStatus::legacy}},
                      Need::required);
  if (r.str("endOfLife", row.end_of_life)) {
    require(problems, positions, path + ".endOfLife", row.end_of_life, grammar::date(row.end_of_life));
  }
  read_version(r, problems, positions, "kubernetes", row.kubernetes, Need::required);
  if (r.str("kubeadmApi", row.kubeadm_api, Need::required) && row.kubeadm_api != "kubeadm.k8s.io/v1beta4") {
    problems.add(positions[path + ".kubeadmApi"], fmt::format("{}.kubeadmApi: '{}' is not one mlplat writes", path, row.kubeadm_api),
                 "use kubeadm.k8s.io/v1beta4 (v1beta3 is gone in kubeadm 1.37)");
  }
  r.integer("containerdConfigVersion", row.containerd_config_version, 2, 3, Need::required);
  if (r.string_list("profiles", row.profiles, Need::required)) {
    for (const auto& p : row.profiles) {
      if (std::find(config::profiles().begin(), config::profiles().end(), p) == config::profiles().end()) {
        problems.add(positions[path + ".profiles"], fmt::format("{}.profiles: '{}' is not a profile", path, p),
                     fmt::format("use {}", text::join(config::profiles(), ", ")));
      }
    }
  }
  r.sub(
    "components",
    [&](MapReader& cr) {
      for (const auto& name : component_names()) {
        cr.sub(name, [&](MapReader& one) {
          Component c;
          c.name = name;
          c.where = positions[one.path()];
          read_version(one, problems, positions, "version", c.version, Need::required);
          read_constraint(one, problems, positions, "accepts", c.accepts);
          read_constraint(one, problems, positions, "kubernetes", c.kubernetes);
          row.components.push_back(std::move(c));
        });
      }
    },
    Need::required);
  r.list("artifacts", [&](const YAML::Node& n, const std::string& p) { read_artifact(problems, positions, n, p, row); },
         Need::required);
  r.list("kustomizeSources", [&](const YAML::Node& n, const std::string& p) {
    MapReader kr(problems, positions, n, p);
    if (!kr.valid()) {
      return;
    }
    KustomizeSource s;
    // repo@ref names a remote base the kustomizations are matched against; root is a directory
    // joined to the extracted archive's path.
    if (kr.str("repo", s.repo, Need::required)) {
      require(problems, positions, p + ".repo", s.repo, grammar::repository(s.repo));
    }
    if (kr.str("ref", s.ref, Need::required)) {
      require(problems, positions, p + ".ref", s.ref, grammar::git_ref(s.ref));
    }
    if (kr.str("root", s.root, Need::required)) {
      require(problems, positions, p + ".root", s.root, grammar::file_name(s.root));
    }
    if (kr.str("artifact", s.artifact, Need::required) && row.artifact(s.artifact) == nullptr) {
      problems.add(positions[p + ".artifact"], fmt::format("{}.artifact: row {} has no artifact '{}'", p, row.id, s.artifact),
                   "name one of the row's artifacts (a .tar.gz of the repository at that ref)");
    }
    kr.finish();
    row.kustomize_sources.push_back(std::move(s));
  });
  // Images are pulled, rewritten to mirrors and written into rendered manifests.
  if (r.string_list("images", row.images, Need::required)) {
    for (size_t i = 0; i < row.images.size(); ++i) {
      require(problems, positions, fmt::format("{}.images[{}]", path, i), row.images[i], grammar::image_reference(row.images[i]));
    }
  }
  r.finish();

  // A row that is offered as supported must be supported by each of its components' own projects.
  if (row.status != RowStatus::preview && row.kubernetes.major != 0) {
    for (const auto& c : row.components) {
      if (!c.kubernetes.empty() && !c.kubernetes.admits(row.kubernetes)) {
        problems.add(c.where,
                     fmt::format("{}.components.{}: {} {} supports Kubernetes {}, not this row's {}", path, c.name, c.name,
                                 c.version.str(), c.kubernetes.text, row.kubernetes.str()),
                     "pick a release of it that lists this Kubernetes, or mark the row 'status: preview'");
      }
    }
  }
  if (!row.id.empty()) {
    m.rows.push_back(std::move(row));
  }
}

} // namespace

Result<Matrix> load_matrix(const std::string& text, const std::string& file_name)
{
  yamlio::Problems problems{file_name, {}};
  yamlio::Positions positions;
  Matrix m;
  m.source = file_name;
  const YAML::Node root = yamlio::parse(text, problems, "a matrix needs apiVersion, kind, defaultRow and rows");
  if (!root.IsDefined() || root.IsNull()) {
    TRY(problems.to_status());
  }
  MapReader top(problems, positions, root, "");
  yamlio::read_header(top, problems, positions, config::k_api_version, "CompatibilityMatrix", "a compatibility matrix");
  if (top.str("verified", m.verified, Need::required)) {
    require(problems, positions, "verified", m.verified, grammar::date(m.verified));
  }
  top.str("defaultRow", m.default_row, Need::required); // must name a row (below)
  if (top.str("arch", m.arch, Need::required) && m.arch != "amd64" && m.arch != "arm64") {
    problems.add(positions["arch"], fmt::format("arch: '{}' is not amd64 or arm64", m.arch));
  }
  top.sub(
    "hostOS",
    [&](MapReader& r) {
      if (r.str("kernelMinimum", m.kernel_minimum, Need::required)) {
        require(problems, positions, "hostOS.kernelMinimum", m.kernel_minimum, grammar::version(m.kernel_minimum));
      }
      // Compared with the hosts' os-release and printed: data only, one line each.
      if (r.string_list("supported", m.supported_os, Need::required)) {
        for (size_t i = 0; i < m.supported_os.size(); ++i) {
          require(problems, positions, fmt::format("hostOS.supported[{}]", i), m.supported_os[i], grammar::text_line(m.supported_os[i]));
        }
      }
    },
    Need::required);
  top.list("rows", [&](const YAML::Node& n, const std::string& p) { read_row(problems, positions, n, p, m); }, Need::required);
  top.finish();
  if (!m.default_row.empty() && m.find(m.default_row) == nullptr && problems.list.empty()) {
    std::vector<std::string> ids;
    for (const auto& r : m.rows) {
      ids.push_back(r.id);
    }
    yamlio::add_choice_error(problems, YAML::Mark(), "defaultRow", m.default_row, ids);
    problems.list.back().where = positions["defaultRow"];
  }
  std::set<std::string> minors;
  for (const auto& r : m.rows) {
    if (!minors.insert(fmt::format("{}.{}", r.kubernetes.major, r.kubernetes.minor)).second) {
      problems.add(r.where, fmt::format("row {}: another row already has Kubernetes {}.{}", r.id, r.kubernetes.major, r.kubernetes.minor),
                   "one row per Kubernetes minor");
    }
  }
  TRY(problems.to_status());
  return m;
}

namespace {
std::mutex g_file_mutex;
std::string g_matrix_file;
} // namespace

void set_matrix_file(std::string path)
{
  std::lock_guard lock(g_file_mutex);
  g_matrix_file = std::move(path);
}

Result<Matrix> load_active_matrix()
{
  std::string file;
  {
    std::lock_guard lock(g_file_mutex);
    file = g_matrix_file;
  }
  if (!file.empty()) {
    TRY_ASSIGN(const std::string text, fs::read_file(file));
    return load_matrix(text, file);
  }
  TRY_ASSIGN(const std::string text, assets::read("manifests/matrix.yaml"));
  return load_matrix(text, "manifests/matrix.yaml");
}

} // namespace mlplat::compat
