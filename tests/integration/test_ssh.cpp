// The SSH transport against real OpenSSH servers on the testbed.
#include "support/catch.hpp"

#include "config/model.hpp"
#include "facts/facts.hpp"
#include "kube/kubeadm.hpp"
#include "integration/testbed.hpp"
#include "transport/fleet.hpp"
#include "util/fs.hpp"
#include "util/interrupt.hpp"
#include "util/sha256.hpp"
#include "util/text.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <csignal>
#include <chrono>
#include <fstream>
#include <future>
#include <thread>

using namespace mlplat;
using namespace mlplat::transport;
using namespace std::chrono_literals;

namespace {

std::unique_ptr<Session> connect_ok(const Endpoint& ep)
{
  auto s = Session::connect(ep);
  INFO((s ? std::string() : s.error().render()));
  REQUIRE(s.has_value());
  return std::move(*s);
}

Command command(std::string script, std::chrono::seconds deadline = 60s)
{
  Command c;
  c.script = std::move(script);
  c.description = "test command";
  c.deadline = deadline;
  return c;
}

bool contains(const std::string& haystack, const std::string& needle)
{
  return haystack.find(needle) != std::string::npos;
}

size_t count_lines_with(const std::string& file, const std::string& needle)
{
  std::ifstream in(file);
  size_t n = 0;
  for (std::string line; std::getline(in, line);) {
    n += contains(line, needle) ? 1 : 0;
  }
  return n;
}

} // namespace

TEST_CASE("exit statuses round-trip, and a killed command reports no status", "[ssh]")
{
  auto s = connect_ok(testbed::endpoint(1));
  for (int status : {0, 1, 2, 42, 127, 255}) {
    auto r = s->exec(command("exit " + std::to_string(status)));
    REQUIRE(r);
    REQUIRE(r->exit_status.has_value());
    CHECK(*r->exit_status == status);
  }
  auto out = s->exec(command("echo hello; echo oops >&2"));
  REQUIRE(out);
  CHECK(out->out == "hello\n");
  CHECK(out->err == "oops\n");
  auto killed = s->exec(command("kill -9 $$"));
  REQUIRE(killed);
  CHECK_FALSE(killed->ok());
  auto failed = s->run(command("echo 'no such thing' >&2; exit 3"));
  REQUIRE_FALSE(failed);
  CHECK(contains(failed.error().message, "exit status 3"));
  CHECK(contains(failed.error().message, "no such thing"));
  CHECK(failed.error().host == "node-1");
}

TEST_CASE("5 MB on stderr while stdout is read does not hang", "[ssh]")
{
  auto s = connect_ok(testbed::endpoint(1));
  const auto start = std::chrono::steady_clock::now();
  auto r = s->exec(command("head -c 5000000 /dev/zero | tr '\\0' e >&2; echo done", 60s));
  REQUIRE(r);
  CHECK(r->ok());
  CHECK(r->out == "done\n");
  CHECK(r->err.size() == 5000000);
  CHECK(r->err.find_first_not_of('e') == std::string::npos);
  CHECK(std::chrono::steady_clock::now() - start < 30s);

  // Both streams large at once, interleaved.
  auto both = s->exec(command("for i in 1 2 3; do head -c 1500000 /dev/zero >&2; head -c 1500000 /dev/zero; done", 60s));
  REQUIRE(both);
  CHECK(both->out.size() == 4500000);
  CHECK(both->err.size() == 4500000);
}

TEST_CASE("stdin is fed to the remote command and never appears on its command line", "[ssh]")
{
  auto s = connect_ok(testbed::endpoint(1));
  std::string data(2 * 1024 * 1024, 'x');
  data += "mlplat-canary-secret-7f3a";
  Command c = command("sha256sum | cut -d' ' -f1; ps -eo args | grep -c '[m]lplat-canary-secret-7f3a' || true");
  c.input = input_from_string(data);
  auto r = s->exec(c);
  REQUIRE(r);
  REQUIRE(r->ok());
  const auto lines = text::split(text::trim(r->out), '\n');
  REQUIRE(lines.size() == 2);
  CHECK(lines[0] == sha256_hex(data));
  CHECK(lines[1] == "0"); // no process on the host has the secret in its arguments
}

TEST_CASE("the deadline ends a command that never finishes, on the host too", "[ssh]")
{
  auto s = connect_ok(testbed::endpoint(1));
  const auto start = std::chrono::steady_clock::now();
  auto r = s->exec(command("sleep infinity & wait; sleep 987654", 2s));
  const auto took = std::chrono::steady_clock::now() - start;
  REQUIRE_FALSE(r);
  CHECK(r.error().code == ErrorCode::deadline);
  CHECK(contains(r.error().message, "2 s deadline"));
  CHECK(took >= 2s);
  CHECK(took < 15s);
  // Nothing of it is left running on the host, and the session is still usable.
  // [s]leep: the pattern must not match this check's own command line.
  auto check = s->exec(command("pgrep -f '[s]leep infinity' | wc -l; pgrep -f '[s]leep 987654' | wc -l"));
  REQUIRE(check);
  CHECK(text::trim(check->out) == "0\n0");
}

TEST_CASE("unknown host key is refused under strict, and accept-new records it", "[ssh]")
{
  const std::string dir = testbed::temp_dir("knownhosts");
  auto ep = testbed::endpoint(3);
  ep.known_hosts = dir + "/sub/known_hosts"; // neither the file nor its directory exists

  auto strict = Session::connect(ep);
  REQUIRE_FALSE(strict);
  CHECK(strict.error().code == ErrorCode::host_key_unknown);
  CHECK(exit_code_for(strict.error()) == k_exit_host_key);
  CHECK(contains(strict.error().message, "SHA256:"));
  CHECK(contains(strict.error().fix, "ssh-keyscan"));
  CHECK_FALSE(std::filesystem::exists(ep.known_hosts));

  ep.host_key_policy = HostKeyPolicy::accept_new;
  connect_ok(ep);
  const auto recorded = fs::read_file(ep.known_hosts);
  REQUIRE(recorded);
  CHECK(recorded->rfind(testbed::address(3) + " ssh-ed25519 ", 0) == 0);

  ep.host_key_policy = HostKeyPolicy::strict;
  connect_ok(ep); // now known
}

TEST_CASE("a replaced host key is refused with exit 5, both fingerprints and the known_hosts line", "[ssh]")
{
  testbed::script({"rekey", "node-4"});
  auto ep = testbed::endpoint(4);
  for (auto policy : {HostKeyPolicy::strict, HostKeyPolicy::accept_new}) {
    ep.host_key_policy = policy;
    auto s = Session::connect(ep);
    REQUIRE_FALSE(s);
    CHECK(s.error().code == ErrorCode::host_key_changed);
    CHECK(exit_code_for(s.error()) == k_exit_host_key);
    const auto& m = s.error().message;
    INFO(m);
    CHECK(contains(m, "HOST KEY MISMATCH"));
    CHECK(contains(m, testbed::known_hosts() + ":4 records SHA256:"));
    CHECK(contains(m, "but the host presented SHA256:"));
    CHECK(contains(s.error().fix, "ssh-keygen -R"));
  }
  // accept-new did not touch the file.
  CHECK(count_lines_with(testbed::known_hosts(), testbed::address(4) + " ") == 1);
  testbed::script({"rekey", "node-4", "--restore"});
  connect_ok(testbed::endpoint(4));
}

TEST_CASE("a wrong key gives exit 4 at once, without retries", "[ssh]")
{
  auto ep = testbed::endpoint(8);
  ep.key_path = testbed::dir() + "/keys/id_wrong";
  Backoff policy;
  policy.initial = 10ms;
  int attempts = 0;
  const auto start = std::chrono::steady_clock::now();
  auto s = Session::connect_with_retry(ep, policy, &attempts);
  REQUIRE_FALSE(s);
  CHECK(s.error().code == ErrorCode::auth_failed);
  CHECK(exit_code_for(s.error()) == k_exit_connect);
  CHECK(attempts == 1);
  CHECK(contains(s.error().message, "refused key"));
  CHECK(contains(s.error().fix, "authorized_keys"));
  CHECK(std::chrono::steady_clock::now() - start < 5s);
}

TEST_CASE("sudo without NOPASSWD gives the sudoers fix, with it, root works", "[ssh]")
{
  auto ok = connect_ok(testbed::endpoint(2, "mlp"));
  Command root_cmd = command("id -u");
  root_cmd.privilege = Privilege::root;
  auto r = ok->run(root_cmd);
  REQUIRE(r);
  CHECK(r->out == "0\n");
  auto user_only = ok->run(command("id -u"));
  REQUIRE(user_only);
  CHECK(user_only->out == "2001\n");

  // requiretty: refused at once with the sudoers line that fixes it.
  testbed::script({"exec", "node-2", "sh", "-c", "echo 'Defaults:mlp requiretty' > /etc/sudoers.d/zz-tty && chmod 0440 /etc/sudoers.d/zz-tty"});
  auto tty = ok->exec(root_cmd);
  testbed::script({"exec", "node-2", "rm", "-f", "/etc/sudoers.d/zz-tty"});
  REQUIRE_FALSE(tty);
  CHECK(tty.error().code == ErrorCode::sudo_failed);
  CHECK(contains(tty.error().message, "requires a TTY"));
  CHECK(contains(tty.error().fix, "Defaults:mlp !requiretty"));

  auto nopw = connect_ok(testbed::endpoint(2, "mlpnopw"));
  const auto start = std::chrono::steady_clock::now();
  auto refused = nopw->exec(root_cmd);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == ErrorCode::sudo_failed);
  CHECK(contains(refused.error().message, "asks user 'mlpnopw' for a password"));
  CHECK(contains(refused.error().fix, "NOPASSWD"));
  CHECK(contains(refused.error().fix, "/etc/sudoers.d/mlplat"));
  CHECK(contains(refused.error().fix, "visudo -cf"));
  CHECK(std::chrono::steady_clock::now() - start < 10s); // never a hang
}

TEST_CASE("a 50 MB upload arrives atomically with the right sha256 and mode", "[ssh]")
{
  const std::string dir = testbed::temp_dir("upload");
  const std::string local = dir + "/big.bin";
  REQUIRE(run_process({"sh", "-c", "head -c 52428800 /dev/urandom > " + local}, 60s));
  const auto sha = sha256_file_hex(local);
  REQUIRE(sha);

  auto s = connect_ok(testbed::endpoint(3, "mlp"));
  const auto start = std::chrono::steady_clock::now();
  auto up = s->upload_file(local, "/opt/mlplat-test/big.bin", 0640, Privilege::root);
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
  INFO((up ? std::string() : up.error().render()));
  REQUIRE(up);
  WARN("50 MB upload took " << took.count() << " ms");
  auto as_root = [](std::string script) {
    Command c = command(std::move(script));
    c.privilege = Privilege::root;
    return c;
  };
  auto check = s->run(as_root("stat -c '%a %U' /opt/mlplat-test/big.bin; sha256sum < /opt/mlplat-test/big.bin | cut -d' ' -f1; "
                              "ls -a /opt/mlplat-test | grep -c mlplat-upload || true"));
  REQUIRE(check);
  CHECK(check->out == "640 root\n" + *sha + "\n0\n");
  // The file landed in this host's own view (its overlay), not on the machine.
  CHECK(std::filesystem::exists(testbed::dir() + "/hosts/node-3/upper/opt/mlplat-test/big.bin"));
  CHECK_FALSE(std::filesystem::exists("/opt/mlplat-test/big.bin"));

  // Small uploads of bytes, replacing the file: the content and mode are exact.
  REQUIRE(s->upload_bytes("config: 1\n", "/opt/mlplat-test/big.bin", 0600, Privilege::root));
  auto small = s->run(as_root("stat -c '%a' /opt/mlplat-test/big.bin; cat /opt/mlplat-test/big.bin"));
  REQUIRE(small);
  CHECK(small->out == "600\nconfig: 1\n");

  // Without root, a root-owned directory refuses: a clear error, and no temporary file left behind.
  auto denied = s->upload_bytes("x", "/etc/mlplat-test/denied.conf", 0644, Privilege::user);
  REQUIRE_FALSE(denied);
  CHECK(denied.error().code == ErrorCode::io);
  CHECK(contains(denied.error().message, "/etc/mlplat-test/denied.conf"));
  auto left = s->run(command("ls -a /etc | grep -c mlplat-upload || true"));
  REQUIRE(left);
  CHECK(left->out == "0\n");
}

TEST_CASE("a killed sshd mid-command gives a retryable error", "[ssh]")
{
  auto s = connect_ok(testbed::endpoint(5));
  auto running = std::async(std::launch::async, [&] { return s->exec(command("echo started; sleep 30", 60s)); });
  std::this_thread::sleep_for(1s);
  testbed::script({"kill-sshd", "node-5"});
  REQUIRE(running.wait_for(20s) == std::future_status::ready);
  auto r = running.get();
  REQUIRE_FALSE(r);
  CHECK(r.error().code == ErrorCode::connect_failed);
  CHECK(r.error().retryable == Retryable::yes);
  CHECK(exit_code_for(r.error()) == k_exit_connect);

  // With sshd gone, a new connection is refused: retryable too, retried within its bound.
  Backoff policy;
  policy.initial = 50ms;
  policy.max_attempts = 3;
  int attempts = 0;
  auto again = Session::connect_with_retry(testbed::endpoint(5), policy, &attempts);
  REQUIRE_FALSE(again);
  CHECK(again.error().retryable == Retryable::yes);
  CHECK(contains(again.error().message, "refused"));
  CHECK(attempts == 3);
  testbed::script({"restart", "node-5"});
  connect_ok(testbed::endpoint(5));
}

TEST_CASE("a dropped port times out the connection, retryably", "[ssh]")
{
  testbed::script({"exec", "node-9", "iptables", "-I", "INPUT", "-p", "tcp", "--dport", "22", "-j", "DROP"});
  auto ep = testbed::endpoint(9);
  ep.connect_timeout = 2s;
  const auto start = std::chrono::steady_clock::now();
  auto s = Session::connect(ep);
  const auto took = std::chrono::steady_clock::now() - start;
  testbed::script({"exec", "node-9", "iptables", "-D", "INPUT", "-p", "tcp", "--dport", "22", "-j", "DROP"});
  REQUIRE_FALSE(s);
  CHECK(s.error().code == ErrorCode::connect_failed);
  CHECK(s.error().retryable == Retryable::yes);
  CHECK(took < 10s);
  connect_ok(testbed::endpoint(9));
}

TEST_CASE("a host reachable only through a bastion is reached through it", "[ssh]")
{
  // node-7 accepts SSH only from node-6.
  testbed::script({"exec", "node-7", "iptables", "-I", "INPUT", "-p", "tcp", "--dport", "22", "!", "-s",
                   testbed::address(6), "-j", "REJECT", "--reject-with", "tcp-reset"});
  auto direct = testbed::endpoint(7);
  direct.connect_timeout = 3s;
  auto refused = Session::connect(direct);
  CHECK_FALSE(refused);

  config::Host host;
  host.name = "node-7";
  host.address = testbed::address(7);
  host.ssh.key_path = testbed::key();
  host.ssh.known_hosts = testbed::known_hosts();
  host.ssh.bastion = config::Bastion{testbed::address(6), 22, "root", ""};
  const auto ep = endpoint_for(host);
  REQUIRE(ep.via);
  CHECK(ep.via->address == testbed::address(6));
  CHECK(ep.via->user == "root");
  auto s = Session::connect(ep);
  testbed::script({"exec", "node-7", "iptables", "-D", "INPUT", "-p", "tcp", "--dport", "22", "!", "-s",
                   testbed::address(6), "-j", "REJECT", "--reject-with", "tcp-reset"});
  INFO((s ? std::string() : s.error().render()));
  REQUIRE(s);
  auto r = (*s)->run(command("hostname; echo $SSH_CONNECTION | cut -d' ' -f1"));
  REQUIRE(r);
  CHECK(r->out == "node-7\n" + testbed::address(6) + "\n");
  // The tunnel carries more than one command, and a large output, both ways.
  auto big = (*s)->run(command("head -c 3000000 /dev/zero | tr '\\0' x"));
  REQUIRE(big);
  CHECK(big->out.size() == 3000000);
  REQUIRE((*s)->upload_bytes(std::string(1 << 20, 'y'), "/tmp/mlplat-bastion-upload", 0600, Privilege::user));
  auto sum = (*s)->run(command("wc -c < /tmp/mlplat-bastion-upload"));
  REQUIRE(sum);
  CHECK(text::trim(sum->out) == std::to_string(1 << 20));
}

TEST_CASE("through a bastion, shell and OpenSSH syntax in the users, the address or known_hosts never runs on this machine", "[ssh]")
{
  // Before: the bastion was an OpenSSH ProxyCommand, run by a shell with %-expansion on this machine.
  const std::string dir = testbed::temp_dir("bastion-inject");
  const std::string marker = dir + "/marker";
  config::Host host;
  host.name = "node-7";
  host.address = testbed::address(7);
  host.ssh.key_path = testbed::key();
  host.ssh.known_hosts = testbed::known_hosts();
  for (const auto& [user, bastion_user, bastion_address] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
         {"x$(touch " + marker + ")", "root", testbed::address(6)},
         {"root", "x`touch " + marker + "`%r", testbed::address(6)},
         {"root", "root", "-oProxyCommand=touch " + marker},
       }) {
    host.ssh.user = user;
    host.ssh.bastion = config::Bastion{bastion_address, 22, bastion_user, ""};
    auto ep = endpoint_for(host);
    ep.connect_timeout = 3s;
    auto s = Session::connect(ep);
    CHECK_FALSE(s);
    CHECK_FALSE(std::filesystem::exists(marker));
  }
}

TEST_CASE("a passphrase-protected key works through ssh-agent, and is refused without it", "[ssh]")
{
  auto ep = testbed::endpoint(10);
  ep.key_path = testbed::dir() + "/keys/id_passphrase";
  auto no_agent = Session::connect(ep);
  REQUIRE_FALSE(no_agent);
  CHECK(no_agent.error().code == ErrorCode::auth_failed);
  CHECK(contains(no_agent.error().message, "protected by a passphrase"));
  CHECK(contains(no_agent.error().fix, "ssh-add"));

  const std::string dir = testbed::temp_dir("agent");
  const std::string sock = dir + "/agent.sock";
  const std::string askpass = dir + "/askpass.sh";
  REQUIRE(fs::write_file_atomic(askpass, "#!/bin/sh\ncat " + testbed::dir() + "/keys/passphrase\n", 0700));
  auto agent = run_process({"ssh-agent", "-a", sock}, 10s);
  REQUIRE(agent);
  REQUIRE(agent->ok());
  auto added = run_process({"sh", "-c", "SSH_AUTH_SOCK=" + sock + " SSH_ASKPASS=" + askpass +
                                           " SSH_ASKPASS_REQUIRE=force DISPLAY=none ssh-add " + ep.key_path + " </dev/null"}, 10s);
  REQUIRE(added);
  INFO(added->err);
  REQUIRE(added->ok());
  ::setenv("SSH_AUTH_SOCK", sock.c_str(), 1);
  ep.agent = true;
  auto s = Session::connect(ep);
  ::unsetenv("SSH_AUTH_SOCK");
  run_process({"sh", "-c", "SSH_AUTH_SOCK=" + sock + " ssh-add -D; pkill -f 'ssh-agent -a " + sock + "'"}, 10s);
  INFO((s ? std::string() : s.error().render()));
  REQUIRE(s);
  CHECK((*s)->run(command("true")).has_value());
}

TEST_CASE("a command on 50 hosts at once succeeds with one session per host", "[ssh][fanout]")
{
  std::vector<Endpoint> endpoints;
  for (int n = 11; n <= 60; ++n) {
    endpoints.push_back(testbed::endpoint(n));
  }
  auto sshd_log = [](size_t i) { return testbed::dir() + "/hosts/node-" + std::to_string(11 + i) + "/run/sshd.log"; };
  std::vector<size_t> logins_before; // a kept testbed may hold logins of earlier runs
  for (size_t i = 0; i < endpoints.size(); ++i) {
    logins_before.push_back(count_lines_with(sshd_log(i), "Accepted publickey"));
  }
  FleetOptions options; // default concurrency 32
  SshFleet fleet(endpoints, options);
  for (int round = 0; round < 3; ++round) {
    auto results = fleet.for_each<std::string>([&](size_t i) -> Result<std::string> {
      TRY_ASSIGN(auto r, fleet.run(i, command("hostname")));
      return std::string(text::trim(r.out));
    });
    REQUIRE(fleet.summarize(results).has_value());
    for (size_t i = 0; i < results.size(); ++i) {
      CHECK(*results[i] == "node-" + std::to_string(11 + i));
    }
  }
  for (size_t i = 0; i < fleet.size(); ++i) {
    CHECK(fleet.sessions_opened(i) == 1);
    // The server agrees: one authenticated connection per host for three rounds of commands.
    CHECK(count_lines_with(sshd_log(i), "Accepted publickey") - logins_before[i] == 1);
  }
}

TEST_CASE("fan-out reports every failed host and does not hide them behind the first", "[ssh][fanout]")
{
  std::vector<Endpoint> endpoints{testbed::endpoint(1), testbed::endpoint(2), testbed::endpoint(1)};
  endpoints[1].key_path = testbed::dir() + "/keys/id_wrong";
  endpoints[2].name = "ghost";
  endpoints[2].address = testbed::net() + ".250"; // inside the testbed subnet, no host there
  endpoints[2].connect_timeout = 1s;
  FleetOptions options;
  options.connect_backoff.max_attempts = 2;
  options.connect_backoff.initial = 10ms;
  SshFleet fleet(endpoints, options);
  auto results = fleet.for_each<ExecResult>([&](size_t i) { return fleet.run(i, command("true")); });
  CHECK(results[0].has_value());
  CHECK_FALSE(results[1].has_value());
  CHECK_FALSE(results[2].has_value());
  auto summary = fleet.summarize(results);
  REQUIRE_FALSE(summary);
  CHECK(summary.error().message == "2 of 3 hosts failed");
  const auto text = summary.error().render();
  CHECK(contains(text, "node-2: root@" + testbed::address(2) + " refused key"));
  CHECK(contains(text, "ghost: cannot connect"));
  CHECK(fleet.connect_attempts(1) == 1); // auth: never retried
  CHECK(fleet.connect_attempts(2) == 2); // unreachable: retried within the bound
}

TEST_CASE("dry-run records mutating commands and uploads and runs only read-only ones", "[ssh]")
{
  FleetOptions options;
  options.dry_run = DryRun::yes;
  SshFleet fleet({testbed::endpoint(1)}, options);
  Command change = command("touch /tmp/mlplat-dry-run-marker");
  change.effect = Effect::mutating;
  change.description = "create the marker";
  REQUIRE(fleet.run(0, change));
  REQUIRE(fleet.upload_bytes(0, "data", "/tmp/mlplat-dry-run-upload", 0600, Privilege::root));
  auto read = fleet.run(0, command("hostname"));
  REQUIRE(read);
  CHECK(read->out == "node-1\n");
  const auto plan = fleet.plan();
  REQUIRE(plan.size() == 2);
  CHECK(plan[0].host == "node-1");
  CHECK(plan[0].description == "create the marker");
  CHECK(plan[0].script == "touch /tmp/mlplat-dry-run-marker");
  CHECK(contains(plan[1].description, "upload /tmp/mlplat-dry-run-upload"));
  CHECK_FALSE(std::filesystem::exists(testbed::dir() + "/hosts/node-1/tmp/mlplat-dry-run-marker"));
  CHECK_FALSE(std::filesystem::exists(testbed::dir() + "/hosts/node-1/tmp/mlplat-dry-run-upload"));
}

TEST_CASE("testbed knobs shape one host's facts and leave the others alone", "[ssh][testbed]")
{
  auto set = [](const std::string& file, const std::string& content) {
    auto r = run_process({"sh", "-c", std::string(MLPLAT_TESTBED_SCRIPT) + " knob node-64 " + file}, 30s, content);
    REQUIRE(r);
    REQUIRE(r->ok());
  };
  set("/proc/swaps", "Filename\tType\tSize\tUsed\tPriority\n/swapfile file 2097148 0 -2\n");
  set("/proc/meminfo", "MemTotal:        1048576 kB\nSwapTotal:       2097148 kB\n");
  set("/etc/os-release", "ID=ubuntu\nVERSION_ID=\"18.04\"\nPRETTY_NAME=\"Ubuntu 18.04\"\n");
  set("/etc/machine-id", "0123456789abcdef0123456789abcdef\n");
  set("/sys/class/dmi/id/product_uuid", "4c4c4544-0000-1111-2222-333344445555\n");

  SshFleet fleet({testbed::endpoint(63), testbed::endpoint(64)}, FleetOptions{});
  const auto results = facts::gather(fleet);
  REQUIRE(results[0]);
  REQUIRE(results[1]);
  const auto& healthy = *results[0];
  const auto& shaped = *results[1];
  CHECK(shaped.get("hostname") == "node-64");
  CHECK(shaped.get("os.id") == "ubuntu");
  CHECK(shaped.get("os.version") == "18.04");
  CHECK(shaped.get("memory.kib") == "1048576");
  CHECK(shaped.get("swap.kib") == "2097148");
  CHECK(shaped.get("machine_id") == "0123456789abcdef0123456789abcdef");
  CHECK(shaped.get("product_uuid") == "4c4c4544-0000-1111-2222-333344445555");
  CHECK(healthy.get("hostname") == "node-63");
  CHECK(healthy.get("os.id") == "debian");
  CHECK(healthy.get("swap.kib") == "0");
  CHECK(healthy.get("product_uuid").size() == 36);
  CHECK(healthy.get("product_uuid") != shaped.get("product_uuid"));
  CHECK(healthy.get("machine_id").size() == 32);
  const auto& addrs = healthy.all("addr");
  CHECK(std::find(addrs.begin(), addrs.end(), "eth0 " + testbed::address(63) + "/24") != addrs.end());
}

TEST_CASE("an upload whose connection dies mid-way leaves no temporary file on the host", "[ssh]")
{
  // Before: the shell on the host died of SIGPIPE writing its error to the closed channel, and its
  // EXIT trap never ran.
  const std::string dir = testbed::temp_dir("upload-killed");
  const std::string local = dir + "/big.bin";
  REQUIRE(run_process({"sh", "-c", "head -c 20971520 /dev/urandom > " + local}, 60s));
  auto s = connect_ok(testbed::endpoint(12, "mlp"));
  testbed::script({"link", "node-12", "8mbit"}); // 20 MB take about 20 s: time to cut it
  auto up = std::async(std::launch::async, [&] { return s->upload_file(local, "/opt/mlplat-test-kill/big.bin", 0644, Privilege::root); });
  // Looked at in the host's own files (its overlay), which stay readable while its sshd is down.
  const std::string on_disk = testbed::dir() + "/hosts/node-12/upper/opt/mlplat-test-kill";
  auto in_progress = [&] {
    size_t n = 0;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(on_disk, ec)) {
      n += e.path().filename().string().rfind(".mlplat-upload.", 0) == 0 ? 1 : 0;
    }
    return std::to_string(n) + "\n";
  };
  std::string seen;
  for (int i = 0; i < 100 && seen != "1\n"; ++i) {
    std::this_thread::sleep_for(100ms);
    seen = in_progress();
  }
  REQUIRE(seen == "1\n"); // the temporary file is there while the upload runs
  std::this_thread::sleep_for(1s);
  testbed::script({"kill-sshd", "node-12"});
  REQUIRE(up.wait_for(30s) == std::future_status::ready);
  CHECK_FALSE(up.get());
  testbed::script({"link", "node-12", "off"});
  // The host's shell ends by itself once its channel is gone: at most 10 s (100 looks, 0.1 s apart).
  for (int i = 0; i < 100 && seen != "0\n"; ++i) {
    std::this_thread::sleep_for(100ms);
    seen = in_progress();
  }
  CHECK(seen == "0\n");
  CHECK_FALSE(std::filesystem::exists(on_disk + "/big.bin"));
  testbed::script({"restart", "node-12"});
  testbed::script({"exec", "node-12", "rm", "-rf", "/opt/mlplat-test-kill"});
  connect_ok(testbed::endpoint(12));
}

TEST_CASE("an interrupt during kubeadm join ends it within a second, and the join file with the token is gone", "[ssh]")
{
  // The real join command, with a stand-in for kubeadm that waits (as a join does while its discovery
  // retries); mlplat's interrupt sends TERM through sshd to the command's process group.
  auto s = connect_ok(testbed::endpoint(11, "mlp"));
  auto root = [](std::string script) {
    Command c = command(std::move(script));
    c.privilege = Privilege::root;
    return c;
  };
  REQUIRE(s->run(root("mkdir -p /tmp/mlplat-fake && printf '#!/bin/sh\\nsleep 60\\n' > /tmp/mlplat-fake/kubeadm && chmod 0755 /tmp/mlplat-fake/kubeadm")));
  auto join = kube::join_command("discovery:\n  bootstrapToken:\n    token: q1w2e3.a1s2d3f4g5h6j7k8\n", false);
  REQUIRE(join.script.find("kubeadm join --config") != std::string::npos);
  join.script = text::replace_all(join.script, "kubeadm join --config", "/tmp/mlplat-fake/kubeadm join --config");
  std::string during;
  std::thread interrupter([&] {
    std::this_thread::sleep_for(2s);
    auto other = connect_ok(testbed::endpoint(11));
    const auto r = other->run(command("cat /etc/kubernetes/mlplat/kubeadm-join.yaml"));
    during = r ? r->out : std::string();
    interrupt::request(SIGINT);
  });
  const auto start = std::chrono::steady_clock::now();
  const auto r = s->exec(join);
  const auto took = std::chrono::steady_clock::now() - start;
  interrupter.join();
  interrupt::reset_for_tests();
  REQUIRE_FALSE(r);
  CHECK(r.error().code == ErrorCode::interrupted);
  CHECK(contains(during, "q1w2e3.a1s2d3f4g5h6j7k8")); // it was there while kubeadm ran
  WARN("the interrupted join returned " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() - 2000
                                        << " ms after the interrupt (plus the 2 s before it)");
  CHECK(took < 2s + 3s);
  auto after = s->run(root("test -e /etc/kubernetes/mlplat/kubeadm-join.yaml && echo left || echo gone; pgrep -f '[m]lplat-fake/kubeadm' || true"));
  REQUIRE(after);
  CHECK(after->out == "gone\n");
  s->run(root("rm -rf /tmp/mlplat-fake /etc/kubernetes"));
}
