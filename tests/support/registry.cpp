#include "support/registry.hpp"

#include "support/catch.hpp"

#include "util/fs.hpp"
#include "util/process.hpp"
#include "util/sha256.hpp"

#include <nlohmann/json.hpp>
#include <openssl/evp.h>

#include <boost/process/extend.hpp>

#include <arpa/inet.h>
#include <csignal>
#include <sys/prctl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <sstream>
#include <thread>

namespace mlplat::testing {

namespace sfs = std::filesystem;
using namespace std::chrono_literals;

namespace {

ProcessResult must_run(const std::vector<std::string>& argv, const std::string& input = {}, std::chrono::seconds deadline = 60s)
{
  auto r = run_process(argv, deadline, input);
  REQUIRE(r);
  INFO(argv[0] << ": " << r->out << r->err);
  REQUIRE(r->ok());
  return *r;
}

// A port on `address` nobody listens on now (the kernel's choice for port 0).
int free_port(const std::string& address)
{
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = 0;
  REQUIRE(::inet_pton(AF_INET, address.c_str(), &sa.sin_addr) == 1);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
  socklen_t len = sizeof sa;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) == 0);
  ::close(fd);
  return ntohs(sa.sin_port);
}

std::string base64(const std::string& data)
{
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), reinterpret_cast<const unsigned char*>(data.data()),
                                static_cast<int>(data.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

// The registry dies with the test process, also when the test is killed before its destructor runs.
struct DieWithParent : boost::process::extend::handler {
  template<typename Executor> void on_exec_setup(Executor&) const { ::prctl(PR_SET_PDEATHSIG, SIGKILL); }
};

} // namespace

Registry::Registry(const std::string& dir, const std::string& address, int port, std::string user, std::string password)
  : m_dir(dir), m_address(address), m_user(std::move(user)), m_password(std::move(password))
{
  sfs::remove_all(m_dir);
  sfs::create_directories(m_dir + "/storage");
  sfs::create_directories(m_dir + "/certs");
  sfs::permissions(m_dir, sfs::perms::owner_all);
  // A CA and a server certificate for the address.
  must_run({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", m_dir + "/ca.key", "-out",
            ca_file(), "-days", "2", "-subj", "/CN=mlplat test registry CA"});
  must_run({"openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", m_dir + "/server.key", "-out",
            m_dir + "/server.csr", "-subj", "/CN=" + address});
  REQUIRE(fs::write_file_atomic(m_dir + "/server.ext",
                                "subjectAltName=IP:" + address + "\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n", 0644));
  must_run({"openssl", "x509", "-req", "-in", m_dir + "/server.csr", "-CA", ca_file(), "-CAkey", m_dir + "/ca.key", "-CAcreateserial", "-out",
            m_dir + "/server.crt", "-days", "2", "-extfile", m_dir + "/server.ext"});
  sfs::copy_file(ca_file(), cert_dir() + "/ca.crt", sfs::copy_options::overwrite_existing);
  // bcrypt, the password on stdin (-i), never on a command line.
  must_run({"htpasswd", "-iBc", m_dir + "/htpasswd", m_user}, m_password);
  // Up to three ports: another process may take the free one between the check and the listen.
  for (int attempt = 0; attempt < 3; ++attempt) {
    m_port = port != 0 ? port : free_port(address);
    const std::string config = "version: 0.1\n"
                               "log:\n  level: info\n  accesslog:\n    disabled: false\n"
                               "storage:\n  filesystem:\n    rootdirectory: " + m_dir + "/storage\n  delete:\n    enabled: true\n"
                               "http:\n  addr: " + host() + "\n  tls:\n    certificate: " + m_dir + "/server.crt\n    key: " + m_dir +
                               "/server.key\n"
                               "auth:\n  htpasswd:\n    realm: mlplat-test\n    path: " + m_dir + "/htpasswd\n";
    REQUIRE(fs::write_file_atomic(m_dir + "/config.yml", config, 0600));
    namespace bp = boost::process;
    m_child = bp::child(bp::search_path("docker-registry"), "serve", m_dir + "/config.yml", (bp::std_out & bp::std_err) > (m_dir + "/registry.log"),
                        bp::std_in < bp::null, DieWithParent{});
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (std::chrono::steady_clock::now() < deadline && m_child.running()) {
      auto r = run_process({"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "2", "--cacert", ca_file(), url() + "/v2/"}, 5s);
      if (r && (r->out == "401" || r->out == "200")) {
        return;
      }
      std::this_thread::sleep_for(100ms);
    }
    std::error_code ec;
    m_child.terminate(ec);
    m_child.wait(ec);
    if (port != 0) {
      break;
    }
  }
  FAIL("docker-registry did not answer on " << url() << "/v2/ within 30 s: " << log());
}

Registry::~Registry()
{
  std::error_code ec;
  m_child.terminate(ec);
  m_child.wait(ec);
}

std::string Registry::host() const
{
  return m_address + ":" + std::to_string(m_port);
}

std::string Registry::url() const
{
  return "https://" + host();
}

std::string Registry::ca_file() const
{
  return m_dir + "/ca.crt";
}

std::string Registry::cert_dir() const
{
  return m_dir + "/certs";
}

std::string Registry::auth_file(const std::string& name, const std::string& password) const
{
  const std::string file = m_dir + "/" + name;
  const nlohmann::json auth{{"auths", {{host(), {{"auth", base64(m_user + ":" + (password.empty() ? m_password : password))}}}}}};
  REQUIRE(fs::write_file_atomic(file, auth.dump(), 0600));
  return file;
}

std::string Registry::credentials_file(const std::string& name, const std::string& password) const
{
  const std::string file = m_dir + "/" + name;
  REQUIRE(fs::write_file_atomic(file, "# the test registry's user\nusername: " + m_user + "\npassword: " + (password.empty() ? m_password : password) + "\n",
                                0600));
  return file;
}

std::string Registry::log() const
{
  auto text = fs::read_file(m_dir + "/registry.log");
  return text ? *text : std::string();
}

int Registry::count(const std::string& method, const std::string& uri_part) const
{
  // The access log's lines: ... "GET /v2/x/manifests/v1 HTTP/1.1" 200 ...
  std::istringstream in(log());
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    const auto q = line.find("\"" + method + " /v2/");
    if (q != std::string::npos && line.find(uri_part, q) != std::string::npos && line.find("level=") == std::string::npos) {
      ++n;
    }
  }
  return n;
}

std::string Registry::digest(const std::string& path, const std::string& tag) const
{
  const std::string auth = auth_file("inspect-auth.json");
  const auto r = must_run({"skopeo", "inspect", "--raw", "--cert-dir", cert_dir(), "--authfile", auth, "docker://" + host() + "/" + path + ":" + tag});
  return "sha256:" + sha256_hex(r.out);
}

void Registry::push(const std::string& layout, const std::string& tag, const std::string& path) const
{
  const std::string auth = auth_file("push-auth.json");
  must_run({"skopeo", "copy", "--quiet", "--dest-cert-dir", cert_dir(), "--dest-authfile", auth, "oci:" + layout + ":" + tag,
            "docker://" + host() + "/" + path + ":" + tag});
}

std::string make_test_image(const std::string& dir, const std::string& name, const std::string& tag)
{
  sfs::remove_all(dir);
  const std::string blobs = dir + "/blobs/sha256";
  const std::string work = dir + ".work";
  sfs::create_directories(blobs);
  sfs::create_directories(work + "/root");
  REQUIRE(fs::write_file_atomic(work + "/root/hello.txt", "this is the test image " + name + ":" + tag + "\n", 0644));
  must_run({"tar", "-C", work + "/root", "--mtime=@0", "--owner=0", "--group=0", "--numeric-owner", "-cf", work + "/layer.tar", "hello.txt"});
  const std::string diff_id = "sha256:" + *sha256_file_hex(work + "/layer.tar");
  must_run({"gzip", "-n", "-f", work + "/layer.tar"});
  const std::string layer = *sha256_file_hex(work + "/layer.tar.gz");
  const auto layer_size = sfs::file_size(work + "/layer.tar.gz");
  sfs::copy_file(work + "/layer.tar.gz", blobs + "/" + layer);
  const std::string config = nlohmann::json{{"architecture", "amd64"},
                                            {"os", "linux"},
                                            {"config", {{"Cmd", {"/hello.txt"}}}},
                                            {"rootfs", {{"type", "layers"}, {"diff_ids", {diff_id}}}}}
                               .dump();
  const std::string config_sha = sha256_hex(config);
  REQUIRE(fs::write_file_atomic(blobs + "/" + config_sha, config, 0644));
  const std::string manifest =
    nlohmann::json{{"schemaVersion", 2},
                   {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                   {"config", {{"mediaType", "application/vnd.oci.image.config.v1+json"}, {"digest", "sha256:" + config_sha}, {"size", config.size()}}},
                   {"layers", {{{"mediaType", "application/vnd.oci.image.layer.v1.tar+gzip"}, {"digest", "sha256:" + layer}, {"size", layer_size}}}}}
      .dump();
  const std::string manifest_sha = sha256_hex(manifest);
  REQUIRE(fs::write_file_atomic(blobs + "/" + manifest_sha, manifest, 0644));
  REQUIRE(fs::write_file_atomic(dir + "/oci-layout", R"({"imageLayoutVersion":"1.0.0"})", 0644));
  const nlohmann::json index{{"schemaVersion", 2},
                             {"manifests",
                              {{{"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                                {"digest", "sha256:" + manifest_sha},
                                {"size", manifest.size()},
                                {"annotations", {{"org.opencontainers.image.ref.name", tag}}}}}}};
  REQUIRE(fs::write_file_atomic(dir + "/index.json", index.dump(), 0644));
  sfs::remove_all(work);
  return "sha256:" + manifest_sha;
}

} // namespace mlplat::testing
