// mlplat install and plan on testbed hosts: the matrix gate, doctor, the local lock and journal, the
// prepare phase (sysctls, kernel modules, swap off) applied for real, a rerun that changes nothing
// (proved by the audit stand-in), plan showing the commands and changing nothing.
#include "support/catch.hpp"

#include "support/http_server.hpp"
#include "support/registry.hpp"

#include "integration/audit.hpp"
#include "integration/testbed.hpp"
#include "assets/assets.hpp"
#include "bundle/bundle.hpp"
#include "compat/matrix.hpp"
#include "config/load.hpp"
#include "config/profile.hpp"
#include "fetch/probe.hpp"
#include "render/platform.hpp"
#include "render/references.hpp"
#include "util/fs.hpp"
#include "tls/tls.hpp"
#include "util/sha256.hpp"

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include <sys/stat.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <functional>
#include <map>
#include <future>
#include <set>
#include <regex>
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

// The key that signs the test's bundles (made at test time in `dir`, once) and the allowed signers
// file naming it, which every cluster file of the test names in spec.bundle.
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

std::string cluster_file(const std::string& dir, const std::vector<int>& nodes, const std::string& extra_host = "", size_t control_planes = 1,
                         const std::string& extra_spec = "")
{
  std::string text = "apiVersion: mlplat.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: install-test\nspec:\n  ssh:\n    user: mlp\n    keyPath: " +
                     testbed::key() + "\n    knownHosts: " + testbed::known_hosts() + "\n    connectTimeoutSeconds: 3\n  hosts:\n";
  for (size_t i = 0; i < nodes.size(); ++i) {
    text += "    - {name: node-" + std::to_string(nodes[i]) + ", address: " + testbed::address(nodes[i]) +
            ", role: " + (i < control_planes ? "control-plane" : "worker") + "}\n";
  }
  text += extra_host;
  text += extra_spec;
  text += "  bundle:\n    allowedSigners: " + bundle_signer(dir).allowed + "\n    signer: " + k_bundle_signer + "\n";
  REQUIRE(fs::write_file_atomic(dir + "/mlplat.yaml", text, 0644));
  return dir + "/mlplat.yaml";
}

// Runs `run` with the audit on for `nodes` and returns what it printed; turning the audit on restarts
// the hosts (a reboot), so `after_restart` runs first when given (waiting for what the reboot
// stopped). The test fails on any mutating command or system call the hosts' sessions made.
ProcessResult audited_run(const std::vector<int>& nodes, const std::function<ProcessResult()>& run,
                          const std::function<void()>& after_restart = {})
{
  for (int n : nodes) {
    audit::clear_audit("node-" + std::to_string(n));
    testbed::script({"audit", "node-" + std::to_string(n), "on"});
  }
  if (after_restart) {
    after_restart();
    for (int n : nodes) {
      audit::clear_audit("node-" + std::to_string(n));
    }
  }
  const auto result = run();
  std::vector<audit::Audit> records;
  for (int n : nodes) {
    records.push_back(audit::read_audit("node-" + std::to_string(n)));
    testbed::script({"audit", "node-" + std::to_string(n), "off"});
  }
  for (const auto& r : records) {
    CHECK(r.sessions >= 1);
    INFO("mutations:\n" << text::join(r.mutations, "\n"));
    CHECK(r.mutations.empty());
  }
  return result;
}

// A host as a fresh boot of its image leaves it: none of what an install writes, no process of an
// earlier run (testbed.sh wipe).
void fresh_host(int n)
{
  testbed::script({"wipe", "node-" + std::to_string(n)});
}

// The test matrix of the real control plane: the row naming the Kubernetes the testbed built
// (tests/testbed/build-programs.sh writes it under its data directory).
const std::string k_real_data = MLPLAT_BINARY_DIR "/testbed-programs/data";
// etcdctl, which mlplat does not install: the testbed's build of the row's etcd, as a host sees it
// (testbed.sh binds the testbed's programs in at a host's boot).
const std::string k_programs_etcdctl = "/usr/local/lib/mlplat-testbed/upstream/etcdctl";

// The phases of the cluster layer on the real control plane, without the CNI and storage.
const std::string k_real_phases = "prepare,artifacts,containerd,init,join-control-planes,join-workers,kubeconfig,nodes";
// The whole cluster layer: the CNI (its operator and install containers run by the kubelet stand-in)
// and storage (the OpenEBS provisioner, its helper pod and the probe pod, run the same way).
const std::string k_real_cluster = k_real_phases + ",cni,storage,cleanup";

// The test matrix as this process's data, for as long as it lives (tests that call mlplat's library).
struct RealData {
  RealData() { assets::set_override_dir(k_real_data); }
  ~RealData() { assets::set_override_dir(""); }
  RealData(const RealData&) = delete;
  RealData& operator=(const RealData&) = delete;
};

// A bundle of that row from the testbed's mirror: the real kubeadm and kubectl, the kubelet and
// containerd stand-ins (tests/testbed/standin-mirror.py), downloaded and verified by `mlplat bundle
// create` for real, signed with the test's key (bundle_signer).
std::string real_bundle(const std::string& dir)
{
  auto row = mlplat_run({"--data-dir", k_real_data, "matrix", "--row", "k8s-1.36", "--output", "json"});
  REQUIRE(row.exit_code == 0);
  REQUIRE(fs::write_file_atomic(dir + "/row.json", row.out, 0644));
  auto mirror = run_process({"python3", MLPLAT_SOURCE_DIR "/tests/testbed/standin-mirror.py", "--matrix-json", dir + "/row.json",
                             "--out", dir + "/www"}, 60s);
  REQUIRE(mirror);
  INFO(mirror->out << mirror->err);
  REQUIRE(mirror->ok());
  mlplat::testing::HttpServer server(dir + "/www");
  const std::string out = dir + "/bundle.tar.gz";
  auto created = mlplat_run({"--data-dir", k_real_data, "bundle", "create", "--base-url", server.url(), "--accept-unpinned", "all", "-o", out,
                             "--sign-key", bundle_signer(dir).key});
  INFO(created.err);
  REQUIRE(created.exit_code == 0);
  return out;
}

// Nodes as the first control plane's kubectl lists them: "name status roles" per line.
std::string nodes_on(int first)
{
  const auto r = on_host(first, "kubectl --kubeconfig /etc/kubernetes/admin.conf get nodes --no-headers | awk '{print $1, $2, $3}'");
  REQUIRE(r.ok());
  return r.out;
}

std::string kubectl_on(int first, const std::string& args)
{
  const auto r = on_host(first, "kubectl --kubeconfig /etc/kubernetes/admin.conf " + args);
  INFO(r.err);
  return r.out;
}

// Waits (at most 120 s) until the API server on `first` answers again after a restart of the hosts and
// lists `count` nodes in `status` (any status when empty).
void wait_for_nodes(int first, int count, const std::string& status = "Ready")
{
  const std::string filter = status.empty() ? "" : " | awk '$2 == \"" + status + "\"'";
  std::string last;
  for (int i = 0; i < 60; ++i) {
    const auto r = run_process({MLPLAT_TESTBED_SCRIPT, "exec", "node-" + std::to_string(first), "sh", "-c",
                                "kubectl --kubeconfig /etc/kubernetes/admin.conf get nodes --no-headers 2>/dev/null" + filter + " | wc -l"}, 30s);
    if (r && r->ok() && std::string(text::trim(r->out)) == std::to_string(count)) {
      return;
    }
    last = r ? r->out + r->err : "";
    std::this_thread::sleep_for(2s);
  }
  FAIL("the API server on node-" << first << " did not list " << count << " nodes " << (status.empty() ? "" : status + " ") << "within 120 s: " << last);
}

} // namespace

TEST_CASE("install makes a cluster of 1 control plane and 2 workers from a bundle on the real control plane, a rerun changes nothing (audited)",
          "[install][real]")
{
  const std::string dir = testbed::temp_dir("install-runtime");
  const std::string state = dir + "/state";
  const std::vector<int> nodes{81, 82, 85};
  // Stock hosts, logged in to as a non-root user with sudo: node-82 is Rocky Linux 9 with RHEL's sudo
  // secure_path (no /usr/local/bin), node-85 has a swap file in /etc/fstab and a second interface,
  // which carries its cluster address (internalAddress).
  testbed::script({"stock", "node-82", "rocky"});
  testbed::script({"stock", "node-85", "swap", "nic2"});
  const std::string second_nic = testbed::net() + ".215";
  // Addresses among the ingress names, IPv6 too: the rerun must keep the certificate (it reissued it
  // on every run when its IPv6 names were not read back).
  const auto file = cluster_file(dir, {81, 82}, "    - {name: node-85, address: " + testbed::address(85) + ", internalAddress: " + second_nic +
                                                  ", role: worker}\n", 1, "  ingress:\n    altNames: [192.0.2.60, 'fd00:0::60']\n");
  for (int n : nodes) {
    fresh_host(n);
  }
  // What the stock hosts would do to a program in /usr/local/bin run under sudo without mlplat's PATH.
  CHECK(on_host(82, "su mlp -c \"sudo -n sh -c 'command -v crictl || echo hidden'\"").out == "hidden\n");
  CHECK(on_host(85, "awk 'NR > 1 {print $1}' /proc/swaps").out == "/var/swapfile\n");
  const auto bundle = real_bundle(dir);
  const std::vector<std::string> install{"--data-dir", k_real_data, "install", "-c", file, "--state-dir", state, "--bundle", bundle};

  const auto first = mlplat_run(install, 900s);
  INFO(first.out << first.err);
  REQUIRE(first.exit_code == 0); // with no --ignore: doctor's findings on the stock hosts are all install's to fix
  CHECK(contains(first.err, "findings prepare fixes: NET-001, NET-002, NET-003, NET-010, OS-007)"));
  // 62 steps, about 40 of them applied (a wait counts as applied when what it waits for needed a
  // moment, as already in place when it was there at once: the real controllers take their time).
  const std::regex counts("cluster install-test: ([0-9]+) steps applied, ([0-9]+) already in place");
  std::smatch counted;
  REQUIRE(std::regex_search(first.out, counted, counts));
  CHECK(std::stoi(counted[1]) + std::stoi(counted[2]) == 62);
  CHECK(std::stoi(counted[1]) >= 36);
  // The summary: every node Ready, the kubeconfig's path.
  CHECK(contains(first.out, "summary of cluster install-test (profile onprem, row k8s-1.36: Kubernetes 1.36.3)"));
  CHECK(contains(first.out, "\n  node-81   Ready    control-plane   "));
  CHECK(contains(first.out, "\n  node-82   Ready    <none>          "));
  CHECK(contains(first.out, "\n  node-85   Ready    <none>          "));
  CHECK(contains(first.out, "kubeconfig: " + state + "/kubeconfig (0600"));
  CHECK(nodes_on(81) == "node-81 Ready control-plane\nnode-82 Ready <none>\nnode-85 Ready <none>\n");
  // node-85's node address is its internalAddress on the second interface, given to its kubelet by
  // kubeadm (node-ip), and Calico takes each node's address from the node.
  CHECK(kubectl_on(81, "get node node-85 -o jsonpath='{.status.addresses[?(@.type==\"InternalIP\")].address}'") == second_nic);
  CHECK(contains(on_host(85, "cat /var/lib/kubelet/kubeadm-flags.env").out, "--node-ip=" + second_nic));
  CHECK(kubectl_on(81, "get installation default -o jsonpath='{.spec.calicoNetwork.nodeAddressAutodetectionV4.kubernetes}'") == "NodeInternalIP");
  // Swap is off on node-85, now and in /etc/fstab; Rocky's node-82 got its programs despite secure_path.
  CHECK(on_host(85, "awk 'NR > 1' /proc/swaps | wc -l; grep -c '^# swap off for the kubelet (mlplat): /var/swapfile' /etc/fstab").out == "0\n1\n");
  CHECK(contains(on_host(82, "cat /etc/os-release").out, "ID=\"rocky\""));

  // The workers got only what a node needs; the control plane the whole bundle, both verified there.
  CHECK(on_host(81, "test -f /var/lib/mlplat/bundle/k8s-1.36/files/pipelines-source/2.17.0.tar.gz").ok());
  CHECK_FALSE(on_host(82, "test -e /var/lib/mlplat/bundle/k8s-1.36/files/pipelines-source").ok());
  for (int n : nodes) {
    const auto v = on_host(n, "containerd --version; runc --version | head -1; kubeadm version -o short; kubelet --version; "
                              "systemctl is-active containerd; systemctl is-enabled kubelet; cat /etc/containerd/config.toml");
    INFO(v.out << v.err);
    CHECK(v.ok());
    CHECK(contains(v.out, "containerd github.com/containerd/containerd/v2 v2.3.4"));
    CHECK(contains(v.out, "runc version 1.4.3"));
    CHECK(contains(v.out, "v1.36.3\nKubernetes v1.36.3\nactive\nenabled"));
    CHECK(contains(v.out, "version = 3"));
    CHECK(contains(v.out, "SystemdCgroup = true"));
    CHECK(contains(v.out, "sandbox = \"registry.k8s.io/pause:3.10.2\""));
    const auto files = on_host(n, "cat /etc/sysctl.d/90-mlplat.conf /etc/modules-load.d/mlplat.conf && sysctl -n net.ipv4.ip_forward");
    REQUIRE(files.ok());
    CHECK(contains(files.out, "net.bridge.bridge-nf-call-iptables = 1"));
    CHECK(contains(files.out, "br_netfilter"));
    CHECK(on_host(n, "cat /var/log/mlplat-standins/modprobe.log").out.find("modprobe -a overlay br_netfilter") != std::string::npos);
  }

  // kubeadm init ran on the control plane (as a service of the host, its exit code kept), from the
  // v1beta4 config mlplat wrote (0600); the API server answers with the row's version.
  const auto init = on_host(81, "cat /var/lib/mlplat/run/mlplat-kubeadm-init.rc; stat -c '%a' /etc/kubernetes/mlplat/kubeadm-init.yaml; "
                                "cat /etc/kubernetes/mlplat/kubeadm-init.yaml; kubectl --kubeconfig /etc/kubernetes/admin.conf version");
  INFO(init.out << init.err);
  REQUIRE(init.ok());
  CHECK(init.out.rfind("0\n600\n", 0) == 0);
  // The cluster's identity, to tell later that no second init made another one.
  const std::string cluster_uid = kubectl_on(81, "-n kube-system get configmap kubeadm-config -o jsonpath='{.metadata.uid}'");
  REQUIRE_FALSE(cluster_uid.empty());
  CHECK(contains(init.out, "apiVersion: kubeadm.k8s.io/v1beta4"));
  // Values from the cluster file are quoted scalars, written by yaml-cpp's emitter.
  CHECK(contains(init.out, "advertiseAddress: \"" + testbed::address(81) + "\"\n"));
  CHECK(contains(init.out, "podSubnet: \"10.244.0.0/16\""));
  CHECK(contains(init.out, "cgroupDriver: systemd"));
  CHECK(contains(init.out, "Server Version: v1.36.3"));
  // The workers joined with a config file that is gone afterwards, in a 0700 directory.
  for (int n : {82, 85}) {
    const auto joined = on_host(n, "grep -c 'client-certificate: /var/lib/kubelet/pki/kubelet-client-current.pem' /etc/kubernetes/kubelet.conf; "
                                   "stat -c '%a' /etc/kubernetes/mlplat; test -e /etc/kubernetes/mlplat/kubeadm-join.yaml || echo gone");
    CHECK(joined.out == "1\n700\ngone\n");
  }
  // Calico with the cluster's CIDR and the onprem profile's encapsulation and MTU; the default class.
  const std::string network = kubectl_on(81, "get installation default -o jsonpath='{.spec.calicoNetwork}'");
  CHECK(contains(network, "\"mtu\":1450"));
  CHECK(contains(network, "\"cidr\":\"10.244.0.0/16\""));
  CHECK(contains(network, "\"encapsulation\":\"VXLANCrossSubnet\""));
  CHECK(kubectl_on(81, "get storageclass -o jsonpath='{range .items[*]}{.metadata.name}={.metadata.annotations.storageclass\\.kubernetes\\.io/is-default-class}{\"\\n\"}{end}'") ==
        "openebs-hostpath=true\n");
  // The probe wrote its volume as uid 65534 under the base path of the node it ran on (a worker: the
  // control plane keeps its taint).
  const std::string probe_node = kubectl_on(81, "-n mlplat-probe get pod storage-probe -o jsonpath='{.spec.nodeName}'");
  REQUIRE((probe_node == "node-82" || probe_node == "node-85"));
  CHECK(contains(on_host(probe_node == "node-82" ? 82 : 85, "stat -c '%U %n' /var/openebs/local/pvc-*/probe").out, "nobody /var/openebs/local/pvc-"));
  // Cleanup: no bootstrap token, no kubeadm-certs.
  CHECK(on_host(81, "kubeadm token list 2>/dev/null | awk 'NR > 1' | wc -l").out == "0\n");
  CHECK_FALSE(on_host(81, "kubectl --kubeconfig /etc/kubernetes/admin.conf -n kube-system get secret kubeadm-certs").ok());

  // Local state: 0700 directory, 0600 journal and kubeconfig (the control plane's admin.conf).
  struct stat st{};
  REQUIRE(::stat(state.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0700);
  for (const char* f : {"/journal.json", "/kubeconfig"}) {
    REQUIRE(::stat((state + f).c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
  }
  CHECK(fs::read_file(state + "/kubeconfig").value_or("") == on_host(81, "cat /etc/kubernetes/admin.conf").out);
  CHECK(contains(*fs::read_file(state + "/kubeconfig"), "kubernetes-admin"));
  const auto journal = nlohmann::json::parse(*fs::read_file(state + "/journal.json"));
  CHECK(journal["steps"].size() == 62);

  // The platform layer. The summary names the URL and the CA to trust; the CA's key is 0600 in 0700.
  CHECK(contains(first.out, "Kubeflow Pipelines: https://pipelines.install-test.internal:30443/"));
  CHECK(contains(first.out, "trust the ingress CA " + state + "/tls/ca.crt"));
  CHECK(contains(first.out, "pipelines.install-test.internal must resolve to " + testbed::address(81)));
  REQUIRE(::stat((state + "/tls").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0700);
  for (const char* f : {"/tls/ca.key", "/tls/server.key"}) {
    REQUIRE(::stat((state + f).c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
  }
  // The custom resources exist with their CRDs (the real API server refuses one before its CRD, and an
  // object before its namespace, which the kill and the rerun tests would meet).
  for (const char* object : {"crd/applications.app.k8s.io", "crd/workflows.argoproj.io", "crd/gateways.networking.istio.io",
                             "crd/virtualservices.networking.istio.io", "-n kubeflow application.app.k8s.io/kubeflow-pipelines",
                             "-n kubeflow deployment/ml-pipeline", "-n istio-system deployment/istiod", "-n istio-system gateway/mlplat-gateway",
                             "-n istio-system secret/mlplat-ingress-tls"}) {
    INFO(object);
    CHECK(on_host(81, std::string("kubectl --kubeconfig /etc/kubernetes/admin.conf get ") + object).ok());
  }
  // Every claim on the default class; requests as the onprem profile sizes them; the gateway's
  // Secret and Service as configured.
  CHECK(kubectl_on(81, "-n kubeflow get pvc -o jsonpath='{range .items[*]}{.metadata.name}={.spec.storageClassName}{\"\\n\"}{end}'") ==
        "mysql-pv-claim=openebs-hostpath\nseaweedfs-pvc=openebs-hostpath\n");
  CHECK(kubectl_on(81, "-n kubeflow get deployment ml-pipeline -o jsonpath='{.spec.template.spec.containers[0].resources.requests.cpu}'") == "100m");
  CHECK(kubectl_on(81, "-n istio-system get secret mlplat-ingress-tls -o jsonpath='{.type}'") == "kubernetes.io/tls");
  CHECK(kubectl_on(81, "-n istio-system get svc istio-ingressgateway -o jsonpath='{.spec.type}'") == "NodePort");
  // HTTPS from this machine through the gateway, verified against mlplat's CA: the UI and the API;
  // a name outside the certificate's gets no handshake; HTTP is redirected.
  const std::string address = testbed::address(81);
  fetch::ProbeRequest q;
  q.ca_file = state + "/tls/ca.crt";
  q.resolve = {"pipelines.install-test.internal:30443:" + address, "pipelines.install-test.internal:30080:" + address,
               "other.example:30443:" + address};
  q.url = "https://pipelines.install-test.internal:30443/";
  const auto ui = fetch::get(q);
  REQUIRE(ui);
  CHECK(ui->status == 200);
  CHECK(contains(ui->body, "<title>Kubeflow Pipelines</title>"));
  const std::string first_serial = ui->peer_serial;
  CHECK_FALSE(first_serial.empty());
  q.url = "https://pipelines.install-test.internal:30443/apis/v2beta1/healthz";
  const auto api = fetch::get(q);
  REQUIRE(api);
  CHECK(contains(api->body, "\"tag_name\":\"2.17.0\""));
  q.url = "https://other.example:30443/";
  CHECK_FALSE(fetch::get(q));
  q.url = "http://pipelines.install-test.internal:30080/pipelines";
  const auto plain = fetch::get(q);
  REQUIRE(plain);
  CHECK(plain->status == 301);
  CHECK(plain->location == "https://pipelines.install-test.internal/pipelines");

  // The rerun, audited on every host: 0 steps applied, 0 mutating commands or system calls.
  // After the audit's restart the gateway's pods come back after the nodes: the rerun starts once it
  // serves again (at most 120 tries, 1 s apart), so its smoke check finds it converged.
  auto gateway_serves = [&] {
    q.url = "https://pipelines.install-test.internal:30443/";
    for (int i = 0; i < 120; ++i) {
      if (const auto r = fetch::get(q); r && r->status == 200) {
        return;
      }
      std::this_thread::sleep_for(1s);
    }
  };
  const auto second = audited_run(nodes, [&] { return mlplat_run(install, 600s); }, [&] {
    wait_for_nodes(81, 3);
    gateway_serves();
  });
  INFO(second.out << second.err);
  CHECK(second.exit_code == 0);
  CHECK(contains(second.out, "0 steps applied, 62 already in place"));
  wait_for_nodes(81, 3);  // the audit switched off restarts the hosts again
  // Still the cluster of the first init (the host's restart by the audit switch brought the API
  // server back through the kubelet).
  CHECK(kubectl_on(81, "-n kube-system get configmap kubeadm-config -o jsonpath='{.metadata.uid}'") == cluster_uid);

  // certs rotate: a new leaf from the stored CA replaces the Secret, and the gateway serves it (the
  // old serial no longer); show --live says so.
  const std::string old_ca = fs::read_file(state + "/tls/ca.crt").value_or("");
  const auto rotated = mlplat_run({"--data-dir", k_real_data, "certs", "rotate", "-c", file, "--state-dir", state});
  INFO(rotated.out << rotated.err);
  REQUIRE(rotated.exit_code == 0);
  CHECK(contains(rotated.out, "the gateway at https://pipelines.install-test.internal:30443/ serves it"));
  CHECK(fs::read_file(state + "/tls/ca.crt").value_or("") == old_ca);
  q.url = "https://pipelines.install-test.internal:30443/";
  const auto after = fetch::get(q);
  REQUIRE(after);
  CHECK(after->status == 200);
  CHECK_FALSE(after->peer_serial.empty());
  CHECK(after->peer_serial != first_serial);
  const auto shown = mlplat_run({"--data-dir", k_real_data, "certs", "show", "--live", "-c", file, "--state-dir", state});
  INFO(shown.out << shown.err);
  CHECK(shown.exit_code == 0);
  CHECK(contains(shown.out, "serial " + after->peer_serial + " (this certificate)"));
  CHECK(contains(shown.out, "names      pipelines.install-test.internal"));

  // Ctrl-C while the smoke check retries (the gateway's port refused): the run ends within a second
  // with 130, and the cluster lock on the first control plane is released.
  const std::vector<std::string> refuse_https{"-p", "tcp", "--dport", "30443", "-j", "REJECT", "--reject-with", "tcp-reset"};
  auto iptables = [&](const std::string& op) {
    std::vector<std::string> args{"exec", "node-81", "iptables", op, "INPUT"};
    args.insert(args.end(), refuse_https.begin(), refuse_https.end());
    testbed::script(args);
  };
  iptables("-I");
  {
    const std::string log = dir + "/interrupted.log";
    const pid_t run = ::fork();
    REQUIRE(run >= 0);
    if (run == 0) {
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      ::execl(MLPLAT_BINARY, MLPLAT_BINARY, "--data-dir", k_real_data.c_str(), "install", "-c", file.c_str(), "--state-dir", state.c_str(),
              "--bundle", bundle.c_str(), "--only", "smoke", static_cast<char*>(nullptr));
      ::_exit(127);
    }
    // The smoke check is under way once the lock is taken and its phase announced (at most 60 s).
    for (int i = 0; i < 600 && !contains(fs::read_file(log).value_or(""), "phase smoke"); ++i) {
      std::this_thread::sleep_for(100ms);
    }
    std::this_thread::sleep_for(3s); // a few of its retries
    CHECK(on_host(81, "ls /var/lib/mlplat/locks/").out == "install-test.lock\ninstall-test.lock.beat\n");
    const auto sent = std::chrono::steady_clock::now();
    ::kill(run, SIGINT);
    int status = 0;
    ::waitpid(run, &status, 0);
    const auto took = std::chrono::steady_clock::now() - sent;
    INFO(fs::read_file(log).value_or(""));
    WARN("install --only smoke ended " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms after SIGINT");
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 130);
    CHECK(took < 3s);
    CHECK(on_host(81, "ls /var/lib/mlplat/locks/").out == "");
  }
  iptables("-D");
  // The next install keeps the rotated certificate: nothing to change.
  const auto third = mlplat_run(install, 600s);
  CHECK(contains(third.out, "0 steps applied, 62 already in place"));
}

// What a render test renders from: its cluster file loaded, a real bundle of the test row (opened
// and verified as install does) and the matrix in use. RealData must be in effect while it is used.
struct RenderSetup {
  config::Cluster cluster;
  compat::Matrix matrix;
  bundle::Bom bom;
  std::filesystem::path bundle_dir;

  render::Inputs inputs() const
  {
    render::Inputs in;
    in.row = &matrix.default_();
    in.bom = &bom;
    in.bundle_dir = bundle_dir;
    in.registry_mirrors = cluster.registry.mirrors;
    return in;
  }
};

RenderSetup render_setup(const std::string& dir, const std::string& file)
{
  const auto bundle = real_bundle(dir);
  auto cluster = config::load_file(file);
  REQUIRE(cluster);
  auto bundle_dir = bundle::open_dir(bundle, dir + "/opened");
  REQUIRE(bundle_dir);
  auto matrix = compat::load_active_matrix();
  REQUIRE(matrix);
  bundle::Trust trust;
  trust.matrix = &*matrix;
  trust.allowed_signers = bundle_signer(dir).allowed;
  trust.signer = k_bundle_signer;
  auto bom = bundle::verify(*bundle_dir, trust);
  REQUIRE(bom);
  return RenderSetup{std::move(*cluster), std::move(*matrix), std::move(*bom), *bundle_dir};
}

TEST_CASE("the platform overlays build with a real kubectl kustomize: namespace, the class on every claim, every image from the mirror, Gateway and VirtualService", "[install][platform]")
{
  const std::string dir = testbed::temp_dir("install-render");
  const auto file = cluster_file(dir, {83}, "", 1,
                                 "  profile: gcp\n"
                                 "  registry:\n    mirrors:\n      docker.io: https://mirror.example.test:5000\n"
                                 "      ghcr.io: https://mirror.example.test:5000\n      quay.io: http://mirror.example.test:5000/\n"
                                 "      gcr.io: https://mirror.example.test:5000\n"
                                 "  ingress:\n    domain: ml.example.test\n    altNames: [kfp.example.test, 192.0.2.50]\n"
                                 "  pipelines:\n    namespace: ml-pipelines\n");
  const RealData data;
  auto setup = render_setup(dir, file);
  auto* cluster = &setup.cluster;
  auto* matrix = &setup.matrix;
  render::Inputs in = setup.inputs();
  auto profile = config::load_profile("gcp");
  REQUIRE(profile);
  const auto effective = config::effective(*cluster, *profile);
  const auto r = render::render_platform(*cluster, effective, in, dir + "/work");
  if (!r) {
    FAIL(r.error().render());
  }
  auto docs = [](const std::string& yaml) {
    std::vector<YAML::Node> out;
    for (const auto& d : YAML::LoadAll(yaml)) {
      out.push_back(d);
    }
    return out;
  };
  // Namespace: the objects, the Namespace itself, the service accounts bound by cluster roles.
  size_t namespaced = 0;
  for (const auto& d : docs(r->pipelines)) {
    CHECK(d["metadata"]["namespace"].as<std::string>() == "ml-pipelines");
    ++namespaced;
  }
  CHECK(namespaced >= 12);
  CHECK_FALSE(contains(r->pipelines + r->cluster_scoped, "kubeflow\n"));
  bool ns_object = false, subject = false;
  for (const auto& d : docs(r->cluster_scoped)) {
    const auto kind = d["kind"].as<std::string>();
    ns_object = ns_object || (kind == "Namespace" && d["metadata"]["name"].as<std::string>() == "ml-pipelines");
    if (kind == "ClusterRoleBinding") {
      subject = d["subjects"][0]["namespace"].as<std::string>() == "ml-pipelines";
    }
  }
  CHECK(ns_object);
  CHECK(subject);
  CHECK(r->crds == std::vector<std::string>{"applications.app.k8s.io", "scheduledworkflows.kubeflow.org", "workflows.argoproj.io"});
  // Every claim on the default class; every deployment's main container sized by the gcp profile.
  size_t claims = 0, deployments = 0;
  for (const auto& d : docs(r->pipelines)) {
    if (d["kind"].as<std::string>() == "PersistentVolumeClaim") {
      CHECK(d["spec"]["storageClassName"].as<std::string>() == "openebs-hostpath");
      ++claims;
    }
    if (d["kind"].as<std::string>() == "Deployment") {
      CHECK(d["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"].as<std::string>() == "250m");
      ++deployments;
    }
  }
  CHECK(claims == 2);
  CHECK(deployments == 9);
  // What doctor's capacity checks judge: 9 deployments' main containers at the gcp profile's 250m and
  // 512Mi, istiod's 500m and 2048Mi, the gateway's 100m and 128Mi.
  CHECK(r->requested_cpus == Approx(9 * 0.25 + 0.5 + 0.1));
  CHECK(r->requested_memory_gib == Approx(9 * 0.5 + 2.0 + 0.125));
  // Every image reference from the mirror, wherever upstream wrote it and whatever registry (or none):
  // image fields, Docker Hub's short forms (mysql:8.4, docker.io/alpine:3.23), environment values
  // (V2_DRIVER_IMAGE), arguments (--executor-image), ConfigMap data (cacheImage).
  REQUIRE(r->images.size() == 14);
  for (const auto& image : r->images) {
    CHECK(image.rfind("mirror.example.test:5000/", 0) == 0);
  }
  for (const auto* wanted : {"mirror.example.test:5000/library/mysql:8.4", "mirror.example.test:5000/argoproj/workflow-controller:v4.0.5",
                             "mirror.example.test:5000/library/alpine:3.23", "mirror.example.test:5000/kubeflow/kfp-driver:2.17.0",
                             "mirror.example.test:5000/kubeflow/kfp-launcher:2.17.0", "mirror.example.test:5000/argoproj/argoexec:v4.0.5",
                             "mirror.example.test:5000/containerd/busybox:latest", "mirror.example.test:5000/tfx-oss-public/ml_metadata_store_server:1.14.0",
                             "mirror.example.test:5000/kubeflow/kfp-cache-deployer:2.17.0"}) {
    CHECK(std::find(r->images.begin(), r->images.end(), wanted) != r->images.end());
  }
  CHECK(contains(r->pipelines, "- \"mirror.example.test:5000/argoproj/argoexec:v4.0.5\"\n"));
  CHECK(contains(r->pipelines, "cacheImage: \"mirror.example.test:5000/containerd/busybox\"\n"));
  CHECK_FALSE(contains(r->pipelines + r->gateway, "ghcr.io"));
  CHECK_FALSE(contains(r->pipelines + r->gateway, "docker.io"));
  CHECK_FALSE(contains(r->pipelines + r->gateway, "quay.io"));
  // The namespace everywhere: the object store addresses upstream's replacements and defaults write.
  CHECK(contains(r->pipelines, "endpoint: \\\"seaweedfs.ml-pipelines.svc:9000\\\""));
  CHECK(contains(r->pipelines, "value: \"seaweedfs.ml-pipelines\"\n"));
  CHECK(contains(r->pipelines, "endpoint: seaweedfs.ml-pipelines:9000\\n"));
  CHECK_FALSE(contains(r->pipelines + r->gateway, ".kubeflow.svc"));
  CHECK_FALSE(contains(r->pipelines + r->gateway, "seaweedfs.kubeflow"));
  CHECK(contains(r->istio_config, "hub: \"mirror.example.test:5000/istio\"\n"));
  CHECK(contains(r->istio_config, "nodePort: 30443"));
  // Gateway: HTTPS on 443 with the Secret as credential, HTTP redirected; the VirtualService sends
  // every path to the UI server (which proxies /apis/ itself and refuses the internal endpoints),
  // never /apis/ straight to ml-pipeline, in the Pipelines namespace.
  bool https = false, redirect = false, ui = false, api = false;
  for (const auto& d : docs(r->gateway)) {
    const auto kind = d["kind"].as<std::string>();
    if (kind == "Gateway") {
      CHECK(d["metadata"]["namespace"].as<std::string>() == "istio-system");
      for (const auto& srv : d["spec"]["servers"]) {
        const auto hosts = srv["hosts"].as<std::vector<std::string>>();
        CHECK(hosts == std::vector<std::string>{"ml.example.test", "kfp.example.test", "*"});
        if (srv["port"]["number"].as<int>() == 443) {
          https = srv["port"]["protocol"].as<std::string>() == "HTTPS" && srv["tls"]["mode"].as<std::string>() == "SIMPLE" &&
                  srv["tls"]["credentialName"].as<std::string>() == "mlplat-ingress-tls";
        }
        if (srv["port"]["number"].as<int>() == 80) {
          redirect = srv["tls"]["httpsRedirect"].as<bool>();
        }
      }
    }
    if (kind == "VirtualService") {
      CHECK(d["metadata"]["namespace"].as<std::string>() == "ml-pipelines");
      CHECK(d["spec"]["gateways"][0].as<std::string>() == "istio-system/mlplat-gateway");
      for (const auto& route : d["spec"]["http"]) {
        const auto host = route["route"][0]["destination"]["host"].as<std::string>();
        ui = ui || (host == "ml-pipeline-ui.ml-pipelines.svc.cluster.local" && route["route"][0]["destination"]["port"]["number"].as<int>() == 80);
        api = api || host.rfind("ml-pipeline.", 0) == 0 || route["match"];
      }
    }
  }
  CHECK(https);
  CHECK(redirect);
  CHECK(ui);
  CHECK_FALSE(api);
  CHECK(r->san_dns == std::vector<std::string>{"ml.example.test", "kfp.example.test"});
  CHECK(r->san_ips == std::vector<std::string>{"192.0.2.50"});

  // The other exposures: hostNetwork on the ingress nodes (the one host here), a load balancer
  // asked for the configured address (which joins the certificate's SANs).
  auto exposed = effective;
  exposed.expose = config::Expose::hostnetwork;
  const auto host_network = render::render_platform(*cluster, exposed, in, dir + "/work");
  REQUIRE(host_network);
  CHECK(contains(host_network->istio_config, "value: true\n"));
  CHECK(contains(host_network->istio_config, "path: spec.template.spec.hostNetwork"));
  CHECK(contains(host_network->istio_config, "replicaCount: 1\n"));
  CHECK(host_network->https_port == 443);
  CHECK(host_network->ingress_address == testbed::address(83));
  // The IstioOperators pass istioctl's (stand-in's) schema checks and give the gateway's objects.
  for (const auto& [config, wanted] : std::vector<std::pair<std::string, std::string>>{
         {r->istio_config, "nodePort: 30443"}, {host_network->istio_config, "hostNetwork: true"}}) {
    REQUIRE(fs::write_file_atomic(dir + "/istio.yaml", config, 0600));
    const auto generated = run_process({"python3", MLPLAT_SOURCE_DIR "/tests/testbed/standins/bin/istioctl", "manifest", "generate", "-f", dir + "/istio.yaml"}, 30s);
    REQUIRE(generated);
    INFO(generated->err);
    CHECK(generated->ok());
    CHECK(contains(generated->out, wanted));
    CHECK(contains(generated->out, "image: mirror.example.test:5000/istio/proxyv2:1.31.0"));
  }
  exposed.expose = config::Expose::loadbalancer;
  cluster->ingress.load_balancer_ip = "192.0.2.60";
  const auto balanced = render::render_platform(*cluster, exposed, in, dir + "/work");
  REQUIRE(balanced);
  CHECK(contains(balanced->istio_config, "type: LoadBalancer"));
  CHECK(contains(balanced->istio_config, "metallb.io/loadBalancerIPs: \"192.0.2.60\""));
  CHECK(balanced->san_ips == std::vector<std::string>{"192.0.2.50", "192.0.2.60"});

  // An image the row does not list cannot be rewritten: refused, naming it, before any host.
  compat::Row row = matrix->default_();
  row.images.erase(std::remove(row.images.begin(), row.images.end(), "ghcr.io/kubeflow/kfp-frontend:2.17.0"), row.images.end());
  in.row = &row;
  const auto refused = render::render_platform(*cluster, effective, in, dir + "/work");
  REQUIRE_FALSE(refused);
  CHECK(contains(refused.error().message, "not in row k8s-1.36's image list, so no bundle or mirror stocked from it has them: "
                                          "ghcr.io/kubeflow/kfp-frontend:2.17.0 (Deployment/ml-pipeline-ui: spec.template.spec.containers[0].image)"));
  // Nor one named only in an environment value.
  row = matrix->default_();
  row.images.erase(std::remove(row.images.begin(), row.images.end(), "ghcr.io/kubeflow/kfp-launcher:2.17.0"), row.images.end());
  const auto launcher = render::render_platform(*cluster, effective, in, dir + "/work");
  REQUIRE_FALSE(launcher);
  CHECK(contains(launcher.error().message, "ghcr.io/kubeflow/kfp-launcher:2.17.0 (Deployment/ml-pipeline: spec.template.spec.containers[0].env["));
}

// The shipped matrix's default row rendered with every registry mirrored into namespace ml-pipelines:
// on the test fixture by default, or on the real upstream trees when MLPLAT_UPSTREAM_PIPELINES and
// MLPLAT_UPSTREAM_ARGO name them (kubeflow/pipelines 2.17.0 and argoproj/argo-workflows v4.0.5, the
// directories holding manifests/; docs/bundle.md, "Checking against the upstream sources").
TEST_CASE("every image reference and every address of the rendered platform comes from the mirror and names the namespace", "[install][platform][upstream]")
{
  const char* upstream = std::getenv("MLPLAT_UPSTREAM_PIPELINES");
  const bool real = upstream != nullptr && *upstream != '\0';
  INFO((real ? std::string("rendering the upstream tree ") + upstream : std::string("rendering the test fixture")));
  const std::string dir = testbed::temp_dir("install-upstream");
  const std::string mirror = "https://mirror.example.test:5000";
  std::string mirrors;
  for (const auto* registry : {"docker.io", "ghcr.io", "gcr.io", "quay.io", "registry.k8s.io"}) {
    mirrors += fmt::format("      {}: {}\n", registry, mirror);
  }
  const auto file = cluster_file(dir, {83}, "", 1, "  profile: gcp\n  registry:\n    mirrors:\n" + mirrors + "  pipelines:\n    namespace: ml-pipelines\n");
  const RealData data;
  auto setup = render_setup(dir, file);
  auto* cluster = &setup.cluster;
  const render::Inputs in = setup.inputs();
  auto profile = config::load_profile("gcp");
  REQUIRE(profile);
  const auto r = render::render_platform(*cluster, config::effective(*cluster, *profile), in, dir + "/work");
  if (!r) {
    FAIL(r.error().render());
  }
  REQUIRE(r->images.size() >= 14);
  for (const auto& image : r->images) {
    CHECK(image.rfind("mirror.example.test:5000/", 0) == 0);
  }
  // Nothing else names a public registry or upstream's namespace, in any value.
  const std::string all = r->cluster_scoped + r->pipelines + r->gateway;
  for (const auto* registry : {"docker.io/", "ghcr.io/", "gcr.io/", "quay.io/", "registry.k8s.io/"}) {
    CHECK_FALSE(contains(all, std::string(" ") + registry));
    CHECK_FALSE(contains(all, std::string("\"") + registry));
  }
  size_t namespaced = 0;
  for (const auto& d : YAML::LoadAll(r->pipelines)) {
    if (d["metadata"] && d["metadata"]["namespace"]) {
      CHECK(d["metadata"]["namespace"].as<std::string>() == "ml-pipelines");
      ++namespaced;
    }
  }
  CHECK(namespaced >= 12);
  for (const auto* form : {".kubeflow.svc", ".kubeflow:", ".kubeflow\"", ".kubeflow\\n", "namespace: kubeflow", "namespace: \"kubeflow\""}) {
    INFO(form);
    CHECK_FALSE(contains(all, form));
  }
  CHECK(contains(r->pipelines, "seaweedfs.ml-pipelines"));
}

TEST_CASE("plan shows per host the commands install would run, and changes nothing (audited)", "[install]")
{
  const std::string dir = testbed::temp_dir("install-plan");
  const auto file = cluster_file(dir, {83});
  fresh_host(83);
  audit::clear_audit("node-83");
  testbed::script({"audit", "node-83", "on"});
  const auto bundle = real_bundle(dir);
  const auto plan = mlplat_run({"--data-dir", k_real_data, "plan", "-c", file, "--state-dir", dir + "/state", "--bundle", bundle});
  const auto record = audit::read_audit("node-83");
  testbed::script({"audit", "node-83", "off"});
  INFO(plan.out << plan.err);
  CHECK(plan.exit_code == 0);
  CHECK(contains(plan.out, "node-83 (" + testbed::address(83) + ")"));
  CHECK(contains(plan.out, "prepare/sysctl: upload /etc/sysctl.d/90-mlplat.conf"));
  CHECK(contains(plan.out, "sysctl -q -p /etc/sysctl.d/90-mlplat.conf"));
  CHECK(contains(plan.out, "modprobe -a overlay br_netfilter"));
  CHECK(contains(plan.out, "artifacts/bundle: upload /var/lib/mlplat/bundle/k8s-1.36/files/kubeadm/kubeadm"));
  CHECK(contains(plan.out, "containerd/binaries: install containerd, runc, CNI plugins"));
  CHECK(contains(plan.out, "tar -C /usr/local -xzf /var/lib/mlplat/bundle/k8s-1.36/files/containerd/containerd-2.3.4-linux-amd64.tar.gz"));
  CHECK(contains(plan.out, "systemctl enable --now containerd"));
  CHECK(contains(plan.out, "init/kubeadm-init: kubeadm init, as a service of the host (the token and the certificate key are not printed)"));
  CHECK(contains(plan.out, "cni/calico-installation: upload /etc/kubernetes/mlplat/manifests/calico-installation.yaml"));
  CHECK(contains(plan.out, "storage/openebs-hostpath: apply openebs-hostpath"));
  CHECK(contains(plan.out, "kubeconfig/admin-conf: copy /etc/kubernetes/admin.conf to " + dir + "/state/kubeconfig (0600)"));
  CHECK_FALSE(std::filesystem::exists(dir + "/state/kubeconfig"));
  // The platform layer is planned too: the gate, the rendered overlays, istioctl, the Secret (its
  // command withheld), the gateway; no certificate is written on this machine.
  CHECK(contains(plan.out, "pipelines/versions: the matrix gate before pipelines, once the API server answers"));
  CHECK(contains(plan.out, "pipelines/cluster-scoped: upload /etc/kubernetes/mlplat/platform/pipelines-cluster-scoped.yaml"));
  CHECK(contains(plan.out, "pipelines/resources: apply resources"));
  CHECK(contains(plan.out, "istio/install: istioctl install"));
  CHECK(contains(plan.out, "tls/secret: apply Secret istio-system/mlplat-ingress-tls (kubernetes.io/tls"));
  CHECK(contains(plan.out, "gateway/gateway: apply gateway"));
  CHECK_FALSE(std::filesystem::exists(dir + "/state/tls"));
  INFO("mutations:\n" << text::join(record.mutations, "\n"));
  CHECK(record.sessions >= 1);
  CHECK(record.mutations.empty());
  CHECK_FALSE(on_host(83, "test -e /etc/sysctl.d/90-mlplat.conf").ok());
  CHECK_FALSE(std::filesystem::exists(dir + "/state/journal.json"));
  // The whole plan, with this run's directories and the host's address replaced, is the golden one:
  // a change in what install would run on a fresh host shows in review as a change of that file (the
  // reshaping of the command code, issue 14, must leave it as it is). MLPLAT_UPDATE_GOLDEN=1 writes it.
  std::string normalized = text::replace_all(plan.out, dir, "@DIR@");
  normalized = text::replace_all(std::move(normalized), MLPLAT_BINARY_DIR, "@BUILD@");
  normalized = text::replace_all(std::move(normalized), testbed::address(83), "@ADDRESS@");
  normalized = text::replace_all(std::move(normalized), testbed::net() + ".", "@NET@.");
  // What differs between runs and machines: the plan's scratch directory, the ingress certificate's
  // serial, and the sizes of the bundle's files (the testbed's builds of the programs).
  normalized = std::regex_replace(normalized, std::regex("[^ ]*/mlplat-plan\\.[A-Za-z0-9]+"), "@PLAN@");
  normalized = std::regex_replace(normalized, std::regex("certificate serial [0-9A-F]+"), "certificate serial @SERIAL@");
  normalized = std::regex_replace(normalized, std::regex("(upload /var/lib/mlplat/bundle/[^ ]+ \\()[0-9]+ bytes"), "$1@SIZE@ bytes");
  const std::string golden = MLPLAT_SOURCE_DIR "/tests/golden/plan-one-host.txt";
  if (std::getenv("MLPLAT_UPDATE_GOLDEN") != nullptr) {
    std::filesystem::create_directories(MLPLAT_SOURCE_DIR "/tests/golden");
    REQUIRE(fs::write_file_atomic(golden, normalized, 0644));
  }
  const auto expected = fs::read_file(golden);
  REQUIRE(expected);
  CHECK(normalized == *expected);
}

TEST_CASE("prepare on a freshly booted host: what doctor reports as fixed-by-install is fixed for good (br_netfilter before the "
          "bridge sysctls, forwarding, inotify, swap in /etc/fstab), judged again after prepare, bad phase names and a wrong "
          "--profile are refused", "[install]")
{
  const std::string dir = testbed::temp_dir("install-swap");
  const auto file = cluster_file(dir, {84});
  // A stock image with a swap file active and listed in /etc/fstab; the login is a non-root user.
  testbed::script({"stock", "node-84", "swap"});
  fresh_host(84);
  const auto r = mlplat_run({"--data-dir", k_real_data, "install", "-c", file, "--state-dir", dir + "/state", "--only", "prepare"});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0); // no --ignore: nothing install fixes blocks it
  CHECK(contains(r.err, "preflight passed on 1 host (0 warnings, 5 findings prepare fixes: NET-001, NET-002, NET-003, NET-010, OS-007)"));
  CHECK(contains(r.out, "cluster install-test: 3 steps applied, 1 already in place"));
  const auto fstab = on_host(84, "cat /etc/fstab");
  CHECK(contains(fstab.out, "# swap off for the kubelet (mlplat): /var/swapfile none swap sw 0 0"));
  // The host booted as a fresh one does: br_netfilter not loaded, so no /proc/sys/net/bridge. prepare
  // loaded it first, then applied the bridge sysctls (which exist only then).
  const std::string settings = "test -d /sys/module/br_netfilter && test -d /sys/module/xt_owner && "
                               "sysctl -n net.bridge.bridge-nf-call-iptables net.ipv4.ip_forward fs.inotify.max_user_instances "
                               "fs.inotify.max_user_watches && awk 'NR > 1' /proc/swaps | wc -l";
  CHECK(on_host(84, settings).out == "1\n1\n2280\n1255360\n0\n");
  CHECK(on_host(84, "test -f /etc/fstab.mlplat-backup").ok());
  // For good: after a reboot the modules are loaded, the sysctls applied and swap stays off.
  testbed::script({"restart", "node-84"});
  CHECK(on_host(84, settings).out == "1\n1\n2280\n1255360\n0\n");
  const auto again = mlplat_run({"--data-dir", k_real_data, "install", "-c", file, "--state-dir", dir + "/state", "--only", "prepare"});
  CHECK(again.exit_code == 0);
  CHECK(contains(again.out, "cluster install-test: 0 steps applied"));

  // Judged again after prepare: a sysctl drop-in (from --data-dir) without forwarding leaves NET-001
  // failing, and install stops naming it.
  fresh_host(84);
  const std::string data = dir + "/data";
  REQUIRE(run_process({"cp", "-r", k_real_data, data}, 30s)->ok());
  std::filesystem::create_directories(data + "/manifests/host");
  REQUIRE(fs::write_file_atomic(data + "/manifests/host/sysctl.conf",
                                "# forwarding left out\nnet.bridge.bridge-nf-call-iptables = 1\nfs.inotify.max_user_instances = 2280\n"
                                "fs.inotify.max_user_watches = 1255360\n", 0644));
  const auto stopped = mlplat_run({"--data-dir", data, "install", "-c", file, "--state-dir", dir + "/state2", "--only", "prepare"});
  INFO(stopped.out << stopped.err);
  CHECK(stopped.exit_code == 3);
  CHECK(contains(stopped.err, "prepare / preflight-recheck: check failed: node-84: after prepare, a check install fixes still fails: "
                              "NET-001 (IPv4 forwarding on): net.ipv4.ip_forward = 0"));
  CHECK(contains(stopped.err, "NET-001: echo net.ipv4.ip_forward=1 > /etc/sysctl.d/90-mlplat.conf"));
  fresh_host(84);

  const auto bad = mlplat_run({"--data-dir", k_real_data, "install", "-c", file, "--state-dir", dir + "/state", "--only", "prepare", "--skip", "prepair"});
  CHECK(bad.exit_code == 2);
  CHECK(contains(bad.err, "did you mean 'prepare'?"));
  const auto profile = mlplat_run({"--data-dir", k_real_data, "install", "-c", file, "--profile", "gcp"});
  CHECK(profile.exit_code == 2);
  CHECK(contains(profile.err, "--profile=gcp but " + file + " says spec.profile: onprem"));
}

TEST_CASE("a second install of the same cluster exits 6 at once, naming the run that holds the lock", "[install]")
{
  const std::string dir = testbed::temp_dir("install-lock");
  // The first run waits on a host that does not answer (.253): it holds the lock meanwhile.
  const auto file = cluster_file(dir, {}, "    - {name: silent, address: " + testbed::net() + ".253, role: control-plane}\n");
  const std::string state = dir + "/state";
  const pid_t first = ::fork();
  REQUIRE(first >= 0);
  if (first == 0) {
    ::execl(MLPLAT_BINARY, MLPLAT_BINARY, "install", "-c", file.c_str(), "--state-dir", state.c_str(), "--only", "prepare",
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  // Wait until the first run holds the lock (it writes its name into the lock file).
  for (int i = 0; i < 100 && !contains(fs::read_file(state + "/lock").value_or(""), "install"); ++i) {
    std::this_thread::sleep_for(50ms);
  }
  const auto start = std::chrono::steady_clock::now();
  const auto second = mlplat_run({"install", "-c", file, "--state-dir", state, "--only", "prepare"});
  const auto took = std::chrono::steady_clock::now() - start;
  // Another state directory is the same cluster on this machine: refused too, naming the first run
  // and its state directory.
  const auto elsewhere = mlplat_run({"install", "-c", file, "--state-dir", dir + "/other-state", "--only", "prepare"});
  INFO(elsewhere.err);
  CHECK(elsewhere.exit_code == 6);
  CHECK(contains(elsewhere.err, "the cluster is locked by another run: pid " + std::to_string(first)));
  CHECK(contains(elsewhere.err, "state directory " + state));
  // SIGTERM ends the waiting run at once: exit 143 (128 + 15).
  const auto term = std::chrono::steady_clock::now();
  ::kill(first, SIGTERM);
  int status = 0;
  ::waitpid(first, &status, 0);
  const auto ended = std::chrono::steady_clock::now() - term;
  WARN("the run ended " << std::chrono::duration_cast<std::chrono::milliseconds>(ended).count() << " ms after SIGTERM");
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 143);
  CHECK(ended < 3s);
  INFO(second.err);
  CHECK(second.exit_code == 6);
  CHECK(took < 5s);
  CHECK(contains(second.err, "the cluster is locked by another run: pid " + std::to_string(first)));
  CHECK(contains(second.err, "'install'"));
  // Its locks went with it: the other state directory's run proceeds (to the silent host, and stops
  // there with exit 4, not 6).
  const auto after = mlplat_run({"install", "-c", file, "--state-dir", dir + "/other-state", "--only", "prepare"});
  CHECK(after.exit_code == 4);
}

TEST_CASE("install and plan exit 4 for an unreachable host or a refused key and 5 for a changed host key, as doctor does", "[install]")
{
  const std::string dir = testbed::temp_dir("install-exit-codes");
  // Unreachable: nothing answers at .252.
  const auto unreachable = cluster_file(dir, {}, "    - {name: silent, address: " + testbed::net() + ".252, role: control-plane}\n");
  for (const char* command : {"install", "plan", "doctor"}) {
    std::vector<std::string> args{command, "-c", unreachable};
    if (std::string(command) != "doctor") {
      args.insert(args.end(), {"--state-dir", dir + "/state", "--only", "prepare"});
    }
    const auto r = mlplat_run(args);
    INFO(command << ": " << r.err);
    CHECK(r.exit_code == 4);
  }
  // A key the host does not accept.
  const std::string other_key = dir + "/other_key";
  REQUIRE(run_process({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", other_key}, 20s));
  const auto refused_file = cluster_file(dir, {16});
  REQUIRE(fs::write_file_atomic(refused_file, text::replace_all(*fs::read_file(refused_file), "keyPath: " + testbed::key(), "keyPath: " + other_key), 0644));
  const auto refused = mlplat_run({"install", "-c", refused_file, "--state-dir", dir + "/state", "--only", "prepare"});
  INFO(refused.err);
  CHECK(refused.exit_code == 4);
  // A known_hosts entry with another key for the host: a changed key.
  const std::string known = dir + "/known_hosts";
  const auto pub = fs::read_file(other_key + ".pub");
  REQUIRE(pub);
  REQUIRE(fs::write_file_atomic(known, testbed::address(16) + " " + std::string(text::trim(*pub)) + "\n", 0600));
  const auto changed_file = cluster_file(dir, {16});
  REQUIRE(fs::write_file_atomic(changed_file, text::replace_all(*fs::read_file(changed_file), "knownHosts: " + testbed::known_hosts(), "knownHosts: " + known), 0644));
  for (const char* command : {"install", "plan"}) {
    const auto changed = mlplat_run({command, "-c", changed_file, "--state-dir", dir + "/state", "--only", "prepare"});
    INFO(command << ": " << changed.err);
    CHECK(changed.exit_code == 5);
    CHECK(contains(changed.out + changed.err, "HOST KEY MISMATCH"));
  }
}

TEST_CASE("the phases after prepare need a bundle of the selected row, checked before any connection", "[install]")
{
  const std::string dir = testbed::temp_dir("install-nobundle");
  // The host does not exist: the refusal must come before any connection (which would take 3 s and exit 4).
  const auto file = cluster_file(dir, {}, "    - {name: nowhere, address: " + testbed::net() + ".254, role: control-plane}\n");
  const auto none = mlplat_run({"--data-dir", k_real_data, "install", "-c", file, "--state-dir", dir + "/state"});
  CHECK(none.exit_code == 2);
  CHECK(contains(none.err, "install from a bundle of row k8s-1.36, and none was given"));
  // The command to make it, as it runs (this run's --data-dir repeated, absolute).
  CHECK(contains(none.err, "mlplat --data-dir " + k_real_data + " bundle create --row k8s-1.36 "));
  // Two control planes without an endpoint: warned (with the place in the cluster file and the fix)
  // before anything else, at plan as at install.
  const auto ha = cluster_file(dir, {}, "    - {name: nowhere, address: " + testbed::net() + ".254, role: control-plane}\n"
                                         "    - {name: elsewhere, address: " + testbed::net() + ".253, role: control-plane}\n");
  for (const char* command : {"plan", "install"}) {
    const auto warned = mlplat_run({"--data-dir", k_real_data, command, "-c", ha, "--state-dir", dir + "/state"});
    INFO(warned.err);
    CHECK(warned.exit_code == 2);
    CHECK(contains(warned.err, ha + ":"));
    CHECK(contains(warned.err, "2 control planes but no spec.network.controlPlaneEndpoint"));
    CHECK(contains(warned.err, "an even number of control planes (2)"));
    CHECK(contains(warned.err, "fix: use an odd number of control planes (1 or 3)"));
  }
  // A bundle whose file was changed is refused.
  const auto bundle = real_bundle(dir);
  const std::string unpacked = dir + "/unpacked";
  std::filesystem::create_directories(unpacked);
  REQUIRE(run_process({"tar", "-C", unpacked, "-xzf", bundle}, 30s)->ok());
  REQUIRE(run_process({"sh", "-c", "echo x >> " + unpacked + "/files/kubelet/kubelet"}, 10s)->ok());
  const auto tampered = mlplat_run({"--data-dir", k_real_data, "install", "-c", file, "--state-dir", dir + "/state", "--bundle", unpacked});
  CHECK(tampered.exit_code == 1);
  CHECK(contains(tampered.err, "kubelet: files/kubelet/kubelet has sha256"));
}

TEST_CASE("a single host alone is a schedulable cluster, with Flannel and the cluster file's pod CIDR", "[install][real]")
{
  const std::string dir = testbed::temp_dir("install-single");
  // A certificate of the site's own CA (openssl, at test time), and two it must refuse: the wrong key,
  // and one for another name.
  auto openssl = [&dir](const std::string& args) {
    const auto r = run_process({"sh", "-c", "cd " + dir + " && openssl " + args}, 30s);
    REQUIRE(r);
    INFO(r->err);
    REQUIRE(r->ok());
  };
  openssl("req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.crt -subj /CN=site-ca -days 30 "
          "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null");
  for (const std::string name : {"kfp.single.example", "other.example"}) {
    openssl("req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout " + name + ".key -out " + name + ".csr -subj /CN=" + name + " 2>/dev/null");
    REQUIRE(fs::write_file_atomic(dir + "/" + name + ".ext", "subjectAltName=DNS:" + name + "\nextendedKeyUsage=serverAuth\n", 0644));
    openssl("x509 -req -in " + name + ".csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 -out " + name + ".crt -extfile " + name + ".ext 2>/dev/null");
  }
  auto with_tls = [&](const std::string& cert, const std::string& key, const std::string& mode = "provided") {
    return cluster_file(dir, {86}, "", 1,
                        "  network:\n    podCIDR: 10.32.0.0/16\n    cni: flannel\n"
                        "  registry:\n    mirrors:\n      docker.io: https://mirror.example.test:5000\n"
                        "  ingress:\n    domain: kfp.single.example\n    tls:\n      mode: " + mode + "\n      certFile: " + dir + "/" + cert +
                        "\n      keyFile: " + dir + "/" + key + "\n      caFile: " + dir + "/ca.crt\n");
  };
  fresh_host(86);
  const auto bundle = real_bundle(dir);
  // Refused before any host is touched, naming the property (and acme, not built, as clearly).
  for (const auto& [cert, key, property] : std::vector<std::tuple<std::string, std::string, std::string>>{
         {"kfp.single.example.crt", "other.example.key", "key mismatch"}, {"other.example.crt", "other.example.key", "SAN mismatch"}}) {
    const auto refused = mlplat_run({"--data-dir", k_real_data, "install", "-c", with_tls(cert, key), "--state-dir", dir + "/state", "--bundle", bundle});
    INFO(refused.out << refused.err);
    CHECK(refused.exit_code == 2);
    CHECK(contains(refused.err, "the provided ingress certificate " + dir + "/" + cert + " is refused: " + property));
    CHECK(contains(refused.err, "mlplat.yaml:"));
  }
  const auto acme = mlplat_run({"--data-dir", k_real_data, "install", "-c", with_tls("x", "y", "acme"), "--state-dir", dir + "/state", "--bundle", bundle});
  CHECK(acme.exit_code == 2);
  CHECK(contains(acme.err, "spec.ingress.tls.mode 'acme' (cert-manager with an issuer you name) is accepted but not built"));
  CHECK_FALSE(on_host(86, "test -e /etc/sysctl.d/90-mlplat.conf || test -e /var/lib/mlplat").ok());

  const auto file = with_tls("kfp.single.example.crt", "kfp.single.example.key");
  const auto r = mlplat_run({"--data-dir", k_real_data, "install", "-c", file, "--state-dir", dir + "/state", "--bundle", bundle}, 900s);
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  // The provided certificate is what the gateway serves, verified against the site's CA; the
  // Pipelines images (MySQL's from Docker Hub) come from the mirror.
  fetch::ProbeRequest q;
  q.url = "https://kfp.single.example:30443/";
  q.ca_file = dir + "/ca.crt";
  q.resolve = {"kfp.single.example:30443:" + testbed::address(86)};
  const auto served = fetch::get(q);
  REQUIRE(served);
  CHECK(served->status == 200);
  const auto serial = run_process({"openssl", "x509", "-noout", "-serial", "-in", dir + "/kfp.single.example.crt"}, 10s);
  REQUIRE(serial);
  std::string wanted;
  for (const char ch : text::trim(serial->out).substr(7)) {
    wanted += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  }
  CHECK(served->peer_serial == wanted);
  CHECK(kubectl_on(86, "-n kubeflow get deployment mysql -o jsonpath='{.spec.template.spec.containers[0].image}'") ==
        "mirror.example.test:5000/library/mysql:8.4");
  CHECK_FALSE(std::filesystem::exists(dir + "/state/tls/ca.key"));  // no mlplat CA in provided mode
  CHECK(nodes_on(86) == "node-86 Ready control-plane\n");
  // No control-plane taint: the one host runs the workloads.
  CHECK(kubectl_on(86, "get node node-86 -o jsonpath='{.spec.taints}'") == "");
  CHECK(contains(on_host(86, "cat /etc/kubernetes/mlplat/kubeadm-init.yaml").out, "taints: []"));
  // Flannel from the bundle through mlplat's overlay: the pod CIDR of the cluster file.
  const std::string conf = kubectl_on(86, "-n kube-flannel get configmap kube-flannel-cfg -o jsonpath='{.data.net-conf\\.json}'");
  CHECK(contains(conf, "\"Network\": \"10.32.0.0/16\""));
  CHECK(contains(conf, "\"Type\": \"vxlan\""));
  CHECK(contains(kubectl_on(86, "-n kube-flannel get daemonset -o name"), "daemonset.apps/kube-flannel-ds"));
  CHECK(kubectl_on(86, "get installation -A -o name") == "");  // no Calico
  // Flannel's DaemonSet ran its init containers on the host: the plugin and the network configuration;
  // flanneld wrote the node's subnet, from the podCIDR the controller-manager gave it out of 10.32.0.0/16.
  CHECK(on_host(86, "test -f /opt/cni/bin/flannel && grep -q '\"type\": \"flannel\"' /etc/cni/net.d/10-flannel.conflist").ok());
  CHECK(contains(on_host(86, "cat /run/flannel/subnet.env").out, "FLANNEL_NETWORK=10.32.0.0/16\nFLANNEL_SUBNET=10.32.0.1/24\n"));
  // The probe wrote its volume as uid 65534 on the one host.
  CHECK(contains(on_host(86, "stat -c '%U %n' /var/openebs/local/pvc-*/probe").out, "nobody /var/openebs/local/pvc-"));
  // containerd's per-registry mirror configuration from spec.registry.mirrors.
  const auto hosts_toml = on_host(86, "cat /etc/containerd/certs.d/docker.io/hosts.toml; grep config_path /etc/containerd/config.toml");
  CHECK(contains(hosts_toml.out, "server = \"https://registry-1.docker.io\""));
  CHECK(contains(hosts_toml.out, "[host.\"https://mirror.example.test:5000\"]"));
  CHECK(contains(hosts_toml.out, "capabilities = [\"pull\", \"resolve\"]"));
  CHECK(contains(hosts_toml.out, "config_path = '/etc/containerd/certs.d'"));

  // The host reprovisioned (a fresh boot of its image, a new machine-id): the journal's steps for it
  // are not trusted; init runs again instead of waiting for an API server that is gone.
  testbed::script({"wipe", "node-86"});
  // A machine-id of this run's own (a rerun of the test on the same testbed must change it again).
  const std::string machine_id = sha256_hex(std::to_string(std::chrono::system_clock::now().time_since_epoch().count()) + dir).substr(0, 32);
  const auto knob = run_process({MLPLAT_TESTBED_SCRIPT, "knob", "node-86", "/etc/machine-id"}, 60s, machine_id + "\n");
  REQUIRE(knob);
  REQUIRE(knob->ok());
  const auto again = mlplat_run({"--data-dir", k_real_data, "install", "-c", file, "--state-dir", dir + "/state", "--bundle", bundle}, 900s);
  INFO(again.out << again.err);
  CHECK(again.exit_code == 0);
  CHECK(contains(again.err, "node-86: this is not the machine the journal in " + dir + "/state knows"));
  CHECK(contains(again.err, "installed as a new host"));
  CHECK(nodes_on(86) == "node-86 Ready control-plane\n");
  const auto journal = nlohmann::json::parse(*fs::read_file(dir + "/state/journal.json"));
  CHECK(journal["hosts"]["node-86"]["identity"].get<std::string>().rfind("machine-id=" + machine_id + " ", 0) == 0);
}

TEST_CASE("three control planes and two workers (HA) on the real control plane: joins one at a time, a stacked etcd of three members, "
          "secrets never leave their path (canaries)",
          "[install][real]")
{
  const std::string dir = testbed::temp_dir("install-ha");
  const std::string state = dir + "/state";
  const std::vector<int> nodes{87, 88, 89, 90, 91};
  const auto file = cluster_file(dir, nodes, "", 3, "  network:\n    mtu: 1400\n");
  testbed::script({"stock", "node-91", "swap"}); // a swap file in /etc/fstab on one host of each multi-host test
  for (int n : nodes) {
    fresh_host(n);
  }
  const auto bundle = real_bundle(dir);
  for (int n : nodes) {
    audit::clear_audit("node-" + std::to_string(n));
    testbed::script({"audit", "node-" + std::to_string(n), "on"});
  }
  // The canaries are the run's own secrets, caught where they legitimately are: each joining host's
  // kubeadm-join.yaml (0600), read as soon as it appears, with the times it appeared and went.
  std::vector<std::future<Result<ProcessResult>>> watchers;
  for (int n : {88, 89, 90, 91}) {
    watchers.push_back(std::async(std::launch::async, [n] {
      return run_process({MLPLAT_TESTBED_SCRIPT, "exec", "node-" + std::to_string(n), "sh", "-c",
                          "f=/etc/kubernetes/mlplat/kubeadm-join.yaml; i=0\n"
                          "while [ ! -s $f ] && [ $i -lt 12000 ]; do sleep 0.05; i=$((i+1)); done\n"
                          "date +%s.%N; cat $f; echo; i=0\n"
                          "while [ -f $f ] && [ $i -lt 12000 ]; do sleep 0.05; i=$((i+1)); done\n"
                          "date +%s.%N\n"}, 900s);
    }));
  }
  const auto r = mlplat_run({"--data-dir", k_real_data, "-v", "install", "-c", file, "--state-dir", state, "--bundle", bundle}, 900s);
  std::vector<audit::Audit> records;
  for (int n : nodes) {
    records.push_back(audit::read_audit("node-" + std::to_string(n)));
  }
  struct Caught {
    double appeared = 0, gone = 0;
    std::string token, certificate_key;
  };
  std::vector<Caught> caught;
  for (auto& w : watchers) {
    const auto out = w.get();
    REQUIRE(out);
    Caught c;
    const auto lines = text::split(out->out, '\n');
    REQUIRE(lines.size() > 3);
    c.appeared = std::stod(lines.front());
    c.gone = std::stod(std::string(text::trim(out->out.substr(out->out.rfind('\n', out->out.size() - 2)))));
    // The values as yaml-cpp wrote them: double-quoted scalars.
    auto unquoted = [](std::string_view v) {
      return std::string(v.size() >= 2 && v.front() == '"' && v.back() == '"' ? v.substr(1, v.size() - 2) : v);
    };
    for (const auto& line : lines) {
      const auto t = text::trim(line);
      if (t.rfind("token: ", 0) == 0) {
        c.token = unquoted(t.substr(7));
      }
      if (t.rfind("certificateKey: ", 0) == 0) {
        c.certificate_key = unquoted(t.substr(16));
      }
    }
    caught.push_back(c);
  }
  for (int n : nodes) {
    testbed::script({"audit", "node-" + std::to_string(n), "off"});
  }
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  wait_for_nodes(87, 5);  // the audit switched off restarts the hosts
  CHECK(nodes_on(87) == "node-87 Ready control-plane\nnode-88 Ready control-plane\nnode-89 Ready control-plane\n"
                        "node-90 Ready <none>\nnode-91 Ready <none>\n");
  // One token for the run's four joins; the control planes had the certificate key, the workers not.
  REQUIRE(caught.size() == 4);
  CHECK(std::regex_match(caught[0].token, std::regex("[a-z0-9]{6}\\.[a-z0-9]{16}")));
  for (const auto& c : caught) {
    CHECK(c.token == caught[0].token);
  }
  CHECK(std::regex_match(caught[0].certificate_key, std::regex("[a-f0-9]{64}")));
  CHECK(caught[1].certificate_key == caught[0].certificate_key);
  CHECK(caught[2].certificate_key.empty());
  CHECK(caught[3].certificate_key.empty());
  // Control planes joined one at a time: node-89's join configuration appeared after node-88's join
  // ended and removed it.
  CHECK(caught[0].gone > caught[0].appeared);
  CHECK(caught[1].appeared > caught[0].gone);
  // etcd's own view: three voting members, started, one per control plane.
  const auto members = on_host(87, k_programs_etcdctl + " --endpoints=https://127.0.0.1:2379 --cacert=/etc/kubernetes/pki/etcd/ca.crt "
                                   "--cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt --key=/etc/kubernetes/pki/etcd/healthcheck-client.key "
                                   "member list -w simple");
  INFO(members.out << members.err);
  CHECK(members.ok());
  for (int n : {87, 88, 89}) {
    CHECK(contains(members.out, ", started, node-" + std::to_string(n) + ", https://" + testbed::address(n) + ":2380, https://" +
                                  testbed::address(n) + ":2379, false"));
    // Each control plane runs its own API server, which answers with the cluster's view (once it is
    // back after the restart of the hosts: at most about 40 s).
    CHECK(on_host(n, "for i in $(seq 20); do c=$(kubectl --kubeconfig /etc/kubernetes/admin.conf --request-timeout=1s --server https://" + testbed::address(n) +
                     ":6443 get nodes --no-headers 2>/dev/null | wc -l); [ \"$c\" = 5 ] && break; sleep 1; done; echo $c").out == "5\n");
  }
  // The cluster file's MTU overrides the profile's; cleanup removed the token and the uploaded
  // certificates.
  CHECK(contains(kubectl_on(87, "get installation default -o jsonpath='{.spec.calicoNetwork}'"), "\"mtu\":1400"));
  CHECK_FALSE(on_host(87, "kubectl --kubeconfig /etc/kubernetes/admin.conf -n kube-system get secret kubeadm-certs").ok());
  CHECK(on_host(87, "kubeadm token list 2>/dev/null | awk 'NR > 1' | wc -l").out == "0\n");

  // 0 hits for any secret in: stdout and stderr (debug log level), every state file but the
  // kubeconfig (which is the administrator's credential, 0600), every command line on every host,
  // and the logs on the hosts (the stand-ins', the static pods', kubeadm init's).
  const std::string admin = on_host(87, "grep client-key-data /etc/kubernetes/admin.conf | awk '{print $2}'").out;
  REQUIRE(admin.size() > 40);
  const std::string token_secret = caught[0].token.substr(7);
  std::vector<std::string> canaries{token_secret, caught[0].token, caught[0].certificate_key, std::string(text::trim(admin)).substr(0, 40)};
  // The ingress keys (mlplat's CA and the server certificate's): a line of each PEM, and a slice of
  // the base64 the Secret carries.
  for (const char* key : {"/tls/ca.key", "/tls/server.key"}) {
    const std::string pem = fs::read_file(state + key).value_or("");
    const auto lines = text::split(pem, '\n');
    REQUIRE(lines.size() > 2);
    canaries.push_back(lines[1]);
    const auto b64 = run_process({"base64", "-w0", state + key}, 10s);
    REQUIRE(b64);
    REQUIRE(b64->out.size() > 120);
    canaries.push_back(b64->out.substr(60, 40));
  }
  std::vector<std::pair<std::string, std::string>> places{{"stdout", r.out}, {"stderr", r.err}};
  for (const auto& entry : std::filesystem::recursive_directory_iterator(state)) {
    if (entry.is_regular_file() && entry.path().filename() != "kubeconfig" && entry.path().string().find("/tls/") == std::string::npos &&
        entry.path().string().find("/bundle/") == std::string::npos) {
      places.emplace_back(entry.path().string(), fs::read_file(entry.path()).value_or(""));
    }
  }
  for (size_t i = 0; i < nodes.size(); ++i) {
    CHECK(records[i].sessions >= 1);
    places.emplace_back("command lines on node-" + std::to_string(nodes[i]), text::join(records[i].programs, "\n") + "\n" + text::join(records[i].command_lines, "\n"));
    places.emplace_back("logs on node-" + std::to_string(nodes[i]),
                        on_host(nodes[i], "cat /var/log/mlplat-standins/*.log /var/lib/mlplat/run/*.log /var/log/pods/*/*/*.log 2>/dev/null").out);
  }
  for (const auto& [where, text] : places) {
    for (const auto& canary : canaries) {
      INFO(where);
      CHECK(text.find(canary) == std::string::npos);
    }
  }
  // The join configuration is gone from every joined host.
  for (int n : {88, 89, 90, 91}) {
    CHECK_FALSE(on_host(n, "test -e /etc/kubernetes/mlplat/kubeadm-join.yaml").ok());
  }
}

TEST_CASE("an expired join token is renewed before the next join, a wrong token or CA hash is refused by the real kubeadm join", "[install][real]")
{
  const std::string dir = testbed::temp_dir("install-token");
  const std::string state = dir + "/state";
  const auto file = cluster_file(dir, {92, 93, 103}, "", 2);
  testbed::script({"stock", "node-103", "swap"});
  for (int n : {92, 93, 103}) {
    fresh_host(n);
  }
  const auto bundle = real_bundle(dir);
  // Time passes: the token this run makes for node-93's join is made to look old, its expiration
  // (what the API server's bootstrap authenticator checks) 200 s away, as soon as it exists: node-93
  // joins with it, node-103 joins after it, when too little of its life is left.
  const std::string kubectl = "kubectl --kubeconfig /etc/kubernetes/admin.conf -n kube-system ";
  auto expire = std::async(std::launch::async, [&] {
    return run_process({MLPLAT_TESTBED_SCRIPT, "exec", "node-92", "sh", "-c",
                        "for i in $(seq 1500); do\n"
                        "  for s in $(" + kubectl + "get secret --field-selector type=bootstrap.kubernetes.io/token -o name 2>/dev/null); do\n"
                        "    if [ \"$(" + kubectl + "get $s -o jsonpath='{.data.description}' | base64 -d)\" = 'mlplat join' ]; then\n"
                        "      e=$(date -u -d '+200 seconds' +%Y-%m-%dT%H:%M:%SZ)\n"
                        "      " + kubectl + "patch $s --type merge -p \"{\\\"stringData\\\":{\\\"expiration\\\":\\\"$e\\\"}}\" && exit 0\n"
                        "    fi\n"
                        "  done\n"
                        "  sleep 0.2\n"
                        "done\nexit 1\n"}, 400s);
  });
  const auto r = mlplat_run({"--data-dir", k_real_data, "install", "-c", file, "--state-dir", state, "--bundle", bundle, "--only", k_real_phases}, 600s);
  const auto expired = expire.get();
  REQUIRE(expired);
  INFO(expired->out << expired->err);
  CHECK(contains(expired->out, "patched"));
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0);
  CHECK(std::regex_search(r.err, std::regex("bootstrap token [a-z0-9]{6} expires in 1[0-9][0-9] s: creating a new one")));
  CHECK(contains(r.out, "\n  node-103   NotReady   <none>"));
  // Each kubelet's client certificate was asked for with the token of its join: node-103's was the new one.
  const auto requestors = kubectl_on(92, "get csr -o jsonpath='{range .items[*]}{.spec.username}{\"\\n\"}{end}'");
  std::set<std::string> tokens;
  for (const auto& line : text::split(requestors, '\n')) {
    if (line.rfind("system:bootstrap:", 0) == 0) {
      tokens.insert(line);
    }
  }
  CHECK(tokens.size() == 2);

  // kubeadm join refuses a CA hash that is not the cluster's, and a token the cluster does not know
  // (after its discovery timeout). Tried on the joined worker, its preflight ignored: discovery comes
  // after it and fails, so nothing is changed.
  const std::string endpoint = testbed::address(92) + ":6443";
  const auto join = [&](const std::string& token, const std::string& hash) {
    return on_host(103, "umask 077; d=$(mktemp -d) && printf 'apiVersion: kubeadm.k8s.io/v1beta4\\nkind: JoinConfiguration\\ndiscovery:\\n  bootstrapToken:\\n    apiServerEndpoint: " +
                         endpoint + "\\n    token: " + token + "\\n    caCertHashes: [\"" + hash + "\"]\\ntimeouts:\\n  discovery: 10s\\n"
                         "nodeRegistration:\\n  name: node-103\\n  ignorePreflightErrors: [all]\\n' > $d/join.yaml && "
                         "kubeadm join --config $d/join.yaml; rc=$?; rm -rf $d; exit $rc");
  };
  const std::string valid(text::trim(on_host(92, "kubeadm token create --ttl 5m").out));
  REQUIRE(valid.size() == 23);
  const std::string real_hash = "sha256:" + std::string(text::trim(on_host(92, "openssl x509 -pubkey -noout -in /etc/kubernetes/pki/ca.crt | "
                                                                                  "openssl pkey -pubin -outform der | sha256sum | cut -d' ' -f1").out));
  const auto bad_hash = join(valid, "sha256:" + std::string(64, '0'));
  CHECK_FALSE(bad_hash.ok());
  // (kubeadm names the key it found, the cluster's, as not pinned.)
  CHECK(contains(bad_hash.err, "cluster CA found in cluster-info ConfigMap is invalid: none of the public keys \"" + real_hash + "\" are pinned"));
  const auto bad_token = join("abcdef.0123456789abcdef", real_hash);
  CHECK_FALSE(bad_token.ok());
  CHECK(contains(bad_token.err, "could not find a JWS signature in the cluster-info ConfigMap for token ID \"abcdef\""));
  CHECK(on_host(103, "grep -q 'client-certificate: /var/lib/kubelet/pki/kubelet-client-current.pem' /etc/kubernetes/kubelet.conf").ok());

  // kubeadm's config check (each document names its version: no look-up of the latest release): v1beta3
  // is deprecated in 1.36, still read, with a warning; v1beta2 is refused; an unknown field is refused.
  const auto validate = [&](const std::string& doc) {
    return on_host(92, "d=$(mktemp -d) && printf '" + doc + "' > $d/c.yaml && kubeadm config validate --config $d/c.yaml; rc=$?; rm -rf $d; exit $rc");
  };
  const auto v1beta3 = validate("apiVersion: kubeadm.k8s.io/v1beta3\\nkind: ClusterConfiguration\\nkubernetesVersion: v1.36.3\\n");
  CHECK(v1beta3.ok());
  CHECK(contains(v1beta3.err, "your configuration file uses a deprecated API spec: \"kubeadm.k8s.io/v1beta3\""));
  const auto v1beta2 = validate("apiVersion: kubeadm.k8s.io/v1beta2\\nkind: ClusterConfiguration\\nkubernetesVersion: v1.36.3\\n");
  CHECK_FALSE(v1beta2.ok());
  CHECK(contains(v1beta2.err, "your configuration file uses an old API spec: \"kubeadm.k8s.io/v1beta2\""));
  const auto field = validate("apiVersion: kubeadm.k8s.io/v1beta4\\nkind: ClusterConfiguration\\nkubernetesVersoin: v1.36.3\\n");
  CHECK_FALSE(field.ok());
  CHECK(contains(field.err, "strict decoding error: unknown field \"kubernetesVersoin\""));
  CHECK(validate("apiVersion: kubeadm.k8s.io/v1beta4\\nkind: ClusterConfiguration\\nkubernetesVersion: v1.36.3\\n").ok());
  // kubectl apply refuses YAML that does not parse, and a custom resource whose CRD is not there.
  const auto apply = [&](const std::string& doc) {
    return on_host(92, "printf '" + doc + "' | kubectl --kubeconfig /etc/kubernetes/admin.conf apply -f -");
  };
  const auto broken = apply("apiVersion: v1\\nkind: ConfigMap\\nmetadata: {name: x\\n");
  CHECK_FALSE(broken.ok());
  CHECK(contains(broken.err, "error: error parsing STDIN: error converting YAML to JSON: yaml:"));
  const auto no_crd = apply("apiVersion: example.com/v1\\nkind: Widget\\nmetadata: {name: w}\\n");
  CHECK_FALSE(no_crd.ok());
  CHECK(contains(no_crd.err, "no matches for kind \"Widget\" in version \"example.com/v1\""));
  CHECK(contains(no_crd.err, "ensure CRDs are installed first"));
}

TEST_CASE("leftover cluster state on a host is refused with the reset hint before anything changes", "[install]")
{
  const std::string dir = testbed::temp_dir("install-leftover");
  const auto file = cluster_file(dir, {94});
  fresh_host(94);
  REQUIRE(on_host(94, "mkdir -p /etc/kubernetes/manifests && echo 'kind: Pod' > /etc/kubernetes/manifests/etcd.yaml").ok());
  const auto bundle = real_bundle(dir);
  const auto r = mlplat_run({"--data-dir", k_real_data, "install", "-c", file, "--state-dir", dir + "/state", "--bundle", bundle});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 3);
  CHECK(contains(r.out, "OS-021"));
  CHECK(contains(r.out, "kubeadm reset -f on the host"));
  CHECK(contains(r.err, "nothing was changed on any host"));
  CHECK_FALSE(on_host(94, "test -e /etc/sysctl.d/90-mlplat.conf").ok());
  // With the check ignored, kubeadm itself refuses, and install reports its words and the host.
  const auto ignored = mlplat_run({"--data-dir", k_real_data, "install", "-c", file, "--state-dir", dir + "/state", "--bundle", bundle, "--ignore", "OS-021"});
  CHECK(ignored.exit_code == 1);
  CHECK(contains(ignored.err, "node-94"));
  // (The real kubeadm checks each manifest it would write: the one file there is what it names.)
  CHECK(contains(ignored.err, "[ERROR FileAvailable--etc-kubernetes-manifests-etcd.yaml]: /etc/kubernetes/manifests/etcd.yaml already exists"));
  CHECK(contains(ignored.err, "run kubeadm reset -f on this host"));
  // kubeadm's preflight stopped it before its first phase: no certificate, no kubeconfig was written.
  CHECK_FALSE(on_host(94, "test -e /etc/kubernetes/pki || test -e /etc/kubernetes/admin.conf").ok());
  on_host(94, "rm -rf /etc/kubernetes");
}

TEST_CASE("a disk that fills up mid-step is reported with its filesystem, and the rerun continues after space is freed", "[install]")
{
  const std::string dir = testbed::temp_dir("install-diskfull");
  const std::string state = dir + "/state";
  const auto file = cluster_file(dir, {95});
  fresh_host(95);
  // A 64 KiB filesystem where the bundle goes: the first larger file fills it.
  REQUIRE(on_host(95, "mkdir -p /var/lib/mlplat && mount -t tmpfs -o size=64k mlplat-full /var/lib/mlplat").ok());
  const auto bundle = real_bundle(dir);
  const auto full = mlplat_run({"--data-dir", k_real_data, "install", "-c", file, "--state-dir", state, "--bundle", bundle});
  on_host(95, "umount /var/lib/mlplat");
  INFO(full.out << full.err);
  CHECK(full.exit_code != 0);
  CHECK(contains(full.err, "node-95"));
  CHECK(contains(full.err, "artifacts / bundle"));
  CHECK(contains(full.err, "No space left on device"));
  CHECK(contains(full.err, "the filesystem mlplat-full (mounted on /var/lib/mlplat) has 0 KiB free of 64 KiB"));
  CHECK(contains(full.err, "free space on that filesystem"));
  // No half-written file is left where the bundle goes (the upload writes beside it, then renames).
  CHECK(on_host(95, "find /var/lib/mlplat -name '.mlplat-upload.*' | wc -l").out == "0\n");
  const auto again = mlplat_run({"--data-dir", k_real_data, "install", "-c", file, "--state-dir", state, "--bundle", bundle});
  INFO(again.out << again.err);
  CHECK(again.exit_code == 0);
  CHECK(nodes_on(95) == "node-95 Ready control-plane\n");
}

TEST_CASE("the lock on the first control plane: another machine's live run exits 6 naming it, a stale lock is taken over", "[install]")
{
  const std::string dir = testbed::temp_dir("install-remote-lock");
  const std::string state = dir + "/state";
  const auto file = cluster_file(dir, {84});
  fresh_host(84);
  const std::string lock = "/var/lib/mlplat/locks/install-test.lock";
  on_host(84, "rm -rf /var/lib/mlplat/locks");
  // A finished run leaves no lock behind.
  const auto first = mlplat_run({"--data-dir", k_real_data, "install", "-c", file, "--state-dir", state, "--only", "prepare"});
  INFO(first.out << first.err);
  REQUIRE(first.exit_code == 0);
  CHECK_FALSE(on_host(84, "test -e " + lock).ok());
  // Another operator machine's run holds it, its heartbeat fresh.
  REQUIRE(on_host(84, "mkdir -p /var/lib/mlplat/locks && printf 'holder=pid 4242 (ops@other-laptop, install, since 2026-11-22T10:00:00Z) on machine 0123\\nid=x\\n' > " +
                      lock + " && touch " + lock + ".beat").ok());
  const auto start = std::chrono::steady_clock::now();
  const auto refused = mlplat_run({"--data-dir", k_real_data, "install", "-c", file, "--state-dir", state, "--only", "prepare"});
  const auto took = std::chrono::steady_clock::now() - start;
  INFO(refused.out << refused.err);
  CHECK(refused.exit_code == 6);
  CHECK(took < 5s);
  CHECK(contains(refused.err, "node-84: the cluster is locked by another run: held by pid 4242 (ops@other-laptop, install, since 2026-11-22T10:00:00Z) on machine 0123, heartbeat"));
  CHECK(contains(refused.err, "taken over once its heartbeat is 30 s old"));
  // Its heartbeat stopped a minute ago: taken over, with a warning naming it.
  REQUIRE(on_host(84, "touch -d '-60 seconds' " + lock + ".beat").ok());
  const auto taken = mlplat_run({"--data-dir", k_real_data, "install", "-c", file, "--state-dir", state, "--only", "prepare"});
  INFO(taken.out << taken.err);
  CHECK(taken.exit_code == 0);
  CHECK(contains(taken.err, "took over a stale cluster lock (pid 4242 (ops@other-laptop"));
  CHECK(contains(taken.err, "no heartbeat for 6"));
  CHECK_FALSE(on_host(84, "test -e " + lock).ok());
}

TEST_CASE("with --bundle-url the hosts fetch the bundle from a mirror and check it against --bundle's bill of materials", "[install]")
{
  const std::string dir = testbed::temp_dir("install-bundle-url");
  const auto file = cluster_file(dir, {83});
  fresh_host(83);
  const auto bundle = real_bundle(dir);
  const auto usage = mlplat_run({"--data-dir", k_real_data, "install", "-c", file, "--state-dir", dir + "/state", "--bundle-url", "http://x"});
  CHECK(usage.exit_code == 2);
  CHECK(contains(usage.err, "--bundle-url needs --bundle too"));
  // The bundle's directory served on the testbed's bridge, where the hosts reach it.
  const std::string unpacked = dir + "/served";
  std::filesystem::create_directories(unpacked);
  REQUIRE(run_process({"tar", "-C", unpacked, "-xzf", bundle}, 30s)->ok());
  mlplat::testing::HttpServer mirror(unpacked, testbed::net() + ".1");
  const auto r = mlplat_run({"--data-dir", k_real_data, "install", "-c", file, "--state-dir", dir + "/state", "--bundle", bundle, "--bundle-url", mirror.url(),
                             "--only", "prepare,artifacts"});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0);
  CHECK(contains(r.err, "fetched by every host from " + mirror.url()));
  CHECK(on_host(83, "cd /var/lib/mlplat/bundle/k8s-1.36 && sha256sum --check --strict --quiet SHA256SUMS && "
                    "test -f files/kubeadm/kubeadm").ok());
  // The files came from the mirror, not through SSH.
  const auto served = mirror.requests();
  CHECK(std::any_of(served.begin(), served.end(), [](const auto& q) { return q.path == "/files/kubeadm/kubeadm" && q.status == 200; }));
}

TEST_CASE("the lock's heartbeat is refreshed while the run lives, even during a long step, and stops when it is killed", "[install]")
{
  const std::string dir = testbed::temp_dir("install-heartbeat");
  const std::string state = dir + "/state";
  const auto file = cluster_file(dir, {98});
  fresh_host(98);
  const std::string beat = "/var/lib/mlplat/locks/install-test.lock.beat";
  const auto bundle = real_bundle(dir);
  // A slow link to the host: the upload of the bundle's 190 MB takes about 25 s, the run's one session
  // to the host busy all that time.
  testbed::script({"link", "node-98", "60mbit"});
  const std::string script =
    std::string(MLPLAT_BINARY) + " --data-dir " + k_real_data + " install -c " + file + " --state-dir " + state + " --bundle " + bundle +
    " > " + dir + "/run.log 2>&1 & pid=$!\n"
    "for i in $(seq 600); do grep -q '^phase artifacts:' " + dir + "/run.log && break; sleep 0.05; done\n"
    "echo $pid";
  const auto started = run_process({"sh", "-c", script}, 60s);
  REQUIRE(started);
  const std::string pid(text::trim(started->out));
  REQUIRE_FALSE(pid.empty());
  const auto mtime = [&] { return std::stoll("0" + std::string(text::trim(on_host(98, "stat -c %Y " + beat + " 2>/dev/null || echo 0").out))); };
  const auto phase = [&] {
    const auto log = run_process({"sh", "-c", "grep '^phase' " + dir + "/run.log | tail -n 1"}, 10s);
    return log ? log->out : std::string();
  };
  std::this_thread::sleep_for(2s);
  const long long first = mtime();
  std::this_thread::sleep_for(12s);
  const long long refreshed = mtime();
  const std::string during = phase();
  CHECK(first > 0);
  CHECK(refreshed > first);  // refreshed during the upload
  CHECK(contains(during, "phase artifacts:"));  // which was still going on
  ::kill(std::stoi(pid), SIGKILL);
  testbed::script({"link", "node-98", "off"});
  std::this_thread::sleep_for(2s);
  const long long after_kill = mtime();
  std::this_thread::sleep_for(12s);
  CHECK(mtime() == after_kill);  // the connection died, the heartbeat stopped
  CHECK(on_host(98, "test -f /var/lib/mlplat/locks/install-test.lock").ok());
}


TEST_CASE("install's cluster layer on the real control plane: kubeadm init and a join, Calico through its operator, OpenEBS proven by a volume, "
          "a rerun changes nothing (audited)",
          "[install][real]")
{
  const std::string dir = testbed::temp_dir("install-real");
  const std::string state = dir + "/state";
  const std::vector<int> nodes{101, 102};
  // The worker with labels and a taint from the cluster file (bug 6 of issue 13).
  const auto labelled = [&](const std::string& labels, const std::string& taints) {
    return cluster_file(dir, {101}, "    - {name: node-102, address: " + testbed::address(102) + ", role: worker, labels: {" + labels +
                                        "}, taints: [" + taints + "]}\n");
  };
  const auto file = labelled("zone: a, example.com/gpu: 'true'", "'dedicated=ml:PreferNoSchedule'");
  testbed::script({"stock", "node-102", "swap"});
  for (int n : nodes) {
    fresh_host(n);
  }
  const auto bundle = real_bundle(dir);
  const std::vector<std::string> install{"--data-dir", k_real_data, "install", "-c", file, "--state-dir", state, "--bundle", bundle,
                                         "--only", k_real_cluster};
  const auto first = mlplat_run(install, 900s);
  INFO(first.out << first.err);
  REQUIRE(first.exit_code == 0);
  CHECK(contains(first.out, "summary of cluster install-test (profile onprem, row k8s-1.36: Kubernetes 1.36.3)"));
  // Both nodes are Ready: Calico's install-cni container (of the DaemonSet the tigera operator made
  // from mlplat's Installation) wrote the CNI configuration on each, and the runtime reported the
  // network ready.
  CHECK(contains(first.out, "\n  node-101   Ready    control-plane"));
  CHECK(contains(first.out, "\n  node-102   Ready    <none>"));
  for (int n : nodes) {
    CHECK(on_host(n, "grep -q '\"type\":\"calico\"' /etc/cni/net.d/10-calico.conflist && test -x /opt/cni/bin/calico").ok());
  }
  CHECK(contains(kubectl_on(101, "get installation default -o jsonpath='{.status.variant} {.status.conditions[0].status}'"), "Calico True"));
  // The storage probe wrote its volume as uid 65534 on the node the scheduler chose (the worker: the
  // control plane keeps its taint), in the directory the provisioner's helper pod made for the PV.
  const std::string pv = kubectl_on(101, "-n mlplat-probe get pvc storage-probe -o jsonpath='{.spec.volumeName}'");
  REQUIRE(pv.rfind("pvc-", 0) == 0);
  CHECK(on_host(102, "test \"$(cat /var/openebs/local/" + pv + "/probe)\" = mlplat-storage-probe && "
                     "test \"$(stat -c %u /var/openebs/local/" + pv + "/probe)\" = 65534").ok());
  CHECK(kubectl_on(101, "-n mlplat-probe get pod storage-probe -o jsonpath='{.spec.nodeName} {.status.phase}'") == "node-102 Succeeded");
  // The helper pod is gone once it made the directory.
  CHECK_FALSE(contains(kubectl_on(101, "-n openebs get pods -o name"), "init-pvc-"));
  // The programs on the hosts are the upstream builds, the kubelet is the row's version.
  for (int n : nodes) {
    const auto v = on_host(n, "kubeadm version -o json; kubelet --version; kubectl version --client -o json");
    INFO(v.out << v.err);
    CHECK(contains(v.out, "\"gitVersion\": \"v1.36.3\""));
    CHECK(contains(v.out, "\"gitTreeState\": \"clean\""));
    CHECK(contains(v.out, "Kubernetes v1.36.3"));
  }
  // The worker's kubelet got its certificate through the TLS bootstrap; its join file is gone.
  CHECK(on_host(102, "grep -q 'client-certificate: /var/lib/kubelet/pki/kubelet-client-current.pem' /etc/kubernetes/kubelet.conf").ok());
  CHECK_FALSE(on_host(102, "test -e /etc/kubernetes/mlplat/kubeadm-join.yaml").ok());
  CHECK(fs::read_file(state + "/kubeconfig").value_or("") == on_host(101, "cat /etc/kubernetes/admin.conf").out);
  // The row's image list holds every image the cluster runs (kubeadm's static pods, CoreDNS and
  // kube-proxy, Calico's components as the operator deploys them, OpenEBS) and kubeadm's own list for
  // the row's version, so a site whose registry is stocked from the row lacks none (bug 9).
  {
    const auto matrix = mlplat_run({"--data-dir", k_real_data, "matrix", "--row", "k8s-1.36", "--output", "json"});
    REQUIRE(matrix.exit_code == 0);
    const auto row = nlohmann::json::parse(matrix.out)["rows"][0];
    std::set<std::string> listed;
    for (const auto& image : row["images"]) {
      listed.insert(image.get<std::string>());
    }
    std::set<std::string> used;
    for (const auto& image : text::split(kubectl_on(101, "get pods -A -o jsonpath='{range .items[*]}{range .spec.initContainers[*]}{.image}{\"\\n\"}"
                                                         "{end}{range .spec.containers[*]}{.image}{\"\\n\"}{end}{end}'"), '\n')) {
      if (!image.empty()) {
        used.insert(image);
      }
    }
    const auto kubeadm = on_host(101, "kubeadm config images list --kubernetes-version v" + row["kubernetes"].get<std::string>());
    REQUIRE(kubeadm.ok());
    for (const auto& image : text::split(kubeadm.out, '\n')) {
      if (!image.empty()) {
        used.insert(image);
      }
    }
    // What runs includes etcd, CoreDNS and Calico's typha, CSI driver and API server (the checks below
    // would pass vacuously otherwise).
    for (const char* expected : {"registry.k8s.io/etcd:", "registry.k8s.io/coredns/coredns:", "quay.io/calico/typha:", "quay.io/calico/csi:",
                                 "quay.io/calico/apiserver:", "registry.k8s.io/pause:"}) {
      CHECK(std::any_of(used.begin(), used.end(), [&](const std::string& u) { return u.rfind(expected, 0) == 0; }));
    }
    for (const auto& image : used) {
      INFO(image);
      CHECK(listed.count(image) == 1);
    }
  }
  // The cluster file's labels and taint are on the worker, with what mlplat manages remembered.
  const std::string node_facts = "get node node-102 -o go-template='{{range $k, $v := .metadata.labels}}{{$k}}={{$v}} {{end}}|"
                                 "{{range .spec.taints}}{{.key}}={{.value}}:{{.effect}} {{end}}|{{index .metadata.annotations \"mlplat.dev/labels\"}}|"
                                 "{{index .metadata.annotations \"mlplat.dev/taints\"}}'";
  auto facts = kubectl_on(101, node_facts);
  CHECK(contains(facts, " zone=a "));
  CHECK(contains(facts, "example.com/gpu=true "));
  CHECK(contains(facts, "|dedicated=ml:PreferNoSchedule |"));
  CHECK(contains(facts, "|example.com/gpu,zone|dedicated:PreferNoSchedule"));

  // The rerun, audited on both hosts: 0 steps applied, 0 mutating commands or system calls. Turning the
  // audit on restarts the hosts (a reboot): the rerun starts once the API server answers again.
  const auto second = audited_run(nodes, [&] { return mlplat_run(install, 600s); }, [&] { wait_for_nodes(101, 2, ""); });
  INFO(second.out << second.err);
  CHECK(second.exit_code == 0);
  CHECK(contains(second.out, "cluster install-test: 0 steps applied"));
  // The control plane comes back after each restart of the host (a reboot): the kubelet, started by the
  // service manager at boot, runs the static pods again, and the worker's kubelet reports again.
  wait_for_nodes(101, 2, "");

  // The cluster file changes: a label and the taint go, a label's value changes; a label someone else
  // set stays. The next run converges the node to the file with one step.
  REQUIRE(kubectl_on(101, "label node node-102 team=data -o name") == "node/node-102\n");
  labelled("zone: b", "");
  const auto third = mlplat_run(install, 600s);
  INFO(third.out << third.err);
  CHECK(third.exit_code == 0);
  CHECK(contains(third.out, "cluster install-test: 1 step applied"));
  facts = kubectl_on(101, node_facts);
  CHECK(contains(facts, " zone=b "));
  CHECK(contains(facts, " team=data "));
  CHECK_FALSE(contains(facts, "example.com/gpu"));
  CHECK(contains(facts, "||zone|"));
}

TEST_CASE("a cluster of three control planes and no worker schedules workloads: no control-plane taint on any node, "
          "the storage probe runs on one of them", "[install][real]")
{
  const std::string dir = testbed::temp_dir("install-cp-only");
  const std::vector<int> nodes{96, 97, 104};
  const auto file = cluster_file(dir, nodes, "", 3);
  testbed::script({"stock", "node-104", "swap"});
  for (int n : nodes) {
    fresh_host(n);
  }
  const auto bundle = real_bundle(dir);
  const auto r = mlplat_run({"--data-dir", k_real_data, "install", "-c", file, "--state-dir", dir + "/state", "--bundle", bundle,
                             "--only", k_real_cluster}, 900s);
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(nodes_on(96) == "node-104 Ready control-plane\nnode-96 Ready control-plane\nnode-97 Ready control-plane\n");
  // kubeadm's taints: [] on init and on each join: no node keeps node-role.kubernetes.io/control-plane:NoSchedule.
  CHECK(kubectl_on(96, "get nodes -o jsonpath='{range .items[*]}{.metadata.name}:{.spec.taints}{\"\\n\"}{end}'") ==
        "node-104:\nnode-96:\nnode-97:\n");
  const std::string probe = kubectl_on(96, "-n mlplat-probe get pod storage-probe -o jsonpath='{.spec.nodeName} {.status.phase}'");
  CHECK((probe == "node-96 Succeeded" || probe == "node-97 Succeeded" || probe == "node-104 Succeeded"));
}

TEST_CASE("kill -9 at every phase on the real control plane, then a rerun converges with one cluster",
          "[install][real][long]")
{
  const std::string dir = testbed::temp_dir("install-real-kill");
  const std::string state = dir + "/state";
  const auto file = cluster_file(dir, {106, 107});
  testbed::script({"stock", "node-107", "swap"});
  fresh_host(106);
  fresh_host(107);
  const auto bundle = real_bundle(dir);
  const std::vector<std::string> install{"--data-dir", k_real_data, "install", "-c", file, "--state-dir", state, "--bundle", bundle};
  std::vector<std::string> command{MLPLAT_BINARY};
  command.insert(command.end(), install.begin(), install.end());
  std::vector<std::string> killed_in;
  std::string ca;
  for (const char* phase : {"prepare", "artifacts", "containerd", "init", "join-control-planes", "join-workers", "kubeconfig", "nodes", "cni", "storage",
                            "cleanup", "pipelines", "istio", "tls", "gateway", "smoke"}) {
    // Started in the background; killed with SIGKILL as soon as it announces the phase (for init: once
    // kubeadm init has begun on the host, so that its SSH session dies under it). Each run continues
    // from the journal of the one killed before it.
    const std::string settle = std::string(phase) == "init" ? "sleep 3\n" : "";
    const std::string script = text::shell_join(command) + " > " + dir + "/run.log 2>&1 & pid=$!\n"
      "for i in $(seq 6000); do grep -q '^phase " + phase + ":' " + dir + "/run.log && break; kill -0 $pid 2>/dev/null || break; sleep 0.01; done\n" +
      settle + "kill -9 $pid 2>/dev/null && echo killed; wait $pid 2>/dev/null; grep -q '^phase " + phase + ":' " + dir + "/run.log && echo reached\n"
      "grep '^phase' " + dir + "/run.log | tail -n 1\n";
    const auto r = run_process({"sh", "-c", script}, 300s);
    REQUIRE(r);
    INFO(r->out);
    CHECK(contains(r->out, "killed"));
    CHECK(contains(r->out, "reached"));  // (a phase without hosts here, join-control-planes, may be over by then)
    killed_in.push_back(r->out);
    if (std::string(phase) == "join-workers") {
      ca = on_host(106, "sha256sum /etc/kubernetes/pki/ca.crt").out;
    }
  }
  INFO(text::join(killed_in, "---\n"));
  const auto last = mlplat_run(install, 900s);
  INFO(last.out << last.err);
  CHECK(last.exit_code == 0);
  CHECK(contains(last.out, "\n  node-106   Ready    control-plane"));
  CHECK(contains(last.out, "\n  node-107   Ready    <none>"));
  CHECK(contains(last.out, "Kubeflow Pipelines: https://pipelines.install-test.internal:30443/"));
  // One cluster: the CA kubeadm init made before the later kills is the cluster's CA.
  CHECK_FALSE(ca.empty());
  CHECK(on_host(106, "sha256sum /etc/kubernetes/pki/ca.crt").out == ca);
  // The runs killed with SIGKILL left their lock on the control plane; this machine's next run took
  // it over at once (it holds the local lock, so they are gone) and said so.
  CHECK(contains(last.err, "a run of this machine that ended without releasing it"));
  const auto again = mlplat_run(install, 600s);
  CHECK(contains(again.out, " 0 steps applied"));
}

namespace {

// Every path, unit and interface kind mlplat writes on a host, listed here on their own (not taken
// from mlplat's footprint list, so that a path that list forgets is still found): what is left of
// them on host `n`, one line each ("" when nothing).
std::string traces_on(int n, const std::string& base_path = "/var/openebs/local")
{
  const std::string script =
    "for p in /etc/sysctl.d/90-mlplat.conf /etc/modules-load.d/mlplat.conf /usr/local/bin/containerd /usr/local/bin/ctr "
    "/usr/local/bin/containerd-shim-runc-v2 /usr/local/sbin/runc /usr/local/bin/crictl /usr/local/bin/kubeadm /usr/local/bin/kubelet "
    "/usr/local/bin/kubectl /usr/local/bin/istioctl /etc/crictl.yaml /etc/containerd /usr/local/lib/systemd/system/containerd.service "
    "/usr/local/lib/systemd/system/kubelet.service /usr/local/lib/systemd/system/kubelet.service.d /etc/kubernetes /etc/cni/net.d "
    "/opt/cni/bin /var/lib/etcd /var/lib/mlplat /etc/systemd/system/multi-user.target.wants/kubelet.service "
    "/etc/systemd/system/multi-user.target.wants/containerd.service /run/containerd/containerd.sock " + base_path + "; do\n"
    "  [ -e \"$p\" ] && echo \"$p\"\ndone\n"
    // tmpfs mount points of the testbed stay; they must be empty.
    "for d in /var/lib/kubelet /var/lib/containerd; do [ -n \"$(ls -A $d 2>/dev/null)\" ] && echo \"$d not empty\"; done\n"
    "for s in kubelet containerd; do systemctl is-active --quiet $s && echo \"$s running\"; systemctl is-enabled --quiet $s && echo \"$s enabled\"; done\n"
    // Processes of this host (its UTS namespace: the test hosts share the machine's process table).
    "for prog in kube-apiserver etcd kube-controller-manager kube-scheduler kwok kubelet containerd; do for p in $(pgrep -x $prog); do\n"
    "  [ \"$(readlink /proc/$p/ns/uts)\" = \"$(readlink /proc/self/ns/uts)\" ] && echo \"$prog runs\"; done; done | sort -u\n"
    "iptables-save | grep -E 'KUBE-|cali-|FLANNEL' | head -3\n"
    "ls /sys/class/net | grep -E '^(cali|vxlan.calico|flannel|cni0|tunl0)' \n"
    "grep -F '# swap off for the kubelet (mlplat)' /etc/fstab\n"
    "true\n";
  return on_host(n, script).out;
}

} // namespace

TEST_CASE("reset of a 1+2 cluster keeps the Pipelines volumes, install gives them back with their data, a second reset changes "
          "nothing (audited), --purge-data leaves no trace", "[install][real][long]")
{
  const std::string dir = testbed::temp_dir("install-reset");
  const std::string state = dir + "/state";
  const std::vector<int> nodes{108, 109, 110};
  for (int n : nodes) {
    fresh_host(n);
  }
  const auto file = cluster_file(dir, nodes);
  const auto bundle = real_bundle(dir);
  const std::vector<std::string> install{"--data-dir", k_real_data, "install", "-c", file, "--state-dir", state, "--bundle", bundle};
  auto reset = [&](std::vector<std::string> extra) {
    std::vector<std::string> args{"--data-dir", k_real_data, "reset", "-c", file, "--state-dir", state};
    args.insert(args.end(), extra.begin(), extra.end());
    return mlplat_run(args, 600s);
  };
  const auto first = mlplat_run(install, 900s);
  INFO(first.out << first.err);
  REQUIRE(first.exit_code == 0);
  // A marker in each Pipelines volume's directory, on the node that holds it.
  const std::string volumes = kubectl_on(108, "get pv -o jsonpath='{range .items[*]}{.spec.claimRef.name} {.metadata.name} "
                                              "{.spec.local.path} {.spec.nodeAffinity.required.nodeSelectorTerms[0].matchExpressions[0].values[0]}{\"\\n\"}{end}'");
  INFO(volumes);
  std::map<std::string, std::tuple<std::string, std::string, int>> claims;  // claim -> (pv, path, node)
  for (const auto& line : text::split(volumes, '\n')) {
    const auto w = text::split(std::string(text::trim(line)), ' ');
    if (w.size() == 4 && (w[0] == "mysql-pv-claim" || w[0] == "seaweedfs-pvc")) {
      claims[w[0]] = {w[1], w[2], std::stoi(w[3].substr(5))};
    }
  }
  REQUIRE(claims.size() == 2);
  const std::string marker = "marker of run " + sha256_hex(dir + std::to_string(::getpid())).substr(0, 12);
  for (const auto& [claim, where] : claims) {
    REQUIRE(on_host(std::get<2>(where), "echo '" + marker + " " + claim + "' > " + std::get<1>(where) + "/mlplat-test-marker").ok());
  }

  // Without a terminal and without --yes, reset refuses (exit 2) and changes nothing.
  const auto refused = reset({});
  CHECK(refused.exit_code == 2);
  CHECK(contains(refused.err, "pass --yes"));
  CHECK(nodes_on(108) == "node-108 Ready control-plane\nnode-109 Ready <none>\nnode-110 Ready <none>\n");
  // The dry run shows the commands per host and changes nothing.
  const auto dry = reset({"--dry-run"});
  INFO(dry.out << dry.err);
  CHECK(dry.exit_code == 0);
  CHECK(contains(dry.out, "kubeadm/kubeadm-reset: kubeadm reset"));
  CHECK(contains(dry.out, "host/footprint: remove what install put on the host"));
  CHECK_FALSE(std::filesystem::exists(state + "/volumes.json"));

  const auto done = reset({"--yes"});
  INFO(done.out << done.err);
  REQUIRE(done.exit_code == 0);
  CHECK(contains(done.out, "data kept on the hosts (2 volumes"));
  CHECK(contains(done.out, "kubeflow/mysql-pv-claim"));
  for (int n : nodes) {
    INFO("node-" << n);
    CHECK(traces_on(n, "/nonexistent") == "");
  }
  for (const auto& [claim, where] : claims) {
    CHECK(on_host(std::get<2>(where), "cat " + std::get<1>(where) + "/mlplat-test-marker").out == marker + " " + claim + "\n");
  }
  const auto record = nlohmann::json::parse(*fs::read_file(state + "/volumes.json"));
  CHECK(record["volumes"].size() == 2);
  CHECK(nlohmann::json::parse(*fs::read_file(state + "/journal.json"))["steps"].empty());

  // A second reset: nothing to do, no mutating command or system call on any host.
  const auto second = audited_run(nodes, [&] { return reset({"--yes"}); });
  INFO(second.out << second.err);
  CHECK(second.exit_code == 0);
  CHECK(contains(second.out, "(0 steps applied"));

  // Install again: a new cluster, whose claims bind to the kept volumes, with the markers in them.
  const auto again = mlplat_run(install, 900s);
  INFO(again.out << again.err);
  REQUIRE(again.exit_code == 0);
  for (const auto& [claim, where] : claims) {
    INFO(claim);
    CHECK(kubectl_on(108, "-n kubeflow get pvc " + claim + " -o jsonpath='{.status.phase} {.spec.volumeName}'") == "Bound " + std::get<0>(where));
    CHECK(kubectl_on(108, "get pv " + std::get<0>(where) + " -o jsonpath='{.spec.local.path} {.spec.persistentVolumeReclaimPolicy}'") ==
          std::get<1>(where) + " Retain");
    CHECK(on_host(std::get<2>(where), "cat " + std::get<1>(where) + "/mlplat-test-marker").out == marker + " " + claim + "\n");
  }

  // --purge-data: nothing of mlplat's is left, the volumes' directories neither, nor their record.
  const auto purged = reset({"--yes", "--purge-data"});
  INFO(purged.out << purged.err);
  REQUIRE(purged.exit_code == 0);
  for (int n : nodes) {
    INFO("node-" << n);
    CHECK(traces_on(n) == "");
  }
  CHECK(nlohmann::json::parse(*fs::read_file(state + "/volumes.json"))["volumes"].empty());
}

namespace {

// etcd's members as the first control plane's etcd lists them: "name" per line, sorted.
std::string etcd_members_on(int n)
{
  return on_host(n, k_programs_etcdctl + " --endpoints=https://127.0.0.1:2379 --cacert=/etc/kubernetes/pki/etcd/ca.crt "
                    "--cert=/etc/kubernetes/pki/apiserver-etcd-client.crt --key=/etc/kubernetes/pki/apiserver-etcd-client.key "
                    "member list -w simple | cut -d, -f3 | tr -d ' ' | sort").out;
}

} // namespace

TEST_CASE("nodes added to a running cluster join with 0 changes to the others, from an empty state directory too, and remove-node "
          "takes them out again (etcd's members drop, quorum and the last control plane refused)", "[install][real][long]")
{
  const std::string dir = testbed::temp_dir("install-nodes");
  const std::string no_platform = "  pipelines:\n    enabled: false\n";
  for (int n : {111, 112, 113}) {
    fresh_host(n);
  }
  const auto bundle = real_bundle(dir);
  auto install = [&](const std::string& file, const std::string& state) {
    return mlplat_run({"--data-dir", k_real_data, "install", "-c", file, "--state-dir", state, "--bundle", bundle}, 900s);
  };
  const auto first = install(cluster_file(dir, {111}, "", 1, no_platform), dir + "/state");
  INFO(first.out << first.err);
  REQUIRE(first.exit_code == 0);
  const std::string cluster_uid = kubectl_on(111, "-n kube-system get configmap kubeadm-config -o jsonpath='{.metadata.uid}'");
  const std::string init_rc = on_host(111, "stat -c %Y /var/lib/mlplat/run/mlplat-kubeadm-init.rc").out;

  // A control plane and a worker added to the file: they join; node-111 gets only the join material
  // (a token, the encrypted certificates, then their cleanup) and the new nodes' labels, nothing of its own.
  const auto file = cluster_file(dir, {111, 113, 112}, "", 2, no_platform);
  audit::clear_audit("node-111");
  testbed::script({"audit", "node-111", "on"});
  wait_for_nodes(111, 1);
  audit::clear_audit("node-111");
  const auto added = install(file, dir + "/state");
  const auto record = audit::read_audit("node-111");
  testbed::script({"audit", "node-111", "off"});
  INFO(added.out << added.err);
  REQUIRE(added.exit_code == 0);
  wait_for_nodes(111, 3);
  CHECK(nodes_on(111) == "node-111 Ready control-plane\nnode-112 Ready <none>\nnode-113 Ready control-plane\n");
  CHECK(etcd_members_on(111) == "node-111\nnode-113\n");
  static const std::regex allowed("(kubeadm (token (create|delete)|init phase upload-certs)|kubectl .*(label|annotate|taint|delete secret kubeadm-certs)).*");
  std::vector<std::string> other;
  for (const auto& m : record.mutations) {
    if (!std::regex_search(m, allowed)) {
      other.push_back(m);
    }
  }
  INFO("node-111's mutations:\n" << text::join(record.mutations, "\n"));
  CHECK(other.empty());
  CHECK_FALSE(record.mutations.empty());  // the join material was made there

  // From an empty state directory (another operator machine, or a lost one): the cluster is found on
  // the hosts, nothing is initialised again, the doctor takes kubeadm's files as the cluster's own.
  const auto lost = install(file, dir + "/state-new");
  INFO(lost.out << lost.err);
  CHECK(lost.exit_code == 0);
  CHECK(kubectl_on(111, "-n kube-system get configmap kubeadm-config -o jsonpath='{.metadata.uid}'") == cluster_uid);
  CHECK(on_host(111, "stat -c %Y /var/lib/mlplat/run/mlplat-kubeadm-init.rc").out == init_rc);
  CHECK(etcd_members_on(111) == "node-111\nnode-113\n");
  const std::string state = dir + "/state-new";
  auto remove = [&](const std::string& name) {
    return mlplat_run({"--data-dir", k_real_data, "remove-node", name, "--yes", "-c", file, "--state-dir", state}, 600s);
  };

  // etcd of two members with one stopped has no quorum: removing either is refused, nothing changed.
  // (Only node-113's etcd: the test hosts share the machine's process table, told apart by their UTS namespace.)
  auto signal_etcd = [](int n, const std::string& sig) {
    REQUIRE(on_host(n, "for p in $(pgrep -x etcd); do [ \"$(readlink /proc/$p/ns/uts)\" = \"$(readlink /proc/self/ns/uts)\" ] && "
                       "kill -" + sig + " $p; done; true").ok());
  };
  signal_etcd(113, "STOP");
  const auto no_quorum = remove("node-113");
  signal_etcd(113, "CONT");
  INFO(no_quorum.out << no_quorum.err);
  CHECK(no_quorum.exit_code == 3);
  CHECK(contains(no_quorum.err, "removing node-113 is refused: etcd has no quorum now"));
  wait_for_nodes(111, 3);
  CHECK(etcd_members_on(111) == "node-111\nnode-113\n");

  // The worker: drained, its host reset (its data kept), its Node gone.
  const auto worker = remove("node-112");
  INFO(worker.out << worker.err);
  CHECK(worker.exit_code == 0);
  CHECK(contains(worker.err, "node-112 is still in " + file));
  CHECK(nodes_on(111) == "node-111 Ready control-plane\nnode-113 Ready control-plane\n");
  CHECK(traces_on(112, "/nonexistent") == "");
  // The control plane: its etcd member first, then its host, then its Node.
  const auto control_plane = remove("node-113");
  INFO(control_plane.out << control_plane.err);
  CHECK(control_plane.exit_code == 0);
  CHECK(etcd_members_on(111) == "node-111\n");
  CHECK(nodes_on(111) == "node-111 Ready control-plane\n");
  CHECK(traces_on(113, "/nonexistent") == "");
  // The last control plane is refused.
  const auto last = remove("node-111");
  CHECK(last.exit_code == 3);
  CHECK(contains(last.err, "removing every control plane of the cluster is refused"));
  CHECK(nodes_on(111) == "node-111 Ready control-plane\n");
}

namespace {

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

TEST_CASE("status and kubeconfig on the real control plane: healthy exits 0 with valid JSON, the admin's kubeconfig and a user's with "
          "the asked lifetime and group, which gets exactly that group's permissions, then an expired ingress certificate and a stopped "
          "node exit 8, named", "[install][real][day2]")
{
  const std::string dir = testbed::temp_dir("day2-status");
  const std::string state = dir + "/state";
  const std::vector<int> nodes{114, 115};
  for (int n : nodes) {
    fresh_host(n);
  }
  const auto file = cluster_file(dir, nodes, "", 1, "  pipelines:\n    enabled: false\n");
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

  // The kubeconfigs, while the cluster is healthy.
  {
  // The admin's: the control plane's admin.conf, 0600; an existing file is refused before any connection.
  const std::string admin = dir + "/admin.conf";
  auto r = mlplat_run({"--data-dir", k_real_data, "kubeconfig", "-c", file, "--file", admin});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  struct stat st {};
  REQUIRE(::stat(admin.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(fs::read_file(admin).value() == on_host(114, "cat /etc/kubernetes/admin.conf").out);
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
  CHECK(can_i(114, alice, "list pods -n default") == "no");
  // The group bound to view: reads, no writes, no Secrets (view excludes them).
  kubectl_on(114, "create clusterrolebinding day2-ml-viewers --clusterrole view --group ml-viewers");
  CHECK(can_i(114, alice, "list pods -n default") == "yes");
  CHECK(can_i(114, alice, "list deployments -n kube-system") == "yes");
  CHECK(can_i(114, alice, "create pods -n default") == "no");
  CHECK(can_i(114, alice, "get secrets -n default") == "no");
  CHECK(can_i(114, alice, "delete nodes") == "no");
  // A user of a group with no binding gets nothing.
  const std::string bob = dir + "/bob.conf";
  REQUIRE(mlplat_run({"--data-dir", k_real_data, "kubeconfig", "-c", file, "--user", "bob", "--group", "unbound", "--ttl", "1h", "--file", bob})
            .exit_code == 0);
  CHECK(can_i(114, bob, "list pods -n default") == "no");
  kubectl_on(114, "delete clusterrolebinding day2-ml-viewers");

  // Refused before any connection: a reserved group, a lifetime out of bounds.
  CHECK(mlplat_run({"kubeconfig", "-c", file, "--user", "eve", "--group", "system:masters"}).exit_code == 2);
  CHECK(mlplat_run({"kubeconfig", "-c", file, "--user", "eve", "--ttl", "400d"}).exit_code == 2);
  }

  // An expired ingress certificate: degraded, named.
  {
    // Pipelines on in the file (the platform was not installed: pipelines and gateway are absent,
    // which is degraded too); the Secret holds a certificate that expired.
    const auto with_platform = cluster_file(dir, nodes);
    const auto expired = tls::issue_ca("expired ingress", 0);
    REQUIRE(expired);
    std::this_thread::sleep_for(2s);
    REQUIRE(on_host(114, "umask 077; mkdir -p /tmp/day2-tls && cat > /tmp/day2-tls/tls.crt <<'EOF'\n" + expired->cert_pem +
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
    kubectl_on(114, "-n istio-system delete secret mlplat-ingress-tls");
  }
  // A stopped node: unreachable and NotReady, the rest still shown, degraded.
  {
    // The kubelet stopped (the stand-in under the systemd stand-in), then sshd killed: the host is down.
    on_host(115, "systemctl stop kubelet");
    testbed::script({"kill-sshd", "node-115"});
    wait_for_ready(114, "node-115", "Unknown");
    j = status_json(dir, file, state, 8);
    CHECK(j["status"] == "degraded");
    const auto* down = find_named(j["nodes"], "node-115");
    REQUIRE(down != nullptr);
    CHECK((*down)["reachable"] == false);
    CHECK((*down)["ready"] != "True");
    CHECK((*down).contains("error"));
    CHECK((*find_named(j["nodes"], "node-114"))["ready"] == "True");
    testbed::script({"restart", "node-115"});
    wait_for_ready(114, "node-115", "True");
  }
}

namespace {

// A bundle of the test row with its images: every image of the row made at test time (a small OCI
// image per reference) and pushed to `source`, a registry on loopback standing for the public
// registries, which bundle create copies them from (--image-mirror for each, nothing upstream).
std::string bundle_with_images(const std::string& dir, const mlplat::testing::Registry& source, size_t* count)
{
  auto row = mlplat_run({"--data-dir", k_real_data, "matrix", "--row", "k8s-1.36", "--output", "json"});
  REQUIRE(row.exit_code == 0);
  const auto j = nlohmann::json::parse(row.out);
  std::set<std::string> registries;
  size_t n = 0;
  for (const auto& image : j["rows"][0]["images"]) {
    const auto ref = render::parse_image(image.get<std::string>());
    REQUIRE(ref);
    registries.insert(ref->registry);
    const std::string layout = fmt::format("{}/layouts/{}", dir, n++);
    mlplat::testing::make_test_image(layout, ref->path, ref->suffix.substr(1));
    source.push(layout, ref->suffix.substr(1), ref->path);
  }
  *count = n;
  REQUIRE(fs::write_file_atomic(dir + "/row.json", row.out, 0644));
  auto mirror = run_process({"python3", MLPLAT_SOURCE_DIR "/tests/testbed/standin-mirror.py", "--matrix-json", dir + "/row.json", "--out", dir + "/www"}, 60s);
  REQUIRE(mirror);
  REQUIRE(mirror->ok());
  mlplat::testing::HttpServer server(dir + "/www");
  const std::string out = dir + "/bundle-images";
  std::vector<std::string> args{"--data-dir", k_real_data, "bundle", "create", "--base-url", server.url(), "--accept-unpinned", "all",
                                "-o", out, "--sign-key", bundle_signer(dir).key, "--images", "--no-upstream-images",
                                "--image-mirror-ca", source.ca_file(), "--registry-auth", source.auth_file("source-auth.json")};
  for (const auto& r : registries) {
    args.push_back("--image-mirror");
    args.push_back(r + "=" + source.url());
  }
  auto created = mlplat_run(args, 600s);
  INFO(created.out << created.err);
  REQUIRE(created.exit_code == 0);
  return out;
}

} // namespace

TEST_CASE("air-gapped: the bundle's images pushed once to a site registry (TLS, htpasswd), every host pulls every image from it and "
          "none from a public registry, wrong credentials refused before any host", "[install][real][airgap]")
{
  const std::string dir = testbed::temp_dir("airgap");
  const std::string state = dir + "/state";
  const std::vector<int> nodes{116, 117};
  for (int n : nodes) {
    fresh_host(n);
  }
  mlplat::testing::Registry source(dir + "/source", "127.0.0.1");
  size_t images = 0;
  const auto bundle = bundle_with_images(dir, source, &images);
  REQUIRE(images >= 40);
  // The site registry on the testbed's bridge, the only registry the hosts can reach.
  mlplat::testing::Registry site(dir + "/site", testbed::net() + ".1");
  // The hosts have no route beyond the testbed's subnet, and their runtime treats every registry
  // without a hosts.toml as unreachable (the stand-in's `offline`, no packet sent).
  for (int n : nodes) {
    const auto route = on_host(n, "ip route get 192.0.2.1 2>&1; echo offline >> /etc/mlplat-testbed/images");
    CHECK(contains(route.out, "unreachable"));
  }
  auto spec = [&](const std::string& credentials) {
    return fmt::format("  pipelines:\n    enabled: false\n  registry:\n    site:\n      url: {}\n      caFile: {}\n      credentialsFile: {}\n", site.url(),
                       site.ca_file(), credentials);
  };

  // Wrong credentials: refused on this machine, naming the registry and the reason; no host touched.
  const auto wrong = cluster_file(dir, nodes, "", 1, spec(site.credentials_file("wrong-credentials", "not-the-password")));
  const auto refused = mlplat_run({"--data-dir", k_real_data, "install", "-c", wrong, "--state-dir", state, "--bundle", bundle, "--only", k_real_cluster}, 300s);
  INFO(refused.out << refused.err);
  CHECK(refused.exit_code != 0);
  CHECK(contains(refused.err, site.host()));
  CHECK(contains(refused.err, "unauthorized"));
  CHECK_FALSE(contains(refused.out + refused.err, "not-the-password"));
  CHECK(on_host(116, "test -e /var/lib/mlplat && echo touched || echo untouched").out == "untouched\n");

  const auto file = cluster_file(dir, nodes, "", 1, spec(site.credentials_file("credentials")));
  const auto installed = mlplat_run({"--data-dir", k_real_data, "install", "-c", file, "--state-dir", state, "--bundle", bundle, "--only", k_real_cluster}, 900s);
  INFO(installed.out << installed.err);
  REQUIRE(installed.exit_code == 0);
  CHECK(contains(installed.err, fmt::format("site registry {}: {} images pushed, 0 already there", site.url(), images)));
  CHECK_FALSE(contains(installed.out + installed.err, "test-only-password-5f2c"));
  // Every image pushed once; the hosts pulled from the site registry: kubeadm's, the pause image,
  // Calico's and OpenEBS' (the stand-in runtime fetches manifests and blobs for real).
  CHECK(site.count("PUT", "/manifests/") == int(images));
  const std::string log = site.log();
  for (int n : nodes) {
    CHECK(contains(log, testbed::address(n) + ":"));
  }
  for (const auto* path : {"/v2/kube-apiserver/manifests/", "/v2/pause/manifests/", "/v2/calico/node/manifests/", "/v2/openebs/provisioner-localpv/manifests/"}) {
    INFO(path);
    CHECK((site.count("GET", path) + site.count("HEAD", path)) > 0);
  }
  // The credentials are in the hosts' hosts.toml only, readable by root alone.
  CHECK(on_host(117, "stat -c %a /etc/containerd/certs.d/registry.k8s.io/hosts.toml").out == "600\n");
  CHECK(contains(on_host(117, "cat /etc/containerd/certs.d/quay.io/hosts.toml").out, "server = \"" + site.url() + "\""));
  // A second install pushes nothing: the site registry serves every image at its digest.
  const auto again = mlplat_run({"--data-dir", k_real_data, "install", "-c", file, "--state-dir", state, "--bundle", bundle, "--only", k_real_cluster}, 900s);
  INFO(again.out << again.err);
  CHECK(again.exit_code == 0);
  CHECK(contains(again.err, fmt::format("site registry {}: 0 images pushed, {} already there", site.url(), images)));
  CHECK(site.count("PUT", "/manifests/") == int(images));

  // Without a site registry the hosts get the images from the bundle: loaded by the bundle's ctr,
  // checked by digest, skipped when present; the hosts still reach no registry at all.
  for (int n : nodes) {
    fresh_host(n);
    on_host(n, "echo offline >> /etc/mlplat-testbed/images");
  }
  const int site_gets = site.count("GET", "/manifests/") + site.count("HEAD", "/manifests/");
  const auto loaded_file = cluster_file(dir, nodes, "", 1, "  pipelines:\n    enabled: false\n");
  const auto loaded = mlplat_run({"--data-dir", k_real_data, "install", "-c", loaded_file, "--state-dir", dir + "/state-load", "--bundle", bundle,
                                  "--only", k_real_cluster + ",images"}, 900s);
  INFO(loaded.out << loaded.err);
  REQUIRE(loaded.exit_code == 0);
  CHECK(site.count("GET", "/manifests/") + site.count("HEAD", "/manifests/") == site_gets);
  const auto cp = on_host(116, "/usr/local/bin/ctr -n k8s.io images ls | awk 'NR > 1 {print $1}'").out;
  const auto worker = on_host(117, "/usr/local/bin/ctr -n k8s.io images ls | awk 'NR > 1 {print $1}'").out;
  CHECK(contains(cp, "registry.k8s.io/kube-apiserver:"));
  CHECK_FALSE(contains(worker, "registry.k8s.io/kube-apiserver:"));
  CHECK(contains(worker, "quay.io/calico/node:"));
  CHECK(on_host(117, "ls /var/lib/mlplat/images | wc -l").out == "0\n");
  // Present at their digests: a second run loads nothing.
  const auto reloaded = mlplat_run({"--data-dir", k_real_data, "install", "-c", loaded_file, "--state-dir", dir + "/state-load", "--bundle", bundle,
                                    "--only", k_real_cluster + ",images"}, 900s);
  INFO(reloaded.out << reloaded.err);
  CHECK(reloaded.exit_code == 0);
  CHECK(contains(reloaded.out, "0 steps applied"));
  for (int n : nodes) {
    fresh_host(n);
  }
}

TEST_CASE("every image the real kubeadm of the row's version lists is in the row (the shipped matrix's and the test matrix's)", "[install][platform]")
{
  // The real kubeadm the testbed built (tests/testbed/build-programs.sh), asked for the images of each
  // row of its minor: `kubeadm config images list` is what kubeadm init pulls (its preflight) and the
  // static pods run. An image missing from the row would be missing from a bundle and a site registry.
  const std::string kubeadm = MLPLAT_BINARY_DIR "/testbed-programs/upstream/kubeadm";
  const auto version = run_process({kubeadm, "version", "-o", "short"}, 30s);
  REQUIRE(version);
  REQUIRE(version->ok());
  const std::string minor = std::string(text::trim(version->out)).substr(1, 4);  // "1.36"
  size_t rows = 0;
  for (const auto& data : {std::string(), k_real_data}) {
    std::vector<std::string> args;
    if (!data.empty()) {
      args = {"--data-dir", data};
    }
    args.insert(args.end(), {"matrix", "--output", "json"});
    const auto m = mlplat_run(args);
    REQUIRE(m.exit_code == 0);
    const auto matrix = nlohmann::json::parse(m.out);
    for (const auto& row : matrix["rows"]) {
      const std::string k8s = row["kubernetes"].get<std::string>();
      if (k8s.rfind(minor + ".", 0) != 0) {
        continue;
      }
      ++rows;
      const auto listed = run_process({kubeadm, "config", "images", "list", "--kubernetes-version", "v" + k8s}, 30s);
      REQUIRE(listed);
      INFO(listed->err);
      REQUIRE(listed->ok());
      const auto images = row["images"].get<std::vector<std::string>>();
      size_t n = 0;
      for (const auto& line : text::split(listed->out, '\n')) {
        const std::string image(text::trim(line));
        if (image.empty()) {
          continue;
        }
        ++n;
        INFO("row " << row["id"].get<std::string>() << ": " << image);
        CHECK(std::find(images.begin(), images.end(), image) != images.end());
      }
      CHECK(n == 7);
    }
  }
  CHECK(rows == 2);
}
