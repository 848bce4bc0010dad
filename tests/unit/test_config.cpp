// config::load_text: one test per class of bad input, each asserting the message and its line:column.
#include "support/catch.hpp"

#include "assets/assets.hpp"
#include "config/load.hpp"
#include "util/fs.hpp"

#include <cstdlib>
#include <filesystem>
#include <string>

using namespace mlplat;

namespace {

// A readable key file for configs that must pass the "key file exists" check.
std::string key_file()
{
  static const std::string path = [] {
    const auto p = std::filesystem::temp_directory_path() / "mlplat-unit-test-key";
    (void)fs::write_file_atomic(p, "not really a key, only needs to exist\n", 0600);
    return p.string();
  }();
  return path;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to)
{
  for (auto pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size())) {
    s.replace(pos, from.size(), to);
  }
  return s;
}

// A valid file; tests change one thing in it. Line numbers below refer to this layout.
const std::string k_good = R"(apiVersion: mlplat.dev/v1alpha1
kind: Cluster
metadata:
  name: demo
spec:
  profile: onprem
  ssh:
    user: root
    keyPath: KEY
  hosts:
    - name: cp-1
      address: 10.0.0.1
      role: control-plane
    - name: worker-1
      address: 10.0.0.2
      role: worker
  network:
    podCIDR: 10.244.0.0/16
    serviceCIDR: 10.96.0.0/12
)";

Result<config::Cluster> load(const std::string& text)
{
  return config::load_text(replace_all(text, "KEY", key_file()), "cluster.yaml");
}

// The single error reported for `text`; fails the test if there is not exactly one.
Error only_error(const std::string& text)
{
  const auto result = load(text);
  REQUIRE_FALSE(result.has_value());
  INFO(result.error().render());
  REQUIRE(result.error().code == ErrorCode::config_invalid);
  REQUIRE(result.error().children.size() == 1);
  REQUIRE(result.error().children[0].where.has_value());
  return result.error().children[0];
}

bool contains(const std::string& haystack, const std::string& needle)
{
  return haystack.find(needle) != std::string::npos;
}

} // namespace

TEST_CASE("a valid file loads with every value and default", "[config]")
{
  const auto c = load(k_good);
  INFO((c ? std::string() : c.error().render()));
  REQUIRE(c.has_value());
  CHECK(c->name == "demo");
  REQUIRE(c->hosts.size() == 2);
  CHECK(c->hosts[0].role == config::Role::control_plane);
  CHECK(c->hosts[1].internal_address == "10.0.0.2");
  CHECK(c->hosts[1].ssh.key_path == key_file());
  CHECK(c->hosts[1].ssh.port == 22);
  CHECK(c->network.cni == config::Cni::calico);
  CHECK(c->where("spec.hosts[1].address").line == 15);
  CHECK(c->where("spec.hosts[1].address").column == 16);
}

TEST_CASE("unknown key is reported with its position and a suggestion", "[config]")
{
  const auto e = only_error(replace_all(k_good, "    user: root", "    usr: root"));
  CHECK(e.where->line == 8);
  CHECK(e.where->column == 5);
  CHECK(contains(e.message, "spec.ssh: unknown key 'usr'"));
  CHECK(contains(e.fix, "did you mean 'user'?"));
}

TEST_CASE("duplicate key is reported at the second occurrence", "[config]")
{
  const auto e = only_error(replace_all(k_good, "      role: worker\n", "      role: worker\n      role: control-plane\n"));
  CHECK(e.where->line == 17);
  CHECK(e.where->column == 7);
  CHECK(contains(e.message, "duplicate key 'role' (first written at line 16, column 7)"));
}

TEST_CASE("wrong type names what was expected and what was found", "[config]")
{
  const auto e = only_error(replace_all(k_good, "    user: root", "    user: root\n    port: twenty-two"));
  CHECK(e.where->line == 9);
  CHECK(e.where->column == 11);
  CHECK(contains(e.message, "spec.ssh.port: expected an integer, found 'twenty-two'"));
}

TEST_CASE("a mapping where a list belongs is a type error", "[config]")
{
  const std::string text = R"(apiVersion: mlplat.dev/v1alpha1
kind: Cluster
metadata:
  name: demo
spec:
  hosts:
    name: cp-1
)";
  const auto e = only_error(text);
  CHECK(e.where->line == 7);
  CHECK(e.where->column == 5);
  CHECK(contains(e.message, "spec.hosts: expected a list, found a mapping"));
}

TEST_CASE("bad enum value lists the allowed values and the closest one", "[config]")
{
  const auto e = only_error(replace_all(k_good, "role: worker", "role: workr"));
  CHECK(e.where->line == 16);
  CHECK(e.where->column == 13);
  CHECK(contains(e.message, "'workr' is not one of control-plane, worker"));
  CHECK(contains(e.fix, "did you mean 'worker'?"));

  const auto policy = only_error(replace_all(k_good, "    user: root", "    user: root\n    hostKeyPolicy: off"));
  CHECK(policy.where->line == 9);
  CHECK(contains(policy.message, "'off' is not one of strict, accept-new"));
}

TEST_CASE("missing control plane is refused", "[config]")
{
  const auto e = only_error(replace_all(k_good, "role: control-plane", "role: worker"));
  CHECK(e.where->line == 11); // the hosts list
  CHECK(e.where->column == 5);
  CHECK(contains(e.message, "no host has role control-plane"));
}

TEST_CASE("duplicate host names are refused at the second one", "[config]")
{
  const auto e = only_error(replace_all(k_good, "name: worker-1", "name: cp-1"));
  CHECK(e.where->line == 14);
  CHECK(e.where->column == 13);
  CHECK(contains(e.message, "'cp-1' is already used by spec.hosts[0] (line 11)"));
}

TEST_CASE("duplicate host addresses are refused at the second one", "[config]")
{
  const auto e = only_error(replace_all(k_good, "address: 10.0.0.2", "address: 10.0.0.1"));
  CHECK(e.where->line == 15);
  CHECK(e.where->column == 16);
  CHECK(contains(e.message, "'10.0.0.1' is already used by host 'cp-1'"));
}

TEST_CASE("unparsable CIDR says what is wrong", "[config]")
{
  const auto e = only_error(replace_all(k_good, "podCIDR: 10.244.0.0/16", "podCIDR: 10.244.0.0"));
  CHECK(e.where->line == 18);
  CHECK(e.where->column == 14);
  CHECK(contains(e.message, "the /prefix is missing"));

  const auto bits = only_error(replace_all(k_good, "podCIDR: 10.244.0.0/16", "podCIDR: 10.244.1.0/16"));
  CHECK(contains(bits.message, "has host bits set"));
  CHECK(contains(bits.fix, "use 10.244.0.0/16"));

  const auto bad = only_error(replace_all(k_good, "podCIDR: 10.244.0.0/16", "podCIDR: 10.300.0.0/16"));
  CHECK(contains(bad.message, "not an IPv4 or IPv6 address"));
}

TEST_CASE("overlapping pod and service CIDRs are refused", "[config]")
{
  const auto e = only_error(replace_all(k_good, "podCIDR: 10.244.0.0/16", "podCIDR: 10.96.0.0/16"));
  CHECK(e.where->line == 19); // serviceCIDR
  CHECK(e.where->column == 18);
  CHECK(contains(e.message, "10.96.0.0/12 overlaps spec.network.podCIDR 10.96.0.0/16"));
}

TEST_CASE("a host address inside the pod range is refused", "[config]")
{
  const auto e = only_error(replace_all(k_good, "address: 10.0.0.2", "address: 10.244.3.4"));
  CHECK(e.where->line == 15);
  CHECK(contains(e.message, "lies inside spec.network.podCIDR"));
}

TEST_CASE("missing key file is refused where keyPath is written", "[config]")
{
  const auto e = only_error(replace_all(k_good, "keyPath: KEY", "keyPath: /nonexistent/mlplat/id_ed25519"));
  CHECK(e.where->line == 9);
  CHECK(e.where->column == 14);
  CHECK(contains(e.message, "SSH key file '/nonexistent/mlplat/id_ed25519' does not exist"));
  CHECK(contains(e.fix, "ssh-keygen"));
}

TEST_CASE("missing required key is reported at the enclosing mapping", "[config]")
{
  const auto e = only_error(replace_all(k_good, "      address: 10.0.0.2\n", ""));
  CHECK(e.where->line == 14); // the host's mapping starts at its first key
  CHECK(e.where->column == 7);
  CHECK(contains(e.message, "spec.hosts[1]: missing required key 'address'"));
}

TEST_CASE("wrong apiVersion and kind say what to write", "[config]")
{
  const auto e = only_error(replace_all(k_good, "mlplat.dev/v1alpha1", "mlplat.dev/v2"));
  CHECK(e.where->line == 1);
  CHECK(e.where->column == 13);
  CHECK(contains(e.fix, "apiVersion: mlplat.dev/v1alpha1"));
}

TEST_CASE("YAML syntax errors carry the parser's position", "[config]")
{
  const auto e = only_error("apiVersion: mlplat.dev/v1alpha1\nkind: [Cluster\n");
  CHECK(e.where->line == 3);
  CHECK(contains(e.message, "not valid YAML"));
}

TEST_CASE("every problem is reported, not only the first", "[config]")
{
  std::string text = replace_all(k_good, "    user: root", "    usr: root");
  text = replace_all(text, "role: worker", "role: boss");
  const auto result = load(text);
  REQUIRE_FALSE(result.has_value());
  CHECK(result.error().children.size() == 2);
  CHECK(exit_code_for(result.error()) == k_exit_config);
}

TEST_CASE("per-host ssh settings override the defaults key by key", "[config]")
{
  const auto c = load(replace_all(k_good, "      role: worker\n", "      role: worker\n      ssh:\n        user: admin\n        port: 2222\n"));
  REQUIRE(c.has_value());
  CHECK(c->hosts[0].ssh.user == "root");
  CHECK(c->hosts[1].ssh.user == "admin");
  CHECK(c->hosts[1].ssh.port == 2222);
  CHECK(c->hosts[1].ssh.key_path == key_file()); // inherited
}

TEST_CASE("a missing file is a config error with the reason", "[config]")
{
  const auto r = config::load_file("/nonexistent/mlplat.yaml");
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == ErrorCode::config_invalid);
  CHECK(contains(r.error().message, "No such file or directory"));
}

TEST_CASE("every profile's starter file is a valid cluster file", "[config]")
{
  for (const auto& profile : config::profiles()) {
    const auto starter = assets::read("profiles/" + profile + "/starter.yaml");
    REQUIRE(starter);
    // Its keyPath is ~/.ssh/id_ed25519: point HOME at a directory that has one.
    const auto home = std::filesystem::temp_directory_path() / "mlplat-unit-home";
    REQUIRE(fs::ensure_private_dir(home / ".ssh"));
    REQUIRE(fs::write_file_atomic(home / ".ssh" / "id_ed25519", "key", 0600));
    const char* old_home = std::getenv("HOME");
    const std::string saved = old_home != nullptr ? old_home : "";
    ::setenv("HOME", home.c_str(), 1);
    const auto c = config::load_text(*starter, profile + "/starter.yaml");
    ::setenv("HOME", saved.c_str(), 1);
    INFO((c ? std::string() : c.error().render()));
    REQUIRE(c);
    CHECK(c->profile == profile);
    CHECK(c->hosts.size() == 3);
  }
}
