#include "util/net.hpp"

#include <arpa/inet.h>
#include <fmt/core.h>

#include <algorithm>
#include <charconv>

namespace mlplat::net {

namespace {

bool prefix_equal(const IpAddress& a, const IpAddress& b, int bits)
{
  for (int i = 0; i < bits; ++i) {
    const int byte = i / 8;
    const int mask = 0x80 >> (i % 8);
    if ((a.bytes[byte] & mask) != (b.bytes[byte] & mask)) {
      return false;
    }
  }
  return true;
}

} // namespace

Result<IpAddress> parse_ip(std::string_view text)
{
  const std::string s(text);
  IpAddress ip;
  if (inet_pton(AF_INET, s.c_str(), ip.bytes.data()) == 1) {
    ip.family = 4;
    return ip;
  }
  if (inet_pton(AF_INET6, s.c_str(), ip.bytes.data()) == 1) {
    ip.family = 6;
    return ip;
  }
  return fail(ErrorCode::config_invalid, fmt::format("'{}' is not an IPv4 or IPv6 address", text));
}

Result<Cidr> parse_cidr(std::string_view text)
{
  const auto slash = text.find('/');
  if (slash == std::string_view::npos) {
    return fail(ErrorCode::config_invalid, fmt::format("'{}' is not a CIDR range: the /prefix is missing", text),
                "write it as address/prefix, e.g. 10.244.0.0/16");
  }
  auto ip = parse_ip(text.substr(0, slash));
  if (!ip) {
    return fail(ErrorCode::config_invalid,
                fmt::format("'{}' is not a CIDR range: {}", text, ip.error().message), "e.g. 10.244.0.0/16");
  }
  const auto prefix_text = text.substr(slash + 1);
  int prefix = -1;
  const auto [end, ec] = std::from_chars(prefix_text.data(), prefix_text.data() + prefix_text.size(), prefix);
  const int max = ip->family == 4 ? 32 : 128;
  if (ec != std::errc() || end != prefix_text.data() + prefix_text.size() || prefix < 0 || prefix > max) {
    return fail(ErrorCode::config_invalid, fmt::format("'{}' has an invalid prefix length (0-{})", text, max));
  }
  Cidr c{*ip, prefix, std::string(text)};
  IpAddress masked = *ip;
  for (int i = prefix; i < static_cast<int>(ip->size()) * 8; ++i) {
    masked.bytes[i / 8] = static_cast<std::uint8_t>(masked.bytes[i / 8] & ~(0x80 >> (i % 8)));
  }
  if (masked.bytes != ip->bytes) {
    return fail(ErrorCode::config_invalid, fmt::format("'{}' has host bits set", text),
                fmt::format("use {}/{}", to_string(masked), prefix));
  }
  return c;
}

bool overlaps(const Cidr& a, const Cidr& b)
{
  return a.base.family == b.base.family && prefix_equal(a.base, b.base, std::min(a.prefix, b.prefix));
}

bool contains(const Cidr& range, const IpAddress& ip)
{
  return range.base.family == ip.family && prefix_equal(range.base, ip, range.prefix);
}

std::string to_string(const IpAddress& ip)
{
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(ip.family == 4 ? AF_INET : AF_INET6, ip.bytes.data(), buf, sizeof buf);
  return buf;
}

std::string join_host_port(std::string_view host, int port)
{
  const bool v6 = host.find(':') != std::string_view::npos && (host.empty() || host.front() != '[');
  return v6 ? fmt::format("[{}]:{}", host, port) : fmt::format("{}:{}", host, port);
}

} // namespace mlplat::net
