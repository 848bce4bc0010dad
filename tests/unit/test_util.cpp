// util: quoting, CIDR maths, retry policy, fan-out, atomic files, redaction, exit codes, sha256,
// local processes.
#include "support/catch.hpp"

#include "transport/command.hpp"
#include "util/fs.hpp"
#include "util/log.hpp"
#include "util/net.hpp"
#include "util/parallel.hpp"
#include "util/process.hpp"
#include "util/retry.hpp"
#include "util/sha256.hpp"
#include "util/text.hpp"

#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

using namespace mlplat;
using namespace std::chrono_literals;

TEST_CASE("shell_quote survives a real shell for awkward words", "[util]")
{
  const std::vector<std::string> words{"plain", "with space", "it's", "$(rm -rf /)", "back\\slash", "", "a\"b", "*", "\n"};
  for (const auto& w : words) {
    const auto r = run_process({"sh", "-c", "printf %s " + text::shell_quote(w)}, 5s);
    REQUIRE(r.has_value());
    CHECK(r->out == w);
  }
  CHECK(text::shell_quote("/usr/bin/kubeadm") == "/usr/bin/kubeadm");
}

TEST_CASE("remote command line wraps in timeout and sudo only when needed", "[util]")
{
  transport::Command cmd;
  cmd.script = "echo 'hi'";
  cmd.deadline = 30s;
  CHECK(transport::remote_command_line(cmd, "root") == "env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin timeout -k 5 30 sh -c 'echo '\\''hi'\\'''");
  cmd.privilege = transport::Privilege::root;
  CHECK(transport::remote_command_line(cmd, "root").rfind("env PATH=", 0) == 0);
  CHECK(transport::remote_command_line(cmd, "admin").rfind("sudo -n -- env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin timeout -k 5 30 sh -c ", 0) == 0);
}

TEST_CASE("did_you_mean suggests close keys only", "[util]")
{
  CHECK(text::did_you_mean("keyPth", {"user", "keyPath", "port"}) == std::optional<std::string>("keyPath"));
  CHECK(text::did_you_mean("podcidr", {"podCIDR", "serviceCIDR"}) == std::optional<std::string>("podCIDR"));
  CHECK_FALSE(text::did_you_mean("completely", {"user", "port"}).has_value());
}

TEST_CASE("CIDR parsing and overlap, IPv4 and IPv6", "[util]")
{
  const auto a = net::parse_cidr("10.244.0.0/16");
  const auto b = net::parse_cidr("10.96.0.0/12");
  const auto c = net::parse_cidr("10.96.0.0/16");
  REQUIRE((a && b && c));
  CHECK_FALSE(net::overlaps(*a, *b));
  CHECK(net::overlaps(*b, *c));
  CHECK(net::overlaps(*c, *b));
  CHECK(net::contains(*a, *net::parse_ip("10.244.255.1")));
  CHECK_FALSE(net::contains(*a, *net::parse_ip("10.245.0.1")));
  const auto v6 = net::parse_cidr("fd00:10:244::/56");
  REQUIRE(v6);
  CHECK_FALSE(net::overlaps(*v6, *a));
  CHECK(net::contains(*v6, *net::parse_ip("fd00:10:244::5")));
  CHECK_FALSE(net::parse_cidr("10.0.0.0/33"));
  CHECK_FALSE(net::parse_cidr("10.0.0.0/x"));
  CHECK(net::parse_cidr("10.0.0.1/8").error().fix == "use 10.0.0.0/8");
}

TEST_CASE("backoff grows, is capped and jittered within bounds", "[util]")
{
  Backoff p;
  p.initial = 100ms;
  p.factor = 2;
  p.max_delay = 500ms;
  p.jitter = 0.2;
  std::mt19937 rng(42);
  for (int i = 0; i < 50; ++i) {
    const auto d2 = backoff_delay(p, 2, rng);
    const auto d4 = backoff_delay(p, 4, rng);
    const auto d9 = backoff_delay(p, 9, rng);
    CHECK((d2 >= 80ms && d2 <= 120ms));
    CHECK((d4 >= 320ms && d4 <= 480ms));
    CHECK((d9 >= 400ms && d9 <= 600ms));
  }
}

TEST_CASE("retry stops at non-retryable errors and at the attempt bound", "[util]")
{
  Backoff p;
  p.initial = 1ms;
  p.max_attempts = 4;
  int calls = 0;
  int attempts = 0;
  auto fatal = retry(p, "t", [&]() -> Result<int> {
    ++calls;
    return fail(ErrorCode::auth_failed, "denied");
  }, &attempts);
  CHECK_FALSE(fatal);
  CHECK(calls == 1);
  CHECK(attempts == 1);

  calls = 0;
  auto transient = retry(p, "t", [&]() -> Result<int> {
    ++calls;
    Error e;
    e.retryable = Retryable::yes;
    return tl::unexpected(e);
  }, &attempts);
  CHECK_FALSE(transient);
  CHECK(calls == 4);

  calls = 0;
  auto eventually = retry(p, "t", [&]() -> Result<int> {
    if (++calls < 3) {
      Error e;
      e.retryable = Retryable::yes;
      return tl::unexpected(e);
    }
    return 7;
  });
  REQUIRE(eventually);
  CHECK(*eventually == 7);
  CHECK(calls == 3);
}

TEST_CASE("parallel_for never exceeds the concurrency bound and visits every item once", "[util]")
{
  std::atomic<int> running{0};
  std::atomic<int> peak{0};
  std::vector<std::atomic<int>> visits(40);
  parallel_for(40, 5, [&](size_t i) {
    const int now = ++running;
    int seen = peak.load();
    while (now > seen && !peak.compare_exchange_weak(seen, now)) {
    }
    std::this_thread::sleep_for(5ms);
    ++visits[i];
    --running;
  });
  CHECK(peak.load() <= 5);
  CHECK(peak.load() >= 2);
  for (const auto& v : visits) {
    CHECK(v.load() == 1);
  }
}

TEST_CASE("aggregate_failures names every failed item and picks the exit code", "[util]")
{
  CHECK(aggregate_failures({}, 3).has_value());
  Error a;
  a.code = ErrorCode::connect_failed;
  a.host = "w-1";
  a.message = "refused";
  Error b = a;
  b.host = "w-2";
  auto s = aggregate_failures({a, b}, 5);
  REQUIRE_FALSE(s);
  CHECK(s.error().message == "2 of 5 hosts failed");
  CHECK(exit_code_for(s.error()) == k_exit_connect);
  const auto text = s.error().render();
  CHECK(text.find("w-1: refused") != std::string::npos);
  CHECK(text.find("w-2: refused") != std::string::npos);
  b.code = ErrorCode::host_key_changed;
  CHECK(exit_code_for(aggregate_failures({a, b}, 5).error()) == k_exit_host_key);
  b.code = ErrorCode::failed;
  CHECK(exit_code_for(aggregate_failures({a, b}, 5).error()) == k_exit_partial);
}

TEST_CASE("write_file_atomic sets the mode even over an existing 0644 file", "[util]")
{
  const auto dir = std::filesystem::temp_directory_path() / "mlplat-unit-atomic";
  std::filesystem::remove_all(dir);
  REQUIRE(fs::ensure_private_dir(dir));
  struct stat st {};
  REQUIRE(::stat(dir.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0700);
  const auto file = dir / "kubeconfig";
  { std::ofstream(file) << "old"; }
  ::chmod(file.c_str(), 0644);
  REQUIRE(fs::write_file_atomic(file, "new content", 0600));
  REQUIRE(::stat(file.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(*fs::read_file(file) == "new content");
  // No temporary file is left beside it.
  CHECK(std::distance(std::filesystem::directory_iterator(dir), std::filesystem::directory_iterator()) == 1);
  std::filesystem::remove_all(dir);
}

TEST_CASE("the log redacts registered secrets in every line", "[util]")
{
  const auto path = std::filesystem::temp_directory_path() / "mlplat-unit-log.txt";
  std::string why;
  REQUIRE(log::open_file(path.string(), why));
  log::add_secret("abcdef.0123456789abcdef");
  log::write(log::Level::debug, "cp-1", "kubeadm join --token abcdef.0123456789abcdef done");
  const auto content = fs::read_file(path);
  REQUIRE(content);
  CHECK(content->find("0123456789abcdef") == std::string::npos);
  CHECK(content->find("--token [redacted] done") != std::string::npos);
  CHECK(content->find("cp-1: ") != std::string::npos);
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
}

TEST_CASE("sha256 matches the coreutils tool", "[util]")
{
  CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  const auto path = std::filesystem::temp_directory_path() / "mlplat-unit-sha";
  REQUIRE(fs::write_file_atomic(path, std::string(300000, 'x'), 0600));
  const auto tool = run_process({"sha256sum", path.string()}, 10s);
  REQUIRE(tool);
  CHECK(tool->out.substr(0, 64) == *sha256_file_hex(path));
}

TEST_CASE("run_process drains both streams, reports signals and enforces its deadline", "[util]")
{
  const auto big = run_process({"sh", "-c", "head -c 3000000 /dev/zero | tr '\\0' e >&2; echo out; exit 3"}, 20s);
  REQUIRE(big);
  CHECK(big->exit_code == 3);
  CHECK(big->out == "out\n");
  CHECK(big->err.size() == 3000000);
  const auto killed = run_process({"sh", "-c", "kill -9 $$"}, 5s);
  REQUIRE(killed);
  CHECK(killed->signal == 9);
  const auto slow = run_process({"sleep", "30"}, 300ms);
  REQUIRE_FALSE(slow);
  CHECK(slow.error().code == ErrorCode::deadline);
  const auto missing = run_process({"mlplat-no-such-program"}, 1s);
  REQUIRE_FALSE(missing);
  CHECK(missing.error().message.find("not found in PATH") != std::string::npos);
  const auto fed = run_process({"cat"}, 5s, "from stdin");
  REQUIRE(fed);
  CHECK(fed->out == "from stdin");
}
