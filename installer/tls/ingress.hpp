// The ingress certificate's policy: mlplat's own CA and the server certificate it issues for the
// ingress's names (kept while it covers them, comes from that CA and has 30 days left), or the
// operator's provided files validated before any host is touched.
#pragma once

#include "config/model.hpp"
#include "render/platform.hpp"

#include <filesystem>
#include <string>

namespace mlplat::tls {

// --- Interface ---

// The ingress certificate the "tls" phase installs: leaf (+ chain) PEM, key PEM, and the CA file a
// client trusts it with (empty: the system's trust store).
struct IngressCertificate {
  std::string cert_pem;  // leaf first, then any intermediates
  std::string key_pem;   // secret
  std::filesystem::path ca_file;
  std::string serial_hex;
};

// self-signed: the ingress CA in `state_dir`/tls (ca.key 0600 in a 0700 directory; made once) and a
// server certificate for the render's SANs, reissued when missing, not covering them, not from that
// CA or within 30 days of expiry (`reissue`: always, for `certs rotate`). provided: the files of the
// cluster file, validated (key, SANs, validity, strength, chain); a refusal names the property
// (exit 2). acme: refused, not built. `write` false (plan): nothing is written, a missing CA or
// certificate is made in memory only.
Result<IngressCertificate> ingress_certificate(const config::Cluster& cluster, const render::PlatformRender& render,
                                               const std::filesystem::path& state_dir, bool write, bool reissue = false);

} // namespace mlplat::tls
