// What install puts on a host, in one list: every file, program, unit, directory, network interface
// and firewall chain its phases (and the programs they run: kubeadm, the CNI) leave there. `mlplat
// reset` removes exactly this list, and a unit test holds install to it: a path install uploads or
// installs that the list does not cover fails that test, so a new install step cannot be forgotten by
// reset. The data of the cluster's volumes (the storage base path) is not in it: reset keeps it
// unless --purge-data.
#pragma once

#include <string>
#include <vector>

namespace mlplat::phases {

// --- Interface ---

struct Footprint {
  std::vector<std::string> services;     // stopped and disabled (their units are among `files`)
  std::vector<std::string> files;        // removed
  std::vector<std::string> directories;  // removed with everything in them
  std::vector<std::string> interfaces;   // deleted; a name ending in '*' is a prefix (cali*)
  std::vector<std::string> chain_marks;  // iptables/ip6tables rules and chains whose saved line contains one of these
  std::vector<std::string> nft_tables;   // nftables tables ("ip kube-proxy") deleted when present
};

// The drop-ins prepare writes, and the mark it leaves on the /etc/fstab swap lines it comments out
// (reset puts those lines back).
inline constexpr const char* k_sysctl_dropin = "/etc/sysctl.d/90-mlplat.conf";
inline constexpr const char* k_modules_dropin = "/etc/modules-load.d/mlplat.conf";
inline constexpr const char* k_fstab_mark = "# swap off for the kubelet (mlplat): ";
// mlplat's own directory on every host (the bundle, kubeadm's run files, kubectl's cache, the locks).
inline constexpr const char* k_host_state_dir = "/var/lib/mlplat";

// The list.
const Footprint& host_footprint();

// Whether `path` is in `footprint`: one of its files, or inside one of its directories.
bool covers(const Footprint& footprint, const std::string& path);

// The read-only shell script that exits 0 when nothing of `footprint` is left on the host and 1
// otherwise, printing what is left (one "left: ..." line each).
std::string leftovers_script(const Footprint& footprint);

// The script that removes `footprint` from the host (idempotent; ends with exit 0 when it is gone).
std::string removal_script(const Footprint& footprint);

} // namespace mlplat::phases
