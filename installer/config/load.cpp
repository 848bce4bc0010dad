#include "config/load.hpp"

#include "config/grammar.hpp"

#include "util/fs.hpp"
#include "util/net.hpp"
#include "util/text.hpp"
#include "yamlio/reader.hpp"

#include <fmt/core.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <list>
#include <filesystem>
#include <functional>
#include <set>
#include <unistd.h>

namespace mlplat::config {

namespace {

using yamlio::MapReader;
using yamlio::Need;
using yamlio::Problems;

void decode_ssh(MapReader& r, SshSettings& s)
{
  r.str("user", s.user);
  r.integer("port", s.port, 1, 65535);
  r.str("keyPath", s.key_path);
  r.boolean("agent", s.agent);
  r.str("knownHosts", s.known_hosts);
  r.choice<HostKeyPolicy>("hostKeyPolicy", s.host_key_policy,
                          {{"strict", HostKeyPolicy::strict}, {"accept-new", HostKeyPolicy::accept_new}});
  r.integer("connectTimeoutSeconds", s.connect_timeout_seconds, 1, 600);
  r.sub("bastion", [&](MapReader& b) {
    Bastion bastion;
    b.str("address", bastion.address, Need::required);
    b.integer("port", bastion.port, 1, 65535);
    b.str("user", bastion.user);
    b.str("keyPath", bastion.key_path);
    s.bastion = bastion;
  });
}

// spec.bundle (bundle trust): its own block, read and checked here only.
void decode_bundle(MapReader& r, BundleTrust& b)
{
  r.str("allowedSigners", b.allowed_signers);
  r.str("signer", b.signer);
}

void decode(const YAML::Node& root, Cluster& c, Problems& p)
{
  MapReader top(p, c.positions, root, "");
  if (!top.valid()) {
    return;
  }
  std::string api_version;
  std::string kind;
  if (top.str("apiVersion", api_version, Need::required) && api_version != k_api_version) {
    p.add(c.where("apiVersion"), fmt::format("apiVersion: '{}' is not supported", api_version),
          fmt::format("use 'apiVersion: {}'", k_api_version));
  }
  if (top.str("kind", kind, Need::required) && kind != k_kind) {
    p.add(c.where("kind"), fmt::format("kind: '{}' is not supported", kind), fmt::format("use 'kind: {}'", k_kind));
  }
  top.sub("metadata", [&](MapReader& m) { m.str("name", c.name, Need::required); }, Need::required);
  top.sub(
    "spec",
    [&](MapReader& spec) {
      std::vector<std::pair<std::string, std::string>> profile_options;
      for (const auto& name : profiles()) {
        profile_options.emplace_back(name, name);
      }
      spec.choice<std::string>("profile", c.profile, profile_options);
      spec.sub("versions", [&](MapReader& v) {
        for (const auto& component : version_components()) {
          std::string version;
          if (v.str(component, version)) {
            c.versions[component] = version;
          }
        }
      });
      // spec.ssh first: hosts start from these defaults, whatever the order in the file.
      spec.sub("ssh", [&](MapReader& s) { decode_ssh(s, c.ssh); });
      spec.list(
        "hosts",
        [&](const YAML::Node& node, const std::string& path) {
          MapReader h(p, c.positions, node, path);
          if (!h.valid()) {
            return;
          }
          Host host;
          host.ssh = c.ssh;
          h.str("name", host.name, Need::required);
          h.str("address", host.address, Need::required);
          h.str("internalAddress", host.internal_address);
          h.choice<Role>("role", host.role, {{"control-plane", Role::control_plane}, {"worker", Role::worker}},
                         Need::required);
          h.string_map("labels", host.labels);
          std::vector<std::string> taints;
          if (h.string_list("taints", taints)) {
            for (size_t t = 0; t < taints.size(); ++t) {
              const std::string taint_path = fmt::format("{}.taints[{}]", path, t);
              const Location at = c.positions.count(taint_path) != 0 ? c.positions[taint_path] : c.positions[path + ".taints"];
              if (auto taint = grammar::taint(taints[t]); taint) {
                host.taints.push_back(std::move(*taint));
              } else {
                p.add(at, fmt::format("{}: {} {}", taint_path, grammar::quoted(taints[t]), taint.error().message), taint.error().fix);
              }
            }
          }
          h.sub("ssh", [&](MapReader& s) { decode_ssh(s, host.ssh); });
          h.finish();
          if (host.internal_address.empty()) {
            host.internal_address = host.address;
          }
          c.hosts.push_back(std::move(host));
        },
        Need::required);
      spec.sub("network", [&](MapReader& n) {
        n.str("podCIDR", c.network.pod_cidr);
        n.str("serviceCIDR", c.network.service_cidr);
        n.str("controlPlaneEndpoint", c.network.control_plane_endpoint);
        n.choice<Cni>("cni", c.network.cni, {{"calico", Cni::calico}, {"flannel", Cni::flannel}});
        int mtu = 0;
        if (n.integer("mtu", mtu, 576, 9216)) {
          c.network.mtu = mtu;
        }
      });
      spec.sub("storage", [&](MapReader& s) { s.str("basePath", c.storage.base_path); });
      spec.sub("registry", [&](MapReader& r) {
        r.string_map("mirrors", c.registry.mirrors);
        r.sub("site", [&](MapReader& site) {
          site.str("url", c.registry.site.url);
          site.str("caFile", c.registry.site.ca_file);
          site.str("credentialsFile", c.registry.site.credentials_file);
        });
      });
      spec.sub("ingress", [&](MapReader& i) {
        i.str("domain", c.ingress.domain);
        i.string_list("altNames", c.ingress.alt_names);
        i.string_list("nodes", c.ingress.nodes);
        i.str("loadBalancerIP", c.ingress.load_balancer_ip);
        i.sub("nodePorts", [&](MapReader& np) {
          np.integer("http", c.ingress.http_node_port, 30000, 32767);
          np.integer("https", c.ingress.https_node_port, 30000, 32767);
        });
        i.choice<Expose>("expose", c.ingress.expose,
                         {{"nodeport", Expose::nodeport}, {"hostnetwork", Expose::hostnetwork},
                          {"loadbalancer", Expose::loadbalancer}});
        i.sub("tls", [&](MapReader& t) {
          t.choice<TlsMode>("mode", c.ingress.tls.mode,
                            {{"self-signed", TlsMode::self_signed}, {"provided", TlsMode::provided}, {"acme", TlsMode::acme}});
          t.str("certFile", c.ingress.tls.cert_file);
          t.str("keyFile", c.ingress.tls.key_file);
          t.str("caFile", c.ingress.tls.ca_file);
        });
      });
      spec.sub("pipelines", [&](MapReader& pl) {
        pl.boolean("enabled", c.pipelines.enabled);
        pl.str("namespace", c.pipelines.name_space);
      });
      spec.sub("bundle", [&](MapReader& b) { decode_bundle(b, c.bundle); });
    },
    Need::required);
  top.finish();
}

// Adds "<path>: <value> <what is wrong>" at the value's position when `check` refused it; returns
// whether it passed.
bool require(const Cluster& c, Problems& p, const std::string& path, std::string_view value, const Status& check)
{
  if (check) {
    return true;
  }
  p.add(c.where(path), fmt::format("{}: {} {}", path, grammar::quoted(value), check.error().message), check.error().fix);
  return false;
}

// The SSH settings written under `prefix` ("spec.ssh", "spec.hosts[2].ssh"): each value that is
// written there is checked against its grammar (the defaults need none). The user, the bastion's
// address and user go onto ssh's command line and into OpenSSH's option parser; the files into its
// options, where '%' is a token.
void validate_ssh(const Cluster& c, Problems& p, const std::string& prefix, const SshSettings& s)
{
  const auto written = [&](const std::string& key) { return c.positions.count(prefix + "." + key) != 0; };
  if (written("user")) {
    require(c, p, prefix + ".user", s.user, grammar::ssh_user(s.user));
  }
  if (written("keyPath")) {
    require(c, p, prefix + ".keyPath", s.key_path, grammar::local_path(s.key_path));
  }
  if (written("knownHosts")) {
    require(c, p, prefix + ".knownHosts", s.known_hosts, grammar::known_hosts_path(s.known_hosts));
  }
  if (s.bastion && written("bastion")) {
    const Bastion& b = *s.bastion;
    if (written("bastion.address")) {
      require(c, p, prefix + ".bastion.address", b.address, grammar::address(b.address));
    }
    if (written("bastion.user")) {
      require(c, p, prefix + ".bastion.user", b.user, grammar::ssh_user(b.user));
    }
    if (written("bastion.keyPath")) {
      require(c, p, prefix + ".bastion.keyPath", b.key_path, grammar::local_path(b.key_path));
    }
  }
}

void check_file(const Cluster& c, Problems& p, const std::string& path_key, const std::string& file,
                const std::string& what, std::set<std::string>& reported)
{
  if (!grammar::local_path(file)) {
    return; // refused by validate_ssh already
  }
  const std::string expanded = fs::expand_home(file);
  if (!reported.insert(path_key + "=" + expanded).second) {
    return;
  }
  if (::access(expanded.c_str(), R_OK) != 0) {
    p.add(c.where(path_key), fmt::format("{}: {} '{}' does not exist or is not readable", path_key, what, expanded),
          "fix the path, or create the file (for SSH keys: ssh-keygen -t ed25519 -f <path>)");
  }
}

// The dotted path under which an effective host setting was written: the host's override if it has
// one, else the spec.ssh default.
std::string setting_path(const Cluster& c, size_t host_index, const std::string& key)
{
  const std::string own = fmt::format("spec.hosts[{}].ssh.{}", host_index, key);
  return c.positions.count(own) != 0 ? own : "spec.ssh." + key;
}

void validate(const Cluster& c, Problems& p, KeyFiles key_files)
{
  // The cluster's name names the state directory, kubeadm's clusterName and the default ingress domain.
  if (!c.name.empty()) {
    require(c, p, "metadata.name", c.name, grammar::dns_label(c.name));
  }
  // Versions are compared with the matrix's and printed; never run.
  for (const auto& [component, version] : c.versions) {
    require(c, p, "spec.versions." + component, version, grammar::version(version));
  }
  validate_ssh(c, p, "spec.ssh", c.ssh);

  // Registry mirrors: the registry names a directory of containerd's certs.d, the URL goes into its
  // hosts.toml and into image references.
  for (const auto& [registry, url] : c.registry.mirrors) {
    const std::string path = c.positions.count("spec.registry.mirrors." + registry) != 0 ? "spec.registry.mirrors." + registry
                                                                                         : "spec.registry.mirrors";
    if (auto ok = grammar::registry_host(registry); !ok) {
      p.add(c.where(path), fmt::format("spec.registry.mirrors: {} {}", grammar::quoted(registry), ok.error().message), ok.error().fix);
    } else {
      require(c, p, path, url, grammar::mirror_url(url));
    }
  }

  // The site registry: an https URL of a host[:port] (it becomes every image's registry and a hosts.toml
  // server), its CA and credentials files local paths.
  if (!c.registry.site.url.empty()) {
    require(c, p, "spec.registry.site.url", c.registry.site.url, grammar::mirror_url(c.registry.site.url));
    if (c.registry.site.url.rfind("https://", 0) != 0) {
      p.add(c.where("spec.registry.site.url"), fmt::format("spec.registry.site.url: {} is not an https URL", grammar::quoted(c.registry.site.url)),
            "give the site registry's https://host:port (containerd and skopeo verify it with spec.registry.site.caFile)");
    }
  } else if (!c.registry.site.ca_file.empty() || !c.registry.site.credentials_file.empty()) {
    p.add(c.where("spec.registry.site"), "spec.registry.site: caFile or credentialsFile without a url", "add spec.registry.site.url");
  }
  for (const auto& [field, value] : {std::pair{"caFile", c.registry.site.ca_file}, std::pair{"credentialsFile", c.registry.site.credentials_file}}) {
    if (!value.empty()) {
      require(c, p, std::string("spec.registry.site.") + field, value, grammar::local_path(value));
    }
  }

  // Hosts: at least one control plane; names and addresses unique.
  if (c.positions.count("spec.hosts") != 0 && c.hosts.empty()) {
    p.add(c.where("spec.hosts"), "spec.hosts: the list is empty", "add at least one host with role: control-plane");
  }
  const bool has_cp = std::any_of(c.hosts.begin(), c.hosts.end(), [](const Host& h) { return h.role == Role::control_plane; });
  if (!c.hosts.empty() && !has_cp) {
    p.add(c.where("spec.hosts"), "spec.hosts: no host has role control-plane",
          "set 'role: control-plane' on one host (or three, for a highly available control plane)");
  }
  std::map<std::string, size_t> names;
  std::map<std::string, size_t> addresses;
  std::set<std::string> reported_files;
  const auto pod = grammar::cidr(c.network.pod_cidr);
  const auto svc = grammar::cidr(c.network.service_cidr);
  for (const auto& [range, name] : {std::pair{&pod, "podCIDR"}, std::pair{&svc, "serviceCIDR"}}) {
    if (*range && (*range)->base.family == 6) {
      const std::string field_path = std::string("spec.network.") + name;
      p.add(c.where(c.positions.count(field_path) != 0 ? field_path : "spec.network"),
            fmt::format("{}: {} is an IPv6 range; mlplat builds IPv4 clusters only (IPv6 and dual-stack are not supported)", field_path, (*range)->text),
            "use an IPv4 range (defaults: podCIDR 10.244.0.0/16, serviceCIDR 10.96.0.0/12)");
    }
  }
  for (size_t i = 0; i < c.hosts.size(); ++i) {
    const Host& h = c.hosts[i];
    const std::string path = fmt::format("spec.hosts[{}]", i);
    if (!h.name.empty()) {
      if (!grammar::dns_subdomain(h.name)) {
        p.add(c.where(path + ".name"), fmt::format("{}.name: {} is not a valid node name", path, grammar::quoted(h.name)),
              "use lowercase letters, digits, '-' and '.' (a DNS name); Kubernetes node names must be");
      }
      if (auto [it, inserted] = names.emplace(h.name, i); !inserted) {
        p.add(c.where(path + ".name"),
              fmt::format("{}.name: '{}' is already used by spec.hosts[{}] (line {})", path, h.name, it->second,
                          c.where(fmt::format("spec.hosts[{}].name", it->second)).line),
              "give every host a unique name");
      }
    }
    std::set<std::string> own; // a host may use one address for both fields
    for (const auto& [field, value] : {std::pair{"address", h.address}, std::pair{"internalAddress", h.internal_address}}) {
      if (value.empty() || !own.insert(value).second) {
        continue;
      }
      const std::string field_path = path + "." + field;
      const bool written = c.positions.count(field_path) != 0;
      const auto ip = net::parse_ip(value);
      if (!ip && (std::string(field) == "internalAddress" || !grammar::address(value))) {
        p.add(c.where(field_path), fmt::format("{}: {} is not an IP address{}", field_path, grammar::quoted(value),
                                               std::string(field) == "address" ? " or a DNS name" : ""),
              std::string(field) == "internalAddress" ? "internalAddress must be the IP the node uses inside the cluster"
                                                      : "use the address mlplat can reach the host at");
        continue;
      }
      if (auto [it, inserted] = addresses.emplace(value, i); !inserted && written) {
        p.add(c.where(field_path), fmt::format("{}: '{}' is already used by host '{}'", field_path, value, c.hosts[it->second].name),
              "every host needs its own address");
      }
    }
    for (const auto& [key, value] : h.labels) {
      const std::string label_path = path + ".labels." + key;
      const Location at = c.where(c.positions.count(label_path) != 0 ? label_path : path + ".labels");
      if (auto k = grammar::label_key(key); !k) {
        p.add(at, fmt::format("{}.labels: key {} {}", path, grammar::quoted(key), k.error().message), k.error().fix);
      } else if (auto v = grammar::label_value(value); !v) {
        p.add(at, fmt::format("{}.labels.{}: value {} {}", path, key, grammar::quoted(value), v.error().message), v.error().fix);
      }
    }
    // IPv4 only: kubeadm's advertise address and endpoint, Calico's pool and every host:port mlplat
    // writes are IPv4 (docs/config.md). Refused here rather than half working later.
    for (const auto& [field, value] : {std::pair{"address", h.address}, std::pair{"internalAddress", h.internal_address}}) {
      const std::string field_path = path + "." + field;
      if (const auto ip = net::parse_ip(value); ip && ip->family == 6 && (c.positions.count(field_path) != 0 || std::string(field) == "address")) {
        p.add(c.where(field_path),
              fmt::format("{}: '{}' is an IPv6 address; mlplat builds IPv4 clusters only (IPv6 and dual-stack are not supported)", field_path, value),
              "give the host's IPv4 address (or a DNS name resolving to it) for address, and its IPv4 cluster address for internalAddress");
      }
    }
    // The address the cluster uses must not fall inside the pod or service range.
    if (const auto ip = net::parse_ip(h.internal_address); ip) {
      const std::string field_path = path + (c.positions.count(path + ".internalAddress") ? ".internalAddress" : ".address");
      for (const auto& [range, name] : {std::pair{&pod, "podCIDR"}, std::pair{&svc, "serviceCIDR"}}) {
        if (*range && net::contains(**range, *ip)) {
          p.add(c.where(field_path), fmt::format("{}: {} lies inside spec.network.{} {}", field_path, h.internal_address, name, (*range)->text),
                "choose pod and service ranges that contain no host address");
        }
      }
    }
    validate_ssh(c, p, path + ".ssh", h.ssh);
    // Authentication must be possible: a key file, or the agent.
    if (!h.ssh.agent && h.ssh.key_path.empty()) {
      p.add(c.where(c.positions.count(path + ".ssh") ? path + ".ssh" : (c.positions.count("spec.ssh") ? "spec.ssh" : path)),
            fmt::format("{}: no SSH key for host '{}'", path, h.name), "set spec.ssh.keyPath, or 'agent: true' to use ssh-agent");
    }
    if (!h.ssh.key_path.empty() && key_files == KeyFiles::check) {
      check_file(c, p, setting_path(c, i, "keyPath"), h.ssh.key_path, "SSH key file", reported_files);
    }
    if (h.ssh.bastion && !h.ssh.bastion->key_path.empty() && key_files == KeyFiles::check) {
      check_file(c, p, setting_path(c, i, "bastion") + ".keyPath", h.ssh.bastion->key_path, "bastion key file", reported_files);
    }
  }

  // Network ranges: parsable, and pod and service ranges disjoint.
  if (!pod) {
    p.add(c.where("spec.network.podCIDR"), "spec.network.podCIDR: " + pod.error().message, pod.error().fix);
  }
  if (!svc) {
    p.add(c.where("spec.network.serviceCIDR"), "spec.network.serviceCIDR: " + svc.error().message, svc.error().fix);
  }
  if (pod && svc && net::overlaps(*pod, *svc)) {
    p.add(c.where("spec.network.serviceCIDR"),
          fmt::format("spec.network.serviceCIDR: {} overlaps spec.network.podCIDR {}", svc->text, pod->text),
          "choose disjoint ranges, e.g. podCIDR 10.244.0.0/16 and serviceCIDR 10.96.0.0/12");
  }

  // The control-plane endpoint goes into kubeadm's configuration and every node's kubeconfig.
  if (!c.network.control_plane_endpoint.empty()) {
    auto ep = grammar::endpoint(c.network.control_plane_endpoint);
    require(c, p, "spec.network.controlPlaneEndpoint", c.network.control_plane_endpoint, ep ? Status{} : Status(tl::unexpected(ep.error())));
  }
  // The storage base path is created, probed and (by a reset) purged on every host.
  if (c.positions.count("spec.storage.basePath") != 0) {
    require(c, p, "spec.storage.basePath", c.storage.base_path, grammar::base_path(c.storage.base_path));
  }
  if (!c.ingress.domain.empty() && !grammar::dns_subdomain(c.ingress.domain)) {
    p.add(c.where("spec.ingress.domain"), fmt::format("spec.ingress.domain: {} is not a valid DNS name", grammar::quoted(c.ingress.domain)),
          "use a name such as ml.example.com (lowercase letters, digits, '-' and '.')");
  }
  for (size_t i = 0; i < c.ingress.alt_names.size(); ++i) {
    const std::string& n = c.ingress.alt_names[i];
    if (auto ok = grammar::subject_alt_name(n); !ok) {
      p.add(c.where(fmt::format("spec.ingress.altNames[{}]", i)),
            fmt::format("spec.ingress.altNames[{}]: {} {}", i, grammar::quoted(n), ok.error().message), ok.error().fix);
    }
  }
  for (size_t i = 0; i < c.ingress.nodes.size(); ++i) {
    if (c.find_host(c.ingress.nodes[i]) == nullptr) {
      p.add(c.where(fmt::format("spec.ingress.nodes[{}]", i)), fmt::format("spec.ingress.nodes: '{}' is not a host of spec.hosts", c.ingress.nodes[i]),
            "name hosts by their spec.hosts[].name");
    }
  }
  if (!c.ingress.load_balancer_ip.empty() && !net::parse_ip(c.ingress.load_balancer_ip)) {
    p.add(c.where("spec.ingress.loadBalancerIP"), fmt::format("spec.ingress.loadBalancerIP: '{}' is not an IP address", c.ingress.load_balancer_ip),
          "give an address of the load balancer's pool, or remove the key to take any");
  }
  if (c.ingress.http_node_port == c.ingress.https_node_port) {
    p.add(c.where("spec.ingress.nodePorts.https"), fmt::format("spec.ingress.nodePorts: http and https are both {}", c.ingress.https_node_port),
          "give them two different ports between 30000 and 32767");
  }
  if (c.ingress.tls.mode == TlsMode::provided) {
    for (const auto& [key, value] : {std::pair{"certFile", c.ingress.tls.cert_file}, std::pair{"keyFile", c.ingress.tls.key_file}}) {
      const std::string key_path = std::string("spec.ingress.tls.") + key;
      if (value.empty()) {
        p.add(c.where("spec.ingress.tls.mode"), fmt::format("spec.ingress.tls: mode 'provided' needs {}", key),
              fmt::format("add '{}: <path>' under spec.ingress.tls", key));
      } else if (require(c, p, key_path, value, grammar::local_path(value))) {
        check_file(c, p, key_path, value, "file", reported_files);
      }
    }
  }
  // The certificate files are read on this machine only (their contents travel as data).
  if (!c.ingress.tls.ca_file.empty()) {
    require(c, p, "spec.ingress.tls.caFile", c.ingress.tls.ca_file, grammar::local_path(c.ingress.tls.ca_file));
  }
  if (!grammar::dns_label(c.pipelines.name_space)) {
    p.add(c.where("spec.pipelines.namespace"),
          fmt::format("spec.pipelines.namespace: {} is not a valid namespace", grammar::quoted(c.pipelines.name_space)),
          "use lowercase letters, digits and '-'");
  }
}

} // namespace

// spec.bundle: both keys or neither; the allowed signers file readable; the identity one word.
void validate_bundle(const Cluster& c, Problems& p)
{
  const auto& b = c.bundle;
  if (b.allowed_signers.empty() != b.signer.empty()) {
    const std::string missing = b.allowed_signers.empty() ? "allowedSigners" : "signer";
    p.add(c.where(b.allowed_signers.empty() ? "spec.bundle.signer" : "spec.bundle.allowedSigners"),
          fmt::format("spec.bundle: {} is missing; a bundle's signature is checked against both", missing),
          "give spec.bundle.allowedSigners (an ssh-keygen allowed signers file) and spec.bundle.signer (the identity in it)");
    return;
  }
  if (!b.signer.empty() && b.signer.find_first_of(" \t\r\n") != std::string::npos) {
    p.add(c.where("spec.bundle.signer"), fmt::format("spec.bundle.signer: '{}' is not one identity (no whitespace)", b.signer),
          "use the principal as the allowed signers file writes it, e.g. release@example.com");
  }
  if (!b.allowed_signers.empty()) {
    std::set<std::string> reported;
    check_file(c, p, "spec.bundle.allowedSigners", b.allowed_signers, "allowed signers file", reported);
  }
}

Result<Cluster> load_text(std::string_view text, const std::string& file_name, KeyFiles key_files)
{
  Problems problems{file_name, {}};
  Cluster cluster;
  cluster.source_file = file_name;
  const YAML::Node root = yamlio::parse(text, problems, "run 'mlplat init --profile=onprem' to write a starter file");
  if (root.IsDefined() && !root.IsNull()) {
    decode(root, cluster, problems);
    if (problems.list.empty()) {
      validate(cluster, problems, key_files); // cross-field checks only on a well-formed structure
      validate_bundle(cluster, problems);
    }
  }
  TRY(problems.to_status());
  return cluster;
}

Result<Cluster> load_file(const std::string& path, KeyFiles key_files)
{
  auto text = fs::read_file(path);
  if (!text) {
    Error e = text.error();
    e.code = ErrorCode::config_invalid;
    e.fix = "pass the cluster file with -c/--config, or create one with 'mlplat init --profile=onprem'";
    return tl::unexpected(std::move(e));
  }
  return load_text(*text, path, key_files);
}

} // namespace mlplat::config
