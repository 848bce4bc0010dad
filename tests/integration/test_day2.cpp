// DRAFT, NEEDS THE TESTBED: not in tests/CMakeLists.txt yet; the lead wires it in (like
// mlplat_install_tests: MLPLAT_BINARY, MLPLAT_BINARY_DIR, MLPLAT_SOURCE_DIR, MLPLAT_TESTBED_SCRIPT,
// label testbed, FIXTURES_REQUIRED testbed) and runs it on the real control plane.
//
// mlplat status and mlplat kubeconfig on the real control plane: a cluster installed by mlplat (the
// cluster layer, Pipelines off) is healthy (exit 0, the JSON valid against docs/status.schema.json); a
// stopped node and an expired ingress certificate make it degraded (exit 8) and are named; the admin
// kubeconfig (0600, never over a file without --force); a user's kubeconfig whose certificate has the
// asked lifetime and group, and with which kubectl gets exactly that group's permissions.
//
// Hosts: node-108 (control plane) and node-109 (worker), which no other test uses; testbed.hpp must
// list them and `testbed.sh up` must bring up 109 hosts (tests/CMakeLists.txt: testbed.up).
//
// The small helpers in the anonymous namespace are copies of test_install.cpp's (mlplat_run, on_host,
// contains, kubectl_on, bundle_signer, cluster_file, fresh_host, real_bundle, k_real_data,
// k_real_cluster, wait_for_nodes): to be shared in a header (tests/integration/install_helpers.hpp?)
// when this file is wired in.
#include "support/catch.hpp"

#include "support/http_server.hpp"

#include "integration/testbed.hpp"
#include "tls/tls.hpp"
#include "util/fs.hpp"
#include "util/text.hpp"

#include <nlohmann/json.hpp>

#include <sys/stat.h>

#include <chrono>
#include <thread>

using namespace mlplat;
using namespace std::chrono_literals;

namespace {

ProcessResult mlplat_run(std::vector<std::string> args, std::chrono::seconds deadline = 180s)
{
  args.insert(args.begin(), MLPLAT_BINARY);
  auto r = run_process(args, deadline);
  REQUIRE(r);
  return *r;
}

ProcessResult on_host(int n, const std::string& script)
{
  auto r = run_process({MLPLAT_TESTBED_SCRIPT, "exec", "node-" + std::to_string(n), "sh", "-c", script}, 60s);
  REQUIRE(r);
  return *r;
}

bool contains(const std::string& haystack, const std::string& needle)
{
  return haystack.find(needle) != std::string::npos;
}

std::string kubectl_on(int first, const std::string& args)
{
  const auto r = on_host(first, "kubectl --kubeconfig /etc/kubernetes/admin.conf " + args);
  INFO(r.err);
  return r.out;
}

const char* const k_bundle_signer = "install-test@mlplat.test";
struct BundleSigner {
  std::string key;
  std::string allowed;
};
BundleSigner bundle_signer(const std::string& dir)
{
  BundleSigner s{dir + "/bundle-signer", dir + "/allowed_signers"};
  if (!std::filesystem::exists(s.key)) {
    auto made = run_process({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", k_bundle_signer, "-f", s.key}, 30s);
    REQUIRE(made);
    REQUIRE(made->ok());
    REQUIRE(fs::write_file_atomic(s.allowed, std::string(k_bundle_signer) + " " + *fs::read_file(s.key + ".pub"), 0644));
  }
  return s;
}

std::string cluster_file(const std::string& dir, const std::vector<int>& nodes, const std::string& extra_spec = "")
{
  std::string text = "apiVersion: mlplat.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: day2-test\nspec:\n  ssh:\n    user: mlp\n    keyPath: " +
                     testbed::key() + "\n    knownHosts: " + testbed::known_hosts() + "\n    connectTimeoutSeconds: 3\n  hosts:\n";
  for (size_t i = 0; i < nodes.size(); ++i) {
    text += "    - {name: node-" + std::to_string(nodes[i]) + ", address: " + testbed::address(nodes[i]) +
            ", role: " + (i == 0 ? "control-plane" : "worker") + "}\n";
  }
  text += extra_spec;
  text += "  bundle:\n    allowedSigners: " + bundle_signer(dir).allowed + "\n    signer: " + k_bundle_signer + "\n";
  REQUIRE(fs::write_file_atomic(dir + "/mlplat.yaml", text, 0644));
  return dir + "/mlplat.yaml";
}

void fresh_host(int n)
{
  testbed::script({"wipe", "node-" + std::to_string(n)});
}

const std::string k_real_data = MLPLAT_BINARY_DIR "/testbed-programs/data";
const std::string k_real_cluster = "prepare,artifacts,containerd,init,join-control-planes,join-workers,kubeconfig,nodes,cni,storage,cleanup";

std::string real_bundle(const std::string& dir)
{
  auto row = mlplat_run({"--data-dir", k_real_data, "matrix", "--row", "k8s-1.36", "--output", "json"});
  REQUIRE(row.exit_code == 0);
  REQUIRE(fs::write_file_atomic(dir + "/row.json", row.out, 0644));
  auto mirror = run_process({"python3", MLPLAT_SOURCE_DIR "/tests/testbed/standin-mirror.py", "--matrix-json", dir + "/row.json",
                             "--out", dir + "/www"}, 60s);
  REQUIRE(mirror);
  REQUIRE(mirror->ok());
  mlplat::testing::HttpServer server(dir + "/www");
  const std::string out = dir + "/bundle.tar.gz";
  auto created = mlplat_run({"--data-dir", k_real_data, "bundle", "create", "--base-url", server.url(), "--accept-unpinned", "all", "-o", out,
                             "--sign-key", bundle_signer(dir).key});
  REQUIRE(created.exit_code == 0);
  return out;
}

// Waits (at most 180 s) until node `name` has Ready status `status` on `first`.
void wait_for_ready(int first, const std::string& name, const std::string& status)
{
  std::string last;
  for (int i = 0; i < 90; ++i) {
    last = kubectl_on(first, "get node " + name + " -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}'");
    if (std::string(text::trim(last)) == status) {
      return;
    }
    std::this_thread::sleep_for(2s);
  }
  FAIL("node " << name << " is not Ready=" << status << " after 180 s: " << last);
}

// `mlplat status --output json` for `file`, its JSON checked against docs/status.schema.json.
nlohmann::json status_json(const std::string& dir, const std::string& file, const std::string& state, int expected_exit)
{
  const auto r = mlplat_run({"--data-dir", k_real_data, "status", "-c", file, "--state-dir", state, "--output", "json"}, 300s);
  INFO(r.out << r.err);
  CHECK(r.exit_code == expected_exit);
  REQUIRE(fs::write_file_atomic(dir + "/status.json", r.out, 0600));
  const auto valid = run_process({"/usr/bin/python3", "-c",
                                  "import json, sys, jsonschema\n"
                                  "jsonschema.validate(json.load(open(sys.argv[1])), json.load(open(sys.argv[2])))\n",
                                  dir + "/status.json", MLPLAT_SOURCE_DIR "/docs/status.schema.json"},
                                 30s);
  REQUIRE(valid);
  INFO(valid->err);
  CHECK(valid->exit_code == 0);
  return nlohmann::json::parse(r.out);
}

const nlohmann::json* find_named(const nlohmann::json& list, const std::string& name)
{
  for (const auto& item : list) {
    if (item.value("name", "") == name) {
      return &item;
    }
  }
  return nullptr;
}

// The certificate of a kubeconfig file as `openssl x509` prints it: subject and end date (seconds).
std::pair<std::string, long> client_cert(const std::string& kubeconfig)
{
  const auto r = run_process({"sh", "-c", "grep client-certificate-data " + text::shell_quote(kubeconfig) +
                                              " | awk '{print $2}' | base64 -d | openssl x509 -noout -subject -enddate -dateopt iso_8601"},
                             30s);
  REQUIRE(r);
  REQUIRE(r->ok());
  std::string subject;
  long end = 0;
  for (const auto& line : text::split(r->out, '\n')) {
    if (line.rfind("subject=", 0) == 0) {
      subject = line.substr(8);
    } else if (line.rfind("notAfter=", 0) == 0) {
      const auto d = run_process({"date", "-d", line.substr(9), "+%s"}, 10s);
      REQUIRE(d);
      end = std::stol(d->out);
    }
  }
  return {subject, end};
}

// Whether the user of `kubeconfig` (copied to the control plane, which reaches the API server) may
// `verb resource`: kubectl auth can-i prints yes or no.
std::string can_i(int first, const std::string& kubeconfig, const std::string& verb_resource)
{
  const auto content = fs::read_file(kubeconfig);
  REQUIRE(content);
  const auto r = on_host(first, "umask 077; cat > /tmp/day2-user.conf <<'EOF'\n" + *content + "EOF\n"
                                "kubectl --kubeconfig /tmp/day2-user.conf auth can-i " + verb_resource + "; rm -f /tmp/day2-user.conf");
  return std::string(text::trim(r.out));
}

} // namespace

TEST_CASE("status on the real control plane: healthy exits 0 with valid JSON; a stopped node and an expired ingress certificate exit 8, named",
          "[day2][real]")
{
  const std::string dir = testbed::temp_dir("day2-status");
  const std::string state = dir + "/state";
  const std::vector<int> nodes{108, 109};
  for (int n : nodes) {
    fresh_host(n);
  }
  const auto file = cluster_file(dir, nodes, "  pipelines:\n    enabled: false\n");
  const auto bundle = real_bundle(dir);
  const auto installed = mlplat_run({"--data-dir", k_real_data, "install", "-c", file, "--state-dir", state, "--bundle", bundle,
                                     "--only", k_real_cluster}, 900s);
  INFO(installed.out << installed.err);
  REQUIRE(installed.exit_code == 0);

  // Healthy: every node Ready at the row's versions, the control plane and etcd up, no drift.
  auto j = status_json(dir, file, state, 0);
  CHECK(j["status"] == "healthy");
  CHECK(j["drift"].empty());
  REQUIRE(j["nodes"].size() == 2);
  for (const auto& n : j["nodes"]) {
    CHECK(n["ready"] == "True");
    CHECK(n["reachable"] == true);
    CHECK_FALSE(n["kubelet"].get<std::string>().empty());
  }
  CHECK(j["controlPlane"].size() == 4);
  REQUIRE(j["etcd"].size() == 1);
  CHECK(j["etcd"][0]["healthy"] == true);
  CHECK((*find_named(j["components"], "cni"))["state"] == "ready");
  CHECK((*find_named(j["components"], "storage"))["state"] == "ready");
  CHECK((*find_named(j["components"], "pipelines"))["state"] == "disabled");
  REQUIRE(find_named(j["certificates"], "apiserver") != nullptr);
  CHECK((*find_named(j["certificates"], "apiserver"))["daysLeft"].get<long>() > 300);
  // status wrote nothing: no lock, no journal change.
  const auto journal_before = fs::read_file(state + "/journal.json");
  const auto text = mlplat_run({"--data-dir", k_real_data, "status", "-c", file, "--state-dir", state});
  CHECK(text.exit_code == 0);
  CHECK(contains(text.out, "healthy"));
  CHECK(fs::read_file(state + "/journal.json").value() == journal_before.value());

  SECTION("an expired ingress certificate: degraded, named")
  {
    // Pipelines on in the file (the platform was not installed: pipelines and gateway are absent,
    // which is degraded too); the Secret holds a certificate that expired.
    const auto with_platform = cluster_file(dir, nodes);
    const auto expired = tls::issue_ca("expired ingress", 0);
    REQUIRE(expired);
    std::this_thread::sleep_for(2s);
    REQUIRE(on_host(108, "umask 077; mkdir -p /tmp/day2-tls && cat > /tmp/day2-tls/tls.crt <<'EOF'\n" + expired->cert_pem +
                             "EOF\ncat > /tmp/day2-tls/tls.key <<'EOF'\n" + expired->key_pem + "EOF\n"
                             "k='kubectl --kubeconfig /etc/kubernetes/admin.conf'; $k create namespace istio-system 2>/dev/null; "
                             "$k -n istio-system create secret tls mlplat-ingress-tls --cert /tmp/day2-tls/tls.crt --key /tmp/day2-tls/tls.key; "
                             "rc=$?; rm -rf /tmp/day2-tls; exit $rc")
              .ok());
    j = status_json(dir, with_platform, state, 8);
    CHECK(j["status"] == "degraded");
    const auto* ingress = find_named(j["certificates"], "ingress");
    REQUIRE(ingress != nullptr);
    CHECK((*ingress)["state"] == "expired");
    CHECK((*ingress)["daysLeft"].get<long>() <= 0);
    bool named = false;
    for (const auto& p : j["problems"]) {
      named = named || (p["subject"] == "ingress certificate" && p["severity"] == "degraded");
    }
    CHECK(named);
    kubectl_on(108, "-n istio-system delete secret mlplat-ingress-tls");
  }
  SECTION("a stopped node: unreachable and NotReady, the rest still shown, degraded")
  {
    // The kubelet stopped (the stand-in under the systemd stand-in), then sshd killed: the host is down.
    on_host(109, "systemctl stop kubelet");
    testbed::script({"kill-sshd", "node-109"});
    wait_for_ready(108, "node-109", "Unknown");
    j = status_json(dir, file, state, 8);
    CHECK(j["status"] == "degraded");
    const auto* down = find_named(j["nodes"], "node-109");
    REQUIRE(down != nullptr);
    CHECK((*down)["reachable"] == false);
    CHECK((*down)["ready"] != "True");
    CHECK((*down).contains("error"));
    CHECK((*find_named(j["nodes"], "node-108"))["ready"] == "True");
    testbed::script({"restart", "node-109"});
    wait_for_ready(108, "node-109", "True");
  }
}

TEST_CASE("kubeconfig on the real control plane: the admin's 0600 and never overwritten without --force; a user's with the asked lifetime and "
          "group gets exactly that group's permissions",
          "[day2][real]")
{
  const std::string dir = testbed::temp_dir("day2-kubeconfig");
  const std::string state = dir + "/state";
  const std::vector<int> nodes{108, 109};
  const auto file = cluster_file(dir, nodes, "  pipelines:\n    enabled: false\n");
  // The cluster of the status test when it ran first in this binary; else installed here.
  if (!on_host(108, "test -f /etc/kubernetes/admin.conf").ok()) {
    for (int n : nodes) {
      fresh_host(n);
    }
    const auto bundle = real_bundle(dir);
    REQUIRE(mlplat_run({"--data-dir", k_real_data, "install", "-c", file, "--state-dir", state, "--bundle", bundle, "--only", k_real_cluster},
                       900s)
              .exit_code == 0);
  }

  // The admin's: the control plane's admin.conf, 0600; an existing file is refused before any connection.
  const std::string admin = dir + "/admin.conf";
  auto r = mlplat_run({"--data-dir", k_real_data, "kubeconfig", "-c", file, "--file", admin});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  struct stat st {};
  REQUIRE(::stat(admin.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(fs::read_file(admin).value() == on_host(108, "cat /etc/kubernetes/admin.conf").out);
  CHECK_FALSE(contains(r.err, "client-key-data"));  // never logged
  r = mlplat_run({"--data-dir", k_real_data, "kubeconfig", "-c", file, "--file", admin});
  CHECK(r.exit_code == 2);
  CHECK(contains(r.err, "--force"));
  CHECK(mlplat_run({"--data-dir", k_real_data, "kubeconfig", "-c", file, "--file", admin, "--force"}).exit_code == 0);
  // To stdout by default.
  r = mlplat_run({"--data-dir", k_real_data, "kubeconfig", "-c", file});
  CHECK(r.exit_code == 0);
  CHECK(contains(r.out, "client-key-data"));

  // A user in group ml-viewers for 2 hours: the certificate says so.
  const std::string alice = dir + "/alice.conf";
  const long asked_at = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  r = mlplat_run({"--data-dir", k_real_data, "kubeconfig", "-c", file, "--user", "alice", "--group", "ml-viewers", "--ttl", "2h", "--file", alice});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const auto [subject, end] = client_cert(alice);
  CHECK(contains(subject, "O = ml-viewers"));
  CHECK(contains(subject, "CN = alice"));
  CHECK(std::abs(end - (asked_at + 7200)) < 600);
  CHECK_FALSE(contains(fs::read_file(alice).value(), "system:masters"));

  // Before any binding: authenticated, allowed nothing.
  CHECK(can_i(108, alice, "list pods -n default") == "no");
  // The group bound to view: reads, no writes, no Secrets (view excludes them).
  kubectl_on(108, "create clusterrolebinding day2-ml-viewers --clusterrole view --group ml-viewers");
  CHECK(can_i(108, alice, "list pods -n default") == "yes");
  CHECK(can_i(108, alice, "list deployments -n kube-system") == "yes");
  CHECK(can_i(108, alice, "create pods -n default") == "no");
  CHECK(can_i(108, alice, "get secrets -n default") == "no");
  CHECK(can_i(108, alice, "delete nodes") == "no");
  // A user of a group with no binding gets nothing.
  const std::string bob = dir + "/bob.conf";
  REQUIRE(mlplat_run({"--data-dir", k_real_data, "kubeconfig", "-c", file, "--user", "bob", "--group", "unbound", "--ttl", "1h", "--file", bob})
            .exit_code == 0);
  CHECK(can_i(108, bob, "list pods -n default") == "no");
  kubectl_on(108, "delete clusterrolebinding day2-ml-viewers");

  // Refused before any connection: a reserved group, a lifetime out of bounds.
  CHECK(mlplat_run({"kubeconfig", "-c", file, "--user", "eve", "--group", "system:masters"}).exit_code == 2);
  CHECK(mlplat_run({"kubeconfig", "-c", file, "--user", "eve", "--ttl", "400d"}).exit_code == 2);
}
