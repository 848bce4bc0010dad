// mlplat doctor against the testbed: a clean host passes with nothing to report; each fault, put on
// its own host, is found with its id and nothing else is; doctor never changes a host (audited with
// strace on the host); the JSON report matches the documented schema.
#include "support/catch.hpp"

#include "integration/testbed.hpp"
#include "util/fs.hpp"
#include "util/text.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <thread>

using namespace mlplat;
using namespace std::chrono_literals;

namespace {

struct Node {
  int n;                              // testbed index; 0 = an address where no host answers
  std::string role = "worker";
  std::string user = "root";
};

bool contains(const std::string& haystack, const std::string& needle)
{
  return haystack.find(needle) != std::string::npos;
}

// A cluster file for `nodes` (the first is the control plane unless a role says otherwise).
std::string cluster_file(const std::string& name, const std::vector<Node>& nodes, const std::string& known_hosts = testbed::known_hosts())
{
  const std::string dir = testbed::temp_dir("doctor-" + name);
  std::string text = "apiVersion: mlplat.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: " + name +
                     "\nspec:\n  ssh:\n    keyPath: " + testbed::key() + "\n    knownHosts: " + known_hosts +
                     "\n    connectTimeoutSeconds: 2\n  hosts:\n";
  for (size_t i = 0; i < nodes.size(); ++i) {
    const Node& node = nodes[i];
    text += "    - name: node-" + std::to_string(node.n == 0 ? 253 : node.n) + "\n      address: " +
            (node.n > 0 ? testbed::address(node.n) : testbed::net() + ".253") + "\n      role: " +
            (i == 0 && node.role == "worker" ? std::string("control-plane") : node.role) + "\n";
    if (node.user != "root") {
      text += "      ssh:\n        user: " + node.user + "\n";
    }
  }
  const std::string path = dir + "/mlplat.yaml";
  REQUIRE(fs::write_file_atomic(path, text, 0644));
  return path;
}

struct DoctorRun {
  int exit_code = -1;
  nlohmann::json report;
  std::string err;

  // The ids with `status` (for `host`, or any host when empty).
  std::set<std::string> ids(const std::string& status, const std::string& host = {}) const
  {
    std::set<std::string> out;
    for (const auto& f : report["findings"]) {
      if (f["status"] == status && (host.empty() || (f["host"].is_string() && f["host"] == host))) {
        out.insert(f["id"].get<std::string>());
      }
    }
    return out;
  }

  // The finding for `id` on `host`.
  nlohmann::json finding(const std::string& id, const std::string& host) const
  {
    for (const auto& f : report["findings"]) {
      if (f["id"] == id && f["host"].is_string() && f["host"] == host) {
        return f;
      }
    }
    FAIL("no finding " << id << " for " << host);
    return {};
  }
};

DoctorRun doctor(const std::string& file, std::vector<std::string> extra = {})
{
  std::vector<std::string> argv{MLPLAT_BINARY, "doctor", "-c", file, "--output", "json"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  const auto r = run_process(argv, 120s);
  REQUIRE(r);
  DoctorRun run;
  run.exit_code = r->exit_code;
  run.err = r->err;
  INFO(r->err);
  run.report = nlohmann::json::parse(r->out);
  return run;
}

// Runs doctor on `nodes` and checks that exactly `id` fails (as an error) on `host`, with `observed`
// in what it saw, and that no other check is an error anywhere.
DoctorRun expect_only(const std::string& name, const std::vector<Node>& nodes, const std::string& host, const std::string& id,
                      const std::string& observed)
{
  const auto run = doctor(cluster_file(name, nodes));
  INFO(run.report.dump(1));
  // docs/exit-codes.md: 4 for a host not reached or refusing the key, 5 for a host key, else 3.
  CHECK(run.exit_code == (id == "SSH-001" || id == "SSH-003" ? 4 : id == "SSH-002" ? 5 : 3));
  CHECK(run.ids("error", host) == std::set<std::string>{id});
  const auto f = run.finding(id, host);
  CHECK(contains(f["observed"].get<std::string>(), observed));
  CHECK_FALSE(f["fix"].get<std::string>().empty());
  for (const auto& other : run.report["hosts"]) {
    if (other["name"] != host) {
      CHECK(run.ids("error", other["name"].get<std::string>()).count(id) == (id == "OS-011" || id == "OS-012" ? 1u : 0u));
    }
  }
  return run;
}

void tb(const std::vector<std::string>& args)
{
  testbed::script(args);
}

void knob(const std::string& host, const std::string& file, const std::string& content)
{
  const auto r = run_process({MLPLAT_TESTBED_SCRIPT, "knob", host, file}, 30s, content);
  REQUIRE(r);
  REQUIRE(r->ok());
}

} // namespace

TEST_CASE("a freshly booted host: no error, no warning, what install fixes reported as fixed-by-install, and nothing on a prepared host",
          "[doctor]")
{
  // node-65 boots as a cloud image does (the testbed's default): forwarding off, the kernel's inotify
  // limits, br_netfilter and the other modules loadable but not loaded.
  const auto run = doctor(cluster_file("clean", {{65, "control-plane"}}));
  INFO(run.report.dump(1));
  CHECK(run.exit_code == 0);
  CHECK(run.report["summary"]["errors"] == 0);
  CHECK(run.report["summary"]["warnings"] == 0);
  CHECK(run.report["summary"]["skipped"] == 0);
  CHECK(run.report["summary"]["fixedByInstall"] == 4);
  CHECK(run.report["summary"]["passed"].get<int>() >= 31);
  CHECK(run.report["summary"]["installBlocked"] == false);
  CHECK(run.ids("fixed-by-install", "node-65") == std::set<std::string>{"NET-001", "NET-002", "NET-003", "NET-010"});
  CHECK(contains(run.finding("NET-001", "node-65")["observed"].get<std::string>(), "net.ipv4.ip_forward = 0"));
  CHECK(contains(run.finding("NET-002", "node-65")["observed"].get<std::string>(), "br_netfilter loadable, not loaded"));
  CHECK(contains(run.finding("NET-003", "node-65")["observed"].get<std::string>(), "loadable, not loaded: br_netfilter, overlay, ip_tables"));
  CHECK(contains(run.finding("NET-010", "node-65")["observed"].get<std::string>(), "max_user_instances = 128, max_user_watches = 8192"));
  CHECK_FALSE(run.finding("NET-001", "node-65")["fix"].get<std::string>().empty());
  CHECK(contains(run.err, "node-65: checked (")); // progress, as plain lines when stderr is not a terminal
  // In text: its own label, the fix, and install may proceed.
  const auto text = run_process({MLPLAT_BINARY, "doctor", "-c", cluster_file("clean-text", {{65, "control-plane"}})}, 120s);
  REQUIRE(text);
  CHECK(text->exit_code == 0);
  CHECK(contains(text->out, "  FIXED-BY-INSTALL  NET-001  IPv4 forwarding on: net.ipv4.ip_forward = 0\n"));
  CHECK(contains(text->out, "install's prepare does this: echo net.ipv4.ip_forward=1"));
  CHECK(contains(text->out, "0 errors, 0 warnings, 4 fixed by install, "));
  CHECK(contains(text->out, "Install may proceed."));

  // A host someone prepared already (the testbed's prepared shape) has nothing to report.
  tb({"stock", "node-79", "prepared"});
  const auto prepared = doctor(cluster_file("prepared", {{79, "control-plane"}}));
  INFO(prepared.report.dump(1));
  CHECK(prepared.exit_code == 0);
  CHECK(prepared.report["summary"]["fixedByInstall"] == 0);
  CHECK(prepared.report["summary"]["warnings"] == 0);
}

TEST_CASE("doctor finds swap on (OS-007), which install fixes", "[doctor]")
{
  tb({"stock", "node-66", "swap"}); // a swap file active and in /etc/fstab
  const auto run = doctor(cluster_file("swap", {{65, "control-plane"}, {66}}));
  INFO(run.report.dump(1));
  CHECK(run.exit_code == 0);
  CHECK(run.finding("OS-007", "node-66")["status"] == "fixed-by-install");
  CHECK(contains(run.finding("OS-007", "node-66")["observed"].get<std::string>(), "swap is on: /var/swapfile (0.1 GiB)"));
  CHECK(run.finding("OS-007", "node-65")["status"] == "pass");
  CHECK(run.ids("error").empty());
}

TEST_CASE("doctor finds cgroup v1 on Kubernetes 1.35+ (OS-005)", "[doctor]")
{
  tb({"cgroup", "node-67", "v1"});
  expect_only("cgroupv1", {{65, "control-plane"}, {67}}, "node-67", "OS-005", "cgroup v1");
}

namespace {

// node-69's kernel has no xt_owner: not loaded, not built in, not loadable (not in modules.dep).
void remove_xt_owner()
{
  tb({"exec", "node-69", "sh", "-c", "sed -i '/xt_owner/d' /usr/lib/modules/$(uname -r)/modules.dep /usr/lib/modules/$(uname -r)/modules.builtin"});
}

} // namespace

TEST_CASE("doctor finds a missing kernel module (NET-003), which install cannot fix", "[doctor]")
{
  remove_xt_owner();
  expect_only("module", {{65, "control-plane"}, {69}}, "node-69", "NET-003", "missing kernel modules: xt_owner");
}

TEST_CASE("doctor finds port 6443 taken and names the process (NET-004)", "[doctor]")
{
  tb({"exec", "node-70", "sh", "-c", "setsid socat TCP-LISTEN:6443,fork,reuseaddr - </dev/null >/dev/null 2>&1 &"});
  // Wait (bounded) until the listener is up.
  for (int i = 0; i < 50; ++i) {
    if (contains(testbed::script({"exec", "node-70", "ss", "-Hltn"}).out, ":6443")) {
      break;
    }
    std::this_thread::sleep_for(100ms);
  }
  expect_only("port", {{70, "control-plane"}}, "node-70", "NET-004", "port 6443/tcp is taken by socat (pid ");
}

TEST_CASE("doctor finds a duplicate hostname on both hosts (OS-011)", "[doctor]")
{
  tb({"exec", "node-71", "sh", "-c", "hostname node-65 && echo '127.0.1.1 node-65' >> /etc/hosts"});
  const auto run = expect_only("duphost", {{65, "control-plane"}, {71}}, "node-71", "OS-011", "hostname node-65 is also on node-65");
  CHECK(contains(run.finding("OS-011", "node-65")["observed"].get<std::string>(), "is also on node-71"));
}

TEST_CASE("doctor finds a duplicate product_uuid on both hosts (OS-012)", "[doctor]")
{
  const std::string uuid = text::split(testbed::script({"exec", "node-65", "cat", "/sys/class/dmi/id/product_uuid"}).out, '\n')[0];
  knob("node-72", "/sys/class/dmi/id/product_uuid", uuid + "\n");
  const auto run = expect_only("dupuuid", {{65, "control-plane"}, {72}}, "node-72", "OS-012", "product_uuid " + uuid + " is also on node-65");
  CHECK(contains(run.finding("OS-012", "node-65")["observed"].get<std::string>(), "is also on node-72"));
}

TEST_CASE("doctor finds the pod CIDR overlapping a host route (NET-006)", "[doctor]")
{
  tb({"exec", "node-73", "ip", "route", "replace", "10.244.0.0/16", "dev", "eth0"});
  expect_only("cidr", {{65, "control-plane"}, {73}}, "node-73", "NET-006", "podCIDR 10.244.0.0/16 overlaps route 10.244.0.0/16");
}

TEST_CASE("doctor finds too little memory (OS-009)", "[doctor]")
{
  knob("node-74", "/proc/meminfo", "MemTotal:        1048576 kB\nSwapTotal:             0 kB\n");
  expect_only("memory", {{65, "control-plane"}, {74}}, "node-74", "OS-009", "1024 MiB of memory; a worker needs at least 1700 MiB");
}

TEST_CASE("doctor finds an unsupported OS (OS-001)", "[doctor]")
{
  knob("node-75", "/etc/os-release", "ID=ubuntu\nVERSION_ID=\"18.04\"\nPRETTY_NAME=\"Ubuntu 18.04.6 LTS\"\n");
  expect_only("os", {{65, "control-plane"}, {75}}, "node-75", "OS-001", "ubuntu 18.04 is not a supported OS [MAT-006, matrix row k8s-1.36");
}

TEST_CASE("doctor finds sudo needing a password, without hanging (SSH-004)", "[doctor]")
{
  const auto start = std::chrono::steady_clock::now();
  const auto run = expect_only("sudo", {{65, "control-plane"}, {76, "worker", "mlpnopw"}}, "node-76", "SSH-004", "password");
  CHECK(contains(run.finding("SSH-004", "node-76")["fix"].get<std::string>(), "NOPASSWD"));
  CHECK(std::chrono::steady_clock::now() - start < 30s);
}

TEST_CASE("doctor reports an unreachable host and still checks the others (SSH-001)", "[doctor]")
{
  const auto run = expect_only("unreachable", {{65, "control-plane"}, {0}}, "node-253", "SSH-001", "cannot connect");
  CHECK(run.ids("skip", "node-253").count("OS-007") == 1);  // not judged, not passed
  CHECK(run.ids("pass", "node-65").count("OS-007") == 1);
  CHECK(contains(run.err, "node-253: not connected"));
  CHECK(contains(run.err, "doctor: still waiting for node-253 after 5 s (deadline 30 s)"));
}

TEST_CASE("doctor refuses a replaced host key (SSH-002), which --ignore cannot lower", "[doctor]")
{
  tb({"rekey", "node-77"});
  const auto file = cluster_file("hostkey", {{65, "control-plane"}, {77}});
  expect_only("hostkey", {{65, "control-plane"}, {77}}, "node-77", "SSH-002", "HOST KEY MISMATCH");
  const auto r = run_process({MLPLAT_BINARY, "doctor", "-c", file, "--ignore", "SSH-002"}, 60s);
  REQUIRE(r);
  CHECK(r->exit_code == 2);
  CHECK(contains(r->err, "SSH-002 (host key trusted) cannot be ignored"));
}

TEST_CASE("ignored errors become warnings, unknown ids are refused", "[doctor]")
{
  const auto file = cluster_file("ignore", {{65, "control-plane"}, {69}}); // node-69: no xt_owner (its test shapes it; shape here too)
  remove_xt_owner();
  const auto run = doctor(file, {"--ignore", "NET-003"});
  CHECK(run.exit_code == 0);
  CHECK(run.report["summary"]["ignored"] == 1);
  CHECK(run.finding("NET-003", "node-69")["status"] == "warning");
  CHECK(run.finding("NET-003", "node-69")["ignored"] == true);
  const auto r = run_process({MLPLAT_BINARY, "doctor", "-c", file, "--ignore", "OS-07"}, 60s);
  REQUIRE(r);
  CHECK(r->exit_code == 2);
  CHECK(contains(r->err, "no check with id 'OS-07'"));
}

TEST_CASE("install refuses to start while doctor reports an error: a host where br_netfilter cannot be loaded", "[doctor]")
{
  // node-80 boots as a stock image whose kernel has no br_netfilter at all; node-65 as a stock image.
  tb({"exec", "node-80", "sh", "-c", "sed -i '/br_netfilter/d' /usr/lib/modules/$(uname -r)/modules.dep"});
  const auto file = cluster_file("install-gate", {{65, "control-plane"}, {80}});
  const auto r = run_process({MLPLAT_BINARY, "install", "-c", file, "--only", "prepare", "--state-dir",
                              testbed::temp_dir("install-gate-state")}, 60s);
  REQUIRE(r);
  INFO(r->out << r->err);
  CHECK(r->exit_code == 3);
  CHECK(contains(r->out, "ERROR             NET-002  br_netfilter and bridge netfilter sysctl: br_netfilter is neither loaded, built in, nor loadable"));
  CHECK(contains(r->out, "FIXED-BY-INSTALL  NET-001"));
  CHECK(contains(r->err, "install refused: preflight found 2 errors; nothing was changed on any host"));
  // Nothing changed: no drop-in written, no module loaded, forwarding still off, on either host.
  for (const char* host : {"node-65", "node-80"}) {
    const auto state = testbed::script({"exec", host, "sh", "-c",
                                        "ls /etc/sysctl.d/90-mlplat.conf /etc/modules-load.d/mlplat.conf 2>&1; ls -d /sys/module/overlay 2>&1; sysctl -n net.ipv4.ip_forward"});
    CHECK(contains(state.out, "cannot access '/etc/sysctl.d/90-mlplat.conf'"));
    CHECK(contains(state.out, "cannot access '/etc/modules-load.d/mlplat.conf'"));
    CHECK(contains(state.out, "cannot access '/sys/module/overlay'"));
    CHECK(contains(state.out, "\n0\n"));
  }
}

TEST_CASE("the JSON report matches the documented schema", "[doctor]")
{
  remove_xt_owner();
  const auto file = cluster_file("schema", {{65, "control-plane"}, {69}, {0}});
  const auto r = run_process({MLPLAT_BINARY, "doctor", "-c", file, "--output", "json", "--ignore", "NET-003"}, 60s);
  REQUIRE(r);
  const std::string dir = testbed::temp_dir("doctor-schema-out");
  REQUIRE(fs::write_file_atomic(dir + "/report.json", r->out, 0644));
  const std::string schema = std::string(MLPLAT_SOURCE_DIR) + "/docs/doctor.schema.json";
  // Debian's python3 with python3-jsonschema (scripts/install-deps.sh), not whatever python3 is first in PATH.
  const auto v = run_process({"/usr/bin/python3", "-c",
                              "import json, sys, jsonschema\n"
                              "jsonschema.validate(json.load(open(sys.argv[1])), json.load(open(sys.argv[2])))\n"
                              "print('valid')",
                              dir + "/report.json", schema},
                             60s);
  REQUIRE(v);
  INFO(v->err);
  CHECK(v->out == "valid\n");
  // The schema is strict enough to catch a wrong document.
  auto broken = nlohmann::json::parse(r->out);
  broken["findings"][0]["status"] = "fine";
  REQUIRE(fs::write_file_atomic(dir + "/broken.json", broken.dump(), 0644));
  const auto bad = run_process({"/usr/bin/python3", "-c",
                                "import json, sys, jsonschema\n"
                                "jsonschema.validate(json.load(open(sys.argv[1])), json.load(open(sys.argv[2])))",
                                dir + "/broken.json", schema},
                               60s);
  REQUIRE(bad);
  CHECK(bad->exit_code != 0);
  CHECK(contains(bad->err, "'fine' is not one of"));
}
