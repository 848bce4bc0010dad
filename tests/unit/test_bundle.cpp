// The remote commands built from a bundle's bill of materials: every value quoted, and a bill of
// materials outside the bundle's layout never reaches a host (tests/support/fake_fleet.hpp).
#include "support/catch.hpp"
#include "support/fake_fleet.hpp"

#include "bundle/bundle.hpp"
#include "util/text.hpp"

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
    CHECK(contains(script, "-o '" + dir + "/files/runc/runc.amd64.part' 'http://mirror.test:8080/b/files/runc/runc.amd64'"));
    CHECK(contains(script, "mv -f '" + dir + "/files/runc/runc.amd64.part' '" + dir + "/files/runc/runc.amd64'"));
    CHECK(contains(script, "'sha256 mismatch: runc from http://mirror.test:8080/b/files/runc/runc.amd64'"));
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
