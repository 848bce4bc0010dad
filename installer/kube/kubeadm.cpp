#include "kube/kubeadm.hpp"

#include "assets/assets.hpp"
#include "workflow/steps.hpp"
#include "util/log.hpp"
#include "util/sha256.hpp"
#include "util/net.hpp"
#include "util/text.hpp"
#include "yamlio/emit.hpp"

#include <fmt/core.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <algorithm>
#include <memory>
#include <regex>

namespace mlplat::kube {

using workflow::converged;
using workflow::kubectl;
using workflow::mutating;
using workflow::read_only;
using workflow::Step;

namespace {

// The words kubeadm join uses when a bootstrap token is unknown or expired: its discovery waits for the
// token's signature in the cluster-info ConfigMap until its timeout, then says it could not find it
// (cmd/kubeadm/app/discovery/token/token.go, getClusterInfo and validateClusterInfoToken, v1.36).
bool token_refused(const std::string& message)
{
  return message.find("could not find a JWS signature in the cluster-info ConfigMap") != std::string::npos ||
         message.find("is invalid for this cluster or it has expired") != std::string::npos;
}

// A token with less time left than this is replaced before a join: the join needs it through its
// discovery and the kubelet's TLS bootstrap.
constexpr long k_token_margin_seconds = 300;

transport::Command secret_command(std::string description, std::string script)
{
  auto c = mutating(std::move(description), std::move(script));
  c.sensitive = transport::Sensitive::yes;
  c.deadline = std::chrono::seconds(120);
  return c;
}

} // namespace

bool control_planes_run_workloads(const config::Cluster& cluster)
{
  return std::none_of(cluster.hosts.begin(), cluster.hosts.end(), [](const config::Host& h) { return h.role == config::Role::worker; });
}

Result<std::string> render_init_config(const config::Cluster& cluster, const compat::Row& row, const config::Host& host)
{
  const std::string name = "manifests/kubeadm/init.yaml";
  TRY_ASSIGN(const std::string text, assets::read(name));
  TRY_ASSIGN(const auto t, yamlio::parse_template(text, name));
  const std::string address = host.internal_address.empty() ? host.address : host.internal_address;
  TRY_ASSIGN(auto init, yamlio::document_of_kind(t, "InitConfiguration", name));
  init["localAPIEndpoint"]["advertiseAddress"] = yamlio::string_value(address);
  init["nodeRegistration"]["name"] = yamlio::string_value(host.name);
  init["nodeRegistration"]["kubeletExtraArgs"][0]["value"] = yamlio::string_value(address);
  if (control_planes_run_workloads(cluster)) {
    init["nodeRegistration"]["taints"] = YAML::Node(YAML::NodeType::Sequence);
  }
  TRY_ASSIGN(auto cc, yamlio::document_of_kind(t, "ClusterConfiguration", name));
  cc["clusterName"] = yamlio::string_value(cluster.name);
  cc["kubernetesVersion"] = yamlio::string_value("v" + row.kubernetes.str());
  cc["controlPlaneEndpoint"] = yamlio::string_value(
    cluster.network.control_plane_endpoint.empty() ? net::join_host_port(address, 6443) : cluster.network.control_plane_endpoint);
  cc["networking"]["podSubnet"] = yamlio::string_value(cluster.network.pod_cidr);
  cc["networking"]["serviceSubnet"] = yamlio::string_value(cluster.network.service_cidr);
  return yamlio::emit(t);
}

Result<std::string> render_user_config(const config::Cluster& cluster, const compat::Row& row, size_t first_control_plane)
{
  const std::string name = "manifests/kubeadm/user.yaml";
  TRY_ASSIGN(const std::string text, assets::read(name));
  const auto& host = cluster.hosts[first_control_plane];
  const std::string address = host.internal_address.empty() ? host.address : host.internal_address;
  // As render_init_config writes it for kubeadm init.
  const std::string endpoint =
    cluster.network.control_plane_endpoint.empty() ? net::join_host_port(address, 6443) : cluster.network.control_plane_endpoint;
  return yamlio::fill(text, name,
                      {{"@CLUSTER_NAME@", cluster.name}, {"@KUBERNETES_VERSION@", "v" + row.kubernetes.str()}, {"@ENDPOINT@", endpoint}});
}

Result<std::string> ca_cert_hash(const std::string& ca_pem)
{
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(ca_pem.data(), int(ca_pem.size())), BIO_free);
  std::unique_ptr<X509, decltype(&X509_free)> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), X509_free);
  if (!cert) {
    return fail(ErrorCode::failed, "the cluster CA certificate (/etc/kubernetes/pki/ca.crt) is not a PEM certificate");
  }
  const EVP_PKEY* key = X509_get0_pubkey(cert.get());
  unsigned char* der = nullptr;
  const int len = key == nullptr ? -1 : i2d_PUBKEY(const_cast<EVP_PKEY*>(key), &der);
  if (len <= 0) {
    return fail(ErrorCode::failed, "the cluster CA certificate has no readable public key");
  }
  std::unique_ptr<unsigned char, void (*)(unsigned char*)> owned(der, [](unsigned char* p) { OPENSSL_free(p); });
  return "sha256:" + sha256_hex(std::string_view(reinterpret_cast<const char*>(der), size_t(len)));
}

std::string control_plane_endpoint(const config::Cluster& cluster, size_t first_control_plane)
{
  if (!cluster.network.control_plane_endpoint.empty()) {
    return cluster.network.control_plane_endpoint;
  }
  return net::join_host_port(cluster.hosts[first_control_plane].internal_address, 6443);
}

Result<std::string> JoinMaterial::ca_hash()
{
  std::lock_guard lock(m_mutex);
  // Whoever holds the mutex owns the first control plane's session (no join phase works on it).
  m_cp.set_label("join/secrets");
  if (!m_ca_hash) {
    TRY_ASSIGN(const auto r, m_cp.run(read_only("read the cluster CA certificate",
                                                            "[ ! -f /etc/kubernetes/pki/ca.crt ] || cat /etc/kubernetes/pki/ca.crt")));
    if (r.out.empty() && m_cp.dry_run()) { // planned before kubeadm init: there is no CA yet
      return std::string("sha256:<the CA's hash, read after kubeadm init>");
    }
    TRY_ASSIGN(m_ca_hash, ca_cert_hash(r.out));
  }
  return *m_ca_hash;
}

Result<std::string> JoinMaterial::create_token_locked()
{
  m_cp.set_label("join/secrets");
  TRY_ASSIGN(const auto r, m_cp.run(secret_command("create a bootstrap token for joining (15 minutes)",
                                                               "kubeadm token create --ttl 15m --description 'mlplat join'")));
  const std::string token(text::trim(r.out));
  if (token.empty()) { // dry-run
    return std::string("<token>");
  }
  static const std::regex shape("[a-z0-9]{6}\\.[a-z0-9]{16}");
  if (!std::regex_match(token, shape)) {
    return fail(ErrorCode::failed, "kubeadm token create printed something that is not a bootstrap token (withheld)");
  }
  log::add_secret(token);
  log::add_secret(token.substr(7)); // the secret half alone, wherever it turns up
  m_token = token;
  return token;
}

Result<std::string> JoinMaterial::token()
{
  std::lock_guard lock(m_mutex);
  if (!m_token) {
    return create_token_locked();
  }
  // The token made earlier in this run may have expired since (the controller-manager then deletes its
  // Secret): asked of the first control plane by the token's id, the public half. (A token without an
  // expiration never expires.)
  m_cp.set_label("join/secrets");
  const std::string id = m_token->substr(0, 6);
  TRY_ASSIGN(const auto r, m_cp.run(read_only(fmt::format("check that bootstrap token {} is still valid", id),
                                                          fmt::format("if ! e=$({} -n kube-system get secret bootstrap-token-{} "
                                                                      "-o jsonpath='{{.data.expiration}}' 2>/dev/null); then echo gone; exit 0; fi\n"
                                                                      "if [ -z \"$e\" ]; then echo {}; exit 0; fi\n"
                                                                      "echo $(( $(date -d \"$(echo \"$e\" | base64 -d)\" +%s) - $(date +%s) ))\n",
                                                                      kubectl(), id, k_token_margin_seconds))));
  const std::string left(text::trim(r.out));
  if (left != "gone") {
    try {
      if (std::stol(left) >= k_token_margin_seconds) {
        return *m_token;
      }
    } catch (const std::exception&) {
      return fail(ErrorCode::failed, fmt::format("the check of bootstrap token {} printed '{}', not its seconds left", id, left));
    }
  }
  if (left == "gone") {
    log::warn("bootstrap token {} is gone from the cluster (expired): creating a new one", id);
  } else {
    log::warn("bootstrap token {} expires in {} s: creating a new one", id, left);
  }
  return create_token_locked();
}

Result<std::string> JoinMaterial::renew_token(const std::string& stale)
{
  std::lock_guard lock(m_mutex);
  if (m_token && *m_token != stale) {
    return *m_token;
  }
  log::warn("kubeadm join found no signature for the bootstrap token (expired or unknown): creating a new one");
  return create_token_locked();
}

Result<std::string> JoinMaterial::certificate_key()
{
  std::lock_guard lock(m_mutex);
  if (!m_certificate_key) {
    m_cp.set_label("join/secrets");
    TRY_ASSIGN(const auto r, m_cp.run(secret_command("upload the control-plane certificates (encrypted, deleted by kubeadm after 2 h)",
                                                                 // With the init configuration: without it kubeadm guesses the
                                                                 // API server's address from the default route (none on some
                                                                 // hosts: it then refuses) and asks dl.k8s.io for a version.
                                                                 fmt::format("kubeadm init phase upload-certs --upload-certs --config {}",
                                                                             k_kubeadm_init_config))));
    std::string key;
    for (const auto& line : text::split(r.out, '\n')) {
      if (!text::trim(line).empty()) {
        key = std::string(text::trim(line)); // the last line that is not empty
      }
    }
    if (key.empty()) { // dry-run
      return std::string("<certificate key>");
    }
    static const std::regex shape("[a-f0-9]{64}");
    if (!std::regex_match(key, shape)) {
      return fail(ErrorCode::failed, "kubeadm init phase upload-certs did not end with a certificate key (output withheld)");
    }
    log::add_secret(key);
    m_certificate_key = key;
  }
  return *m_certificate_key;
}

Result<std::string> render_join_config(const config::Cluster& cluster, const config::Host& host, const std::string& endpoint,
                                       const std::string& token, const std::string& ca_hash, const std::string& certificate_key)
{
  const std::string name = "manifests/kubeadm/join.yaml";
  TRY_ASSIGN(const std::string text, assets::read(name));
  TRY_ASSIGN(const auto t, yamlio::parse_template(text, name));
  TRY_ASSIGN(auto join, yamlio::document_of_kind(t, "JoinConfiguration", name));
  auto bootstrap = join["discovery"]["bootstrapToken"];
  bootstrap["apiServerEndpoint"] = yamlio::string_value(endpoint);
  bootstrap["token"] = yamlio::string_value(token);
  bootstrap["caCertHashes"][0] = yamlio::string_value(ca_hash);
  join["nodeRegistration"]["name"] = yamlio::string_value(host.name);
  join["nodeRegistration"]["kubeletExtraArgs"][0]["value"] = yamlio::string_value(host.internal_address);
  if (host.role == config::Role::control_plane && control_planes_run_workloads(cluster)) {
    join["nodeRegistration"]["taints"] = YAML::Node(YAML::NodeType::Sequence);
  }
  if (!certificate_key.empty()) {
    YAML::Node cp;
    cp["localAPIEndpoint"]["advertiseAddress"] = yamlio::string_value(host.internal_address);
    YAML::Node port = YAML::Load("6443"); // a plain scalar: an int to kubeadm
    cp["localAPIEndpoint"]["bindPort"] = port;
    cp["certificateKey"] = yamlio::string_value(certificate_key);
    join["controlPlane"] = cp;
  }
  return yamlio::emit(t);
}

transport::Command join_command(const std::string& config, bool control_plane)
{
  // The configuration (with the token) comes on stdin into a 0600 file that lives as long as this
  // shell: removed when kubeadm ends, and by the traps when the shell is ended (an interrupt sends
  // TERM to the command's process group; a dropped connection, HUP or PIPE).
  auto c = mutating(control_plane ? "kubeadm join as a control plane" : "kubeadm join as a worker",
                    fmt::format("f={0}\n"
                                "trap 'rm -f \"$f\"' EXIT\n"
                                "trap 'rm -f \"$f\"; exit 129' HUP\ntrap 'rm -f \"$f\"; exit 130' INT\n"
                                "trap 'rm -f \"$f\"; exit 141' PIPE\ntrap 'rm -f \"$f\"; exit 143' TERM\n"
                                "mkdir -p \"$(dirname \"$f\")\" && chmod 0700 \"$(dirname \"$f\")\" || exit 1\n"
                                "rm -f \"$f\"\n(umask 077 && cat > \"$f\") || exit 1\n"
                                "kubeadm join --config \"$f\"\n",
                                k_join_config));
  c.deadline = std::chrono::seconds(300);
  c.input = transport::input_from_string(config);
  return c;
}

Step join_step(transport::Fleet& fleet, const config::Cluster& cluster, size_t host, const std::string& endpoint, bool control_plane,
               std::shared_ptr<JoinMaterial> material)
{
  Step s;
  s.name = "kubeadm-join";
  // The journal's digest: the configuration without its secrets.
  s.digest = sha256_hex(fmt::format("{}\n{}\n{}\n{}\n{}", cluster.name, endpoint, cluster.hosts[host].name, control_plane,
                                    cluster.hosts[host].internal_address));
  const auto check = read_only("check whether this node already joined",
                               "[ -f /etc/kubernetes/kubelet.conf ] || exit 1\nexit 0\n");
  s.check = [&fleet, check](size_t h) { return converged(fleet, h, check); };
  s.apply = [&fleet, &cluster, endpoint, control_plane, material](size_t h) -> Status {
    TRY_ASSIGN(const std::string ca_hash, material->ca_hash());
    TRY_ASSIGN(std::string token, material->token());
    std::string key;
    if (control_plane) {
      TRY_ASSIGN(key, material->certificate_key());
    }
    const auto join = [&](const std::string& t) -> Result<transport::ExecResult> {
      TRY_ASSIGN(const std::string config, render_join_config(cluster, cluster.hosts[h], endpoint, t, ca_hash, key));
      return fleet.exec(h, join_command(config, control_plane));
    };
    TRY_ASSIGN(auto r, join(token));
    if (!r.ok() && token_refused(r.err)) {
      TRY_ASSIGN(token, material->renew_token(token));
      TRY_ASSIGN(r, join(token));
    }
    if (!r.ok()) {
      return fail(ErrorCode::failed, fmt::format("kubeadm join failed ({}): {}", r.status_text(), text::trim(r.err)));
    }
    return {};
  };
  // kubeadm join ends once the kubelet has its credentials (kubelet.conf), before the kubelet has
  // registered its Node: the join is done when the Node exists, as the node itself reads it (the Node
  // authorizer lets a kubelet read its own Node).
  auto registered = read_only(
    "wait for this node's kubelet to register its Node (at most 120 s)",
    fmt::format("[ -f /etc/kubernetes/kubelet.conf ] || exit 1\n"
                "i=0\nwhile [ $i -lt 120 ]; do\n"
                "  /usr/local/bin/kubectl --kubeconfig /etc/kubernetes/kubelet.conf get node {} >/dev/null 2>&1 && exit 0\n"
                "  i=$((i + 1)); sleep 1\ndone\nexit 1\n",
                text::shell_quote(cluster.hosts[host].name)));
  registered.deadline = std::chrono::seconds(150);
  s.verify = [&fleet, registered, name = cluster.hosts[host].name](size_t h) -> Status {
    TRY_ASSIGN(const bool ok, converged(fleet, h, registered));
    return ok ? Status{}
              : fail(ErrorCode::failed, fmt::format("kubeadm join finished, but the kubelet did not register node {} within 120 s", name),
                     "look at the kubelet on the host: systemctl status kubelet; journalctl -u kubelet");
  };
  return s;
}

} // namespace mlplat::kube
