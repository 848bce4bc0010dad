// The audit stand-in's records read back (testbed.sh audit HOST on runs every SSH session under
// strace): which programs ran and whether any of them, or any system call, changed the host. Shared
// by the doctor audit test and the install tests (a rerun of install must change nothing).
#pragma once

#include "support/catch.hpp"

#include "integration/testbed.hpp"
#include "util/sha256.hpp"
#include "util/text.hpp"

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>

namespace audit {

namespace stdfs = std::filesystem;
using namespace mlplat;

// The strings of an strace argument vector: ["cat", "/proc/swaps"] -> {cat, /proc/swaps}.
inline std::vector<std::string> strace_strings(const std::string& s)
{
  static const std::regex quoted("\"((?:[^\"\\\\]|\\\\.)*)\"");
  std::vector<std::string> out;
  for (auto it = std::sregex_iterator(s.begin(), s.end(), quoted); it != std::sregex_iterator(); ++it) {
    out.push_back((*it)[1].str());
  }
  return out;
}

inline bool any_of(const std::vector<std::string>& args, std::initializer_list<const char*> words)
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
inline std::vector<std::string> operands(const std::vector<std::string>& argv)
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
inline std::string mutation_of_exec(const std::vector<std::string>& argv)
{
  if (argv.empty()) {
    return "execve without argv";
  }
  const std::string prog = stdfs::path(argv[0]).filename().string();
  const std::vector<std::string> args(argv.begin() + 1, argv.end());
  static const std::set<std::string> read_only{
    "sh", "dash", "bash", "timeout", "env", "cat", "cmp", "sha256sum", "head", "tail", "grep", "egrep", "cut", "tr", "sort", "uniq",
    "wc", "printf", "echo", "test", "[", "basename", "dirname", "uname", "getconf", "id", "stat", "df", "ls",
    "readlink", "realpath", "ss", "getent", "nproc", "true", "false", "od", "expr", "wc", "awk", "mawk", "sleep",
    "diff",   // diff compares and prints, it writes no file (kubectl diff runs it)
    "iptables-save", "ip6tables-save", "base64",  // print; base64 decodes stdin to stdout  // print the rules (reset's check); restoring them is iptables-restore
    "sudo"};  // runs the next program as root; what that and sudo itself do is traced like the rest
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
    for (size_t i = 0; i < args.size(); ++i) {
      const auto& a = args[i];
      if (a == "-d" || a == "--date" || a == "-r" || a == "--reference") {
        ++i;  // the date (or file) to print, not one to set
      } else if (a == "-s" || a.rfind("--set", 0) == 0 || (a[0] != '-' && a[0] != '+')) {
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
  if (prog == "containerd" || prog == "kubelet" || prog == "runc" || prog == "crictl") {
    return args == std::vector<std::string>{"--version"} ? "" : prog + " " + text::join(args, " ");
  }
  if (prog == "systemd-run") {
    // The cluster lock's heartbeat (see workflow/remote_lock.hpp), and nothing else.
    for (size_t i = 1; i + 1 < argv.size(); ++i) {
      if (argv[i] == "--unit" && argv[i + 1].rfind("mlplat-lock-", 0) == 0) {
        return "";
      }
    }
    return "systemd-run " + text::join(args, " ");
  }
  if (prog == "nft") {
    const auto words = operands(argv);
    return !words.empty() && words[0] == "list" ? "" : "nft " + text::join(words, " ");
  }
  if (prog == "flock") {
    return "";  // takes a lock; changes no file by itself
  }
  if (prog == "kubeadm") {
    const auto words = operands(argv);
    const bool reads = !words.empty() && (words[0] == "version" || (words.size() > 1 && words[0] == "config" && words[1] == "validate") ||
                                          (words.size() > 1 && words[0] == "token" && words[1] == "list"));
    return reads ? "" : prog + " " + text::join(args, " ");
  }
  if (prog == "istioctl") {
    std::vector<std::string> words;  // the option values (--kubeconfig FILE, -f FILE) skipped
    for (size_t i = 1; i < argv.size(); ++i) {
      if (argv[i] == "--kubeconfig" || argv[i] == "-f") {
        ++i;
      } else if (argv[i].empty() || argv[i][0] != '-') {
        words.push_back(argv[i]);
      }
    }
    const bool reads = !words.empty() && (words[0] == "version" || (words.size() > 1 && words[0] == "manifest" && words[1] == "generate"));
    return reads ? "" : prog + " " + text::join(args, " ");
  }
  if (prog == "kubectl") {
    // Verbs that only read the cluster (the options' values are skipped: --kubeconfig FILE and such).
    std::vector<std::string> words;
    for (size_t i = 1; i < argv.size(); ++i) {
      if (argv[i] == "--kubeconfig" || argv[i] == "-n" || argv[i] == "--namespace" || argv[i] == "-o" || argv[i] == "--cache-dir") {
        ++i;
      } else if (argv[i].empty() || argv[i][0] != '-') {
        words.push_back(argv[i]);
      }
    }
    static const std::set<std::string> reads{"version", "get", "wait", "kustomize", "describe", "diff", "logs"};
    const bool read_only_verb = !words.empty() && (reads.count(words[0]) != 0 || (words[0] == "rollout" && words.size() > 1 && words[1] == "status"));
    return read_only_verb ? "" : prog + " " + text::join(args, " ");
  }
  return "unknown program " + argv[0] + " (not on the read-only list)";
}

// Where the cluster lock on the first control plane lives (workflow/remote_lock.hpp): writes there are
// the one change every run makes, even one that changes nothing else; the audit allows exactly that.
inline constexpr const char* k_lock_files = "/var/lib/mlplat/locks";
// kubectl's cache directory on the hosts (workflow::kubectl() passes it as --cache-dir).
inline constexpr const char* k_kubectl_cache = "/var/lib/mlplat/kubectl-cache/";

struct Audit {
  std::vector<std::string> programs;   // every program executed
  std::vector<std::string> mutations;  // what would change the host, with the trace line
  std::vector<std::string> command_lines;  // each session's command as sshd got it, and every argv executed
  size_t sessions = 0;
};

// Reads every trace the audit stand-in wrote and judges each line.
inline Audit read_audit(const std::string& host)
{
  Audit audit;
  static const std::regex exec_line("execve\\(\"([^\"]*)\", \\[(.*?)\\]");
  static const std::regex open_line("open(at)?\\((AT_FDCWD, )?\"([^\"]*)\", ([A-Z_|]+)");
  static const std::regex change_line("\\b(creat|unlink|unlinkat|rename|renameat|renameat2|mkdir|mkdirat|rmdir|chmod|fchmod|fchmodat|"
                                      "chown|fchown|fchownat|lchown|truncate|ftruncate|link|linkat|symlink|symlinkat|mount|"
                                      "umount2|sethostname|setdomainname|init_module|finit_module|delete_module|swapon|swapoff|reboot)\\(");
  const stdfs::path dir = testbed::dir() + "/hosts/" + host + "/run/mlplat-audit";
  if (!stdfs::exists(dir)) {
    return audit;
  }
  for (const auto& entry : stdfs::directory_iterator(dir)) {
    if (entry.path().extension() == ".cmd") {
      std::ifstream cmd(entry.path());
      audit.command_lines.emplace_back(std::istreambuf_iterator<char>(cmd), std::istreambuf_iterator<char>());
      continue;
    }
    if (entry.path().extension() != ".trace") {
      continue;
    }
    ++audit.sessions;
    std::ifstream in(entry.path());
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) {
      lines.push_back(line);
    }
    // Processes whose work is the lock's transient service request (systemd-run of an mlplat-lock-
    // unit) and their children: not the host's change, the lock's (see k_lock_files). Two passes:
    // processes' lines interleave, a child's may come before its parent's fork result.
    static const std::regex fork_line("^(\\d+) +(?:<\\.\\.\\. )?(?:clone|clone3|fork|vfork)(?:\\(| resumed>).*\\) += (\\d+)");
    std::multimap<std::string, std::string> children;
    std::set<std::string> lock_pids;
    for (const auto& line : lines) {
      std::smatch m;
      if (std::regex_search(line, m, fork_line)) {
        children.emplace(m[1].str(), m[2].str());
      } else if (line.find("execve(") != std::string::npos && line.find("\"--unit\", \"mlplat-lock-") != std::string::npos) {
        lock_pids.insert(line.substr(0, line.find(' ')));
      }
    }
    // Processes of a read-only kubectl (get, diff, wait, ...) and their children. kubectl keeps its
    // HTTP cache of the API's discovery documents in --cache-dir (mlplat gives it k_kubectl_cache) and
    // refreshes it on every run (diskv: a temporary file, fchmod, rename); `kubectl diff` writes the
    // live and the merged objects into two directories of its own under $TMPDIR (LIVE-*, MERGED-*),
    // runs diff on them and removes both before it exits (staging/src/k8s.io/kubectl/pkg/cmd/diff/
    // diff.go: CreateDirectory, Delete). That cache and that scratch work are allowed to them, and
    // nothing else.
    std::set<std::string> kubectl_pids;
    for (const auto& line : lines) {
      std::smatch m;
      if (std::regex_search(line, m, exec_line) && line.find(" = -1 ") == std::string::npos) {
        const auto argv = strace_strings("[" + m[2].str() + "]");
        if (!argv.empty() && stdfs::path(argv[0]).filename() == "kubectl" && mutation_of_exec(argv).empty()) {
          kubectl_pids.insert(line.substr(0, line.find(' ')));
        }
      }
    }
    for (auto* pids : {&lock_pids, &kubectl_pids}) {
      for (std::vector<std::string> todo(pids->begin(), pids->end()); !todo.empty();) {
        const std::string pid = todo.back();
        todo.pop_back();
        for (auto [it, last] = children.equal_range(pid); it != last; ++it) {
          if (pids->insert(it->second).second) {
            todo.push_back(it->second);
          }
        }
      }
    }
    static const std::regex kubectl_scratch(
      "\\b(openat|mkdirat|mkdir|unlinkat)\\((AT_FDCWD, )?\"/tmp/(LIVE|MERGED)-[0-9]+[/\"]|\\bunlinkat\\([0-9]+, \"|\\bfchmod\\([0-9]+, ");
    for (const auto& line : lines) {
      std::smatch m;
      if (std::regex_search(line, m, fork_line)) {
        continue;
      }
      if (lock_pids.count(line.substr(0, line.find(' '))) != 0) {
        if (std::regex_search(line, m, exec_line)) { // still recorded: the canary test reads every command line
          audit.programs.push_back(m[1].str());
          audit.command_lines.push_back(text::join(strace_strings("[" + m[2].str() + "]"), " "));
        }
        continue;
      }
      if (kubectl_pids.count(line.substr(0, line.find(' '))) != 0 &&
          (line.find(k_kubectl_cache) != std::string::npos || std::regex_search(line, kubectl_scratch))) {
        continue; // kubectl's cache and diff's scratch directories (see kubectl_pids)
      }
      if (std::regex_search(line, m, exec_line)) {
        const auto argv = strace_strings("[" + m[2].str() + "]");
        audit.programs.push_back(m[1].str());
        audit.command_lines.push_back(text::join(argv, " "));
        if (line.find(k_lock_files) != std::string::npos) {
          continue; // the cluster lock's bookkeeping: every run takes and releases it, and nothing else
        }
        if (line.find("= -1 ENOENT") != std::string::npos) {
          continue; // a PATH lookup that found nothing ran nothing
        }
        if (const auto why = mutation_of_exec(argv); !why.empty()) {
          audit.mutations.push_back(why + ": " + line);
        }
      } else if (line.find(k_lock_files) != std::string::npos) {
        continue; // as above: the lock's own files
      } else if (line.find(" = -1 ") != std::string::npos) {
        continue; // a system call that failed changed nothing (mkdir -p on a directory that exists)
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

inline void clear_audit(const std::string& host)
{
  // Emptied, not removed: the host made it at boot, writable by every login.
  const std::string dir = testbed::dir() + "/hosts/" + host + "/run/mlplat-audit";
  if (stdfs::exists(dir)) {
    for (const auto& e : stdfs::directory_iterator(dir)) {
      stdfs::remove_all(e.path());
    }
  }
}

// sha256 of every file (and the list of every path) under the host's own directories.
inline std::map<std::string, std::string> snapshot(const std::string& host)
{
  const std::string host_dir = testbed::dir() + "/hosts/" + host;
  std::map<std::string, std::string> out;
  for (const char* sub : {"upper", "roothome", "home", "tmp"}) {
    const stdfs::path root = host_dir + "/" + sub;
    for (auto it = stdfs::recursive_directory_iterator(root); it != stdfs::recursive_directory_iterator(); ++it) {
      const auto rel = stdfs::relative(it->path(), host_dir).string();
      if (it->is_regular_file()) {
        out[rel] = *sha256_file_hex(it->path());
      } else {
        out[rel] = it->is_directory() ? "dir" : "other";
      }
    }
  }
  return out;
}

} // namespace audit
