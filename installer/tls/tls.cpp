#include "tls/tls.hpp"

#include <arpa/inet.h>

#include <fmt/core.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>

namespace mlplat::tls {

namespace {

template<typename T, void (*F)(T*)> struct Deleter {
  void operator()(T* p) const { F(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using Cert = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using Bio = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using Store = std::unique_ptr<X509_STORE, Deleter<X509_STORE, X509_STORE_free>>;
using StoreCtx = std::unique_ptr<X509_STORE_CTX, Deleter<X509_STORE_CTX, X509_STORE_CTX_free>>;
void free_stack(STACK_OF(X509) * s) { sk_X509_pop_free(s, X509_free); }
using Stack = std::unique_ptr<STACK_OF(X509), Deleter<STACK_OF(X509), free_stack>>;

std::string openssl_error()
{
  const unsigned long e = ERR_get_error();
  if (e == 0) {
    return "unknown OpenSSL error";
  }
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return buf;
}

Error tls_error(std::string message, std::string fix = {})
{
  Error e;
  e.code = ErrorCode::usage;
  e.message = std::move(message);
  e.fix = std::move(fix);
  return e;
}

std::string bio_string(BIO* bio)
{
  BUF_MEM* mem = nullptr;
  BIO_get_mem_ptr(bio, &mem);
  return mem == nullptr ? std::string() : std::string(mem->data, mem->length);
}

Pkey p256()
{
  return Pkey(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
}

Result<KeyPair> to_pem(X509* cert, EVP_PKEY* key)
{
  Bio c(BIO_new(BIO_s_mem()));
  Bio k(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_X509(c.get(), cert) || !PEM_write_bio_PrivateKey(k.get(), key, nullptr, nullptr, 0, nullptr, nullptr)) {
    return fail(ErrorCode::failed, "writing PEM failed: " + openssl_error());
  }
  return KeyPair{bio_string(c.get()), bio_string(k.get())};
}

std::vector<Cert> read_certs(const std::string& pem)
{
  std::vector<Cert> out;
  Bio bio(BIO_new_mem_buf(pem.data(), int(pem.size())));
  while (X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    out.emplace_back(x);
  }
  ERR_clear_error(); // the end of the input reads as an error
  return out;
}

Pkey read_key(const std::string& pem)
{
  Bio bio(BIO_new_mem_buf(pem.data(), int(pem.size())));
  return Pkey(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
}

Status add_ext(X509* cert, X509* issuer, int nid, const std::string& value)
{
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr) {
    return fail(ErrorCode::failed, fmt::format("certificate extension {} = {}: {}", OBJ_nid2sn(nid), value, openssl_error()));
  }
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  return {};
}

// An unsigned certificate for `key` named `cn`, issued by `issuer` (itself when null).
Result<Cert> build(EVP_PKEY* key, const std::string& cn, X509* issuer, int days)
{
  Cert cert(X509_new());
  X509_set_version(cert.get(), 2);
  unsigned char serial[16];
  RAND_bytes(serial, sizeof serial);
  serial[0] &= 0x7f; // positive
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -60);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), long(days) * 24 * 3600);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("mlplat"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(cert.get(), issuer != nullptr ? X509_get_subject_name(issuer) : name);
  X509_set_pubkey(cert.get(), key);
  return cert;
}

Status sign(X509* cert, EVP_PKEY* key)
{
  if (X509_sign(cert, key, EVP_sha256()) <= 0) {
    return fail(ErrorCode::failed, "signing the certificate failed: " + openssl_error());
  }
  return {};
}

std::string key_description(EVP_PKEY* key)
{
  const int bits = EVP_PKEY_get_bits(key);
  if (EVP_PKEY_is_a(key, "RSA")) {
    return fmt::format("RSA {}", bits);
  }
  if (EVP_PKEY_is_a(key, "EC")) {
    char group[64] = {0};
    size_t len = 0;
    EVP_PKEY_get_utf8_string_param(key, "group", group, sizeof group, &len);
    return std::string(group) == "prime256v1" ? "EC P-256" : fmt::format("EC {} ({} bits)", group, bits);
  }
  return fmt::format("{} {}", EVP_PKEY_get0_type_name(key), bits);
}

} // namespace

Result<KeyPair> issue_ca(const std::string& common_name, int days)
{
  Pkey key = p256();
  if (!key) {
    return fail(ErrorCode::failed, "generating an ECDSA P-256 key failed: " + openssl_error());
  }
  TRY_ASSIGN(Cert cert, build(key.get(), common_name, nullptr, days));
  TRY(add_ext(cert.get(), cert.get(), NID_basic_constraints, "critical,CA:TRUE,pathlen:0"));
  TRY(add_ext(cert.get(), cert.get(), NID_key_usage, "critical,keyCertSign,cRLSign"));
  TRY(add_ext(cert.get(), cert.get(), NID_subject_key_identifier, "hash"));
  TRY(sign(cert.get(), key.get()));
  return to_pem(cert.get(), key.get());
}

Result<KeyPair> issue_server(const KeyPair& ca, const std::vector<std::string>& dns_names, const std::vector<std::string>& ips, int days)
{
  if (days < 1 || days > 397) {
    return tl::unexpected(tls_error(fmt::format("a server certificate valid {} days is refused", days),
                                    "use at most 397 days (what browsers accept)"));
  }
  if (dns_names.empty() && ips.empty()) {
    return tl::unexpected(tls_error("a server certificate needs at least one DNS name or IP", "set spec.ingress.domain"));
  }
  auto ca_certs = read_certs(ca.cert_pem);
  Pkey ca_key = read_key(ca.key_pem);
  if (ca_certs.empty() || !ca_key) {
    return fail(ErrorCode::failed, "the mlplat CA's certificate or key cannot be read");
  }
  Pkey key = p256();
  TRY_ASSIGN(Cert cert, build(key.get(), dns_names.empty() ? ips.front() : dns_names.front(), ca_certs.front().get(), days));
  std::string san;
  for (const auto& n : dns_names) {
    san += (san.empty() ? "" : ",") + std::string("DNS:") + n;
  }
  for (const auto& ip : ips) {
    san += (san.empty() ? "" : ",") + std::string("IP:") + canonical_ip(ip);
  }
  TRY(add_ext(cert.get(), ca_certs.front().get(), NID_basic_constraints, "critical,CA:FALSE"));
  TRY(add_ext(cert.get(), ca_certs.front().get(), NID_key_usage, "critical,digitalSignature"));
  TRY(add_ext(cert.get(), ca_certs.front().get(), NID_ext_key_usage, "serverAuth"));
  TRY(add_ext(cert.get(), ca_certs.front().get(), NID_subject_alt_name, san));
  TRY(add_ext(cert.get(), ca_certs.front().get(), NID_authority_key_identifier, "keyid:always"));
  TRY(sign(cert.get(), ca_key.get()));
  return to_pem(cert.get(), key.get());
}

std::string canonical_ip(const std::string& ip)
{
  unsigned char raw[16];
  char text[INET6_ADDRSTRLEN] = {0};
  for (const int family : {AF_INET, AF_INET6}) {
    if (inet_pton(family, ip.c_str(), raw) == 1 && inet_ntop(family, raw, text, sizeof text) != nullptr) {
      return text;
    }
  }
  return ip;
}

Result<CertInfo> inspect(const std::string& cert_pem)
{
  auto certs = read_certs(cert_pem);
  if (certs.empty()) {
    return tl::unexpected(tls_error("no PEM certificate found", "give the certificate in PEM form (-----BEGIN CERTIFICATE-----)"));
  }
  X509* x = certs.front().get();
  CertInfo info;
  char buf[512];
  X509_NAME_oneline(X509_get_subject_name(x), buf, sizeof buf);
  info.subject = buf;
  BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get_serialNumber(x), nullptr);
  char* hex = BN_bn2hex(bn);
  info.serial_hex = hex;
  OPENSSL_free(hex);
  BN_free(bn);
  auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(x, NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; names != nullptr && i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* g = sk_GENERAL_NAME_value(names, i);
    if (g->type == GEN_DNS) {
      info.dns_names.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(g->d.dNSName)), ASN1_STRING_length(g->d.dNSName));
    } else if (g->type == GEN_IPADD && (ASN1_STRING_length(g->d.iPAddress) == 4 || ASN1_STRING_length(g->d.iPAddress) == 16)) {
      // The canonical text (RFC 5952 for IPv6, as inet_ntop writes it), as canonical_ip() gives for names.
      const bool v6 = ASN1_STRING_length(g->d.iPAddress) == 16;
      char text[INET6_ADDRSTRLEN] = {0};
      if (inet_ntop(v6 ? AF_INET6 : AF_INET, ASN1_STRING_get0_data(g->d.iPAddress), text, sizeof text) != nullptr) {
        info.ips.emplace_back(text);
      }
    }
  }
  GENERAL_NAMES_free(names);
  struct tm t{};
  ASN1_TIME_to_tm(X509_get0_notAfter(x), &t);
  info.not_after = std::chrono::system_clock::from_time_t(timegm(&t));
  info.key_type = key_description(X509_get0_pubkey(x));
  return info;
}

Status validate_provided(const std::string& cert_pem, const std::string& key_pem, const std::string& chain_pem, const std::string& ca_pem,
                         const std::string& domain)
{
  auto certs = read_certs(cert_pem);
  if (certs.empty()) {
    return tl::unexpected(tls_error("the provided certificate file holds no PEM certificate",
                                    "give the server certificate in PEM form, first in the file"));
  }
  X509* leaf = certs.front().get();
  Pkey key = read_key(key_pem);
  if (!key) {
    return tl::unexpected(tls_error("the provided key file holds no readable private key (PEM, unencrypted)",
                                    "give the server certificate's private key in PEM form"));
  }
  if (X509_check_private_key(leaf, key.get()) != 1) {
    ERR_clear_error();
    return tl::unexpected(tls_error("key mismatch: the provided private key does not belong to the certificate",
                                    "give the key the certificate was issued for"));
  }
  // An extended key usage that leaves out serverAuth (a client certificate, a code-signing one) is one
  // no TLS client accepts from a server, whatever its names.
  if ((X509_get_extension_flags(leaf) & EXFLAG_XKUSAGE) != 0 && (X509_get_extended_key_usage(leaf) & XKU_SSL_SERVER) == 0) {
    return tl::unexpected(tls_error("wrong extended key usage: the certificate's extendedKeyUsage does not include serverAuth, so clients "
                                    "refuse it for a server",
                                    "issue a server certificate (extendedKeyUsage = serverAuth)"));
  }
  unsigned char raw[16];
  const bool is_ip = inet_pton(AF_INET, domain.c_str(), raw) == 1 || inet_pton(AF_INET6, domain.c_str(), raw) == 1;
  const int covered = is_ip ? X509_check_ip_asc(leaf, domain.c_str(), 0) : X509_check_host(leaf, domain.c_str(), domain.size(), 0, nullptr);
  if (covered != 1) {
    TRY_ASSIGN(const CertInfo info, inspect(cert_pem));
    std::string sans;
    for (const auto& n : info.dns_names) {
      sans += (sans.empty() ? "" : ", ") + n;
    }
    for (const auto& n : info.ips) {
      sans += (sans.empty() ? "" : ", ") + n;
    }
    return tl::unexpected(tls_error(fmt::format("SAN mismatch: the certificate's names ({}) do not cover {}", sans.empty() ? "none" : sans, domain),
                                    "issue a certificate whose subjectAltName includes the ingress domain"));
  }
  if (X509_cmp_current_time(X509_get0_notAfter(leaf)) <= 0) {
    return tl::unexpected(tls_error("expired: the certificate's notAfter is in the past", "renew the certificate"));
  }
  if (X509_cmp_current_time(X509_get0_notBefore(leaf)) >= 0) {
    return tl::unexpected(tls_error("not yet valid: the certificate's notBefore is in the future", "check the issuer's and this machine's clocks"));
  }
  EVP_PKEY* pub = X509_get0_pubkey(leaf);
  const int bits = EVP_PKEY_get_bits(pub);
  if ((EVP_PKEY_is_a(pub, "RSA") && bits < 2048) || (EVP_PKEY_is_a(pub, "EC") && bits < 256)) {
    return tl::unexpected(tls_error(fmt::format("weak key: {} bits of {}", bits, key_description(pub)),
                                    "use RSA of at least 2048 bits or ECDSA P-256 or stronger"));
  }
  // The chain: further certificates of the cert file and the chain file are untrusted helpers; the
  // CA file (or, without one, a self-signed certificate among them) is the anchor.
  Stack untrusted(sk_X509_new_null());
  for (size_t i = 1; i < certs.size(); ++i) {
    sk_X509_push(untrusted.get(), X509_dup(certs[i].get()));
  }
  for (auto& c : read_certs(chain_pem)) {
    sk_X509_push(untrusted.get(), c.release());
  }
  Store store(X509_STORE_new());
  auto anchors = read_certs(ca_pem);
  if (anchors.empty()) {
    for (int i = 0; i < sk_X509_num(untrusted.get()); ++i) {
      X509* c = sk_X509_value(untrusted.get(), i);
      if (X509_check_issued(c, c) == X509_V_OK) {
        X509_STORE_add_cert(store.get(), c);
      }
    }
  }
  for (auto& c : anchors) {
    X509_STORE_add_cert(store.get(), c.get());
  }
  StoreCtx ctx(X509_STORE_CTX_new());
  X509_STORE_CTX_init(ctx.get(), store.get(), leaf, untrusted.get());
  if (X509_verify_cert(ctx.get()) != 1) {
    const int err = X509_STORE_CTX_get_error(ctx.get());
    ERR_clear_error();
    const bool missing = err == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY || err == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT ||
                         err == X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE;
    return tl::unexpected(tls_error(fmt::format("chain incomplete: {} ({})", missing ? "an intermediate certificate is missing" : "the chain does not verify",
                                                X509_verify_cert_error_string(err)),
                                    "put the intermediate certificates after the server certificate in the cert file (or give them as the chain), "
                                    "and the root as the CA file"));
  }
  return {};
}

} // namespace mlplat::tls
