// config/grammar: each grammar against the values it must accept and the hostile or careless ones it
// must refuse; and yamlio's limits (aliases, depth, size) checked before yaml-cpp builds nodes.
#include "support/catch.hpp"

#include "config/grammar.hpp"
#include "yamlio/reader.hpp"

#include <string>
#include <vector>

using namespace mlplat;
namespace grammar = mlplat::config::grammar;

namespace {

// Checks that `check` accepts every value of `good` and refuses every value of `bad`.
template<typename Check>
void table(Check check, const std::vector<std::string>& good, const std::vector<std::string>& bad)
{
  for (const auto& v : good) {
    INFO("should accept " << grammar::quoted(v));
    const auto r = check(v);
    INFO((r ? std::string() : r.error().message));
    CHECK(r.has_value());
  }
  for (const auto& v : bad) {
    INFO("should refuse " << grammar::quoted(v));
    const auto r = check(v);
    CHECK_FALSE(r.has_value());
    if (!r) {
      CHECK(r.error().code == ErrorCode::config_invalid);
      CHECK_FALSE(r.error().fix.empty());
    }
  }
}

// The classic "billion laughs": nine levels of nine aliases each, 10^9 nodes once expanded.
std::string billion_laughs()
{
  std::string text = "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n";
  for (char level = 'b'; level <= 'i'; ++level) {
    const char prev = static_cast<char>(level - 1);
    text += std::string(1, level) + ": &" + level + " [";
    for (int i = 0; i < 9; ++i) {
      text += std::string(i == 0 ? "" : ",") + "*" + prev;
    }
    text += "]\n";
  }
  return text;
}

} // namespace

TEST_CASE("host names, addresses and endpoints", "[grammar]")
{
  table(grammar::hostname, {"cp-1", "Node1.Example.com", "a", std::string(63, 'a') + ".example"},
        {"", "-x", "x-", "a..b", "a.", std::string(64, 'a'), "a b", "a_b", "10.300.0.1", "x;id"});
  table(grammar::ipv4, {"10.0.0.1", "192.0.2.10"}, {"10.0.0", "10.0.0.256", "fd00::1", "host"});
  table(grammar::ipv6, {"fd00::1", "::1", "2001:db8::10"}, {"10.0.0.1", "[fd00::1]", "fd00::1%eth0", "fd00:::1"});
  table(grammar::address, {"bastion.example.com", "10.0.0.1", "fd00::1"},
        {"-oProxyCommand=touch /tmp/m", "-x", "", "a b", "x$(id)", "jump.example\nProxyCommand x"});
  table(grammar::endpoint, {"10.0.0.100:6443", "api.example.com:6443", "[fd00::1]:6443", "[::1]:1", "lb:65535"},
        {"not an endpoint;$(id)", "10.0.0.100:6443\ncertSANs: [evil]", "10.0.0.100", "fd00::1:6443", "[fd00::1]",
         "[10.0.0.1]:6443", "host:0", "host:65536", "host:64x", ":6443", "[fd00::1]x:6443", "host:6443 ", "-x:6443"});
  table(grammar::subject_alt_name, {"ml.example.com", "*.ml.example.com", "192.0.2.10", "fd00::10", "2001:db8::1"},
        {"*", "*.", "a.*.example", "**.example", "*.192.0.2.10", "ML.example.com", "a b", "x'y"});
  table(grammar::dns_label, {"demo", "kubeflow", "a-1"}, {"Demo", "-a", "a.b", std::string(64, 'a'), ""});
  table(grammar::kube_subject, {"alice", "ml-team", "alice@example.com", "team:data.science_1", "A", std::string(64, 'a')},
        {"", "-alice", ".a", "system:masters", "system:authenticated", "a,b", "a b", "a/b", "a=b", "a+b", "a'b", "a\"b", "a\nb",
         "$(id)", std::string(65, 'a'), "caf\xc3\xa9"});
  table(grammar::dns_subdomain, {"cp-1", "node-1.example"}, {"Node-1", "a_b", "a..b", ""});
}

TEST_CASE("ssh users and local paths refuse what OpenSSH or a shell would interpret", "[grammar]")
{
  table(grammar::ssh_user, {"root", "mlp", "ec2-user", "_svc", "debian", std::string(32, 'a')},
        {"x$(touch /tmp/marker)", "%r", "a%r", "root$", "Admin", "1user", "-oProxyCommand=x", "a b", "a;b", "a`id`",
         "a\nb", "", std::string(33, 'a'), "a.b", "a@b"});
  table(grammar::local_path, {"~/.ssh/known_hosts", "/srv/mlplat/keys/id_ed25519", "keys/id", "/tmp/a b"},
        {"~/.ssh/known_%h", "%d/.ssh/id", "", "a\nb", "a\x01", "-oProxyCommand=x"});
  table(grammar::known_hosts_path, {"~/.ssh/known_hosts", "/etc/ssh/ssh_known_hosts"}, {"~/.ssh/known_%h", "/tmp/a b", "/tmp/a\tb"});
}

TEST_CASE("registry names and mirror URLs", "[grammar]")
{
  table(grammar::registry_host, {"docker.io", "registry.k8s.io", "my.reg:5000", "registry.example:5000", "10.0.0.1:5000", "[fd00::1]:5000", "localhost"},
        {"..", ".", "", "a/b", "../etc", "docker.io:", "docker.io:99999", "a b", "reg\nx", "fd00::1"});
  table(grammar::mirror_url,
        {"https://mirror.example:5000", "http://10.0.0.1:5000", "https://[fd00::1]:5000/v2", "https://m.example/path/to-x_y.z~"},
        {"ftp://mirror.example", "https://m.example\"\nskip_verify = true", "https://m.example/\"x", "https://u:p@m.example",
         "https://m.example/?q", "https://m.example/#f", "https://", "mirror.example", "https://m.example/a b",
         "https://m.example/../x", "https://m.example/%2e", "javascript:x", "https://m.example:0", "https://-x.example"});
}

TEST_CASE("storage base paths: absolute, normalized, outside the system directories", "[grammar]")
{
  table(grammar::base_path, {"/var/openebs/local", "/data", "/data/mlplat-1.x_y", "/srv/openebs", "/var/lib/mlplat", "/etcd-data", "/usrdata"},
        {"/", "/var/../etc", "/var", "/etc", "/etc/x", "/usr/local/x", "/bin", "/sbin/x", "/lib", "/lib64/x", "/boot", "/proc/1",
         "/sys", "/dev/sda", "/run/x", "/var/openebs local", "relative/x", "", "/var/x/", "/var//x", "/var/./x", "/var/x\ny",
         "/var/$(id)", "/var/x;y", "/var/\xc3\xa9"});
}

TEST_CASE("labels, taints and quantities as Kubernetes accepts them", "[grammar]")
{
  table(grammar::label_key, {"tier", "node-role.example.com/gpu", "example.com/zone", "a_b.c-d", std::string(63, 'k')},
        {"bad key!", "", "/x", "-x.example/zone", "Ex.com/x", "x/", std::string(64, 'k'), "a/b/c", "a\nb"});
  table(grammar::label_value, {"", "true", "a", "x.y_z-1", std::string(63, 'v')}, {"x y", "-a", "a-", std::string(64, 'v'), "a\nb", "a/b"});
  const auto taint = [](const std::string& v) -> Status {
    auto t = grammar::taint(v);
    return t ? Status{} : Status(tl::unexpected(t.error()));
  };
  table(taint, {"dedicated=ml:NoSchedule", "gpu:PreferNoSchedule", "example.com/x=y:NoExecute"},
        {"dedicated=ml:Sometimes", "a b:NoSchedule", "x", "k=v v:NoSchedule", ":NoSchedule"});
  table(grammar::quantity, {"100m", "256Mi", "1.5", "2", "1Gi"}, {"", "1.", ".5", "100mb", "1 Gi", "$(id)", "-1"});
}

TEST_CASE("matrix values: versions, URLs, digests, file names, image references", "[grammar]")
{
  table(grammar::version, {"1.36", "1.36.4", "v3.32.1", "3.6.8-0", "1.2.3+build.1", "4.15"},
        {"", "1", "one.36", "1.36.4-$(id)", "1.36.4-", "1..2", "1.2.3.4", "v", "1.36 "});
  table(grammar::artifact_url,
        {"https://dl.k8s.io/release/v1.36.4/bin/linux/amd64/kubeadm", "http://127.0.0.1:8080/x.tar.gz", "http://localhost/x",
         "http://[::1]:80/x", "https://github.com/a/b/archive/refs/tags/v4.0.5.tar.gz"},
        {"http://dl.k8s.io/kubeadm", "ftp://x/y", "https://x/y?z=1", "https://u@x/y", "https://x/a b", "https://x/a'b", "https://x/a\nb",
         "https://x/../y", "file:///etc/passwd"});
  table(grammar::sha256_hex, {std::string(64, 'a'), "2e141e5b22cb189c40365a11807d69b76b9b3caced89fac2f4ec879408ce2177"},
        {std::string(63, 'a'), std::string(65, 'a'), std::string(64, 'A'), std::string(64, 'g')});
  table(grammar::file_name, {"kubeadm", "containerd-2.3.4-linux-amd64.tar.gz", "runc.amd64", "a_b"},
        {".", "..", "", "a/b", "runc'$(id>&2)'", "a b", std::string(256, 'a')});
  table(grammar::image_reference,
        {"registry.k8s.io/pause:3.10.2", "registry.k8s.io/coredns/coredns:v1.14.2", "docker.io/library/mysql:8.4",
         "ghcr.io/flannel-io/flannel-cni-plugin:v1.9.1-flannel3", "my.reg:5000/a/b:t", "localhost/x:1", "busybox:1.36",
         "quay.io/a__b/c:1", "reg.example/a@sha256:" + std::string(64, 'a'), "reg.example/a:v1@sha256:" + std::string(64, 'b')},
        {"registry.k8s.io/pause", "Registry.k8s.io/Pause:1", "reg.example/a:", "reg.example/a:-x", "reg.example/a@md5:abc",
         "reg.example/a@sha256:abc", "reg.example//a:1", "reg.example/a_-b:1", "reg.example/a b:1", "reg.example/a:1;id",
         "reg.example/-a:1", "reg.example/a.:1", "", "reg.example/a:" + std::string(129, 't')});
  table(grammar::repository, {"github.com/argoproj/argo-workflows", "github.com/kubeflow/pipelines"},
        {"github.com", "github.com/../x", "github.com/a b", "-x/y", "github.com//x"});
  table(grammar::git_ref, {"v4.0.5", "release-2.1", "release/2.1"}, {"", "-x", "/x", "a..b", "a//b", "a b", "a;b"});
  table(grammar::matrix_id, {"k8s-1.36", "cni-plugins"}, {"", "K8s", "-x", "a_b", "a/b"});
  table(grammar::date, {"2026-11-22"}, {"2026-13-01", "2026-1-1", "26-11-22", "2026-11-22x"});
}

TEST_CASE("quoted values in messages show control characters and stay short", "[grammar]")
{
  CHECK(grammar::quoted("a\nb") == "'a\\nb'");
  CHECK(grammar::quoted("a\x01") == "'a\\x01'");
  CHECK(grammar::quoted(std::string(200, 'x')) == "'" + std::string(80, 'x') + "...'");
}

TEST_CASE("YAML limits: the billion laughs is refused before it is expanded, whatever aliases are allowed", "[grammar][yaml]")
{
  const std::string bomb = billion_laughs();
  CHECK(bomb.size() < 600);
  {
    yamlio::Problems p{"bomb.yaml", {}};
    CHECK_FALSE(yamlio::check_limits(bomb, p));
    REQUIRE(p.list.size() == 1);
    CHECK(p.list[0].message == "a YAML anchor (&a): anchors and aliases are not accepted in this file");
    CHECK(p.list[0].where->line == 1);
    CHECK(p.list[0].where->column == 4);
  }
  {
    // Aliases allowed (a bundle's kustomization): 72 uses are fewer than 100, but they expand to 10^9 nodes.
    yamlio::Problems p{"bomb.yaml", {}};
    CHECK_FALSE(yamlio::check_limits(bomb, p, yamlio::Limits{.aliases = yamlio::Aliases::limited}));
    REQUIRE(p.list.size() == 1);
    INFO(p.list[0].render());
    CHECK(p.list[0].message.find("more than 200000 YAML nodes (aliases expanded)") == 0);
    CHECK(p.list[0].where->line == 6); // at the first alias of level f, where 9 * 66430 passes the limit
  }
  {
    // parse() checks the limits first: the node is null and the problem positioned.
    yamlio::Problems p{"bomb.yaml", {}};
    const YAML::Node root = yamlio::parse(bomb, p, "");
    CHECK(root.IsNull());
    REQUIRE(p.list.size() == 1);
    CHECK(p.list[0].message.find("a YAML anchor") == 0);
  }
}

TEST_CASE("YAML limits: a few aliases where allowed, alias uses counted, depth and size", "[grammar][yaml]")
{
  const yamlio::Limits limited{.aliases = yamlio::Aliases::limited};
  {
    yamlio::Problems p{"k.yaml", {}};
    CHECK(yamlio::check_limits("base: &b {x: 1}\none: *b\ntwo: *b\n", p, limited));
    CHECK(p.list.empty());
  }
  {
    yamlio::Problems p{"k.yaml", {}};
    CHECK_FALSE(yamlio::check_limits("base: &b {x: 1}\none: *b\n", p));
    REQUIRE(p.list.size() == 1);
    CHECK(p.list[0].message.find("a YAML anchor (&b)") == 0);
  }
  {
    std::string text = "a: &a x\nl: [";
    for (int i = 0; i < 101; ++i) {
      text += i == 0 ? "*a" : ", *a";
    }
    text += "]\n";
    yamlio::Problems p{"k.yaml", {}};
    CHECK_FALSE(yamlio::check_limits(text, p, limited));
    REQUIRE(p.list.size() == 1);
    CHECK(p.list[0].message.find("more than 100 YAML aliases") == 0);
    CHECK(p.list[0].where->line == 2);
  }
  {
    // 65 nested flow lists under the top mapping: refused at the 64th '['.
    yamlio::Problems p{"deep.yaml", {}};
    CHECK_FALSE(yamlio::check_limits("x: " + std::string(65, '[') + std::string(65, ']') + "\n", p));
    REQUIRE(p.list.size() == 1);
    CHECK(p.list[0].message == "mappings and lists nested more than 64 deep");
    CHECK(p.list[0].where->line == 1);
    CHECK(p.list[0].where->column == 67); // the 64th '[', the 65th level (the top mapping is the first)
  }
  {
    yamlio::Problems p{"deep.yaml", {}};
    CHECK(yamlio::check_limits("x: " + std::string(63, '[') + std::string(63, ']') + "\n", p));
  }
  {
    // 100,000 levels: refused at the limit, long before yaml-cpp's own recursion guard.
    yamlio::Problems p{"deep.yaml", {}};
    CHECK_FALSE(yamlio::check_limits(std::string(100000, '['), p));
    REQUIRE(p.list.size() == 1);
    CHECK(p.list[0].message == "mappings and lists nested more than 64 deep");
  }
  {
    yamlio::Problems p{"big.yaml", {}};
    const std::string big = "x: '" + std::string(yamlio::k_max_document_bytes, 'a') + "'\n";
    CHECK_FALSE(yamlio::check_limits(big, p));
    REQUIRE(p.list.size() == 1);
    CHECK(p.list[0].message.find("more than the 4194304 bytes mlplat reads") != std::string::npos);
    CHECK(p.list[0].where->line == 1);
  }
  {
    yamlio::Problems p{"bad.yaml", {}};
    CHECK_FALSE(yamlio::check_limits("a: [1, 2\n", p));
    REQUIRE(p.list.size() == 1);
    CHECK(p.list[0].message.find("not valid YAML") == 0);
  }
}
