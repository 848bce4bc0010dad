// The mlplat binary as a user meets it: commands, exit codes, messages, files it writes.
#include "support/catch.hpp"

#include "integration/testbed.hpp"
#include "util/fs.hpp"
#include "util/text.hpp"

#include <nlohmann/json.hpp>
#include <sys/stat.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>

#include <unistd.h>

using namespace mlplat;
using namespace std::chrono_literals;

namespace {

ProcessResult mlplat_run(std::vector<std::string> args)
{
  args.insert(args.begin(), MLPLAT_BINARY);
  auto r = run_process(args, 120s);
  REQUIRE(r);
  return *r;
}

bool contains(const std::string& haystack, const std::string& needle)
{
  return haystack.find(needle) != std::string::npos;
}

// A cluster file for testbed hosts `nodes`, with the given known_hosts file.
std::string write_cluster(const std::string& dir, const std::vector<int>& nodes, const std::string& known_hosts)
{
  std::string text = "apiVersion: mlplat.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: cli-test\nspec:\n  ssh:\n"
                     "    keyPath: " + testbed::key() + "\n    knownHosts: " + known_hosts + "\n    connectTimeoutSeconds: 2\n  hosts:\n";
  for (size_t i = 0; i < nodes.size(); ++i) {
    text += "    - name: node-" + std::to_string(nodes[i]) + "\n      address: " +
            (nodes[i] > 0 ? testbed::address(nodes[i]) : testbed::net() + ".251") + "\n      role: " +
            (i == 0 ? "control-plane" : "worker") + "\n";
  }
  const std::string path = dir + "/mlplat.yaml";
  REQUIRE(fs::write_file_atomic(path, text, 0644));
  return path;
}

} // namespace

TEST_CASE("mlplat --help lists every command and the exit codes", "[cli]")
{
  const auto r = mlplat_run({"--help"});
  CHECK(r.exit_code == 0);
  for (const char* cmd : {"init", "doctor", "plan", "install", "status", "kubeconfig", "reset", "upgrade", "certs",
                          "matrix", "bundle", "version"}) {
    CHECK(contains(r.out, std::string("  ") + cmd + " "));
  }
  CHECK(contains(r.out, "5 host key not trusted"));
}

TEST_CASE("install --help and plan --help list the phases by path, in order", "[cli]")
{
  for (const char* cmd : {"install", "plan"}) {
    const auto r = mlplat_run({cmd, "--help"});
    CHECK(r.exit_code == 0);
    size_t at = 0;
    for (const char* path : {"host/prepare", "host/artifacts", "host/containerd", "cluster/init", "cluster/join-control-planes",
                             "cluster/join-workers", "cluster/kubeconfig", "cluster/nodes", "cluster/cni", "cluster/storage",
                             "cluster/cleanup", "platform/pipelines", "platform/istio", "platform/tls", "platform/gateway",
                             "platform/smoke"}) {
      const auto found = r.out.find(std::string("\n  ") + path + " ", at);
      INFO(cmd << ": " << path << "\n" << r.out);
      CHECK(found != std::string::npos);
      at = found == std::string::npos ? at : found;
    }
  }
}

TEST_CASE("commands not built yet say so and exit 1", "[cli]")
{
  for (const char* cmd : {"upgrade"}) {
    const auto r = mlplat_run({cmd});
    CHECK(r.exit_code == 1);
    CHECK(contains(r.err, std::string("'mlplat ") + cmd + "' is not built yet"));
    CHECK(r.out.empty());
  }
}

TEST_CASE("certs needs show or rotate, and show without an install says what to do", "[cli]")
{
  const auto bare = mlplat_run({"certs"});
  CHECK(bare.exit_code == 2);
  CHECK(contains(bare.err, "A subcommand is required"));
  const std::string dir = testbed::temp_dir("cli-certs");
  const std::string file = dir + "/mlplat.yaml";
  REQUIRE(fs::write_file_atomic(file, "apiVersion: mlplat.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: certs-test\nspec:\n  ssh: {agent: true}\n  hosts:\n"
                                      "    - {name: cp, address: 192.0.2.10, role: control-plane}\n", 0644));
  const auto show = mlplat_run({"certs", "show", "-c", file, "--state-dir", dir + "/state"});
  CHECK(show.exit_code != 0);
  CHECK(contains(show.err, dir + "/state/tls/server.crt"));
  CHECK(contains(show.err, "mlplat install issues the ingress certificate"));
}

TEST_CASE("usage errors exit 2", "[cli]")
{
  CHECK(mlplat_run({}).exit_code == 2);
  CHECK(mlplat_run({"init", "--profile=aws"}).exit_code == 2);
  CHECK(mlplat_run({"version", "--output", "yaml"}).exit_code == 2);
  const auto missing = mlplat_run({"version", "--data-dir", "/nonexistent/mlplat-data"});
  CHECK(missing.exit_code == 2);
  CHECK(contains(missing.err, "/nonexistent/mlplat-data"));
}

TEST_CASE("a data directory overrides embedded data file by file", "[cli]")
{
  const std::string dir = testbed::temp_dir("cli-datadir");
  REQUIRE(fs::ensure_private_dir(dir + "/data/profiles/gcp"));
  REQUIRE(fs::write_file_atomic(dir + "/data/profiles/gcp/starter.yaml", "# site starter\n", 0644));
  CHECK(mlplat_run({"init", "--profile=gcp", "-c", dir + "/gcp.yaml", "--data-dir", dir + "/data"}).exit_code == 0);
  CHECK(*fs::read_file(dir + "/gcp.yaml") == "# site starter\n");
  // A file the directory does not have still comes from the binary.
  CHECK(mlplat_run({"init", "--profile=onprem", "-c", dir + "/onprem.yaml", "--data-dir", dir + "/data"}).exit_code == 0);
  CHECK(contains(*fs::read_file(dir + "/onprem.yaml"), "profile: onprem"));
}

TEST_CASE("init writes a starter, refuses to overwrite it, and --force replaces it", "[cli]")
{
  const std::string dir = testbed::temp_dir("cli-init");
  const std::string file = dir + "/mlplat.yaml";
  auto first = mlplat_run({"init", "--profile=ibm-vpc", "-c", file});
  CHECK(first.exit_code == 0);
  const auto written = fs::read_file(file);
  REQUIRE(written);
  CHECK(contains(*written, "profile: ibm-vpc"));
  { std::ofstream(file, std::ios::app) << "# my edits\n"; }
  auto second = mlplat_run({"init", "--profile=gcp", "-c", file});
  CHECK(second.exit_code == 2);
  CHECK(contains(second.err, "already exists"));
  CHECK(contains(*fs::read_file(file), "# my edits")); // untouched
  auto forced = mlplat_run({"init", "--profile=gcp", "-c", file, "--force"});
  CHECK(forced.exit_code == 0);
  CHECK(contains(*fs::read_file(file), "profile: gcp"));
}

TEST_CASE("a bad cluster file exits 2 before any connection, naming file:line:column", "[cli]")
{
  const std::string dir = testbed::temp_dir("cli-bad");
  const std::string file = dir + "/bad.yaml";
  REQUIRE(fs::write_file_atomic(file, "apiVersion: mlplat.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: x\nspec:\n  hostz: []\n", 0644));
  const auto r = mlplat_run({"facts", "-c", file});
  CHECK(r.exit_code == 2);
  CHECK(contains(r.err, file + ":6:3: spec: unknown key 'hostz'"));
  CHECK(contains(r.err, "did you mean 'hosts'?"));
  const auto json = mlplat_run({"facts", "-c", file, "--output", "json"});
  CHECK(json.exit_code == 2);
  const auto parsed = nlohmann::json::parse(json.out);
  CHECK(parsed["error"]["exitCode"] == 2);
  CHECK(parsed["error"]["errors"][0]["line"] == 6);
  CHECK(parsed["error"]["errors"][0]["column"] == 3);
}

TEST_CASE("facts shows every host of the testbed, as text and as JSON", "[cli]")
{
  const std::string dir = testbed::temp_dir("cli-facts");
  const std::string file = write_cluster(dir, {61, 62, 63}, testbed::known_hosts());
  const auto text = mlplat_run({"facts", "-c", file, "--log-file", dir + "/run.log", "-v"});
  INFO(text.err);
  CHECK(text.exit_code == 0);
  for (int n : {61, 62, 63}) {
    CHECK(contains(text.out, "node-" + std::to_string(n) + " "));
  }
  CHECK(contains(text.out, "debian 12"));
  struct stat st {};
  REQUIRE(::stat((dir + "/run.log").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(contains(*fs::read_file(dir + "/run.log"), "node-62: run: "));

  const auto json = mlplat_run({"facts", "-c", file, "--output", "json"});
  CHECK(json.exit_code == 0);
  const auto parsed = nlohmann::json::parse(json.out);
  REQUIRE(parsed["hosts"].size() == 3);
  CHECK(parsed["hosts"][1]["name"] == "node-62");
  CHECK(parsed["hosts"][1]["facts"]["hostname"] == "node-62");
  CHECK(parsed["hosts"][1]["facts"]["os.id"] == "debian");
  CHECK(parsed["hosts"][0]["facts"]["machine_id"] != parsed["hosts"][1]["facts"]["machine_id"]);
}

TEST_CASE("facts exits 4 when a host is unreachable, still showing the others", "[cli]")
{
  const std::string dir = testbed::temp_dir("cli-unreachable");
  const std::string file = write_cluster(dir, {61, 0}, testbed::known_hosts());
  const auto r = mlplat_run({"facts", "-c", file});
  CHECK(r.exit_code == 4);
  CHECK(contains(r.out, "node-61 "));
  CHECK(contains(r.out, "unreachable"));
  CHECK(contains(r.err, "1 of 2 hosts failed"));
}

TEST_CASE("facts exits 5 when a host key is not trusted", "[cli]")
{
  const std::string dir = testbed::temp_dir("cli-hostkey");
  REQUIRE(fs::write_file_atomic(dir + "/known_hosts", "", 0600));
  const std::string file = write_cluster(dir, {64}, dir + "/known_hosts");
  const auto r = mlplat_run({"facts", "-c", file});
  CHECK(r.exit_code == 5);
  CHECK(contains(r.err, "is not in " + dir + "/known_hosts and hostKeyPolicy is strict"));
}

TEST_CASE("SIGTERM during a run stops it promptly with exit 143 (128 + SIGTERM)", "[cli]")
{
  const std::string dir = testbed::temp_dir("cli-interrupt");
  // No host at that address: connecting fails and is retried with backoff, which is where the
  // signal arrives.
  const std::string file = write_cluster(dir, {0}, testbed::known_hosts());
  const auto start = std::chrono::steady_clock::now();
  const auto r = run_process({"sh", "-c", std::string(MLPLAT_BINARY) + " facts -c " + file +
                                            " & pid=$!; sleep 1; kill -TERM $pid; wait $pid; echo rc=$?"}, 60s);
  const auto took = std::chrono::steady_clock::now() - start;
  REQUIRE(r);
  CHECK(contains(r->out, "rc=143"));
  CHECK(contains(r->err, "interrupted"));
  CHECK(took < 8s); // the connect timeout is 2 s; the backoff sleep notices the signal at once
}

TEST_CASE("matrix shows its rows as a table and as JSON", "[cli][matrix]")
{
  const auto table = mlplat_run({"matrix"});
  CHECK(table.exit_code == 0);
  CHECK(contains(table.out, "k8s-1.36"));
  CHECK(contains(table.out, "preview"));
  const auto json = mlplat_run({"matrix", "--output", "json"});
  REQUIRE(json.exit_code == 0);
  const auto j = nlohmann::json::parse(json.out);
  CHECK(j["defaultRow"] == "k8s-1.36");
  REQUIRE(j["rows"].size() == 3);
  for (const auto& row : j["rows"]) {
    for (const auto& a : row["artifacts"]) {
      CHECK((a.contains("sha256") || a.contains("checksumUrl") || a.contains("unpinned")));
    }
  }
  const auto one = mlplat_run({"matrix", "--row", "k8s-1.35", "--output", "json"});
  CHECK(nlohmann::json::parse(one.out)["rows"].size() == 1);
  const auto bad = mlplat_run({"matrix", "--row", "k8s-1.20"});
  CHECK(bad.exit_code == 2);
  CHECK(contains(bad.err, "rows: k8s-1.36, k8s-1.35, k8s-1.37"));
}

TEST_CASE("matrix check judges the cluster file before any connection, with row, rule and what is supported", "[cli][matrix]")
{
  const std::string dir = testbed::temp_dir("cli-matrix");
  // The hosts do not exist: matrix check must not connect to them.
  std::string base = "apiVersion: mlplat.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: m\nspec:\n  ssh:\n    keyPath: " +
                     testbed::key() + "\n  hosts:\n    - {name: cp, address: " + testbed::net() + ".252, role: control-plane}\n";
  REQUIRE(fs::write_file_atomic(dir + "/ok.yaml", base, 0644));
  const auto ok = mlplat_run({"matrix", "check", "-c", dir + "/ok.yaml"});
  CHECK(ok.exit_code == 0);
  CHECK(contains(ok.out, "row k8s-1.36"));

  REQUIRE(fs::write_file_atomic(dir + "/istio.yaml", base + "  versions:\n    istio: \"1.30.2\"\n", 0644));
  const auto istio = mlplat_run({"matrix", "check", "-c", dir + "/istio.yaml", "--output", "json"});
  CHECK(istio.exit_code == 3);
  const auto j = nlohmann::json::parse(istio.out);
  CHECK(j["passed"] == false);
  bool refused = false;
  for (const auto& f : j["findings"]) {
    if (f["rule"] == "MAT-002" && f["level"] == "error") {
      refused = true;
      CHECK(f["row"] == "k8s-1.36");
      CHECK(f["supportedInstead"].get<std::string>().rfind("istio 1.31.0", 0) == 0);
    }
  }
  CHECK(refused);

  REQUIRE(fs::write_file_atomic(dir + "/preview.yaml", base + "  versions:\n    kubernetes: \"1.37\"\n", 0644));
  const auto preview = mlplat_run({"matrix", "check", "-c", dir + "/preview.yaml"});
  CHECK(preview.exit_code == 3);
  CHECK(contains(preview.out, "MAT-004"));
  CHECK(contains(preview.out, "istio 1.31.0 supports Kubernetes >=1.32 <=1.36, not 1.37"));
  CHECK(mlplat_run({"matrix", "check", "-c", dir + "/preview.yaml", "--allow-preview"}).exit_code == 0);

  // install runs the same gate first, before any connection: the host (.252) does not exist, and a
  // connection attempt would end in exit 4, not 3.
  const auto install = mlplat_run({"install", "-c", dir + "/istio.yaml"});
  CHECK(install.exit_code == 3);
  CHECK(contains(install.out, "MAT-002"));
  CHECK(contains(install.err, "the compatibility gate 'config' refused 1 thing(s); nothing was changed"));
  CHECK_FALSE(contains(install.err, "checking 1 host"));
}

TEST_CASE("a --matrix file replaces the built-in matrix, a broken one exits 2 with file:line:column", "[cli][matrix]")
{
  const std::string dir = testbed::temp_dir("cli-matrix-file");
  const auto shipped = fs::read_file(std::string(MLPLAT_SOURCE_DIR) + "/manifests/matrix.yaml");
  REQUIRE(shipped);
  std::string broken = *shipped;
  const auto pos = broken.find("containerdConfigVersion: 3");
  REQUIRE(pos != std::string::npos);
  broken.replace(pos, 26, "containerdConfigVersion: 7");
  REQUIRE(fs::write_file_atomic(dir + "/matrix.yaml", broken, 0644));
  const auto r = mlplat_run({"matrix", "--matrix", dir + "/matrix.yaml"});
  CHECK(r.exit_code == 2);
  int line = 1;
  for (size_t i = 0; i < pos; ++i) {
    line += broken[i] == '\n' ? 1 : 0;
  }
  CHECK(contains(r.err, dir + "/matrix.yaml:" + std::to_string(line) + ":30:"));
  CHECK(mlplat_run({"matrix", "--matrix", dir + "/none.yaml"}).exit_code == 2);
}

TEST_CASE("every 'mlplat <command>' the binary's messages and fixes name is a command that exists", "[cli]")
{
  // Read from the binary itself (its strings and the data built into it), so a fix added anywhere is
  // covered; words after "mlplat" in prose ("mlplat will not ...") are listed here as prose.
  const auto strings = run_process({"strings", "-n", "6", MLPLAT_BINARY}, std::chrono::seconds(30));
  REQUIRE(strings);
  REQUIRE(strings->exit_code == 0);
  const auto help = mlplat_run({"--help"});
  REQUIRE(help.exit_code == 0);
  std::set<std::string> built;
  bool in_subcommands = false;
  for (const auto& line : text::split(help.out, '\n')) {
    if (line == "Subcommands:") {
      in_subcommands = true;
    } else if (in_subcommands && line.rfind("  ", 0) == 0) {
      const auto name = text::split(std::string(text::trim(line)), ' ').front();
      // A command not built yet refuses to run (the test above): it must not be the fix of anything.
      if (name != "upgrade") {
        built.insert(name);
      }
    } else if (in_subcommands && line.empty()) {
      in_subcommands = false;
    }
  }
  REQUIRE(built.count("install") == 1);
  REQUIRE(built.count("status") == 1);
  REQUIRE(built.count("reset") == 1);
  REQUIRE(built.count("remove-node") == 1);
  REQUIRE(built.count("upgrade") == 0);
  const std::set<std::string> prose{"will", "reads", "never", "builds", "writes", "rewrites", "ran", "put", "only", "on", "installed",
                                    "can", "sets", "fills", "from", "prepends", "manages", "interprets", "installs", "host", "does",
                                    "compatibility", "as", "cluster", "release", "releasemlplat", "join", "ingress", "set", "is", "itself",
                                    "keeps", "makes", "takes", "checks", "asks", "knows", "uses", "refuses", "and", "run", "runs", "with", "issues"};
  std::set<std::string> unknown;
  size_t named = 0;
  for (const auto& line : text::split(strings->out, '\n')) {
    for (size_t at = line.find("mlplat "); at != std::string::npos; at = line.find("mlplat ", at + 7)) {
      if (at > 0 && (std::isalnum(static_cast<unsigned char>(line[at - 1])) != 0 || line[at - 1] == '-' || line[at - 1] == '/')) {
        continue; // part of another word or a path
      }
      size_t end = at + 7;
      while (end < line.size() && (std::islower(static_cast<unsigned char>(line[end])) != 0 || line[end] == '-')) {
        ++end;
      }
      const std::string word = line.substr(at + 7, end - at - 7);
      if (word.empty() || prose.count(word) != 0) {
        continue;
      }
      ++named;
      if (built.count(word) == 0) {
        unknown.insert(word + " (in: " + line.substr(at, 80) + ")");
      }
    }
  }
  INFO("built: " << text::join(std::vector<std::string>(built.begin(), built.end()), ", "));
  INFO("named but not a built command: " << text::join(std::vector<std::string>(unknown.begin(), unknown.end()), "; "));
  CHECK(unknown.empty());
  CHECK(named >= 10); // the fixes name commands: bundle create, certs rotate, doctor, install, plan, ...
}

// --- The operator's experience across commands (no testbed host is needed by these) ---

namespace {

// A cluster file whose one host refuses connections at once (127.0.0.1, port 1), with a real key file.
std::string refusing_cluster(const std::string& dir, const std::string& name)
{
  if (!std::filesystem::exists(dir + "/key")) {
    REQUIRE(fs::write_file_atomic(dir + "/key", "not a key: only needs to exist\n", 0600));
  }
  const std::string text = "apiVersion: mlplat.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: " + name + "\nspec:\n  ssh:\n    keyPath: " + dir +
                           "/key\n    port: 1\n    connectTimeoutSeconds: 2\n  hosts:\n    - {name: cp, address: 127.0.0.1, role: control-plane}\n";
  const std::string path = dir + "/" + name + ".yaml";
  REQUIRE(fs::write_file_atomic(path, text, 0644));
  return path;
}

// "valid", or why `json` does not match docs/schemas/<schema> (Debian's python3-jsonschema).
std::string schema_check(const std::string& dir, const std::string& json, const std::string& schema)
{
  REQUIRE(fs::write_file_atomic(dir + "/doc.json", json, 0600));
  const auto v = run_process({"/usr/bin/python3", "-c",
                              "import json, sys, jsonschema\n"
                              "jsonschema.validate(json.load(open(sys.argv[1])), json.load(open(sys.argv[2])))\n"
                              "print('valid')",
                              dir + "/doc.json", std::string(MLPLAT_SOURCE_DIR) + "/docs/schemas/" + schema},
                             60s);
  REQUIRE(v);
  return v->exit_code == 0 ? std::string(text::trim(v->out)) : v->err;
}

} // namespace

TEST_CASE("mlplat --version prints what the version command prints", "[cli][ux]")
{
  const auto flag = mlplat_run({"--version"});
  const auto command = mlplat_run({"version"});
  CHECK(flag.exit_code == 0);
  CHECK(flag.out == command.out);
  CHECK(contains(flag.out, "mlplat "));
}

TEST_CASE("an unknown command, subcommand or flag exits 2 and names the closest one", "[cli][ux]")
{
  const auto cmd = mlplat_run({"instal"});
  CHECK(cmd.exit_code == 2);
  CHECK(contains(cmd.err, "unknown command 'instal' for 'mlplat': did you mean 'install'?"));
  const auto sub = mlplat_run({"certs", "rotat"});
  CHECK(sub.exit_code == 2);
  CHECK(contains(sub.err, "unknown command 'rotat' for 'mlplat certs': did you mean 'rotate'?"));
  const auto flag = mlplat_run({"plan", "--bundel", "b.tar.zst"});
  CHECK(flag.exit_code == 2);
  CHECK(contains(flag.err, "unknown flag '--bundel' for 'mlplat plan': did you mean '--bundle'?"));
  const auto global = mlplat_run({"--verson"});
  CHECK(global.exit_code == 2);
  CHECK(contains(global.err, "did you mean '--version'?"));
  const auto far = mlplat_run({"frobnicate"});
  CHECK(far.exit_code == 2);
  CHECK(contains(far.err, "unknown command 'frobnicate' for 'mlplat'; 'mlplat --help' lists them"));
}

TEST_CASE("completion bash is sourced by bash, registers mlplat and completes a prefix, and zsh -n accepts the zsh script", "[cli][ux]")
{
  const std::string dir = testbed::temp_dir("cli-completion");
  const auto bash = mlplat_run({"completion", "bash"});
  REQUIRE(bash.exit_code == 0);
  REQUIRE(fs::write_file_atomic(dir + "/mlplat.bash", bash.out, 0644));
  // The words typed so far in COMP_WORDS, the word being completed last; prints COMPREPLY.
  const std::string complete = "source \"$1\" || exit 9\ncomplete -p mlplat\nshift\nCOMP_WORDS=(\"$@\")\nCOMP_CWORD=$(($# - 1))\n"
                               "_mlplat_complete\necho \"reply: ${COMPREPLY[*]}\"\n";
  auto run = [&](std::vector<std::string> words) {
    std::vector<std::string> argv{"/bin/bash", "-c", complete, "bash", dir + "/mlplat.bash"};
    argv.insert(argv.end(), words.begin(), words.end());
    auto r = run_process(argv, 30s);
    REQUIRE(r);
    INFO(r->err);
    CHECK(r->exit_code == 0);
    return r->out;
  };
  const auto top = run({"mlplat", "cer"});
  CHECK(contains(top, "complete -F _mlplat_complete mlplat"));
  CHECK(contains(top, "reply: certs\n"));
  CHECK(contains(run({"mlplat", "certs", "r"}), "reply: rotate\n"));
  CHECK(contains(run({"mlplat", "install", "--bun"}), "reply: --bundle --bundle-url\n"));
  CHECK(contains(run({"mlplat", "-c", "x.yaml", "matrix", "--output", "json", "ch"}), "reply: check\n"));
  CHECK(contains(run({"mlplat", "--ou"}), "reply: --output\n"));
  CHECK(contains(run({"mlplat", "comp"}), "reply: completion\n"));

  const auto zsh = mlplat_run({"completion", "zsh"});
  REQUIRE(zsh.exit_code == 0);
  CHECK(zsh.out.rfind("#compdef mlplat\n", 0) == 0);
  CHECK(contains(zsh.out, "['mlplat certs']='show rotate'"));
  if (::access("/usr/bin/zsh", X_OK) == 0 || ::access("/bin/zsh", X_OK) == 0) {
    REQUIRE(fs::write_file_atomic(dir + "/_mlplat", zsh.out, 0644));
    const auto n = run_process({"zsh", "-n", dir + "/_mlplat"}, 30s);
    REQUIRE(n);
    INFO(n->err);
    CHECK(n->exit_code == 0);
  } else {
    WARN("zsh is not installed: the zsh script's syntax (zsh -n) is not checked");
  }
  CHECK(mlplat_run({"completion", "fish"}).exit_code == 2);
}

TEST_CASE("matrix check judges versions without the SSH key file, and install still refuses the missing key", "[cli][ux][matrix]")
{
  const std::string dir = testbed::temp_dir("cli-nokey");
  const std::string file = dir + "/mlplat.yaml";
  REQUIRE(fs::write_file_atomic(file, "apiVersion: mlplat.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: nokey\nspec:\n  ssh:\n"
                                      "    keyPath: " + dir + "/absent_ed25519\n  hosts:\n    - {name: cp, address: 192.0.2.10, role: control-plane}\n",
                                0644));
  const auto check = mlplat_run({"matrix", "check", "-c", file});
  INFO(check.out << check.err);
  CHECK(check.exit_code == 0);
  CHECK(contains(check.out, "row k8s-1.36"));
  const auto install = mlplat_run({"install", "-c", file, "--state-dir", dir + "/state"});
  CHECK(install.exit_code == 2);
  CHECK(contains(install.err, "SSH key file '" + dir + "/absent_ed25519' does not exist"));
}

TEST_CASE("install writes a log file per run in the state directory (0600 in 0700, ISO 8601 UTC lines) and a run record, and "
          "--log-file replaces the file", "[cli][ux]")
{
  const std::string dir = testbed::temp_dir("cli-runlog");
  const auto file = refusing_cluster(dir, "runlog");
  const std::string state = dir + "/state";
  // No bundle: refused (exit 2) after the state directory and the locks, before any connection.
  const auto r = mlplat_run({"install", "-c", file, "--state-dir", state});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 2);
  std::vector<std::filesystem::path> logs;
  for (const auto& e : std::filesystem::directory_iterator(state + "/logs")) {
    logs.push_back(e.path());
  }
  REQUIRE(logs.size() == 1);
  const std::string name = logs[0].filename().string();
  CHECK(std::regex_match(name, std::regex("[0-9]{8}T[0-9]{6}\\.[0-9]{3}Z-install\\.log")));
  struct stat st{};
  REQUIRE(::stat(logs[0].c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  REQUIRE(::stat((state + "/logs").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0700);
  const auto log = fs::read_file(logs[0]);
  REQUIRE(log);
  CHECK(contains(*log, "none was given"));
  for (const auto& line : text::split(std::string(text::trim(*log)), '\n')) {
    if (line.rfind("  ", 0) != 0) { // a message's continuation lines (its fix) carry no stamp
      CHECK(std::regex_search(line, std::regex("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z ")));
    }
  }
  CHECK(contains(r.err, "log file: " + logs[0].string()));
  auto runs = nlohmann::json::parse(*fs::read_file(state + "/runs.json"))["runs"];
  REQUIRE(runs.size() == 1);
  CHECK(runs[0]["command"] == "install");
  CHECK(runs[0]["exit_code"] == 2);
  CHECK(runs[0]["log_file"] == logs[0].string());
  CHECK(std::regex_match(runs[0]["started"].get<std::string>(), std::regex("[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")));

  const auto own = mlplat_run({"install", "-c", file, "--state-dir", state, "--log-file", dir + "/mine.log"});
  CHECK(own.exit_code == 2);
  CHECK(contains(*fs::read_file(dir + "/mine.log"), "none was given"));
  CHECK(std::distance(std::filesystem::directory_iterator(state + "/logs"), std::filesystem::directory_iterator()) == 1);
  runs = nlohmann::json::parse(*fs::read_file(state + "/runs.json"))["runs"];
  REQUIRE(runs.size() == 2);
  CHECK(runs[1]["log_file"] == dir + "/mine.log");
  CHECK(contains(own.err, "log file: " + dir + "/mine.log"));
}

TEST_CASE("certs rotate issues no certificate before it holds the cluster lock on the first control plane", "[cli][ux]")
{
  const std::string dir = testbed::temp_dir("cli-rotate-lock");
  const auto file = refusing_cluster(dir, "rotatelock");
  // The first control plane refuses connections: its lock cannot be taken, so nothing may be issued.
  const auto r = mlplat_run({"certs", "rotate", "-c", file, "--state-dir", dir + "/state", "--wait", "0"});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 4);
  CHECK(contains(r.err, "cannot connect to 127.0.0.1:1"));
  CHECK_FALSE(std::filesystem::exists(dir + "/state/tls"));
  CHECK(r.out.empty());
  const auto runs = nlohmann::json::parse(*fs::read_file(dir + "/state/runs.json"))["runs"];
  REQUIRE(runs.size() == 1);
  CHECK(runs[0]["command"] == "certs rotate");
  CHECK(runs[0]["exit_code"] == 4);
}

TEST_CASE("the missing-bundle error prints a bundle create command that runs as printed, with this run's --data-dir and --matrix",
          "[cli][ux]")
{
  const std::string dir = testbed::temp_dir("cli-bundle-hint");
  const auto file = refusing_cluster(dir, "bundlehint");
  REQUIRE(fs::ensure_private_dir(dir + "/data"));
  const std::string matrix = std::string(MLPLAT_SOURCE_DIR) + "/manifests/matrix.yaml";
  const auto r = mlplat_run({"install", "-c", file, "--state-dir", dir + "/state", "--data-dir", dir + "/data", "--matrix", matrix});
  CHECK(r.exit_code == 2);
  std::string printed;
  for (const auto& line : text::split(r.err, '\n')) {
    if (line.rfind("  mlplat ", 0) == 0 && contains(line, " bundle create ")) {
      printed = std::string(text::trim(line));
    }
  }
  INFO(r.err);
  REQUIRE(!printed.empty());
  CHECK(contains(printed, "--data-dir " + dir + "/data"));
  CHECK(contains(printed, "--matrix " + matrix));
  CHECK(contains(printed, "--row k8s-1.36"));
  CHECK(contains(printed, " -o k8s-1.36.tar.zst"));
  // Run as printed (the binary for 'mlplat', a base URL where nothing listens): it must fail in the
  // download, not in parsing (exit 2) or in the refusal of an unpinned artifact (exit 2).
  const std::string command = std::string(MLPLAT_BINARY) + printed.substr(6) + " --base-url http://127.0.0.1:1 --deadline 5";
  const auto ran = run_process({"/bin/sh", "-c", "cd \"$1\" && " + command, "sh", dir}, 120s);
  REQUIRE(ran);
  INFO(command << "\n" << ran->err);
  CHECK(ran->exit_code != 2);
  CHECK(ran->exit_code != 0);
  CHECK(contains(ran->err, "http://127.0.0.1:1/"));
  CHECK_FALSE(contains(ran->err, "Run with --help"));
}

TEST_CASE("with --output json an error is one JSON object on stdout matching docs/schemas/error.schema.json", "[cli][ux]")
{
  const std::string dir = testbed::temp_dir("cli-json-error");
  REQUIRE(fs::write_file_atomic(dir + "/bad.yaml", "apiVersion: mlplat.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: x\nspec:\n  hots: []\n", 0644));
  const auto config = mlplat_run({"plan", "-c", dir + "/bad.yaml", "--output", "json"});
  CHECK(config.exit_code == 2);
  CHECK(schema_check(dir, config.out, "error.schema.json") == "valid");
  CHECK(nlohmann::json::parse(config.out)["error"]["errors"][0]["line"] == 6);
  const auto file = refusing_cluster(dir, "jsonerror");
  const auto bundle = mlplat_run({"install", "-c", file, "--state-dir", dir + "/state", "--output", "json"});
  CHECK(bundle.exit_code == 2);
  CHECK(schema_check(dir, bundle.out, "error.schema.json") == "valid");
  // The gate's refusal (exit 3) is JSON too: its verdicts are the error's children, no text table.
  REQUIRE(fs::write_file_atomic(dir + "/istio.yaml", *fs::read_file(file) + "  versions:\n    istio: \"1.30.2\"\n", 0644));
  const auto gate = mlplat_run({"plan", "-c", dir + "/istio.yaml", "--output", "json"});
  CHECK(gate.exit_code == 3);
  CHECK(schema_check(dir, gate.out, "error.schema.json") == "valid");
  CHECK(contains(nlohmann::json::parse(gate.out)["error"]["errors"][0]["message"].get<std::string>(), "MAT-002"));
  auto broken = nlohmann::json::parse(gate.out);
  broken["error"]["exitCode"] = 9;
  CHECK(schema_check(dir, broken.dump(), "error.schema.json") != "valid");
}

TEST_CASE("certs show --output json matches docs/schemas/certs-show.schema.json", "[cli][ux]")
{
  const std::string dir = testbed::temp_dir("cli-certs-json");
  const auto file = refusing_cluster(dir, "certsjson");
  REQUIRE(fs::ensure_private_dir(dir + "/state/tls"));
  const auto made = run_process({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "30",
                                 "-subj", "/CN=test CA", "-addext", "subjectAltName=DNS:pipelines.example.com,IP:192.0.2.7", "-keyout",
                                 dir + "/state/tls/ca.key", "-out", dir + "/state/tls/server.crt"},
                                60s);
  REQUIRE(made);
  REQUIRE(made->exit_code == 0);
  REQUIRE(fs::write_file_atomic(dir + "/state/tls/ca.crt", *fs::read_file(dir + "/state/tls/server.crt"), 0644));
  // No SSH key is needed to read local certificates.
  std::filesystem::remove(dir + "/key");
  const auto r = mlplat_run({"certs", "show", "-c", file, "--state-dir", dir + "/state", "--output", "json"});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0);
  CHECK(schema_check(dir, r.out, "certs-show.schema.json") == "valid");
  const auto doc = nlohmann::json::parse(r.out);
  CHECK(doc["mode"] == "self-signed");
  CHECK(doc["certificate"]["names"] == nlohmann::json::array({"pipelines.example.com", "192.0.2.7"}));
  CHECK(doc["certificate"]["daysLeft"].get<int>() >= 29);
  CHECK(doc["ca"]["subject"].get<std::string>().find("test CA") != std::string::npos);
}
