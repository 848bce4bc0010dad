// The compatibility matrix: parsing errors with positions, the shipped matrix's own consistency, and
// the gates (config, hosts, live cluster, upgrade) against tables of cases.
#include "support/catch.hpp"

#include "compat/gate.hpp"
#include "compat/matrix.hpp"

#include <fstream>
#include <sstream>

using namespace mlplat;
using namespace mlplat::compat;

namespace {

// A small valid matrix; the error tests change one line of it. Line numbers matter below.
const std::string k_matrix = R"(apiVersion: mlplat.dev/v1alpha1
kind: CompatibilityMatrix
verified: "2026-11-22"
defaultRow: k8s-1.36
arch: amd64
hostOS:
  kernelMinimum: "4.15"
  supported: ["debian 12", "ubuntu 24.04"]
rows:
  - id: k8s-1.36
    status: default
    kubernetes: "1.36.4"
    kubeadmApi: kubeadm.k8s.io/v1beta4
    containerdConfigVersion: 3
    profiles: [onprem, gcp, ibm-vpc]
    components:
      containerd: {version: "2.3.4", accepts: ">=2.2.0"}
      calico: {version: "3.32.1", kubernetes: ">=1.34 <=1.36"}
      istio: {version: "1.31.0", kubernetes: ">=1.32 <=1.36"}
      kustomize: {version: "5.8.1", accepts: ">=5.2.1"}
    artifacts:
      - name: kubeadm
        url: https://dl.k8s.io/release/v1.36.4/bin/linux/amd64/kubeadm
        checksumUrl: https://dl.k8s.io/release/v1.36.4/bin/linux/amd64/kubeadm.sha256
      - name: crictl
        url: https://example.invalid/crictl.tar.gz
        sha256: 2e141e5b22cb189c40365a11807d69b76b9b3caced89fac2f4ec879408ce2177
    images: [registry.k8s.io/pause:3.10.2]
  - id: k8s-1.37
    status: preview
    kubernetes: "1.37.1"
    kubeadmApi: kubeadm.k8s.io/v1beta4
    containerdConfigVersion: 3
    profiles: [onprem]
    components:
      containerd: {version: "2.3.4"}
      calico: {version: "3.32.1", kubernetes: ">=1.34 <=1.36"}
      istio: {version: "1.31.0", kubernetes: ">=1.32 <=1.36"}
    artifacts:
      - name: kubeadm
        url: https://dl.k8s.io/release/v1.37.1/bin/linux/amd64/kubeadm
        unpinned: for the test
    images: []
)";

std::string replace(std::string s, const std::string& from, const std::string& to)
{
  const auto pos = s.find(from);
  REQUIRE(pos != std::string::npos);
  return s.replace(pos, from.size(), to);
}

struct Want {
  int line;
  int column;
  std::string message;
};

void expect_error(const std::string& text, const Want& want)
{
  auto m = load_matrix(text, "matrix.yaml");
  REQUIRE_FALSE(m);
  REQUIRE(m.error().code == ErrorCode::config_invalid);
  bool found = false;
  for (const auto& e : m.error().children) {
    INFO(e.render());
    if (e.message.find(want.message) != std::string::npos) {
      found = true;
      REQUIRE(e.where.has_value());
      CHECK(e.where->file == "matrix.yaml");
      CHECK(e.where->line == want.line);
      CHECK(e.where->column == want.column);
    }
  }
  INFO(m.error().render());
  CHECK(found);
}

Matrix test_matrix()
{
  auto m = load_matrix(k_matrix, "matrix.yaml");
  INFO((m ? "" : m.error().render()));
  REQUIRE(m);
  return *m;
}

Version v(const std::string& text)
{
  auto parsed = Version::parse(text);
  REQUIRE(parsed);
  return *parsed;
}

const Finding* find(const GateResult& r, const std::string& rule, Level level)
{
  for (const auto& f : r.findings) {
    if (f.rule == rule && f.level == level) {
      return &f;
    }
  }
  return nullptr;
}

} // namespace

TEST_CASE("the test matrix loads and its rows are found by id and by Kubernetes minor")
{
  const Matrix m = test_matrix();
  CHECK(m.rows.size() == 2);
  CHECK(m.default_().id == "k8s-1.36");
  REQUIRE(m.for_kubernetes(v("1.37")) != nullptr);
  CHECK(m.for_kubernetes(v("1.37"))->status == RowStatus::preview);
  CHECK(m.for_kubernetes(v("1.34")) == nullptr);
  const Artifact* a = m.find("k8s-1.36")->artifact("kubeadm");
  REQUIRE(a != nullptr);
  CHECK(a->verification == Verification::upstream_checksum);
  CHECK(a->file_name() == "kubeadm");
  CHECK(m.find("k8s-1.36")->artifact("crictl")->verification == Verification::pinned);
  CHECK(m.find("k8s-1.37")->artifact("kubeadm")->verification == Verification::unpinned);
}

TEST_CASE("matrix parsing errors carry their line and column")
{
  // unknown key, with did-you-mean
  expect_error(replace(k_matrix, "    kubeadmApi:", "    kubeadmAPI:"), {13, 5, "unknown key 'kubeadmAPI'"});
  // a version that is not one
  expect_error(replace(k_matrix, "kubernetes: \"1.36.4\"", "kubernetes: \"one.36\""), {12, 17, "not a version"});
  // a constraint without operator
  expect_error(replace(k_matrix, "accepts: \">=2.2.0\"", "accepts: \"2.2.0\""), {17, 47, "has no operator"});
  // a bad sha256
  expect_error(replace(k_matrix, "sha256: 2e141e5b", "sha256: XYZ1e5b"), {27, 17, "is not 64 lowercase hex digits"});
  // two ways of verifying one artifact
  expect_error(replace(k_matrix, "        sha256: 2e141e5b", "        unpinned: no\n        sha256: 2e141e5b"),
               {25, 9, "needs exactly one of sha256, checksumUrl or unpinned"});
  // an unknown component
  expect_error(replace(k_matrix, "      istio: {version: \"1.31.0\", kubernetes: \">=1.32 <=1.36\"}\n      kustomize",
                       "      istoi: {version: \"1.31.0\"}\n      kustomize"),
               {19, 7, "unknown key 'istoi'"});
  // a supported row whose component does not list its Kubernetes
  expect_error(replace(k_matrix, "istio: {version: \"1.31.0\", kubernetes: \">=1.32 <=1.36\"}\n      kustomize",
                       "istio: {version: \"1.31.0\", kubernetes: \">=1.32 <=1.35\"}\n      kustomize"),
               {19, 14, "istio 1.31.0 supports Kubernetes >=1.32 <=1.35, not this row's 1.36.4"});
  // a default row that does not exist
  expect_error(replace(k_matrix, "defaultRow: k8s-1.36", "defaultRow: k8s-1.63"), {4, 13, "'k8s-1.63' is not one of k8s-1.36, k8s-1.37"});
  // a duplicate row id
  expect_error(replace(k_matrix, "  - id: k8s-1.37", "  - id: k8s-1.36"), {29, 9, "'k8s-1.36' is used twice"});
  // a bad status
  expect_error(replace(k_matrix, "status: preview", "status: beta"), {30, 13, "'beta' is not one of"});
  // a profile that does not exist
  expect_error(replace(k_matrix, "profiles: [onprem, gcp, ibm-vpc]", "profiles: [onprem, aws]"), {15, 15, "'aws' is not a profile"});
  // a duplicate key (yaml-cpp alone would keep one silently)
  expect_error(replace(k_matrix, "    status: default\n", "    status: default\n    status: supported\n"), {12, 5, "duplicate key 'status'"});
}

TEST_CASE("the shipped matrix loads: 1.36 default, 1.35 supported, 1.37 preview, every artifact verifiable")
{
  std::ifstream in(std::string(MLPLAT_SOURCE_DIR) + "/manifests/matrix.yaml");
  std::stringstream text;
  text << in.rdbuf();
  auto m = load_matrix(text.str(), "manifests/matrix.yaml");
  INFO((m ? "" : m.error().render()));
  REQUIRE(m);
  CHECK(m->default_().kubernetes.minor == 36);
  REQUIRE(m->for_kubernetes(v("1.35")) != nullptr);
  CHECK(m->for_kubernetes(v("1.35"))->status == RowStatus::supported);
  REQUIRE(m->for_kubernetes(v("1.37")) != nullptr);
  CHECK(m->for_kubernetes(v("1.37"))->status == RowStatus::preview);
  for (const auto& row : m->rows) {
    CHECK(row.kubeadm_api == "kubeadm.k8s.io/v1beta4");
    CHECK(row.containerd_config_version == 3);
    CHECK(row.component("containerd")->version.major == 2);
    for (const char* name : {"kubeadm", "kubelet", "kubectl", "containerd", "runc", "cni-plugins", "crictl", "pipelines-source"}) {
      INFO(row.id << " " << name);
      CHECK(row.artifact(name) != nullptr);
    }
    for (const auto& s : row.kustomize_sources) {
      CHECK(row.artifact(s.artifact) != nullptr);
    }
  }
}

namespace {

config::Cluster cluster_with(std::map<std::string, std::string> versions)
{
  config::Cluster c;
  c.name = "t";
  c.versions = std::move(versions);
  return c;
}

} // namespace

TEST_CASE("config gate: rows, requested versions, CNI, preview and component ranges (MAT-001..005)")
{
  const Matrix m = test_matrix();
  SECTION("defaults pass on the default row")
  {
    auto r = check_config(m, cluster_with({}));
    CHECK(r.passed());
    REQUIRE(r.row != nullptr);
    CHECK(r.row->id == "k8s-1.36");
    CHECK(find(r, "MAT-005", Level::pass) != nullptr);
  }
  SECTION("MAT-001: a Kubernetes without row is refused with the rows that exist")
  {
    auto r = check_config(m, cluster_with({{"kubernetes", "1.34"}}));
    CHECK_FALSE(r.passed());
    const Finding* f = find(r, "MAT-001", Level::error);
    REQUIRE(f != nullptr);
    CHECK(f->supported.find("1.36 (k8s-1.36, default)") != std::string::npos);
    auto s = r.to_status();
    REQUIRE_FALSE(s);
    CHECK(s.error().code == ErrorCode::preflight_failed);
    CHECK(s.error().render().find("[MAT-001]") != std::string::npos);
  }
  SECTION("MAT-002: a component version other than the row's is refused, naming the row's")
  {
    auto r = check_config(m, cluster_with({{"kubernetes", "1.36"}, {"istio", "1.30.2"}}));
    const Finding* f = find(r, "MAT-002", Level::error);
    REQUIRE(f != nullptr);
    CHECK(f->subject == "istio");
    CHECK(f->reason == "istio 1.30.2 is requested; row k8s-1.36 installs 1.31.0");
    CHECK(f->supported.find("istio 1.31.0") == 0);
    CHECK(check_config(m, cluster_with({{"istio", "1.31"}})).passed());
    CHECK_FALSE(check_config(m, cluster_with({{"kubernetes", "1.36.2"}})).passed());
  }
  SECTION("MAT-003: a CNI the row does not offer")
  {
    auto c = cluster_with({});
    c.network.cni = config::Cni::flannel;
    const auto r = check_config(m, c);
    const Finding* f = find(r, "MAT-003", Level::error);
    REQUIRE(f != nullptr);
    CHECK(f->supported == "spec.network.cni: calico");
  }
  SECTION("MAT-012: a row not offered on the cluster's profile")
  {
    auto c = cluster_with({{"kubernetes", "1.37"}});
    c.profile = "gcp";
    const auto r = check_config(m, c, GateOptions{true});
    const Finding* f = find(r, "MAT-012", Level::error);
    REQUIRE(f != nullptr);
    CHECK(f->reason == "row k8s-1.37 is not offered on profile gcp (it is on onprem)");
    CHECK(f->supported == "Kubernetes 1.36 (k8s-1.36)");
  }
  SECTION("MAT-004/005: a preview row is refused unless allowed, with the components that do not list it")
  {
    auto r = check_config(m, cluster_with({{"kubernetes", "1.37"}}));
    CHECK_FALSE(r.passed());
    REQUIRE(find(r, "MAT-004", Level::error) != nullptr);
    CHECK(find(r, "MAT-004", Level::error)->supported.find("Kubernetes 1.36") == 0);
    const Finding* istio = nullptr;
    for (const auto& f : r.findings) {
      if (f.rule == "MAT-005" && f.subject == "istio") {
        istio = &f;
      }
    }
    REQUIRE(istio != nullptr);
    CHECK(istio->level == Level::error);
    CHECK(istio->reason == "istio 1.31.0 supports Kubernetes >=1.32 <=1.36, not 1.37");
    auto allowed = check_config(m, cluster_with({{"kubernetes", "1.37"}}), GateOptions{true});
    CHECK(allowed.passed());
    CHECK(find(allowed, "MAT-004", Level::warning) != nullptr);
  }
}

TEST_CASE("hosts gate: OS, kernel, installed containerd and kubelet (MAT-006..009)")
{
  const Matrix m = test_matrix();
  const Row& row = *m.find("k8s-1.36");
  struct Case {
    HostVersions host;
    std::string rule; // the rule that must refuse, or "" for none
  };
  const std::vector<Case> cases{
    {{"ok", "debian", "12", "6.1.0-18-amd64", "", "", ""}, ""},
    {{"ok-installed", "ubuntu", "24.04", "6.8.0", "2.2.1", "1.36.2", "1.36.4"}, ""},
    {{"centos", "centos", "7", "6.1.0", "", "", ""}, "MAT-006"},
    {{"ubuntu-2404-1", "ubuntu", "24.041", "6.1.0", "", "", ""}, "MAT-006"},
    {{"old-kernel", "debian", "12", "4.9.0-13-amd64", "", "", ""}, "MAT-007"},
    {{"containerd-17", "debian", "12", "6.1.0", "1.7.28", "", ""}, "MAT-008"},
    {{"kubelet-134", "debian", "12", "6.1.0", "", "1.34.2", ""}, "MAT-009"},
    {{"kubeadm-137", "debian", "12", "6.1.0", "", "", "1.37.0"}, "MAT-009"},
  };
  for (const auto& c : cases) {
    auto r = check_hosts(m, row, {c.host});
    INFO(c.host.host << "\n" << render(r, true));
    if (c.rule.empty()) {
      CHECK(r.passed());
    } else {
      CHECK_FALSE(r.passed());
      const Finding* f = find(r, c.rule, Level::error);
      REQUIRE(f != nullptr);
      CHECK(f->subject == c.host.host);
      CHECK_FALSE(f->supported.empty());
    }
  }
}

TEST_CASE("live gate before each stage: API server minor, kubelet and kubectl skew, kustomize (MAT-010, MAT-011)")
{
  const Matrix m = test_matrix();
  const Row& row = *m.find("k8s-1.36");
  LiveVersions good{v("1.36.4"), {{"node-1", v("1.36.4")}, {"node-2", v("1.35.9")}}, v("1.36.0"), v("5.5.0")};
  CHECK(check_live(row, Stage::cni, good).passed());
  CHECK(check_live(row, Stage::pipelines, good).passed());
  // before the cluster exists nothing about it is asked
  CHECK(check_live(row, Stage::kubernetes, LiveVersions{}).passed());

  auto unknown = check_live(row, Stage::cni, LiveVersions{});
  CHECK(find(unknown, "MAT-010", Level::error) != nullptr);

  LiveVersions other = good;
  other.apiserver = v("1.35.9");
  auto r = check_live(row, Stage::ingress, other);
  REQUIRE(find(r, "MAT-010", Level::error) != nullptr);
  CHECK(find(r, "MAT-010", Level::error)->supported.find("1.35") != std::string::npos);

  LiveVersions newer_kubelet = good;
  newer_kubelet.kubelets.push_back({"node-3", v("1.37.0")});
  auto k = check_live(row, Stage::storage, newer_kubelet);
  REQUIRE(find(k, "SKEW-001", Level::error) != nullptr);
  CHECK(find(k, "SKEW-001", Level::error)->subject == "node-3");

  LiveVersions old_kubectl = good;
  old_kubectl.kubectl = v("1.34.1");
  const auto kc = check_live(row, Stage::cni, old_kubectl);
  CHECK(find(kc, "SKEW-002", Level::error) != nullptr);

  LiveVersions old_kustomize = good;
  old_kustomize.kustomize = v("5.0.4");
  auto ku = check_live(row, Stage::pipelines, old_kustomize);
  REQUIRE(find(ku, "MAT-011", Level::error) != nullptr);
  CHECK(find(ku, "MAT-011", Level::error)->reason == "kubectl's kustomize is 5.0.4; row k8s-1.36 needs >=5.2.1");
  // kustomize matters only where manifests are built
  CHECK(check_live(row, Stage::cni, old_kustomize).passed());
}

TEST_CASE("upgrade gate: target row, preview, one minor at a time, no downgrade")
{
  const Matrix m = test_matrix();
  struct Case {
    std::string from, to;
    bool allow_preview;
    std::string refusing_rule;
  };
  const std::vector<Case> cases{
    {"1.35.9", "1.36", false, ""},
    {"1.36.1", "1.36.4", false, ""},
    {"1.34.3", "1.36", false, "SKEW-009"},   // skips a minor
    {"1.36.4", "1.37", false, "MAT-004"},    // preview
    {"1.36.4", "1.37", true, ""},
    {"1.37.1", "1.36", false, "SKEW-009"},   // downgrade
    {"1.36.1", "1.36.3", false, "MAT-002"},  // not the row's patch
    {"1.36.4", "1.38", false, "MAT-001"},    // no row
  };
  for (const auto& c : cases) {
    auto r = check_upgrade(m, v(c.from), v(c.to), GateOptions{c.allow_preview});
    INFO(c.from << " -> " << c.to << "\n" << render(r, true));
    if (c.refusing_rule.empty()) {
      CHECK(r.passed());
    } else {
      CHECK(find(r, c.refusing_rule, Level::error) != nullptr);
    }
  }
}

TEST_CASE("version constraints compare at the precision they are written")
{
  auto c = Constraint::parse(">=1.32 <=1.36");
  REQUIRE(c);
  CHECK(c->admits(v("1.36.9")));
  CHECK(c->admits(v("1.32.0")));
  CHECK_FALSE(c->admits(v("1.37.0")));
  CHECK_FALSE(c->admits(v("1.31.12")));
  auto p = Constraint::parse(">=2.2.0");
  REQUIRE(p);
  CHECK(p->admits(v("2.3.4")));
  CHECK_FALSE(p->admits(v("2.1.9")));
  CHECK_FALSE(Constraint::parse("~1.2"));
  CHECK_FALSE(Constraint::parse(""));
}

TEST_CASE("matrix values are checked against their grammars where they are written", "[matrix][grammar]")
{
  // plain http only to a loopback test mirror
  expect_error(replace(k_matrix, "url: https://example.invalid/crictl.tar.gz", "url: http://example.invalid/crictl.tar.gz"),
               {26, 14, "rows[0].artifacts[1].url: 'http://example.invalid/crictl.tar.gz' is a plain http URL"});
  CHECK(load_matrix(replace(k_matrix, "url: https://example.invalid/crictl.tar.gz", "url: http://127.0.0.1:8080/crictl.tar.gz"), "m.yaml"));
  // a file name that is not one of the bundle's layout
  expect_error(replace(k_matrix, "url: https://example.invalid/crictl.tar.gz", "url: https://example.invalid/files/runc%27"),
               {26, 14, "rows[0].artifacts[1].url: the file name 'runc%27' is not a file name"});
  expect_error(replace(k_matrix, "url: https://example.invalid/crictl.tar.gz", "url: \"https://example.invalid/runc'$(id>&2)'\""),
               {26, 14, "is not an https URL: it contains '''"});
  // a sha256 in capitals, an artifact named ..
  expect_error(replace(k_matrix, "sha256: 2e141e5b", "sha256: 2E141E5B"), {27, 17, "rows[0].artifacts[1].sha256: '2E141E5B"});
  expect_error(replace(k_matrix, "      - name: crictl", "      - name: '..'"), {25, 15, "rows[0].artifacts[1].name: '..' is not an id"});
  // a version with a suffix Version::parse would ignore
  expect_error(replace(k_matrix, "kubernetes: \"1.36.4\"", "kubernetes: \"1.36.4-$(id)\""),
               {12, 17, "rows[0].kubernetes: '1.36.4-$(id)' has a suffix"});
  // images: a tag or digest, the OCI grammar
  expect_error(replace(k_matrix, "images: [registry.k8s.io/pause:3.10.2]", "images: [registry.k8s.io/pause:3.10.2, registry.k8s.io/pause]"),
               {28, 44, "rows[0].images[1]: 'registry.k8s.io/pause' has neither a tag nor a digest"});
  expect_error(replace(k_matrix, "images: [registry.k8s.io/pause:3.10.2]", "images: ['registry.k8s.io/pause:3.10.2;id']"),
               {28, 14, "rows[0].images[0]: 'registry.k8s.io/pause:3.10.2;id' has a tag"});
  CHECK(load_matrix(replace(k_matrix, "images: [registry.k8s.io/pause:3.10.2]",
                            "images: ['registry.k8s.io/pause:3.10.2@sha256:" + std::string(64, 'a') + "', 'my.reg:5000/x/y:1']"), "m.yaml"));
  // kustomize sources: root is a directory name, ref a git ref
  const std::string source = "    kustomizeSources:\n      - {repo: github.com/a/b, ref: v1, artifact: crictl, root: ROOT}\n"
                             "    images: [registry.k8s.io/pause:3.10.2]";
  CHECK(load_matrix(replace(k_matrix, "    images: [registry.k8s.io/pause:3.10.2]", replace(source, "ROOT", "b-1")), "m.yaml"));
  expect_error(replace(k_matrix, "    images: [registry.k8s.io/pause:3.10.2]", replace(source, "ROOT", "'..'")),
               {29, 65, "rows[0].kustomizeSources[0].root: '..' is not a file name"});
  expect_error(replace(k_matrix, "    images: [registry.k8s.io/pause:3.10.2]", replace(replace(source, "ROOT", "b"), "ref: v1", "ref: '../x'")),
               {29, 37, "rows[0].kustomizeSources[0].ref: '../x' is not a git ref"});
  // dates
  expect_error(replace(k_matrix, "verified: \"2026-11-22\"", "verified: \"22.11.2026\""), {3, 11, "verified: '22.11.2026' is not a date"});
}

TEST_CASE("a matrix with an alias bomb, an anchor or too deep a nesting is refused before parsing", "[matrix][yaml]")
{
  std::string bomb = "apiVersion: mlplat.dev/v1alpha1\nkind: CompatibilityMatrix\na: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n";
  for (char level = 'b'; level <= 'i'; ++level) {
    bomb += std::string(1, level) + ": &" + level + " [";
    for (int i = 0; i < 9; ++i) {
      bomb += std::string(i == 0 ? "" : ",") + "*" + static_cast<char>(level - 1);
    }
    bomb += "]\n";
  }
  expect_error(bomb, {3, 4, "a YAML anchor (&a): anchors and aliases are not accepted"});
  expect_error(replace(k_matrix, "arch: amd64", "arch: amd64\nx: " + std::string(80, '[') + std::string(80, ']')),
               {6, 67, "nested more than 64 deep"});
}
