// The remote commands built from a bundle's bill of materials: every value quoted, and a bill of
// materials outside the bundle's layout never reaches a host (tests/support/fake_fleet.hpp).
#include "support/catch.hpp"
#include "support/fake_fleet.hpp"

#include "bundle/bundle.hpp"
#include "config/load.hpp"
#include "util/fs.hpp"
#include "util/process.hpp"
#include "util/text.hpp"

#include <filesystem>
#include <unistd.h>

using namespace mlplat;

namespace {

bundle::Bom bom_with(const std::string& file)
{
  bundle::Bom bom;
  bom.row = "k8s-1.36";
  bom.artifacts.push_back({"runc", file, "https://example.test/runc.amd64", "", std::string(64, 'a'), 1, "pinned", ""});
  return bom;
}

bool contains(const std::string& haystack, const std::string& needle)
{
  return haystack.find(needle) != std::string::npos;
}

} // namespace

TEST_CASE("the layout's names: letters, digits, . _ + -, and not . or ..", "[bundle]")
{
  for (const char* ok : {"runc", "runc.amd64", "containerd-2.3.4-linux-amd64.tar.gz", "a+b_c", "..."}) {
    CHECK(bundle::is_layout_name(ok));
  }
  for (const char* bad : {"", ".", "..", "runc'$(id>&2)'", "a/b", "a b", "a\nb", "$x", "a;b"}) {
    CHECK_FALSE(bundle::is_layout_name(bad));
  }
}

TEST_CASE("a --bundle-url fetch quotes every value of the bill of materials, and refuses one outside the bundle's layout", "[bundle]")
{
  const std::string dir = "/var/lib/mlplat/bundle/k8s-1.36";
  {
    testing::FakeFleet fleet({"cp-1"});
    REQUIRE(bundle::fetch_host(fleet, 0, bom_with("files/runc/runc.amd64"), "http://mirror.test:8080/b", dir));
    const auto sent = fleet.sent();
    REQUIRE(sent.size() == 1);
    const std::string& script = sent[0].script;
    CHECK(contains(script, "printf '%s\\n' '" + std::string(64, 'a') + "  " + dir + "/files/runc/runc.amd64' | sha256sum --check --status"));
    // shell_quote leaves a word of only safe characters as it is; these are such words.
    const std::string part = text::shell_quote(dir + "/files/runc/runc.amd64.part");
    CHECK(contains(script, "-o " + part + " " + text::shell_quote("http://mirror.test:8080/b/files/runc/runc.amd64")));
    CHECK(contains(script, "mv -f " + part + " " + text::shell_quote(dir + "/files/runc/runc.amd64")));
    CHECK(contains(script, "'sha256 mismatch: runc from http://mirror.test:8080/b/files/runc/runc.amd64'"));
    const auto syntax = run_process({"sh", "-n", "-c", script}, std::chrono::seconds(10));
    REQUIRE(syntax);
    CHECK(syntax->ok());
  }
  for (const std::string hostile : {"files/runc/runc'$(id>&2)'", "files/runc/../../etc/x", "files/other/runc"}) {
    testing::FakeFleet fleet({"cp-1"});
    auto refused = bundle::fetch_host(fleet, 0, bom_with(hostile), "http://mirror.test:8080/b", dir);
    INFO(hostile);
    CHECK_FALSE(refused);
    CHECK(fleet.sent().empty());
    auto pushed = bundle::push_host(fleet, 0, "/nonexistent", bom_with(hostile), dir);
    CHECK_FALSE(pushed);
    CHECK(fleet.sent().empty());
  }
}

TEST_CASE("spec.bundle: allowedSigners and signer together, the file readable, refused at their position otherwise", "[bundle][config]")
{
  const auto dir = std::filesystem::temp_directory_path() / ("mlplat-unit-bundle-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string key = (dir / "key").string();
  const std::string allowed = (dir / "allowed_signers").string();
  REQUIRE(fs::write_file_atomic(key, "only needs to exist\n", 0600));
  REQUIRE(fs::write_file_atomic(allowed, "release@example.test ssh-ed25519 AAAA\n", 0644));
  auto load = [&](const std::string& bundle) {
    return config::load_text("apiVersion: mlplat.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: demo\nspec:\n  ssh:\n    keyPath: " + key +
                               "\n  hosts:\n    - {name: cp-1, address: 10.0.0.10, role: control-plane}\n" + bundle,
                             "cluster.yaml");
  };
  const auto good = load("  bundle:\n    allowedSigners: " + allowed + "\n    signer: release@example.test\n");
  INFO((good ? "" : good.error().render()));
  REQUIRE(good);
  CHECK(good->bundle.allowed_signers == allowed);
  CHECK(good->bundle.signer == "release@example.test");
  CHECK(load("")->bundle.allowed_signers.empty());

  const auto alone = load("  bundle:\n    allowedSigners: " + allowed + "\n");
  REQUIRE_FALSE(alone);
  CHECK(contains(alone.error().render(), "cluster.yaml:11:21: spec.bundle: signer is missing"));
  const auto missing = load("  bundle:\n    allowedSigners: " + (dir / "nope").string() + "\n    signer: x\n");
  REQUIRE_FALSE(missing);
  CHECK(contains(missing.error().render(), "cluster.yaml:11:21: spec.bundle.allowedSigners: allowed signers file"));
  const auto spaced = load("  bundle:\n    allowedSigners: " + allowed + "\n    signer: 'a b'\n");
  REQUIRE_FALSE(spaced);
  CHECK(contains(spaced.error().render(), "cluster.yaml:12:13: spec.bundle.signer: 'a b' is not one identity"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("image references: split as a registry does, their archive names of the layout, registry locations https only", "[bundle][images]")
{
  const auto k = bundle::split_image("registry.k8s.io/kube-apiserver:v1.36.4");
  CHECK(k.registry == "registry.k8s.io");
  CHECK(k.path == "kube-apiserver");
  CHECK(k.tag == "v1.36.4");
  const auto m = bundle::split_image("mysql:8.4");
  CHECK(m.registry == "docker.io");
  CHECK(m.path == "library/mysql");
  const auto p = bundle::split_image("localhost:5000/a/b@sha256:" + std::string(64, 'f'));
  CHECK(p.registry == "localhost:5000");
  CHECK(p.path == "a/b");
  CHECK(p.tag.empty());
  CHECK(p.digest == "sha256:" + std::string(64, 'f'));
  CHECK(*bundle::image_file("registry.k8s.io/kube-apiserver:v1.36.4") == "images/registry.k8s.io_kube-apiserver_v1.36.4.tar");
  CHECK_FALSE(bundle::image_file("a/b c:1"));
  CHECK(*bundle::registry_location("https://10.0.0.5:5000/", "m") == "10.0.0.5:5000");
  CHECK(*bundle::registry_location("site.example:5000/cache", "m") == "site.example:5000/cache");
  CHECK_FALSE(bundle::registry_location("http://10.0.0.5:5000", "m"));
  CHECK_FALSE(bundle::registry_location("https://user:pw@10.0.0.5", "m"));
  CHECK_FALSE(bundle::registry_location("https://x/../y", "m"));
}

TEST_CASE("bundle.json: images as strings (format 1) still read, as objects (format 2), an archive outside the layout refused", "[bundle][images]")
{
  const auto dir = std::filesystem::temp_directory_path() / ("mlplat-unit-bom-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string head = R"({"row": "k8s-1.36", "kubernetes": "1.36.4", "created": "2026-01-01T00:00:00Z", "mlplatVersion": "0",
    "matrix": {"source": "m", "verified": "2026-01-01"}, "artifacts": [], "kustomizeSources": [], )";
  REQUIRE(fs::write_file_atomic(dir / "bundle.json", head + R"("format": 1, "images": ["registry.k8s.io/pause:3.10.2"]})", 0644));
  auto old = bundle::read_bom(dir);
  INFO((old ? "" : old.error().render()));
  REQUIRE(old);
  REQUIRE(old->images.size() == 1);
  CHECK(old->images[0].ref == "registry.k8s.io/pause:3.10.2");
  CHECK_FALSE(old->images[0].carried());
  CHECK_FALSE(old->images_included);

  const std::string d = "sha256:" + std::string(64, 'a');
  const std::string image = R"({"ref": "registry.k8s.io/pause:3.10.2", "digest": ")" + d + R"(", "sourceDigest": ")" + d + R"(", "sha256": ")" +
                            std::string(64, 'b') + R"(", "size": 10, "fetchedFrom": "registry.k8s.io", "file": )";
  REQUIRE(fs::write_file_atomic(dir / "bundle.json",
                                head + R"("format": 2, "imagesIncluded": true, "images": [)" + image + R"("images/registry.k8s.io_pause_3.10.2.tar"}]})",
                                0644));
  auto now = bundle::read_bom(dir);
  INFO((now ? "" : now.error().render()));
  REQUIRE(now);
  CHECK(now->images_included);
  CHECK(now->images[0].digest == d);
  CHECK(now->images[0].file == "images/registry.k8s.io_pause_3.10.2.tar");

  REQUIRE(fs::write_file_atomic(dir / "bundle.json", head + R"("format": 2, "imagesIncluded": true, "images": [)" + image + R"("../../etc/x.tar"}]})",
                                0644));
  auto bad = bundle::read_bom(dir);
  REQUIRE_FALSE(bad);
  CHECK(contains(bad.error().message, "images[0] ('registry.k8s.io/pause:3.10.2'): file '../../etc/x.tar' is not the image's archive"));
  std::filesystem::remove_all(dir);
}
