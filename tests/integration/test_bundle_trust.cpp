// Bundle trust, with the mlplat binary and a test mirror on loopback (no testbed): a bill of
// materials naming a file outside the bundle's layout, a tampered bundle re-hashed to match (its
// bundle.json and SHA256SUMS updated) refused for the matrix's pinned sha256 and for its signature,
// and the operator's acceptance of an unsigned bundle by its bill of materials' sha256.
#include "support/catch.hpp"
#include "support/cli.hpp"
#include "support/http_server.hpp"

#include "util/fs.hpp"
#include "util/process.hpp"
#include "util/sha256.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <random>
#include <unistd.h>

using namespace mlplat;
using namespace std::chrono_literals;
namespace sfs = std::filesystem;

namespace {

using testing::contains;
using testing::mlplat_run;
using testing::run;

std::string random_bytes(size_t n, unsigned seed)
{
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) {
    c = char(rng());
  }
  return s;
}

std::string temp_dir(const std::string& name)
{
  return testing::temp_dir("trust", name);
}

// An SSH key made at test time, and an allowed signers file naming its public key for `identity`.
struct Signer {
  std::string key;
  std::string allowed;
  std::string identity;
};

Signer make_signer(const std::string& dir, const std::string& name, const std::string& identity)
{
  Signer s{dir + "/" + name, dir + "/" + name + ".allowed", identity};
  const auto made = run({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", identity, "-f", s.key});
  INFO(made.err);
  REQUIRE(made.ok());
  const auto pub = fs::read_file(s.key + ".pub");
  REQUIRE(pub);
  REQUIRE(fs::write_file_atomic(s.allowed, identity + " " + *pub, 0644));
  return s;
}

// A mirror laid out like upstream with three stand-in artifacts, and a matrix whose row pins the
// sha256 of kubeadm and runc (as the built-in matrix pins its artifacts) and takes kubectl's from its
// upstream checksum file.
struct Site {
  std::string top, www, matrix;
  std::string kubeadm_sha;
};

Site make_site(const std::string& name)
{
  Site s;
  s.top = temp_dir(name);
  s.www = s.top + "/www";
  const std::string rel = s.www + "/dl.k8s.io/release/v1.36.4/bin/linux/amd64";
  const std::string runc_dir = s.www + "/github.com/opencontainers/runc/releases/download/v1.3.1";
  sfs::create_directories(rel);
  sfs::create_directories(runc_dir);
  const std::string kubeadm = random_bytes(256 << 10, 1);
  const std::string kubectl = random_bytes(128 << 10, 2);
  const std::string runc = random_bytes(64 << 10, 3);
  REQUIRE(fs::write_file_atomic(rel + "/kubeadm", kubeadm, 0755));
  REQUIRE(fs::write_file_atomic(rel + "/kubectl", kubectl, 0755));
  REQUIRE(fs::write_file_atomic(rel + "/kubectl.sha256", sha256_hex(kubectl), 0644));
  REQUIRE(fs::write_file_atomic(runc_dir + "/runc.amd64", runc, 0755));
  s.kubeadm_sha = sha256_hex(kubeadm);
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
      runc: {version: "1.3.1"}
      calico: {version: "3.32.0"}
    artifacts:
      - name: kubeadm
        url: https://dl.k8s.io/release/v1.36.4/bin/linux/amd64/kubeadm
        sha256: )" + s.kubeadm_sha + R"(
      - name: runc
        url: https://github.com/opencontainers/runc/releases/download/v1.3.1/runc.amd64
        sha256: )" + sha256_hex(runc) + R"(
      - name: kubectl
        url: https://dl.k8s.io/release/v1.36.4/bin/linux/amd64/kubectl
        checksumUrl: https://dl.k8s.io/release/v1.36.4/bin/linux/amd64/kubectl.sha256
    images: [registry.k8s.io/pause:3.10.2]
)";
  s.matrix = s.top + "/matrix.yaml";
  REQUIRE(fs::write_file_atomic(s.matrix, matrix, 0644));
  return s;
}

// A bundle directory of the site's row, signed by `signer` unless it is null.
std::string make_bundle(const Site& s, const std::string& name, const Signer* signer)
{
  testing::HttpServer server(s.www);
  const std::string out = s.top + "/" + name;
  std::vector<std::string> args{"bundle", "create", "--matrix", s.matrix, "--base-url", server.url(), "-o", out};
  if (signer != nullptr) {
    args.insert(args.end(), {"--sign-key", signer->key});
  }
  const auto created = mlplat_run(args);
  INFO(created.err);
  REQUIRE(created.exit_code == 0);
  CHECK(sfs::exists(out + "/bundle.json.sig") == (signer != nullptr));
  return out;
}

ProcessResult verify(const Site& s, const std::string& bundle, const Signer* signer, const std::string& accept = "")
{
  std::vector<std::string> args{"--matrix", s.matrix, "bundle", "verify", bundle};
  if (signer != nullptr) {
    args.insert(args.end(), {"--allowed-signers", signer->allowed, "--signer", signer->identity});
  }
  if (!accept.empty()) {
    args.insert(args.end(), {"--accept-unsigned-bundle", accept});
  }
  return mlplat_run(args);
}

nlohmann::json read_bom(const std::string& bundle)
{
  return nlohmann::json::parse(*fs::read_file(bundle + "/bundle.json"));
}

// Writes `bom` as bundle create does, with a SHA256SUMS to match, as a tamperer would.
void write_bom(const std::string& bundle, const nlohmann::json& bom)
{
  std::string sums;
  for (const auto& a : bom["artifacts"]) {
    sums += a["sha256"].get<std::string>() + "  " + a["file"].get<std::string>() + "\n";
  }
  REQUIRE(fs::write_file_atomic(bundle + "/SHA256SUMS", sums, 0644));
  REQUIRE(fs::write_file_atomic(bundle + "/bundle.json", bom.dump(2) + "\n", 0644));
}

// Changes artifact `name`'s bytes and re-hashes: bundle.json and SHA256SUMS updated to match.
// Returns the new sha256.
std::string tamper(const std::string& bundle, const std::string& name)
{
  auto bom = read_bom(bundle);
  for (auto& a : bom["artifacts"]) {
    if (a["name"] == name) {
      const std::string file = bundle + "/" + a["file"].get<std::string>();
      std::string bytes = *fs::read_file(file);
      bytes.replace(0, 9, "#!/bin/sh");  // "a modified kubeadm"
      REQUIRE(fs::write_file_atomic(file, bytes, 0755));
      a["sha256"] = sha256_hex(bytes);
      a["size"] = bytes.size();
      write_bom(bundle, bom);
      return sha256_hex(bytes);
    }
  }
  FAIL("no artifact " << name);
  return {};
}

void resign(const std::string& bundle, const Signer& signer)
{
  sfs::remove(bundle + "/bundle.json.sig");
  const auto r = run({"ssh-keygen", "-Y", "sign", "-n", "mlplat-bundle", "-f", signer.key, bundle + "/bundle.json"});
  INFO(r.err);
  REQUIRE(r.ok());
}

} // namespace

TEST_CASE("bundle verify refuses a bill of materials whose file name is not of the bundle's layout, naming the entry", "[bundle][trust]")
{
  const auto s = make_site("hostile");
  const auto signer = make_signer(s.top, "release", "release@example.test");
  const auto bundle = make_bundle(s, "b", &signer);
  REQUIRE(verify(s, bundle, &signer).exit_code == 0);
  // The hostile name of the finding: the file moved to match, SHA256SUMS updated, and signed again by
  // the trusted key, so that only the name is wrong.
  const std::string hostile = "files/runc/runc'$(id>&2)'";
  auto bom = read_bom(bundle);
  REQUIRE(bom["artifacts"][1]["name"] == "runc");
  sfs::rename(bundle + "/" + bom["artifacts"][1]["file"].get<std::string>(), bundle + "/" + hostile);
  bom["artifacts"][1]["file"] = hostile;
  write_bom(bundle, bom);
  resign(bundle, signer);
  const auto refused = verify(s, bundle, &signer);
  INFO(refused.err);
  CHECK(refused.exit_code == 1);
  CHECK(contains(refused.err, "bundle.json:"));
  CHECK(contains(refused.err, "artifacts[1] ('runc', file '" + hostile + "')"));
  CHECK(contains(refused.err, "is not [A-Za-z0-9._+-]+"));
  CHECK_FALSE(contains(refused.err, "uid="));  // nothing ran it
  // bundle list reads the same bill of materials and refuses it the same way.
  const auto listed = mlplat_run({"--matrix", s.matrix, "bundle", "list", bundle});
  CHECK(listed.exit_code == 1);
  CHECK(contains(listed.err, "artifacts[1] ('runc'"));

  // Other shapes outside the layout: a path out of the artifact's directory, a directory of another artifact.
  for (const std::string bad : {"files/runc/../../../etc/passwd", "files/kubeadm/runc", "files/runc/sub/runc", "files/runc/.."}) {
    bom["artifacts"][1]["file"] = bad;
    write_bom(bundle, bom);
    const auto r = verify(s, bundle, nullptr);
    INFO(bad << ": " << r.err);
    CHECK(r.exit_code == 1);
    CHECK(contains(r.err, "artifacts[1] ('runc', file '" + bad + "')"));
  }
}

TEST_CASE("bundle verify refuses a SHA256SUMS line outside the bundle's layout, naming its line", "[bundle][trust]")
{
  const auto s = make_site("sums");
  const auto bundle = make_bundle(s, "b", nullptr);
  const std::string sha = *fs::read_file(bundle + "/SHA256SUMS");
  REQUIRE(fs::write_file_atomic(bundle + "/SHA256SUMS", sha + std::string(64, 'a') + "  files/runc/x;id\n", 0644));
  const auto accept = sha256_hex(*fs::read_file(bundle + "/bundle.json"));
  const auto r = verify(s, bundle, nullptr, accept);
  INFO(r.err);
  CHECK(r.exit_code == 1);
  CHECK(contains(r.err, "SHA256SUMS:4: '" + std::string(64, 'a') + "  files/runc/x;id'"));
}

TEST_CASE("a tampered bundle re-hashed to match is refused for the sha256 the matrix pins, naming both digests", "[bundle][trust]")
{
  const auto s = make_site("pinned");
  const auto signer = make_signer(s.top, "release", "release@example.test");
  const auto bundle = make_bundle(s, "b", &signer);
  REQUIRE(verify(s, bundle, &signer).exit_code == 0);
  const std::string changed = tamper(bundle, "kubeadm");
  // Even signed again by the trusted key (a stolen key, or a careless release), and accepted by name:
  // the matrix in the binary's use pins kubeadm.
  resign(bundle, signer);
  const auto refused = verify(s, bundle, &signer);
  INFO(refused.err);
  CHECK(refused.exit_code == 1);
  CHECK(contains(refused.err, "kubeadm: the bundle's file has sha256 " + changed + ", the matrix in use (" + s.matrix + ") pins " +
                                  s.kubeadm_sha));
  CHECK(contains(refused.err, "mlplat bundle create --row test-1.36"));
  sfs::remove(bundle + "/bundle.json.sig");
  const auto accepted_by_name = verify(s, bundle, nullptr, sha256_hex(*fs::read_file(bundle + "/bundle.json")));
  CHECK(accepted_by_name.exit_code == 1);
  CHECK(contains(accepted_by_name.err, "pins " + s.kubeadm_sha));
}

TEST_CASE("a bundle's signature: signed by the allowed signer accepted, re-signed by another key, unsigned, or unchecked refused, "
          "unsigned accepted only by its bill of materials' sha256", "[bundle][trust]")
{
  const auto s = make_site("signature");
  const auto signer = make_signer(s.top, "release", "release@example.test");
  const auto other = make_signer(s.top, "other", "mallory@example.test");

  SECTION("properly signed")
  {
    const auto bundle = make_bundle(s, "b", &signer);
    const auto ok = verify(s, bundle, &signer);
    INFO(ok.err);
    CHECK(ok.exit_code == 0);
    CHECK(contains(ok.err, "signed by 'release@example.test'"));
    // The same as an archive (the signature travels inside it).
    testing::HttpServer server(s.www);
    const std::string archive = s.top + "/b.tar.gz";
    REQUIRE(mlplat_run({"bundle", "create", "--matrix", s.matrix, "--base-url", server.url(), "-o", archive, "--sign-key", signer.key}).exit_code == 0);
    CHECK(verify(s, archive, &signer).exit_code == 0);
    // Signed, but nothing to check it against: refused, saying how to check it.
    const auto unchecked = verify(s, bundle, nullptr);
    CHECK(unchecked.exit_code == 1);
    CHECK(contains(unchecked.err, "is signed, and no allowed signers were given to check it against"));
    // The allowed signers name another identity for the key: refused.
    const auto wrong_id = mlplat_run({"--matrix", s.matrix, "bundle", "verify", bundle, "--allowed-signers", signer.allowed, "--signer",
                                      "someone@example.test"});
    CHECK(wrong_id.exit_code == 1);
  }
  SECTION("tampered (an artifact the matrix does not pin), re-hashed and re-signed by a key not in the allowed signers")
  {
    const auto bundle = make_bundle(s, "b", &signer);
    tamper(bundle, "kubectl");
    resign(bundle, other);
    const auto refused = verify(s, bundle, &signer);
    INFO(refused.err);
    CHECK(refused.exit_code == 1);
    CHECK(contains(refused.err, "bundle.json.sig is not a good signature of bundle.json by 'release@example.test' in " + signer.allowed));
    // Without re-signing, the old signature does not cover the changed bill of materials either.
    const auto bundle2 = make_bundle(s, "b2", &signer);
    tamper(bundle2, "kubectl");
    CHECK(verify(s, bundle2, &signer).exit_code == 1);
  }
  SECTION("unsigned")
  {
    const auto bundle = make_bundle(s, "b", nullptr);
    const std::string sha = sha256_hex(*fs::read_file(bundle + "/bundle.json"));
    const auto refused = verify(s, bundle, &signer);
    INFO(refused.err);
    CHECK(refused.exit_code == 1);
    CHECK(contains(refused.err, "is not signed (no bundle.json.sig)"));
    CHECK(contains(refused.err, "--accept-unsigned-bundle " + sha));
    const auto no_signers = verify(s, bundle, nullptr);
    CHECK(no_signers.exit_code == 1);
    CHECK(contains(no_signers.err, "--accept-unsigned-bundle " + sha));
    // Accepted by name: this bill of materials' sha256, with or without allowed signers.
    const auto accepted = verify(s, bundle, nullptr, sha);
    INFO(accepted.err);
    CHECK(accepted.exit_code == 0);
    CHECK(contains(accepted.err, "accepted by name: bill of materials sha256 " + sha));
    CHECK(verify(s, bundle, &signer, sha).exit_code == 0);
    // The acceptance names one bill of materials: another bundle (here the same one, tampered and
    // re-hashed) is not covered by it.
    tamper(bundle, "kubectl");
    const auto other_bundle = verify(s, bundle, nullptr, sha);
    CHECK(other_bundle.exit_code == 1);
    CHECK(contains(other_bundle.err, "--accept-unsigned-bundle names the bill of materials " + sha));
    // Not a sha256 at all: a usage error.
    CHECK(verify(s, bundle, nullptr, "yes").exit_code == 2);
  }
}

TEST_CASE("bundle create --sign-key refuses a key with a passphrase before any download", "[bundle][trust]")
{
  const auto s = make_site("passphrase");
  const std::string key = s.top + "/locked";
  REQUIRE(run({"ssh-keygen", "-q", "-t", "ed25519", "-N", "secret", "-f", key}).ok());
  testing::HttpServer server(s.www);
  const auto r = mlplat_run({"bundle", "create", "--matrix", s.matrix, "--base-url", server.url(), "-o", s.top + "/b", "--sign-key", key});
  INFO(r.err);
  CHECK(r.exit_code == 2);
  CHECK(contains(r.err, "a key with a passphrase is not supported"));
  CHECK(server.requests().empty());
  CHECK_FALSE(sfs::exists(s.top + "/b"));
}

TEST_CASE("install's prelude (here plan's) checks the bundle against spec.bundle before any connection, and accepted by name it goes on",
          "[bundle][trust]")
{
  const auto s = make_site("install");
  const auto signer = make_signer(s.top, "release", "release@example.test");
  const auto other = make_signer(s.top, "other", "mallory@example.test");
  REQUIRE(run({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", s.top + "/ssh-key"}).ok());
  REQUIRE(fs::write_file_atomic(s.top + "/known_hosts", "", 0644));
  // No host answers there; the bundle is judged before anything connects.
  const std::string file = s.top + "/mlplat.yaml";
  REQUIRE(fs::write_file_atomic(file,
                                "apiVersion: mlplat.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: trust-test\nspec:\n  ssh:\n    user: mlp\n"
                                "    keyPath: " + s.top + "/ssh-key\n    knownHosts: " + s.top + "/known_hosts\n    connectTimeoutSeconds: 2\n"
                                "  hosts:\n    - {name: nowhere, address: 127.0.0.1, role: control-plane}\n"
                                "  pipelines: {enabled: false}\n"
                                "  bundle:\n    allowedSigners: " + signer.allowed + "\n    signer: " + signer.identity + "\n",
                                0644));
  auto plan = [&](const std::string& bundle, const std::string& accept = "") {
    std::vector<std::string> args{"--matrix", s.matrix, "plan", "-c", file, "--state-dir", s.top + "/state", "--bundle", bundle};
    if (!accept.empty()) {
      args.insert(args.end(), {"--accept-unsigned-bundle", accept});
    }
    return mlplat_run(args);
  };
  const auto signed_bundle = make_bundle(s, "signed", &signer);
  const auto good = plan(signed_bundle);
  INFO(good.err);
  CHECK(contains(good.err, "signed by 'release@example.test'"));
  CHECK(contains(good.err, "3 artifacts verified"));

  const auto resigned = make_bundle(s, "resigned", &signer);
  tamper(resigned, "kubectl");
  resign(resigned, other);
  const auto bad = plan(resigned);
  CHECK(bad.exit_code == 1);
  CHECK(contains(bad.err, "is not a good signature of bundle.json by 'release@example.test'"));
  CHECK_FALSE(contains(bad.err, "artifacts verified"));

  const auto unsigned_bundle = make_bundle(s, "unsigned", nullptr);
  const auto refused = plan(unsigned_bundle);
  CHECK(refused.exit_code == 1);
  CHECK(contains(refused.err, "is not signed (no bundle.json.sig)"));
  const std::string sha = sha256_hex(*fs::read_file(unsigned_bundle + "/bundle.json"));
  const auto accepted = plan(unsigned_bundle, sha);
  INFO(accepted.err);
  CHECK(contains(accepted.err, "accepted by name: bill of materials sha256 " + sha));
  CHECK(contains(accepted.err, "3 artifacts verified"));
  // The same acceptance does not cover the signed-by-another-key bundle.
  CHECK(plan(resigned, sha).exit_code == 1);
}
