// The cluster's local volumes across a reset: which claim lived in which directory on which node.
// reset/volumes records them in the state directory (`<state>/volumes.json`, 0600) before the cluster
// goes; install's cluster/volumes gives each one back as a PersistentVolume pre-bound to its claim, on
// the same directory and node, so the claim the platform creates again binds to its old data.
#pragma once

#include "util/error.hpp"

#include <filesystem>
#include <string>
#include <vector>

namespace mlplat::phases {

// --- Interface ---

struct VolumeRecord {
  std::string name;           // the PersistentVolume's name (pvc-<uid of the first claim>)
  std::string claim_namespace;
  std::string claim_name;
  std::string node;           // the node whose directory holds the data
  std::string path;           // the directory on that node
  std::string capacity;       // "20Gi"
  std::string storage_class;  // "openebs-hostpath"
  std::vector<std::string> access_modes;
  std::string volume_mode;    // "Filesystem"
};

// The local volumes of `pv_list_json` (kubectl get pv -o json) that a claim uses: a `local` or
// `hostPath` directory, one node in their node affinity (local) or the claim's node. Other volumes
// (network storage) are not the hosts' to keep and are left out.
Result<std::vector<VolumeRecord>> local_volumes(const std::string& pv_list_json);

// `<dir>/volumes.json`: read (none when absent; a broken file is an error naming it) and written atomically.
Result<std::vector<VolumeRecord>> read_volume_records(const std::filesystem::path& dir);
Status write_volume_records(const std::filesystem::path& dir, const std::vector<VolumeRecord>& records);

// `old` with `now` merged in: a volume of `now` replaces the record of the same name; records `now`
// lacks are kept (a second reset, after the cluster is gone, must not forget them).
std::vector<VolumeRecord> merge_volume_records(std::vector<VolumeRecord> old, const std::vector<VolumeRecord>& now);

// The PersistentVolume that gives `record` back: pre-bound to its claim (namespace and name), `local`
// on its directory, node affinity to its node, reclaim policy Retain (the data is not deleted when the
// claim is), as JSON for kubectl.
std::string restored_volume_manifest(const VolumeRecord& record);

} // namespace mlplat::phases
