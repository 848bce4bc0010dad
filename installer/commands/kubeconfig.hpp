// `mlplat kubeconfig`: the cluster administrator's kubeconfig (/etc/kubernetes/admin.conf of the first
// control plane), or a kubeconfig for a named user whose client certificate the cluster CA signs there
// (`kubeadm kubeconfig user`), so operators need not pass admin.conf around. Both are secrets: read
// with Sensitive::yes (never logged), written 0600. The CA key never leaves the control plane: the
// certificate is made there and only the kubeconfig comes back. Read-only on the hosts: no journal, no
// lock (docs/status.md).
#pragma once

#include "compat/matrix.hpp"
#include "config/model.hpp"
#include "transport/fleet.hpp"
#include "util/error.hpp"

#include <chrono>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace mlplat::commands {

// --- Interface ---

// The lifetimes --ttl accepts for a user's certificate.
inline constexpr std::chrono::minutes k_min_user_ttl{10};
inline constexpr std::chrono::hours k_max_user_ttl{24 * 365};

// --ttl: one or more <number><unit> terms, the units d (24 h), h and m ("24h", "7d", "1h30m"), summed;
// between k_min_user_ttl and k_max_user_ttl. A usage error (exit 2) says what it accepts otherwise.
Result<std::chrono::minutes> parse_ttl(std::string_view text);

// The duration as kubeadm's --validity-period takes it (Go's duration: "36h0m0s").
std::string go_duration(std::chrono::minutes ttl);

// The read-only, sensitive command that prints the first control plane's admin.conf.
transport::Command admin_kubeconfig_command();

// What a user kubeconfig is for.
struct UserRequest {
  std::string name;                 // the certificate's CN: the Kubernetes user name
  std::vector<std::string> groups;  // its O values: the user's groups (may be empty)
  std::chrono::minutes ttl{24 * 60};
};

// Checks the user's name and groups (config::grammar::kube_subject: refused with where and how to
// fix, exit 2); repeated groups are an error too.
Status check_user_request(const UserRequest& request);

// The command that makes the user's kubeconfig on the first control plane: `kubeadm kubeconfig user`
// with the name, groups and lifetime shell-quoted on its command line and `cluster_config`
// (kube::render_user_config) on its stdin. Run as root (it reads the CA key there), sensitive (its
// output holds the user's private key), read-only (kubeadm writes nothing on the host). It prints the
// host's clock (date +%s) on stderr first.
transport::Command user_kubeconfig_command(const UserRequest& request, const std::string& cluster_config);

// What the issued kubeconfig's client certificate says.
struct IssuedCert {
  std::string common_name;
  std::vector<std::string> organizations;
  std::chrono::system_clock::time_point not_after;
};

// Reads the client certificate of the (first) user of `kubeconfig` (client-certificate-data, base64
// PEM); an error when it has none or it is not a certificate.
Result<IssuedCert> issued_cert(const std::string& kubeconfig);

// Checks that `kubeconfig` holds a certificate for `request`: its CN is the name, its O values are the
// groups (in any order), and it expires `request.ttl` after `now` (within 10 minutes). A mismatch is
// an error: the kubeconfig is then not written.
Status check_issued(const std::string& kubeconfig, const UserRequest& request, std::chrono::system_clock::time_point now);

// Fetches the admin kubeconfig (empty `request.name`) or issues the user's, on the first control
// plane of `cluster` through `fleet`, and checks a user's certificate (its lifetime from the host's
// clock). `row` gives the Kubernetes
// version kubeadm is told (a user only).
Result<std::string> fetch_kubeconfig(transport::Fleet& fleet, const config::Cluster& cluster, const compat::Row& row,
                                     const UserRequest& request);

// Writes `kubeconfig` to `path` atomically with mode 0600; an existing file is refused (exit 2)
// unless `force`.
enum class Overwrite { no, yes };
Status write_kubeconfig(const std::filesystem::path& path, const std::string& kubeconfig, Overwrite overwrite);

} // namespace mlplat::commands
