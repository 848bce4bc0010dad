// mlplat install and plan on testbed hosts: the matrix gate, doctor, the local lock and journal, the
// prepare phase (sysctls, kernel modules, swap off) applied for real, a rerun that changes nothing
// (proved by the audit stand-in), plan showing the commands and changing nothing.
#include "support/catch.hpp"

#include "support/http_server.hpp"

#include "integration/audit.hpp"
#include "integration/testbed.hpp"
#include "util/fs.hpp"

#include <nlohmann/json.hpp>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

using namespace mlplat;
using namespace std::chrono_literals;

namespace {

ProcessResult mlplat_run(std::vector<std::string> args)
{
  args.insert(args.begin(), MLPLAT_BINARY);
  auto r = run_process(args, 180s);
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

std::string cluster_file(const std::string& dir, const std::vector<int>& nodes, const std::string& extra_host = "")
{
  std::string text = "apiVersion: mlplat.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: install-test\nspec:\n  ssh:\n    keyPath: " +
                     testbed::key() + "\n    knownHosts: " + testbed::known_hosts() + "\n    connectTimeoutSeconds: 3\n  hosts:\n";
  for (size_t i = 0; i < nodes.size(); ++i) {
    text += "    - {name: node-" + std::to_string(nodes[i]) + ", address: " + testbed::address(nodes[i]) +
            ", role: " + (i == 0 ? "control-plane" : "worker") + "}\n";
  }
  text += extra_host;
  REQUIRE(fs::write_file_atomic(dir + "/mlplat.yaml", text, 0644));
  return dir + "/mlplat.yaml";
}

void reset_host(int n)
{
  // The API server stand-in the kubelet stand-in started (by its pid file: hosts share the pid space).
  on_host(n, "f=/var/lib/mlplat-standin/apiserver/pid; [ ! -f $f ] || kill $(cat $f) 2>/dev/null; true");
  on_host(n, "rm -rf /etc/kubernetes /var/lib/kubelet /var/lib/mlplat-standin /etc/sysctl.d/90-mlplat.conf /etc/modules-load.d/mlplat.conf /var/log/mlplat-standins /run/mlplat-standins "
             "/var/lib/mlplat /usr/local/bin/containerd /usr/local/bin/kube* /usr/local/bin/crictl /usr/local/sbin/runc /opt/cni "
             "/etc/containerd /etc/crictl.yaml /usr/local/lib/systemd");
}

// A bundle of the shipped matrix's default row made of testbed stand-ins: a local mirror at the
// upstream paths (tests/testbed/standin-mirror.py), served over HTTP, downloaded and verified by
// `mlplat bundle create` for real.
std::string standin_bundle(const std::string& dir)
{
  auto row = mlplat_run({"matrix", "--row", "k8s-1.36", "--output", "json"});
  REQUIRE(row.exit_code == 0);
  REQUIRE(fs::write_file_atomic(dir + "/row.json", row.out, 0644));
  auto mirror = run_process({"python3", MLPLAT_SOURCE_DIR "/tests/testbed/standin-mirror.py", "--matrix-json", dir + "/row.json",
                             "--out", dir + "/www"}, 60s);
  REQUIRE(mirror);
  REQUIRE(mirror->ok());
  mlplat::testing::HttpServer server(dir + "/www");
  const std::string out = dir + "/bundle.tar.gz";
  auto created = mlplat_run({"bundle", "create", "--base-url", server.url(), "--accept-unpinned", "all", "-o", out});
  INFO(created.err);
  REQUIRE(created.exit_code == 0);
  return out;
}

} // namespace

TEST_CASE("install prepares the hosts and installs containerd and the Kubernetes binaries from a bundle, a rerun changes nothing (audited)", "[install]")
{
  const std::string dir = testbed::temp_dir("install-runtime");
  const std::string state = dir + "/state";
  const auto file = cluster_file(dir, {81, 82});
  reset_host(81);
  reset_host(82);
  const auto bundle = standin_bundle(dir);

  const auto first = mlplat_run({"install", "-c", file, "--state-dir", state, "--bundle", bundle});
  INFO(first.out << first.err);
  // The built phases ran; the command says which ones are not built yet (exit 1).
  CHECK(first.exit_code == 1);
  // prepare: 2 of 3 steps per host (swap is off already); artifacts: 1; containerd: 4; init on the
  // control plane: config and init applied, the API server already answering when its step is checked;
  // join: the worker
  CHECK(contains(first.out, "cluster install-test: 17 steps applied, 3 already in place"));
  CHECK(contains(first.err, "not built yet"));
  // The worker got only what a node needs; the control plane the whole bundle, both verified there.
  CHECK(on_host(81, "test -f /var/lib/mlplat/bundle/k8s-1.36/files/pipelines-source/2.17.0.tar.gz").ok());
  CHECK_FALSE(on_host(82, "test -e /var/lib/mlplat/bundle/k8s-1.36/files/pipelines-source").ok());
  for (int n : {81, 82}) {
    const auto v = on_host(n, "containerd --version; runc --version | head -1; kubeadm version -o short; kubelet --version; "
                              "systemctl is-active containerd; systemctl is-enabled kubelet; cat /etc/containerd/config.toml");
    INFO(v.out << v.err);
    CHECK(v.ok());
    CHECK(contains(v.out, "containerd github.com/containerd/containerd/v2 v2.3.4"));
    CHECK(contains(v.out, "runc version 1.4.3"));
    CHECK(contains(v.out, "v1.36.4\nKubernetes v1.36.4\nactive\nenabled"));
    CHECK(contains(v.out, "version = 3"));
    CHECK(contains(v.out, "SystemdCgroup = true"));
    CHECK(contains(v.out, "sandbox = 'registry.k8s.io/pause:3.10.2'"));
  }
  for (int n : {81, 82}) {
    const auto files = on_host(n, "cat /etc/sysctl.d/90-mlplat.conf /etc/modules-load.d/mlplat.conf && sysctl -n net.ipv4.ip_forward");
    REQUIRE(files.ok());
    CHECK(contains(files.out, "net.bridge.bridge-nf-call-iptables = 1"));
    CHECK(contains(files.out, "br_netfilter"));
    CHECK(on_host(n, "cat /var/log/mlplat-standins/modprobe.log").out.find("modprobe -a overlay br_netfilter") != std::string::npos);
  }
  // Local state: 0700 directory, 0600 journal naming the steps, no secret in it (there is none yet).
  struct stat st{};
  REQUIRE(::stat(state.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0700);
  REQUIRE(::stat((state + "/journal.json").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  const auto journal = nlohmann::json::parse(*fs::read_file(state + "/journal.json"));
  CHECK(journal["steps"].size() == 20);

  // kubeadm init ran once on the control plane, from the v1beta4 config mlplat wrote (0600), with
  // token and certificate-key printing off; the API server answers with the row's version.
  const auto init = on_host(81, "cat /var/log/mlplat-standins/kubeadm.log; stat -c '%a' /etc/kubernetes/mlplat/kubeadm-init.yaml; "
                                "cat /etc/kubernetes/mlplat/kubeadm-init.yaml; kubectl --kubeconfig /etc/kubernetes/admin.conf version");
  INFO(init.out << init.err);
  REQUIRE(init.ok());
  CHECK(contains(init.out, "kubeadm init --config /etc/kubernetes/mlplat/kubeadm-init.yaml --skip-token-print --skip-certificate-key-print\n"));
  CHECK(contains(init.out, "\n600\n"));
  CHECK(contains(init.out, "apiVersion: kubeadm.k8s.io/v1beta4"));
  CHECK(contains(init.out, "advertiseAddress: " + testbed::address(81) + "\n"));
  CHECK(contains(init.out, "podSubnet: 10.244.0.0/16"));
  CHECK(contains(init.out, "cgroupDriver: systemd"));
  CHECK(contains(init.out, "Server Version: v1.36.4"));
  CHECK_FALSE(on_host(82, "test -e /etc/kubernetes/admin.conf").ok());

  // The rerun, audited on both hosts: 0 steps applied, 0 mutating commands or system calls.
  for (const char* host : {"node-81", "node-82"}) {
    audit::clear_audit(host);
    testbed::script({"audit", host, "on"});
  }
  const auto second = mlplat_run({"install", "-c", file, "--state-dir", state, "--bundle", bundle});
  std::vector<audit::Audit> records{audit::read_audit("node-81"), audit::read_audit("node-82")};
  for (const char* host : {"node-81", "node-82"}) {
    testbed::script({"audit", host, "off"});
  }
  INFO(second.out << second.err);
  CHECK(contains(second.out, "0 steps applied, 20 already in place"));
  // Still exactly one kubeadm init on the control plane.
  const auto log = on_host(81, "grep -c '^[0-9]* kubeadm init' /var/log/mlplat-standins/kubeadm.log");
  CHECK(log.out == "1\n");
  for (const auto& r : records) {
    CHECK(r.sessions >= 1);
    INFO("mutations:\n" << text::join(r.mutations, "\n"));
    CHECK(r.mutations.empty());
  }
}

TEST_CASE("plan shows per host the commands install would run, and changes nothing (audited)", "[install]")
{
  const std::string dir = testbed::temp_dir("install-plan");
  const auto file = cluster_file(dir, {83});
  reset_host(83);
  audit::clear_audit("node-83");
  testbed::script({"audit", "node-83", "on"});
  const auto bundle = standin_bundle(dir);
  const auto plan = mlplat_run({"plan", "-c", file, "--state-dir", dir + "/state", "--bundle", bundle});
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
  CHECK(contains(plan.out, "not built yet, so not planned"));
  INFO("mutations:\n" << text::join(record.mutations, "\n"));
  CHECK(record.sessions >= 1);
  CHECK(record.mutations.empty());
  CHECK_FALSE(on_host(83, "test -e /etc/sysctl.d/90-mlplat.conf").ok());
  CHECK_FALSE(std::filesystem::exists(dir + "/state/journal.json"));
}

TEST_CASE("swap in /etc/fstab is turned off for good, bad phase names and a wrong --profile are refused", "[install]")
{
  const std::string dir = testbed::temp_dir("install-swap");
  const auto file = cluster_file(dir, {84});
  reset_host(84);
  REQUIRE(on_host(84, "cp /etc/fstab /etc/fstab.orig 2>/dev/null; printf '/dev/vdb1 none swap sw 0 0\\n' >> /etc/fstab").ok());
  const auto r = mlplat_run({"install", "-c", file, "--state-dir", dir + "/state", "--only", "prepare"});
  INFO(r.out << r.err);
  const auto fstab = on_host(84, "cat /etc/fstab");
  CHECK(contains(fstab.out, "# swap off for the kubelet (mlplat): /dev/vdb1 none swap sw 0 0"));
  CHECK(on_host(84, "test -f /etc/fstab.mlplat-backup").ok());
  on_host(84, "mv /etc/fstab.orig /etc/fstab 2>/dev/null; rm -f /etc/fstab.mlplat-backup");

  const auto bad = mlplat_run({"install", "-c", file, "--state-dir", dir + "/state", "--only", "prepare", "--skip", "prepair"});
  CHECK(bad.exit_code == 2);
  CHECK(contains(bad.err, "did you mean 'prepare'?"));
  const auto profile = mlplat_run({"install", "-c", file, "--profile", "gcp"});
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
  ::kill(first, SIGTERM);
  int status = 0;
  ::waitpid(first, &status, 0);
  INFO(second.err);
  CHECK(second.exit_code == 6);
  CHECK(took < 5s);
  CHECK(contains(second.err, "the cluster is locked by another run: pid " + std::to_string(first)));
  CHECK(contains(second.err, "'install'"));
}

TEST_CASE("the phases after prepare need a bundle of the selected row, checked before any connection", "[install]")
{
  const std::string dir = testbed::temp_dir("install-nobundle");
  // The host does not exist: the refusal must come before any connection (which would take 3 s and exit 4).
  const auto file = cluster_file(dir, {}, "    - {name: nowhere, address: " + testbed::net() + ".254, role: control-plane}\n");
  const auto none = mlplat_run({"install", "-c", file, "--state-dir", dir + "/state"});
  CHECK(none.exit_code == 2);
  CHECK(contains(none.err, "install from a bundle of row k8s-1.36, and none was given"));
  CHECK(contains(none.err, "mlplat bundle create --row k8s-1.36"));
  // A bundle whose file was changed is refused.
  const auto bundle = standin_bundle(dir);
  const std::string unpacked = dir + "/unpacked";
  std::filesystem::create_directories(unpacked);
  REQUIRE(run_process({"tar", "-C", unpacked, "-xzf", bundle}, 30s)->ok());
  REQUIRE(run_process({"sh", "-c", "echo x >> " + unpacked + "/files/kubelet/kubelet"}, 10s)->ok());
  const auto tampered = mlplat_run({"install", "-c", file, "--state-dir", dir + "/state", "--bundle", unpacked});
  CHECK(tampered.exit_code == 1);
  CHECK(contains(tampered.err, "kubelet: files/kubelet/kubelet has sha256"));
}
