// Bundles end to end: created by the mlplat binary from a test mirror (a real HTTP server on
// loopback), verified and listed; pushed to a testbed host and checked there; fetched by another
// testbed host from a mirror on the testbed's bridge; and a kustomize overlay whose remote base the
// bundle carries built by a real kubectl with no network.
#include "support/catch.hpp"
#include "support/http_server.hpp"

#include "bundle/bundle.hpp"
#include "bundle/kustomize.hpp"
#include "compat/gate.hpp"
#include "integration/testbed.hpp"
#include "util/fs.hpp"
#include "util/sha256.hpp"

#include <nlohmann/json.hpp>

#include <random>

using namespace mlplat;
using namespace std::chrono_literals;
namespace sfs = std::filesystem;

namespace {

const char* k_fixtures = MLPLAT_SOURCE_DIR "/tests/fixtures/kustomize";

ProcessResult run(std::vector<std::string> argv, std::chrono::seconds deadline = 120s)
{
  auto r = run_process(argv, deadline);
  REQUIRE(r);
  return *r;
}

ProcessResult mlplat_run(std::vector<std::string> args)
{
  args.insert(args.begin(), MLPLAT_BINARY);
  return run(args);
}

std::string random_bytes(size_t n, unsigned seed)
{
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) {
    c = char(rng());
  }
  return s;
}

// A mirror laid out like upstream (host/path) with stand-in artifacts, and a matrix naming them.
struct Mirror {
  std::string top;
  std::string www;
  std::string matrix;
  std::string argo_sha;
  std::string key;      // an SSH key made at test time that signs the bundles
  std::string allowed;  // the allowed signers file naming it for k_signer
};

const char* const k_signer = "bundles@mlplat.test";

Mirror make_mirror(const std::string& name, bool wrong_pin = false)
{
  Mirror m;
  m.top = testbed::temp_dir("bundle-" + name);
  m.www = m.top + "/www";
  const std::string rel = m.www + "/dl.k8s.io/release/v1.36.4/bin/linux/amd64";
  sfs::create_directories(rel);
  const std::string kubeadm = random_bytes(2 << 20, 1);
  REQUIRE(fs::write_file_atomic(rel + "/kubeadm", kubeadm, 0755));
  REQUIRE(fs::write_file_atomic(rel + "/kubeadm.sha256", sha256_hex(kubeadm), 0644));
  // GitHub tag archives of the stand-in manifests
  const std::string stage = m.top + "/stage";
  sfs::create_directories(stage);
  sfs::copy(std::string(k_fixtures) + "/pipelines-standin", stage + "/pipelines-2.17.0", sfs::copy_options::recursive);
  sfs::copy(std::string(k_fixtures) + "/argo-workflows-standin", stage + "/argo-workflows-4.0.5", sfs::copy_options::recursive);
  const std::string kfp_dir = m.www + "/github.com/kubeflow/pipelines/archive/refs/tags";
  const std::string argo_dir = m.www + "/github.com/argoproj/argo-workflows/archive/refs/tags";
  sfs::create_directories(kfp_dir);
  sfs::create_directories(argo_dir);
  REQUIRE(run({"tar", "-C", stage, "-czf", kfp_dir + "/2.17.0.tar.gz", "pipelines-2.17.0"}).ok());
  REQUIRE(run({"tar", "-C", stage, "-czf", argo_dir + "/v4.0.5.tar.gz", "argo-workflows-4.0.5"}).ok());
  m.argo_sha = *sha256_file_hex(argo_dir + "/v4.0.5.tar.gz");
  const std::string pin = wrong_pin ? std::string(64, '0') : m.argo_sha;
  const std::string matrix = R"(apiVersion: mlplat.dev/v1alpha1
kind: CompatibilityMatrix
verified: "2026-11-22"
defaultRow: test-1.36
arch: amd64
hostOS: {kernelMinimum: "4.15", supported: ["debian 12"]}
rows:
  - id: test-1.36
    status: default
    kubernetes: "1.36.4"
    kubeadmApi: kubeadm.k8s.io/v1beta4
    containerdConfigVersion: 3
    profiles: [onprem]
    components:
      pipelines: {version: "2.17.0"}
      argoWorkflows: {version: "4.0.5"}
      kustomize: {version: "5.8.1", accepts: ">=5.2.1"}
    artifacts:
      - name: kubeadm
        url: https://dl.k8s.io/release/v1.36.4/bin/linux/amd64/kubeadm
        checksumUrl: https://dl.k8s.io/release/v1.36.4/bin/linux/amd64/kubeadm.sha256
      - name: argo-workflows-source
        url: https://github.com/argoproj/argo-workflows/archive/refs/tags/v4.0.5.tar.gz
        sha256: )" + pin + R"(
      - name: pipelines-source
        url: https://github.com/kubeflow/pipelines/archive/refs/tags/2.17.0.tar.gz
        unpinned: GitHub source archives have no published checksum
    kustomizeSources:
      - {repo: github.com/argoproj/argo-workflows, ref: v4.0.5, artifact: argo-workflows-source, root: argo-workflows-4.0.5}
    images: [quay.io/argoproj/workflow-controller:v4.0.5, registry.k8s.io/pause:3.10.2]
)";
  m.matrix = m.top + "/matrix.yaml";
  REQUIRE(fs::write_file_atomic(m.matrix, matrix, 0644));
  m.key = m.top + "/signer";
  m.allowed = m.top + "/allowed_signers";
  REQUIRE(run({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", k_signer, "-f", m.key}).ok());
  REQUIRE(fs::write_file_atomic(m.allowed, std::string(k_signer) + " " + *fs::read_file(m.key + ".pub"), 0644));
  return m;
}

// Runs `script` with sh on testbed host node-n (as root, in its namespaces).
ProcessResult on_host(int n, const std::string& script)
{
  return run({MLPLAT_TESTBED_SCRIPT, "exec", "node-" + std::to_string(n), "sh", "-c", script});
}

bool contains(const std::string& haystack, const std::string& needle)
{
  return haystack.find(needle) != std::string::npos;
}

// `mlplat bundle verify` of `bundle` with the mirror's matrix and its signer.
ProcessResult verify_signed(const Mirror& m, const std::string& bundle)
{
  return mlplat_run({"--matrix", m.matrix, "bundle", "verify", bundle, "--allowed-signers", m.allowed, "--signer", k_signer});
}

} // namespace

TEST_CASE("bundle create from a test mirror, verify and list, unpinned refused unless accepted, tampering detected", "[bundle]")
{
  auto m = make_mirror("create");
  testing::HttpServer server(m.www);
  const std::string out = m.top + "/b.tar.gz";
  // An unpinned artifact is never taken silently: refused before any download.
  auto refused = mlplat_run({"bundle", "create", "--matrix", m.matrix, "--base-url", server.url(), "-o", out});
  CHECK(refused.exit_code == 2);
  CHECK(contains(refused.err, "--accept-unpinned pipelines-source"));
  CHECK(server.requests().empty());
  CHECK_FALSE(sfs::exists(out));

  auto created = mlplat_run({"bundle", "create", "--matrix", m.matrix, "--base-url", server.url(), "-o", out,
                             "--accept-unpinned", "pipelines-source", "--sign-key", m.key});
  INFO(created.err);
  REQUIRE(created.exit_code == 0);
  CHECK(sfs::exists(out));
  CHECK_FALSE(sfs::exists(out + ".partial"));
  for (const auto& r : server.requests()) {
    CHECK(r.status == 200); // everything came from the mirror
  }

  CHECK(verify_signed(m, out).exit_code == 0);
  auto listed = mlplat_run({"bundle", "list", out, "--output", "json"});
  REQUIRE(listed.exit_code == 0);
  const auto bom = nlohmann::json::parse(listed.out);
  CHECK(bom["row"] == "test-1.36");
  std::map<std::string, std::string> how;
  for (const auto& a : bom["artifacts"]) {
    how[a["name"]] = a["verification"];
  }
  CHECK(how["kubeadm"] == "upstream-checksum");
  CHECK(how["argo-workflows-source"] == "pinned");
  CHECK(how["pipelines-source"] == "first-download");
  CHECK(bom["images"].size() == 2);

  // The same as a directory; one changed byte fails verification, naming the file.
  const std::string dir = m.top + "/bdir";
  REQUIRE(mlplat_run({"bundle", "create", "--matrix", m.matrix, "--base-url", server.url(), "-o", dir,
                      "--accept-unpinned", "all", "--sign-key", m.key}).exit_code == 0);
  CHECK(verify_signed(m, dir).exit_code == 0);
  const std::string kubeadm = dir + "/files/kubeadm/kubeadm";
  std::string bytes = *fs::read_file(kubeadm);
  bytes[1000] ^= 1;
  REQUIRE(fs::write_file_atomic(kubeadm, bytes, 0755));
  auto bad = verify_signed(m, dir);
  CHECK(bad.exit_code == 1);
  CHECK(contains(bad.err, "kubeadm: files/kubeadm/kubeadm has sha256"));
}

TEST_CASE("bundle create refuses a file whose sha256 is not the pinned one and leaves no bundle", "[bundle]")
{
  auto m = make_mirror("wrongpin", true);
  testing::HttpServer server(m.www);
  const std::string out = m.top + "/b.tar.zst";
  auto r = mlplat_run({"bundle", "create", "--matrix", m.matrix, "--base-url", server.url(), "-o", out, "--accept-unpinned", "all"});
  CHECK(r.exit_code == 1);
  CHECK(contains(r.err, "argo-workflows-source: sha256 mismatch"));
  CHECK_FALSE(sfs::exists(out));
  CHECK_FALSE(sfs::exists(out + ".partial/files/argo-workflows-source/v4.0.5.tar.gz"));
}

namespace {

// A bundle directory made through the library (the CLI path is tested above).
bundle::Bom library_bundle(const Mirror& m, const std::string& base_url, const std::string& dir)
{
  auto text = fs::read_file(m.matrix);
  auto matrix = compat::load_matrix(*text, m.matrix);
  REQUIRE(matrix);
  bundle::CreateOptions o;
  o.output = dir;
  o.fetch.base_url = base_url;
  o.fetch.progress = Terminal::no;
  o.accept_unpinned = {"all"};
  auto bom = bundle::create(*matrix, o);
  INFO((bom ? "" : bom.error().render()));
  REQUIRE(bom);
  return *bom;
}

} // namespace

TEST_CASE("a bundle is pushed to a testbed host and verified there, another host fetches it from a mirror", "[bundle][testbed]")
{
  auto m = make_mirror("push");
  const std::string dir = m.top + "/bundle";
  bundle::Bom bom;
  {
    testing::HttpServer server(m.www);
    bom = library_bundle(m, server.url(), dir);
  }
  const std::string remote = "/var/lib/mlplat/bundle/" + bom.row;
  transport::FleetOptions fo;
  {
    transport::SshFleet fleet({testbed::endpoint(79)}, fo);
    on_host(79, "rm -rf /var/lib/mlplat");
    const auto pushed = bundle::push(fleet, dir, bom, remote);
    INFO((pushed[0] ? "" : pushed[0].error().render()));
    REQUIRE(pushed[0]);
    // On the host itself: every file there, with the bill of materials' sha256.
    const auto sums = on_host(79, "cd " + remote + " && sha256sum files/*/*");
    REQUIRE(sums.ok());
    for (const auto& a : bom.artifacts) {
      CHECK(contains(sums.out, a.sha256 + "  " + a.file));
    }
    // A file changed on the host is caught by the host's own check.
    on_host(79, "echo x >> " + remote + "/files/kubeadm/kubeadm");
    const auto recheck = on_host(79, "cd " + remote + " && sha256sum --check --quiet SHA256SUMS");
    CHECK_FALSE(recheck.ok());
  }
  {
    // Large clusters: the hosts fetch from a mirror (here the bundle directory served on the bridge).
    testing::HttpServer mirror(dir, testbed::net() + ".1");
    transport::SshFleet fleet({testbed::endpoint(80)}, fo);
    on_host(80, "rm -rf /var/lib/mlplat");
    const auto fetched = bundle::fetch_on_hosts(fleet, bom, mirror.url(), remote);
    INFO((fetched[0] ? "" : fetched[0].error().render()));
    REQUIRE(fetched[0]);
    CHECK(mirror.requests().size() == bom.artifacts.size());
    const auto check = on_host(80, "cd " + remote + " && sha256sum --check --strict SHA256SUMS");
    CHECK(check.ok());
    // A second run finds the files in place and fetches nothing.
    REQUIRE(bundle::fetch_on_hosts(fleet, bom, mirror.url(), remote)[0]);
    CHECK(mirror.requests().size() == bom.artifacts.size());
  }
}

TEST_CASE("a kustomize overlay whose remote base the bundle carries builds with no network", "[bundle][kustomize]")
{
  auto m = make_mirror("kustomize");
  const std::string dir = m.top + "/bundle";
  bundle::Bom bom;
  {
    testing::HttpServer server(m.www);
    bom = library_bundle(m, server.url(), dir);
  }
  // The real kubectl's kustomize must be one the row accepts (the gate the pipelines stage runs).
  const auto version = run({"kubectl", "version", "--client", "-o", "json"});
  REQUIRE(version.ok());
  const auto kustomize = compat::Version::parse(nlohmann::json::parse(version.out)["kustomizeVersion"].get<std::string>());
  REQUIRE(kustomize);
  auto matrix = compat::load_matrix(*fs::read_file(m.matrix), m.matrix);
  REQUIRE(matrix);
  compat::LiveVersions live;
  live.apiserver = compat::Version::parse("1.36.4").value();
  live.kustomize = *kustomize;
  INFO(compat::render(compat::check_live(matrix->default_(), compat::Stage::pipelines, live), true));
  REQUIRE(compat::check_live(matrix->default_(), compat::Stage::pipelines, live).passed());

  const std::string work = m.top + "/work";
  REQUIRE(bundle::extract_artifact(dir, bom, "pipelines-source", work));
  const std::string overlay = work + "/pipelines-2.17.0/manifests/kustomize/env/platform-agnostic";
  // Without vendoring, the build needs the network, and has none here: it fails.
  const auto offline = run({"unshare", "--net", "kubectl", "kustomize", overlay});
  CHECK_FALSE(offline.ok());

  auto rewritten = bundle::vendor_remote_bases(work + "/pipelines-2.17.0", dir, bom, work + "/vendor");
  INFO((rewritten ? "" : rewritten.error().render()));
  REQUIRE(rewritten);
  CHECK(*rewritten == 2);  // Argo's workflow-controller and its CRDs
  const auto built = run({"unshare", "--net", "kubectl", "kustomize", overlay});
  INFO(built.err);
  REQUIRE(built.ok());
  CHECK(contains(built.out, "name: workflow-controller"));
  CHECK(contains(built.out, "image: quay.io/argoproj/workflow-controller:v4.0.5"));
  CHECK(contains(built.out, "name: ml-pipeline-ui"));
  CHECK(contains(built.out, "namespace: kubeflow"));

  // A remote base the bundle does not carry is an error naming the file and line, not a download.
  const std::string extra = work + "/pipelines-2.17.0/manifests/kustomize/env/extra";
  sfs::create_directories(extra);
  REQUIRE(fs::write_file_atomic(extra + "/kustomization.yaml",
                                "resources:\n  - ../platform-agnostic\n  - https://github.com/kubeflow/manifests/common/istio?ref=v1.11.0\n",
                                0644));
  auto unknown = bundle::vendor_remote_bases(work + "/pipelines-2.17.0", dir, bom, work + "/vendor2");
  REQUIRE_FALSE(unknown);
  CHECK(contains(unknown.error().message, extra + "/kustomization.yaml:3:5: resources 'https://github.com/kubeflow/manifests"));
  CHECK(contains(unknown.error().fix, "github.com/argoproj/argo-workflows@v4.0.5"));
}

TEST_CASE("remote kustomize references are recognised in their usual spellings", "[bundle][kustomize]")
{
  auto a = bundle::parse_remote("https://github.com/argoproj/argo-workflows/manifests/base?ref=v4.0.5&timeout=60s");
  REQUIRE(a);
  CHECK(a->repo == "github.com/argoproj/argo-workflows");
  CHECK(a->path == "manifests/base");
  CHECK(a->ref == "v4.0.5");
  auto b = bundle::parse_remote("github.com/argoproj/argo-workflows//manifests/base/?ref=v4.0.5");
  REQUIRE(b);
  CHECK(b->path == "manifests/base");
  auto c = bundle::parse_remote("git@github.com:argoproj/argo-workflows.git/manifests?ref=v4.0.5");
  REQUIRE(c);
  CHECK(c->repo == "github.com/argoproj/argo-workflows");
  CHECK_FALSE(bundle::parse_remote("../../base"));
  CHECK_FALSE(bundle::parse_remote("workflow-controller.yaml"));
  CHECK(bundle::parse_remote("https://example.com/x.yaml")->repo == "https://example.com/x.yaml");
}
