// IP addresses and CIDR ranges (IPv4 and IPv6), parsed with inet_pton.
#pragma once

#include "util/error.hpp"

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace mlplat::net {

// --- Interface ---

struct IpAddress {
  int family = 4;                        // 4 or 6
  std::array<std::uint8_t, 16> bytes{};  // IPv4 uses the first 4
  size_t size() const { return family == 4 ? 4 : 16; }
};

struct Cidr {
  IpAddress base;
  int prefix = 0;
  std::string text;
};

// Parses a literal IPv4 or IPv6 address; nullopt-like error when `text` is not one.
Result<IpAddress> parse_ip(std::string_view text);

// Parses "a.b.c.d/n" or "x::/n". Errors say what is wrong: no prefix, bad address, prefix out of range,
// or host bits set (with the corrected range as the fix).
Result<Cidr> parse_cidr(std::string_view text);

// Whether the two ranges share any address (same family only).
bool overlaps(const Cidr& a, const Cidr& b);

// Whether `ip` lies inside `range`.
bool contains(const Cidr& range, const IpAddress& ip);

// Formats an address back to text.
std::string to_string(const IpAddress& ip);

// "host:port", with the brackets an IPv6 address needs there ("[fd00::1]:6443").
std::string join_host_port(std::string_view host, int port);

} // namespace mlplat::net
