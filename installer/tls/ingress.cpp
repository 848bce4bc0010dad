#include "tls/ingress.hpp"

#include "tls/tls.hpp"
#include "util/fs.hpp"
#include "util/log.hpp"
#include "util/text.hpp"

#include <fmt/core.h>

#include <algorithm>

namespace mlplat::tls {

namespace sfs = std::filesystem;

namespace {

Result<IngressCertificate> from_files(const sfs::path& cert, const sfs::path& key, const sfs::path& ca)
{
  IngressCertificate c;
  TRY_ASSIGN(c.cert_pem, fs::read_file(cert));
  TRY_ASSIGN(c.key_pem, fs::read_file(key));
  c.ca_file = ca;
  TRY_ASSIGN(const auto info, tls::inspect(c.cert_pem));
  c.serial_hex = info.serial_hex;
  log::add_secret_lines(c.key_pem); // never logged, whatever carries it
  return c;
}

} // namespace

Result<IngressCertificate> ingress_certificate(const config::Cluster& cluster, const render::PlatformRender& render, const sfs::path& state_dir,
                                               bool write, bool reissue)
{
  const auto& t = cluster.ingress.tls;
  if (t.mode == config::TlsMode::acme) {
    Error e;
    e.code = ErrorCode::config_invalid;
    e.message = "spec.ingress.tls.mode 'acme' (cert-manager with an issuer you name) is accepted but not built in this version";
    e.where = cluster.where("spec.ingress.tls.mode");
    e.fix = "use 'self-signed' (mlplat's own CA issues the certificate) or 'provided' (certFile, keyFile, caFile from your CA)";
    return tl::unexpected(e);
  }
  if (t.mode == config::TlsMode::provided) {
    auto cert = fs::read_file(t.cert_file);
    auto key = fs::read_file(t.key_file);
    std::string ca;
    if (!t.ca_file.empty()) {
      TRY_ASSIGN(ca, fs::read_file(t.ca_file));
    }
    if (!cert || !key) {
      return tl::unexpected(!cert ? cert.error() : key.error());
    }
    if (auto valid = validate_provided(*cert, *key, "", ca, render.domain); !valid) {
      Error e = valid.error();
      e.code = ErrorCode::config_invalid;
      e.message = fmt::format("the provided ingress certificate {} is refused: {}", t.cert_file, e.message);
      e.where = cluster.where("spec.ingress.tls.certFile");
      if (e.fix.empty()) {
        e.fix = "give a certificate, key and CA that pass, or use mode 'self-signed'";
      }
      return tl::unexpected(e);
    }
    IngressCertificate c;
    c.cert_pem = *cert;
    c.key_pem = *key;
    c.ca_file = t.ca_file;
    TRY_ASSIGN(const auto info, inspect(*cert));
    c.serial_hex = info.serial_hex;
    log::add_secret_lines(c.key_pem);
    return c;
  }

  // self-signed: mlplat's ingress CA, made once, and a server certificate from it.
  const sfs::path dir = state_dir / "tls";
  const sfs::path ca_crt = dir / "ca.crt", ca_key = dir / "ca.key", crt = dir / "server.crt", key = dir / "server.key";
  KeyPair ca;
  if (sfs::exists(ca_crt) && sfs::exists(ca_key)) {
    TRY_ASSIGN(ca.cert_pem, fs::read_file(ca_crt));
    TRY_ASSIGN(ca.key_pem, fs::read_file(ca_key));
  } else {
    TRY_ASSIGN(ca, issue_ca(fmt::format("mlplat ingress CA ({})", cluster.name)));
    if (write) {
      std::error_code ec;
      sfs::create_directories(dir, ec);
      sfs::permissions(dir, sfs::perms::owner_all, ec);
      TRY(fs::write_file_atomic(ca_key, ca.key_pem, 0600));
      TRY(fs::write_file_atomic(ca_crt, ca.cert_pem, 0644));
      log::info("issued the ingress CA {} (its key stays in {}, 0600)", ca_crt.string(), ca_key.string());
    }
  }
  // The current server certificate is kept while it covers every name, comes from this CA and has
  // more than 30 days left.
  if (!reissue && sfs::exists(crt) && sfs::exists(key)) {
    TRY_ASSIGN(auto current, from_files(crt, key, ca_crt));
    auto info = inspect(current.cert_pem);
    bool keep = info && info->not_after - std::chrono::system_clock::now() > std::chrono::hours(24 * 30) &&
                validate_provided(current.cert_pem, current.key_pem, "", ca.cert_pem, render.domain).has_value();
    for (const auto& n : render.san_dns) {
      keep = keep && std::find(info->dns_names.begin(), info->dns_names.end(), n) != info->dns_names.end();
    }
    for (const auto& n : render.san_ips) {
      keep = keep && std::find(info->ips.begin(), info->ips.end(), canonical_ip(n)) != info->ips.end();
    }
    if (keep) {
      return current;
    }
    log::info("the ingress certificate {} is reissued (a name is missing, it is not from the CA, or it expires within 30 days)", crt.string());
  }
  TRY_ASSIGN(const auto server, issue_server(ca, render.san_dns, render.san_ips));
  IngressCertificate c;
  c.cert_pem = server.cert_pem;
  c.key_pem = server.key_pem;
  c.ca_file = ca_crt;
  TRY_ASSIGN(const auto info, inspect(server.cert_pem));
  c.serial_hex = info.serial_hex;
  if (write) {
    TRY(fs::write_file_atomic(key, server.key_pem, 0600));
    TRY(fs::write_file_atomic(crt, server.cert_pem, 0644));
    log::info("issued the ingress certificate {} (serial {}, names {}{}{})", crt.string(), c.serial_hex, text::join(render.san_dns, ", "),
              render.san_ips.empty() ? "" : ", ", text::join(render.san_ips, ", "));
  }
  log::add_secret_lines(c.key_pem);
  return c;
}

} // namespace mlplat::tls
