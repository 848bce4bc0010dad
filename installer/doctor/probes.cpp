#include "doctor/probes.hpp"

#include "util/net.hpp"
#include "util/text.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <regex>
#include <set>

namespace mlplat::doctor {

namespace {

Outcome pass(std::string observed = {})
{
  return {Verdict::pass, std::move(observed)};
}

Outcome fail(std::string observed)
{
  return {Verdict::fail, std::move(observed)};
}

Outcome warn(std::string observed)
{
  return {Verdict::warn, std::move(observed)};
}

Outcome skip(std::string why)
{
  return {Verdict::skip, std::move(why)};
}

// A failure install's prepare fixes.
Outcome fixable(Outcome outcome)
{
  outcome.fixable = true;
  return outcome;
}

long long as_number(const std::string& s, long long fallback = -1)
{
  try {
    size_t used = 0;
    const long long v = std::stoll(s, &used);
    return used > 0 ? v : fallback;
  } catch (const std::exception&) {
    return fallback;
  }
}

std::string gib(double kib)
{
  return fmt::format("{:.1f} GiB", kib / (1024.0 * 1024.0));
}

bool is_control_plane(const HostState& h)
{
  return h.host->role == config::Role::control_plane;
}

// --- Access: how connecting went ---------------------------------------------------------------

Outcome access_reachable(const Context& ctx, size_t i, const Params&)
{
  const auto& h = ctx.hosts[i];
  if (h.connect_error && h.connect_error->code == ErrorCode::connect_failed) {
    return fail(h.connect_error->message);
  }
  return pass(fmt::format("{}:{}", h.host->address, h.host->ssh.port));
}

Outcome access_host_key(const Context& ctx, size_t i, const Params&)
{
  const auto& e = ctx.hosts[i].connect_error;
  if (e && e->code == ErrorCode::connect_failed) {
    return skip("host unreachable");
  }
  if (e && (e->code == ErrorCode::host_key_unknown || e->code == ErrorCode::host_key_changed)) {
    return fail(e->message);
  }
  return pass("known_hosts entry matches");
}

Outcome access_auth(const Context& ctx, size_t i, const Params&)
{
  const auto& e = ctx.hosts[i].connect_error;
  if (e && e->code == ErrorCode::auth_failed) {
    return fail(e->message);
  }
  if (e) {
    return skip("not connected");
  }
  return pass();
}

Outcome sudo_probe(const Context& ctx, size_t i, bool tty)
{
  const auto& h = ctx.hosts[i];
  if (!h.connected()) {
    return skip("not connected");
  }
  if (h.host->ssh.user == "root") {
    return pass("login user is root");
  }
  if (h.sudo_error) {
    const bool is_tty = h.sudo_error->message.find("TTY") != std::string::npos;
    if (is_tty == tty) {
      return fail(h.sudo_error->message);
    }
    return tty ? skip("sudo fails before the TTY question (SSH-004)") : pass();
  }
  return pass(fmt::format("sudo -n works for {}", h.host->ssh.user));
}

Outcome access_sudo(const Context& ctx, size_t i, const Params&)
{
  return sudo_probe(ctx, i, false);
}

Outcome access_sudo_tty(const Context& ctx, size_t i, const Params&)
{
  return sudo_probe(ctx, i, true);
}

Outcome facts_gathered(const Context& ctx, size_t i, const Params&)
{
  const auto& h = ctx.hosts[i];
  if (!h.connected()) {
    return skip("not connected");
  }
  if (h.facts_error) {
    return fail(h.facts_error->message);
  }
  return pass();
}

std::vector<Outcome> clock_skew(const Context& ctx, const Params& params)
{
  // Each host's offset from the operator's clock, measured at the middle of its facts command;
  // the skew of a host is its distance from the median offset.
  std::vector<double> offsets;
  for (const auto& h : ctx.hosts) {
    if (h.facts) {
      offsets.push_back(std::stod("0" + h.facts->get("time.epoch")) - h.local_mid_epoch);
    }
  }
  std::vector<Outcome> out;
  if (offsets.empty()) {
    out.assign(ctx.hosts.size(), skip("no host answered"));
    return out;
  }
  std::vector<double> sorted = offsets;
  std::sort(sorted.begin(), sorted.end());
  const double median = sorted[sorted.size() / 2];
  for (const auto& h : ctx.hosts) {
    if (!h.facts) {
      out.push_back(skip("no facts"));
      continue;
    }
    const double skew = std::fabs(std::stod("0" + h.facts->get("time.epoch")) - h.local_mid_epoch - median);
    const std::string observed = fmt::format("{:.1f} s from the median of {} host{}", skew, offsets.size(), offsets.size() == 1 ? "" : "s");
    if (skew > params.number("errorSeconds")) {
      out.push_back(fail(observed));
    } else if (skew > params.number("warnSeconds")) {
      out.push_back(warn(observed));
    } else {
      out.push_back(pass(observed));
    }
  }
  return out;
}

// --- Operating system ----------------------------------------------------------------------------

// The compatibility gate on one host's facts (compat::check_hosts): the matrix decides what an OS,
// a kernel or an installed version must be; doctor reports it with the gate's rule and row.
compat::GateResult host_gate(const Context& ctx, size_t i)
{
  const auto& f = *ctx.hosts[i].facts;
  compat::HostVersions hv;
  hv.host = ctx.hosts[i].host->name;
  hv.os_id = f.get("os.id");
  hv.os_version = f.get("os.version");
  hv.kernel = f.get("kernel");
  hv.containerd = f.get("installed.containerd");
  hv.kubelet = f.get("installed.kubelet");
  return compat::check_hosts(*ctx.matrix, *ctx.row, {hv});
}

// The gate's verdicts for `rules` as one outcome: the refusals with their rule, row and the supported
// alternative, else `passed`.
Outcome from_gate(const compat::GateResult& gate, std::initializer_list<std::string_view> rules, std::string passed)
{
  std::vector<std::string> refused;
  for (const auto& f : gate.findings) {
    if (f.level == compat::Level::error && std::find(rules.begin(), rules.end(), f.rule) != rules.end()) {
      refused.push_back(fmt::format("{} [{}, matrix row {}; supported: {}]", f.reason, f.rule, f.row, f.supported));
    }
  }
  return refused.empty() ? pass(std::move(passed)) : fail(text::join(refused, "; "));
}

Outcome os_supported(const Context& ctx, size_t i, const Params&)
{
  const auto& f = *ctx.hosts[i].facts;
  return from_gate(host_gate(ctx, i), {"MAT-006"}, f.get("os.pretty"));
}

Outcome arch_supported(const Context& ctx, size_t i, const Params& params)
{
  const std::string arch = ctx.hosts[i].facts->get("arch");
  const auto& ok = params.list("supported");
  if (std::find(ok.begin(), ok.end(), arch) != ok.end()) {
    return pass(arch);
  }
  return fail(fmt::format("architecture {} is not one of {}", arch, text::join(ok, ", ")));
}

Outcome systemd_running(const Context& ctx, size_t i, const Params&)
{
  return ctx.hosts[i].facts->get("systemd") == "yes" ? pass("systemd is running")
                                                    : fail("systemd is not running (/run/systemd/system is missing)");
}

Outcome kernel_version(const Context& ctx, size_t i, const Params& params)
{
  const std::string kernel = ctx.hosts[i].facts->get("kernel");
  if (auto floor = from_gate(host_gate(ctx, i), {"MAT-007"}, kernel); floor.verdict != Verdict::pass) {
    return floor;
  }
  if (compare_versions(kernel, params.text("recommended")) < 0) {
    return warn(fmt::format("kernel {} is older than {}, the first with good cgroup v2 support", kernel, params.text("recommended")));
  }
  return pass(kernel);
}

Outcome cgroup_v2(const Context& ctx, size_t i, const Params& params)
{
  const std::string fs = ctx.hosts[i].facts->get("cgroup.fs");
  if (fs == "cgroup2fs") {
    return pass("cgroup v2");
  }
  const std::string observed = "cgroup v1 (/sys/fs/cgroup is not a cgroup v2 hierarchy)";
  if (compare_versions(ctx.kubernetes, params.text("requiredFrom")) >= 0) {
    return fail(fmt::format("{}; Kubernetes {} refuses cgroup v1 (failCgroupV1)", observed, ctx.kubernetes));
  }
  return warn(observed + "; cgroup v1 is in maintenance mode");
}

Outcome cgroup_controllers(const Context& ctx, size_t i, const Params& params)
{
  const auto& f = *ctx.hosts[i].facts;
  if (f.get("cgroup.fs") != "cgroup2fs") {
    return skip("cgroup v1 (OS-005)");
  }
  const auto available = text::split(f.get("cgroup.controllers"), ' ');
  std::vector<std::string> missing;
  for (const auto& c : params.list("required")) {
    if (std::find(available.begin(), available.end(), c) == available.end()) {
      missing.push_back(c);
    }
  }
  if (!missing.empty()) {
    return fail(fmt::format("missing cgroup controllers: {} (available: {})", text::join(missing, ", "), f.get("cgroup.controllers")));
  }
  return pass(f.get("cgroup.controllers"));
}

Outcome swap_off(const Context& ctx, size_t i, const Params&)
{
  const auto& f = *ctx.hosts[i].facts;
  const auto& devices = f.all("swap.device");
  const long long kib = as_number(f.get("swap.kib"), 0);
  if (devices.empty() && kib == 0) {
    return pass("no swap");
  }
  std::vector<std::string> shown;
  for (const auto& d : devices) {
    const auto parts = text::split(d, ' ');
    shown.push_back(parts.size() == 2 ? fmt::format("{} ({})", parts[0], gib(static_cast<double>(as_number(parts[1], 0)))) : d);
  }
  return fixable(fail(fmt::format("swap is on: {}", shown.empty() ? gib(static_cast<double>(kib)) : text::join(shown, ", "))));
}

Outcome cpu_minimum(const Context& ctx, size_t i, const Params& params)
{
  const auto& h = ctx.hosts[i];
  const long long cpus = as_number(h.facts->get("cpus"));
  const double minimum = params.number(is_control_plane(h) ? "controlPlane" : "worker");
  if (static_cast<double>(cpus) < minimum) {
    return fail(fmt::format("{} CPU{}; a {} needs at least {}", cpus, cpus == 1 ? "" : "s", config::to_string(h.host->role), minimum));
  }
  return pass(fmt::format("{} CPUs", cpus));
}

Outcome memory_minimum(const Context& ctx, size_t i, const Params& params)
{
  const auto& h = ctx.hosts[i];
  const long long mib = as_number(h.facts->get("memory.kib")) / 1024;
  const double minimum = params.number(is_control_plane(h) ? "controlPlaneMiB" : "workerMiB");
  if (static_cast<double>(mib) < minimum) {
    return fail(fmt::format("{} MiB of memory; a {} needs at least {} MiB", mib, config::to_string(h.host->role), minimum));
  }
  return pass(fmt::format("{} MiB", mib));
}

Outcome hostname_valid(const Context& ctx, size_t i, const Params&)
{
  static const std::regex dns("[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*");
  const std::string name = ctx.hosts[i].facts->get("hostname");
  if (name.size() <= 253 && std::regex_match(name, dns)) {
    return pass(name);
  }
  return fail(fmt::format("hostname '{}' is not a valid node name (lowercase DNS name)", name));
}

// For each host, the other hosts sharing one of the values `values` gives for it.
std::vector<Outcome> unique_by(const Context& ctx, const std::function<std::vector<std::string>(const facts::HostFacts&)>& values,
                               const std::string& what)
{
  std::map<std::string, std::vector<size_t>> owners;
  for (size_t i = 0; i < ctx.hosts.size(); ++i) {
    if (ctx.hosts[i].facts) {
      for (const auto& v : values(*ctx.hosts[i].facts)) {
        if (!v.empty()) {
          owners[v].push_back(i);
        }
      }
    }
  }
  std::vector<Outcome> out;
  for (size_t i = 0; i < ctx.hosts.size(); ++i) {
    if (!ctx.hosts[i].facts) {
      out.push_back(skip("no facts"));
      continue;
    }
    std::vector<std::string> clashes;
    for (const auto& v : values(*ctx.hosts[i].facts)) {
      if (v.empty()) {
        continue;
      }
      std::vector<std::string> others;
      for (size_t j : owners[v]) {
        if (j != i) {
          others.push_back(ctx.hosts[j].host->name);
        }
      }
      if (!others.empty()) {
        clashes.push_back(fmt::format("{} {} is also on {}", what.empty() ? std::string() : what, v, text::join(others, ", ")));
      }
    }
    out.push_back(clashes.empty() ? pass() : fail(text::join(clashes, "; ")));
  }
  return out;
}

std::vector<Outcome> hostname_unique(const Context& ctx, const Params&)
{
  return unique_by(ctx, [](const facts::HostFacts& f) { return std::vector<std::string>{f.get("hostname")}; }, "hostname");
}

std::vector<Outcome> identity_unique(const Context& ctx, const Params&)
{
  const auto uuid = unique_by(ctx, [](const facts::HostFacts& f) { return std::vector<std::string>{f.get("product_uuid")}; }, "product_uuid");
  const auto machine = unique_by(ctx, [](const facts::HostFacts& f) { return std::vector<std::string>{f.get("machine_id")}; }, "machine-id");
  const auto macs = unique_by(ctx, [](const facts::HostFacts& f) {
    std::vector<std::string> out;
    for (const auto& link : f.all("link")) { // "eth0 1500 aa:bb:..."
      const auto parts = text::split(link, ' ');
      if (parts.size() == 3 && parts[2] != "00:00:00:00:00:00") {
        out.push_back(parts[2]);
      }
    }
    return out;
  }, "MAC");
  std::vector<Outcome> out;
  for (size_t i = 0; i < ctx.hosts.size(); ++i) {
    std::vector<std::string> problems;
    for (const auto* o : {&uuid[i], &machine[i], &macs[i]}) {
      if (o->verdict == Verdict::fail) {
        problems.push_back(o->observed);
      }
    }
    if (uuid[i].verdict == Verdict::skip) {
      out.push_back(uuid[i]);
    } else if (!problems.empty()) {
      out.push_back(fail(text::join(problems, "; ")));
    } else {
      const bool no_uuid = ctx.hosts[i].facts->get("product_uuid").empty();
      out.push_back(pass(no_uuid ? "machine-id and MACs unique (no product_uuid on this host)" : "product_uuid, machine-id and MACs unique"));
    }
  }
  return out;
}

// The host's addresses as (interface, address) from "eth0 10.0.0.5/24" lines.
std::vector<std::pair<std::string, std::string>> addresses(const facts::HostFacts& f)
{
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& a : f.all("addr")) {
    const auto parts = text::split(a, ' ');
    if (parts.size() == 2) {
      out.emplace_back(parts[0], parts[1]);
    }
  }
  return out;
}

Outcome address_present(const Context& ctx, size_t i, const Params&)
{
  const auto& h = ctx.hosts[i];
  if (!net::parse_ip(h.host->internal_address)) {
    return skip(fmt::format("{} is a name, not an address", h.host->internal_address));
  }
  for (const auto& [iface, cidr] : addresses(*h.facts)) {
    if (cidr.substr(0, cidr.find('/')) == h.host->internal_address) {
      return pass(fmt::format("{} on {}", h.host->internal_address, iface));
    }
  }
  return fail(fmt::format("{} is not an address of this host (it has {})", h.host->internal_address, [&] {
    std::vector<std::string> all;
    for (const auto& [iface, cidr] : addresses(*h.facts)) {
      all.push_back(cidr);
    }
    return text::join(all, ", ");
  }()));
}

Outcome hostname_resolves(const Context& ctx, size_t i, const Params&)
{
  const auto& f = *ctx.hosts[i].facts;
  return f.get("dns.self") == "yes" ? pass() : fail(fmt::format("'{}' does not resolve (getent hosts)", f.get("hostname")));
}

Outcome dns_configured(const Context& ctx, size_t i, const Params&)
{
  const long long n = as_number(ctx.hosts[i].facts->get("dns.nameservers"), 0);
  return n > 0 ? pass(fmt::format("{} nameserver{}", n, n == 1 ? "" : "s")) : fail("no nameserver in /etc/resolv.conf");
}

Outcome binaries_present(const Context& ctx, size_t i, const Params& params)
{
  const auto& f = *ctx.hosts[i].facts;
  auto missing = [&](const std::vector<std::string>& names) {
    std::vector<std::string> out;
    for (const auto& b : names) {
      if (f.get("binary." + b) == "missing" || f.get("binary." + b).empty()) {
        out.push_back(b);
      }
    }
    return out;
  };
  std::vector<std::string> required = params.list("required");
  if (compare_versions(ctx.kubernetes, params.text("conntrackBefore")) < 0) {
    required.push_back("conntrack");
  }
  if (const auto m = missing(required); !m.empty()) {
    return fail(fmt::format("missing: {}", text::join(m, ", ")));
  }
  if (const auto m = missing(params.list("recommended")); !m.empty()) {
    return warn(fmt::format("missing (recommended): {}", text::join(m, ", ")));
  }
  return pass();
}

Outcome firewall_inactive(const Context& ctx, size_t i, const Params&)
{
  std::vector<std::string> active;
  for (const char* fw : {"firewalld", "ufw", "nftables"}) {
    if (ctx.hosts[i].facts->get(std::string("firewall.") + fw) == "active") {
      active.push_back(fw);
    }
  }
  return active.empty() ? pass() : fail(fmt::format("{} active", text::join(active, ", ")));
}

Outcome installed_versions(const Context& ctx, size_t i, const Params&)
{
  const auto& f = *ctx.hosts[i].facts;
  const bool none = f.get("installed.containerd").empty() && f.get("installed.kubelet").empty();
  return from_gate(host_gate(ctx, i), {"MAT-008", "MAT-009"},
                   none ? "neither containerd nor kubelet installed" : "installed versions fit matrix row " + ctx.row->id);
}

Outcome no_leftover_state(const Context& ctx, size_t i, const Params&)
{
  const auto& f = *ctx.hosts[i].facts;
  std::vector<std::string> found;
  if (as_number(f.get("leftover.manifests"), 0) > 0) {
    found.push_back(fmt::format("{} file(s) in /etc/kubernetes/manifests", f.get("leftover.manifests")));
  }
  if (as_number(f.get("leftover.etcd"), 0) > 0) {
    found.push_back("data in /var/lib/etcd");
  }
  if (f.get("leftover.kubelet_conf") == "yes") {
    found.push_back("/etc/kubernetes/kubelet.conf exists");
  }
  return found.empty() ? pass() : fail(text::join(found, ", "));
}

// The cluster's total of `key` (divided by `divisor`) against what the platform needs: the rendered
// platform's requests plus Kubernetes' own (`system`) when known, else the check's fixed figure.
Outcome platform_total(const Context& ctx, const std::string& key, double fixed, double system, std::optional<double> rendered, double divisor,
                       const std::string& unit)
{
  double total = 0;
  size_t counted = 0;
  for (const auto& h : ctx.hosts) {
    if (h.facts) {
      total += static_cast<double>(as_number(h.facts->get(key), 0)) / divisor;
      ++counted;
    }
  }
  const std::string observed = fmt::format("{:.1f} {} across {} host{}", total, unit, counted, counted == 1 ? "" : "s");
  if (counted == 0) {
    return skip("no host answered");
  }
  if (rendered) {
    const double needed = *rendered + system;
    const std::string demand = fmt::format("{:.1f} {} requested by {} plus about {:.2f} for Kubernetes itself", *rendered, unit,
                                           ctx.platform->source, system);
    return total < needed ? fail(fmt::format("{}; {} need {:.2f}", observed, demand, needed)) : pass(fmt::format("{}; {}", observed, demand));
  }
  return total < fixed ? fail(fmt::format("{}; the platform needs about {:.0f}", observed, fixed)) : pass(observed);
}

Outcome platform_cpus(const Context& ctx, const Params& params)
{
  return platform_total(ctx, "cpus", params.number("cpus"), params.number("systemCpus"),
                        ctx.platform ? std::optional<double>(ctx.platform->cpus) : std::nullopt, 1.0, "CPUs");
}

Outcome platform_memory(const Context& ctx, const Params& params)
{
  return platform_total(ctx, "memory.kib", params.number("memoryGiB"), params.number("systemMemoryGiB"),
                        ctx.platform ? std::optional<double>(ctx.platform->memory_gib) : std::nullopt, 1024.0 * 1024.0, "GiB");
}

// --- Kernel and network --------------------------------------------------------------------------

Outcome ip_forward(const Context& ctx, size_t i, const Params&)
{
  const std::string v = ctx.hosts[i].facts->get("sysctl.net.ipv4.ip_forward");
  return v == "1" ? pass("net.ipv4.ip_forward = 1") : fixable(fail(fmt::format("net.ipv4.ip_forward = {}", v.empty() ? "?" : v)));
}

Outcome bridge_netfilter(const Context& ctx, size_t i, const Params&)
{
  const auto& f = *ctx.hosts[i].facts;
  const std::string module = f.get("module.br_netfilter");
  const std::string sysctl = f.get("sysctl.net.bridge.bridge-nf-call-iptables");
  if (module == "missing" || module.empty()) {
    return fail("br_netfilter is neither loaded, built in, nor loadable");
  }
  if (module == "loadable") {
    // /proc/sys/net/bridge exists only once the module is loaded.
    return fixable(fail("br_netfilter loadable, not loaded (net.bridge.bridge-nf-call-iptables appears once it is)"));
  }
  if (sysctl != "1") {
    return fixable(fail(fmt::format("br_netfilter {}, net.bridge.bridge-nf-call-iptables = {}", module, sysctl.empty() ? "(absent)" : sysctl)));
  }
  return pass(fmt::format("br_netfilter {}, bridge-nf-call-iptables = 1", module));
}

Outcome modules_available(const Context& ctx, size_t i, const Params& params)
{
  std::vector<std::string> missing;
  std::vector<std::string> loadable;
  for (const auto& m : params.list("modules")) {
    const std::string state = ctx.hosts[i].facts->get("module." + m);
    if (state.empty() || state == "missing") {
      missing.push_back(m);
    } else if (state == "loadable") {
      loadable.push_back(m);
    }
  }
  if (!missing.empty()) {
    return fail(fmt::format("missing kernel modules: {}", text::join(missing, ", ")));
  }
  if (!loadable.empty()) {
    return fixable(fail(fmt::format("loadable, not loaded: {}", text::join(loadable, ", "))));
  }
  return pass(fmt::format("{} modules loaded or built in", params.list("modules").size()));
}

Outcome ports_free(const Context& ctx, size_t i, const Params& params)
{
  const auto& h = ctx.hosts[i];
  const auto& wanted = params.list(is_control_plane(h) ? "controlPlane" : "worker");
  static const std::regex process("\\(\"([^\"]+)\",pid=([0-9]+)");
  std::vector<std::string> taken;
  for (const auto& line : h.facts->all("listen")) { // "tcp 0.0.0.0:6443 users:((\"socat\",pid=12,fd=3))"
    const auto parts = text::split(line, ' ');
    if (parts.size() < 2) {
      continue;
    }
    const std::string port = parts[1].substr(parts[1].rfind(':') + 1);
    if (std::find(wanted.begin(), wanted.end(), port) == wanted.end()) {
      continue;
    }
    std::smatch m;
    const std::string users = parts.size() > 2 ? parts[2] : "";
    const std::string owner = std::regex_search(users, m, process) ? fmt::format("{} (pid {})", m[1].str(), m[2].str())
                                                                    : std::string("an unknown process (run doctor with sudo rights to see it)");
    taken.push_back(fmt::format("port {}/{} is taken by {}", port, parts[0], owner));
  }
  if (!taken.empty()) {
    return fail(text::join(taken, "; "));
  }
  return pass(fmt::format("ports {} free", text::join(wanted, ", ")));
}

Outcome cidr_clear(const Context& ctx, size_t i, const Params&)
{
  const auto& c = *ctx.cluster;
  const auto pod = net::parse_cidr(c.network.pod_cidr);
  const auto svc = net::parse_cidr(c.network.service_cidr);
  if (!pod || !svc) {
    return skip("ranges invalid (the config check reports them)");
  }
  std::vector<std::pair<std::string, std::string>> networks; // (text, what)
  for (const auto& r : ctx.hosts[i].facts->all("route")) {
    if (r != "default") {
      networks.emplace_back(r.find('/') == std::string::npos ? r + (r.find(':') == std::string::npos ? "/32" : "/128") : r, "route");
    }
  }
  for (const auto& [iface, cidr] : addresses(*ctx.hosts[i].facts)) {
    if (cidr.rfind("fe80:", 0) != 0) {
      networks.emplace_back(cidr, "address on " + iface);
    }
  }
  std::vector<std::string> clashes;
  for (const auto& [text, what] : networks) {
    // Host addresses come with their prefix (10.0.0.5/24): compare the network they are in.
    auto ip = net::parse_ip(text.substr(0, text.find('/')));
    const int prefix = static_cast<int>(as_number(text.substr(text.find('/') + 1), 32));
    if (!ip) {
      continue;
    }
    net::Cidr network{*ip, prefix, text};
    for (const auto* range : {&*pod, &*svc}) {
      if (net::overlaps(*range, network)) {
        clashes.push_back(fmt::format("{} {} overlaps {} {}", range == &*pod ? "podCIDR" : "serviceCIDR", range->text, what, text));
      }
    }
  }
  if (!clashes.empty()) {
    return fail(text::join(clashes, "; "));
  }
  return pass(fmt::format("{} and {} clear of {} host networks", pod->text, svc->text, networks.size()));
}

// The MTU of the interface holding the host's internal address, or -1.
long long cluster_interface_mtu(const HostState& h, std::string* iface_out = nullptr)
{
  std::string iface;
  for (const auto& [name, cidr] : addresses(*h.facts)) {
    if (cidr.substr(0, cidr.find('/')) == h.host->internal_address) {
      iface = name;
    }
  }
  for (const auto& link : h.facts->all("link")) { // "eth0 1500 aa:bb:.."
    const auto parts = text::split(link, ' ');
    if (parts.size() >= 2 && parts[0] == iface) {
      if (iface_out != nullptr) {
        *iface_out = iface;
      }
      return as_number(parts[1]);
    }
  }
  return -1;
}

std::vector<Outcome> mtu_consistent(const Context& ctx, const Params&)
{
  std::map<long long, size_t> count;
  for (const auto& h : ctx.hosts) {
    if (h.facts && cluster_interface_mtu(h) > 0) {
      ++count[cluster_interface_mtu(h)];
    }
  }
  const long long common = count.empty() ? -1
                           : std::max_element(count.begin(), count.end(), [](const auto& a, const auto& b) { return a.second < b.second; })->first;
  std::vector<Outcome> out;
  for (const auto& h : ctx.hosts) {
    if (!h.facts) {
      out.push_back(skip("no facts"));
      continue;
    }
    std::string iface;
    const long long mtu = cluster_interface_mtu(h, &iface);
    if (mtu < 0) {
      out.push_back(skip("no interface holds the configured address (OS-014)"));
    } else if (mtu != common) {
      out.push_back(fail(fmt::format("{} has MTU {}, most hosts have {}", iface, mtu, common)));
    } else {
      out.push_back(pass(fmt::format("{} MTU {}", iface, mtu)));
    }
  }
  return out;
}

Outcome inotify_limits(const Context& ctx, size_t i, const Params& params)
{
  const auto& f = *ctx.hosts[i].facts;
  const long long instances = as_number(f.get("sysctl.fs.inotify.max_user_instances"));
  const long long watches = as_number(f.get("sysctl.fs.inotify.max_user_watches"));
  const std::string observed = fmt::format("fs.inotify.max_user_instances = {}, max_user_watches = {}", instances, watches);
  const auto below = [](long long value, double floor) { return static_cast<double>(value) < floor; };
  if (below(instances, params.number("floorInstances")) || below(watches, params.number("floorWatches"))) {
    return fixable(fail(observed + fmt::format("; Kubeflow pods fail with 'too many open files' below {:.0f} / {:.0f}",
                                               params.number("instances"), params.number("watches"))));
  }
  if (below(instances, params.number("instances")) || below(watches, params.number("watches"))) {
    return fixable(warn(observed + fmt::format("; Kubeflow recommends {:.0f} / {:.0f}", params.number("instances"), params.number("watches"))));
  }
  return pass(observed);
}

Outcome cni_mtu(const Context& ctx, size_t i, const Params& params)
{
  const auto& configured = ctx.cluster->network.mtu;
  std::string iface;
  const long long mtu = cluster_interface_mtu(ctx.hosts[i], &iface);
  if (mtu < 0) {
    return skip("no interface holds the configured address (OS-014)");
  }
  if (!configured) {
    return pass(fmt::format("CNI MTU will be {} ({} {} minus {:.0f})", mtu - static_cast<long long>(params.number("overhead")), iface,
                            mtu, params.number("overhead")));
  }
  if (*configured + params.number("overhead") > static_cast<double>(mtu)) {
    return fail(fmt::format("spec.network.mtu {} plus {:.0f} bytes of encapsulation exceeds {} MTU {}; use at most {}", *configured,
                            params.number("overhead"), iface, mtu, mtu - static_cast<long long>(params.number("overhead"))));
  }
  return pass(fmt::format("spec.network.mtu {} fits {} MTU {}", *configured, iface, mtu));
}

// --- Disks ---------------------------------------------------------------------------------------

// (available KiB, mount point) of a path the probe reported, or (-1, "").
std::pair<long long, std::string> disk(const facts::HostFacts& f, const std::string& path)
{
  for (const auto& d : f.all("disk")) { // "/var/lib/kubelet 209715200 /var/lib/kubelet"
    const auto parts = text::split(d, ' ');
    if (parts.size() == 3 && parts[0] == path) {
      return {as_number(parts[1]), parts[2]};
    }
  }
  return {-1, ""};
}

Outcome disk_free(const Context& ctx, size_t i, const Params& params)
{
  const double kib_per_gib = 1024.0 * 1024.0;
  std::vector<std::string> errors;
  std::vector<std::string> warnings;
  std::vector<std::string> seen;
  for (const auto& path : params.list("paths")) {
    const auto [avail, mount] = disk(*ctx.hosts[i].facts, path);
    if (avail < 0) {
      errors.push_back(fmt::format("free space of {} unknown", path));
      continue;
    }
    const std::string item = fmt::format("{} free for {} (on {})", gib(static_cast<double>(avail)), path, mount);
    seen.push_back(item);
    if (static_cast<double>(avail) < params.number("errorGiB") * kib_per_gib) {
      errors.push_back(item + fmt::format("; at least {:.0f} GiB needed", params.number("errorGiB")));
    } else if (static_cast<double>(avail) < params.number("warnGiB") * kib_per_gib) {
      warnings.push_back(item + fmt::format("; {:.0f} GiB recommended", params.number("warnGiB")));
    }
  }
  if (!errors.empty()) {
    return fail(text::join(errors, "; "));
  }
  if (!warnings.empty()) {
    return warn(text::join(warnings, "; "));
  }
  return pass(text::join(seen, "; "));
}

Outcome storage_capacity(const Context& ctx, size_t i, const Params& params)
{
  const std::string& base = ctx.cluster->storage.base_path;
  const auto [avail, mount] = disk(*ctx.hosts[i].facts, base);
  if (avail < 0) {
    return fail(fmt::format("free space of {} unknown", base));
  }
  const std::string observed = fmt::format("{} free for {} (on {})", gib(static_cast<double>(avail)), base, mount);
  if (static_cast<double>(avail) < params.number("minimumGiB") * 1024.0 * 1024.0) {
    return fail(observed + fmt::format("; at least {:.0f} GiB needed", params.number("minimumGiB")));
  }
  return pass(observed);
}

// --- Profiles ------------------------------------------------------------------------------------

Outcome metadata_reachable(const Context& ctx, size_t i, const Params&)
{
  return ctx.hosts[i].facts->get("metadata") == "yes" ? pass("metadata service answered")
                                                      : fail("the metadata service did not answer within 3 s");
}

Outcome interface_mtu(const Context& ctx, size_t i, const Params& params)
{
  std::string iface;
  const long long mtu = cluster_interface_mtu(ctx.hosts[i], &iface);
  if (mtu < 0) {
    return skip("no interface holds the configured address (OS-014)");
  }
  if (static_cast<double>(mtu) != params.number("expected")) {
    return fail(fmt::format("{} MTU is {}, the network's usual MTU is {:.0f}", iface, mtu, params.number("expected")));
  }
  return pass(fmt::format("{} MTU {}", iface, mtu));
}

Outcome base_path_mounted(const Context& ctx, size_t i, const Params&)
{
  const std::string& base = ctx.cluster->storage.base_path;
  const auto [avail, mount] = disk(*ctx.hosts[i].facts, base);
  if (mount.empty() || mount == "/") {
    return fail(fmt::format("{} is on the root filesystem, not on a data volume", base));
  }
  return pass(fmt::format("{} is on {}", base, mount));
}

const std::vector<ProbeInfo>& registry()
{
  using K = ParamKind;
  static const std::vector<ProbeInfo> probes{
    {"access_reachable", access_reachable, nullptr, nullptr, false, {}},
    {"access_host_key", access_host_key, nullptr, nullptr, false, {}},
    {"access_auth", access_auth, nullptr, nullptr, false, {}},
    {"access_sudo", access_sudo, nullptr, nullptr, false, {}},
    {"access_sudo_tty", access_sudo_tty, nullptr, nullptr, false, {}},
    {"facts_gathered", facts_gathered, nullptr, nullptr, false, {}},
    {"clock_skew", nullptr, clock_skew, nullptr, true, {{"warnSeconds", K::number}, {"errorSeconds", K::number}}},
    {"os_supported", os_supported, nullptr, nullptr, true, {}},
    {"arch_supported", arch_supported, nullptr, nullptr, true, {{"supported", K::list}}},
    {"systemd_running", systemd_running, nullptr, nullptr, true, {}},
    {"kernel_version", kernel_version, nullptr, nullptr, true, {{"recommended", K::text}}},
    {"cgroup_v2", cgroup_v2, nullptr, nullptr, true, {{"requiredFrom", K::text}}},
    {"cgroup_controllers", cgroup_controllers, nullptr, nullptr, true, {{"required", K::list}}},
    {"swap_off", swap_off, nullptr, nullptr, true, {}, true},
    {"cpu_minimum", cpu_minimum, nullptr, nullptr, true, {{"controlPlane", K::number}, {"worker", K::number}}},
    {"memory_minimum", memory_minimum, nullptr, nullptr, true, {{"controlPlaneMiB", K::number}, {"workerMiB", K::number}}},
    {"hostname_valid", hostname_valid, nullptr, nullptr, true, {}},
    {"hostname_unique", nullptr, hostname_unique, nullptr, true, {}},
    {"identity_unique", nullptr, identity_unique, nullptr, true, {}},
    {"address_present", address_present, nullptr, nullptr, true, {}},
    {"hostname_resolves", hostname_resolves, nullptr, nullptr, true, {}},
    {"dns_configured", dns_configured, nullptr, nullptr, true, {}},
    {"binaries_present", binaries_present, nullptr, nullptr, true, {{"required", K::list}, {"recommended", K::list}, {"conntrackBefore", K::text}}},
    {"firewall_inactive", firewall_inactive, nullptr, nullptr, true, {}},
    {"installed_versions", installed_versions, nullptr, nullptr, true, {}},
    {"no_leftover_state", no_leftover_state, nullptr, nullptr, true, {}},
    {"platform_cpus", nullptr, nullptr, platform_cpus, true, {{"cpus", K::number}, {"systemCpus", K::number}}},
    {"platform_memory", nullptr, nullptr, platform_memory, true, {{"memoryGiB", K::number}, {"systemMemoryGiB", K::number}}},
    {"ip_forward", ip_forward, nullptr, nullptr, true, {}, true},
    {"bridge_netfilter", bridge_netfilter, nullptr, nullptr, true, {}, true},
    {"modules_available", modules_available, nullptr, nullptr, true, {{"modules", K::list}}, true},
    {"ports_free", ports_free, nullptr, nullptr, true, {{"controlPlane", K::list}, {"worker", K::list}}},
    {"cidr_clear", cidr_clear, nullptr, nullptr, true, {}},
    {"mtu_consistent", nullptr, mtu_consistent, nullptr, true, {}},
    {"inotify_limits", inotify_limits, nullptr, nullptr, true,
     {{"instances", K::number}, {"watches", K::number}, {"floorInstances", K::number}, {"floorWatches", K::number}}, true},
    {"cni_mtu", cni_mtu, nullptr, nullptr, true, {{"overhead", K::number}}},
    {"disk_free", disk_free, nullptr, nullptr, true, {{"paths", K::list}, {"errorGiB", K::number}, {"warnGiB", K::number}}},
    {"storage_capacity", storage_capacity, nullptr, nullptr, true, {{"minimumGiB", K::number}}},
    {"metadata_reachable", metadata_reachable, nullptr, nullptr, true, {}},
    {"interface_mtu", interface_mtu, nullptr, nullptr, true, {{"expected", K::number}}},
    {"base_path_mounted", base_path_mounted, nullptr, nullptr, true, {}},
  };
  return probes;
}

} // namespace

const ProbeInfo* find_probe(const std::string& name)
{
  for (const auto& p : registry()) {
    if (p.name == name) {
      return &p;
    }
  }
  return nullptr;
}

std::vector<std::string> probe_names()
{
  std::vector<std::string> names;
  for (const auto& p : registry()) {
    names.push_back(p.name);
  }
  return names;
}

int compare_versions(const std::string& a, const std::string& b)
{
  auto numbers = [](const std::string& v) {
    std::vector<long long> out;
    for (const auto& part : text::split(v[0] == 'v' ? v.substr(1) : v, '.')) {
      size_t n = 0;
      while (n < part.size() && std::isdigit(static_cast<unsigned char>(part[n]))) {
        ++n;
      }
      if (n == 0) {
        break;
      }
      out.push_back(std::stoll(part.substr(0, n)));
      if (n < part.size()) {
        break; // "44-fc-v657": the numeric prefix counts, the rest ends the version
      }
    }
    return out;
  };
  const auto x = numbers(a);
  const auto y = numbers(b);
  for (size_t i = 0; i < std::max(x.size(), y.size()); ++i) {
    const long long xi = i < x.size() ? x[i] : 0;
    const long long yi = i < y.size() ? y[i] : 0;
    if (xi != yi) {
      return xi < yi ? -1 : 1;
    }
  }
  return 0;
}

} // namespace mlplat::doctor
