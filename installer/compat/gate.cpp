#include "compat/gate.hpp"

#include "util/text.hpp"

#include <fmt/core.h>

#include <algorithm>

namespace mlplat::compat {

std::string to_string(Level level)
{
  switch (level) {
  case Level::pass: return "pass";
  case Level::warning: return "warning";
  case Level::error: return "error";
  }
  return "?";
}

std::string to_string(Stage stage)
{
  switch (stage) {
  case Stage::containerd: return "containerd";
  case Stage::kubernetes: return "kubernetes";
  case Stage::cni: return "cni";
  case Stage::storage: return "storage";
  case Stage::pipelines: return "pipelines";
  case Stage::ingress: return "ingress";
  }
  return "?";
}

bool GateResult::passed() const
{
  return std::none_of(findings.begin(), findings.end(), [](const Finding& f) { return f.level == Level::error; });
}

Status GateResult::to_status() const
{
  if (passed()) {
    return {};
  }
  Error e;
  e.code = ErrorCode::preflight_failed;
  size_t errors = 0;
  for (const auto& f : findings) {
    if (f.level != Level::error) {
      continue;
    }
    ++errors;
    Error child;
    child.code = ErrorCode::preflight_failed;
    child.host = f.subject;
    child.message = fmt::format("[{}] row {}: {}", f.rule, f.row.empty() ? "-" : f.row, f.reason);
    child.fix = f.supported.empty() ? std::string() : "supported instead: " + f.supported;
    e.children.push_back(std::move(child));
  }
  e.message = fmt::format("the compatibility gate '{}' refused {} thing(s); nothing was changed", gate, errors);
  e.fix = "see docs/matrix.md for the rows and rules; `mlplat matrix` lists what is supported";
  return tl::unexpected(std::move(e));
}

namespace {

std::string minor_of(const Version& v)
{
  return fmt::format("{}.{}", v.major, v.minor);
}

bool same_minor(const Version& a, const Version& b)
{
  return a.major == b.major && a.minor == b.minor;
}

// "1.31" admits any 1.31.x; "1.31.2" only itself.
bool matches(const Version& requested, const Version& installed)
{
  return requested.has_patch ? compare(requested, installed) == 0 : same_minor(requested, installed);
}

std::string rows_list(const Matrix& m)
{
  std::vector<std::string> out;
  for (const auto& r : m.rows) {
    out.push_back(fmt::format("{} ({}, {})", minor_of(r.kubernetes), r.id, to_string(r.status)));
  }
  return "Kubernetes " + text::join(out, ", ");
}

struct Collector {
  GateResult& result;
  std::string row;

  void add(std::string rule, std::string subject, Level level, std::string reason, std::string supported = {})
  {
    result.findings.push_back({std::move(rule), row, std::move(subject), level, std::move(reason), std::move(supported)});
  }
  void skew(const Verdict& v, const std::string& subject)
  {
    add(v.rule, subject, v.ok ? Level::pass : Level::error, v.reason, v.supported);
  }
};

// The components an install of this cluster puts on it.
std::vector<std::string> components_installed(const config::Cluster& c)
{
  std::vector<std::string> out{"containerd", "runc", "cniPlugins", "crictl", "pause",
                               c.network.cni == config::Cni::calico ? "calico" : "flannel", "openebs", "istio"};
  if (c.ingress.tls.mode == config::TlsMode::acme) {
    out.emplace_back("certManager");
  }
  if (c.pipelines.enabled) {
    out.emplace_back("pipelines");
    out.emplace_back("argoWorkflows");
  }
  return out;
}

} // namespace

Result<const Row*> select_row(const Matrix& matrix, const config::Cluster& cluster)
{
  const auto it = cluster.versions.find("kubernetes");
  if (it == cluster.versions.end()) {
    return &matrix.default_();
  }
  TRY_ASSIGN(const Version wanted, Version::parse(it->second));
  const Row* row = matrix.for_kubernetes(wanted);
  if (row == nullptr) {
    Error e;
    e.code = ErrorCode::preflight_failed;
    e.message = fmt::format("[MAT-001] no matrix row has Kubernetes {} (spec.versions.kubernetes)", it->second);
    e.fix = fmt::format("supported instead: {}", rows_list(matrix));
    e.where = cluster.where("spec.versions.kubernetes");
    return tl::unexpected(std::move(e));
  }
  return row;
}

GateResult check_config(const Matrix& matrix, const config::Cluster& cluster, const GateOptions& options)
{
  GateResult result;
  result.gate = "config";
  auto selected = select_row(matrix, cluster);
  if (!selected) {
    Collector{result, ""}.add("MAT-001", "kubernetes", Level::error,
                              fmt::format("no matrix row has Kubernetes {}", cluster.versions.at("kubernetes")),
                              rows_list(matrix));
    return result;
  }
  const Row& row = **selected;
  result.row = &row;
  Collector out{result, row.id};
  out.add("MAT-001", "kubernetes", Level::pass,
          fmt::format("Kubernetes {} is row {} ({})", row.kubernetes.str(), row.id, to_string(row.status)));

  // MAT-002: every version the file names is the row's.
  for (const auto& [name, text] : cluster.versions) {
    auto requested = Version::parse(text);
    if (!requested) {
      out.add("MAT-002", name, Level::error, fmt::format("spec.versions.{}: {}", name, requested.error().message));
      continue;
    }
    const Version installs = name == "kubernetes" ? row.kubernetes
                             : row.component(name) != nullptr ? row.component(name)->version
                                                              : Version{};
    if (name != "kubernetes" && row.component(name) == nullptr) {
      out.add("MAT-002", name, Level::error, fmt::format("row {} does not install {}", row.id, name),
              "remove spec.versions." + name);
      continue;
    }
    if (matches(*requested, installs)) {
      out.add("MAT-002", name, Level::pass, fmt::format("{} {} is what row {} installs", name, installs.str(), row.id));
    } else {
      std::string elsewhere;
      for (const auto& other : matrix.rows) {
        const Component* c = other.component(name);
        if (&other != &row && c != nullptr && matches(*requested, c->version)) {
          elsewhere = fmt::format(" (row {} has {} {})", other.id, name, c->version.str());
        }
      }
      out.add("MAT-002", name, Level::error,
              fmt::format("{} {} is requested; row {} installs {}", name, text, row.id, installs.str()),
              fmt::format("{} {}{}, or leave spec.versions.{} out to take the row's", name, installs.str(), elsewhere, name));
    }
  }

  // MAT-003: the chosen CNI is in the row.
  const std::string cni = cluster.network.cni == config::Cni::calico ? "calico" : "flannel";
  if (row.component(cni) == nullptr) {
    std::vector<std::string> offered;
    for (const auto& c : {"calico", "flannel"}) {
      if (row.component(c) != nullptr) {
        offered.emplace_back(c);
      }
    }
    out.add("MAT-003", cni, Level::error, fmt::format("row {} offers no {} release", row.id, cni),
            fmt::format("spec.network.cni: {}", text::join(offered, " or ")));
  } else {
    out.add("MAT-003", cni, Level::pass, fmt::format("row {} has {} {}", row.id, cni, row.component(cni)->version.str()));
  }

  // MAT-004: preview rows only when asked for.
  const Level preview_level = options.allow_preview ? Level::warning : Level::error;
  if (row.status == RowStatus::preview) {
    std::string others;
    for (const auto& r : matrix.rows) {
      if (r.status == RowStatus::default_row || r.status == RowStatus::supported) {
        others += (others.empty() ? "" : ", ") + minor_of(r.kubernetes);
      }
    }
    out.add("MAT-004", "kubernetes", preview_level,
            fmt::format("row {} (Kubernetes {}) is a preview: not every component lists it yet{}", row.id,
                        row.kubernetes.str(), options.allow_preview ? "; allowed by --allow-preview" : ""),
            options.allow_preview ? std::string() : fmt::format("Kubernetes {}, or --allow-preview to install it anyway", others));
  } else if (row.status == RowStatus::legacy) {
    out.add("MAT-004", "kubernetes", Level::error,
            fmt::format("row {} is legacy: kept as an upgrade source only, not for new installs", row.id),
            fmt::format("Kubernetes {}", minor_of(matrix.default_().kubernetes)));
  }

  // MAT-012: the row is offered on this profile.
  if (std::find(row.profiles.begin(), row.profiles.end(), cluster.profile) != row.profiles.end()) {
    out.add("MAT-012", cluster.profile, Level::pass, fmt::format("row {} is offered on profile {}", row.id, cluster.profile));
  } else {
    std::vector<std::string> others;
    for (const auto& r : matrix.rows) {
      if (std::find(r.profiles.begin(), r.profiles.end(), cluster.profile) != r.profiles.end()) {
        others.push_back(fmt::format("{} ({})", minor_of(r.kubernetes), r.id));
      }
    }
    out.add("MAT-012", cluster.profile, Level::error,
            fmt::format("row {} is not offered on profile {} (it is on {})", row.id, cluster.profile, text::join(row.profiles, ", ")),
            others.empty() ? "another profile" : "Kubernetes " + text::join(others, ", "));
  }

  // MAT-005: each component to be installed supports the row's Kubernetes.
  for (const auto& name : components_installed(cluster)) {
    const Component* c = row.component(name);
    if (c == nullptr || c->kubernetes.empty()) {
      continue;
    }
    if (c->kubernetes.admits(row.kubernetes)) {
      out.add("MAT-005", name, Level::pass,
              fmt::format("{} {} supports Kubernetes {} ({})", name, c->version.str(), minor_of(row.kubernetes), c->kubernetes.text));
    } else {
      out.add("MAT-005", name, row.status == RowStatus::preview ? preview_level : Level::error,
              fmt::format("{} {} supports Kubernetes {}, not {}", name, c->version.str(), c->kubernetes.text,
                          minor_of(row.kubernetes)),
              fmt::format("a Kubernetes {} admits", c->kubernetes.text));
    }
  }
  return result;
}

GateResult check_hosts(const Matrix& matrix, const Row& row, const std::vector<HostVersions>& hosts)
{
  GateResult result;
  result.gate = "hosts";
  result.row = &row;
  Collector out{result, row.id};
  const auto kernel_floor = Version::parse(matrix.kernel_minimum);
  const Component* containerd = row.component("containerd");
  for (const auto& h : hosts) {
    const std::string os = h.os_id + " " + h.os_version;
    const bool os_ok = std::any_of(matrix.supported_os.begin(), matrix.supported_os.end(), [&](const std::string& s) {
      const auto space = s.find(' ');
      const std::string id = s.substr(0, space);
      const std::string version = space == std::string::npos ? "" : s.substr(space + 1);
      return id == h.os_id && (h.os_version == version || h.os_version.rfind(version + ".", 0) == 0);
    });
    if (os_ok) {
      out.add("MAT-006", h.host, Level::pass, fmt::format("{} is supported", os));
    } else {
      out.add("MAT-006", h.host, Level::error, fmt::format("{} is not a supported OS", h.os_id.empty() ? "unknown" : os),
              text::join(matrix.supported_os, ", "));
    }
    const auto kernel = Version::parse(h.kernel);
    if (kernel && kernel_floor && compare(*kernel, *kernel_floor) >= 0) {
      out.add("MAT-007", h.host, Level::pass, fmt::format("kernel {} >= {}", h.kernel, matrix.kernel_minimum));
    } else {
      out.add("MAT-007", h.host, Level::error,
              fmt::format("kernel '{}' is older than {} or unreadable", h.kernel, matrix.kernel_minimum),
              fmt::format("a kernel {} or newer", matrix.kernel_minimum));
    }
    if (!h.containerd.empty() && containerd != nullptr) {
      const auto v = Version::parse(h.containerd);
      const bool ok = v && (containerd->accepts.empty() ? same_minor(*v, containerd->version) : containerd->accepts.admits(*v));
      out.add("MAT-008", h.host, ok ? Level::pass : Level::error,
              fmt::format("containerd {} is installed; row {} accepts {}", h.containerd, row.id,
                          containerd->accepts.empty() ? minor_of(containerd->version) : containerd->accepts.text),
              ok ? std::string() : fmt::format("containerd {} (remove the installed one: apt-get remove containerd containerd.io)", containerd->version.str()));
    }
    for (const auto& [what, installed] : {std::pair{"kubelet", h.kubelet}, std::pair{"kubeadm", h.kubeadm}}) {
      if (installed.empty()) {
        continue;
      }
      const auto v = Version::parse(installed);
      const bool ok = v && same_minor(*v, row.kubernetes);
      out.add("MAT-009", h.host, ok ? Level::pass : Level::error,
              fmt::format("{} {} is installed; row {} installs {}", what, installed, row.id, row.kubernetes.str()),
              ok ? std::string()
                 : fmt::format("remove it (kubeadm reset -f, apt-get remove {}) or choose the row for Kubernetes {}", what,
                               v ? minor_of(*v) : installed));
    }
  }
  return result;
}

GateResult check_live(const Row& row, Stage stage, const LiveVersions& live)
{
  GateResult result;
  result.gate = "before " + to_string(stage);
  result.row = &row;
  Collector out{result, row.id};
  const bool needs_cluster = stage != Stage::containerd && stage != Stage::kubernetes;
  if (needs_cluster) {
    if (!live.apiserver) {
      out.add("MAT-010", "apiserver", Level::error, "the API server's version could not be read",
              "check that the control plane is up: mlplat doctor, and on the first control plane "
              "kubectl --kubeconfig /etc/kubernetes/admin.conf get --raw /readyz");
    } else if (!same_minor(*live.apiserver, row.kubernetes)) {
      out.add("MAT-010", "apiserver", Level::error,
              fmt::format("the API server runs {}; row {} is Kubernetes {}", live.apiserver->str(), row.id, minor_of(row.kubernetes)),
              fmt::format("the row for Kubernetes {}, or upgrade the cluster first (kubeadm upgrade, one minor version at a time)",
                          minor_of(*live.apiserver)));
    } else {
      out.add("MAT-010", "apiserver", Level::pass, fmt::format("the API server runs {}", live.apiserver->str()));
    }
    if (live.apiserver) {
      for (const auto& [node, kubelet] : live.kubelets) {
        out.skew(kubelet_vs_apiserver(*live.apiserver, kubelet), node);
      }
      if (live.kubectl) {
        out.skew(kubectl_vs_apiserver(*live.apiserver, *live.kubectl), "kubectl");
      }
    }
  }
  if (stage == Stage::pipelines) {
    const Component* k = row.component("kustomize");
    if (k != nullptr) {
      const std::string wanted = k->accepts.empty() ? ">=" + k->version.str() : k->accepts.text;
      if (!live.kustomize) {
        out.add("MAT-011", "kustomize", Level::error, "kubectl's kustomize version could not be read",
                fmt::format("a kubectl whose kustomize is {}", wanted));
      } else {
        const bool ok = k->accepts.empty() ? compare(*live.kustomize, k->version) >= 0 : k->accepts.admits(*live.kustomize);
        out.add("MAT-011", "kustomize", ok ? Level::pass : Level::error,
                fmt::format("kubectl's kustomize is {}; row {} needs {}", live.kustomize->str(), row.id, wanted),
                ok ? std::string() : fmt::format("kubectl {} (kustomize {})", minor_of(row.kubernetes), k->version.str()));
      }
    }
  }
  return result;
}

GateResult check_upgrade(const Matrix& matrix, const Version& current, const Version& target, const GateOptions& options)
{
  GateResult result;
  result.gate = "upgrade";
  const Row* row = matrix.for_kubernetes(target);
  if (row == nullptr) {
    Collector{result, ""}.add("MAT-001", "kubernetes", Level::error, fmt::format("no matrix row has Kubernetes {}", target.str()),
                              rows_list(matrix));
    return result;
  }
  result.row = row;
  Collector out{result, row->id};
  if (row->status == RowStatus::preview) {
    out.add("MAT-004", "kubernetes", options.allow_preview ? Level::warning : Level::error,
            fmt::format("row {} is a preview", row->id),
            options.allow_preview ? std::string() : "stay on a supported row, or --allow-preview");
  } else if (row->status == RowStatus::legacy) {
    out.add("MAT-004", "kubernetes", Level::error, fmt::format("row {} is legacy: not an upgrade target", row->id),
            fmt::format("Kubernetes {}", minor_of(matrix.default_().kubernetes)));
  }
  Version to = target.has_patch ? target : row->kubernetes;
  if (target.has_patch && compare(target, row->kubernetes) != 0) {
    out.add("MAT-002", "kubernetes", Level::error,
            fmt::format("Kubernetes {} is requested; row {} installs {}", target.str(), row->id, row->kubernetes.str()),
            row->kubernetes.str());
    to = row->kubernetes;
  }
  out.skew(upgrade_path(current, to), "kubernetes");
  return result;
}

std::string render(const GateResult& result, bool include_passes)
{
  std::string out;
  for (const auto& f : result.findings) {
    if (f.level == Level::pass && !include_passes) {
      continue;
    }
    out += fmt::format("{:<8} {:<9} {:<10} {:<12} {}", to_string(f.level), f.rule, f.row.empty() ? "-" : f.row, f.subject,
                       f.reason);
    if (!f.supported.empty() && f.level != Level::pass) {
      out += fmt::format("\n{:<42}supported instead: {}", "", f.supported);
    }
    out += '\n';
  }
  return out;
}

} // namespace mlplat::compat
