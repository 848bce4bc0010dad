// Downloads against a real HTTP server on loopback (tests/support/httpd.py): a good download, a
// checksum mismatch, a 404, a cut connection resumed, a stalled server ended by its deadline, mirrors.
#include "support/catch.hpp"
#include "support/http_server.hpp"

#include "fetch/download.hpp"
#include "util/fs.hpp"
#include "util/sha256.hpp"

#include <chrono>
#include <filesystem>
#include <random>

using namespace mlplat;
using namespace std::chrono_literals;
namespace sfs = std::filesystem;

namespace {

struct Site {
  std::string top;   // per-test directory
  std::string root;  // served by the server
  std::string dest;  // where downloads go
  std::string data;  // the served file's bytes
  std::string sha;
};

Site make_site(const std::string& name, size_t size = 3 << 20)
{
  Site s;
  s.top = (sfs::temp_directory_path() / ("mlplat-dl-" + name)).string();
  sfs::remove_all(s.top);
  s.root = s.top + "/www";
  s.dest = s.top + "/out";
  sfs::create_directories(s.root + "/dl.example.test/release");
  sfs::create_directories(s.dest);
  std::mt19937 rng(42);
  s.data.resize(size);
  for (auto& c : s.data) {
    c = char(rng());
  }
  REQUIRE(fs::write_file_atomic(s.root + "/dl.example.test/release/tool", s.data, 0644));
  s.sha = sha256_hex(s.data);
  REQUIRE(fs::write_file_atomic(s.root + "/dl.example.test/release/tool.sha256", s.sha + "\n", 0644));
  return s;
}

fetch::Options quick()
{
  fetch::Options o;
  o.backoff.initial = 100ms;
  o.backoff.max_delay = 200ms;
  o.stall = 2s;
  o.deadline = 60s;
  o.progress = Terminal::no;
  return o;
}

const char* k_upstream = "https://dl.example.test/release/tool"; // never fetched: base_url replaces it

} // namespace

TEST_CASE("a good download arrives with the right sha256 and no .part left", "[download]")
{
  auto site = make_site("good");
  testing::HttpServer server(site.root);
  auto o = quick();
  o.base_url = server.url();
  const std::string dest = site.dest + "/tool";
  auto got = fetch::download("tool", k_upstream, dest, {site.sha, false}, o);
  INFO((got ? "" : got.error().render()));
  REQUIRE(got);
  CHECK(got->sha256 == site.sha);
  CHECK(got->bytes == site.data.size());
  CHECK(got->attempts == 1);
  CHECK(got->url == server.url("/dl.example.test/release/tool"));
  CHECK(*fs::read_file(dest) == site.data);
  CHECK_FALSE(sfs::exists(dest + ".part"));
}

TEST_CASE("a checksum mismatch is refused and leaves nothing that looks valid", "[download]")
{
  auto site = make_site("mismatch");
  testing::HttpServer server(site.root);
  auto o = quick();
  o.base_url = server.url();
  const std::string dest = site.dest + "/tool";
  const std::string wrong(64, 'a');
  auto got = fetch::download("tool", k_upstream, dest, {wrong, false}, o);
  REQUIRE_FALSE(got);
  CHECK(got.error().message.find("sha256 mismatch") != std::string::npos);
  CHECK(got.error().message.find("expected " + wrong + ", got " + site.sha) != std::string::npos);
  CHECK_FALSE(sfs::exists(dest));
  CHECK_FALSE(sfs::exists(dest + ".part"));
  CHECK(server.requests().size() == 1); // a wrong file is not fetched again from the same source
}

TEST_CASE("a 404 names the URL and the artifact and is not retried", "[download]")
{
  auto site = make_site("404");
  testing::HttpServer server(site.root);
  auto o = quick();
  o.base_url = server.url();
  auto got = fetch::download("kubeadm", "https://dl.example.test/release/missing", site.dest + "/missing", {site.sha, false}, o);
  REQUIRE_FALSE(got);
  CHECK(got.error().message == "kubeadm: HTTP 404 for " + server.url("/dl.example.test/release/missing"));
  CHECK_FALSE(got.error().fix.empty());
  CHECK(server.requests().size() == 1);
  CHECK_FALSE(sfs::exists(site.dest + "/missing.part"));
}

TEST_CASE("a connection cut mid-file is resumed with a Range request to the right sha256", "[download]")
{
  auto site = make_site("cut");
  testing::HttpServer server(site.root);
  auto o = quick();
  o.base_url = server.url("/cut");
  const std::string dest = site.dest + "/tool";
  auto got = fetch::download("tool", k_upstream, dest, {site.sha, false}, o);
  INFO((got ? "" : got.error().render()));
  REQUIRE(got);
  CHECK(got->sha256 == site.sha);
  CHECK(got->attempts == 2);
  CHECK(got->resumed);
  const auto requests = server.requests();
  REQUIRE(requests.size() == 2);
  CHECK(requests[0].range.empty());
  CHECK(requests[1].status == 206);
  CHECK(requests[1].range == "bytes=" + std::to_string(site.data.size() / 2) + "-");
}

TEST_CASE("a server that ignores Range still gives the whole file once", "[download]")
{
  auto site = make_site("norange");
  testing::HttpServer server(site.root);
  auto o = quick();
  o.base_url = server.url("/norange");
  const std::string dest = site.dest + "/tool";
  // a stale partial file from an earlier run
  REQUIRE(fs::write_file_atomic(dest + ".part", site.data.substr(0, 1000), 0644));
  auto got = fetch::download("tool", k_upstream, dest, {site.sha, false}, o);
  INFO((got ? "" : got.error().render()));
  REQUIRE(got);
  CHECK(got->sha256 == site.sha);
  CHECK_FALSE(got->resumed);
  CHECK(got->attempts == 2); // the Range request refused, then the whole file
}

TEST_CASE("a stalled server is ended by the stall deadline and then by the file's deadline", "[download]")
{
  auto site = make_site("stall");
  testing::HttpServer server(site.root, "127.0.0.1", 30);
  auto o = quick();
  o.base_url = server.url("/stall");
  o.stall = 1s;
  o.deadline = 4s;
  const auto start = std::chrono::steady_clock::now();
  auto got = fetch::download("tool", k_upstream, site.dest + "/tool", {site.sha, false}, o);
  const auto took = std::chrono::steady_clock::now() - start;
  REQUIRE_FALSE(got);
  CHECK(got.error().code == ErrorCode::deadline);
  INFO(got.error().render());
  CHECK((got.error().message.find("no data from") != std::string::npos ||
         got.error().message.find("deadline") != std::string::npos));
  CHECK(took < 10s);
  CHECK(server.requests().size() >= 2); // stalled, retried (resuming), stalled again
  CHECK_FALSE(sfs::exists(site.dest + "/tool"));
}

TEST_CASE("mirrors are tried in order before upstream, the checksum file is parsed", "[download]")
{
  auto site = make_site("mirror", 1 << 16);
  testing::HttpServer server(site.root);
  auto o = quick();
  // the first mirror lacks the file (404, next), the second has it; upstream is never reached
  o.mirrors = {server.url("/empty-mirror"), server.url()};
  CHECK(fetch::candidates(k_upstream, o).size() == 3);
  auto text = fetch::fetch_text("tool.sha256", std::string(k_upstream) + ".sha256", o);
  INFO((text ? "" : text.error().render()));
  REQUIRE(text);
  const auto sha = fetch::parse_checksum_file(*text, "tool");
  REQUIRE(sha);
  CHECK(*sha == site.sha);
  auto got = fetch::download("tool", k_upstream, site.dest + "/tool", {*sha, false}, o);
  REQUIRE(got);
  CHECK(got->url == server.url("/dl.example.test/release/tool"));
}

TEST_CASE("checksum files: bare digest, sha256sum lines, the line for the file wins", "[download]")
{
  const std::string a(64, 'a');
  const std::string b(64, 'b');
  CHECK(fetch::parse_checksum_file(a + "\n", "kubeadm") == a);
  CHECK(fetch::parse_checksum_file(a + "  runc.arm64\n" + b + "  runc.amd64\n", "runc.amd64") == b);
  CHECK(fetch::parse_checksum_file(a + " *containerd.tar.gz\n", "containerd.tar.gz") == a);
  CHECK_FALSE(fetch::parse_checksum_file(a + "  runc.arm64\n", "runc.amd64"));
  CHECK_FALSE(fetch::parse_checksum_file("<html>not found</html>", "x"));
}
