#include "facts/facts.hpp"

#include "assets/assets.hpp"
#include "util/text.hpp"

#include <fmt/core.h>

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <map>

namespace mlplat::facts {

namespace {

using Sections = std::map<std::string, std::vector<std::string>>;

// "@@ name" starts a section; every line until the next marker belongs to it.
Sections split_sections(const std::string& output)
{
  Sections sections;
  std::vector<std::string>* current = nullptr;
  for (const auto& line : text::split(output, '\n')) {
    if (line.rfind("@@ ", 0) == 0) {
      current = &sections[std::string(text::trim(line.substr(3)))];
    } else if (current != nullptr && !line.empty()) {
      current->push_back(line);
    }
  }
  return sections;
}

// "path:content" lines from `grep -H ''` grouped by path.
std::map<std::string, std::vector<std::string>> split_files(const std::vector<std::string>& lines)
{
  std::map<std::string, std::vector<std::string>> files;
  for (const auto& line : lines) {
    const auto colon = line.find(':');
    if (colon != std::string::npos) {
      files[line.substr(0, colon)].push_back(line.substr(colon + 1));
    }
  }
  return files;
}

std::string unquote(std::string_view v)
{
  v = text::trim(v);
  if (v.size() >= 2 && (v.front() == '"' || v.front() == '\'') && v.back() == v.front()) {
    v = v.substr(1, v.size() - 2);
  }
  return std::string(v);
}

// "0-7,9" -> 9.
long cpu_count(const std::string& ranges)
{
  long n = 0;
  for (const auto& part : text::split(text::trim(ranges), ',')) {
    const auto dash = part.find('-');
    try {
      n += dash == std::string::npos ? 1 : std::stol(part.substr(dash + 1)) - std::stol(part.substr(0, dash)) + 1;
    } catch (const std::exception&) {
    }
  }
  return n;
}

// The value of "Key:   123 kB" lines.
std::string meminfo(const std::vector<std::string>& lines, const std::string& key)
{
  for (const auto& line : lines) {
    if (line.rfind(key + ":", 0) == 0) {
      const auto words = text::split(std::string(text::trim(line.substr(key.size() + 1))), ' ');
      return words.empty() ? std::string() : words[0];
    }
  }
  return {};
}

void interpret_files(HostFacts& f, const std::map<std::string, std::vector<std::string>>& files)
{
  auto first = [&](const std::string& path) {
    const auto it = files.find(path);
    return it == files.end() || it->second.empty() ? std::string() : std::string(text::trim(it->second.front()));
  };
  auto set = [&](const std::string& key, const std::string& value) { f.values[key] = {value}; };
  set("hostname", first("/proc/sys/kernel/hostname"));
  set("kernel", first("/proc/sys/kernel/osrelease"));
  set("machine_id", first("/etc/machine-id"));
  set("product_uuid", first("/sys/class/dmi/id/product_uuid"));
  set("cgroup.controllers", first("/sys/fs/cgroup/cgroup.controllers"));
  set("sysctl.net.ipv4.ip_forward", first("/proc/sys/net/ipv4/ip_forward"));
  set("sysctl.net.bridge.bridge-nf-call-iptables", first("/proc/sys/net/bridge/bridge-nf-call-iptables"));
  set("sysctl.fs.inotify.max_user_instances", first("/proc/sys/fs/inotify/max_user_instances"));
  set("sysctl.fs.inotify.max_user_watches", first("/proc/sys/fs/inotify/max_user_watches"));
  set("cpus", std::to_string(cpu_count(first("/sys/devices/system/cpu/online"))));

  const auto os_it = files.count("/etc/os-release") != 0 ? files.find("/etc/os-release") : files.find("/usr/lib/os-release");
  std::map<std::string, std::string> os;
  if (os_it != files.end()) {
    for (const auto& line : os_it->second) {
      if (const auto eq = line.find('='); eq != std::string::npos) {
        os[line.substr(0, eq)] = unquote(line.substr(eq + 1));
      }
    }
  }
  set("os.id", os["ID"]);
  set("os.version", os["VERSION_ID"]);
  set("os.pretty", os["PRETTY_NAME"]);

  const auto mem = files.find("/proc/meminfo");
  const std::vector<std::string> none;
  set("memory.kib", meminfo(mem == files.end() ? none : mem->second, "MemTotal"));
  set("swap.kib", meminfo(mem == files.end() ? none : mem->second, "SwapTotal"));
  if (const auto swaps = files.find("/proc/swaps"); swaps != files.end()) {
    for (size_t i = 1; i < swaps->second.size(); ++i) { // after the header
      std::vector<std::string> words;
      for (const auto& w : text::split(swaps->second[i], ' ')) {
        for (const auto& x : text::split(w, '\t')) {
          if (!x.empty()) {
            words.push_back(x);
          }
        }
      }
      if (words.size() >= 3) {
        f.values["swap.device"].push_back(words[0] + " " + words[2]);
      }
    }
  }
  long nameservers = 0;
  if (const auto resolv = files.find("/etc/resolv.conf"); resolv != files.end()) {
    for (const auto& line : resolv->second) {
      nameservers += line.rfind("nameserver", 0) == 0 ? 1 : 0;
    }
  }
  set("dns.nameservers", std::to_string(nameservers));
  if (const auto status = files.find("/proc/self/status"); status != files.end()) {
    for (const auto& line : status->second) {
      if (line.rfind("Uid:", 0) == 0) {
        std::vector<std::string> ids;
        for (const auto& w : text::split(line.substr(4), '\t')) {
          if (!text::trim(w).empty()) {
            ids.emplace_back(text::trim(w));
          }
        }
        set("privileged", ids.size() >= 2 && ids[1] == "0" ? "yes" : "no");
      }
    }
  }
}

// /proc/net/route and fib_trie hold IPv4 addresses as hex, little-endian.
std::string ipv4_from_hex(const std::string& hex)
{
  const unsigned long v = std::stoul(hex, nullptr, 16);
  return fmt::format("{}.{}.{}.{}", v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, (v >> 24) & 0xff);
}

// /proc/net/tcp6 and if_inet6 hold IPv6 addresses as 32 hex digits (tcp6 in 4-byte little-endian words).
std::string ipv6_from_hex(const std::string& hex, bool little_endian_words)
{
  std::array<unsigned char, 16> bytes{};
  for (size_t i = 0; i < 16; ++i) {
    const size_t word = i / 4;
    const size_t in_word = little_endian_words ? 3 - i % 4 : i % 4;
    bytes[i] = static_cast<unsigned char>(std::stoul(hex.substr((word * 4 + in_word) * 2, 2), nullptr, 16));
  }
  char text[INET6_ADDRSTRLEN] = {};
  inet_ntop(AF_INET6, bytes.data(), text, sizeof text);
  return text;
}

std::vector<std::string> words_of(const std::string& line)
{
  std::vector<std::string> out;
  std::string word;
  for (char c : line) {
    if (c == ' ' || c == '\t') {
      if (!word.empty()) {
        out.push_back(std::move(word));
        word.clear();
      }
    } else {
      word += c;
    }
  }
  if (!word.empty()) {
    out.push_back(std::move(word));
  }
  return out;
}

struct Route4 {
  std::string iface;
  std::uint32_t network = 0;  // host byte order
  int prefix = 0;
};

std::uint32_t ipv4_value(const std::string& dotted)
{
  std::uint32_t v = 0;
  for (const auto& part : text::split(dotted, '.')) {
    v = (v << 8) | static_cast<std::uint32_t>(std::stoul(part));
  }
  return v;
}

// Addresses, routes and links from /proc/net/route, /proc/net/fib_trie, /proc/net/if_inet6 and
// /sys/class/net (what `ip addr` and `ip route` would say, without running them).
void interpret_network(HostFacts& f, const std::map<std::string, std::vector<std::string>>& files,
                       const std::vector<std::string>& links)
{
  std::vector<Route4> routes;
  if (const auto it = files.find("/proc/net/route"); it != files.end()) {
    for (const auto& line : it->second) {
      const auto w = words_of(line);
      if (w.size() < 8 || w[0] == "Iface") {
        continue;
      }
      const std::string dest = ipv4_from_hex(w[1]);
      const int prefix = std::popcount(static_cast<std::uint32_t>(std::stoul(w[7], nullptr, 16)));
      routes.push_back({w[0], ipv4_value(dest), prefix});
      f.values["route"].push_back(prefix == 0 ? std::string("default") : fmt::format("{}/{}", dest, prefix));
    }
  }
  // Local IPv4 addresses: the "/32 host LOCAL" leaves of the FIB trie; interface and prefix from the
  // most specific connected route that holds them.
  std::vector<std::string> locals;
  if (const auto it = files.find("/proc/net/fib_trie"); it != files.end()) {
    std::string last;
    for (const auto& line : it->second) {
      const auto w = words_of(line);
      if (w.size() == 2 && w[0] == "|--") {
        last = w[1];
      } else if (line.find("/32 host LOCAL") != std::string::npos && !last.empty() &&
                 std::find(locals.begin(), locals.end(), last) == locals.end()) {
        locals.push_back(last);
      }
    }
  }
  for (const auto& address : locals) {
    const std::uint32_t v = ipv4_value(address);
    const Route4* best = nullptr;
    for (const auto& r : routes) {
      const std::uint32_t mask = r.prefix == 0 ? 0 : ~std::uint32_t{0} << (32 - r.prefix);
      if (r.prefix > 0 && (v & mask) == r.network && (best == nullptr || r.prefix > best->prefix)) {
        best = &r;
      }
    }
    if (best != nullptr) {
      f.values["addr"].push_back(fmt::format("{} {}/{}", best->iface, address, best->prefix));
    } else if ((v >> 24) == 127) {
      f.values["addr"].push_back(fmt::format("lo {}/8", address));
    } else {
      f.values["addr"].push_back(fmt::format("? {}/32", address));
    }
  }
  if (const auto it = files.find("/proc/net/if_inet6"); it != files.end()) {
    for (const auto& line : it->second) { // address ifindex prefixlen scope flags name
      const auto w = words_of(line);
      if (w.size() == 6 && w[0].size() == 32) {
        f.values["addr"].push_back(fmt::format("{} {}/{}", w[5], ipv6_from_hex(w[0], false), std::stoul(w[2], nullptr, 16)));
      }
    }
  }
  for (const auto& line : links) { // name type mtu mac; type 1 is Ethernet
    const auto w = words_of(line);
    if (w.size() == 4 && w[1] == "1") {
      f.values["link"].push_back(fmt::format("{} {} {}", w[0], w[2], w[3]));
    }
  }
}

// Listening sockets as "tcp 0.0.0.0:6443" from /proc/net/{tcp,tcp6,udp,udp6}: TCP in state LISTEN
// (0A), UDP bound and unconnected (07).
std::vector<std::string> sockets_from_proc(const std::map<std::string, std::vector<std::string>>& files)
{
  std::vector<std::string> out;
  for (const char* proto : {"tcp", "tcp6", "udp", "udp6"}) {
    const auto it = files.find(std::string("/proc/net/") + proto);
    if (it == files.end()) {
      continue;
    }
    const bool tcp = proto[0] == 't';
    for (const auto& line : it->second) { // sl local remote state ...
      const auto w = words_of(line);
      if (w.size() < 4 || w[0] == "sl" || w[3] != (tcp ? "0A" : "07")) {
        continue;
      }
      const auto colon = w[1].find(':');
      if (colon == std::string::npos) {
        continue;
      }
      const std::string hex = w[1].substr(0, colon);
      const unsigned long port = std::stoul(w[1].substr(colon + 1), nullptr, 16);
      out.push_back(hex.size() == 32 ? fmt::format("{} [{}]:{}", tcp ? "tcp" : "udp", ipv6_from_hex(hex, true), port)
                                     : fmt::format("{} {}:{}", tcp ? "tcp" : "udp", ipv4_from_hex(hex), port));
    }
  }
  return out;
}

} // namespace

std::string HostFacts::get(const std::string& key) const
{
  const auto it = values.find(key);
  return it == values.end() || it->second.empty() ? std::string() : it->second.front();
}

const std::vector<std::string>& HostFacts::all(const std::string& key) const
{
  static const std::vector<std::string> none;
  const auto it = values.find(key);
  return it == values.end() ? none : it->second;
}

Result<std::string> probe_script(const ProbeInputs& inputs)
{
  TRY_ASSIGN(const std::string body, assets::read("checks/facts.sh"));
  std::vector<std::string> port_hex; // /proc/net/tcp writes local ports as ":192B " (6443)
  for (const auto& port : inputs.ports) {
    port_hex.push_back(fmt::format(":{:04X} ", std::stoul(port)));
  }
  return "modules=" + text::shell_quote(text::join(inputs.modules, " ")) + "\n" +
         "port_hex=" + text::shell_quote(text::join(port_hex, "\n")) + "\n" +
         "disk_paths=" + text::shell_quote(text::join(inputs.disk_paths, "\n")) + "\n" +
         "profile=" + text::shell_quote(inputs.profile) + "\n" + body;
}

HostFacts parse(const std::string& host, const std::string& probe_output)
{
  HostFacts f;
  f.host = host;
  auto sections = split_sections(probe_output);
  auto first = [&](const std::string& name) {
    const auto& lines = sections[name];
    return lines.empty() ? std::string() : std::string(text::trim(lines.front()));
  };
  const auto files = split_files(sections["files"]);
  interpret_files(f, files);
  f.values["arch"] = {first("arch")}; // from uname when /proc/sys/kernel/arch is absent (below otherwise)
  f.values["time.epoch"] = {first("time")};
  // A cgroup v2 root always has cgroup.controllers; a v1 or hybrid /sys/fs/cgroup never does.
  f.values["cgroup.fs"] = {f.has("cgroup.controllers") && !f.get("cgroup.controllers").empty() ? "cgroup2fs" : "cgroup v1"};
  for (const auto& line : sections["state"]) { // "systemd yes", "leftover.etcd 0"
    const auto words = text::split(line, ' ');
    if (words.size() == 2) {
      f.values[words[0]] = {words[1]};
    }
  }
  interpret_network(f, files, sections["links"]);
  if (const auto arch = files.find("/proc/sys/kernel/arch"); arch != files.end() && !arch->second.empty()) {
    f.values["arch"] = {std::string(text::trim(arch->second.front()))};
  }
  // With the owners (ss -p ran because a watched port is taken) or without (from /proc/net).
  if (!sections["listen"].empty()) {
    for (const auto& line : sections["listen"]) { // netid state recv-q send-q local peer process
      const auto w = words_of(line);
      if (w.size() >= 5) {
        f.values["listen"].push_back(w[0] + " " + w[4] + (w.size() >= 7 ? " " + w[6] : ""));
      }
    }
  } else {
    for (auto& socket : sockets_from_proc(files)) {
      f.values["listen"].push_back(std::move(socket));
    }
  }
  f.values["dns.self"] = {sections["resolves"].empty() ? "no" : "yes"};
  for (const auto& line : sections["modules"]) { // "xt_owner builtin"
    const auto words = text::split(line, ' ');
    if (words.size() == 2) {
      f.values["module." + words[0]] = {words[1]};
    }
  }
  for (const auto& line : sections["binaries"]) { // "ip /usr/sbin/ip" or "conntrack missing"
    const auto words = text::split(line, ' ');
    if (words.size() == 2) {
      f.values["binary." + words[0]] = {words[1]};
    }
  }
  for (const auto& line : sections["firewall"]) { // "ufw inactive"
    const auto words = text::split(line, ' ');
    if (words.size() == 2) {
      f.values["firewall." + words[0]] = {words[1]};
    }
  }
  for (const auto& line : sections["installed"]) { // "containerd containerd github.com/containerd/containerd v2.0.0 …"
    auto words = text::split(line, ' ');
    if (words.size() >= 4 && words[0] == "containerd") {
      f.values["installed.containerd"] = {words[3][0] == 'v' ? words[3].substr(1) : words[3]};
    } else if (words.size() >= 3 && words[0] == "kubelet") {
      f.values["installed.kubelet"] = {words[2][0] == 'v' ? words[2].substr(1) : words[2]};
    }
  }
  // df -Pk rows (after its header) pair with the disk paths in order: "path avail-KiB mount".
  const auto& paths = sections["diskpaths"];
  const auto& df = sections["df"];
  for (size_t i = 0; i < paths.size() && i + 1 < df.size(); ++i) {
    std::vector<std::string> w;
    for (const auto& x : text::split(df[i + 1], ' ')) {
      if (!x.empty()) {
        w.push_back(x);
      }
    }
    if (w.size() >= 6) {
      f.values["disk"].push_back(fmt::format("{} {} {}", paths[i], w[3], w[5]));
    }
  }
  if (sections.count("metadata") != 0) {
    f.values["metadata"] = {first("metadata")};
  }
  return f;
}

std::vector<Result<HostFacts>> gather(transport::Fleet& fleet, const ProbeInputs& inputs)
{
  const auto probe = probe_script(inputs);
  return fleet.for_each<HostFacts>([&](size_t i) -> Result<HostFacts> {
    TRY(probe);
    transport::Command cmd;
    cmd.script = *probe;
    cmd.description = "gather host facts";
    cmd.deadline = std::chrono::seconds(20);
    TRY_ASSIGN(auto result, fleet.run(i, cmd));
    return parse(fleet.endpoint(i).name, result.out);
  });
}

} // namespace mlplat::facts
