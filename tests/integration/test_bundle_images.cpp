// Container images in bundles, on loopback only (no testbed): Debian's docker-registry with TLS and
// htpasswd as the mirror of a test row's registries, images built at test time; bundle create
// --images with the mlplat binary (archives, digests, resume), bundle verify catching a changed blob
// that SHA256SUMS and bundle.json were updated for, bundle list, wrong credentials, and push_images
// to a second registry with the digests kept.
#include "support/catch.hpp"
#include "support/cli.hpp"
#include "support/http_server.hpp"
#include "support/registry.hpp"

#include "bundle/bundle.hpp"
#include "util/fs.hpp"
#include "util/process.hpp"
#include "util/sha256.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
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

std::string temp_dir(const std::string& name)
{
  return testing::temp_dir("images", name);
}

// The row's images and where the test registry holds them (the mirror keeps the repository path).
struct TestImage {
  std::string ref;   // as the row names it
  std::string path;  // repository path at the registry
  std::string tag;
};

const std::vector<TestImage> k_images = {
  {"registry.example.test/mlplat-test/alpha:v1", "mlplat-test/alpha", "v1"},
  {"quay.example.test/mlplat/beta:v2", "mlplat/beta", "v2"},
  {"docker.io/library/gamma:1.0", "library/gamma", "1.0"},
};

// A mirror of one pinned artifact (served over HTTP on loopback) and a matrix whose row names it and
// the test images.
struct World {
  std::string top;
  std::string www;
  std::string matrix;
};

World make_world(const std::string& name)
{
  World w;
  w.top = temp_dir(name);
  w.www = w.top + "/www";
  const std::string rel = w.www + "/dl.k8s.io/release/v1.36.4/bin/linux/amd64";
  sfs::create_directories(rel);
  std::mt19937 rng(7);
  std::string kubeadm(64 << 10, '\0');
  for (auto& c : kubeadm) {
    c = char(rng());
  }
  REQUIRE(fs::write_file_atomic(rel + "/kubeadm", kubeadm, 0755));
  std::string images;
  for (const auto& i : k_images) {
    images += (images.empty() ? "" : ", ") + i.ref;
  }
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
        sha256: )" + sha256_hex(kubeadm) + R"(
    kustomizeSources: []
    images: [)" + images + R"(]
)";
  w.matrix = w.top + "/matrix.yaml";
  REQUIRE(fs::write_file_atomic(w.matrix, matrix, 0644));
  return w;
}

// Builds and pushes test image `i` to `registry`; returns its manifest digest.
std::string push_image(const testing::Registry& registry, const std::string& top, const TestImage& i)
{
  const std::string layout = top + "/layouts/" + i.path;
  const std::string digest = testing::make_test_image(layout, i.path, i.tag);
  registry.push(layout, i.tag, i.path);
  return digest;
}

// `bundle create --images` of the world's row with the test registry as the mirror of every
// registry of the row, nothing upstream.
ProcessResult create(const World& w, const testing::HttpServer& files, const testing::Registry& registry, const std::string& out,
                     const std::string& auth)
{
  return mlplat_run({"--matrix", w.matrix, "bundle", "create", "-o", out, "--base-url", files.url(), "--images",
                     "--image-mirror", "registry.example.test=" + registry.url(), "--image-mirror", "quay.example.test=" + registry.url(),
                     "--image-mirror", "docker.io=" + registry.url(), "--image-mirror-ca", registry.ca_file(), "--registry-auth", auth,
                     "--no-upstream-images"});
}

std::string archive_of(const std::string& ref)
{
  auto f = bundle::image_file(ref);
  REQUIRE(f);
  return *f;
}

ProcessResult verify(const World& w, const std::string& bundle)
{
  const std::string sha = sha256_hex(*fs::read_file(bundle + "/bundle.json"));
  return mlplat_run({"--matrix", w.matrix, "bundle", "verify", bundle, "--accept-unsigned-bundle", sha});
}

} // namespace

TEST_CASE("bundle create --images copies the row's images from a mirror, resumes, and verify checks every blob", "[bundle][images]")
{
  const auto w = make_world("create");
  testing::HttpServer files(w.www);
  testing::Registry registry(w.top + "/registry", "127.0.0.1");
  const std::string auth = registry.auth_file("auth.json");
  std::map<std::string, std::string> pushed;
  // The last image is not on the mirror yet: the first run fails naming it, the source and the reason.
  for (size_t i = 0; i + 1 < k_images.size(); ++i) {
    pushed[k_images[i].ref] = push_image(registry, w.top, k_images[i]);
  }
  const std::string out = w.top + "/bundle";
  const auto first = create(w, files, registry, out, auth);
  INFO(first.err);
  CHECK(first.exit_code == 1);
  CHECK(contains(first.err, "docker.io/library/gamma:1.0: copying from " + registry.host() + "/library/gamma:1.0 failed"));
  CHECK(contains(first.err, "manifest unknown"));
  CHECK(contains(first.err, "copy the image to the mirror first"));
  CHECK_FALSE(sfs::exists(out));
  CHECK(sfs::exists(out + ".partial/" + archive_of(k_images[0].ref)));
  const int alpha_pulls = registry.count("GET", "/mlplat-test/alpha/blobs/");
  CHECK(alpha_pulls >= 1);

  // Once the mirror has it, a second run resumes: the first images are not copied again.
  pushed[k_images[2].ref] = push_image(registry, w.top, k_images[2]);
  const auto second = create(w, files, registry, out, auth);
  INFO(second.err);
  REQUIRE(second.exit_code == 0);
  CHECK(contains(second.err, "already in the bundle (earlier run)"));
  CHECK(registry.count("GET", "/mlplat-test/alpha/blobs/") == alpha_pulls);
  CHECK_FALSE(sfs::exists(out + "/" + bundle::k_image_state_dir));

  // The bill of materials: each image's archive, its digests as the registry serves them, where from.
  const auto bom = nlohmann::json::parse(*fs::read_file(out + "/bundle.json"));
  CHECK(bom["format"] == 2);
  CHECK(bom["imagesIncluded"] == true);
  REQUIRE(bom["images"].size() == k_images.size());
  const std::string sums = *fs::read_file(out + "/SHA256SUMS");
  for (size_t i = 0; i < k_images.size(); ++i) {
    const auto& entry = bom["images"][i];
    const auto& img = k_images[i];
    CHECK(entry["ref"] == img.ref);
    CHECK(entry["file"] == archive_of(img.ref));
    CHECK(entry["digest"] == pushed[img.ref]);
    CHECK(entry["sourceDigest"] == registry.digest(img.path, img.tag));
    CHECK(entry["fetchedFrom"] == registry.host());
    const std::string file = out + "/" + entry["file"].get<std::string>();
    REQUIRE(sfs::exists(file));
    CHECK(entry["sha256"] == *sha256_file_hex(file));
    CHECK(entry["size"] == sfs::file_size(file));
    CHECK(contains(sums, entry["sha256"].get<std::string>() + "  " + entry["file"].get<std::string>() + "\n"));
  }
  CHECK(archive_of(k_images[0].ref) == "images/registry.example.test_mlplat-test_alpha_v1.tar");
  // The archive names the full reference.
  const auto index = run({"tar", "-xOf", out + "/" + archive_of(k_images[0].ref), "index.json"});
  CHECK(contains(index.out, "\"org.opencontainers.image.ref.name\":\"" + k_images[0].ref + "\""));

  const auto good = verify(w, out);
  INFO(good.err);
  CHECK(good.exit_code == 0);
  CHECK(contains(good.err, "3 image archives (every blob)"));

  // bundle list: digest and size of every image, as text and JSON.
  const auto listed = mlplat_run({"bundle", "list", out});
  REQUIRE(listed.exit_code == 0);
  for (const auto& entry : bom["images"]) {
    CHECK(contains(listed.out, entry["ref"].get<std::string>()));
    CHECK(contains(listed.out, entry["digest"].get<std::string>()));
    CHECK(contains(listed.out, std::to_string(entry["size"].get<std::uint64_t>())));
  }
  const auto listed_json = mlplat_run({"bundle", "list", out, "--output", "json"});
  REQUIRE(listed_json.exit_code == 0);
  const auto lj = nlohmann::json::parse(listed_json.out);
  CHECK(lj["images"][1]["digest"] == pushed[k_images[1].ref]);
  CHECK(lj["images"][1]["size"] == bom["images"][1]["size"]);

  // One byte of a blob changed, the archive re-tarred, its sha256 and size updated in bundle.json and
  // SHA256SUMS: only the blob check can catch it, and it names the image and the blob.
  const std::string archive = out + "/" + archive_of(k_images[0].ref);
  const std::string x = w.top + "/tamper";
  sfs::create_directories(x);
  REQUIRE(run({"tar", "-xf", archive, "-C", x}).ok());
  const auto manifest = nlohmann::json::parse(*fs::read_file(x + "/blobs/sha256/" + pushed[k_images[0].ref].substr(7)));
  const std::string layer = manifest["layers"][0]["digest"];
  const std::string blob = x + "/blobs/sha256/" + layer.substr(7);
  std::string bytes = *fs::read_file(blob);
  bytes[bytes.size() / 2] ^= 1;
  REQUIRE(fs::write_file_atomic(blob, bytes, 0644));
  REQUIRE(run({"tar", "-C", x, "-cf", archive, "oci-layout", "index.json", "blobs"}).ok());
  auto changed = bom;
  const std::string old_sha = changed["images"][0]["sha256"];
  const std::string new_sha = *sha256_file_hex(archive);
  changed["images"][0]["sha256"] = new_sha;
  changed["images"][0]["size"] = sfs::file_size(archive);
  REQUIRE(fs::write_file_atomic(out + "/bundle.json", changed.dump(2) + "\n", 0644));
  std::string new_sums = sums;
  new_sums.replace(new_sums.find(old_sha), old_sha.size(), new_sha);
  REQUIRE(fs::write_file_atomic(out + "/SHA256SUMS", new_sums, 0644));
  const auto bad = verify(w, out);
  INFO(bad.err);
  CHECK(bad.exit_code == 1);
  CHECK(contains(bad.err, k_images[0].ref + ": blob " + layer + " in registry.example.test_mlplat-test_alpha_v1.tar has sha256"));
  CHECK_FALSE(contains(bad.err, "SHA256SUMS does not match"));

  // A bundle made with --images must carry every image of the row.
  changed["images"].erase(1);
  REQUIRE(fs::write_file_atomic(out + "/bundle.json", changed.dump(2) + "\n", 0644));
  const auto missing = verify(w, out);
  CHECK(missing.exit_code == 1);
  CHECK(contains(missing.err, k_images[1].ref + ": the bundle carries its images, but not this one"));
}

TEST_CASE("bundle create --images with wrong registry credentials fails naming the registry and 'unauthorized'", "[bundle][images]")
{
  const auto w = make_world("auth");
  testing::HttpServer files(w.www);
  testing::Registry registry(w.top + "/registry", "127.0.0.1");
  for (const auto& i : k_images) {
    push_image(registry, w.top, i);
  }
  const std::string wrong = registry.auth_file("wrong-auth.json", "not-the-password");
  const auto r = create(w, files, registry, w.top + "/bundle", wrong);
  INFO(r.err);
  CHECK(r.exit_code == 1);
  CHECK(contains(r.err, "copying from " + registry.host() + "/mlplat-test/alpha:v1 failed"));
  CHECK(contains(r.err, "unauthorized"));
  CHECK(contains(r.err, "--registry-auth FILE or MLPLAT_REGISTRY_AUTH"));
  CHECK_FALSE(contains(r.err, "not-the-password"));
  // Also through the environment variable, with the right file: it works.
  const std::string right = registry.auth_file("auth.json");
  const auto ok = run({"env", "MLPLAT_REGISTRY_AUTH=" + right, MLPLAT_BINARY, "--matrix", w.matrix, "bundle", "create", "-o", w.top + "/bundle2",
                       "--base-url", files.url(), "--images", "--image-mirror", "registry.example.test=" + registry.url(), "--image-mirror",
                       "quay.example.test=" + registry.url(), "--image-mirror", "docker.io=" + registry.url(), "--image-mirror-ca",
                       registry.ca_file(), "--no-upstream-images"});
  INFO(ok.err);
  CHECK(ok.exit_code == 0);
}

TEST_CASE("bundle create --no-upstream-images refuses a registry with no mirror before any copy", "[bundle][images]")
{
  const auto w = make_world("nomirror");
  const auto r = mlplat_run({"--matrix", w.matrix, "bundle", "create", "-o", w.top + "/bundle", "--images", "--image-mirror",
                             "registry.example.test=https://127.0.0.1:1", "--no-upstream-images"});
  CHECK(r.exit_code == 2);
  CHECK(contains(r.err, "no --image-mirror for docker.io (docker.io/library/gamma:1.0); quay.example.test (quay.example.test/mlplat/beta:v2)"));
  CHECK(contains(r.err, "--image-mirror docker.io=https://HOST[:PORT]"));
  const auto http = mlplat_run({"--matrix", w.matrix, "bundle", "create", "-o", w.top + "/bundle", "--images", "--image-mirror",
                                "docker.io=http://127.0.0.1:1"});
  CHECK(http.exit_code == 2);
  CHECK(contains(http.err, "only https:// registries are supported"));
}

TEST_CASE("push_images copies a bundle's images to a site registry with their digests, skips them the second time", "[bundle][images]")
{
  const auto w = make_world("push");
  testing::HttpServer files(w.www);
  testing::Registry mirror(w.top + "/mirror", "127.0.0.1");
  for (const auto& i : k_images) {
    push_image(mirror, w.top, i);
  }
  const std::string out = w.top + "/bundle";
  const auto created = create(w, files, mirror, out, mirror.auth_file("auth.json"));
  INFO(created.err);
  REQUIRE(created.exit_code == 0);
  auto bom = bundle::read_bom(out);
  REQUIRE(bom);

  testing::Registry site(w.top + "/site", "127.0.0.1", 0, "site-pusher", "site-only-password-91ab");
  bundle::SiteRegistry target{site.url(), site.ca_file(), site.credentials_file("credentials")};
  // Wrong credentials: refused naming the registry and skopeo's reason.
  bundle::SiteRegistry wrong{site.url(), site.ca_file(), site.credentials_file("wrong-credentials", "nope")};
  auto refused = bundle::push_images(*bom, out, wrong, {}, Terminal::no);
  REQUIRE_FALSE(refused);
  INFO(refused.error().render());
  CHECK(contains(refused.error().message, "at the site registry " + site.host()));
  CHECK(contains(refused.error().message, "unauthorized"));
  CHECK(contains(refused.error().fix, "check the credentials for " + site.host()));

  auto pushed = bundle::push_images(*bom, out, target, {}, Terminal::no);
  INFO((pushed ? "" : pushed.error().render()));
  REQUIRE(pushed);
  REQUIRE(pushed->size() == k_images.size());
  // The path as in the reference without its registry; the digest the bundle's.
  CHECK((*pushed)[0].destination == site.host() + "/mlplat-test/alpha:v1");
  CHECK((*pushed)[2].destination == site.host() + "/library/gamma:1.0");
  for (size_t i = 0; i < k_images.size(); ++i) {
    CHECK_FALSE((*pushed)[i].skipped);
    CHECK((*pushed)[i].digest == bom->images[i].digest);
    CHECK(site.digest(k_images[i].path, k_images[i].tag) == bom->images[i].digest);
  }
  const int manifest_puts = site.count("PUT", "/manifests/");
  CHECK(manifest_puts == int(k_images.size()));

  // A second push finds every image at its digest and sends nothing.
  auto again = bundle::push_images(*bom, out, target, {}, Terminal::no);
  REQUIRE(again);
  for (const auto& p : *again) {
    CHECK(p.skipped);
  }
  CHECK(site.count("PUT", "/manifests/") == manifest_puts);

  // Only the images named; an unknown name is refused.
  auto one = bundle::push_images(*bom, out, target, {k_images[1].ref}, Terminal::no);
  REQUIRE(one);
  CHECK(one->size() == 1);
  auto unknown = bundle::push_images(*bom, out, target, {"registry.example.test/none:v0"}, Terminal::no);
  REQUIRE_FALSE(unknown);
  CHECK(contains(unknown.error().message, "has no image registry.example.test/none:v0"));
}
