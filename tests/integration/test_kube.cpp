// The testbed's real control plane, without mlplat: the upstream kubeadm, kube-apiserver, etcd,
// controller-manager, scheduler and kubectl built by tests/testbed/build-programs.sh, on testbed
// hosts whose kubelet and container runtime are the testbed's stand-ins (tests/testbed/go/standins)
// and whose pods kwok plays. What the install tests build on: if this fails, the test world is wrong,
// not mlplat.
#include "support/catch.hpp"

#include "integration/testbed.hpp"
#include "util/fs.hpp"
#include "util/text.hpp"

#include <nlohmann/json.hpp>

#include <thread>

using namespace mlplat;
using namespace std::chrono_literals;

namespace {

const std::string k_programs = MLPLAT_TESTBED_PROGRAMS;
// The same programs as a test host sees them (testbed.sh binds them in at its boot).
const std::string k_host_programs = "/usr/local/lib/mlplat-testbed";

ProcessResult on_host(int n, const std::string& script, std::chrono::seconds deadline = 120s)
{
  auto r = run_process({MLPLAT_TESTBED_SCRIPT, "exec", "node-" + std::to_string(n), "sh", "-c", script}, deadline);
  REQUIRE(r);
  return *r;
}

bool contains(const std::string& haystack, const std::string& needle)
{
  return haystack.find(needle) != std::string::npos;
}

std::string built(const std::string& name)
{
  for (const auto& line : text::split(fs::read_file(k_programs + "/versions").value_or(""), '\n')) {
    if (line.rfind(name + " ", 0) == 0) {
      return line.substr(name.size() + 1);
    }
  }
  FAIL("no " << name << " in " << k_programs << "/versions");
  return {};
}

// A host as mlplat's runtime phase leaves it: the binaries, containerd's config, the units and
// kubeadm's drop-in from manifests/host, containerd running and the kubelet enabled. The kubelet and
// containerd stand-ins carry their version mark as the bundle mirror serves them.
void prepare(int n, const std::string& k8s)
{
  // A fresh boot of a prepared host (forwarding on, br_netfilter and the other modules loaded: what
  // mlplat's prepare does, which this test leaves out; kubeadm's own preflight refuses a stock host):
  // no process of an earlier run left (static pods outlive a kubelet, as containers do).
  testbed::script({"stock", "node-" + std::to_string(n), "prepared"});
  // The unit files and configs come from this machine's checkout (which a host may not see: a clone
  // under /tmp is not the host's /tmp).
  const auto file = [](const std::string& name) {
    const auto text = fs::read_file(std::string(MLPLAT_SOURCE_DIR) + "/manifests/host/" + name);
    REQUIRE(text);
    return *text;
  };
  const auto put = [](const std::string& path, const std::string& text) {
    return "cat > " + path + " <<'MLPLAT_EOF'\n" + text + (text.empty() || text.back() == '\n' ? "" : "\n") + "MLPLAT_EOF\n";
  };
  const std::string script =
    "set -e\n"
    "rm -rf /etc/kubernetes /var/lib/kubelet/* /var/lib/etcd /etc/cni/net.d /var/log/pods\n"
    "install -m 0755 " + k_host_programs + "/upstream/kubeadm " + k_host_programs + "/upstream/kubectl /usr/local/bin/\n"
    "cp " + k_host_programs + "/standins/kubelet /usr/local/bin/kubelet && printf '\\nMLPLAT-STANDIN-VERSION " + k8s.substr(1) +
    "\\n' >> /usr/local/bin/kubelet && chmod 0755 /usr/local/bin/kubelet\n"
    "cp " + k_host_programs + "/standins/containerd /usr/local/bin/containerd && printf '\\nMLPLAT-STANDIN-VERSION 2.3.4\\n' >> "
    "/usr/local/bin/containerd && chmod 0755 /usr/local/bin/containerd\n"
    "mkdir -p /etc/containerd /usr/local/lib/systemd/system/kubelet.service.d\n" +
    put("/etc/containerd/config.toml", text::replace_all(file("containerd-config.toml"), "sandbox = \"\"", "sandbox = \"registry.k8s.io/pause:3.10.2\"")) +
    put("/usr/local/lib/systemd/system/containerd.service", file("containerd.service")) +
    put("/usr/local/lib/systemd/system/kubelet.service", file("kubelet.service")) +
    put("/usr/local/lib/systemd/system/kubelet.service.d/10-kubeadm.conf", file("10-kubeadm.conf")) +
    "systemctl daemon-reload\nsystemctl enable --now containerd\nsystemctl enable kubelet\n";
  const auto r = on_host(n, script);
  INFO(r.out << r.err);
  REQUIRE(r.ok());
}

// Waits (bounded) until `script` succeeds on host n; the test fails naming what it waited for.
void wait_for(int n, const std::string& what, const std::string& script, std::chrono::seconds deadline)
{
  const auto until = std::chrono::steady_clock::now() + deadline;
  ProcessResult last;
  while (std::chrono::steady_clock::now() < until) {
    last = on_host(n, script);
    if (last.ok()) {
      return;
    }
    std::this_thread::sleep_for(2s);
  }
  FAIL("node-" << n << ": " << what << " within " << deadline.count() << " s; last: " << last.out << last.err);
}

const std::string k_kubectl = "kubectl --kubeconfig /etc/kubernetes/admin.conf ";

} // namespace

TEST_CASE("the real control plane runs in the testbed: kubeadm init and join, TLS bootstrap, nodes Ready once a CNI config exists, pods played by kwok",
          "[kube]")
{
  const int cp = 99, worker = 100;
  const std::string k8s = built("kubernetes");
  for (int n : {cp, worker}) {
    prepare(n, k8s);
  }

  // An upstream build: its version stamps, a clean tree.
  const auto version = on_host(cp, "kubeadm version -o json");
  REQUIRE(version.ok());
  const auto v = nlohmann::json::parse(version.out)["clientVersion"];
  CHECK(v["gitVersion"] == k8s);
  CHECK(v["gitTreeState"] == "clean");
  CHECK(contains(v["gitCommit"].get<std::string>(), "k8s.io/kubernetes@" + k8s));

  // kubeadm init, with the config validated by the real `kubeadm config validate`.
  const std::string config = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\nlocalAPIEndpoint:\n  advertiseAddress: " +
                             testbed::address(cp) + "\nnodeRegistration:\n  name: node-" + std::to_string(cp) +
                             "\n  criSocket: unix:///run/containerd/containerd.sock\n---\napiVersion: kubeadm.k8s.io/v1beta4\n"
                             "kind: ClusterConfiguration\nkubernetesVersion: " + k8s + "\nnetworking:\n  podSubnet: 10.244.0.0/16\n---\n"
                             "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\ncgroupDriver: systemd\n";
  const auto init = on_host(cp, "mkdir -p /etc/kubernetes && cat > /etc/kubernetes/init.yaml <<'EOF'\n" + config +
                                    "EOF\nkubeadm config validate --config /etc/kubernetes/init.yaml && "
                                    "kubeadm init --config /etc/kubernetes/init.yaml --skip-token-print",
                            600s);
  INFO(init.out << init.err);
  REQUIRE(init.ok());
  CHECK(contains(init.out, "Your Kubernetes control-plane has initialized successfully!"));
  // The control plane's static pods run as processes of the real programs, their mirror pods Running.
  const auto pods = on_host(cp, k_kubectl + "-n kube-system get pods -o jsonpath='{range .items[*]}{.metadata.name}={.status.phase}{\"\\n\"}{end}'");
  INFO(pods.out << pods.err);
  for (const char* c : {"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"}) {
    CHECK(contains(pods.out, std::string(c) + "-node-99=Running\n"));
  }
  CHECK(on_host(cp, "pgrep -f '" + k_host_programs + "/upstream/etcd ' >/dev/null").ok());
  // The kubelet's client certificate came from its store, as with the real kubelet.
  CHECK(on_host(cp, "test -L /var/lib/kubelet/pki/kubelet-client-current.pem").ok());

  // Not Ready until a CNI network config exists (the runtime reports NetworkReady=false), then Ready.
  const auto not_ready = on_host(cp, k_kubectl + "get node node-99 -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].message}'");
  CHECK(contains(not_ready.out, "cni plugin not initialized"));
  REQUIRE(on_host(cp, "mkdir -p /etc/cni/net.d && echo '{\"cniVersion\":\"1.0.0\",\"name\":\"testbed\",\"plugins\":[{\"type\":\"bridge\"}]}' "
                      "> /etc/cni/net.d/10-testbed.conflist").ok());
  wait_for(cp, "node-99 to be Ready", k_kubectl + "wait --for=condition=Ready node/node-99 --timeout=5s", 90s);

  // A worker joins with a real bootstrap token, the CA pinned by its hash: the kubelet's TLS bootstrap
  // (CSR approved and signed by the controller-manager) writes its kubelet.conf.
  const auto token = on_host(cp, "kubeadm token create --ttl 15m");
  REQUIRE(token.ok());
  const auto hash = on_host(cp, "openssl x509 -pubkey -noout -in /etc/kubernetes/pki/ca.crt | openssl pkey -pubin -outform der | sha256sum | cut -d' ' -f1");
  REQUIRE(hash.ok());
  const std::string join = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: JoinConfiguration\ndiscovery:\n  bootstrapToken:\n    apiServerEndpoint: " +
                           testbed::address(cp) + ":6443\n    token: " + std::string(text::trim(token.out)) + "\n    caCertHashes:\n      - sha256:" +
                           std::string(text::trim(hash.out)) + "\nnodeRegistration:\n  name: node-100\n  criSocket: unix:///run/containerd/containerd.sock\n";
  const auto joined = on_host(worker, "mkdir -p /etc/kubernetes && cat > /etc/kubernetes/join.yaml <<'EOF'\n" + join +
                                          "EOF\nkubeadm join --config /etc/kubernetes/join.yaml", 600s);
  INFO(joined.out << joined.err);
  REQUIRE(joined.ok());
  CHECK(on_host(worker, "grep -q 'client-certificate: /var/lib/kubelet/pki/kubelet-client-current.pem' /etc/kubernetes/kubelet.conf").ok());
  const auto csr = on_host(cp, k_kubectl + "get csr -o jsonpath='{range .items[*]}{.spec.username} {.status.conditions[0].type}{\"\\n\"}{end}'");
  CHECK(contains(csr.out, "system:bootstrap:" + std::string(text::trim(token.out)).substr(0, 6) + " Approved"));
  REQUIRE(on_host(worker, "mkdir -p /etc/cni/net.d && echo '{\"cniVersion\":\"1.0.0\",\"name\":\"testbed\",\"plugins\":[{\"type\":\"bridge\"}]}' "
                          "> /etc/cni/net.d/10-testbed.conflist").ok());
  wait_for(cp, "node-100 to be Ready", k_kubectl + "wait --for=condition=Ready node/node-100 --timeout=5s", 90s);

  // The controllers and the scheduler roll out for real and kwok plays the pods: CoreDNS's two
  // replicas Ready, kube-proxy's DaemonSet on both nodes.
  wait_for(cp, "CoreDNS to be available", k_kubectl + "-n kube-system wait --for=condition=Available deployment/coredns --timeout=5s", 180s);
  CHECK(on_host(cp, k_kubectl + "-n kube-system get deployment coredns -o jsonpath='{.status.readyReplicas}'").out == "2");
  wait_for(cp, "kube-proxy on both nodes", "[ \"$(" + k_kubectl + "-n kube-system get ds kube-proxy -o jsonpath='{.status.numberReady}')\" = 2 ]", 120s);

  // Server-side apply against the real API server: an object in a namespace that does not exist, or a
  // custom resource before its CRD, is refused as on a real cluster; once the CRD is established the
  // resource applies, and kubectl diff then finds nothing.
  const std::string cr = "apiVersion: testbed.mlplat.test/v1\nkind: Probe\nmetadata:\n  name: one\n  namespace: default\nspec:\n  size: 1\n";
  const std::string crd = "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: probes.testbed.mlplat.test\nspec:\n"
                          "  group: testbed.mlplat.test\n  scope: Namespaced\n  names: {plural: probes, singular: probe, kind: Probe}\n  versions:\n"
                          "    - name: v1\n      served: true\n      storage: true\n      schema:\n        openAPIV3Schema:\n          type: object\n"
                          "          properties:\n            spec: {type: object, properties: {size: {type: integer}}}\n";
  const auto apply = [&](const std::string& doc) {
    return on_host(cp, "cat <<'EOF' | " + k_kubectl + "apply --server-side --field-manager=testbed -f -\n" + doc + "EOF\n");
  };
  const auto no_ns = apply("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: nowhere\ndata: {a: b}\n");
  CHECK_FALSE(no_ns.ok());
  CHECK(contains(no_ns.err, "namespaces \"nowhere\" not found"));
  const auto early = apply(cr);
  CHECK_FALSE(early.ok());
  CHECK(contains(early.err, "no matches for kind \"Probe\" in version \"testbed.mlplat.test/v1\""));
  REQUIRE(apply(crd).ok());
  REQUIRE(on_host(cp, k_kubectl + "wait --for=condition=Established crd/probes.testbed.mlplat.test --timeout=60s").ok());
  const auto later = apply(cr);
  INFO(later.err);
  CHECK(later.ok());
  const auto diff = on_host(cp, "cat <<'EOF' | " + k_kubectl + "diff --server-side --field-manager=testbed -f -\n" + cr + "EOF\n");
  INFO(diff.out << diff.err);
  CHECK(diff.exit_code == 0);

  // A manifest changed is a restarted static pod (kubeadm upgrade relies on it): a new config.hash.
  const std::string hash_of_scheduler = k_kubectl + "-n kube-system get pod kube-scheduler-node-99 -o jsonpath='{.metadata.annotations.kubernetes\\.io/config\\.hash}'";
  const std::string before = on_host(cp, hash_of_scheduler).out;
  REQUIRE(on_host(cp, "sed -i 's/--leader-elect=true/--leader-elect=true\\n    - --v=1/' /etc/kubernetes/manifests/kube-scheduler.yaml").ok());
  wait_for(cp, "the scheduler's mirror pod to show the new manifest",
           "[ \"$(" + hash_of_scheduler + ")\" != '" + before + "' ] && " + k_kubectl +
             "-n kube-system wait --for=condition=Ready pod/kube-scheduler-node-99 --timeout=5s",
           90s);
  CHECK(on_host(cp, "pgrep -f 'kube-scheduler .*--v=1' >/dev/null").ok());
}
