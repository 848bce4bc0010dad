// The cluster description (mlplat.yaml), Kubernetes-style: apiVersion mlplat.dev/v1alpha1, kind Cluster.
// Plain data; load.hpp fills it from YAML and validates it; nothing here talks to a host.
#pragma once

#include "util/error.hpp"

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace mlplat::config {

// --- Interface ---

inline constexpr const char* k_api_version = "mlplat.dev/v1alpha1";
inline constexpr const char* k_kind = "Cluster";

enum class Role { control_plane, worker };
enum class HostKeyPolicy { strict, accept_new };
enum class Cni { calico, flannel };
enum class TlsMode { self_signed, provided, acme };
enum class Expose { nodeport, hostnetwork, loadbalancer };

// An SSH jump host. Connections to cluster hosts are tunnelled through it with OpenSSH's `ssh -W`.
struct Bastion {
  std::string address;
  int port = 22;
  std::string user;      // defaults to the host's ssh user
  std::string key_path;  // defaults to the host's key
};

// How to reach a host. spec.ssh gives defaults; spec.hosts[].ssh overrides them key by key.
struct SshSettings {
  std::string user = "root";
  int port = 22;
  std::string key_path;                    // private key file; empty means use the agent
  bool agent = false;                      // authenticate with ssh-agent ($SSH_AUTH_SOCK)
  std::string known_hosts = "~/.ssh/known_hosts";
  HostKeyPolicy host_key_policy = HostKeyPolicy::strict;
  std::optional<Bastion> bastion;
  int connect_timeout_seconds = 10;
};

// A node taint as kubectl taint writes it: key[=value]:effect.
struct Taint {
  std::string key;
  std::string value;
  std::string effect;  // NoSchedule, PreferNoSchedule or NoExecute

  // "key=value:effect" ("key:effect" without a value).
  std::string str() const { return key + (value.empty() ? "" : "=" + value) + ":" + effect; }
};

struct Host {
  std::string name;
  std::string address;           // where mlplat connects
  std::string internal_address;  // the cluster-internal address (defaults to address)
  Role role = Role::worker;
  std::map<std::string, std::string> labels;   // applied to the node, kept as the cluster file says
  std::vector<Taint> taints;                   // likewise
  SshSettings ssh;               // effective settings after overrides
};

struct Network {
  std::string pod_cidr = "10.244.0.0/16";
  std::string service_cidr = "10.96.0.0/12";
  Cni cni = Cni::calico;
  std::optional<int> mtu;        // empty: from the profile
  // host:port every node reaches the API servers at (a load balancer or VIP for an HA control
  // plane); empty: the first control plane's internal address, port 6443.
  std::string control_plane_endpoint;
};

// spec.registry.site: the site's own registry. With it, install pushes the bundle's images there once
// and every host pulls every image of the row from it (docs/bundle.md, "Air-gapped installs").
struct SiteRegistry {
  std::string url;               // https://host[:port]; empty: none
  std::string ca_file;           // the CA its certificate chains to (on this machine); copied to the hosts
  std::string credentials_file;  // "username:"/"password:" lines (0600); empty: the environment's, or anonymous
};

struct Registry {
  // registry host ("docker.io", "registry.k8s.io") -> mirror URL ("https://mirror.example:5000")
  std::map<std::string, std::string> mirrors;
  SiteRegistry site;
};

struct Storage {
  std::string base_path = "/var/openebs/local";
};

struct Tls {
  TlsMode mode = TlsMode::self_signed;
  std::string cert_file;
  std::string key_file;
  std::string ca_file;
};

struct Ingress {
  std::string domain;                  // empty: pipelines.<cluster name>.internal
  std::vector<std::string> alt_names;  // more DNS names or IP addresses the certificate covers
  Tls tls;
  Expose expose = Expose::nodeport;
  std::vector<std::string> nodes;      // hostnetwork: the hosts the gateway runs on (empty: the workers)
  int http_node_port = 30080;          // nodeport: the gateway's ports on every node
  int https_node_port = 30443;
  std::string load_balancer_ip;        // loadbalancer: the address to ask for (empty: any)
};

struct Pipelines {
  bool enabled = true;
  std::string name_space = "kubeflow";
};

// spec.bundle: who may have signed the bundles install takes (docs/bundle.md).
struct BundleTrust {
  std::string allowed_signers;  // an ssh-keygen allowed signers file (empty: none configured)
  std::string signer;           // the identity in it whose signature bundle.json must carry
};

struct Cluster {
  std::string name;
  std::string profile = "onprem";
  std::map<std::string, std::string> versions;  // component -> version; empty means matrix default
  SshSettings ssh;                               // the defaults
  std::vector<Host> hosts;
  Network network;
  Registry registry;
  Storage storage;
  Ingress ingress;
  Pipelines pipelines;
  BundleTrust bundle;

  std::string source_file;                       // the file it was read from
  std::map<std::string, Location> positions;     // dotted path ("spec.hosts[1].address") -> where it was written

  // Where `path` was written, or the file's first line when it was not written (a default).
  Location where(const std::string& path) const;
  // The host named `name`, or nullptr.
  const Host* find_host(const std::string& name) const;
  // The index of the first control plane (kubeadm init runs there, kubectl works from there, the
  // cluster lock lives there); 0 when there is none (validation refuses such a file).
  size_t first_control_plane() const;
};

// Names used in files and messages.
std::string to_string(Role role);
std::string to_string(HostKeyPolicy policy);

// The components spec.versions accepts.
const std::vector<std::string>& version_components();

// The profiles mlplat knows.
const std::vector<std::string>& profiles();

} // namespace mlplat::config
