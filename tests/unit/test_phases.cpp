// Every phase builder of install without hosts: a 1+2 cluster file run through install's phase list
// on a FakeFleet, in dry-run (the plan: which host gets which commands and uploads, in which order)
// and for real where a phase's applies matter (the files prepare uploads); run_if leaving the
// platform out when Pipelines is off, with --only/--skip still taking those paths; batches of
// workers; a multi-host failure's exit code.
#include "support/catch.hpp"
#include <sstream>
#include <iostream>
#include "util/process.hpp"

#include "kube/etcd.hpp"
#include "phases/footprint.hpp"
#include "phases/volumes.hpp"

#include <nlohmann/json.hpp>

#include <regex>
#include <set>
#include "support/fake_fleet.hpp"

#include "commands/commands.hpp"
#include "compat/matrix.hpp"
#include "config/load.hpp"
#include "kube/kubeadm.hpp"
#include "phases/phases.hpp"
#include "tls/tls.hpp"
#include "util/fs.hpp"
#include "util/log.hpp"
#include "util/text.hpp"
#include "workflow/command.hpp"

#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <map>
#include <thread>

using namespace mlplat;
namespace sfs = std::filesystem;

namespace {

std::string cluster_text(bool pipelines)
{
  return std::string(R"(apiVersion: mlplat.dev/v1alpha1
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
    - name: worker-2
      address: 10.0.0.3
      internalAddress: 10.1.0.3
      role: worker
  network:
    podCIDR: 10.244.0.0/16
    serviceCIDR: 10.96.0.0/12
  pipelines:
    enabled: )") + (pipelines ? "true" : "false") + "\n";
}

// What a run needs besides the hosts: the cluster, the row, a bill of materials naming every
// artifact, a state directory; then a Context over `fleet`.
struct Fixture {
  config::Cluster cluster;
  compat::Matrix matrix;
  bundle::Bom bom;
  sfs::path dir;
  std::optional<state::Journal> journal;

  explicit Fixture(bool pipelines)
  {
    const auto key = sfs::temp_directory_path() / "mlplat-unit-test-key";
    REQUIRE(fs::write_file_atomic(key, "not really a key, only needs to exist\n", 0600));
    auto c = config::load_text(text::replace_all(cluster_text(pipelines), "KEY", key.string()), "mlplat.yaml");
    if (!c) {
      FAIL(c.error().render());
    }
    cluster = *c;
    auto m = compat::load_active_matrix();
    REQUIRE(m);
    matrix = *m;
    bom.row = matrix.default_().id;
    for (const char* name : {"containerd", "runc", "cni-plugins", "crictl", "kubeadm", "kubelet", "kubectl", "calico-crds",
                             "calico-operator", "flannel-manifest", "istio", "pipelines-source"}) {
      bom.artifacts.push_back({name, std::string("files/") + name + "/" + name, "", "", std::string(64, 'a'), 1, "pinned", ""});
    }
    dir = sfs::temp_directory_path() / ("mlplat-phases-" + std::to_string(::getpid()) + (pipelines ? "-p" : "-n"));
    sfs::remove_all(dir);
    REQUIRE(state::prepare_dir(dir));
    auto j = state::Journal::open(dir, cluster.name);
    REQUIRE(j);
    journal.emplace(std::move(*j));
  }
  ~Fixture() { sfs::remove_all(dir); }

  std::unique_ptr<workflow::Context> context(transport::Fleet& fleet)
  {
    auto ctx = std::make_unique<workflow::Context>(fleet, cluster, *journal);
    auto profile = config::load_profile(cluster.profile);
    REQUIRE(profile);
    ctx->effective = config::effective(cluster, *profile);
    ctx->matrix = &matrix;
    ctx->row = &matrix.default_();
    ctx->bom = &bom;
    ctx->bundle_dir = dir / "bundle";
    ctx->state_dir = dir;
    ctx->first_control_plane = cluster.first_control_plane();
    ctx->dry_run = fleet.dry_run();
    if (cluster.pipelines.enabled) {
      render::PlatformRender r = render::ingress_endpoint(cluster, ctx->effective, ctx->first_control_plane);
      r.cluster_scoped = "kind: CustomResourceDefinition\n";
      r.pipelines = "kind: Deployment\n";
      r.gateway = "kind: Gateway\n";
      r.istio_config = "kind: IstioOperator\n";
      r.crds = {"workflows.argoproj.io"};
      r.deployments = {"ml-pipeline", "ml-pipeline-ui"};
      ctx->render = r;
      tls::IngressCertificate cert;
      cert.cert_pem = "-----BEGIN CERTIFICATE-----\n";
      cert.key_pem = "-----BEGIN PRIVATE KEY-----\n";
      cert.serial_hex = "0A";
      ctx->cert = cert;
    }
    return ctx;
  }
};

// Builds install's phases with the runner's own builder and runs them on `ctx`.
Result<workflow::Summary> run_install(workflow::Context& ctx, workflow::RunOptions options)
{
  options.progress = Terminal::no;
  options.dry_run = ctx.dry_run;
  TRY_ASSIGN(const auto phases, workflow::build_phases(commands::install_phases(), ctx, options));
  return workflow::run(phases, ctx.journal, ctx.fleet, options);
}

// The planned commands of `host`, as "label: description" lines.
std::vector<std::string> planned(const transport::Fleet& fleet, const std::string& host)
{
  std::vector<std::string> out;
  for (const auto& c : fleet.plan()) {
    if (c.host == host) {
      out.push_back(c.step + ": " + c.description);
    }
  }
  return out;
}

// The script of the first planned command of `host` labelled `label` that has one (not an upload).
std::string script_of(const transport::Fleet& fleet, const std::string& host, const std::string& label)
{
  for (const auto& c : fleet.plan()) {
    if (c.host == host && c.step == label && !c.script.empty()) {
      return c.script;
    }
  }
  return "<no command labelled " + label + " on " + host + ">";
}

bool any_label(const std::vector<std::string>& lines, const std::string& prefix)
{
  return std::any_of(lines.begin(), lines.end(), [&](const std::string& l) { return l.rfind(prefix, 0) == 0; });
}

size_t index_of(const std::vector<std::string>& lines, const std::string& prefix)
{
  for (size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].rfind(prefix, 0) == 0) {
      return i;
    }
  }
  return lines.size();
}

} // namespace

TEST_CASE("install's phases, in order, with their paths, and the help that lists them", "[phases]")
{
  std::vector<std::string> paths;
  for (const auto& p : commands::install_phases()) {
    paths.push_back(p.path);
  }
  CHECK(paths == std::vector<std::string>{"host/prepare", "host/artifacts", "host/containerd", "host/images", "cluster/init",
                                          "cluster/join-control-planes", "cluster/join-workers", "cluster/kubeconfig", "cluster/nodes",
                                          "cluster/cni", "cluster/storage", "cluster/volumes", "cluster/cleanup", "platform/pipelines",
                                          "platform/istio", "platform/tls", "platform/gateway", "platform/smoke"});
  const auto help = workflow::phase_help(commands::install());
  CHECK(help.find("  cluster/join-workers ") != std::string::npos);
  CHECK(help.find("  platform/smoke ") != std::string::npos);
  CHECK(commands::plan().phases.size() == paths.size());
  REQUIRE(commands::certs_rotate(0).phases.size() == 1);
  CHECK(commands::certs_rotate(0).phases[0].path == "platform/tls");
  // certs rotate installs the Secret whatever spec.pipelines says, from no bundle; install's tls
  // installs the certificate settled with the rendered platform, so it needs the bundle.
  CHECK_FALSE(commands::certs_rotate(0).phases[0].skip_if);
  CHECK_FALSE(commands::certs_rotate(0).phases[0].needs_bundle);
  CHECK(commands::install_phases()[15].path == "platform/tls");
  CHECK(commands::install_phases()[15].needs_bundle);
}

TEST_CASE("the plan of a 1+2 cluster: each host gets its commands and uploads, the first control plane the cluster's", "[phases]")
{
  Fixture fx(true);
  transport::FleetOptions options;
  options.dry_run = transport::DryRun::yes;
  testing::FakeFleet fleet({"cp-1", "worker-1", "worker-2"}, options);
  fleet.answer("pki/ca.crt", "");  // a fresh host: no cluster CA yet
  auto ctx = fx.context(fleet);
  auto summary = run_install(*ctx, {});
  if (!summary) {
    FAIL(summary.error().render());
  }
  CHECK(summary->skipped.empty());
  const auto cp = planned(fleet, "cp-1");
  const auto w1 = planned(fleet, "worker-1");
  const auto w2 = planned(fleet, "worker-2");

  // host/: every host, in the phase's step order.
  for (const auto* host : {&cp, &w1, &w2}) {
    INFO(text::join(*host, "\n"));
    CHECK(index_of(*host, "prepare/kernel-modules: upload /etc/modules-load.d/mlplat.conf") <
          index_of(*host, "prepare/sysctl: upload /etc/sysctl.d/90-mlplat.conf"));
    CHECK(index_of(*host, "prepare/sysctl: apply the sysctl drop-in") < index_of(*host, "prepare/swap-off: "));
    CHECK(index_of(*host, "prepare/swap-off: ") < index_of(*host, "artifacts/bundle: "));
    CHECK(index_of(*host, "artifacts/bundle: verify the bundle on the host") < index_of(*host, "containerd/binaries: "));
    CHECK(any_label(*host, "containerd/containerd-config: upload /etc/containerd/config.toml"));
    CHECK(any_label(*host, "containerd/units: upload /usr/local/lib/systemd/system/kubelet.service"));
    CHECK(any_label(*host, "containerd/services: "));
  }
  CHECK(script_of(fleet, "worker-1", "prepare/kernel-modules").find("modprobe -a") != std::string::npos);
  CHECK(script_of(fleet, "worker-2", "prepare/swap-off").find("swapoff -a") != std::string::npos);
  // The first control plane gets every artifact, a worker only what a node needs.
  CHECK(any_label(cp, "artifacts/bundle: upload /var/lib/mlplat/bundle/" + fx.bom.row + "/files/istio/istio"));
  CHECK_FALSE(any_label(w1, "artifacts/bundle: upload /var/lib/mlplat/bundle/" + fx.bom.row + "/files/istio/istio"));
  CHECK(any_label(w1, "artifacts/bundle: upload /var/lib/mlplat/bundle/" + fx.bom.row + "/files/kubelet/kubelet"));

  // cluster/: init on the first control plane only; the workers join; the rest from the first control plane.
  CHECK(any_label(cp, "init/kubeadm-config: upload /etc/kubernetes/mlplat/kubeadm-init.yaml"));
  CHECK(script_of(fleet, "cp-1", "init/kubeadm-init").find("kubeadm init --config /etc/kubernetes/mlplat/kubeadm-init.yaml") !=
        std::string::npos);
  for (const auto* worker : {&w1, &w2}) {
    CHECK_FALSE(any_label(*worker, "init/"));
    // One command: its stdin carries the configuration into a file its traps remove however it ends.
    CHECK_FALSE(any_label(*worker, "join-workers/kubeadm-join: upload"));
    CHECK(any_label(*worker, "join-workers/kubeadm-join: kubeadm join as a worker"));
    const std::string join = script_of(fleet, worker == &w1 ? "worker-1" : "worker-2", "join-workers/kubeadm-join");
    CHECK(join.find("kubeadm join --config \"$f\"") != std::string::npos);
    CHECK(join.find("trap 'rm -f \"$f\"; exit 143' TERM") != std::string::npos);
    CHECK(join.find("trap 'rm -f \"$f\"; exit 129' HUP") != std::string::npos);
    CHECK_FALSE(any_label(*worker, "cni/"));
  }
  // The token is made on the first control plane (withheld from the plan: a secret) for the workers.
  CHECK(any_label(cp, "join/secrets: create a bootstrap token for joining (15 minutes)"));
  CHECK_FALSE(any_label(cp, "join-control-planes/"));
  for (const auto& c : fleet.plan()) {
    if (c.description.find("bootstrap token") != std::string::npos) {
      CHECK(c.sensitive);
      CHECK(c.script.empty());
    }
  }
  CHECK(index_of(cp, "init/kubeadm-init") < index_of(cp, "kubeconfig/admin-conf"));
  CHECK(index_of(cp, "nodes/labels-and-taints") < index_of(cp, "cni/calico-crds"));
  CHECK(script_of(fleet, "cp-1", "nodes/labels-and-taints").find("tier=system") != std::string::npos);
  CHECK(index_of(cp, "cni/calico-installation: upload /etc/kubernetes/mlplat/manifests/calico-installation.yaml") <
        index_of(cp, "cni/calico-installation: apply calico-installation"));
  CHECK(index_of(cp, "cni/nodes-ready") < index_of(cp, "storage/openebs-hostpath"));
  CHECK(script_of(fleet, "cp-1", "cni/nodes-ready").find("-eq 3") != std::string::npos);
  CHECK(index_of(cp, "storage/volume-written") < index_of(cp, "cleanup/join-tokens"));
  // platform/: on the first control plane, after the cluster.
  CHECK(index_of(cp, "cleanup/kubeadm-certs") < index_of(cp, "pipelines/cluster-scoped"));
  CHECK(index_of(cp, "pipelines/deployments-available") < index_of(cp, "istio/install"));
  CHECK(index_of(cp, "istio/install") < index_of(cp, "tls/secret"));
  CHECK(index_of(cp, "tls/secret") < index_of(cp, "gateway/gateway"));
  CHECK(any_label(cp, "pipelines/versions: the matrix gate before pipelines"));
  for (const auto* worker : {&w1, &w2}) {
    CHECK_FALSE(any_label(*worker, "pipelines/"));
    CHECK_FALSE(any_label(*worker, "tls/"));
  }
  // The Secret's key never shows: the command is withheld.
  for (const auto& c : fleet.plan()) {
    CHECK(c.script.find("PRIVATE KEY") == std::string::npos);
  }
  // Nothing mutating reached a host in dry-run: only checks were sent.
  for (const auto& s : fleet.sent()) {
    INFO(s.host << ": " << s.description);
    CHECK(s.effect == transport::Effect::read_only);
    CHECK_FALSE(s.upload);
  }
  CHECK(fx.journal->steps().empty());
}

TEST_CASE("prepare for real on a fake host: the drop-in files it uploads, then the recheck, and converged hosts get nothing", "[phases]")
{
  Fixture fx(false);
  testing::FakeFleet fleet({"cp-1", "worker-1", "worker-2"});
  // A check fails until something changed on that host after its first call, then passes (as the
  // real host would once the step's apply ran).
  std::mutex mutex;
  std::map<std::string, int> mutations;
  std::map<std::string, int> first_seen;  // host + check -> mutations on the host when first asked
  fleet.respond([&](const std::string& host, const transport::Command& c) -> std::optional<transport::ExecResult> {
    std::lock_guard lock(mutex);
    transport::ExecResult r;
    if (c.effect == transport::Effect::mutating) {
      ++mutations[host];
      r.exit_status = 0;
    } else {
      const auto [it, first] = first_seen.emplace(host + "\n" + c.description, mutations[host]);
      r.exit_status = !first && mutations[host] > it->second ? 0 : 1;
    }
    return r;
  });
  auto ctx = fx.context(fleet);
  std::atomic<int> rechecks{0};
  ctx->recheck = [&](size_t) -> Status {
    ++rechecks;
    return {};
  };
  workflow::RunOptions only;
  only.only = {"host/prepare"};
  auto summary = run_install(*ctx, only);
  if (!summary) {
    FAIL(summary.error().render());
  }
  CHECK(rechecks == 3);
  std::map<std::string, std::vector<testing::FakeFleet::Sent>> uploads;
  for (const auto& s : fleet.sent()) {
    if (s.upload) {
      uploads[s.host].push_back(s);
    }
  }
  for (const char* host : {"cp-1", "worker-1", "worker-2"}) {
    REQUIRE(uploads[host].size() == 2);
    CHECK(uploads[host][0].script == "/etc/modules-load.d/mlplat.conf");
    CHECK(uploads[host][0].input.find("br_netfilter") != std::string::npos);
    CHECK(uploads[host][1].script == "/etc/sysctl.d/90-mlplat.conf");
    CHECK(uploads[host][1].input.find("net.ipv4.ip_forward") != std::string::npos);
    CHECK(uploads[host][1].mode == 0644);
  }
  // Every phase but prepare is listed as left out by --only.
  CHECK(summary->skipped.size() == commands::install_phases().size() - 1);
  // A second run: every check passes, nothing is sent but checks.
  const size_t before = fleet.sent().size();
  auto again = run_install(*ctx, only);
  REQUIRE(again);
  CHECK(again->applied() == 0);
  const auto sent = fleet.sent();
  for (size_t i = before; i < sent.size(); ++i) {
    CHECK(sent[i].effect == transport::Effect::read_only);
  }
}

TEST_CASE("with Pipelines off the platform phases are left out with the reason, and --skip smoke still works", "[phases]")
{
  Fixture fx(false);
  transport::FleetOptions options;
  options.dry_run = transport::DryRun::yes;
  testing::FakeFleet fleet({"cp-1", "worker-1", "worker-2"}, options);
  fleet.answer("pki/ca.crt", "");  // a fresh host: no cluster CA yet
  auto ctx = fx.context(fleet);
  workflow::RunOptions skip;
  skip.skip = {"smoke", "platform/istio"};
  auto summary = run_install(*ctx, skip);
  if (!summary) {
    FAIL(summary.error().render());
  }
  std::map<std::string, std::string> skipped;
  for (const auto& s : summary->skipped) {
    skipped[s.path] = s.reason;
  }
  CHECK(skipped == std::map<std::string, std::string>{{"platform/pipelines", "spec.pipelines.enabled is false"},
                                                      {"platform/istio", "--skip"},
                                                      {"platform/tls", "spec.pipelines.enabled is false"},
                                                      {"platform/gateway", "spec.pipelines.enabled is false"},
                                                      {"platform/smoke", "--skip"}});
  CHECK_FALSE(any_label(planned(fleet, "cp-1"), "pipelines/"));
  CHECK(any_label(planned(fleet, "cp-1"), "cleanup/"));
  // A group selects its phases; a name that is none is refused with the paths.
  workflow::RunOptions group;
  group.only = {"cluster"};
  auto cluster_only = run_install(*ctx, group);
  REQUIRE(cluster_only);
  CHECK(std::none_of(cluster_only->steps.begin(), cluster_only->steps.end(), [](const auto& s) { return s.phase == "prepare"; }));
  CHECK(std::any_of(cluster_only->steps.begin(), cluster_only->steps.end(), [](const auto& s) { return s.phase == "storage"; }));
  workflow::RunOptions bad;
  bad.only = {"platform/smok"};
  auto refused = run_install(*ctx, bad);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == ErrorCode::usage);
  CHECK(refused.error().fix.find("did you mean 'platform/smoke'?") == 0);
}

TEST_CASE("workers join in batches when asked: a batch ends before the next starts, a failed one stops the phase", "[phases]")
{
  auto ca = tls::issue_ca("test CA");
  REQUIRE(ca);
  for (const size_t batch : {size_t(0), size_t(1)}) {
    for (const bool first_fails : {false, true}) {
      DYNAMIC_SECTION("batch " << batch << (first_fails ? ", the first join fails" : ""))
      {
        Fixture fx(false);
        testing::FakeFleet fleet({"cp-1", "worker-1", "worker-2"});
        std::mutex mutex;
        std::condition_variable changed;
        std::vector<std::string> order;
        int running = 0, most = 0;
        fleet.respond([&](const std::string& host, const transport::Command& c) -> std::optional<transport::ExecResult> {
          transport::ExecResult r;
          r.exit_status = 0;
          if (c.description == "check whether this node already joined") {
            r.exit_status = 1;
          } else if (c.script.find("pki/ca.crt") != std::string::npos) {
            r.out = ca->cert_pem;
          } else if (c.script.find("kubeadm token create") != std::string::npos) {
            r.out = "abcdef.0123456789abcdef\n";
          } else if (c.description.rfind("check that bootstrap token", 0) == 0) {
            r.out = "900\n";
          } else if (c.description.rfind("wait for this node's kubelet to register", 0) == 0) {
            r.exit_status = 0;
          } else if (c.description == "kubeadm join as a worker") {
            std::unique_lock lock(mutex);
            order.push_back(host);
            most = std::max(most, ++running);
            changed.notify_all();
            // Without batches both joins run at once: wait (bounded) for the other one.
            changed.wait_for(lock, std::chrono::seconds(batch == 0 ? 5 : 0), [&] { return running == 2; });
            --running;
            if (first_fails && host == "worker-1") {
              r.exit_status = 1;
              r.err = "planted";
            }
          } else {
            return std::nullopt;
          }
          return r;
        });
        auto ctx = fx.context(fleet);
        ctx->worker_batch = batch;
        auto phase = phases::join_workers().build(*ctx);
        REQUIRE(phase);
        CHECK(phase->batch == batch);
        CHECK(phase->hosts == std::vector<size_t>{1, 2});
        workflow::RunOptions o;
        o.progress = Terminal::no;
        auto r = workflow::run({*phase}, *fx.journal, fleet, o);
        CHECK(r.has_value() == !first_fails);
        if (batch == 1) {
          CHECK(most == 1);
          CHECK(order == (first_fails ? std::vector<std::string>{"worker-1"} : std::vector<std::string>{"worker-1", "worker-2"}));
        } else {
          CHECK(most == 2);
          CHECK(order.size() == 2);
        }
        // The secrets came from the first control plane, through the channel, never from a worker.
        for (const auto& sent : fleet.sent()) {
          if (sent.script.find("kubeadm token create") != std::string::npos || sent.script.find("pki/ca.crt") != std::string::npos) {
            CHECK(sent.host == "cp-1");
          }
        }
      }
    }
  }
}

TEST_CASE("a phase failing on several hosts exits with their shared code, 5 for any host key, 7 when they differ", "[phases]")
{
  Fixture fx(false);
  testing::FakeFleet fleet({"a", "b", "c"});
  auto phase_failing = [](std::vector<ErrorCode> codes) {
    workflow::Phase p;
    p.name = "boom";
    p.hosts = {0, 1, 2};
    p.steps = [codes](size_t host) {
      workflow::Step s;
      s.name = "fail";
      s.check = [](size_t) -> Result<bool> { return false; };
      s.apply = [codes, host](size_t) -> Status { return fail(codes[host], "planted"); };
      return std::vector<workflow::Step>{s};
    };
    return p;
  };
  workflow::RunOptions o;
  o.progress = Terminal::no;
  auto same = workflow::run({phase_failing({ErrorCode::connect_failed, ErrorCode::connect_failed, ErrorCode::connect_failed})}, *fx.journal, fleet, o);
  REQUIRE_FALSE(same);
  CHECK(exit_code_for(same.error()) == k_exit_connect);
  CHECK(same.error().children.size() == 3);
  auto differ = workflow::run({phase_failing({ErrorCode::connect_failed, ErrorCode::failed, ErrorCode::connect_failed})}, *fx.journal, fleet, o);
  REQUIRE_FALSE(differ);
  CHECK(exit_code_for(differ.error()) == k_exit_partial);
  auto key = workflow::run({phase_failing({ErrorCode::failed, ErrorCode::host_key_changed, ErrorCode::connect_failed})}, *fx.journal, fleet, o);
  REQUIRE_FALSE(key);
  CHECK(exit_code_for(key.error()) == k_exit_host_key);
}

TEST_CASE("own state: a finished step a phase declares makes its doctor findings the cluster's own on that host", "[phases]")
{
  Fixture fx(false);
  REQUIRE(fx.journal->record("containerd", "services", "worker-1", "d"));
  REQUIRE(fx.journal->record("containerd", "binaries", "worker-2", "d"));
  REQUIRE(fx.journal->record("init", "kubeadm-config", "cp-1", "d"));
  const auto own = workflow::own_state(commands::install_phases(), *fx.journal);
  CHECK(own == std::map<std::string, std::set<std::string>>{{"worker-1", {"NET-004", "OS-021"}}, {"cp-1", {"NET-004", "OS-021"}}});
}

TEST_CASE("the join's secrets, once made, are redacted from the log file, whose lines carry ISO 8601 UTC times", "[phases]")
{
  testing::FakeFleet fleet({"cp-1"});
  fleet.answer("kubeadm token create", "q1w2e3.a1s2d3f4g5h6j7k8\n");
  fleet.answer("upload-certs", "[upload-certs] Using certificate key:\n" + std::string(64, 'c') + "\n");
  kube::JoinMaterial material{workflow::ControlPlane(fleet, 0)};
  const auto token = material.token();
  REQUIRE(token);
  CHECK(*token == "q1w2e3.a1s2d3f4g5h6j7k8");
  const auto key = material.certificate_key();
  REQUIRE(key);
  const auto file = sfs::temp_directory_path() / ("mlplat-unit-log-" + std::to_string(::getpid()));
  std::string error;
  REQUIRE(log::open_file(file.string(), error));
  log::write(log::Level::debug, "cp-1", "kubeadm join --token " + *token + " --certificate-key " + *key);
  log::write(log::Level::debug, "cp-1", "the secret half a1s2d3f4g5h6j7k8 alone");
  const auto text = fs::read_file(file);
  REQUIRE(text);
  CHECK(text->find("q1w2e3") == std::string::npos);
  CHECK(text->find("a1s2d3f4g5h6j7k8") == std::string::npos);
  CHECK(text->find(std::string(64, 'c')) == std::string::npos);
  CHECK(text->find("kubeadm join --token [redacted] --certificate-key [redacted]") != std::string::npos);
  // 2026-12-02T02:30:01.123Z debug   cp-1: ...
  const std::string first = text->substr(0, text->find('\n'));
  REQUIRE(first.size() > 24);
  CHECK(first[4] == '-');
  CHECK(first[10] == 'T');
  CHECK(first[23] == 'Z');
  sfs::remove(file);
}

TEST_CASE("reset removes every path install writes: each upload, installed program and extracted archive of a 1+2 plan is in the footprint",
          "[phases][reset]")
{
  Fixture fx(true);
  transport::FleetOptions options;
  options.dry_run = transport::DryRun::yes;
  testing::FakeFleet fleet({"cp-1", "worker-1", "worker-2"}, options);
  fleet.answer("pki/ca.crt", "");
  auto ctx = fx.context(fleet);
  auto summary = run_install(*ctx, {});
  if (!summary) {
    FAIL(summary.error().render());
  }
  const auto& footprint = phases::host_footprint();
  // The places install writes to: uploads by path, `install -m MODE SRC DEST`, `tar -C DIR`, `mkdir -p DIR`.
  static const std::regex install_dest(R"(install -m [0-7]+ \S+ (/\S+))");
  static const std::regex tar_dir(R"(tar -C (/\S+))");
  static const std::regex mkdir_dir(R"(mkdir -p (/[^\s;&|]+))");
  std::set<std::string> written;
  for (const auto& c : fleet.plan()) {
    if (c.description.rfind("upload ", 0) == 0) {
      written.insert(c.description.substr(7, c.description.find(' ', 7) - 7));
    }
    for (const auto* re : {&install_dest, &tar_dir, &mkdir_dir}) {
      for (auto it = std::sregex_iterator(c.script.begin(), c.script.end(), *re); it != std::sregex_iterator(); ++it) {
        std::string path = (*it)[1].str();
        path.erase(std::remove(path.begin(), path.end(), '\''), path.end());
        written.insert(path);
      }
    }
  }
  REQUIRE(written.size() > 15);
  CHECK(written.count("/usr/local/lib/systemd/system/kubelet.service") == 1);
  CHECK(written.count("/usr/local/bin/kubeadm") == 1);
  CHECK(written.count("/opt/cni/bin") == 1);
  // Directories every host has before install (an archive extracted into one: its programs below).
  static const std::set<std::string> system_dirs{"/etc", "/usr/local", "/usr/local/bin", "/usr/local/sbin", "/usr/local/lib/systemd/system"};
  for (const auto& path : written) {
    INFO(path);
    CHECK((system_dirs.count(path) == 1 || phases::covers(footprint, path)));
  }
  // An archive's programs: what tar -C /usr/local extracts from containerd's archive (bin/...).
  for (const char* program : {"/usr/local/bin/containerd", "/usr/local/bin/containerd-shim-runc-v2", "/usr/local/bin/ctr"}) {
    CHECK(phases::covers(footprint, program));
  }
  CHECK_FALSE(phases::covers(footprint, "/usr/local/bin/helm"));
  CHECK_FALSE(phases::covers(footprint, "/var/openebs/local"));  // the data: reset keeps it
}

TEST_CASE("reset's plan on a 1+2 cluster: volumes recorded on the first control plane, kubeadm reset and the footprint on every host, "
          "the data only with --purge-data", "[phases][reset]")
{
  Fixture fx(true);
  transport::FleetOptions options;
  options.dry_run = transport::DryRun::yes;
  testing::FakeFleet fleet({"cp-1", "worker-1", "worker-2"}, options);
  // The API server lists one local volume of a claim on worker-1.
  fleet.answer("get pv -o json", R"({"items": [{"metadata": {"name": "pvc-1"}, "spec": {"claimRef": {"namespace": "kubeflow", "name": "mysql-pv-claim"},
    "local": {"path": "/var/openebs/local/pvc-1"}, "capacity": {"storage": "20Gi"}, "storageClassName": "openebs-hostpath",
    "accessModes": ["ReadWriteOnce"], "volumeMode": "Filesystem", "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions":
    [{"key": "kubernetes.io/hostname", "operator": "In", "values": ["worker-1"]}]}]}}}},
    {"metadata": {"name": "nfs-1"}, "spec": {"claimRef": {"namespace": "a", "name": "b"}, "nfs": {"server": "x", "path": "/"}}}]})");
  auto ctx = fx.context(fleet);
  for (bool purge : {false, true}) {
    ctx->purge_data = purge;
    workflow::RunOptions run_options;
    run_options.progress = Terminal::no;
    run_options.dry_run = true;
    auto phases = workflow::build_phases(commands::reset_phases(), *ctx, run_options);
    REQUIRE(phases);
    auto summary = workflow::run(*phases, ctx->journal, fleet, run_options);
    if (!summary) {
      FAIL(summary.error().render());
    }
    for (const char* host : {"cp-1", "worker-1", "worker-2"}) {
      const auto lines = planned(fleet, host);
      INFO(text::join(lines, "\n"));
      CHECK(any_label(lines, "kubeadm/kubeadm-reset: kubeadm reset"));
      CHECK(index_of(lines, "kubeadm/kubeadm-reset: ") < index_of(lines, "host/footprint: "));
      CHECK(any_label(lines, "data/purge: ") == purge);
    }
    CHECK(script_of(fleet, "worker-1", "kubeadm/kubeadm-reset").find("kubeadm reset --force --skip-phases remove-etcd-member") != std::string::npos);
    const std::string removal = script_of(fleet, "worker-2", "host/footprint");
    CHECK(removal.find("systemctl stop \"$s\"") != std::string::npos);
    CHECK(removal.find(" /usr/local/bin/kubelet ") != std::string::npos);
    CHECK(removal.find("'/var/openebs") == std::string::npos);  // the base path is the data's
    // A plan writes no record of the volumes; what a run would record is the local one only.
    CHECK_FALSE(sfs::exists(fx.dir / "volumes.json"));
  }
  const auto volumes = phases::local_volumes(R"({"items": [{"metadata": {"name": "pvc-1"}, "spec": {"claimRef": {"namespace": "kubeflow",
    "name": "mysql-pv-claim"}, "local": {"path": "/var/openebs/local/pvc-1"}, "nodeAffinity": {"required": {"nodeSelectorTerms":
    [{"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": ["worker-1"]}]}]}}}}]})");
  REQUIRE(volumes);
  REQUIRE(volumes->size() == 1);
  CHECK((*volumes)[0].node == "worker-1");
  // Given back pre-bound to its claim, on its directory and node, never deleted with its claim.
  const auto pv = nlohmann::json::parse(phases::restored_volume_manifest((*volumes)[0]));
  CHECK(pv["spec"]["claimRef"]["name"] == "mysql-pv-claim");
  CHECK(pv["spec"]["claimRef"]["namespace"] == "kubeflow");
  CHECK(pv["spec"]["local"]["path"] == "/var/openebs/local/pvc-1");
  CHECK(pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain");
  CHECK(pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]["values"][0] == "worker-1");
  // A second record keeps what the first had (the cluster is gone by then).
  const auto merged = phases::merge_volume_records(*volumes, {});
  CHECK(merged.size() == 1);
}

TEST_CASE("etcd's quorum: a member is removed only while a quorum stays healthy, and only by one", "[phases][remove-node]")
{
  auto members = [](std::vector<bool> healthy) {
    std::vector<kube::EtcdMember> out;
    for (size_t i = 0; i < healthy.size(); ++i) {
      out.push_back({std::to_string(i + 1), "cp-" + std::to_string(i + 1), {"https://10.0.0." + std::to_string(i + 1) + ":2379"}, healthy[i]});
    }
    return out;
  };
  CHECK(kube::quorum_refusal(members({true, true}), {"cp-2"}).empty());
  CHECK(kube::quorum_refusal(members({true, true, true}), {"cp-3"}).empty());
  // Three members, one down: the healthy ones may not go (1 healthy of the 2 that stay), the sick one may.
  CHECK(kube::quorum_refusal(members({true, true, false}), {"cp-2"}) ==
        "etcd would lose its quorum: 2 members would stay, of which 1 healthy, and 2 must be");
  CHECK(kube::quorum_refusal(members({true, true, false}), {"cp-3"}).empty());
  // Two members, one down: no quorum now, nothing can be removed.
  CHECK(kube::quorum_refusal(members({true, false}), {"cp-2"}) ==
        "etcd has no quorum now: 1 of its 2 members are healthy, and a member is removed only by a quorum");
  CHECK(kube::quorum_refusal(members({true}), {"cp-1"}) == "no etcd member would be left");

  // The gateway's member list (ids as strings, uint64) and the health lines the script prints.
  const auto parsed = kube::parse_etcd_members(
    R"({"header":{"cluster_id":"1"},"members":[{"ID":"10276657743932975437","name":"cp-1","peerURLs":["https://10.0.0.1:2380"],)"
    R"("clientURLs":["https://10.0.0.1:2379"]},{"ID":"2","name":"cp-2","clientURLs":["https://10.0.0.2:2379"]}]})"
    "\nhealth https://10.0.0.1:2379 true\nhealth https://10.0.0.2:2379 false\n");
  REQUIRE(parsed);
  REQUIRE(parsed->size() == 2);
  CHECK((*parsed)[0].id == "10276657743932975437");
  CHECK((*parsed)[0].healthy);
  CHECK_FALSE((*parsed)[1].healthy);
  CHECK_FALSE(kube::parse_etcd_members("not json\n"));
  CHECK(kube::etcd_remove_member_script("2").find("-d '{\"ID\":\"2\"}' https://127.0.0.1:2379/v3/cluster/member/remove") != std::string::npos);
}

TEST_CASE("remove-node's phases: volumes recorded, quorum checked, drained, etcd member, the host reset, then the Node deleted",
          "[phases][remove-node]")
{
  std::vector<std::string> paths;
  for (const auto& p : commands::remove_node_phases()) {
    paths.push_back(p.path);
  }
  CHECK(paths == std::vector<std::string>{"reset/volumes", "node/check", "node/drain", "node/etcd-member", "reset/kubeadm", "reset/host",
                                          "reset/data", "node/delete"});
  std::vector<std::string> reset_paths;
  for (const auto& p : commands::reset_phases()) {
    reset_paths.push_back(p.path);
  }
  CHECK(reset_paths == std::vector<std::string>{"reset/volumes", "reset/kubeadm", "reset/host", "reset/data"});
}

TEST_CASE("install gives the volumes a reset recorded back, pre-bound, once, and leaves alone a volume of a node not in the file",
          "[phases][reset]")
{
  Fixture fx(true);
  phases::VolumeRecord kept{"pvc-1", "kubeflow", "mysql-pv-claim", "worker-1", "/var/openebs/local/pvc-1", "20Gi", "openebs-hostpath",
                            {"ReadWriteOnce"}, "Filesystem"};
  phases::VolumeRecord elsewhere = kept;
  elsewhere.name = "pvc-2";
  elsewhere.node = "gone-host";
  REQUIRE(phases::write_volume_records(fx.dir, {kept, elsewhere}));
  transport::FleetOptions options;
  options.dry_run = transport::DryRun::yes;
  testing::FakeFleet fleet({"cp-1", "worker-1", "worker-2"}, options);
  fleet.answer("pki/ca.crt", "");
  auto ctx = fx.context(fleet);
  auto summary = run_install(*ctx, {});
  if (!summary) {
    FAIL(summary.error().render());
  }
  const auto cp = planned(fleet, "cp-1");
  INFO(text::join(cp, "\n"));
  CHECK(any_label(cp, "volumes/restore-pvc-1: give volume pvc-1 on worker-1:/var/openebs/local/pvc-1 back to claim kubeflow/mysql-pv-claim"));
  CHECK_FALSE(any_label(cp, "volumes/restore-pvc-2"));
  CHECK(index_of(cp, "volumes/restore-pvc-1") < index_of(cp, "pipelines/"));
  CHECK(script_of(fleet, "cp-1", "volumes/restore-pvc-1").find("\"persistentVolumeReclaimPolicy\":\"Retain\"") != std::string::npos);
}

namespace {

// `f`'s output on stdout.
std::string stdout_of(const std::function<void()>& f)
{
  std::ostringstream captured;
  auto* old = std::cout.rdbuf(captured.rdbuf());
  f();
  std::cout.rdbuf(old);
  return captured.str();
}

// Validates `json` against docs/schemas/<schema> with Debian's python3-jsonschema; "valid" or why not.
std::string validate(const std::string& json, const std::string& schema)
{
  const auto file = sfs::temp_directory_path() / ("mlplat-unit-" + std::to_string(::getpid()) + "-" + schema);
  REQUIRE(fs::write_file_atomic(file, json, 0600));
  const auto r = run_process({"/usr/bin/python3", "-c",
                              "import json, sys, jsonschema\n"
                              "jsonschema.validate(json.load(open(sys.argv[1])), json.load(open(sys.argv[2])))\n"
                              "print('valid')",
                              file.string(), std::string(MLPLAT_SOURCE_DIR) + "/docs/schemas/" + schema},
                             std::chrono::seconds(60));
  sfs::remove(file);
  REQUIRE(r);
  return r->exit_code == 0 ? std::string(text::trim(r->out)) : r->err;
}

} // namespace

TEST_CASE("plan's report says per host how many steps would change (never done), lists what --ignore let pass, and its JSON matches "
          "docs/schemas/plan.schema.json", "[phases][plan]")
{
  Fixture fx(false);
  transport::FleetOptions options;
  options.dry_run = transport::DryRun::yes;
  testing::FakeFleet fleet({"cp-1", "worker-1", "worker-2"}, options);
  fleet.answer("pki/ca.crt", "");
  auto ctx = fx.context(fleet);
  auto summary = run_install(*ctx, {});
  if (!summary) {
    FAIL(summary.error().render());
  }
  doctor::Finding ignored;
  ignored.id = "NET-003";
  ignored.title = "ports free";
  ignored.host = "worker-2";
  ignored.status = "warning";
  ignored.observed = "port 10250 in use";
  ignored.ignored = true;
  ctx->ignored = {ignored};
  size_t cp_steps = 0;
  for (const auto& s : summary->steps) {
    cp_steps += s.host == "cp-1" && s.what == workflow::StepOutcome::What::planned ? 1 : 0;
  }
  REQUIRE(cp_steps > 0);
  workflow::Ui ui;
  const auto spec = commands::plan();
  const auto out = stdout_of([&] { CHECK(spec.after(*ctx, *summary, 0.0, ui) == k_exit_ok); });
  INFO(out);
  CHECK(out.find("plan for cluster demo (3 hosts): " + std::to_string(summary->applied()) + " steps would change something\n") == 0);
  CHECK(out.find("\ncp-1 (" + fleet.endpoint(0).address + "): " + std::to_string(cp_steps) + " steps would change\n") != std::string::npos);
  for (const auto& line : text::split(out, '\n')) {
    if (line.rfind("      ", 0) != 0) { // the plan's own lines, not the scripts it shows
      CHECK(line.find("done") == std::string::npos);
    }
  }
  CHECK(out.find("\nleft out:\n  platform/pipelines: ") != std::string::npos); // Pipelines off
  CHECK(out.find("\nignored with --ignore (preflight errors install would not stop at):\n  worker-2: NET-003 ports free: port 10250 in use\n") !=
        std::string::npos);

  ui.json = true;
  const auto json = stdout_of([&] { CHECK(spec.after(*ctx, *summary, 0.0, ui) == k_exit_ok); });
  CHECK(validate(json, "plan.schema.json") == "valid");
  const auto doc = nlohmann::json::parse(json);
  CHECK(doc["wouldChange"] == summary->applied());
  CHECK(doc["hosts"][0]["name"] == "cp-1");
  CHECK(doc["hosts"][0]["wouldChange"] == cp_steps);
  CHECK(doc["ignored"][0]["id"] == "NET-003");
  CHECK(doc["leftOut"][0]["path"] == "platform/pipelines");
  // The schema is strict enough to catch a wrong document.
  auto broken = doc;
  broken["hosts"][0]["commands"][0]["step"] = "no slash";
  CHECK(validate(broken.dump(), "plan.schema.json") != "valid");
}

TEST_CASE("install's summary as JSON matches docs/schemas/install.schema.json, nodes keyed by kubectl's columns", "[phases]")
{
  Fixture fx(false);
  testing::FakeFleet fleet({"cp-1", "worker-1", "worker-2"});
  fleet.answer("get nodes", "NAME       STATUS   ROLES           AGE   VERSION\ncp-1       Ready    control-plane   5m    v1.36.4\n"
                            "worker-1   Ready    <none>          4m    v1.36.4\n");
  auto ctx = fx.context(fleet);
  workflow::Summary summary;
  summary.steps.push_back({"prepare", "sysctl", "cp-1", workflow::StepOutcome::What::applied});
  summary.steps.push_back({"prepare", "swap-off", "cp-1", workflow::StepOutcome::What::already});
  workflow::Ui ui;
  ui.json = true;
  const auto json = stdout_of([&] { CHECK(commands::install().after(*ctx, summary, 12.5, ui) == k_exit_ok); });
  INFO(json);
  CHECK(validate(json, "install.schema.json") == "valid");
  const auto doc = nlohmann::json::parse(json);
  CHECK(doc["applied"] == 1);
  CHECK(doc["alreadyInPlace"] == 1);
  CHECK(doc["nodes"].size() == 2);
  CHECK(doc["nodes"][1]["name"] == "worker-1");
  CHECK(doc["nodes"][1]["roles"] == "<none>");
  CHECK(doc["kubeconfig"].is_null());
  auto broken = doc;
  broken["applied"] = -1;
  CHECK(validate(broken.dump(), "install.schema.json") != "valid");
}

TEST_CASE("reset's and remove-node's JSON results match docs/schemas/reset.schema.json and remove-node.schema.json", "[phases][reset]")
{
  Fixture fx(true);
  phases::VolumeRecord kept{"pvc-1", "kubeflow", "mysql-pv-claim", "worker-1", "/var/openebs/local/pvc-1", "20Gi", "openebs-hostpath",
                            {"ReadWriteOnce"}, "Filesystem"};
  REQUIRE(phases::write_volume_records(fx.dir, {kept}));
  transport::FleetOptions options;
  options.dry_run = transport::DryRun::yes;
  testing::FakeFleet fleet({"cp-1", "worker-1", "worker-2"}, options);
  fleet.answer("get pv -o json", R"({"items": []})");
  auto ctx = fx.context(fleet);
  ctx->targets = {1};
  workflow::RunOptions run_options;
  run_options.progress = Terminal::no;
  run_options.dry_run = true;
  workflow::Ui ui;
  ui.json = true;
  ui.error = [](const Error& e) -> int { FAIL(e.render()); return 1; };
  for (const auto& spec : {commands::reset(true), commands::remove_node(true)}) {
    auto phases = workflow::build_phases(spec.phases, *ctx, run_options);
    REQUIRE(phases);
    auto summary = workflow::run(*phases, ctx->journal, fleet, run_options);
    if (!summary) {
      FAIL(spec.name << ": " << summary.error().render());
    }
    const std::string out = stdout_of([&] { CHECK(spec.after(*ctx, *summary, 1.5, ui) == 0); });
    INFO(out);
    CHECK(validate(out, spec.name + ".schema.json") == "valid");
    const auto doc = nlohmann::json::parse(out);
    CHECK(doc["dryRun"] == true);
    if (spec.name == "reset") {
      CHECK(doc["hosts"] == nlohmann::json::array({"worker-1"}));
      REQUIRE(doc["keptVolumes"].size() == 1);
      CHECK(doc["keptVolumes"][0]["claim"] == "kubeflow/mysql-pv-claim");
    } else {
      CHECK(doc["removed"] == nlohmann::json::array({"worker-1"}));
    }
  }
  // A broken document is refused by the schema (the check can fail).
  CHECK(validate("{\"cluster\": 1}", "reset.schema.json") != "valid");
}

TEST_CASE("reset of some control planes of a running cluster is refused, naming remove-node, and of all hosts or workers goes ahead",
          "[phases][reset]")
{
  Fixture fx(false);
  testing::FakeFleet fleet({"cp-1", "worker-1", "worker-2"});
  auto ctx = fx.context(fleet);
  // A second control plane for this case: cp-1 and worker-1 run the cluster's control plane.
  config::Cluster two = fx.cluster;
  two.hosts[1].role = config::Role::control_plane;
  workflow::Context c2(fleet, two, *fx.journal);
  c2.running_control_planes = {0, 1};
  c2.targets = {1};
  const auto refused = commands::reset(false).before_hosts(c2);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == ErrorCode::usage);
  CHECK(refused.error().message == "worker-1 is a control plane of the running cluster: reset would leave its etcd member behind");
  CHECK(refused.error().fix.find("mlplat remove-node worker-1") != std::string::npos);
  c2.targets = {0, 1, 2};
  CHECK(commands::reset(false).before_hosts(c2));
  c2.targets = {2};
  CHECK(commands::reset(false).before_hosts(c2));
  c2.targets = {};
  CHECK(commands::reset(false).before_hosts(c2));
}
