#include "config/grammar.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <vector>

namespace mlplat::config::grammar {

namespace {

tl::unexpected<Error> bad(std::string message, std::string fix)
{
  return fail(ErrorCode::config_invalid, std::move(message), std::move(fix));
}

bool is_lower(char c) { return c >= 'a' && c <= 'z'; }
bool is_upper(char c) { return c >= 'A' && c <= 'Z'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alnum(char c) { return is_lower(c) || is_upper(c) || is_digit(c); }
bool is_lower_alnum(char c) { return is_lower(c) || is_digit(c); }
bool is_hex_lower(char c) { return is_digit(c) || (c >= 'a' && c <= 'f'); }

// The first control character (or DEL, or whitespace when `space_too`), as a message part, or empty.
std::string control_problem(std::string_view v, bool space_too)
{
  for (const char c : v) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      return u == '\n' ? "contains a newline" : fmt::format("contains the control character \\x{:02x}", u);
    }
    if (space_too && c == ' ') {
      return "contains a space";
    }
  }
  return {};
}

// Splits on `sep` without allocating more than the parts.
std::vector<std::string_view> split_view(std::string_view s, char sep)
{
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    const size_t at = s.find(sep, start);
    parts.push_back(s.substr(start, at == std::string_view::npos ? std::string_view::npos : at - start));
    if (at == std::string_view::npos) {
      return parts;
    }
    start = at + 1;
  }
}

// A host-name label: letters (lowercase only when `lower`), digits, '-', 1-63, not at either end '-'.
bool host_label(std::string_view l, bool lower)
{
  if (l.empty() || l.size() > 63 || l.front() == '-' || l.back() == '-') {
    return false;
  }
  for (const char c : l) {
    if (!(lower ? is_lower_alnum(c) : is_alnum(c)) && c != '-') {
      return false;
    }
  }
  return true;
}

// Labels as host_label; the last one not all digits (RFC 3696: "10.300.0.1" is no host name).
bool host_name(std::string_view v, bool lower)
{
  if (v.empty() || v.size() > 253) {
    return false;
  }
  const auto labels = split_view(v, '.');
  for (const auto label : labels) {
    if (!host_label(label, lower)) {
      return false;
    }
  }
  return !std::all_of(labels.back().begin(), labels.back().end(), is_digit);
}

bool parse_port(std::string_view s, int& port)
{
  if (s.empty() || s.size() > 5 || !std::all_of(s.begin(), s.end(), is_digit)) {
    return false;
  }
  std::from_chars(s.data(), s.data() + s.size(), port);
  return port >= 1 && port <= 65535;
}

bool is_ip(std::string_view v, int family)
{
  const auto ip = net::parse_ip(v);
  return ip && (family == 0 || ip->family == family);
}

// host[:port], host a name, IPv4 or [IPv6]; `need_port` makes the port required. Fills `out`.
// Returns what is wrong, or empty.
std::string host_port_problem(std::string_view v, bool need_port, HostPort& out)
{
  std::string_view host;
  std::string_view port;
  bool has_port = false;
  if (!v.empty() && v.front() == '[') {
    const auto close = v.find(']');
    if (close == std::string_view::npos) {
      return "has a '[' without its ']'";
    }
    host = v.substr(1, close - 1);
    const auto rest = v.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') {
        return "has something other than ':port' after ']'";
      }
      port = rest.substr(1);
      has_port = true;
    }
    if (!is_ip(host, 6)) {
      return fmt::format("has '{}' in brackets, which is not an IPv6 address", std::string(host.substr(0, 60)));
    }
    out.ipv6 = true;
  } else {
    const auto colon = v.rfind(':');
    if (colon != std::string_view::npos && v.find(':') != colon) {
      return "is an IPv6 address without brackets (write [address]:port)";
    }
    host = colon == std::string_view::npos ? v : v.substr(0, colon);
    if (colon != std::string_view::npos) {
      port = v.substr(colon + 1);
      has_port = true;
    }
    if (host.empty()) {
      return "has no host";
    }
    if (!is_ip(host, 4) && !host_name(host, false)) {
      return "has a host that is neither a host name nor an IP address";
    }
  }
  out.host = std::string(host);
  if (has_port) {
    if (!parse_port(port, out.port)) {
      return "has a port that is not a number from 1 to 65535";
    }
  } else if (need_port) {
    return "has no :port";
  }
  return {};
}

// scheme://host[:port][/path], the path's characters in `path_chars` besides letters and digits.
// `schemes` lists the accepted schemes. Fills scheme and host. Returns what is wrong, or empty.
std::string url_problem(std::string_view v, std::initializer_list<std::string_view> schemes, std::string_view path_chars,
                        std::string& scheme, HostPort& host)
{
  if (const auto c = control_problem(v, true); !c.empty()) {
    return c;
  }
  for (const char c : std::string_view("\"'`\\<>{}|^")) {
    if (v.find(c) != std::string_view::npos) {
      return fmt::format("contains '{}'", c);
    }
  }
  const auto sep = v.find("://");
  if (sep == std::string_view::npos) {
    return "has no scheme (http:// or https://)";
  }
  scheme = std::string(v.substr(0, sep));
  if (std::find(schemes.begin(), schemes.end(), scheme) == schemes.end()) {
    return fmt::format("has the scheme '{}'", std::string(scheme.substr(0, 20)));
  }
  const auto rest = v.substr(sep + 3);
  const auto slash = rest.find('/');
  const auto authority = rest.substr(0, slash);
  const auto path = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
  if (authority.find('@') != std::string_view::npos) {
    return "has user information (user@host)";
  }
  if (rest.find_first_of("?#") != std::string_view::npos) {
    return "has a query or fragment ('?' or '#')";
  }
  if (authority.empty()) {
    return "has no host";
  }
  if (const auto why = host_port_problem(authority, false, host); !why.empty()) {
    return why;
  }
  for (const char c : path) {
    if (!is_alnum(c) && c != '/' && path_chars.find(c) == std::string_view::npos) {
      return fmt::format("has '{}' in its path", c);
    }
  }
  for (const auto segment : split_view(path, '/')) {
    if (segment == "." || segment == "..") {
      return "has a '.' or '..' path segment";
    }
  }
  return {};
}

bool label_name_ok(std::string_view n)
{
  if (n.empty() || n.size() > 63 || !is_alnum(n.front()) || !is_alnum(n.back())) {
    return false;
  }
  return std::all_of(n.begin(), n.end(), [](char c) { return is_alnum(c) || c == '-' || c == '_' || c == '.'; });
}

const char* const k_label_key_fix = "use an optional DNS prefix and '/', then letters, digits, '-', '_', '.' (e.g. example.com/zone)";
const char* const k_label_value_fix =
  "use at most 63 letters, digits, '-', '_' and '.', beginning and ending with a letter or digit (or nothing)";

std::string label_name_problem(std::string_view name)
{
  if (name.empty()) {
    return "has an empty name";
  }
  if (name.size() > 63) {
    return "has a name longer than 63 characters";
  }
  return label_name_ok(name) ? "" : "is not letters, digits, '-', '_' and '.' beginning and ending with a letter or digit";
}

} // namespace

std::string quoted(std::string_view value)
{
  std::string out = "'";
  size_t shown = 0;
  for (const char c : value) {
    if (++shown > 80) {
      out += "...";
      break;
    }
    const auto u = static_cast<unsigned char>(c);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (u < 0x20 || u >= 0x7f) {
      out += fmt::format("\\x{:02x}", u);
    } else {
      out += c;
    }
  }
  return out + "'";
}

Status hostname(std::string_view value)
{
  if (!host_name(value, false)) {
    return bad("is not a host name (RFC 1123)",
               "use letters, digits, '-' and '.', each part 1-63 characters not beginning or ending with '-'");
  }
  return {};
}

Status ipv4(std::string_view value)
{
  if (!is_ip(value, 4)) {
    return bad("is not an IPv4 address", "write an address such as 192.0.2.10");
  }
  return {};
}

Status ipv6(std::string_view value)
{
  if (!is_ip(value, 6)) {
    return bad("is not an IPv6 address", "write an address such as fd00::10 (without brackets or a zone)");
  }
  return {};
}

Status address(std::string_view value)
{
  if (!value.empty() && value.front() == '-') {
    return bad("begins with '-'", "give the host's name or IP address");
  }
  if (!host_name(value, false) && !is_ip(value, 0)) {
    return bad("is neither a host name nor an IP address", "give a name such as bastion.example.com or an address such as 192.0.2.10");
  }
  return {};
}

Status dns_label(std::string_view value)
{
  if (!host_label(value, true)) {
    return bad("is not a DNS-1123 label",
               "use lowercase letters, digits and '-', at most 63 characters, starting and ending with a letter or digit");
  }
  return {};
}

Status kube_subject(std::string_view value)
{
  const auto allowed = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '@' ||
           c == ':';
  };
  const auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); };
  const bool alnum_first = !value.empty() && alnum(value.front());
  if (value.empty() || value.size() > 64 || !alnum_first || !std::all_of(value.begin(), value.end(), allowed)) {
    return bad("is not a user or group name for a client certificate",
               "use 1-64 letters, digits and '-', '.', '_', '@', ':', beginning with a letter or digit (e.g. alice, ml-team)");
  }
  if (value.substr(0, 7) == "system:") {
    return bad("is one of Kubernetes' reserved system: names",
               "choose a name of your own and bind it to a role (kubectl create clusterrolebinding ... --group NAME --clusterrole view); "
               "for full access use the admin kubeconfig (mlplat kubeconfig)");
  }
  return {};
}

Status dns_subdomain(std::string_view value)
{
  if (!host_name(value, true)) {
    return bad("is not a DNS-1123 subdomain",
               "use lowercase letters, digits, '-' and '.' (a DNS name of at most 253 characters)");
  }
  return {};
}

Status subject_alt_name(std::string_view value)
{
  std::string_view name = value;
  if (name.substr(0, 2) == "*.") {
    name.remove_prefix(2);
  }
  if (host_name(name, true) || (name.size() == value.size() && is_ip(value, 0))) {
    return {};
  }
  return bad("is neither a DNS name (optionally *.name) nor an IP address",
             "write a name such as ml.example.com or *.ml.example.com, or an address such as 192.0.2.10 or fd00::10");
}

Result<HostPort> endpoint(std::string_view value)
{
  if (const auto c = control_problem(value, true); !c.empty()) {
    return bad(fmt::format("is not host:port: it {}", c), "write host:port, e.g. 10.0.0.100:6443 or [fd00::100]:6443");
  }
  HostPort hp;
  if (const auto why = host_port_problem(value, true, hp); !why.empty()) {
    return bad(fmt::format("is not host:port: it {}", why), "write host:port, e.g. 10.0.0.100:6443, api.example.com:6443 or [fd00::100]:6443");
  }
  return hp;
}

Result<net::Cidr> cidr(std::string_view value)
{
  auto range = net::parse_cidr(value);
  if (!range) {
    Error e = range.error();
    e.code = ErrorCode::config_invalid;
    return tl::unexpected(std::move(e));
  }
  return range;
}

Status ssh_user(std::string_view value)
{
  const char* const fix = "use a login name of lowercase letters, digits, '_' and '-', starting with a letter or '_', at most 32 characters";
  if (value.size() > 32) {
    return bad("is not a user name: it is longer than 32 characters", fix);
  }
  if (value.empty()) {
    return bad("is not a user name: it is empty", fix);
  }
  for (const char c : value) {
    if (!is_lower_alnum(c) && c != '_' && c != '-') {
      const auto u = static_cast<unsigned char>(c);
      return bad(u < 0x20 || u >= 0x7f ? fmt::format("is not a user name: it contains the byte \\x{:02x}", u)
                 : c == '%'            ? std::string("is not a user name: it contains '%' (an OpenSSH token)")
                                       : fmt::format("is not a user name: it contains '{}'", c),
                 fix);
    }
  }
  if (!is_lower(value.front()) && value.front() != '_') {
    return bad("is not a user name: it must begin with a lowercase letter or '_'", fix);
  }
  return {};
}

Status local_path(std::string_view value)
{
  const char* const fix = "give the file's path without '%', newlines or control characters";
  if (value.empty()) {
    return bad("is an empty path", fix);
  }
  if (const auto c = control_problem(value, false); !c.empty()) {
    return bad("is not a usable path: it " + c, fix);
  }
  if (value.find('%') != std::string_view::npos) {
    return bad("is not a usable path: it contains '%' (OpenSSH would expand it as a token)", fix);
  }
  if (value.front() == '-') {
    return bad("is not a usable path: it begins with '-'", "write it as ./" + std::string(value.substr(0, 60)) + " or an absolute path");
  }
  return {};
}

Status known_hosts_path(std::string_view value)
{
  TRY(local_path(value));
  if (value.find_first_of(" \t") != std::string_view::npos) {
    return bad("is not a usable known_hosts path: it contains whitespace (OpenSSH would read it as two files)",
               "give the file's path without spaces");
  }
  return {};
}

Status registry_host(std::string_view value)
{
  const char* const fix = "name the registry as images do: docker.io, registry.k8s.io, quay.io, my.registry:5000";
  if (value == "." || value == "..") {
    return bad("is not a registry host name", fix);
  }
  if (const auto c = control_problem(value, true); !c.empty()) {
    return bad("is not a registry host name: it " + c, fix);
  }
  if (value.find('/') != std::string_view::npos) {
    return bad("is not a registry host name: it contains '/'", fix);
  }
  HostPort hp;
  if (const auto why = host_port_problem(value, false, hp); !why.empty()) {
    return bad("is not a registry host name: it " + why, fix);
  }
  return {};
}

Status mirror_url(std::string_view value)
{
  std::string scheme;
  HostPort host;
  if (const auto why = url_problem(value, {"http", "https"}, "-._~", scheme, host); !why.empty()) {
    return bad("is not an http(s) URL of a mirror: it " + why,
               "give the mirror's URL as scheme://host[:port][/path], e.g. https://mirror.example.com:5000 or http://10.0.0.1:5000");
  }
  return {};
}

Status base_path(std::string_view value)
{
  const char* const fix = "use a normalized absolute path of its own, such as /var/openebs/local or /data/mlplat";
  if (value.empty() || value.front() != '/') {
    return bad("is not an absolute path", fix);
  }
  if (value == "/") {
    return bad("is the root directory", fix);
  }
  for (const char c : value) {
    if (!is_alnum(c) && c != '.' && c != '_' && c != '/' && c != '-') {
      const auto u = static_cast<unsigned char>(c);
      return bad(c == ' ' ? std::string("contains a space")
                 : u < 0x20 || u >= 0x7f ? fmt::format("contains the byte \\x{:02x}", u)
                                         : fmt::format("contains '{}'", c),
                 "use only letters, digits, '.', '_', '-' and '/'");
    }
  }
  if (value.back() == '/') {
    return bad("ends with '/'", fmt::format("write it as {}", std::string(value.substr(0, value.size() - 1))));
  }
  for (const auto segment : split_view(value.substr(1), '/')) {
    if (segment.empty()) {
      return bad("contains '//'", fix);
    }
    if (segment == "." || segment == "..") {
      return bad("is not normalized: it has a '.' or '..' segment", fix);
    }
  }
  if (value == "/var") {
    return bad("is /var itself", "use a directory of its own under /var, such as /var/openebs/local");
  }
  for (const std::string_view system : {"/etc", "/usr", "/bin", "/sbin", "/lib", "/lib64", "/boot", "/proc", "/sys", "/dev", "/run"}) {
    if (value == system) {
      return bad("is a system directory", fix);
    }
    if (value.substr(0, system.size()) == system && value[system.size()] == '/') {
      return bad(fmt::format("is inside the system directory {}", std::string(system)), fix);
    }
  }
  return {};
}

Status label_key(std::string_view value)
{
  const auto slash = value.find('/');
  if (slash != std::string_view::npos) {
    const auto prefix = value.substr(0, slash);
    if (!host_name(prefix, true)) {
      return bad(fmt::format("has a prefix {} that is not a DNS subdomain", quoted(prefix)), k_label_key_fix);
    }
    if (const auto why = label_name_problem(value.substr(slash + 1)); !why.empty()) {
      return bad(why, k_label_key_fix);
    }
    return {};
  }
  if (const auto why = label_name_problem(value); !why.empty()) {
    return bad(why, k_label_key_fix);
  }
  return {};
}

Status label_value(std::string_view value)
{
  if (value.empty()) {
    return {};
  }
  if (value.size() > 63) {
    return bad("is longer than 63 characters", k_label_value_fix);
  }
  if (!label_name_ok(value)) {
    return bad("is not letters, digits, '-', '_' and '.' beginning and ending with a letter or digit", k_label_value_fix);
  }
  return {};
}

Result<Taint> taint(std::string_view value)
{
  const auto colon = value.rfind(':');
  Taint t;
  const auto kv = colon == std::string_view::npos ? value : value.substr(0, colon);
  t.effect = colon == std::string_view::npos ? "" : std::string(value.substr(colon + 1));
  const auto eq = kv.find('=');
  t.key = std::string(kv.substr(0, eq));
  t.value = eq == std::string_view::npos ? "" : std::string(kv.substr(eq + 1));
  if (t.effect != "NoSchedule" && t.effect != "PreferNoSchedule" && t.effect != "NoExecute") {
    return bad("has no effect NoSchedule, PreferNoSchedule or NoExecute", "write it as kubectl taint does: key[=value]:NoSchedule");
  }
  if (auto k = label_key(t.key); !k) {
    return bad(fmt::format("has a key {} that {}", quoted(t.key), k.error().message), k.error().fix);
  }
  if (auto v = label_value(t.value); !v) {
    return bad(fmt::format("has a value {} that {}", quoted(t.value), v.error().message), v.error().fix);
  }
  return t;
}

Status quantity(std::string_view value)
{
  const char* const fix = "write a Kubernetes quantity such as 100m, 0.5, 256Mi or 2Gi";
  size_t i = 0;
  while (i < value.size() && is_digit(value[i])) {
    ++i;
  }
  if (i == 0 || i > 18) {
    return bad("is not a quantity", fix);
  }
  if (i < value.size() && value[i] == '.') {
    const size_t start = ++i;
    while (i < value.size() && is_digit(value[i])) {
      ++i;
    }
    if (i == start) {
      return bad("is not a quantity", fix);
    }
  }
  const auto suffix = value.substr(i);
  for (const std::string_view s : {"", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"}) {
    if (suffix == s) {
      return {};
    }
  }
  return bad("is not a quantity", fix);
}

Status version(std::string_view value)
{
  const char* const fix = "write a version such as \"1.36.4\" or \"v3.32.1\" (quoted)";
  std::string_view s = value;
  if (!s.empty() && s.front() == 'v') {
    s.remove_prefix(1);
  }
  const auto cut = s.find_first_of("-+");
  const auto core = s.substr(0, cut);
  const auto parts = split_view(core, '.');
  if (parts.size() < 2 || parts.size() > 3) {
    return bad("is not a version like 1.36 or v1.36.2", fix);
  }
  for (const auto p : parts) {
    if (p.empty() || p.size() > 9 || !std::all_of(p.begin(), p.end(), is_digit)) {
      return bad("is not a version like 1.36 or v1.36.2", fix);
    }
  }
  if (cut != std::string_view::npos) {
    const auto extra = s.substr(cut + 1);
    if (extra.empty() || extra.size() > 64 ||
        !std::all_of(extra.begin(), extra.end(), [](char c) { return is_alnum(c) || c == '.' || c == '-' || c == '+'; })) {
      return bad("has a suffix after '-' or '+' that is not letters, digits, '.' and '-'", fix);
    }
  }
  return {};
}

Status date(std::string_view value)
{
  const bool shape = value.size() == 10 && value[4] == '-' && value[7] == '-' &&
                     std::all_of(value.begin(), value.begin() + 4, is_digit) && is_digit(value[5]) && is_digit(value[6]) &&
                     is_digit(value[8]) && is_digit(value[9]);
  if (!shape) {
    return bad("is not a date YYYY-MM-DD", "write it as \"2027-06-28\" (quoted)");
  }
  const int month = (value[5] - '0') * 10 + (value[6] - '0');
  const int day = (value[8] - '0') * 10 + (value[9] - '0');
  if (month < 1 || month > 12 || day < 1 || day > 31) {
    return bad("is not a date YYYY-MM-DD", "write it as \"2027-06-28\" (quoted)");
  }
  return {};
}

Status artifact_url(std::string_view value)
{
  std::string scheme;
  HostPort host;
  if (const auto why = url_problem(value, {"https", "http"}, "-._~%+", scheme, host); !why.empty()) {
    return bad("is not an https URL: it " + why, "give the artifact's https:// URL, without user, query or fragment");
  }
  if (scheme == "http") {
    const auto ip = net::parse_ip(host.host);
    const auto v6_loopback = [](const net::IpAddress& a) {
      return std::all_of(a.bytes.begin(), a.bytes.begin() + 15, [](std::uint8_t b) { return b == 0; }) && a.bytes[15] == 1;
    };
    const bool loopback = host.host == "localhost" || (ip && ip->family == 4 && ip->bytes[0] == 127) ||
                          (ip && ip->family == 6 && v6_loopback(*ip));
    if (!loopback) {
      return bad("is a plain http URL (only a loopback test mirror may use http)", "use the https:// URL");
    }
  }
  return {};
}

Status sha256_hex(std::string_view value)
{
  if (value.size() != 64 || !std::all_of(value.begin(), value.end(), is_hex_lower)) {
    return bad("is not 64 lowercase hex digits", "write the sha256 as sha256sum prints it");
  }
  return {};
}

Status file_name(std::string_view value)
{
  const char* const fix = "use letters, digits, '.', '_' and '-' only";
  if (value.empty() || value.size() > 255 || value == "." || value == "..") {
    return bad("is not a file name", fix);
  }
  for (const char c : value) {
    if (!is_alnum(c) && c != '.' && c != '_' && c != '-') {
      return bad(fmt::format("is not a file name: it contains {}", quoted(std::string_view(&c, 1))), fix);
    }
  }
  return {};
}

Status matrix_id(std::string_view value)
{
  if (value.empty() || value.size() > 128 || !is_lower_alnum(value.front()) ||
      !std::all_of(value.begin(), value.end(), [](char c) { return is_lower_alnum(c) || c == '.' || c == '-'; })) {
    return bad("is not an id like 'k8s-1.36' or 'cni-plugins'", "use lowercase letters, digits, '.' and '-'");
  }
  return {};
}

Status image_reference(std::string_view value)
{
  const char* const fix = "write the image as registry/path:tag or registry/path@sha256:<digest>, e.g. registry.k8s.io/pause:3.10.2";
  if (value.empty() || value.size() > 512) {
    return bad("is not an image reference", fix);
  }
  if (const auto c = control_problem(value, true); !c.empty()) {
    return bad("is not an image reference: it " + c, fix);
  }
  std::string_view rest = value;
  // The digest.
  bool has_digest = false;
  if (const auto at = rest.find('@'); at != std::string_view::npos) {
    const auto digest = rest.substr(at + 1);
    if (digest.substr(0, 7) != "sha256:" || !sha256_hex(digest.substr(7))) {
      return bad("has a digest that is not sha256:<64 lowercase hex digits>", fix);
    }
    rest = rest.substr(0, at);
    has_digest = true;
  }
  // The domain: the first component when it has a '.' or ':' or is localhost.
  std::string_view path = rest;
  if (const auto slash = rest.find('/'); slash != std::string_view::npos) {
    const auto first = rest.substr(0, slash);
    if (first.find_first_of(".:") != std::string_view::npos || first == "localhost" || first.front() == '[') {
      HostPort hp;
      if (!host_port_problem(first, false, hp).empty()) {
        return bad(fmt::format("has a registry {} that is not host[:port]", quoted(first)), fix);
      }
      path = rest.substr(slash + 1);
    }
  }
  // The tag: after the last ':' of the path.
  bool has_tag = false;
  if (const auto colon = path.rfind(':'); colon != std::string_view::npos) {
    const auto tag = path.substr(colon + 1);
    const auto word = [](char c) { return is_alnum(c) || c == '_'; };
    if (tag.empty() || tag.size() > 128 || !word(tag.front()) ||
        !std::all_of(tag.begin(), tag.end(), [&](char c) { return word(c) || c == '.' || c == '-'; })) {
      return bad(fmt::format("has a tag {} that is not letters, digits, '_', '.' and '-' (at most 128)", quoted(tag)), fix);
    }
    path = path.substr(0, colon);
    has_tag = true;
  }
  if (path.empty() || path.size() > 255) {
    return bad("has no repository path", fix);
  }
  for (const auto component : split_view(path, '/')) {
    // alpha-numeric (separator alpha-numeric)*, separator: '.', '_', '__' or one or more '-'.
    if (component.empty() || !is_lower_alnum(component.front()) || !is_lower_alnum(component.back())) {
      return bad(fmt::format("has a path component {} that is not lowercase letters and digits joined by '.', '_' or '-'", quoted(component)), fix);
    }
    for (size_t i = 0; i < component.size(); ++i) {
      const char c = component[i];
      if (is_lower_alnum(c) || c == '-') {
        continue;
      }
      const bool sep_ok = (c == '.' && is_lower_alnum(component[i + 1])) ||
                          (c == '_' && (is_lower_alnum(component[i + 1]) || (component[i + 1] == '_' && is_lower_alnum(component[i + 2]))));
      if (!sep_ok || !is_lower_alnum(component[i - 1])) {
        return bad(fmt::format("has a path component {} that is not lowercase letters and digits joined by '.', '_' or '-'", quoted(component)), fix);
      }
      if (c == '_' && component[i + 1] == '_') {
        ++i;
      }
    }
  }
  if (!has_tag && !has_digest) {
    return bad("has neither a tag nor a digest", "pin the image: add :<tag> or @sha256:<digest>");
  }
  return {};
}

Status repository(std::string_view value)
{
  const char* const fix = "write it as kustomize names it: host/owner/name, e.g. github.com/argoproj/argo-workflows";
  const auto parts = split_view(value, '/');
  if (parts.size() < 2 || !host_name(parts[0], false)) {
    return bad("is not a repository host/owner/name", fix);
  }
  for (size_t i = 1; i < parts.size(); ++i) {
    if (!file_name(parts[i])) {
      return bad("is not a repository host/owner/name", fix);
    }
  }
  return {};
}

Status git_ref(std::string_view value)
{
  const char* const fix = "write the tag or branch, e.g. v4.0.5 (letters, digits, '.', '_', '-' and '/')";
  if (value.empty() || value.size() > 255 || value.front() == '-' || value.front() == '/' || value.back() == '/' ||
      value.find("..") != std::string_view::npos || value.find("//") != std::string_view::npos) {
    return bad("is not a git ref", fix);
  }
  if (!std::all_of(value.begin(), value.end(), [](char c) { return is_alnum(c) || c == '.' || c == '_' || c == '-' || c == '/'; })) {
    return bad("is not a git ref", fix);
  }
  return {};
}

Status text_line(std::string_view value)
{
  if (value.size() > 500) {
    return bad("is longer than 500 characters", "say it in one line");
  }
  if (const auto c = control_problem(value, false); !c.empty()) {
    return bad(c, "say it in one line of plain text");
  }
  return {};
}

} // namespace mlplat::config::grammar
