#include "kube/live.hpp"

#include "workflow/steps.hpp"

#include <fmt/core.h>
#include <nlohmann/json.hpp>

namespace mlplat::kube {

namespace {

constexpr const char* k_separator = "---mlplat---";

} // namespace

std::string live_versions_script()
{
  return fmt::format("{0} version -o json 2>/dev/null || true\necho '{1}'\n{0} get nodes -o json 2>/dev/null || true\n", workflow::kubectl(),
                     k_separator);
}

std::optional<compat::LiveVersions> parse_live_versions(const std::string& out)
{
  const auto cut = out.find(k_separator);
  if (cut == std::string::npos) {
    return std::nullopt;
  }
  compat::LiveVersions live;
  try {
    const auto version = nlohmann::json::parse(out.substr(0, cut));
    if (!version.contains("serverVersion")) {
      return std::nullopt;
    }
    if (auto v = compat::Version::parse(version["serverVersion"].value("gitVersion", "")); v) {
      live.apiserver = *v;
    }
    if (auto v = compat::Version::parse(version["clientVersion"].value("gitVersion", "")); v) {
      live.kubectl = *v;
    }
    if (auto v = compat::Version::parse(version.value("kustomizeVersion", "")); v) {
      live.kustomize = *v;
    }
    const auto nodes = nlohmann::json::parse(out.substr(cut + std::string(k_separator).size()));
    for (const auto& n : nodes.value("items", nlohmann::json::array())) {
      if (auto v = compat::Version::parse(n["status"]["nodeInfo"].value("kubeletVersion", "")); v) {
        live.kubelets.emplace_back(n["metadata"].value("name", ""), *v);
      }
    }
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
  return live;
}

Result<std::optional<compat::LiveVersions>> live_versions(transport::Fleet& fleet, size_t host)
{
  TRY_ASSIGN(const auto r, fleet.exec(host, workflow::read_only("read the API server's, kubelets' and kubectl's versions", live_versions_script())));
  return parse_live_versions(r.out);
}

} // namespace mlplat::kube
