// doctor without hosts: the catalogue's own validation (with positions), and the probes judged on
// synthetic facts, including the profile checks the testbed cannot reach (cloud metadata, MTU).
#include "support/catch.hpp"

#include "doctor/engine.hpp"
#include "doctor/report.hpp"
#include "util/fs.hpp"

#include <nlohmann/json.hpp>

using namespace mlplat;
using namespace mlplat::doctor;

namespace {

bool contains(const std::string& haystack, const std::string& needle)
{
  return haystack.find(needle) != std::string::npos;
}

Error catalogue_error(const std::string& checks)
{
  const auto c = load_catalogue("apiVersion: mlplat.dev/v1alpha1\nkind: CheckCatalogue\n# unit test\nchecks:\n" + checks,
                                "catalogue.yaml");
  REQUIRE_FALSE(c.has_value());
  REQUIRE(c.error().children.size() == 1);
  return c.error().children[0];
}

// A cluster of hosts named h0.. with the given roles, and facts for each (healthy unless changed).
struct Fixture {
  config::Cluster cluster;
  Context ctx;
  Catalogue catalogue = *load_default_catalogue();
  compat::Matrix matrix = *compat::load_active_matrix();

  explicit Fixture(size_t hosts, const std::string& profile = "onprem")
  {
    cluster.name = "unit";
    cluster.profile = profile;
    for (size_t i = 0; i < hosts; ++i) {
      config::Host h;
      h.name = "h" + std::to_string(i);
      h.address = h.internal_address = "10.1.0." + std::to_string(10 + i);
      h.role = i == 0 ? config::Role::control_plane : config::Role::worker;
      cluster.hosts.push_back(h);
    }
    ctx.cluster = &cluster;
    ctx.matrix = &matrix;
    ctx.row = &matrix.default_();
    ctx.kubernetes = "1.36";
    for (size_t i = 0; i < hosts; ++i) {
      HostState st;
      st.host = &cluster.hosts[i];
      st.local_mid_epoch = 1000.0;
      facts::HostFacts f;
      f.host = st.host->name;
      f.values = {{"hostname", {st.host->name}},
                  {"os.id", {"debian"}},
                  {"os.version", {"12"}},
                  {"os.pretty", {"Debian GNU/Linux 12 (bookworm)"}},
                  {"kernel", {"6.1.0-18-amd64"}},
                  {"arch", {"x86_64"}},
                  {"machine_id", {"machine" + std::to_string(i)}},
                  {"product_uuid", {"uuid-" + std::to_string(i)}},
                  {"systemd", {"yes"}},
                  {"time.epoch", {"1000.0"}},
                  {"cpus", {"8"}},
                  {"memory.kib", {"16777216"}},
                  {"swap.kib", {"0"}},
                  {"cgroup.fs", {"cgroup2fs"}},
                  {"cgroup.controllers", {"cpuset cpu io memory pids"}},
                  {"sysctl.net.ipv4.ip_forward", {"1"}},
                  {"sysctl.net.bridge.bridge-nf-call-iptables", {"1"}},
                  {"sysctl.fs.inotify.max_user_instances", {"2280"}},
                  {"sysctl.fs.inotify.max_user_watches", {"1255360"}},
                  {"addr", {"lo 127.0.0.1/8", "eth0 " + st.host->address + "/24"}},
                  {"route", {"default", "10.1.0.0/24"}},
                  {"link", {"eth0 1500 02:00:00:00:00:0" + std::to_string(i)}},
                  {"dns.nameservers", {"1"}},
                  {"dns.self", {"yes"}},
                  {"leftover.manifests", {"0"}},
                  {"leftover.etcd", {"0"}},
                  {"leftover.kubelet_conf", {"no"}},
                  {"disk", {"/var/lib/containerd 209715200 /var", "/var/lib/kubelet 209715200 /var",
                            "/var/openebs/local 209715200 /var"}},
                  {"metadata", {"yes"}}};
      for (const char* b : {"ip", "iptables", "mount", "nsenter", "socat", "ebtables", "ethtool", "tc"}) {
        f.values[std::string("binary.") + b] = {std::string("/usr/sbin/") + b};
      }
      for (const auto& m : catalogue.param_values("modules_available", "modules")) {
        f.values["module." + m] = {"builtin"};
      }
      st.facts = f;
      ctx.hosts.push_back(st);
    }
  }

  facts::HostFacts& facts(size_t i) { return *ctx.hosts[i].facts; }

  Report report(const Options& options = {}) { return evaluate(ctx, catalogue, options); }

  std::set<std::string> errors(const Report& r, const std::string& status = "error")
  {
    std::set<std::string> out;
    for (const auto& f : r.findings) {
      if (f.status == status) {
        out.insert(f.id + "@" + (f.host.empty() ? "cluster" : f.host));
      }
    }
    return out;
  }

  const Finding& finding(const Report& r, const std::string& id, const std::string& host)
  {
    for (const auto& f : r.findings) {
      if (f.id == id && f.host == host) {
        return f;
      }
    }
    FAIL("no finding " << id << " on " << host);
    throw std::logic_error("unreachable");
  }
};

} // namespace

TEST_CASE("the shipped catalogue loads and every check has a probe, a fix and a stable id", "[doctor]")
{
  const auto c = load_default_catalogue();
  INFO((c ? std::string() : c.error().render()));
  REQUIRE(c);
  CHECK(c->checks.size() >= 40);
  for (const auto& check : c->checks) {
    CHECK(find_probe(check.probe) != nullptr);
    CHECK_FALSE(check.fix.empty());
  }
  for (const char* id : {"SSH-001", "SSH-002", "SSH-004", "OS-001", "OS-005", "OS-007", "OS-009", "OS-011", "OS-012", "NET-003",
                         "NET-004", "NET-006", "NET-010", "DSK-001", "GCP-001", "IBM-002"}) {
    CHECK(c->find(id) != nullptr);
  }
}

TEST_CASE("catalogue errors point at the file position", "[doctor]")
{
  auto e = catalogue_error("  - {id: OS-900, title: t, probe: swap_of, severity: error, fix: f}\n");
  CHECK(e.where->line == 5);
  CHECK(contains(e.message, "no probe named 'swap_of'"));
  CHECK(contains(e.fix, "did you mean 'swap_off'?"));

  e = catalogue_error("  - {id: OS-900, title: t, probe: swap_off, severity: error, fix: f}\n"
                      "  - {id: OS-900, title: t, probe: swap_off, severity: error, fix: f}\n");
  CHECK(e.where->line == 6);
  CHECK(contains(e.message, "'OS-900' is used twice"));

  e = catalogue_error("  - {id: OS-900, title: t, probe: kernel_version, severity: error, fix: f, params: {}}\n");
  CHECK(e.where->line == 5);
  CHECK(contains(e.message, "missing required key 'recommended'"));

  e = catalogue_error("  - {id: OS-900, title: t, probe: swap_off, severity: fatal, fix: f}\n");
  CHECK(contains(e.message, "'fatal' is not one of error, warning, info"));

  e = catalogue_error("  - {id: os-7, title: t, probe: swap_off, severity: error, fix: f}\n");
  CHECK(contains(e.message, "is not an id like OS-007"));

  e = catalogue_error("  - {id: OS-900, title: t, probe: cpu_minimum, severity: error, fix: f, params: {controlPlane: two, worker: 1}}\n");
  CHECK(contains(e.message, "controlPlane: expected a number, found 'two'"));
}

TEST_CASE("healthy synthetic hosts pass every check of every profile", "[doctor]")
{
  for (const auto& profile : config::profiles()) {
    Fixture fx(3, profile);
    for (auto& st : fx.ctx.hosts) {
      st.facts->values["link"] = {"eth0 " + std::string(profile == "gcp" ? "1460" : "1500") + " 02:00:00:00:00:0" + st.host->name.substr(1)};
    }
    const auto r = fx.report();
    INFO(profile);
    CHECK(fx.errors(r).empty());
    CHECK(fx.errors(r, "warning").empty());
    CHECK(fx.errors(r, "skip").empty());
  }
}

TEST_CASE("profile checks: cloud metadata, GCE MTU, IBM data volume", "[doctor]")
{
  Fixture gcp(2, "gcp");
  gcp.facts(1).values["metadata"] = {"no"};
  auto r = gcp.report();
  CHECK(gcp.errors(r) == std::set<std::string>{"GCP-001@h1"});
  CHECK(gcp.errors(r, "warning") == std::set<std::string>{"GCP-002@h0", "GCP-002@h1"}); // 1500, not 1460
  CHECK(contains(gcp.finding(r, "GCP-002", "h0").observed, "eth0 MTU is 1500, the network's usual MTU is 1460"));

  Fixture ibm(1, "ibm-vpc");
  ibm.facts(0).values["disk"] = {"/var/lib/containerd 209715200 /", "/var/lib/kubelet 209715200 /", "/var/openebs/local 209715200 /"};
  r = ibm.report();
  CHECK(ibm.errors(r) == std::set<std::string>{"IBM-002@h0"});
  CHECK(contains(ibm.finding(r, "IBM-002", "h0").observed, "on the root filesystem"));

  Fixture onprem(1, "onprem"); // profile checks do not apply elsewhere
  onprem.facts(0).values["metadata"] = {"no"};
  r = onprem.report();
  for (const auto& f : r.findings) {
    CHECK(f.id.rfind("GCP-", 0) != 0);
    CHECK(f.id.rfind("IBM-", 0) != 0);
  }
}

TEST_CASE("the CNI MTU must fit the interface minus the encapsulation", "[doctor]")
{
  Fixture fx(1);
  fx.cluster.network.mtu = 1480;
  auto r = fx.report();
  CHECK(fx.errors(r) == std::set<std::string>{"NET-012@h0"});
  CHECK(contains(fx.finding(r, "NET-012", "h0").observed, "use at most 1450"));
  fx.cluster.network.mtu = 1450;
  CHECK(fx.errors(fx.report()).empty());
}

TEST_CASE("clock skew is measured against the median of all hosts", "[doctor]")
{
  Fixture fx(3);
  fx.facts(2).values["time.epoch"] = {"1045.0"}; // 45 s ahead of the others
  auto r = fx.report();
  CHECK(fx.errors(r) == std::set<std::string>{"SSH-006@h2"});
  CHECK(contains(fx.finding(r, "SSH-006", "h2").observed, "45.0 s from the median of 3 hosts"));
  fx.facts(2).values["time.epoch"] = {"1005.0"};
  r = fx.report();
  CHECK(fx.errors(r).empty());
  CHECK(fx.errors(r, "warning") == std::set<std::string>{"SSH-006@h2"});
}

TEST_CASE("platform totals are judged across the cluster", "[doctor]")
{
  Fixture fx(2);
  fx.facts(0).values["memory.kib"] = {"2097152"};
  fx.facts(1).values["memory.kib"] = {"2097152"};
  const auto r = fx.report();
  CHECK(fx.errors(r, "warning") == std::set<std::string>{"PLT-002@cluster"});
  CHECK(contains(fx.finding(r, "PLT-002", "").observed, "4.0 GiB across 2 hosts; the platform needs about 8"));
}

TEST_CASE("with the platform rendered, capacity is judged against its requests plus Kubernetes' own", "[doctor]")
{
  // The gcp profile renders about 4.1 CPUs and 9.1 GiB of requests: 4 vCPUs and 8 GiB, which pass the
  // fixed figures, are not enough.
  Fixture fx(1);
  fx.facts(0).values["cpus"] = {"4"};
  fx.facts(0).values["memory.kib"] = {"8388608"};
  auto r = fx.report();
  CHECK(fx.errors(r, "warning").count("PLT-001@cluster") == 0);
  CHECK(fx.errors(r, "warning").count("PLT-002@cluster") == 0);
  fx.ctx.platform = PlatformDemand{4.1, 9.125, "Kubeflow Pipelines and Istio as rendered for profile gcp"};
  r = fx.report();
  CHECK(fx.errors(r, "warning") == std::set<std::string>{"PLT-001@cluster", "PLT-002@cluster"});
  INFO(fx.finding(r, "PLT-001", "").observed);
  CHECK(contains(fx.finding(r, "PLT-001", "").observed,
                 "4.0 CPUs across 1 host; 4.1 CPUs requested by Kubeflow Pipelines and Istio as rendered for profile gcp plus about 0.85 for Kubernetes itself need 4.95"));
  CHECK(contains(fx.finding(r, "PLT-002", "").observed, "8.0 GiB across 1 host; 9.1 GiB requested by"));
  // Enough: passes, saying what it summed.
  fx.facts(0).values["cpus"] = {"6"};
  fx.facts(0).values["memory.kib"] = {"12582912"};
  r = fx.report();
  CHECK(fx.errors(r, "warning").empty());
  CHECK(contains(fx.finding(r, "PLT-001", "").observed, "6.0 CPUs across 1 host; 4.1 CPUs requested by"));
}

TEST_CASE("kernel and version thresholds", "[doctor]")
{
  CHECK(compare_versions("6.18.44-fc-v657", "5.8") > 0);
  CHECK(compare_versions("4.14.0", "4.15") < 0);
  CHECK(compare_versions("1.35", "1.35.0") == 0);
  CHECK(compare_versions("v1.36.2", "1.36.10") < 0);
  Fixture fx(1);
  fx.facts(0).values["kernel"] = {"5.4.0-150-generic"};
  auto r = fx.report();
  CHECK(fx.errors(r, "warning") == std::set<std::string>{"OS-004@h0"});
  fx.facts(0).values["kernel"] = {"4.9.0"};
  CHECK(fx.errors(fx.report()) == std::set<std::string>{"OS-004@h0"});
}

TEST_CASE("cgroup v1 is an error from Kubernetes 1.35 and a warning before", "[doctor]")
{
  Fixture fx(1);
  fx.facts(0).values["cgroup.fs"] = {"tmpfs"};
  CHECK(fx.errors(fx.report()) == std::set<std::string>{"OS-005@h0"});
  fx.ctx.kubernetes = "1.34";
  const auto r = fx.report();
  CHECK(fx.errors(r).empty());
  CHECK(fx.errors(r, "warning") == std::set<std::string>{"OS-005@h0"});
}

TEST_CASE("duplicate identities are reported on every host that shares them", "[doctor]")
{
  Fixture fx(3);
  fx.facts(2).values["machine_id"] = {"machine0"};
  fx.facts(1).values["link"] = {"eth0 1500 02:00:00:00:00:00"};
  const auto r = fx.report();
  CHECK(fx.errors(r) == std::set<std::string>{"OS-012@h0", "OS-012@h1", "OS-012@h2"});
  CHECK(contains(fx.finding(r, "OS-012", "h0").observed, "machine-id machine0 is also on h2"));
  CHECK(contains(fx.finding(r, "OS-012", "h0").observed, "MAC 02:00:00:00:00:00 is also on h1"));
}

TEST_CASE("an unreachable host is one error, its other checks are not run, not passed", "[doctor]")
{
  Fixture fx(2);
  Error e;
  e.code = ErrorCode::connect_failed;
  e.message = "cannot connect to 10.1.0.11:22: Connection refused";
  fx.ctx.hosts[1].connect_error = e;
  fx.ctx.hosts[1].facts.reset();
  const auto r = fx.report();
  CHECK(fx.errors(r) == std::set<std::string>{"SSH-001@h1"});
  CHECK(fx.finding(r, "OS-007", "h1").status == "skip");
  CHECK(fx.finding(r, "OS-007", "h1").observed == "not checked: host not connected");
}

TEST_CASE("the text report groups by host, errors first, and says whether install may proceed", "[doctor]")
{
  Fixture fx(2);
  fx.facts(1).values["cgroup.fs"] = {"tmpfs"};                                // cgroup v1: an error
  fx.facts(1).values["dns.self"] = {"no"};                                    // a warning
  fx.facts(1).values["sysctl.fs.inotify.max_user_instances"] = {"1024"};      // install raises it
  const auto text = render_text(fx.report(), Colour::no);
  INFO(text);
  CHECK(contains(text, "h0 (10.1.0.10, control-plane): "));
  const auto error_at = text.find("ERROR             OS-005");
  const auto warning_at = text.find("WARNING           OS-016");
  const auto fixed_at = text.find("FIXED-BY-INSTALL  NET-010");
  REQUIRE(error_at != std::string::npos);
  REQUIRE(warning_at != std::string::npos);
  REQUIRE(fixed_at != std::string::npos);
  CHECK(error_at < warning_at);
  CHECK(warning_at < fixed_at);
  CHECK(contains(text.substr(fixed_at), "install's prepare does this: echo -e 'fs.inotify.max_user_instances=2280"));
  CHECK(contains(text, "1 error, 1 warning, 1 fixed by install, "));
  CHECK(contains(text, "Install is blocked"));
  CHECK(text.find("\033[") == std::string::npos); // no colour when not asked
  const auto json = nlohmann::json::parse(render_json(fx.report()));
  CHECK(json["summary"]["errors"] == 1);
  CHECK(json["summary"]["warnings"] == 1);
  CHECK(json["summary"]["fixedByInstall"] == 1);
}

TEST_CASE("a freshly booted host: what install's prepare fixes is fixed-by-install, never an error, and what it cannot fix still is",
          "[doctor]")
{
  Fixture fx(1);
  auto& f = fx.facts(0);
  // A cloud image as it boots: the kernel's defaults, modules loadable but not loaded, swap on.
  f.values["sysctl.net.ipv4.ip_forward"] = {"0"};
  f.values.erase("sysctl.net.bridge.bridge-nf-call-iptables");
  f.values["sysctl.fs.inotify.max_user_instances"] = {"128"};
  f.values["sysctl.fs.inotify.max_user_watches"] = {"8192"};
  for (const auto& m : fx.catalogue.param_values("modules_available", "modules")) {
    f.values["module." + m] = {"loadable"};
  }
  f.values["swap.device"] = {"/swapfile 2097148"};
  f.values["swap.kib"] = {"2097148"};
  auto r = fx.report();
  CHECK(fx.errors(r).empty());
  CHECK(fx.errors(r, "warning").empty());
  CHECK(fx.errors(r, "fixed-by-install") == std::set<std::string>{"NET-001@h0", "NET-002@h0", "NET-003@h0", "NET-010@h0", "OS-007@h0"});
  CHECK_FALSE(r.has_errors());
  CHECK(contains(fx.finding(r, "NET-001", "h0").observed, "net.ipv4.ip_forward = 0"));
  CHECK(contains(fx.finding(r, "NET-002", "h0").observed, "br_netfilter loadable, not loaded"));
  CHECK(contains(fx.finding(r, "NET-003", "h0").observed, "loadable, not loaded: br_netfilter, overlay, ip_tables"));
  CHECK_FALSE(fx.finding(r, "NET-001", "h0").fix.empty()); // standalone doctor still says how
  const auto json = nlohmann::json::parse(render_json(r));
  CHECK(json["summary"]["fixedByInstall"] == 5);
  CHECK(json["summary"]["installBlocked"] == false);
  CHECK(contains(render_text(r, Colour::no), "Install may proceed."));

  // What prepare cannot fix blocks: a module that cannot be loaded.
  f.values["module.br_netfilter"] = {"missing"};
  r = fx.report();
  CHECK(fx.errors(r) == std::set<std::string>{"NET-002@h0", "NET-003@h0"});
  CHECK(contains(fx.finding(r, "NET-002", "h0").observed, "neither loaded, built in, nor loadable"));

  // A catalogue whose check does not say install fixes it keeps the check's own severity.
  f.values["module.br_netfilter"] = {"loadable"};
  for (auto& c : fx.catalogue.checks) {
    if (c.id == "NET-001") {
      c.fixed_by.clear();
    }
  }
  r = fx.report();
  CHECK(fx.errors(r) == std::set<std::string>{"NET-001@h0"});
}

TEST_CASE("fixedBy names a phase and only a probe that can report what install fixes", "[doctor]")
{
  const auto bad_phase = catalogue_error("  - id: NET-001\n    title: t\n    probe: ip_forward\n    severity: error\n    fixedBy: cni\n    fix: f\n");
  CHECK(contains(bad_phase.message, "checks[0].fixedBy: 'cni' is not a phase that fixes host findings"));
  REQUIRE(bad_phase.where);
  CHECK(bad_phase.where->line == 9);
  const auto not_fixable = catalogue_error("  - id: OS-010\n    title: t\n    probe: hostname_valid\n    severity: error\n    fixedBy: prepare\n    fix: f\n");
  CHECK(contains(not_fixable.message, "probe 'hostname_valid' never reports a finding install fixes"));
}

TEST_CASE("a check says which commands' preflight runs it, mlplat doctor runs every check", "[doctor]")
{
  Fixture fx(1);
  auto& f = fx.facts(0);
  f.values["sysctl.net.ipv4.ip_forward"] = {"0"};
  for (auto& c : fx.catalogue.checks) {
    if (c.id == "NET-001") {
      c.commands = {"doctor", "plan"};
    }
  }
  auto finding_ids = [](const Report& r) {
    std::set<std::string> ids;
    for (const auto& x : r.findings) {
      ids.insert(x.id);
    }
    return ids;
  };
  Options install;
  install.command = "install";
  CHECK(finding_ids(fx.report(install)).count("NET-001") == 0);
  Options plan;
  plan.command = "plan";
  CHECK(finding_ids(fx.report(plan)).count("NET-001") == 1);
  CHECK(finding_ids(fx.report()).count("NET-001") == 1);  // mlplat doctor
  CHECK(finding_ids(fx.report(install)).count("NET-002") == 1);  // a check without commands runs for every command
  const auto unknown = catalogue_error("  - id: NET-001\n    title: t\n    probe: ip_forward\n    severity: error\n    commands: [instal]\n    fix: f\n");
  CHECK(contains(unknown.message, "checks[0].commands: 'instal' is not a command that runs the doctor"));
  CHECK(contains(unknown.fix, "doctor, install, plan"));
}

TEST_CASE("docs/doctor.md lists every check of the catalogue", "[doctor][docs]")
{
  const auto doc = fs::read_file(std::string(MLPLAT_SOURCE_DIR) + "/docs/doctor.md");
  REQUIRE(doc);
  const auto catalogue = load_default_catalogue();
  REQUIRE(catalogue);
  for (const auto& check : catalogue->checks) {
    CHECK(contains(*doc, "| " + check.id + " | " + check.title + " | " + to_string(check.severity) + " |"));
  }
}

TEST_CASE("the probe's raw output is interpreted into facts", "[doctor][facts]")
{
  const std::string output = R"(@@ files
/proc/self/status:Name:	grep
/proc/self/status:Uid:	1000	0	0	0
/proc/sys/kernel/hostname:cp-1
/proc/sys/kernel/osrelease:5.15.0-105-generic
/usr/lib/os-release:ID=ubuntu
/usr/lib/os-release:VERSION_ID="22.04"
/usr/lib/os-release:PRETTY_NAME="Ubuntu 22.04.4 LTS"
/etc/machine-id:0123456789abcdef0123456789abcdef
/proc/meminfo:MemTotal:        8141328 kB
/proc/meminfo:SwapTotal:       2097148 kB
/proc/swaps:Filename				Type		Size		Used		Priority
/proc/swaps:/swap.img                               file		2097148		0		-2
/proc/sys/net/ipv4/ip_forward:0
/proc/sys/fs/inotify/max_user_instances:128
/sys/devices/system/cpu/online:0-3,6
/etc/resolv.conf:# generated
/etc/resolv.conf:nameserver 127.0.0.53
/proc/sys/kernel/arch:x86_64
/proc/net/route:Iface	Destination	Gateway 	Flags	RefCnt	Use	Metric	Mask		MTU	Window	IRTT
/proc/net/route:ens4	00000000	0100800A	0003	0	0	100	00000000	0	0	0
/proc/net/route:ens4	0000800A	00000000	0001	0	0	0	00F0FFFF	0	0	0
/proc/net/fib_trie:Main:
/proc/net/fib_trie:  +-- 0.0.0.0/0 3 0 5
/proc/net/fib_trie:     |-- 10.128.0.11
/proc/net/fib_trie:        /32 host LOCAL
/proc/net/fib_trie:     |-- 127.0.0.1
/proc/net/fib_trie:        /32 host LOCAL
/proc/net/if_inet6:fe80000000000000400010fffe80000b 02 40 20 80     ens4
@@ time
1795355615.5
@@ state
systemd yes
leftover.manifests 2
leftover.etcd 0
leftover.kubelet_conf no
@@ links
lo 772 65536 00:00:00:00:00:00
ens4 1 1460 42:01:0a:80:00:0b
@@ listen
tcp   LISTEN 0      4096       0.0.0.0:6443      0.0.0.0:*    users:(("kube-apiserver",pid=812,fd=3))
@@ resolves
@@ modules
br_netfilter loadable
xt_owner missing
@@ binaries
ip /usr/sbin/ip
conntrack missing
@@ firewall
firewalld inactive
ufw active
nftables inactive
@@ installed
containerd containerd github.com/containerd/containerd v1.7.12 abc123
kubelet Kubernetes v1.34.2
@@ diskpaths
/var/lib/containerd
/var/openebs/local
@@ df
Filesystem     1024-blocks     Used Available Capacity Mounted on
/dev/sda1         50620216 10000000  40620216      20% /
/dev/sdb1        104857600        0 104857600       0% /var/openebs
@@ end
)";
  const auto f = facts::parse("cp-1", output);
  CHECK(f.get("hostname") == "cp-1");
  CHECK(f.get("privileged") == "yes"); // effective uid 0 (through sudo)
  CHECK(f.get("os.id") == "ubuntu");
  CHECK(f.get("os.version") == "22.04");
  CHECK(f.get("os.pretty") == "Ubuntu 22.04.4 LTS");
  CHECK(f.get("cpus") == "5");
  CHECK(f.get("memory.kib") == "8141328");
  CHECK(f.all("swap.device") == std::vector<std::string>{"/swap.img 2097148"});
  CHECK(f.get("cgroup.fs") == "cgroup v1"); // no cgroup.controllers
  CHECK(f.get("sysctl.net.ipv4.ip_forward") == "0");
  CHECK(f.get("sysctl.net.bridge.bridge-nf-call-iptables").empty());
  CHECK(f.get("dns.nameservers") == "1");
  CHECK(f.get("dns.self") == "no");
  CHECK(f.get("leftover.manifests") == "2");
  CHECK(f.get("arch") == "x86_64");
  CHECK(f.all("addr") == std::vector<std::string>{"ens4 10.128.0.11/20", "lo 127.0.0.1/8", "ens4 fe80::4000:10ff:fe80:b/64"});
  CHECK(f.all("link") == std::vector<std::string>{"ens4 1460 42:01:0a:80:00:0b"});
  CHECK(f.all("route") == std::vector<std::string>{"default", "10.128.0.0/20"});
  // ss -p ran (a watched port is taken): its lines, with owners, win over the bare /proc/net ones.
  CHECK(f.all("listen") == std::vector<std::string>{"tcp 0.0.0.0:6443 users:((\"kube-apiserver\",pid=812,fd=3))"});
  CHECK(f.get("module.xt_owner") == "missing");
  CHECK(f.get("binary.conntrack") == "missing");
  CHECK(f.get("firewall.ufw") == "active");
  CHECK(f.get("installed.containerd") == "1.7.12");
  CHECK(f.get("installed.kubelet") == "1.34.2");
  CHECK(f.all("disk") == std::vector<std::string>{"/var/lib/containerd 40620216 /", "/var/openebs/local 104857600 /var/openebs"});
  CHECK_FALSE(f.has("metadata"));

  // Without ss -p, listening sockets come from /proc/net, IPv4 and IPv6; connected ones are left out.
  const auto bare = facts::parse(
    "cp-1", "@@ files\n"
            "/proc/net/tcp:  sl  local_address rem_address   st tx_queue rx_queue\n"
            "/proc/net/tcp:   0: 00000000:192B 00000000:0000 0A 00000000:00000000\n"
            "/proc/net/tcp:   1: 0B00C70A:0016 0C00C70A:9C40 01 00000000:00000000\n"
            "/proc/net/tcp6:   0: 00000000000000000000000001000000:0CEA 00000000000000000000000000000000:0000 0A 0\n"
            "/proc/net/udp:   0: 00000000:2118 00000000:0000 07 00000000:00000000\n"
            "@@ listen\n");
  CHECK(bare.all("listen") == std::vector<std::string>{"tcp 0.0.0.0:6443", "tcp [::1]:3306", "udp 0.0.0.0:8472"});
}
