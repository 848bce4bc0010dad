#include "facts/facts.hpp"

#include "assets/assets.hpp"
#include "util/text.hpp"

#include <fmt/core.h>
#include <nlohmann/json.hpp>

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

void interpret_ip(HostFacts& f, const std::vector<std::string>& addr_lines, const std::vector<std::string>& route_lines)
{
  const auto addrs = nlohmann::json::parse(text::join(addr_lines, "\n"), nullptr, false);
  if (addrs.is_array()) {
    for (const auto& link : addrs) {
      const std::string name = link.value("ifname", "");
      for (const auto& a : link.value("addr_info", nlohmann::json::array())) {
        f.values["addr"].push_back(fmt::format("{} {}/{}", name, a.value("local", ""), a.value("prefixlen", 0)));
      }
      if (link.value("link_type", "") == "ether") {
        f.values["link"].push_back(fmt::format("{} {} {}", name, link.value("mtu", 0), link.value("address", "")));
      }
    }
  }
  const auto routes = nlohmann::json::parse(text::join(route_lines, "\n"), nullptr, false);
  if (routes.is_array()) {
    for (const auto& r : routes) {
      f.values["route"].push_back(r.value("dst", ""));
    }
  }
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
  return "modules=" + text::shell_quote(text::join(inputs.modules, " ")) + "\n" +
         "ports=" + text::shell_quote(text::join(inputs.ports, " ")) + "\n" +
         "disk_paths=" + text::shell_quote(text::join(inputs.disk_paths, " ")) + "\n" +
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
  interpret_files(f, split_files(sections["files"]));
  f.values["arch"] = {first("arch")};
  f.values["time.epoch"] = {first("time")};
  // A cgroup v2 root always has cgroup.controllers; a v1 or hybrid /sys/fs/cgroup never does.
  f.values["cgroup.fs"] = {f.has("cgroup.controllers") && !f.get("cgroup.controllers").empty() ? "cgroup2fs" : "cgroup v1"};
  for (const auto& line : sections["state"]) { // "systemd yes", "leftover.etcd 0"
    const auto words = text::split(line, ' ');
    if (words.size() == 2) {
      f.values[words[0]] = {words[1]};
    }
  }
  const auto& ip = sections["ip"]; // one JSON array per line: addresses, then routes
  interpret_ip(f, ip.empty() ? std::vector<std::string>() : std::vector<std::string>{ip[0]},
               ip.size() < 2 ? std::vector<std::string>() : std::vector<std::string>{ip[1]});
  for (const auto& line : sections["listen"]) { // netid state recv-q send-q local peer process
    std::vector<std::string> w;
    for (const auto& x : text::split(line, ' ')) {
      if (!x.empty()) {
        w.push_back(x);
      }
    }
    if (w.size() >= 5) {
      f.values["listen"].push_back(w[0] + " " + w[4] + (w.size() >= 7 ? " " + w[6] : ""));
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
