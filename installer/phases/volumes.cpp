#include "phases/volumes.hpp"

#include "util/fs.hpp"

#include <fmt/core.h>
#include <nlohmann/json.hpp>

namespace mlplat::phases {

using nlohmann::json;

namespace {

// The single hostname of a local volume's required node affinity, or "".
std::string affinity_node(const json& pv)
{
  const auto terms = pv.value("/spec/nodeAffinity/required/nodeSelectorTerms"_json_pointer, json::array());
  for (const auto& term : terms) {
    for (const auto& e : term.value("matchExpressions", json::array())) {
      const auto values = e.value("values", json::array());
      if (e.value("key", "") == "kubernetes.io/hostname" && e.value("operator", "") == "In" && values.size() == 1) {
        return values[0].get<std::string>();
      }
    }
  }
  return {};
}

json to_json(const VolumeRecord& r)
{
  return {{"name", r.name}, {"claimNamespace", r.claim_namespace}, {"claimName", r.claim_name}, {"node", r.node}, {"path", r.path},
          {"capacity", r.capacity}, {"storageClass", r.storage_class}, {"accessModes", r.access_modes}, {"volumeMode", r.volume_mode}};
}

} // namespace

Result<std::vector<VolumeRecord>> local_volumes(const std::string& pv_list_json)
{
  std::vector<VolumeRecord> out;
  try {
    const auto doc = json::parse(pv_list_json);
    for (const auto& pv : doc.at("items")) {
      const auto& spec = pv.at("spec");
      if (!spec.contains("claimRef")) {
        continue;
      }
      VolumeRecord r;
      r.name = pv.at("metadata").at("name").get<std::string>();
      r.claim_namespace = spec.at("claimRef").value("namespace", "");
      r.claim_name = spec.at("claimRef").value("name", "");
      if (spec.contains("local")) {
        r.path = spec.at("local").value("path", "");
      } else if (spec.contains("hostPath")) {
        r.path = spec.at("hostPath").value("path", "");
      } else {
        continue;
      }
      r.node = affinity_node(pv);
      if (r.path.empty() || r.node.empty() || r.claim_name.empty()) {
        continue;
      }
      r.capacity = spec.value("/capacity/storage"_json_pointer, std::string());
      r.storage_class = spec.value("storageClassName", "");
      for (const auto& m : spec.value("accessModes", json::array())) {
        r.access_modes.push_back(m.get<std::string>());
      }
      r.volume_mode = spec.value("volumeMode", "Filesystem");
      out.push_back(std::move(r));
    }
  } catch (const json::exception& e) {
    return fail(ErrorCode::failed, fmt::format("the PersistentVolumes the API server listed could not be read: {}", e.what()));
  }
  return out;
}

Result<std::vector<VolumeRecord>> read_volume_records(const std::filesystem::path& dir)
{
  const auto file = dir / "volumes.json";
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) {
    return std::vector<VolumeRecord>{};
  }
  TRY_ASSIGN(const std::string text, fs::read_file(file));
  std::vector<VolumeRecord> out;
  try {
    const auto doc = json::parse(text);  // kept: a range over a temporary's member would dangle
    for (const auto& v : doc.at("volumes")) {
      VolumeRecord r;
      r.name = v.at("name");
      r.claim_namespace = v.at("claimNamespace");
      r.claim_name = v.at("claimName");
      r.node = v.at("node");
      r.path = v.at("path");
      r.capacity = v.at("capacity");
      r.storage_class = v.at("storageClass");
      r.access_modes = v.at("accessModes").get<std::vector<std::string>>();
      r.volume_mode = v.at("volumeMode");
      out.push_back(std::move(r));
    }
  } catch (const json::exception& e) {
    return fail(ErrorCode::config_invalid, fmt::format("{}: not a record of volumes: {}", file.string(), e.what()),
                "restore it from a backup; without it the kept directories are not given back to their claims (they stay on the hosts)");
  }
  return out;
}

Status write_volume_records(const std::filesystem::path& dir, const std::vector<VolumeRecord>& records)
{
  json doc = {{"format", 1}, {"volumes", json::array()}};
  for (const auto& r : records) {
    doc["volumes"].push_back(to_json(r));
  }
  return fs::write_file_atomic(dir / "volumes.json", doc.dump(2) + "\n", 0600);
}

std::vector<VolumeRecord> merge_volume_records(std::vector<VolumeRecord> old, const std::vector<VolumeRecord>& now)
{
  for (const auto& n : now) {
    bool replaced = false;
    for (auto& o : old) {
      if (o.name == n.name) {
        o = n;
        replaced = true;
      }
    }
    if (!replaced) {
      old.push_back(n);
    }
  }
  return old;
}

std::string restored_volume_manifest(const VolumeRecord& r)
{
  json pv = {
    {"apiVersion", "v1"},
    {"kind", "PersistentVolume"},
    {"metadata", {{"name", r.name}, {"labels", {{"mlplat.dev/restored", "true"}}}}},
    {"spec",
     {{"capacity", {{"storage", r.capacity}}},
      {"accessModes", r.access_modes},
      {"volumeMode", r.volume_mode},
      {"persistentVolumeReclaimPolicy", "Retain"},
      {"storageClassName", r.storage_class},
      {"claimRef", {{"apiVersion", "v1"}, {"kind", "PersistentVolumeClaim"}, {"namespace", r.claim_namespace}, {"name", r.claim_name}}},
      {"local", {{"path", r.path}}},
      {"nodeAffinity",
       {{"required",
         {{"nodeSelectorTerms",
           json::array({{{"matchExpressions", json::array({{{"key", "kubernetes.io/hostname"}, {"operator", "In"}, {"values", {r.node}}}})}}})}}}}}}}};
  return pv.dump() + "\n";
}

} // namespace mlplat::phases
