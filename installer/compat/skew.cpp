#include "compat/skew.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <charconv>

namespace mlplat::compat {

namespace {

Verdict ok(std::string rule, std::string reason)
{
  return {true, std::move(rule), std::move(reason), {}};
}

Verdict refuse(std::string rule, std::string reason, std::string supported)
{
  return {false, std::move(rule), std::move(reason), std::move(supported)};
}

// "1.33" for the minor `delta` minors from `v` (same major).
std::string minor_text(const Version& v, int delta = 0)
{
  return fmt::format("{}.{}", v.major, v.minor + delta);
}

int minors_between(const Version& older, const Version& newer)
{
  return (newer.major - older.major) * 1000 + newer.minor - older.minor;
}

} // namespace

Result<Version> Version::parse(std::string_view text)
{
  std::string_view s = text;
  if (!s.empty() && (s.front() == 'v' || s.front() == 'V')) {
    s.remove_prefix(1);
  }
  const auto cut = s.find_first_of("-+");
  const std::string_view core = s.substr(0, cut);
  Version v;
  int* fields[] = {&v.major, &v.minor, &v.patch};
  size_t count = 0;
  size_t pos = 0;
  while (pos <= core.size() && count < 3) {
    const size_t dot = core.find('.', pos);
    const std::string_view part = core.substr(pos, dot == std::string_view::npos ? std::string_view::npos : dot - pos);
    const auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), *fields[count]);
    if (part.empty() || ec != std::errc() || end != part.data() + part.size() || *fields[count] < 0) {
      return fail(ErrorCode::config_invalid, fmt::format("'{}' is not a version like 1.36 or v1.36.2", text));
    }
    ++count;
    if (dot == std::string_view::npos) {
      pos = core.size() + 1;
      break;
    }
    pos = dot + 1;
  }
  if (count < 2 || pos <= core.size()) {
    return fail(ErrorCode::config_invalid, fmt::format("'{}' is not a version like 1.36 or v1.36.2", text));
  }
  v.has_patch = count == 3;
  return v;
}

std::string Version::str() const
{
  return has_patch ? fmt::format("{}.{}.{}", major, minor, patch) : fmt::format("{}.{}", major, minor);
}

int compare(const Version& a, const Version& b)
{
  if (a.major != b.major) {
    return a.major < b.major ? -1 : 1;
  }
  if (a.minor != b.minor) {
    return a.minor < b.minor ? -1 : 1;
  }
  if (a.patch != b.patch) {
    return a.patch < b.patch ? -1 : 1;
  }
  return 0;
}

Verdict kubelet_vs_apiserver(const Version& apiserver, const Version& kubelet)
{
  const int older = minors_between(kubelet, apiserver);
  const int allowed = (kubelet.major == 1 && kubelet.minor < 25) ? 2 : 3;
  const std::string range = fmt::format("kubelet {} to {}", minor_text(apiserver, -3), minor_text(apiserver));
  if (older < 0) {
    return refuse("SKEW-001", fmt::format("kubelet {} is newer than the API server {}", kubelet.str(), apiserver.str()),
                  range + " (upgrade the API server first)");
  }
  if (older > allowed) {
    return refuse("SKEW-001",
                  fmt::format("kubelet {} is {} minors older than the API server {}; at most {} are supported", kubelet.str(), older,
                              apiserver.str(), allowed),
                  range);
  }
  return ok("SKEW-001", fmt::format("kubelet {} with API server {}", kubelet.str(), apiserver.str()));
}

Verdict kubectl_vs_apiserver(const Version& apiserver, const Version& kubectl)
{
  const int delta = minors_between(kubectl, apiserver);
  if (delta > 1 || delta < -1) {
    return refuse("SKEW-002", fmt::format("kubectl {} is {} minors from the API server {}; one is supported", kubectl.str(),
                                          delta < 0 ? -delta : delta, apiserver.str()),
                  fmt::format("kubectl {} to {}", minor_text(apiserver, -1), minor_text(apiserver, 1)));
  }
  return ok("SKEW-002", fmt::format("kubectl {} with API server {}", kubectl.str(), apiserver.str()));
}

Verdict control_plane_vs_apiserver(const Version& apiserver, const Version& component)
{
  const int older = minors_between(component, apiserver);
  if (older < 0 || older > 1) {
    return refuse("SKEW-003",
                  fmt::format("control-plane component {} with API server {}: it must be the same minor or one older",
                              component.str(), apiserver.str()),
                  fmt::format("{} or {}", minor_text(apiserver, -1), minor_text(apiserver)));
  }
  return ok("SKEW-003", fmt::format("control-plane component {} with API server {}", component.str(), apiserver.str()));
}

Verdict apiservers_ha(const std::vector<Version>& apiservers)
{
  if (apiservers.empty()) {
    return ok("SKEW-004", "no API server");
  }
  const auto [lo, hi] = std::minmax_element(apiservers.begin(), apiservers.end(),
                                            [](const Version& a, const Version& b) { return compare(a, b) < 0; });
  if (minors_between(*lo, *hi) > 1) {
    return refuse("SKEW-004", fmt::format("API servers {} and {} are more than one minor apart", lo->str(), hi->str()),
                  fmt::format("upgrade the {} API servers to {} first", lo->str(), minor_text(*hi, -1)));
  }
  return ok("SKEW-004", fmt::format("API servers from {} to {}", lo->str(), hi->str()));
}

Verdict kube_proxy(const Version& apiserver, const Version& kubelet, const Version& proxy)
{
  const int older = minors_between(proxy, apiserver);
  if (older < 0 || older > 3) {
    return refuse("SKEW-005", fmt::format("kube-proxy {} with API server {}: not newer, at most 3 minors older", proxy.str(), apiserver.str()),
                  fmt::format("kube-proxy {} to {}", minor_text(apiserver, -3), minor_text(apiserver)));
  }
  const int from_kubelet = minors_between(proxy, kubelet);
  if (from_kubelet > 3 || from_kubelet < -3) {
    return refuse("SKEW-005", fmt::format("kube-proxy {} is more than 3 minors from the kubelet {} beside it", proxy.str(), kubelet.str()),
                  fmt::format("kube-proxy within 3 minors of {}", kubelet.str()));
  }
  return ok("SKEW-005", fmt::format("kube-proxy {}", proxy.str()));
}

Verdict kubeadm_vs_kubernetes(const Version& kubeadm, const Version& kubernetes)
{
  const int older = minors_between(kubernetes, kubeadm);
  if (older < 0 || older > 1) {
    return refuse("SKEW-006", fmt::format("kubeadm {} cannot deploy Kubernetes {}: it deploys its own minor or one older",
                                          kubeadm.str(), kubernetes.str()),
                  fmt::format("kubeadm {} (or {}) for Kubernetes {}", minor_text(kubernetes), minor_text(kubernetes, 1),
                              kubernetes.str()));
  }
  return ok("SKEW-006", fmt::format("kubeadm {} deploys Kubernetes {}", kubeadm.str(), kubernetes.str()));
}

Verdict kubeadm_vs_kubelet(const Version& kubeadm, const Version& kubelet)
{
  const int older = minors_between(kubelet, kubeadm);
  if (older < 0 || older > 3) {
    return refuse("SKEW-007", fmt::format("kubelet {} with kubeadm {}: the kubelet is kubeadm's minor or up to three older",
                                          kubelet.str(), kubeadm.str()),
                  fmt::format("kubelet {} to {}", minor_text(kubeadm, -3), minor_text(kubeadm)));
  }
  return ok("SKEW-007", fmt::format("kubelet {} with kubeadm {}", kubelet.str(), kubeadm.str()));
}

Verdict kubeadm_join(const Version& cluster_kubeadm, const Version& joining_kubeadm)
{
  if (minors_between(joining_kubeadm, cluster_kubeadm) != 0) {
    return refuse("SKEW-008", fmt::format("joining with kubeadm {} a cluster set up by kubeadm {}", joining_kubeadm.str(),
                                          cluster_kubeadm.str()),
                  fmt::format("kubeadm {} on the joining node", minor_text(cluster_kubeadm)));
  }
  return ok("SKEW-008", fmt::format("kubeadm {} joins a kubeadm {} cluster", joining_kubeadm.str(), cluster_kubeadm.str()));
}

Verdict upgrade_path(const Version& current, const Version& target)
{
  const int step = minors_between(current, target);
  if (step < 0 || (step == 0 && target.has_patch && current.has_patch && target.patch < current.patch)) {
    return refuse("SKEW-009", fmt::format("{} to {} is a downgrade", current.str(), target.str()),
                  fmt::format("stay on {}, or restore a backup taken before the upgrade", current.str()));
  }
  if (step > 1) {
    return refuse("SKEW-009",
                  fmt::format("{} to {} skips {} minor{}; Kubernetes upgrades one minor at a time", current.str(), target.str(), step - 1,
                              step - 1 == 1 ? "" : "s"),
                  fmt::format("upgrade to {} first", minor_text(current, 1)));
  }
  return ok("SKEW-009", step == 0 ? fmt::format("{} to {} stays on the minor", current.str(), target.str())
                                  : fmt::format("{} to {} is one minor", current.str(), target.str()));
}

Verdict kubeadm_upgrade(const Version& node_kubeadm, const Version& upgrading_kubeadm)
{
  const int newer = minors_between(node_kubeadm, upgrading_kubeadm);
  if (newer < 0 || newer > 1) {
    return refuse("SKEW-010", fmt::format("kubeadm {} upgrading a node set up by kubeadm {}", upgrading_kubeadm.str(), node_kubeadm.str()),
                  fmt::format("kubeadm {} or {}", minor_text(node_kubeadm), minor_text(node_kubeadm, 1)));
  }
  return ok("SKEW-010", fmt::format("kubeadm {} upgrades a kubeadm {} node", upgrading_kubeadm.str(), node_kubeadm.str()));
}

} // namespace mlplat::compat
