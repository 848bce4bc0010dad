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
