// The ingress certificate: mlplat's own CA (separate from the cluster CA) issuing an ECDSA P-256
// server certificate, or a certificate the site provides, validated before any host is touched.
// Everything with OpenSSL; keys leave this module only as PEM for 0600 files.
#pragma once

#include "util/error.hpp"

#include <chrono>
#include <string>
#include <vector>

namespace mlplat::tls {

// --- Interface ---

struct KeyPair {
  std::string cert_pem;
  std::string key_pem;  // secret: write it 0600, never log it
};

// A self-signed CA for the ingress: ECDSA P-256, CA:TRUE with keyCertSign, valid `days`.
Result<KeyPair> issue_ca(const std::string& common_name, int days = 3650);

// A server certificate from `ca`: ECDSA P-256, every name in `dns_names` and `ips` in its SANs,
// serverAuth, digitalSignature; `days` at most 397 (a usage error above).
Result<KeyPair> issue_server(const KeyPair& ca, const std::vector<std::string>& dns_names, const std::vector<std::string>& ips,
                             int days = 397);

// What `openssl x509 -text` would show that matters here.
struct CertInfo {
  std::string subject;
  std::string serial_hex;
  std::vector<std::string> dns_names;
  std::vector<std::string> ips;
  std::chrono::system_clock::time_point not_after;
  std::string key_type;  // "EC P-256", "RSA 2048"
};
Result<CertInfo> inspect(const std::string& cert_pem);

// `ip` in its canonical text (IPv6 as RFC 5952 writes it: "fd00::1" for "fd00:0:0::0001"), as
// inspect() gives a certificate's IP names; anything else unchanged.
std::string canonical_ip(const std::string& ip);

// A certificate the site provides, checked before the cluster is touched: the key matches, the
// SANs cover `domain`, it is valid now, the key is strong enough (RSA >= 2048 bits, EC >= 256), and
// the chain (the cert file's further certificates plus `chain_pem`) leads to a certificate of
// `ca_pem`. Each refusal names the property. `ca_pem` empty: the chain must end in a self-signed
// certificate of the cert file or chain.
Status validate_provided(const std::string& cert_pem, const std::string& key_pem, const std::string& chain_pem,
                         const std::string& ca_pem, const std::string& domain);

} // namespace mlplat::tls
