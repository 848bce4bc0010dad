#include "commands/kubeconfig.hpp"

#include "config/grammar.hpp"
#include "kube/kubeadm.hpp"
#include "tls/tls.hpp"
#include "util/fs.hpp"
#include "util/text.hpp"
#include "workflow/steps.hpp"

#include <fmt/core.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <algorithm>
#include <memory>
#include <set>

namespace mlplat::commands {

namespace {

Error usage(std::string message, std::string fix)
{
  Error e;
  e.code = ErrorCode::usage;
  e.message = std::move(message);
  e.fix = std::move(fix);
  return e;
}

// Standard base64 (kubeconfig's *-data fields) decoded; nullopt when it is not base64.
std::optional<std::string> base64_decode(std::string_view in)
{
  std::string clean;
  for (char c : in) {
    if (c != '\n' && c != '\r' && c != ' ') {
      clean += c;
    }
  }
  if (clean.empty() || clean.size() % 4 != 0) {
    return std::nullopt;
  }
  std::string out(clean.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()), reinterpret_cast<const unsigned char*>(clean.data()),
                                int(clean.size()));
  if (n < 0) {
    return std::nullopt;
  }
  size_t pad = 0;
  for (auto it = clean.rbegin(); it != clean.rend() && *it == '='; ++it) {
    ++pad;
  }
  out.resize(size_t(n) - pad);
  return out;
}

} // namespace

Result<std::chrono::minutes> parse_ttl(std::string_view text)
{
  const std::string fix = fmt::format("write a lifetime such as 24h, 90m, 7d or 1d12h (units d, h, m), from {} minutes to {} days",
                                      k_min_user_ttl.count(), k_max_user_ttl.count() / 24);
  if (text.empty()) {
    return tl::unexpected(usage("--ttl is empty", fix));
  }
  long long minutes = 0;
  size_t i = 0;
  while (i < text.size()) {
    size_t digits = 0;
    long long n = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      if (++digits > 6) {
        return tl::unexpected(usage(fmt::format("--ttl {}: a number of more than 6 digits", config::grammar::quoted(text)), fix));
      }
      n = n * 10 + (text[i] - '0');
      ++i;
    }
    if (digits == 0 || i == text.size()) {
      return tl::unexpected(usage(fmt::format("--ttl {} is not a lifetime: each number needs a unit", config::grammar::quoted(text)), fix));
    }
    switch (text[i]) {
    case 'd': minutes += n * 24 * 60; break;
    case 'h': minutes += n * 60; break;
    case 'm': minutes += n; break;
    default:
      return tl::unexpected(
        usage(fmt::format("--ttl {}: '{}' is not a unit (d, h or m)", config::grammar::quoted(text), text[i]), fix));
    }
    ++i;
  }
  const std::chrono::minutes ttl(minutes);
  if (ttl < k_min_user_ttl || ttl > std::chrono::duration_cast<std::chrono::minutes>(k_max_user_ttl)) {
    return tl::unexpected(usage(fmt::format("--ttl {} is {} minutes: outside what mlplat issues", config::grammar::quoted(text), minutes), fix));
  }
  return ttl;
}

std::string go_duration(std::chrono::minutes ttl)
{
  return fmt::format("{}h{}m0s", ttl.count() / 60, ttl.count() % 60);
}

transport::Command admin_kubeconfig_command()
{
  auto c = workflow::read_only("read admin.conf (it holds the administrator's key: never logged)",
                               fmt::format("cat {}", workflow::k_admin_kubeconfig));
  c.sensitive = transport::Sensitive::yes;
  c.deadline = std::chrono::seconds(30);
  return c;
}

Status check_user_request(const UserRequest& request)
{
  auto refuse = [](const std::string& flag, const std::string& value, const Error& why) {
    Error e = why;
    e.code = ErrorCode::usage;
    e.message = fmt::format("{} {} {}", flag, config::grammar::quoted(value), why.message);
    return tl::unexpected(e);
  };
  if (auto ok = config::grammar::kube_subject(request.name); !ok) {
    return refuse("--user", request.name, ok.error());
  }
  std::set<std::string> seen;
  for (const auto& g : request.groups) {
    if (auto ok = config::grammar::kube_subject(g); !ok) {
      return refuse("--group", g, ok.error());
    }
    if (!seen.insert(g).second) {
      return tl::unexpected(usage(fmt::format("--group {} is given twice", config::grammar::quoted(g)), "give each group once"));
    }
  }
  return {};
}

transport::Command user_kubeconfig_command(const UserRequest& request, const std::string& cluster_config)
{
  std::vector<std::string> argv{"kubeadm", "kubeconfig", "user", "--client-name", request.name};
  for (const auto& g : request.groups) {
    argv.push_back("--org");
    argv.push_back(g);
  }
  argv.push_back("--validity-period");
  argv.push_back(go_duration(request.ttl));
  argv.push_back("--config");
  argv.push_back("/dev/stdin");
  auto c = workflow::read_only(fmt::format("issue a kubeconfig for user {} (its key: never logged)", request.name),
                               // The host's clock first, on stderr: the certificate's lifetime is judged from it.
                               "date +%s >&2\n" + text::shell_join(argv) + "\n", cluster_config);
  c.sensitive = transport::Sensitive::yes;
  c.deadline = std::chrono::seconds(60);
  return c;
}

Result<IssuedCert> issued_cert(const std::string& kubeconfig)
{
  std::string data;
  for (const auto& line : text::split(kubeconfig, '\n')) {
    const auto t = text::trim(line);
    constexpr std::string_view key = "client-certificate-data:";
    if (t.substr(0, key.size()) == key) {
      data = std::string(text::trim(t.substr(key.size())));
      break;
    }
  }
  if (data.empty()) {
    return fail(ErrorCode::failed, "the kubeconfig kubeadm made has no client-certificate-data",
                "check kubeadm on the first control plane: kubeadm kubeconfig user --help");
  }
  const auto pem = base64_decode(data);
  if (!pem) {
    return fail(ErrorCode::failed, "the kubeconfig's client-certificate-data is not base64");
  }
  TRY_ASSIGN(const auto info, tls::inspect(*pem));
  IssuedCert out;
  out.not_after = info.not_after;
  // The subject's entries one by one: kubeadm puts several groups in one multi-valued RDN.
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem->data(), int(pem->size())), BIO_free);
  std::unique_ptr<X509, decltype(&X509_free)> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), X509_free);
  if (!cert) {
    return fail(ErrorCode::failed, "the kubeconfig's client certificate is not a PEM certificate");
  }
  const X509_NAME* name = X509_get_subject_name(cert.get());
  for (int i = 0; i < X509_NAME_entry_count(name); ++i) {
    const X509_NAME_ENTRY* entry = X509_NAME_get_entry(name, i);
    const int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(entry));
    unsigned char* utf8 = nullptr;
    const int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(entry));
    if (len < 0) {
      continue;
    }
    const std::string value(reinterpret_cast<const char*>(utf8), size_t(len));
    OPENSSL_free(utf8);
    if (nid == NID_commonName) {
      out.common_name = value;
    } else if (nid == NID_organizationName) {
      out.organizations.push_back(value);
    }
  }
  return out;
}

Status check_issued(const std::string& kubeconfig, const UserRequest& request, std::chrono::system_clock::time_point now)
{
  TRY_ASSIGN(const auto cert, issued_cert(kubeconfig));
  const std::string fix = "check the kubeadm on the first control plane (kubeadm version -o short) against the matrix row";
  if (cert.common_name != request.name) {
    return fail(ErrorCode::failed, fmt::format("the issued certificate is for '{}', not '{}'", cert.common_name, request.name), fix);
  }
  auto have = cert.organizations;
  auto want = request.groups;
  std::sort(have.begin(), have.end());
  std::sort(want.begin(), want.end());
  if (have != want) {
    return fail(ErrorCode::failed,
                fmt::format("the issued certificate's groups are [{}], not [{}]", text::join(have, ", "), text::join(want, ", ")), fix);
  }
  const auto expected = now + request.ttl;
  const auto off = std::chrono::duration_cast<std::chrono::minutes>(cert.not_after > expected ? cert.not_after - expected : expected - cert.not_after);
  if (off > std::chrono::minutes(10)) {
    return fail(ErrorCode::failed,
                fmt::format("the issued certificate expires {} minutes {} than the {} asked for", off.count(),
                            cert.not_after > expected ? "later" : "earlier", go_duration(request.ttl)),
                "kubeadm caps a certificate at its CA's expiry: check it with kubeadm certs check-expiration; " + fix);
  }
  return {};
}

Result<std::string> fetch_kubeconfig(transport::Fleet& fleet, const config::Cluster& cluster, const compat::Row& row,
                                     const UserRequest& request)
{
  const size_t cp = cluster.first_control_plane();
  if (request.name.empty()) {
    TRY_ASSIGN(const auto r, fleet.run(cp, admin_kubeconfig_command()));
    return r.out;
  }
  TRY(check_user_request(request));
  TRY_ASSIGN(const std::string config, kube::render_user_config(cluster, row, cp));
  auto now = std::chrono::system_clock::now();
  TRY_ASSIGN(const auto r, fleet.run(cp, user_kubeconfig_command(request, config)));
  // The lifetime counts from the host's clock (printed first on stderr), which may differ from ours.
  if (const auto lines = text::split(r.err, '\n'); !lines.empty()) {
    try {
      now = std::chrono::system_clock::time_point(std::chrono::seconds(std::stoll(lines.front())));
    } catch (const std::exception&) {
    }
  }
  TRY(check_issued(r.out, request, now));
  return r.out;
}

Status write_kubeconfig(const std::filesystem::path& path, const std::string& kubeconfig, Overwrite overwrite)
{
  std::error_code ec;
  if (std::filesystem::exists(path, ec) && overwrite == Overwrite::no) {
    return tl::unexpected(usage(fmt::format("{} already exists; not overwriting it", path.string()),
                                "pass --force to replace it, or --file another path"));
  }
  return fs::write_file_atomic(path, kubeconfig, 0600);
}

} // namespace mlplat::commands
