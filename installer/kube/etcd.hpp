// The stacked etcd of a kubeadm cluster as the first control plane reaches it: its members and their
// health through etcd's JSON gateway (curl with the API server's etcd client certificate, which
// never leaves the host), and the quorum rule remove-node applies before it removes a member.
#pragma once

#include "util/error.hpp"

#include <string>
#include <vector>

namespace mlplat::kube {

// --- Interface ---

struct EtcdMember {
  std::string id;    // decimal, as etcd's gateway writes a uint64
  std::string name;  // the node's name (kubeadm names members after their nodes)
  std::vector<std::string> client_urls;
  bool healthy = false;
};

// The read-only script that prints the member list (one JSON line) and one "health URL true|false"
// line per member's first client URL.
std::string etcd_members_script();

// That script's output read back; an error names what could not be read.
Result<std::vector<EtcdMember>> parse_etcd_members(const std::string& output);

// The script that removes the member with `id` (decimal) through the gateway.
std::string etcd_remove_member_script(const std::string& id);

// Why removing the members named `leaving` from `members` would break etcd (no quorum now, so no
// removal can commit; or too few healthy members left for the quorum of those that stay), or "".
std::string quorum_refusal(const std::vector<EtcdMember>& members, const std::vector<std::string>& leaving);

} // namespace mlplat::kube
