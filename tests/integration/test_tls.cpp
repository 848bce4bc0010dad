// The ingress certificate for real: mlplat's CA and server certificate served by a real TLS server
// (openssl s_server on loopback) and checked by libcurl against the CA, for every SAN and against a
// name outside them; `openssl verify`; and provided certificates made at test time by openssl,
// each flaw refused with the property named.
#include "support/catch.hpp"

#include "tls/tls.hpp"
#include "util/fs.hpp"
#include "util/process.hpp"

#include <curl/curl.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/process.hpp>

#include <chrono>
#include <filesystem>
#include <memory>
#include <thread>

using namespace mlplat;
using namespace std::chrono_literals;
namespace bp = boost::process;

namespace {

std::string scratch(const std::string& name)
{
  const auto dir = std::filesystem::temp_directory_path() / ("mlplat-tls-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return dir.string();
}

void write(const std::string& path, const std::string& text)
{
  REQUIRE(fs::write_file_atomic(path, text, 0600));
}

std::string read(const std::string& path)
{
  auto text = fs::read_file(path);
  REQUIRE(text);
  return *text;
}

int free_port()
{
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

bool listening(int port)
{
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(uint16_t(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

// An HTTPS GET of https://NAME:PORT/ where NAME resolves to loopback, verified against `ca_file`.
CURLcode get(const std::string& name, int port, const std::string& ca_file)
{
  CURL* curl = curl_easy_init();
  curl_slist* resolve = curl_slist_append(nullptr, (name + ":" + std::to_string(port) + ":127.0.0.1").c_str());
  const std::string url = "https://" + name + ":" + std::to_string(port) + "/";
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_RESOLVE, resolve);
  curl_easy_setopt(curl, CURLOPT_CAINFO, ca_file.c_str());
  curl_easy_setopt(curl, CURLOPT_CAPATH, nullptr);
  curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 10L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, +[](char*, size_t size, size_t n, void*) { return size * n; });
  const CURLcode rc = curl_easy_perform(curl);
  curl_slist_free_all(resolve);
  curl_easy_cleanup(curl);
  return rc;
}

ProcessResult openssl(const std::vector<std::string>& args)
{
  std::vector<std::string> argv{"openssl"};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = run_process(argv, 60s);
  REQUIRE(r);
  INFO(r->err);
  REQUIRE(r->ok());
  return *r;
}

// A certificate for `key_file`'s key named `cn`, signed by issuer files, valid from `from_days` to
// `to_days` (negative: in the past), made with the OpenSSL API (openssl x509 in Debian 12 cannot
// backdate).
std::string backdated(const std::string& key_file, const std::string& cn, const std::string& issuer_cert, const std::string& issuer_key,
                      long from_days, long to_days)
{
  auto load_key = [](const std::string& path) {
    const std::string pem = read(path);
    BIO* bio = BIO_new_mem_buf(pem.data(), int(pem.size()));
    EVP_PKEY* k = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
    return k;
  };
  const std::string issuer_pem = read(issuer_cert);
  BIO* ib = BIO_new_mem_buf(issuer_pem.data(), int(issuer_pem.size()));
  X509* issuer = PEM_read_bio_X509(ib, nullptr, nullptr, nullptr);
  BIO_free(ib);
  EVP_PKEY* key = load_key(key_file);
  EVP_PKEY* ikey = load_key(issuer_key);
  X509* x = X509_new();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 4242);
  X509_gmtime_adj(X509_getm_notBefore(x), from_days * 86400);
  X509_gmtime_adj(X509_getm_notAfter(x), to_days * 86400);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(x, X509_get_subject_name(issuer));
  X509_set_pubkey(x, key);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, x, nullptr, nullptr, 0);
  X509_EXTENSION* san = X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_alt_name, ("DNS:" + cn).c_str());
  X509_add_ext(x, san, -1);
  X509_EXTENSION_free(san);
  X509_sign(x, ikey, EVP_sha256());
  BIO* out = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(out, x);
  BUF_MEM* mem = nullptr;
  BIO_get_mem_ptr(out, &mem);
  std::string pem(mem->data, mem->length);
  BIO_free(out);
  X509_free(x);
  X509_free(issuer);
  EVP_PKEY_free(key);
  EVP_PKEY_free(ikey);
  return pem;
}

} // namespace

TEST_CASE("mlplat's CA and server certificate pass a real TLS handshake for each SAN and fail for another name", "[tls]")
{
  const std::string dir = scratch("handshake");
  auto ca = tls::issue_ca("mlplat ingress CA");
  REQUIRE(ca);
  auto server = tls::issue_server(*ca, {"ml.example.test", "kfp.example.test"}, {"127.0.0.1"}, 397);
  REQUIRE(server);
  write(dir + "/ca.pem", ca->cert_pem);
  write(dir + "/server.pem", server->cert_pem);
  write(dir + "/server.key", server->key_pem);

  const auto info = tls::inspect(server->cert_pem);
  REQUIRE(info);
  CHECK(info->key_type == "EC P-256");
  CHECK(info->dns_names == std::vector<std::string>{"ml.example.test", "kfp.example.test"});
  CHECK(info->ips == std::vector<std::string>{"127.0.0.1"});
  CHECK(info->not_after - std::chrono::system_clock::now() <= std::chrono::hours(24 * 397));
  const auto text = openssl({"x509", "-in", dir + "/server.pem", "-noout", "-text"}).out;
  CHECK(text.find("TLS Web Server Authentication") != std::string::npos);
  CHECK(openssl({"verify", "-CAfile", dir + "/ca.pem", dir + "/server.pem"}).out.find(": OK") != std::string::npos);
  CHECK_FALSE(tls::issue_server(*ca, {"ml.example.test"}, {}, 398));

  const int port = free_port();
  bp::child s_server(bp::search_path("openssl"), "s_server", "-accept", "127.0.0.1:" + std::to_string(port), "-cert", dir + "/server.pem",
                     "-key", dir + "/server.key", "-www", "-quiet", bp::std_in < bp::null, bp::std_out > bp::null, bp::std_err > bp::null);
  for (int i = 0; i < 100 && !listening(port); ++i) {
    std::this_thread::sleep_for(50ms);
  }
  REQUIRE(listening(port));
  for (const char* name : {"ml.example.test", "kfp.example.test", "127.0.0.1"}) {
    INFO(name);
    CHECK(get(name, port, dir + "/ca.pem") == CURLE_OK);
  }
  CHECK(get("other.example.test", port, dir + "/ca.pem") == CURLE_PEER_FAILED_VERIFICATION);
  // Another CA does not vouch for it.
  auto other = tls::issue_ca("not ours");
  REQUIRE(other);
  write(dir + "/other-ca.pem", other->cert_pem);
  CHECK(get("ml.example.test", port, dir + "/other-ca.pem") == CURLE_PEER_FAILED_VERIFICATION);
  s_server.terminate();
  std::filesystem::remove_all(dir);
}

TEST_CASE("provided certificates: a good chain passes, and a wrong key, SAN mismatch, expiry, RSA 1024, a missing intermediate and no serverAuth are refused by name", "[tls]")
{
  const std::string d = scratch("provided");
  // A root, an intermediate and a server certificate (RSA 2048), made by openssl.
  openssl({"req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", d + "/root.key", "-out", d + "/root.pem", "-days", "30", "-subj",
           "/CN=Test Root", "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"});
  openssl({"req", "-newkey", "rsa:2048", "-nodes", "-keyout", d + "/int.key", "-out", d + "/int.csr", "-subj", "/CN=Test Intermediate"});
  write(d + "/int.ext", "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n");
  openssl({"x509", "-req", "-in", d + "/int.csr", "-CA", d + "/root.pem", "-CAkey", d + "/root.key", "-CAcreateserial", "-days", "30",
           "-extfile", d + "/int.ext", "-out", d + "/int.pem"});
  openssl({"req", "-newkey", "rsa:2048", "-nodes", "-keyout", d + "/leaf.key", "-out", d + "/leaf.csr", "-subj", "/CN=ml.example.test"});
  write(d + "/leaf.ext", "subjectAltName=DNS:ml.example.test\nextendedKeyUsage=serverAuth\n");
  openssl({"x509", "-req", "-in", d + "/leaf.csr", "-CA", d + "/int.pem", "-CAkey", d + "/int.key", "-CAcreateserial", "-days", "30",
           "-extfile", d + "/leaf.ext", "-out", d + "/leaf.pem"});
  const std::string leaf = read(d + "/leaf.pem");
  const std::string key = read(d + "/leaf.key");
  const std::string intermediate = read(d + "/int.pem");
  const std::string root = read(d + "/root.pem");

  auto refused = [](const Status& s, const std::string& property) {
    REQUIRE_FALSE(s);
    INFO(s.error().render());
    CHECK(s.error().message.rfind(property, 0) == 0);
    CHECK_FALSE(s.error().fix.empty());
  };
  // Good: leaf + intermediate in the cert file, or the intermediate as the chain.
  CHECK(tls::validate_provided(leaf + intermediate, key, "", root, "ml.example.test"));
  CHECK(tls::validate_provided(leaf, key, intermediate, root, "ml.example.test"));
  // Wrong key.
  openssl({"genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", d + "/other.key"});
  refused(tls::validate_provided(leaf + intermediate, read(d + "/other.key"), "", root, "ml.example.test"), "key mismatch");
  // SAN mismatch.
  refused(tls::validate_provided(leaf + intermediate, key, "", root, "kfp.example.test"), "SAN mismatch");
  // Expired (valid from 60 to 30 days ago).
  const std::string expired = backdated(d + "/leaf.key", "ml.example.test", d + "/int.pem", d + "/int.key", -60, -30);
  refused(tls::validate_provided(expired + intermediate, key, "", root, "ml.example.test"), "expired");
  // RSA 1024, self-signed and given as its own CA: the key size alone is the fault.
  openssl({"req", "-x509", "-newkey", "rsa:1024", "-nodes", "-keyout", d + "/weak.key", "-out", d + "/weak.pem", "-days", "30", "-subj",
           "/CN=ml.example.test", "-addext", "subjectAltName=DNS:ml.example.test"});
  refused(tls::validate_provided(read(d + "/weak.pem"), read(d + "/weak.key"), "", read(d + "/weak.pem"), "ml.example.test"), "weak key");
  // Missing intermediate.
  refused(tls::validate_provided(leaf, key, "", root, "ml.example.test"), "chain incomplete: an intermediate certificate is missing");
  // An extended key usage without serverAuth (a client certificate), all else right.
  write(d + "/client.ext", "subjectAltName=DNS:ml.example.test\nextendedKeyUsage=clientAuth\n");
  openssl({"x509", "-req", "-in", d + "/leaf.csr", "-CA", d + "/int.pem", "-CAkey", d + "/int.key", "-CAcreateserial", "-days", "30",
           "-extfile", d + "/client.ext", "-out", d + "/client.pem"});
  refused(tls::validate_provided(read(d + "/client.pem") + intermediate, key, "", root, "ml.example.test"), "wrong extended key usage");
  std::filesystem::remove_all(d);
}

TEST_CASE("IPv6 names of a server certificate read back as the names asked for, in canonical form", "[tls]")
{
  // The ingress certificate is kept while it covers every name: an IPv6 name that inspect() did not
  // read back made every install reissue it.
  const auto ca = tls::issue_ca("mlplat test CA");
  REQUIRE(ca);
  const auto server = tls::issue_server(*ca, {"ml.example.test"}, {"10.0.0.5", "fd00:0:0::0010"});
  REQUIRE(server);
  const auto info = tls::inspect(server->cert_pem);
  REQUIRE(info);
  CHECK(info->ips == std::vector<std::string>{"10.0.0.5", "fd00::10"});
  CHECK(tls::canonical_ip("fd00:0:0::0010") == "fd00::10");
  CHECK(tls::canonical_ip("FD00::10") == "fd00::10");
  CHECK(tls::canonical_ip("10.0.0.5") == "10.0.0.5");
  CHECK(tls::validate_provided(server->cert_pem, server->key_pem, "", ca->cert_pem, "fd00::10"));
}
