// `mlplat status` and `mlplat kubeconfig` without hosts: status judged from what the hosts would print
// (a healthy 1+2 cluster, a stopped node, an expired ingress certificate, drift of every kind, no host
// reachable), its scripts run under sh against stub programs, one read-only command per host through
// the FakeFleet, its JSON against docs/status.schema.json; kubeconfig's --ttl, the kubeadm command
// (quoted, the configuration on stdin, sensitive), the issued certificate's check (made here with
// OpenSSL), the 0600 file that is never overwritten without --force.
#include "support/catch.hpp"
#include "support/fake_fleet.hpp"

#include "commands/kubeconfig.hpp"
#include "commands/status.hpp"
#include "compat/gate.hpp"
#include "config/load.hpp"
#include "kube/kubeadm.hpp"
#include "tls/tls.hpp"
#include "util/fs.hpp"
#include "util/process.hpp"
#include "util/text.hpp"

#include <fmt/chrono.h>
#include <fmt/core.h>
#include <nlohmann/json.hpp>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <sys/stat.h>

#include <memory>

using namespace mlplat;
using namespace std::chrono_literals;
namespace sfs = std::filesystem;
namespace st = mlplat::commands::status;
using json = nlohmann::json;

namespace {

constexpr const char* k_cluster = R"(apiVersion: mlplat.dev/v1alpha1
kind: Cluster
metadata:
  name: demo
spec:
  profile: onprem
  ssh:
    user: mlp
    keyPath: KEY
  hosts:
    - name: cp-1
      address: 10.0.0.1
      internalAddress: 10.1.0.1
      role: control-plane
      labels: {tier: system}
    - name: worker-1
      address: 10.0.0.2
      internalAddress: 10.1.0.2
      role: worker
      taints: ["gpu=true:NoSchedule"]
    - name: worker-2
      address: 10.0.0.3
      internalAddress: 10.1.0.3
      role: worker
)";

struct Fixture {
  config::Cluster cluster;
  compat::Matrix matrix;
  const compat::Row* row = nullptr;

  Fixture()
  {
    const auto key = sfs::temp_directory_path() / "mlplat-unit-test-key";
    REQUIRE(fs::write_file_atomic(key, "not really a key, only needs to exist\n", 0600));
    auto c = config::load_text(text::replace_all(k_cluster, "KEY", key.string()), "mlplat.yaml");
    if (!c) {
      FAIL(c.error().render());
    }
    cluster = *c;
    auto m = compat::load_active_matrix();
    REQUIRE(m);
    matrix = *m;
    auto r = compat::select_row(matrix, cluster);
    REQUIRE(r);
    row = *r;
  }
};

std::string iso(std::chrono::system_clock::time_point t)
{
  return fmt::format("{:%Y-%m-%dT%H:%M:%SZ}", fmt::gmtime(std::chrono::system_clock::to_time_t(t)));
}

// What the hosts of a cluster print, the knobs a test turns.
struct World {
  std::string k8s;                      // the row's, "v1.36.4"
  std::string containerd = "2.3.4";
  std::map<std::string, std::string> ready{{"cp-1", "True"}, {"worker-1", "True"}, {"worker-2", "True"}};
  std::vector<std::string> nodes{"cp-1", "worker-1", "worker-2"};
  std::map<std::string, std::string> identity{{"cp-1", "machine-id=m1 host-keys=k1"}, {"worker-1", "machine-id=m2 host-keys=k2"},
                                              {"worker-2", "machine-id=m3 host-keys=k3"}};
  bool worker1_taint = true;
  std::string cp_label = "system";
  std::string calico_tag = "v3.32.1";
  std::string kfp_tag = "2.17.0";
  bool etcd_healthy = true;
  int ingress_days = 300;               // the ingress certificate's lifetime from now
  bool api_server = true;
};

std::string host_out(const World& w, const std::string& name)
{
  return fmt::format("@@ host\nos=Debian GNU/Linux 12 (bookworm)\nkernel=6.1.0-18-amd64\nkubeadm={0}\nkubelet=Kubernetes {0}\n"
                     "containerd=containerd github.com/containerd/containerd/v2 v{1} 0123abc\n{2}\n",
                     w.k8s, w.containerd, w.identity.at(name));
}

std::string nodes_json(const World& w)
{
  json items = json::array();
  for (const auto& n : w.nodes) {
    json labels{{"kubernetes.io/hostname", n}};
    json taints = json::array();
    if (n == "cp-1") {
      labels["node-role.kubernetes.io/control-plane"] = "";
      labels["tier"] = w.cp_label;
    }
    if (n == "worker-1" && w.worker1_taint) {
      taints.push_back({{"key", "gpu"}, {"value", "true"}, {"effect", "NoSchedule"}});
    }
    const std::string ready = w.ready.count(n) ? w.ready.at(n) : "True";
    items.push_back({{"metadata", {{"name", n}, {"labels", labels}, {"annotations", {{"mlplat.dev/labels", n == "cp-1" ? "tier" : ""}}}}},
                     {"spec", {{"taints", taints}}},
                     {"status",
                      {{"conditions", {{{"type", "MemoryPressure"}, {"status", "False"}}, {{"type", "Ready"}, {"status", ready}}}},
                       {"nodeInfo",
                        {{"kubeletVersion", w.k8s}, {"osImage", "Debian GNU/Linux 12 (bookworm)"}, {"kernelVersion", "6.1.0-18-amd64"},
                         {"containerRuntimeVersion", "containerd://" + w.containerd}}}}}});
  }
  return json{{"kind", "List"}, {"items", items}}.dump();
}

// The first control plane's sections (after its host section), as cluster_script prints them.
std::string cluster_out(const World& w, std::chrono::system_clock::time_point now, const std::string& ingress_pem)
{
  std::string s;
  s += "@@ version\n";
  if (w.api_server) {
    s += json{{"clientVersion", {{"gitVersion", w.k8s}}}, {"serverVersion", {{"gitVersion", w.k8s}}}}.dump() + "\n";
  }
  s += "@@ nodes\n" + (w.api_server ? nodes_json(w) : std::string()) + "\n";
  s += "@@ pods\n";
  for (const char* c : {"kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd"}) {
    s += fmt::format("{}-cp-1 cp-1 {} Running True\n", c, c);
  }
  s += "@@ certs\n";
  s += json{{"kind", "CertificateExpirationInfo"},
            {"certificateAuthorities", {{{"name", "ca"}, {"expirationDate", iso(now + 3650 * 24h)}, {"missing", false}}}},
            {"certificates",
             {{{"name", "apiserver"}, {"expirationDate", iso(now + 365 * 24h)}, {"caName", "ca"}, {"missing", false}},
              {{"name", "admin.conf"}, {"expirationDate", iso(now + 365 * 24h)}, {"missing", false}}}}}
         .dump() +
       "\n";
  s += "@@ etcd-members\n"
       R"({"header":{"cluster_id":"1"}, "members":[{"ID":"3319814642761637952", "name":"cp-1", "peerURLs":["https://10.1.0.1:2380"], "clientURLs":["https://10.1.0.1:2379"]}]})"
       "\n";
  s += std::string("@@ etcd-health\nhttps://10.1.0.1:2379 ") + (w.etcd_healthy ? R"({"health":"true","reason":""})" : R"({"health":"false","reason":"ALARM NOSPACE"})") + "\n";
  s += "@@ daemonsets\ncalico-system calico-node 3 3 quay.io/calico/node:" + w.calico_tag + ",\nkube-system kube-proxy 3 3 registry.k8s.io/kube-proxy:" + w.k8s + ",\n";
  s += "@@ deployments\n"
       "openebs openebs-localpv-provisioner 1 1 docker.io/openebs/provisioner-localpv:4.6.0,\n"
       "kubeflow ml-pipeline 1 1 ghcr.io/kubeflow/kfp-api-server:" + w.kfp_tag + ",\n"
       "kubeflow mysql 1 1 mysql:8.4,\n"
       "istio-system istio-ingressgateway 1 1 docker.io/istio/proxyv2:1.31.0,\n"
       "istio-system istiod 1 1 docker.io/istio/pilot:1.31.0,\n";
  s += "@@ storageclasses\nopenebs-hostpath true\n";
  s += "@@ ingress-cert\n" + ingress_pem;
  return s;
}

std::string ingress_pem(int days)
{
  auto ca = tls::issue_ca("mlplat test ingress", days);
  REQUIRE(ca);
  return ca->cert_pem;
}

std::vector<Result<std::string>> outputs(const World& w, std::chrono::system_clock::time_point now, const std::string& pem)
{
  return {host_out(w, "cp-1") + cluster_out(w, now, pem), host_out(w, "worker-1"), host_out(w, "worker-2")};
}

state::RunRecord a_run(int rc = 0)
{
  return {"install", "2026-12-01T10:00:00Z", "2026-12-01T10:20:00Z", rc, "/var/log/x.log"};
}

bool has_drift(const st::Report& r, const std::string& kind, const std::string& subject)
{
  return std::any_of(r.drift.begin(), r.drift.end(), [&](const st::Drift& d) { return d.kind == kind && d.subject == subject; });
}

const st::Certificate* cert_named(const st::Report& r, const std::string& name)
{
  for (const auto& c : r.certificates) {
    if (c.name == name) {
      return &c;
    }
  }
  return nullptr;
}

Error unreachable(const std::string& host, ErrorCode code = ErrorCode::connect_failed)
{
  Error e;
  e.code = code;
  e.host = host;
  e.message = host + ": connection refused";
  return e;
}

// A kubeconfig whose client certificate has CN `cn`, O `orgs` and expires `ttl` after `from`.
std::string user_kubeconfig(const std::string& cn, const std::vector<std::string>& orgs, std::chrono::system_clock::time_point from,
                            std::chrono::seconds ttl)
{
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_EC_gen("P-256"), EVP_PKEY_free);
  REQUIRE(key);
  std::unique_ptr<X509, decltype(&X509_free)> cert(X509_new(), X509_free);
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 7);
  time_t start = std::chrono::system_clock::to_time_t(from);
  X509_time_adj_ex(X509_getm_notBefore(cert.get()), 0, -300, &start);
  X509_time_adj_ex(X509_getm_notAfter(cert.get()), 0, long(ttl.count()), &start);
  X509_NAME* name = X509_get_subject_name(cert.get());
  for (const auto& o : orgs) {
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(o.c_str()), -1, -1, 0);
  }
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  X509_set_pubkey(cert.get(), key.get());
  REQUIRE(X509_sign(cert.get(), key.get(), EVP_sha256()) > 0);
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  PEM_write_bio_X509(bio.get(), cert.get());
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  const std::string pem(data, size_t(len));
  std::string b64(4 * ((pem.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(b64.data()), reinterpret_cast<const unsigned char*>(pem.data()), int(pem.size()));
  b64.resize(size_t(n));
  return "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: QUJD\n    server: https://10.1.0.1:6443\n  name: demo\n"
         "kind: Config\nusers:\n- name: " + cn + "\n  user:\n    client-certificate-data: " + b64 + "\n    client-key-data: S0VZ\n";
}


// The client certificate (only: no key) of a kubeconfig the real kubeadm v1.36.3 made with
// `kubeadm kubeconfig user --client-name alice@example.com --org ml-team --org viewers
// --validity-period 36h0m0s --config /dev/stdin` (the configuration piped in) at this time:
// kubeadm puts both groups in one multi-valued RDN.
constexpr long k_kubeadm_issued_at = 1796189471;
constexpr const char* k_kubeadm_cert_data =
  "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSURLekNDQWhPZ0F3SUJBZ0lJTXhRY3RCcmQvLzB3RFFZSktvWklodmNOQVFF"
  "TEJRQXdGVEVUTUJFR0ExVUUKQXhNS2EzVmlaWEp1WlhSbGN6QWVGdzB5TmpFeU1ESXdOVEExTURGYUZ3MHlOakV5TURNeE56TXhN"
  "VEZhTUQ0eApJREFPQmdOVkJBb1RCMjFzTFhSbFlXMHdEZ1lEVlFRS0V3ZDJhV1YzWlhKek1Sb3dHQVlEVlFRRERCRmhiR2xqClpV"
  "QmxlR0Z0Y0d4bExtTnZiVENDQVNJd0RRWUpLb1pJaHZjTkFRRUJCUUFEZ2dFUEFEQ0NBUW9DZ2dFQkFNUHUKMVIxR2s4TUd6Mys4"
  "YUhJalQ2eWcwRDM2ekVXUXZBdmZ6WGRLdnpPTFgyWW5QWW40ODB2THhEdkRTQ3BQS2tmUApBbm1RcWtDYlM4UlNtQ0JLczZYRVlw"
  "MkZDQnh4OHVRWG9OdGN4Mnd4YVRseGNFN1MzNVEwUzJFd3NDNkRwNmJKCmcrbnF0QjF3MHp6SldnRkFLRnJLNldURzg5V2xTSjNR"
  "MFcyRU43dTkrVXZoOThhZzBQbElCVzNYOFJLNFQrUDIKOTBpdUxCbFMzVDBYL0ZYRFdoMVJLOEtlY0NOekwyL01yN3YyY3JXWGVw"
  "YnU4VEJ3WDlsbDZJOGJrb2dZRmlUQgpLUnhWVlBrSUlsZmtrL2xKelU5eTRhaXdJcjduMVMwN0pVQTVzT0NjVE9veDY1UEZ3dGIv"
  "K2NzeGUzQjh3M3hVCnB3SmlYTFI1eWpvNEpaQnpnWHNDQXdFQUFhTldNRlF3RGdZRFZSMFBBUUgvQkFRREFnV2dNQk1HQTFVZEpR"
  "UU0KTUFvR0NDc0dBUVVGQndNQ01Bd0dBMVVkRXdFQi93UUNNQUF3SHdZRFZSMGpCQmd3Rm9BVWZjR0N4MHBqYUVNUApHUzg3aFNS"
  "VHVycUpPU293RFFZSktvWklodmNOQVFFTEJRQURnZ0VCQUhrQVA0ZVJDK0FLdUl6bzZHSzZMbHMwCjRBV3dQUHlQOWNQdlE5emw4"
  "UXdPWlg1VGNYZVc2aVRjNVpRSXZ3TGRyLytHTjl6YVl0VlVodkZwM0Z6MllWb1EKSkpzd3pIZC9KalpjWFlJVDNnOVFVUHkxc25T"
  "SmZ5Tm5BV09nQjh4WEpEZEUzMEdUN3dBZ2NNSTQzMDlGVWQycAp6SzIzWGF6bmJ4RXRCRHp6WVlMMm5Pb045aTdFdkc3bzBINkJn"
  "cFdoOTltTmJheExSR0wzeGVpa3RSbmdaVmhYCk5TZDlKZ1pTN2xwRUlLb3A2K2NQeGFYOUM0RjBrUWkrWlNZeSs4a2hEaGkzZDhX"
  "ektGcUdXcDVaMTlQT25LVEMKNHlnOVFHbzNGRkdrNFU4eWRBaTJpS3J2OHAxWjhiS2pFaHB2VEwzcVBPYUpVTDZLcGJNTGpVMDdC"
  "VklTem5zPQotLS0tLUVORCBDRVJUSUZJQ0FURS0tLS0tCg==";

} // namespace

TEST_CASE("status of a healthy 1+2 cluster: every node Ready, the control plane, etcd, the platform at the row's versions, exit 0", "[status]")
{
  Fixture f;
  const auto now = std::chrono::system_clock::now();
  World w;
  w.k8s = "v" + f.row->kubernetes.str();
  st::Inputs in{&f.cluster, f.row, nullptr, a_run(), now};
  const auto r = st::judge(in, outputs(w, now, ingress_pem(w.ingress_days)));
  INFO(st::render_text(r));
  CHECK(r.api_server);
  CHECK(r.drift.empty());
  CHECK_FALSE(r.degraded());
  CHECK(r.exit_code() == 0);
  REQUIRE(r.nodes.size() == 3);
  CHECK(r.nodes[0].ready == "True");
  CHECK(r.nodes[0].roles == std::vector<std::string>{"control-plane"});
  CHECK(r.nodes[1].containerd == "2.3.4");
  CHECK(r.nodes[2].kubeadm == w.k8s);
  CHECK(r.control_plane.size() == 4);
  REQUIRE(r.etcd.size() == 1);
  CHECK(r.etcd[0].healthy);
  REQUIRE(r.components.size() == 4);
  for (const auto& c : r.components) {
    INFO(c.name << " " << c.state << " " << c.detail);
    CHECK(c.state == "ready");
    CHECK(c.version == c.expected);
  }
  const auto* ingress = cert_named(r, "ingress");
  REQUIRE(ingress != nullptr);
  CHECK(ingress->state == "ok");
  CHECK(ingress->days_left >= w.ingress_days - 1);
  CHECK(ingress->days_left <= w.ingress_days);
  REQUIRE(cert_named(r, "apiserver") != nullptr);
  CHECK(cert_named(r, "apiserver")->days_left >= 364);
  CHECK(cert_named(r, "apiserver")->days_left <= 365);
  CHECK(cert_named(r, "ca")->kind == "cluster-ca");
  CHECK(r.last_run->command == "install");
  const auto text = st::render_text(r);
  CHECK(text.find("healthy") != std::string::npos);
  CHECK(text.find("openebs-hostpath") != std::string::npos);
}

TEST_CASE("status is degraded (exit 8) for a stopped node and for an expired ingress certificate, and says which", "[status]")
{
  Fixture f;
  const auto now = std::chrono::system_clock::now();
  World w;
  w.k8s = "v" + f.row->kubernetes.str();
  st::Inputs in{&f.cluster, f.row, nullptr, a_run(), now};
  SECTION("a stopped node: its SSH fails and its Node is NotReady; the rest is shown")
  {
    w.ready["worker-2"] = "Unknown";
    auto out = outputs(w, now, ingress_pem(300));
    out[2] = tl::unexpected(unreachable("worker-2"));
    const auto r = st::judge(in, out);
    CHECK(r.exit_code() == k_exit_degraded);
    CHECK_FALSE(r.nodes[2].reachable);
    CHECK(r.nodes[2].ready == "Unknown");
    CHECK(r.nodes[1].reachable);
    CHECK(r.nodes[1].ready == "True");
    CHECK(std::any_of(r.problems.begin(), r.problems.end(),
                      [](const st::Problem& p) { return p.subject == "worker-2" && p.severity == "degraded"; }));
    CHECK(st::to_json(r)["status"] == "degraded");
  }
  SECTION("an expired ingress certificate")
  {
    // Issued for one day, judged 2 days on (the cluster's certificates still valid then).
    const auto later = now + 48h;
    in.now = later;
    const auto r = st::judge(in, outputs(w, later, ingress_pem(1)));
    const auto* ingress = cert_named(r, "ingress");
    REQUIRE(ingress != nullptr);
    CHECK(ingress->state == "expired");
    CHECK(ingress->days_left < 0);
    CHECK(r.exit_code() == k_exit_degraded);
    CHECK(st::to_json(r)["exitCode"] == 8);
  }
  SECTION("an ingress certificate with 10 days left is a warning, not degraded")
  {
    const auto r = st::judge(in, outputs(w, now, ingress_pem(10)));
    CHECK(cert_named(r, "ingress")->state == "expiring");
    CHECK(r.exit_code() == 0);
    CHECK_FALSE(r.problems.empty());
  }
  SECTION("an unhealthy etcd member")
  {
    w.etcd_healthy = false;
    const auto r = st::judge(in, outputs(w, now, ingress_pem(300)));
    CHECK_FALSE(r.etcd.at(0).healthy);
    CHECK(r.etcd.at(0).detail == "ALARM NOSPACE");
    CHECK(r.exit_code() == k_exit_degraded);
  }
  SECTION("the API server does not answer: the hosts are still shown, the platform is unknown")
  {
    w.api_server = false;
    const auto r = st::judge(in, outputs(w, now, ingress_pem(300)));
    CHECK_FALSE(r.api_server);
    CHECK(r.nodes.size() == 3);
    CHECK(r.nodes[1].kubelet == w.k8s);
    CHECK(r.components.at(0).state == "unknown");
    CHECK(r.drift.empty()); // not known, so not claimed
    CHECK(r.exit_code() == k_exit_degraded);
  }
}

TEST_CASE("status drift: versions against the row, nodes against the cluster file, labels, taints, host identities", "[status]")
{
  Fixture f;
  const auto now = std::chrono::system_clock::now();
  World w;
  w.k8s = "v" + f.row->kubernetes.str();
  const auto dir = sfs::temp_directory_path() / ("mlplat-status-journal-" + std::to_string(::getpid()));
  sfs::remove_all(dir);
  sfs::create_directories(dir);
  auto journal = state::Journal::open(dir, "demo");
  REQUIRE(journal);
  REQUIRE(journal->adopt_identity("worker-1", "machine-id=OLD host-keys=k2", false));
  REQUIRE(journal->adopt_identity("cp-1", "machine-id=m1 host-keys=k1", false));
  st::Inputs in{&f.cluster, f.row, &*journal, a_run(), now};

  w.containerd = "1.7.0";            // below the row's accepts
  w.calico_tag = "v3.30.0";
  w.kfp_tag = "2.15.0";
  w.cp_label = "changed";
  w.worker1_taint = false;
  w.nodes = {"cp-1", "worker-1", "stray-9"};  // worker-2 never registered; stray-9 is not in the file
  const auto r = st::judge(in, outputs(w, now, ingress_pem(300)));
  INFO(st::render_text(r));
  CHECK(has_drift(r, "version", "worker-1 containerd"));
  CHECK(has_drift(r, "version", "cni (calico)"));
  CHECK(has_drift(r, "version", "pipelines (pipelines)"));
  CHECK(has_drift(r, "image", "kubeflow/ml-pipeline"));
  CHECK_FALSE(has_drift(r, "image", "kubeflow/mysql"));  // docker.io/library/mysql:8.4 is the row's
  CHECK(has_drift(r, "label", "cp-1"));
  CHECK(has_drift(r, "taint", "worker-1"));
  CHECK(has_drift(r, "node-missing", "worker-2"));
  CHECK(has_drift(r, "node-extra", "stray-9"));
  CHECK(has_drift(r, "identity", "worker-1"));
  CHECK_FALSE(has_drift(r, "identity", "cp-1"));
  CHECK(r.exit_code() == k_exit_degraded);
  const auto j = st::to_json(r);
  CHECK(j["drift"].size() == r.drift.size());
  sfs::remove_all(dir);
}

TEST_CASE("status with no host reachable exits 4, or 5 when a host key is not trusted", "[status]")
{
  Fixture f;
  st::Inputs in{&f.cluster, f.row, nullptr, std::nullopt, std::chrono::system_clock::now()};
  std::vector<Result<std::string>> out{tl::unexpected(unreachable("cp-1")), tl::unexpected(unreachable("worker-1")),
                                       tl::unexpected(unreachable("worker-2"))};
  auto r = st::judge(in, out);
  CHECK(r.exit_code() == k_exit_connect);
  CHECK(st::to_json(r)["status"] == "unreachable");
  out[1] = tl::unexpected(unreachable("worker-1", ErrorCode::host_key_unknown));
  r = st::judge(in, out);
  CHECK(r.exit_code() == k_exit_host_key);
}

TEST_CASE("status sends one read-only command per host, the cluster's part to the first control plane only, and never reads the ingress key", "[status]")
{
  Fixture f;
  testing::FakeFleet fleet({"cp-1", "worker-1", "worker-2"});
  World w;
  w.k8s = "v" + f.row->kubernetes.str();
  const auto now = std::chrono::system_clock::now();
  const std::string pem = ingress_pem(300);
  fleet.respond([&](const std::string& host, const transport::Command&) -> std::optional<transport::ExecResult> {
    transport::ExecResult r;
    r.exit_status = 0;
    r.out = host == "cp-1" ? host_out(w, host) + cluster_out(w, now, pem) : host_out(w, host);
    return r;
  });
  st::Inputs in{&f.cluster, f.row, nullptr, a_run(), now};
  const auto r = st::gather(fleet, in);
  CHECK(r.exit_code() == 0);
  const auto sent = fleet.sent();
  REQUIRE(sent.size() == 3);
  std::set<std::string> hosts;
  for (const auto& s : sent) {
    hosts.insert(s.host);
    CHECK(s.effect == transport::Effect::read_only);
    CHECK_FALSE(s.upload);
    CHECK((s.script.find("@@ nodes") != std::string::npos) == (s.host == "cp-1"));
    CHECK(s.script.find("tls\\.key") == std::string::npos);
  }
  CHECK(hosts.size() == 3);
  CHECK(st::cluster_script().find("tls\\.crt") != std::string::npos);
}

TEST_CASE("the status scripts run under sh against stub programs and give a healthy report", "[status]")
{
  Fixture f;
  World w;
  w.k8s = "v" + f.row->kubernetes.str();
  const auto now = std::chrono::system_clock::now();
  const auto dir = sfs::temp_directory_path() / ("mlplat-status-stubs-" + std::to_string(::getpid()));
  sfs::remove_all(dir);
  sfs::create_directories(dir / "bin");
  // The stubs answer as the real programs do; the parts of cluster_out are their outputs.
  const std::string all = cluster_out(w, now, ingress_pem(300));
  auto section = [&](const std::string& name) {
    const auto start = all.find("@@ " + name + "\n") + name.size() + 4;
    return all.substr(start, all.find("@@ ", start) - start);
  };
  auto put = [&](const std::string& name, const std::string& content) {
    REQUIRE(fs::write_file_atomic(dir / name, content, 0600));
  };
  put("version", section("version"));
  put("nodes", section("nodes"));
  put("pods", section("pods"));
  put("certs", section("certs"));
  put("members", text::replace_all(section("etcd-members"), "\n", ""));
  put("health", R"({"health":"true","reason":""})");
  put("daemonsets", section("daemonsets"));
  put("deployments", section("deployments"));
  put("storageclasses", section("storageclasses"));
  {
    put("pem", section("ingress-cert"));
    const auto r = run_process({"base64", "-w0", (dir / "pem").string()}, 10s);
    REQUIRE(r);
    put("secret", r->out);
  }
  const std::string d = dir.string();
  put("bin/kubectl", "#!/bin/sh\nd=" + d + "\ncase \"$*\" in\n"
                     "  *' version '*) cat $d/version ;;\n  *'get nodes'*) cat $d/nodes ;;\n  *'get pods'*) cat $d/pods ;;\n"
                     "  *'get daemonsets'*) cat $d/daemonsets ;;\n  *'get deployments'*) cat $d/deployments ;;\n"
                     "  *'get storageclass'*) cat $d/storageclasses ;;\n  *'get secret mlplat-ingress-tls'*'tls\\.crt'*) cat $d/secret ;;\n"
                     "  *) exit 1 ;;\nesac\n");
  put("bin/kubeadm", "#!/bin/sh\nd=" + d + "\ncase \"$*\" in\n  'version -o short') echo " + w.k8s + " ;;\n"
                     "  'certs check-expiration -o json') cat $d/certs ;;\n  *) exit 1 ;;\nesac\n");
  put("bin/kubelet", "#!/bin/sh\necho 'Kubernetes " + w.k8s + "'\n");
  put("bin/containerd", "#!/bin/sh\necho 'containerd github.com/containerd/containerd/v2 v2.3.4 0123abc'\n");
  put("bin/curl", "#!/bin/sh\nd=" + d + "\nfor a; do last=$a; done\ncase \"$last\" in\n"
                  "  https://127.0.0.1:2379/v3/cluster/member/list) cat $d/members ;;\n  https://10.1.0.1:2379/health) cat $d/health ;;\n"
                  "  *) echo \"unexpected $last\" ;;\nesac\n");
  for (const char* p : {"kubectl", "kubeadm", "kubelet", "containerd", "curl"}) {
    ::chmod((dir / "bin" / p).c_str(), 0755);
  }
  const auto ran = run_process({"env", "PATH=" + d + "/bin:/usr/bin:/bin", "sh", "-c", st::host_script() + st::cluster_script()}, 30s);
  REQUIRE(ran);
  INFO(ran->out << ran->err);
  REQUIRE(ran->exit_code == 0);
  st::Inputs in{&f.cluster, f.row, nullptr, a_run(), now};
  const auto r = st::judge(in, {ran->out, host_out(w, "worker-1"), host_out(w, "worker-2")});
  INFO(st::render_text(r));
  CHECK(r.nodes[0].kubeadm == w.k8s);
  CHECK(r.nodes[0].containerd == "2.3.4");
  CHECK(r.nodes[0].identity.rfind("machine-id=", 0) == 0);
  REQUIRE(r.etcd.size() == 1);
  CHECK(r.etcd[0].healthy);
  REQUIRE(cert_named(r, "ingress") != nullptr);
  CHECK(cert_named(r, "ingress")->state == "ok");
  CHECK(r.exit_code() == 0);
  sfs::remove_all(dir);
}

TEST_CASE("the status JSON validates against docs/status.schema.json, which refuses a wrong document", "[status]")
{
  Fixture f;
  const auto now = std::chrono::system_clock::now();
  World w;
  w.k8s = "v" + f.row->kubernetes.str();
  w.ready["worker-2"] = "False";
  w.nodes.push_back("stray-9");
  st::Inputs in{&f.cluster, f.row, nullptr, std::nullopt, now};
  auto out = outputs(w, now, ingress_pem(300));
  out[1] = tl::unexpected(unreachable("worker-1"));
  const auto degraded = st::to_json(st::judge(in, out));
  in.last_run = a_run();
  const auto healthy = st::to_json(st::judge(in, outputs(World{w.k8s}, now, ingress_pem(300))));
  const auto dir = sfs::temp_directory_path() / ("mlplat-status-schema-" + std::to_string(::getpid()));
  sfs::create_directories(dir);
  auto validate = [&](const json& doc) {
    REQUIRE(fs::write_file_atomic(dir / "doc.json", doc.dump(), 0600));
    // Debian's python3 with python3-jsonschema (scripts/install-deps.sh).
    auto r = run_process({"/usr/bin/python3", "-c",
                          "import json, sys, jsonschema\n"
                          "jsonschema.validate(json.load(open(sys.argv[1])), json.load(open(sys.argv[2])))\n",
                          (dir / "doc.json").string(), std::string(MLPLAT_SOURCE_DIR) + "/docs/status.schema.json"},
                         30s);
    REQUIRE(r);
    return *r;
  };
  for (const auto& doc : {healthy, degraded}) {
    const auto r = validate(doc);
    INFO(r.err);
    CHECK(r.exit_code == 0);
  }
  auto wrong = healthy;
  wrong["nodes"][0]["ready"] = true;  // a string in the schema
  CHECK(validate(wrong).exit_code != 0);
  wrong = healthy;
  wrong["status"] = "fine";
  CHECK(validate(wrong).exit_code != 0);
  sfs::remove_all(dir);
}

TEST_CASE("kubeconfig --ttl takes d, h and m within 10m..365d and refuses anything else clearly", "[kubeconfig]")
{
  CHECK(commands::parse_ttl("24h").value() == 24h);
  CHECK(commands::parse_ttl("7d").value() == 7 * 24h);
  CHECK(commands::parse_ttl("1h30m").value() == 90min);
  CHECK(commands::parse_ttl("1d12h").value() == 36h);
  CHECK(commands::parse_ttl("10m").value() == 10min);
  CHECK(commands::parse_ttl("365d").value() == 365 * 24h);
  for (const char* bad : {"", "24", "h", "9m", "366d", "1y", "24H", "1.5h", "-1h", "24h ", "9999999h", "1h;id"}) {
    INFO(bad);
    const auto r = commands::parse_ttl(bad);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == ErrorCode::usage);
    CHECK(exit_code_for(r.error()) == k_exit_config);
    CHECK(r.error().fix.find("24h") != std::string::npos);
  }
  CHECK(commands::go_duration(36h) == "36h0m0s");
  CHECK(commands::go_duration(90min) == "1h30m0s");
}

TEST_CASE("kubeconfig --user: kubeadm kubeconfig user with the name and groups quoted, the cluster's configuration on stdin, sensitive", "[kubeconfig]")
{
  Fixture f;
  const auto config = kube::render_user_config(f.cluster, *f.row, f.cluster.first_control_plane());
  REQUIRE(config);
  CHECK(config->find("kind: ClusterConfiguration") != std::string::npos);
  CHECK(config->find("clusterName: \"demo\"") != std::string::npos);
  CHECK(config->find("controlPlaneEndpoint: \"10.1.0.1:6443\"") != std::string::npos);
  CHECK(config->find("kubernetesVersion: \"v" + f.row->kubernetes.str() + "\"") != std::string::npos);

  commands::UserRequest req{"alice@example.com", {"ml-team", "viewers"}, 36h};
  const auto cmd = commands::user_kubeconfig_command(req, *config);
  CHECK(cmd.sensitive == transport::Sensitive::yes);
  CHECK(cmd.privilege == transport::Privilege::root);
  CHECK(cmd.effect == transport::Effect::read_only);
  CHECK(cmd.script.find("kubeadm kubeconfig user --client-name alice@example.com --org ml-team --org viewers --validity-period 36h0m0s "
                        "--config /dev/stdin") != std::string::npos);
  CHECK(cmd.script.find("clusterName") == std::string::npos);  // the configuration is on stdin only

  for (const auto& bad : std::vector<commands::UserRequest>{{"system:admin", {}, 24h}, {"alice", {"system:masters"}, 24h},
                                                           {"al ice", {}, 24h}, {"alice", {"a,b"}, 24h}, {"alice", {"g", "g"}, 24h},
                                                           {"$(id)", {}, 24h}}) {
    INFO(bad.name);
    const auto r = commands::check_user_request(bad);
    REQUIRE_FALSE(r);
    CHECK(exit_code_for(r.error()) == k_exit_config);
  }
  CHECK(commands::check_user_request(req));
}

TEST_CASE("kubeconfig checks the issued certificate: its CN, its groups and its lifetime, from the host's clock", "[kubeconfig]")
{
  const auto now = std::chrono::system_clock::now();
  const commands::UserRequest req{"alice", {"ml-team", "viewers"}, 36h};
  CHECK(commands::check_issued(user_kubeconfig("alice", {"viewers", "ml-team"}, now, 36h), req, now));
  const auto cert = commands::issued_cert(user_kubeconfig("alice", {"ml-team"}, now, 36h));
  REQUIRE(cert);
  CHECK(cert->common_name == "alice");
  CHECK(cert->organizations == std::vector<std::string>{"ml-team"});
  CHECK_FALSE(commands::check_issued(user_kubeconfig("bob", {"ml-team", "viewers"}, now, 36h), req, now));
  CHECK_FALSE(commands::check_issued(user_kubeconfig("alice", {"ml-team"}, now, 36h), req, now));
  CHECK_FALSE(commands::check_issued(user_kubeconfig("alice", {"ml-team", "viewers"}, now, 8760h), req, now));
  CHECK_FALSE(commands::check_issued("apiVersion: v1\nkind: Config\n", req, now));

  // Through the fleet: the host's clock on stderr is what the lifetime counts from.
  Fixture f;
  testing::FakeFleet fleet({"cp-1"});
  const auto host_now = now - 2h;  // the host's clock is two hours behind ours
  fleet.respond([&](const std::string&, const transport::Command& c) -> std::optional<transport::ExecResult> {
    transport::ExecResult r;
    r.exit_status = 0;
    r.out = user_kubeconfig("alice", {"ml-team", "viewers"}, host_now, 36h);
    r.err = std::to_string(std::chrono::system_clock::to_time_t(host_now)) + "\n";
    CHECK(c.input != nullptr);
    return r;
  });
  config::Cluster one = f.cluster;
  one.hosts = {f.cluster.hosts[0]};
  const auto got = commands::fetch_kubeconfig(fleet, one, *f.row, req);
  INFO((got ? std::string() : got.error().message));
  REQUIRE(got);
  const auto sent = fleet.sent();
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].input.find("controlPlaneEndpoint") != std::string::npos);
}

TEST_CASE("kubeconfig: the admin's from admin.conf without logging it, written 0600, never over a file without --force", "[kubeconfig]")
{
  Fixture f;
  testing::FakeFleet fleet({"cp-1"});
  fleet.answer("cat /etc/kubernetes/admin.conf", "apiVersion: v1\nkind: Config\n# admin\n");
  config::Cluster one = f.cluster;
  one.hosts = {f.cluster.hosts[0]};
  const auto got = commands::fetch_kubeconfig(fleet, one, *f.row, {});
  REQUIRE(got);
  CHECK(got->find("# admin") != std::string::npos);
  CHECK(commands::admin_kubeconfig_command().sensitive == transport::Sensitive::yes);

  const auto dir = sfs::temp_directory_path() / ("mlplat-kubeconfig-" + std::to_string(::getpid()));
  sfs::remove_all(dir);
  sfs::create_directories(dir);
  const auto file = dir / "admin.conf";
  REQUIRE(commands::write_kubeconfig(file, *got, commands::Overwrite::no));
  struct stat st_buf {};
  REQUIRE(::stat(file.c_str(), &st_buf) == 0);
  CHECK((st_buf.st_mode & 0777) == 0600);
  const auto again = commands::write_kubeconfig(file, "other", commands::Overwrite::no);
  REQUIRE_FALSE(again);
  CHECK(exit_code_for(again.error()) == k_exit_config);
  CHECK(again.error().fix.find("--force") != std::string::npos);
  CHECK(fs::read_file(file).value() == *got);
  REQUIRE(commands::write_kubeconfig(file, "other", commands::Overwrite::yes));
  CHECK(fs::read_file(file).value() == "other");
  sfs::remove_all(dir);
}

TEST_CASE("kubeconfig reads the certificate the real kubeadm kubeconfig user issued: both groups of its multi-valued RDN, its 36 h", "[kubeconfig]")
{
  const std::string kubeconfig = std::string("apiVersion: v1\nkind: Config\nusers:\n- name: alice@example.com\n  user:\n"
                                             "    client-certificate-data: ") + k_kubeadm_cert_data + "\n";
  const auto cert = commands::issued_cert(kubeconfig);
  REQUIRE(cert);
  CHECK(cert->common_name == "alice@example.com");
  auto orgs = cert->organizations;
  std::sort(orgs.begin(), orgs.end());
  CHECK(orgs == std::vector<std::string>{"ml-team", "viewers"});
  const auto at = std::chrono::system_clock::time_point(std::chrono::seconds(k_kubeadm_issued_at));
  CHECK(commands::check_issued(kubeconfig, {"alice@example.com", {"viewers", "ml-team"}, 36h}, at));
  CHECK_FALSE(commands::check_issued(kubeconfig, {"alice@example.com", {"viewers", "ml-team"}, 24h}, at));
  CHECK_FALSE(commands::check_issued(kubeconfig, {"alice@example.com", {"viewers"}, 36h}, at));
}
