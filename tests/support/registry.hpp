// A real container registry for one test: Debian's docker-registry (distribution 2.8) with TLS (a CA
// and a server certificate made at test time by openssl, SAN = the listen address), htpasswd
// authentication (bcrypt, the password on htpasswd's stdin) and filesystem storage in the test's
// directory; its log in a file the test reads. And small OCI images built at test time.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <boost/process.hpp>

namespace mlplat::testing {

// --- Interface ---

class Registry {
public:
  // Starts the registry in `dir` (created; certificates, htpasswd, config, storage and log live there)
  // listening on `address`:`port` (port 0: a free one), and waits (deadline 30 s) until it answers
  // /v2/. `address` is an IP address (loopback here; other tests give the testbed's bridge).
  Registry(const std::string& dir, const std::string& address, int port = 0, std::string user = "mlplat-test",
           std::string password = "test-only-password-5f2c");
  // Stops the registry (SIGKILL; its storage stays in `dir` until the test's directory goes).
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  std::string host() const;         // address:port, as an image reference names the registry
  std::string url() const;          // https://address:port
  std::string ca_file() const;      // the CA (PEM) the server certificate chains to
  std::string cert_dir() const;     // a directory holding ca.crt (skopeo's --cert-dir)
  const std::string& user() const { return m_user; }
  // A containers-auth.json (0600) for `user` with `password` (default: the registry's own).
  std::string auth_file(const std::string& name, const std::string& password = {}) const;
  // A credentials file (0600) of lines "username: U" and "password: P" (bundle::SiteRegistry's format).
  std::string credentials_file(const std::string& name, const std::string& password = {}) const;
  std::string log() const;          // everything the registry logged so far
  // How many requests the log shows with `method` (GET, HEAD, PUT) whose URI contains `uri_part`.
  int count(const std::string& method, const std::string& uri_part) const;
  // The manifest digest the registry serves for `path`:`tag` (skopeo inspect --raw, hashed).
  std::string digest(const std::string& path, const std::string& tag) const;
  // skopeo copy oci:LAYOUT:TAG docker://host/PATH:TAG with the registry's CA and credentials.
  void push(const std::string& layout, const std::string& tag, const std::string& path) const;

private:
  std::string m_dir;
  std::string m_address;
  int m_port = 0;
  std::string m_user;
  std::string m_password;
  boost::process::child m_child;
};

// A small OCI image as an OCI layout directory `dir` (oci-layout, index.json, blobs/sha256: a config
// JSON for linux/amd64 and one gzip'd tar layer holding one file whose text names `name`:`tag`),
// tagged `tag`. Returns the manifest's digest (sha256:...).
std::string make_test_image(const std::string& dir, const std::string& name, const std::string& tag);

} // namespace mlplat::testing
