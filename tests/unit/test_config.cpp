// config::load_text: one test per class of bad input, each asserting the message and its line:column.
#include "support/catch.hpp"

#include "assets/assets.hpp"
#include "config/load.hpp"
#include "config/topology.hpp"
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

// What one error must say: where (1-based; column 0 = not checked), part of its message, part of its fix.
struct Expected {
  int line;
  int column;
  std::string message;
  std::string fix = {};
};

// Loads `text`, which must give exactly the one error `want` describes.
void expect_error(const std::string& text, const Expected& want)
{
  const Error e = only_error(text);
  INFO(e.render());
  CHECK(e.where->line == want.line);
  if (want.column != 0) {
    CHECK(e.where->column == want.column);
  }
  CHECK(contains(e.message, want.message));
  CHECK(contains(e.fix, want.fix));
}

// The valid file with one change.
std::string good_with(const std::string& from, const std::string& to)
{
  return replace_all(k_good, from, to);
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
  expect_error(good_with("    user: root", "    usr: root"),
               {8, 5, "spec.ssh: unknown key 'usr'", "did you mean 'user'?"});
}

TEST_CASE("duplicate key is reported at the second occurrence", "[config]")
{
  expect_error(good_with("      role: worker\n", "      role: worker\n      role: control-plane\n"),
               {17, 7, "duplicate key 'role' (first written at line 16, column 7)"});
}

TEST_CASE("wrong type names what was expected and what was found", "[config]")
{
  expect_error(good_with("    user: root", "    user: root\n    port: twenty-two"),
               {9, 11, "spec.ssh.port: expected an integer, found 'twenty-two'"});
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
  expect_error(text, {7, 5, "spec.hosts: expected a list, found a mapping"});
}

TEST_CASE("bad enum value lists the allowed values and the closest one", "[config]")
{
  expect_error(good_with("role: worker", "role: workr"),
               {16, 13, "'workr' is not one of control-plane, worker", "did you mean 'worker'?"});
  expect_error(good_with("    user: root", "    user: root\n    hostKeyPolicy: off"),
               {9, 20, "'off' is not one of strict, accept-new"});
}

TEST_CASE("missing control plane is refused", "[config]")
{
  expect_error(good_with("role: control-plane", "role: worker"), {11, 5, "no host has role control-plane"}); // the list
}

TEST_CASE("duplicate host names are refused at the second one", "[config]")
{
  expect_error(good_with("name: worker-1", "name: cp-1"), {14, 13, "'cp-1' is already used by spec.hosts[0] (line 11)"});
}

TEST_CASE("duplicate host addresses are refused at the second one", "[config]")
{
  expect_error(good_with("address: 10.0.0.2", "address: 10.0.0.1"), {15, 16, "'10.0.0.1' is already used by host 'cp-1'"});
}

TEST_CASE("unparsable CIDR says what is wrong", "[config]")
{
  expect_error(good_with("podCIDR: 10.244.0.0/16", "podCIDR: 10.244.0.0"), {18, 14, "the /prefix is missing"});
  expect_error(good_with("podCIDR: 10.244.0.0/16", "podCIDR: 10.244.1.0/16"), {18, 14, "has host bits set", "use 10.244.0.0/16"});
  expect_error(good_with("podCIDR: 10.244.0.0/16", "podCIDR: 10.300.0.0/16"), {18, 14, "not an IPv4 or IPv6 address"});
}

TEST_CASE("overlapping pod and service CIDRs are refused", "[config]")
{
  expect_error(good_with("podCIDR: 10.244.0.0/16", "podCIDR: 10.96.0.0/16"),
               {19, 18, "10.96.0.0/12 overlaps spec.network.podCIDR 10.96.0.0/16"}); // at serviceCIDR
}

TEST_CASE("a host address inside the pod range is refused", "[config]")
{
  expect_error(good_with("address: 10.0.0.2", "address: 10.244.3.4"), {15, 16, "lies inside spec.network.podCIDR"});
}

TEST_CASE("missing key file is refused where keyPath is written", "[config]")
{
  expect_error(good_with("keyPath: KEY", "keyPath: /nonexistent/mlplat/id_ed25519"),
               {9, 14, "SSH key file '/nonexistent/mlplat/id_ed25519' does not exist", "ssh-keygen"});
}

TEST_CASE("a missing SSH key file is the connecting commands' problem: KeyFiles::skip loads the file without it", "[config]")
{
  const std::string text = replace_all(good_with("keyPath: KEY", "keyPath: /nonexistent/mlplat/id_ed25519"), "KEY", key_file());
  const auto checked = config::load_text(text, "cluster.yaml");
  REQUIRE_FALSE(checked.has_value());
  CHECK(checked.error().render().find("/nonexistent/mlplat/id_ed25519' does not exist") != std::string::npos);
  const auto skipped = config::load_text(text, "cluster.yaml", config::KeyFiles::skip);
  INFO((skipped ? std::string() : skipped.error().render()));
  REQUIRE(skipped.has_value());
  CHECK(skipped->hosts.front().ssh.key_path == "/nonexistent/mlplat/id_ed25519");
  // The path's grammar still holds: a path OpenSSH would expand ('%') is refused either way.
  const auto bad = config::load_text(replace_all(text, "/nonexistent/mlplat/id_ed25519", "/tmp/key-%h"), "cluster.yaml",
                                     config::KeyFiles::skip);
  CHECK_FALSE(bad.has_value());
}

TEST_CASE("missing required key is reported at the enclosing mapping", "[config]")
{
  expect_error(good_with("      address: 10.0.0.2\n", ""),
               {14, 7, "spec.hosts[1]: missing required key 'address'"}); // the host's mapping starts at its first key
}

TEST_CASE("wrong apiVersion and kind say what to write", "[config]")
{
  expect_error(good_with("mlplat.dev/v1alpha1", "mlplat.dev/v2"), {1, 13, "is not supported", "apiVersion: mlplat.dev/v1alpha1"});
  expect_error(good_with("kind: Cluster", "kind: Klaster"), {2, 7, "kind: 'Klaster' is not supported", "kind: Cluster"});
}

TEST_CASE("YAML syntax errors carry the parser's position", "[config]")
{
  expect_error("apiVersion: mlplat.dev/v1alpha1\nkind: [Cluster\n", {3, 0, "not valid YAML"});
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

TEST_CASE("registry mirrors need a registry host name and an http(s) URL", "[config]")
{
  const std::string base = "    serviceCIDR: 10.96.0.0/12";
  auto ok = load(good_with(base, base + "\n  registry:\n    mirrors:\n      docker.io: https://mirror.example:5000"));
  REQUIRE(ok);
  CHECK(ok->registry.mirrors.at("docker.io") == "https://mirror.example:5000");
  expect_error(good_with(base, base + "\n  registry:\n    mirrors:\n      docker.io: ftp://mirror.example"),
               {22, 18, "spec.registry.mirrors.docker.io: 'ftp://mirror.example' is not an http(s) URL"});
}

TEST_CASE("topology warnings: HA without a control-plane endpoint, an even number of control planes", "[config]")
{
  config::Cluster c;
  c.source_file = "mlplat.yaml";
  const auto host = [](const std::string& name, config::Role role) {
    config::Host h;
    h.name = name;
    h.address = h.internal_address = "10.0.0." + name.substr(1);
    h.role = role;
    return h;
  };
  c.hosts = {host("n1", config::Role::control_plane), host("n2", config::Role::worker)};
  CHECK(config::topology_warnings(c).empty());
  c.hosts.push_back(host("n3", config::Role::control_plane));
  auto w = config::topology_warnings(c);
  REQUIRE(w.size() == 2);
  CHECK(w[0].message == "2 control planes but no spec.network.controlPlaneEndpoint: every node reaches the API servers through the "
                        "first control plane (10.0.0.1:6443), a single point of failure");
  CHECK(w[0].fix.find("set spec.network.controlPlaneEndpoint") == 0);
  CHECK(w[1].message == "an even number of control planes (2): etcd needs a majority (2 of 2), so they tolerate 0 failures, as 1 would");
  CHECK(w[1].fix == "use an odd number of control planes (1 or 3)");
  c.hosts.push_back(host("n4", config::Role::control_plane));
  c.network.control_plane_endpoint = "10.0.0.100:6443";
  CHECK(config::topology_warnings(c).empty());  // three, behind an endpoint
  c.hosts.push_back(host("n5", config::Role::control_plane));
  w = config::topology_warnings(c);
  REQUIRE(w.size() == 1);
  CHECK(w[0].message == "an even number of control planes (4): etcd needs a majority (3 of 4), so they tolerate 1 failure, as 3 would");
}

TEST_CASE("IPv6 host addresses and ranges are refused where they are written (IPv4 clusters only)", "[config]")
{
  expect_error(good_with("address: 10.0.0.2", "address: 'fd00::2'"),
               {15, 16, "spec.hosts[1].address: 'fd00::2' is an IPv6 address; mlplat builds IPv4 clusters only", "IPv4 address"});
  expect_error(good_with("address: 10.0.0.2", "address: 10.0.0.2\n      internalAddress: 'fd00::2'"),
               {16, 24, "spec.hosts[1].internalAddress: 'fd00::2' is an IPv6 address"});
  expect_error(good_with("serviceCIDR: 10.96.0.0/12", "serviceCIDR: 'fd00:96::/108'"),
               {19, 18, "spec.network.serviceCIDR: fd00:96::/108 is an IPv6 range", "use an IPv4 range"});
}

TEST_CASE("node labels and taints are checked as Kubernetes checks them, and kept in the model", "[config]")
{
  const auto ok = load(good_with("      role: worker\n", "      role: worker\n      labels: {example.com/zone: a, tier: ''}\n"
                                                         "      taints: ['dedicated=ml:NoSchedule', 'gpu:PreferNoSchedule']\n"));
  REQUIRE(ok);
  const auto& w = ok->hosts[1];
  CHECK(w.labels.at("example.com/zone") == "a");
  REQUIRE(w.taints.size() == 2);
  CHECK(w.taints[0].str() == "dedicated=ml:NoSchedule");
  CHECK(w.taints[1].key == "gpu");
  CHECK(w.taints[1].value.empty());
  CHECK(w.taints[1].effect == "PreferNoSchedule");
  expect_error(good_with("      role: worker\n", "      role: worker\n      labels: {'bad key!': x}\n"),
               {17, 28, "spec.hosts[1].labels: key 'bad key!' is not letters, digits", "example.com/zone"});
  expect_error(good_with("      role: worker\n", "      role: worker\n      labels: {zone: 'x y'}\n"),
               {17, 0, "spec.hosts[1].labels.zone: value 'x y' is not letters, digits", "at most 63"});
  expect_error(good_with("      role: worker\n", "      role: worker\n      labels: {'-x.example/zone': a}\n"),
               {17, 0, "has a prefix '-x.example' that is not a DNS subdomain"});
  expect_error(good_with("      role: worker\n", "      role: worker\n      taints: ['dedicated=ml:Sometimes']\n"),
               {17, 16, "spec.hosts[1].taints[0]: 'dedicated=ml:Sometimes' has no effect NoSchedule, PreferNoSchedule or NoExecute",
                "key[=value]:NoSchedule"}); // at the item itself
  expect_error(good_with("      role: worker\n", "      role: worker\n      taints: ['a b:NoSchedule']\n"),
               {17, 16, "spec.hosts[1].taints[0]: 'a b:NoSchedule' has a key 'a b' that is not letters"});
}

// --- Hostile values (issue 15): each refused where it is written, with the field's name ---

TEST_CASE("ssh users with shell or OpenSSH syntax are refused at their position", "[config][grammar]")
{
  expect_error(good_with("    user: root", "    user: 'x$(touch /tmp/marker)'"),
               {8, 11, "spec.ssh.user: 'x$(touch /tmp/marker)' is not a user name: it contains '$'", "login name"});
  expect_error(good_with("      role: worker\n", "      role: worker\n      ssh:\n        user: 'a;id'\n"),
               {18, 15, "spec.hosts[1].ssh.user: 'a;id' is not a user name: it contains ';'"});
}

TEST_CASE("the bastion's user, address and known_hosts file are refused when OpenSSH would interpret them", "[config][grammar]")
{
  const std::string bastion = "    keyPath: KEY\n    bastion:\n      address: jump.example\n      user: jump\n";
  REQUIRE(load(good_with("    keyPath: KEY\n", bastion)));
  expect_error(good_with("    keyPath: KEY\n", replace_all(bastion, "user: jump", "user: '%r'")),
               {12, 13, "spec.ssh.bastion.user: '%r' is not a user name: it contains '%' (an OpenSSH token)"});
  expect_error(good_with("    keyPath: KEY\n", replace_all(bastion, "address: jump.example", "address: '-oProxyCommand=touch /tmp/m'")),
               {11, 16, "spec.ssh.bastion.address: '-oProxyCommand=touch /tmp/m' begins with '-'"});
  expect_error(good_with("    keyPath: KEY\n", "    keyPath: KEY\n    knownHosts: '~/.ssh/known_%h'\n"),
               {10, 17, "spec.ssh.knownHosts: '~/.ssh/known_%h' is not a usable path: it contains '%'"});
}

TEST_CASE("registry mirrors: hostile URLs and registry names are refused, registries with ports accepted", "[config][grammar]")
{
  const std::string base = "    serviceCIDR: 10.96.0.0/12";
  const auto mirrors = [&](const std::string& lines) { return good_with(base, base + "\n  registry:\n    mirrors:\n" + lines); };
  expect_error(mirrors("      docker.io: \"https://m.example\\\"\\nskip_verify = true\"\n"),
               {22, 18, "spec.registry.mirrors.docker.io: 'https://m.example\"\\nskip_verify = true' is not an http(s) URL of a mirror: it contains a newline"});
  expect_error(mirrors("      docker.io: 'https://m.example/\"x'\n"), {22, 18, "is not an http(s) URL of a mirror: it contains '\"'"});
  expect_error(mirrors("      '..': https://m.example\n"), {22, 13, "spec.registry.mirrors: '..' is not a registry host name"});
  const auto ok = load(mirrors("      registry.example:5000: http://10.0.0.1:5000\n      docker.io: 'https://[fd00::1]:5000/v2'\n"));
  INFO((ok ? std::string() : ok.error().render()));
  REQUIRE(ok);
  CHECK(ok->registry.mirrors.at("registry.example:5000") == "http://10.0.0.1:5000");
}

TEST_CASE("controlPlaneEndpoint must be host:port, IPv6 in brackets", "[config][grammar]")
{
  const std::string base = "    serviceCIDR: 10.96.0.0/12";
  expect_error(good_with(base, base + "\n    controlPlaneEndpoint: \"10.0.0.100:6443\\ncertSANs: [evil]\""),
               {20, 27, "spec.network.controlPlaneEndpoint: '10.0.0.100:6443\\ncertSANs: [evil]' is not host:port: it contains a newline"});
  expect_error(good_with(base, base + "\n    controlPlaneEndpoint: 'not an endpoint;$(id)'"),
               {20, 27, "spec.network.controlPlaneEndpoint: 'not an endpoint;$(id)' is not host:port", "[fd00::100]:6443"});
  expect_error(good_with(base, base + "\n    controlPlaneEndpoint: 10.0.0.100"), {20, 27, "is not host:port: it has no :port"});
  const auto ok = load(good_with(base, base + "\n    controlPlaneEndpoint: '[fd00::1]:6443'"));
  INFO((ok ? std::string() : ok.error().render()));
  REQUIRE(ok);
  CHECK(ok->network.control_plane_endpoint == "[fd00::1]:6443");
}

TEST_CASE("storage basePath: refused when it is /, not normalized, a system directory or has a space", "[config][grammar]")
{
  const std::string base = "    serviceCIDR: 10.96.0.0/12";
  const auto with = [&](const std::string& path) { return good_with(base, base + "\n  storage:\n    basePath: " + path); };
  expect_error(with("/"), {21, 15, "spec.storage.basePath: '/' is the root directory", "/var/openebs/local"});
  expect_error(with("/var/../etc"), {21, 15, "spec.storage.basePath: '/var/../etc' is not normalized"});
  expect_error(with("/var"), {21, 15, "spec.storage.basePath: '/var' is /var itself"});
  expect_error(with("/etc/x"), {21, 15, "spec.storage.basePath: '/etc/x' is inside the system directory /etc"});
  expect_error(with("'/var/openebs local'"), {21, 15, "spec.storage.basePath: '/var/openebs local' contains a space"});
  expect_error(with("/var/openebs/"), {21, 15, "ends with '/'", "/var/openebs"});
  const auto ok = load(with("/var/openebs/local"));
  REQUIRE(ok);
  CHECK(ok->storage.base_path == "/var/openebs/local");
}

TEST_CASE("labels: a bad key and value refused with the field, a prefixed key accepted", "[config][grammar]")
{
  expect_error(good_with("      role: worker\n", "      role: worker\n      labels:\n        'bad key!': 'x y'\n"),
               {18, 21, "spec.hosts[1].labels: key 'bad key!' is not letters, digits", "example.com/zone"});
  expect_error(good_with("      role: worker\n", "      role: worker\n      labels:\n        zone: \"a\\nb\"\n"),
               {18, 15, "spec.hosts[1].labels.zone: value 'a\\nb' is not letters"});
  const auto ok = load(good_with("      role: worker\n", "      role: worker\n      labels:\n        node-role.example.com/gpu: \"true\"\n"
                                                         "      taints: ['nvidia.com/gpu=present:NoSchedule']\n"));
  INFO((ok ? std::string() : ok.error().render()));
  REQUIRE(ok);
  CHECK(ok->hosts[1].labels.at("node-role.example.com/gpu") == "true");
  CHECK(ok->hosts[1].taints.at(0).key == "nvidia.com/gpu");
}

TEST_CASE("ingress altNames: wildcard DNS names and IPv6 addresses accepted, each refusal at its item", "[config][grammar]")
{
  const std::string base = "    serviceCIDR: 10.96.0.0/12";
  const auto with = [&](const std::string& names) { return good_with(base, base + "\n  ingress:\n    altNames: " + names); };
  const auto ok = load(with("['*.ml.example.com', 'fd00::10', 192.0.2.10, ml.example.com]"));
  INFO((ok ? std::string() : ok.error().render()));
  REQUIRE(ok);
  CHECK(ok->ingress.alt_names.size() == 4);
  expect_error(with("[ml.example.com, 'a.*.example']"), {21, 32, "spec.ingress.altNames[1]: 'a.*.example' is neither a DNS name"});
}

TEST_CASE("versions and node names are checked against their grammars", "[config][grammar]")
{
  expect_error(good_with("  profile: onprem\n", "  profile: onprem\n  versions:\n    kubernetes: '1.36.4;id'\n"),
               {8, 17, "spec.versions.kubernetes: '1.36.4;id' is not a version"});
  expect_error(good_with("name: worker-1", "name: Worker_1"), {14, 13, "spec.hosts[1].name: 'Worker_1' is not a valid node name"});
}

TEST_CASE("YAML limits in a cluster file: anchors, the alias bomb, depth and size are refused before parsing", "[config][yaml]")
{
  // The classic billion laughs (546 bytes): refused at its first anchor, never expanded.
  std::string bomb = "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n";
  for (char level = 'b'; level <= 'i'; ++level) {
    bomb += std::string(1, level) + ": &" + level + " [";
    for (int i = 0; i < 9; ++i) {
      bomb += std::string(i == 0 ? "" : ",") + "*" + static_cast<char>(level - 1);
    }
    bomb += "]\n";
  }
  expect_error(bomb, {1, 4, "a YAML anchor (&a): anchors and aliases are not accepted in this file"});
  expect_error(good_with("    user: root", "    user: &u root") + "  pipelines: {namespace: *u}\n",
               {8, 11, "a YAML anchor (&u)"});
  expect_error(good_with("    podCIDR: 10.244.0.0/16", "    podCIDR: 10.244.0.0/16\n    x: " + std::string(70, '[') + std::string(70, ']')),
               {19, 0, "mappings and lists nested more than 64 deep"});
  expect_error(k_good + "# " + std::string(5 * 1024 * 1024, 'x') + "\n", {1, 1, "more than the 4194304 bytes mlplat reads"});
}
