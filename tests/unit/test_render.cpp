// The files rendered for the hosts are written by serializers of their formats: a hostile value (one
// the loader would refuse, set here on the model directly, as a second line of defence) stays inside
// its own field when the file is parsed back by a parser of that format.
#include "support/catch.hpp"

#include "compat/matrix.hpp"
#include "config/load.hpp"
#include "kube/kubeadm.hpp"
#include "render/host.hpp"
#include "util/fs.hpp"
#include "util/process.hpp"
#include "util/text.hpp"
#include "yamlio/emit.hpp"

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include <filesystem>

using namespace mlplat;
namespace sfs = std::filesystem;

namespace {

config::Cluster demo_cluster()
{
  const auto key = sfs::temp_directory_path() / "mlplat-unit-render-key";
  REQUIRE(fs::write_file_atomic(key, "not really a key, only needs to exist\n", 0600));
  const std::string text = "apiVersion: mlplat.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: demo\nspec:\n  profile: onprem\n"
                           "  ssh:\n    user: mlp\n    keyPath: " + key.string() + "\n"
                           "  hosts:\n    - {name: cp-1, address: 10.0.0.1, internalAddress: 10.1.0.1, role: control-plane}\n"
                           "    - {name: cp-2, address: 10.0.0.2, internalAddress: 10.1.0.2, role: control-plane}\n"
                           "  network:\n    controlPlaneEndpoint: 10.1.0.100:6443\n";
  auto c = config::load_text(text, "mlplat.yaml");
  if (!c) {
    FAIL(c.error().render());
  }
  return *c;
}

const compat::Row& first_row(const compat::Matrix& m)
{
  REQUIRE_FALSE(m.rows.empty());
  return m.rows.front();
}

YAML::Node kind_of(const std::vector<YAML::Node>& docs, const std::string& kind)
{
  for (const auto& d : docs) {
    if (d["kind"] && d["kind"].as<std::string>() == kind) {
      return d;
    }
  }
  FAIL("no " << kind << " document");
  return {};
}

} // namespace

TEST_CASE("kubeadm's init configuration keeps a hostile endpoint, name and network inside their fields", "[render]")
{
  auto cluster = demo_cluster();
  const auto matrix = compat::load_active_matrix();
  REQUIRE(matrix);
  const std::string endpoint = "evil:6443\nbootstrapTokens:\n- token: abcdef.0123456789abcdef";
  cluster.network.control_plane_endpoint = endpoint;
  cluster.hosts[0].name = "123"; // looks like a number to YAML: must stay the string "123"
  cluster.network.pod_cidr = "10.244.0.0/16\" # ";
  const auto text = kube::render_init_config(cluster, first_row(*matrix), cluster.hosts[0]);
  REQUIRE(text);
  const auto docs = YAML::LoadAll(*text);
  REQUIRE(docs.size() == 3);
  const auto cc = kind_of(docs, "ClusterConfiguration");
  CHECK(cc["controlPlaneEndpoint"].as<std::string>() == endpoint);
  CHECK_FALSE(cc["bootstrapTokens"]);
  CHECK(cc["networking"]["podSubnet"].as<std::string>() == "10.244.0.0/16\" # ");
  CHECK(cc["kubernetesVersion"].as<std::string>() == "v" + first_row(*matrix).kubernetes.str());
  const auto init = kind_of(docs, "InitConfiguration");
  CHECK_FALSE(init["bootstrapTokens"]);
  CHECK(init["nodeRegistration"]["name"].Tag() == "!"); // quoted: a string to kubeadm, not the int 123
  CHECK(init["nodeRegistration"]["name"].as<std::string>() == "123");
  CHECK(init["localAPIEndpoint"]["bindPort"].Tag() == "?"); // the template's plain int stays plain
  CHECK(init["localAPIEndpoint"]["bindPort"].as<int>() == 6443);
  CHECK(init["nodeRegistration"]["kubeletExtraArgs"][0]["value"].as<std::string>() == "10.1.0.1");
  // Only control planes here: they run the workloads, so their taints are cleared (an empty list).
  REQUIRE(kube::control_planes_run_workloads(cluster));
  CHECK(init["nodeRegistration"]["taints"].IsSequence());
  CHECK(init["nodeRegistration"]["taints"].size() == 0);
}

TEST_CASE("kubeadm's join configuration keeps the token and a hostile node address inside their fields", "[render]")
{
  auto cluster = demo_cluster();
  cluster.hosts[1].internal_address = "10.1.0.2\n  certificateKey: planted";
  const auto text = kube::render_join_config(cluster, cluster.hosts[1], "[fd00::1]:6443", "abcdef.0123456789abcdef", "sha256:00ff", "a1b2");
  REQUIRE(text);
  const auto docs = YAML::LoadAll(*text);
  const auto join = kind_of(docs, "JoinConfiguration");
  CHECK(join["discovery"]["bootstrapToken"]["apiServerEndpoint"].as<std::string>() == "[fd00::1]:6443");
  CHECK(join["discovery"]["bootstrapToken"]["token"].as<std::string>() == "abcdef.0123456789abcdef");
  CHECK(join["discovery"]["bootstrapToken"]["caCertHashes"][0].as<std::string>() == "sha256:00ff");
  CHECK(join["nodeRegistration"]["kubeletExtraArgs"][0]["value"].as<std::string>() == "10.1.0.2\n  certificateKey: planted");
  CHECK(join["controlPlane"]["certificateKey"].as<std::string>() == "a1b2");
  CHECK(join["controlPlane"]["localAPIEndpoint"]["bindPort"].as<int>() == 6443);
  CHECK(join["controlPlane"]["localAPIEndpoint"]["advertiseAddress"].as<std::string>() == "10.1.0.2\n  certificateKey: planted");
  CHECK(join["timeouts"]["discovery"].as<std::string>() == "2m0s");
}

TEST_CASE("containerd's hosts.toml keeps a hostile mirror URL inside its table name (parsed by Python's tomllib)", "[render]")
{
  const std::string mirror = "https://m.example\"]\nskip_verify = true\n[x.\"y";
  const auto text = render::registry_hosts("docker.io", mirror);
  const auto dir = sfs::temp_directory_path() / "mlplat-unit-toml";
  sfs::create_directories(dir);
  REQUIRE(fs::write_file_atomic(dir / "hosts.toml", text, 0600));
  const auto parsed = run_process({"python3", "-c", "import json, sys, tomllib; print(json.dumps(tomllib.load(open(sys.argv[1], 'rb'))))",
                                   (dir / "hosts.toml").string()},
                                  std::chrono::seconds(20));
  REQUIRE(parsed);
  INFO(text << parsed->err);
  REQUIRE(parsed->exit_code == 0);
  const auto doc = nlohmann::json::parse(parsed->out);
  CHECK(doc["server"] == "https://registry-1.docker.io");
  CHECK_FALSE(doc.contains("skip_verify"));
  CHECK_FALSE(doc.contains("x"));
  REQUIRE(doc["host"].size() == 1);
  CHECK(doc["host"][mirror]["capabilities"] == nlohmann::json::array({"pull", "resolve"}));
  CHECK_FALSE(doc["host"][mirror].contains("skip_verify"));

  const auto config = render::containerd_config("version = 3\n[a]\n  sandbox = \"\"\n", "registry.k8s.io/pause:3.10\"\nx = 1");
  REQUIRE(config);
  CHECK(config->find("sandbox = \"registry.k8s.io/pause:3.10\\\"\\nx = 1\"") != std::string::npos);
  CHECK_FALSE(render::containerd_config("sandbox = 'x'\n", "p"));
}

TEST_CASE("a YAML template's placeholders are filled inside the parsed documents: text stays in its scalar, numbers stay numbers, lists are lists", "[render]")
{
  const std::string tmpl = "# a header that stays\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  namespace: \"@NS@\"\n"
                           "data:\n  url: \"http://svc.@NS@.svc:@PORT@/\"\n  port: \"@PORT@\"\n  hosts: \"@HOSTS@\"\n";
  const auto out = yamlio::fill(tmpl, "t.yaml",
                                {{"@NS@", std::string("ns\nkind: Secret\n---\nevil: 1")}, {"@PORT@", 8080L},
                                 {"@HOSTS@", yamlio::string_list({"a.example", "b\"c"})}});
  REQUIRE(out);
  INFO(*out);
  CHECK(out->rfind("# a header that stays\n", 0) == 0);
  const auto docs = YAML::LoadAll(*out);
  REQUIRE(docs.size() == 1);
  CHECK(docs[0]["kind"].as<std::string>() == "ConfigMap");
  CHECK(docs[0]["metadata"]["namespace"].as<std::string>() == "ns\nkind: Secret\n---\nevil: 1");
  CHECK(docs[0]["data"]["url"].as<std::string>() == "http://svc.ns\nkind: Secret\n---\nevil: 1.svc:8080/");
  CHECK(docs[0]["data"]["port"].Tag() == "?");
  CHECK(docs[0]["data"]["port"].as<int>() == 8080);
  REQUIRE(docs[0]["data"]["hosts"].IsSequence());
  CHECK(docs[0]["data"]["hosts"][1].as<std::string>() == "b\"c");
  CHECK_FALSE(docs[0]["evil"]);
  // A placeholder nothing fills, and a list inside a longer string, are the template's errors.
  CHECK_FALSE(yamlio::fill("a: '@MISSING@'\n", "t.yaml", {}));
  CHECK_FALSE(yamlio::fill("a: x-@HOSTS@\n", "t.yaml", {{"@HOSTS@", yamlio::string_list({"a"})}}));
}
