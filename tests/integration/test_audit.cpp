// doctor is strictly read-only, shown two ways on node-78:
// 1. the audit stand-in (testbed.sh audit) runs every SSH session under strace; every program
//    executed must be a known read-only one (with read-only arguments) and no file-changing system
//    call may be attempted outside /dev/null;
// 2. nothing under the host's own directories (its overlay upper layers, /root, /home, /tmp) changes.
// A negative control first proves the audit catches a mutating command.
#include "support/catch.hpp"

#include "integration/audit.hpp"
#include "integration/testbed.hpp"
#include "util/fs.hpp"
#include "util/sha256.hpp"
#include "util/text.hpp"

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>

using namespace mlplat;
using namespace std::chrono_literals;
namespace stdfs = std::filesystem;

namespace {

const std::string k_host = "node-78";
const int k_index = 78;

std::string cluster_file()
{
  const std::string dir = testbed::temp_dir("audit");
  const std::string text = "apiVersion: mlplat.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: audit\nspec:\n  ssh:\n    user: mlp\n    keyPath: " +
                           testbed::key() + "\n    knownHosts: " + testbed::known_hosts() + "\n  hosts:\n    - name: " + k_host +
                           "\n      address: " + testbed::address(k_index) + "\n      role: control-plane\n";
  REQUIRE(fs::write_file_atomic(dir + "/mlplat.yaml", text, 0644));
  return dir + "/mlplat.yaml";
}

} // namespace

TEST_CASE("doctor never changes a host: every program and file access audited", "[doctor][audit]")
{
  testbed::script({"audit", k_host, "on"});

  // Negative control: the audit sees a mutating command for what it is.
  audit::clear_audit(k_host);
  auto ep = testbed::endpoint(k_index);
  auto session = transport::Session::connect(ep);
  REQUIRE(session);
  transport::Command touch;
  touch.script = "touch /tmp/mlplat-audit-canary; hostname other-name; ip route add 10.98.0.0/16 dev eth0; sysctl -w vm.swappiness=1";
  touch.description = "negative control";
  REQUIRE((*session)->exec(touch));
  const auto control = audit::read_audit(k_host);
  CHECK(control.sessions == 1);
  REQUIRE(control.mutations.size() >= 4);
  const std::string all = text::join(control.mutations, "\n");
  CHECK(all.find("unknown program touch") != std::string::npos);
  CHECK(all.find("hostname setting a name") != std::string::npos);
  CHECK(all.find("ip route add") != std::string::npos);
  CHECK(all.find("sysctl writing") != std::string::npos);
  // Undo the control's changes and wait for nothing: the snapshot below starts from here.
  testbed::script({"exec", k_host, "sh", "-c", "rm -f /tmp/mlplat-audit-canary; hostname " + k_host + "; ip route del 10.98.0.0/16"});
  session->reset();

  // The real run.
  audit::clear_audit(k_host);
  const auto before = audit::snapshot(k_host);
  const auto r = run_process({MLPLAT_BINARY, "doctor", "-c", cluster_file(), "--output", "json"}, 120s);
  REQUIRE(r);
  INFO(r->err);
  CHECK(r->exit_code == 0);
  const auto after = audit::snapshot(k_host);
  const auto audit = audit::read_audit(k_host);
  testbed::script({"audit", k_host, "off"});

  CHECK(audit.sessions >= 1);
  // The audit did look: it saw the probe's own programs.
  std::set<std::string> seen;
  for (const auto& p : audit.programs) {
    seen.insert(stdfs::path(p).filename().string());
  }
  for (const char* expected : {"grep", "df", "date"}) {
    CHECK(seen.count(expected) == 1);
  }
  INFO("mutations:\n" << text::join(audit.mutations, "\n"));
  CHECK(audit.mutations.empty());
  // No file under the host's own directories appeared, vanished or changed.
  std::vector<std::string> changed;
  for (const auto& [path, sum] : after) {
    if (before.count(path) == 0 || before.at(path) != sum) {
      changed.push_back(path);
    }
  }
  for (const auto& [path, sum] : before) {
    if (after.count(path) == 0) {
      changed.push_back(path + " (removed)");
    }
  }
  INFO("changed: " << text::join(changed, ", "));
  CHECK(changed.empty());
}
