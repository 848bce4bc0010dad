// doctor is strictly read-only, shown two ways on node-78:
// 1. the audit stand-in (testbed.sh audit) runs every SSH session under strace; every program
//    executed must be a known read-only one (with read-only arguments) and no file-changing system
//    call may be attempted outside /dev/null;
// 2. nothing under the host's own directories (its overlay upper layers, /root, /home, /tmp) changes.
// A negative control first proves the audit catches a mutating command.
#include "support/catch.hpp"

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

std::string host_dir()
{
  return testbed::dir() + "/hosts/" + k_host;
}

// The strings of an strace argument vector: ["cat", "/proc/swaps"] -> {cat, /proc/swaps}.
std::vector<std::string> strace_strings(const std::string& s)
{
  static const std::regex quoted("\"((?:[^\"\\\\]|\\\\.)*)\"");
  std::vector<std::string> out;
  for (auto it = std::sregex_iterator(s.begin(), s.end(), quoted); it != std::sregex_iterator(); ++it) {
    out.push_back((*it)[1].str());
  }
  return out;
}

bool any_of(const std::vector<std::string>& args, std::initializer_list<const char*> words)
{
  for (const auto& a : args) {
    for (const char* w : words) {
      if (a == w) {
        return true;
      }
    }
  }
  return false;
}

// Arguments after argv[0] that do not start with '-'.
std::vector<std::string> operands(const std::vector<std::string>& argv)
{
  std::vector<std::string> out;
  for (size_t i = 1; i < argv.size(); ++i) {
    if (argv[i].empty() || argv[i][0] != '-') {
      out.push_back(argv[i]);
    }
  }
  return out;
}

// Why running `argv` would change the host, or "" when it is a read-only use of a known program.
std::string mutation_of_exec(const std::vector<std::string>& argv)
{
  if (argv.empty()) {
    return "execve without argv";
  }
  const std::string prog = stdfs::path(argv[0]).filename().string();
  const std::vector<std::string> args(argv.begin() + 1, argv.end());
  static const std::set<std::string> read_only{
    "sh", "dash", "bash", "timeout", "env", "cat", "head", "tail", "grep", "egrep", "cut", "tr", "sort", "uniq",
    "wc", "printf", "echo", "test", "[", "basename", "dirname", "uname", "getconf", "id", "stat", "df", "ls",
    "readlink", "realpath", "ss", "getent", "nproc", "true", "false", "od", "expr"};
  if (read_only.count(prog) != 0) {
    return "";
  }
  if (prog == "sed") {
    return any_of(args, {"-i", "--in-place"}) ? "sed editing in place" : "";
  }
  if (prog == "awk" || prog == "mawk" || prog == "gawk") {
    return any_of(args, {"-i", "inplace"}) ? "awk editing in place" : "";
  }
  if (prog == "hostname") {
    return operands(argv).empty() ? "" : "hostname setting a name";
  }
  if (prog == "date") {
    for (const auto& a : args) {
      if (a == "-s" || a.rfind("--set", 0) == 0 || (a[0] != '-' && a[0] != '+')) {
        return "date setting the clock";
      }
    }
    return "";
  }
  if (prog == "ip") {
    const auto words = operands(argv);
    static const std::set<std::string> objects{"addr", "address", "a", "route", "r", "link", "l"};
    static const std::set<std::string> reads{"show", "list", "ls", "get"};
    if (!words.empty() && objects.count(words[0]) != 0 && (words.size() == 1 || reads.count(words[1]) != 0)) {
      return "";
    }
    return "ip " + text::join(words, " ");
  }
  if (prog == "sysctl") {
    for (const auto& a : args) {
      if (a == "-w" || a == "--write" || a == "-p" || a == "--load" || a == "--system" || a.find('=') != std::string::npos) {
        return "sysctl writing";
      }
    }
    return "";
  }
  if (prog == "modprobe") {
    return any_of(args, {"-n", "--dry-run"}) ? "" : "modprobe loading a module";
  }
  if (prog == "systemctl") {
    const auto words = operands(argv);
    return !words.empty() && (words[0] == "is-active" || words[0] == "is-enabled" || words[0] == "show" || words[0] == "status")
             ? ""
             : "systemctl " + text::join(words, " ");
  }
  if (prog == "containerd" || prog == "kubelet") {
    return args == std::vector<std::string>{"--version"} ? "" : prog + " run";
  }
  return "unknown program " + argv[0] + " (not on the read-only list)";
}

struct Audit {
  std::vector<std::string> programs;   // every program executed
  std::vector<std::string> mutations;  // what would change the host, with the trace line
  size_t sessions = 0;
};

// Reads every trace the audit stand-in wrote and judges each line.
Audit read_audit()
{
  Audit audit;
  static const std::regex exec_line("execve\\(\"([^\"]*)\", \\[(.*?)\\]");
  static const std::regex open_line("open(at)?\\((AT_FDCWD, )?\"([^\"]*)\", ([A-Z_|]+)");
  static const std::regex change_line("\\b(creat|unlink|unlinkat|rename|renameat|renameat2|mkdir|mkdirat|rmdir|chmod|fchmod|fchmodat|"
                                      "chown|fchown|fchownat|lchown|truncate|ftruncate|link|linkat|symlink|symlinkat|mount|"
                                      "umount2|sethostname|setdomainname|init_module|finit_module|delete_module|swapon|swapoff|reboot)\\(");
  const stdfs::path dir = host_dir() + "/run/mlplat-audit";
  if (!stdfs::exists(dir)) {
    return audit;
  }
  for (const auto& entry : stdfs::directory_iterator(dir)) {
    if (entry.path().extension() != ".trace") {
      continue;
    }
    ++audit.sessions;
    std::ifstream in(entry.path());
    for (std::string line; std::getline(in, line);) {
      std::smatch m;
      if (std::regex_search(line, m, exec_line)) {
        const auto argv = strace_strings("[" + m[2].str() + "]");
        audit.programs.push_back(m[1].str());
        if (line.find("= -1 ENOENT") != std::string::npos) {
          continue; // a PATH lookup that found nothing ran nothing
        }
        if (const auto why = mutation_of_exec(argv); !why.empty()) {
          audit.mutations.push_back(why + ": " + line);
        }
      } else if (std::regex_search(line, m, open_line)) {
        const std::string path = m[3].str();
        const std::string flags = m[4].str();
        const bool writes = flags.find("O_WRONLY") != std::string::npos || flags.find("O_RDWR") != std::string::npos ||
                            flags.find("O_CREAT") != std::string::npos || flags.find("O_TRUNC") != std::string::npos ||
                            flags.find("O_APPEND") != std::string::npos;
        if (writes && path != "/dev/null") {
          audit.mutations.push_back("opens for writing: " + line);
        }
      } else if (std::regex_search(line, m, change_line)) {
        audit.mutations.push_back(m[1].str() + ": " + line);
      }
    }
  }
  return audit;
}

void clear_audit()
{
  stdfs::remove_all(host_dir() + "/run/mlplat-audit");
}

// sha256 of every file (and the list of every path) under the host's own directories.
std::map<std::string, std::string> snapshot()
{
  std::map<std::string, std::string> out;
  for (const char* sub : {"upper", "roothome", "home", "tmp"}) {
    const stdfs::path root = host_dir() + "/" + sub;
    for (auto it = stdfs::recursive_directory_iterator(root); it != stdfs::recursive_directory_iterator(); ++it) {
      const auto rel = stdfs::relative(it->path(), host_dir()).string();
      if (it->is_regular_file()) {
        out[rel] = *sha256_file_hex(it->path());
      } else {
        out[rel] = it->is_directory() ? "dir" : "other";
      }
    }
  }
  return out;
}

std::string cluster_file()
{
  const std::string dir = testbed::temp_dir("audit");
  const std::string text = "apiVersion: mlplat.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: audit\nspec:\n  ssh:\n    keyPath: " +
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
  clear_audit();
  auto ep = testbed::endpoint(k_index);
  auto session = transport::Session::connect(ep);
  REQUIRE(session);
  transport::Command touch;
  touch.script = "touch /tmp/mlplat-audit-canary; hostname other-name; ip route add 10.98.0.0/16 dev eth0; sysctl -w vm.swappiness=1";
  touch.description = "negative control";
  REQUIRE((*session)->exec(touch));
  const auto control = read_audit();
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
  clear_audit();
  const auto before = snapshot();
  const auto r = run_process({MLPLAT_BINARY, "doctor", "-c", cluster_file(), "--output", "json"}, 120s);
  REQUIRE(r);
  INFO(r->err);
  CHECK(r->exit_code == 0);
  const auto after = snapshot();
  const auto audit = read_audit();
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
