#include "commands/status.hpp"

#include "compat/skew.hpp"
#include "phases/phases.hpp"
#include "render/platform.hpp"
#include "tls/tls.hpp"
#include "util/parallel.hpp"
#include "util/text.hpp"
#include "workflow/identity.hpp"
#include "workflow/steps.hpp"

#include <fmt/chrono.h>
#include <fmt/core.h>

#include <algorithm>
#include <ctime>
#include <set>

namespace mlplat::commands::status {

namespace {

using Sections = std::map<std::string, std::string>;
using json = nlohmann::json;

constexpr const char* k_etcd_curl = "curl -sS --max-time 5 --cacert /etc/kubernetes/pki/etcd/ca.crt "
                                    "--cert /etc/kubernetes/pki/etcd/healthcheck-client.crt "
                                    "--key /etc/kubernetes/pki/etcd/healthcheck-client.key";

const std::vector<std::string>& control_plane_components()
{
  static const std::vector<std::string> names{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd"};
  return names;
}

// "@@ name" starts a section; its lines (newline-joined) until the next marker.
Sections split_sections(const std::string& output)
{
  Sections sections;
  std::string* current = nullptr;
  for (const auto& line : text::split(output, '\n')) {
    if (line.rfind("@@ ", 0) == 0) {
      current = &sections[std::string(text::trim(line.substr(3)))];
    } else if (current != nullptr) {
      *current += line + "\n";
    }
  }
  return sections;
}

std::vector<std::string> lines_of(const std::string& s)
{
  std::vector<std::string> out;
  for (const auto& l : text::split(s, '\n')) {
    if (!text::trim(l).empty()) {
      out.push_back(l);
    }
  }
  return out;
}

std::optional<json> parse_json(const std::string& s)
{
  if (text::trim(s).empty()) {
    return std::nullopt;
  }
  try {
    return json::parse(s);
  } catch (const json::exception&) {
    return std::nullopt;
  }
}

// The tag of an image reference ("quay.io/calico/node:v3.32.1" -> "v3.32.1"; "" without one).
std::string image_tag(const std::string& image)
{
  std::string ref = image.substr(0, image.find('@'));
  const auto slash = ref.rfind('/');
  const auto colon = ref.rfind(':');
  return colon == std::string::npos || (slash != std::string::npos && colon < slash) ? std::string() : ref.substr(colon + 1);
}

// The repository of an image without its registry and tag ("quay.io/calico/node:v3" -> "calico/node";
// "mysql:8.4" -> "library/mysql"), so a mirrored image compares with the row's.
std::string image_path(const std::string& image)
{
  std::string ref = image.substr(0, image.find('@'));
  const std::string tag = image_tag(ref);
  if (!tag.empty()) {
    ref.resize(ref.size() - tag.size() - 1);
  }
  const auto slash = ref.find('/');
  if (slash == std::string::npos) {
    return "library/" + ref;
  }
  const std::string first = ref.substr(0, slash);
  if (first.find('.') != std::string::npos || first.find(':') != std::string::npos || first == "localhost") {
    ref = ref.substr(slash + 1);
    // A mirror may keep the registry as a path prefix; the row's path is the tail.
  }
  return ref.find('/') == std::string::npos ? "library/" + ref : ref;
}

// Whether the row's component `name` admits `version` (its accepts, else exactly its version).
bool admits(const compat::Component& c, const std::string& version)
{
  auto v = compat::Version::parse(version);
  if (!v) {
    return false;
  }
  return c.accepts.empty() ? compat::compare(*v, c.version) == 0 : c.accepts.admits(*v);
}

std::string bare_version(std::string v)
{
  if (!v.empty() && v.front() == 'v') {
    v.erase(0, 1);
  }
  return v;
}

// "containerd://2.3.4" or "containerd github.com/containerd/containerd/v2 v2.3.4 <sha>" -> "2.3.4".
std::string containerd_version(const std::string& s)
{
  if (s.rfind("containerd://", 0) == 0) {
    return bare_version(s.substr(13));
  }
  const auto words = text::split(std::string(text::trim(s)), ' ');
  return words.size() >= 3 ? bare_version(words[2]) : std::string();
}

// "Kubernetes v1.36.4" -> "v1.36.4".
std::string kubelet_binary_version(const std::string& s)
{
  const auto words = text::split(std::string(text::trim(s)), ' ');
  return words.size() >= 2 ? words[1] : std::string();
}

std::string iso(std::chrono::system_clock::time_point t)
{
  return fmt::format("{:%Y-%m-%dT%H:%M:%SZ}", fmt::gmtime(std::chrono::system_clock::to_time_t(t)));
}

std::optional<std::chrono::system_clock::time_point> parse_iso(const std::string& s)
{
  std::tm tm{};
  if (s.size() < 19 || ::strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm) == nullptr) {
    return std::nullopt;
  }
  return std::chrono::system_clock::from_time_t(::timegm(&tm));
}

Certificate certificate(std::string name, std::string kind, std::optional<std::chrono::system_clock::time_point> expires,
                        std::chrono::system_clock::time_point now)
{
  Certificate c;
  c.name = std::move(name);
  c.kind = std::move(kind);
  if (!expires) {
    c.state = "missing";
    return c;
  }
  c.expires = iso(*expires);
  const auto left = std::chrono::duration_cast<std::chrono::seconds>(*expires - now).count();
  // Whole days left, rounded down (an expired certificate counts negative days).
  c.days_left = left >= 0 ? left / 86400 : -((-left + 86399) / 86400);
  c.state = left <= 0 ? "expired" : c.days_left < k_warn_days ? "expiring" : "ok";
  return c;
}

class Judge {
public:
  Judge(const Inputs& in, Report& r) : m_in(in), m_cluster(*in.cluster), m_row(*in.row), m_r(r) {}

  void degraded(std::string subject, std::string message) { m_r.problems.push_back({"degraded", std::move(subject), std::move(message)}); }
  void warning(std::string subject, std::string message) { m_r.problems.push_back({"warning", std::move(subject), std::move(message)}); }
  void drift(std::string kind, std::string subject, std::string expected, std::string actual)
  {
    m_r.problems.push_back({"degraded", subject, fmt::format("drift ({}): expected {}, found {}", kind, expected.empty() ? "none" : expected,
                                                              actual.empty() ? "none" : actual)});
    m_r.drift.push_back({std::move(kind), std::move(subject), std::move(expected), std::move(actual)});
  }

  void hosts(const std::vector<Result<std::string>>& outputs)
  {
    for (size_t h = 0; h < m_cluster.hosts.size(); ++h) {
      const auto& host = m_cluster.hosts[h];
      Node n;
      n.name = host.name;
      n.address = host.address;
      n.role = config::to_string(host.role);
      n.in_cluster_file = true;
      if (h < outputs.size() && outputs[h]) {
        n.reachable = true;
        const auto sections = split_sections(*outputs[h]);
        const auto it = sections.find("host");
        for (const auto& line : it == sections.end() ? std::vector<std::string>{} : lines_of(it->second)) {
          const auto eq = line.find('=');
          const std::string key = line.substr(0, eq);
          const std::string value = eq == std::string::npos ? std::string() : std::string(text::trim(line.substr(eq + 1)));
          if (key == "os") {
            n.os = value;
          } else if (key == "kernel") {
            n.kernel = value;
          } else if (key == "kubeadm") {
            n.kubeadm = value;
          } else if (key == "kubelet") {
            n.kubelet = kubelet_binary_version(value);
          } else if (key == "containerd") {
            n.containerd = containerd_version(value);
          } else if (key == "machine-id") {
            n.identity = workflow::parse_identity(line);
          }
        }
      } else {
        n.error = h < outputs.size() ? outputs[h].error().message : "not asked";
        degraded(host.name, "not reachable: " + n.error);
      }
      m_r.nodes.push_back(std::move(n));
    }
  }

  // The first control plane's cluster sections.
  void cluster(const Sections& s)
  {
    const auto version = parse_json(value(s, "version"));
    if (version && version->contains("serverVersion")) {
      m_r.api_server = true;
      m_r.kubernetes = (*version)["serverVersion"].value("gitVersion", "");
    }
    if (!m_r.api_server) {
      degraded(m_cluster.hosts[m_cluster.first_control_plane()].name, "the API server did not answer kubectl on the first control plane");
      unknown_components();
      return;
    }
    expect_kubernetes("kube-apiserver", m_r.kubernetes);
    nodes(value(s, "nodes"));
    pods(value(s, "pods"));
    etcd(value(s, "etcd-members"), value(s, "etcd-health"));
    certs(value(s, "certs"));
    platform(s);
  }

  void identities()
  {
    if (m_in.journal == nullptr) {
      return;
    }
    for (const auto& n : m_r.nodes) {
      if (!n.in_cluster_file || !n.reachable) {
        continue;
      }
      const std::string known = m_in.journal->identity(n.name);
      if (!known.empty() && !n.identity.empty() && known != n.identity) {
        drift("identity", n.name, known, n.identity);
      }
    }
  }

  void host_versions()
  {
    for (const auto& n : m_r.nodes) {
      if (!n.in_cluster_file || !n.reachable) {
        continue;
      }
      expect_kubernetes(n.name + " kubeadm", n.kubeadm);
      expect_kubernetes(n.name + " kubelet", n.kubelet);
      if (const auto* c = m_row.component("containerd"); c != nullptr && !admits(*c, n.containerd)) {
        drift("version", n.name + " containerd", c->version.str() + (c->accepts.empty() ? "" : " (accepts " + c->accepts.text + ")"),
              n.containerd);
      }
    }
  }

  // Expired certificates make the cluster degraded; those with less than k_warn_days left, and a
  // cluster certificate kubeadm reports missing, are warnings (the ingress's absence is judged with it).
  void certificate_problems()
  {
    for (const auto& c : m_r.certificates) {
      const std::string what = (c.kind == "ingress" ? "ingress certificate" : c.kind + " certificate " + c.name);
      if (c.state == "expired") {
        degraded(what, fmt::format("expired on {}", c.expires));
      } else if (c.state == "expiring") {
        warning(what, fmt::format("expires on {} ({} days left)", c.expires, c.days_left));
      } else if (c.state == "missing" && c.kind != "ingress") {
        warning(what, "kubeadm reports it missing");
      }
    }
  }

  void last_run()
  {
    m_r.last_run = m_in.last_run;
    if (!m_in.last_run) {
      warning("runs", "no run of mlplat is recorded in the state directory");
    } else if (m_in.last_run->exit_code != 0) {
      warning("runs", fmt::format("the last run, {} at {}, exited {}", m_in.last_run->command, m_in.last_run->started, m_in.last_run->exit_code));
    }
  }

private:
  const Inputs& m_in;
  const config::Cluster& m_cluster;
  const compat::Row& m_row;
  Report& m_r;

  static std::string value(const Sections& s, const std::string& name)
  {
    const auto it = s.find(name);
    return it == s.end() ? std::string() : it->second;
  }

  void expect_kubernetes(const std::string& subject, const std::string& live)
  {
    const auto v = compat::Version::parse(live);
    if (!v || compat::compare(*v, m_row.kubernetes) != 0) {
      drift("version", subject, "v" + m_row.kubernetes.str(), live);
    }
  }

  Node* node(const std::string& name)
  {
    for (auto& n : m_r.nodes) {
      if (n.name == name) {
        return &n;
      }
    }
    return nullptr;
  }

  void nodes(const std::string& text)
  {
    const auto doc = parse_json(text);
    if (!doc) {
      degraded("nodes", "kubectl get nodes printed no node list");
      return;
    }
    for (const auto& item : doc->value("items", json::array())) {
      const auto& meta = item.value("metadata", json::object());
      const std::string name = meta.value("name", "");
      Node* n = node(name);
      if (n == nullptr) {
        Node extra;
        extra.name = name;
        m_r.nodes.push_back(extra);
        n = &m_r.nodes.back();
        drift("node-extra", name, "", "a node the cluster file does not list");
      }
      n->registered = true;
      const auto& status = item.value("status", json::object());
      for (const auto& c : status.value("conditions", json::array())) {
        if (c.value("type", "") == "Ready") {
          n->ready = c.value("status", "Unknown");
        }
      }
      if (n->ready.empty()) {
        n->ready = "Unknown";
      }
      const auto labels = meta.value("labels", json::object());
      for (const auto& [key, v] : labels.items()) {
        constexpr std::string_view prefix = "node-role.kubernetes.io/";
        if (key.rfind(prefix, 0) == 0) {
          n->roles.push_back(key.substr(prefix.size()));
        }
      }
      const auto& info = status.value("nodeInfo", json::object());
      n->kubelet = info.value("kubeletVersion", n->kubelet);
      n->os = info.value("osImage", n->os);
      n->kernel = info.value("kernelVersion", n->kernel);
      if (const std::string cr = containerd_version(info.value("containerRuntimeVersion", "")); !cr.empty()) {
        n->containerd = cr;
      }
      if (n->ready != "True") {
        degraded(name, "node is not Ready (" + n->ready + ")");
      }
      if (const auto* host = m_cluster.find_host(name)) {
        labels_and_taints(*host, labels, meta.value("annotations", json::object()), item.value("spec", json::object()));
      }
    }
    for (const auto& h : m_cluster.hosts) {
      if (Node* n = node(h.name); n != nullptr && !n->registered) {
        drift("node-missing", h.name, "a node of the cluster", "not registered with the API server");
      }
    }
  }

  void labels_and_taints(const config::Host& host, const json& labels, const json& annotations, const json& spec)
  {
    for (const auto& [k, v] : host.labels) {
      const std::string have = labels.contains(k) && labels[k].is_string() ? labels[k].get<std::string>() : std::string();
      if (!labels.contains(k) || have != v) {
        drift("label", host.name, k + "=" + v, labels.contains(k) ? k + "=" + have : std::string());
      }
    }
    // A label mlplat set earlier (its annotation lists it) that the cluster file no longer has.
    if (annotations.contains(phases::k_labels_annotation) && annotations[phases::k_labels_annotation].is_string()) {
      for (const auto& k : text::split(annotations[phases::k_labels_annotation].get<std::string>(), ',')) {
        if (!k.empty() && host.labels.count(k) == 0 && labels.contains(k)) {
          drift("label", host.name, "", k + "=" + (labels[k].is_string() ? labels[k].get<std::string>() : std::string()));
        }
      }
    }
    std::set<std::string> live;
    for (const auto& t : spec.value("taints", json::array())) {
      config::Taint taint{t.value("key", ""), t.value("value", ""), t.value("effect", "")};
      live.insert(taint.str());
    }
    for (const auto& t : host.taints) {
      if (live.count(t.str()) == 0) {
        drift("taint", host.name, t.str(), "");
      }
    }
  }

  // "name node component phase ready image" lines of the kube-system pods labelled tier=control-plane.
  void pods(const std::string& text)
  {
    std::map<std::pair<std::string, std::string>, ControlPlanePod> found;
    for (const auto& line : lines_of(text)) {
      const auto f = text::split(line, ' ');
      if (f.size() < 5) {
        continue;
      }
      ControlPlanePod p{f[1], f[2], f[4] == "True", f[3]};
      found[{f[1], f[2]}] = p;
    }
    for (const auto& h : m_cluster.hosts) {
      if (h.role != config::Role::control_plane) {
        continue;
      }
      for (const auto& component : control_plane_components()) {
        auto it = found.find({h.name, component});
        ControlPlanePod p = it != found.end() ? it->second : ControlPlanePod{h.name, component, false, "no pod"};
        if (!p.ready) {
          degraded(h.name, fmt::format("{} is not ready ({})", component, p.detail.empty() ? "no status" : p.detail));
        }
        m_r.control_plane.push_back(p);
      }
    }
  }

  void etcd(const std::string& members_text, const std::string& health_text)
  {
    const auto doc = parse_json(members_text);
    if (!doc || !doc->contains("members")) {
      degraded("etcd", fmt::format("the member list could not be read from the first control plane ({})",
                                   text::trim(members_text).empty() ? "no answer" : std::string(text::trim(members_text)).substr(0, 200)));
      return;
    }
    std::map<std::string, std::string> health;  // client URL -> etcd's answer
    for (const auto& line : lines_of(health_text)) {
      const auto sp = line.find(' ');
      health[line.substr(0, sp)] = sp == std::string::npos ? std::string() : line.substr(sp + 1);
    }
    std::set<std::string> names;
    for (const auto& m : (*doc)["members"]) {
      EtcdMember e;
      e.name = m.value("name", "");
      e.id = m.contains("ID") ? (m["ID"].is_string() ? m["ID"].get<std::string>() : m["ID"].dump()) : std::string();
      const auto urls = m.value("clientURLs", json::array());
      e.client_url = urls.empty() ? std::string() : urls[0].get<std::string>();
      names.insert(e.name);
      if (e.name.empty() || e.client_url.empty()) {
        e.detail = "not started (added, never joined)";
      } else if (auto it = health.find(e.client_url); it == health.end()) {
        e.detail = "not asked (its client URL is not https)";
      } else if (const auto answer = parse_json(it->second)) {
        e.healthy = answer->value("health", "") == "true";
        e.detail = e.healthy ? "" : answer->value("reason", "unhealthy");
      } else {
        e.detail = std::string(text::trim(it->second)).substr(0, 200);
      }
      if (!e.healthy) {
        degraded("etcd " + (e.name.empty() ? e.id : e.name), "member is not healthy: " + e.detail);
      }
      m_r.etcd.push_back(e);
    }
    for (const auto& h : m_cluster.hosts) {
      if (h.role == config::Role::control_plane && names.count(h.name) == 0) {
        drift("etcd-member", h.name, "an etcd member", "");
      }
    }
  }

  void certs(const std::string& text)
  {
    const auto doc = parse_json(text);
    if (!doc) {
      degraded("certificates", "kubeadm certs check-expiration printed no JSON on the first control plane");
      return;
    }
    auto add = [&](const json& list, const std::string& kind) {
      for (const auto& c : list) {
        std::optional<std::chrono::system_clock::time_point> at;
        if (!c.value("missing", false) && c.contains("expirationDate") && c["expirationDate"].is_string()) {
          at = parse_iso(c["expirationDate"].get<std::string>());
        }
        m_r.certificates.push_back(certificate(c.value("name", ""), kind, at, m_in.now));
      }
    };
    add(doc->value("certificateAuthorities", json::array()), "cluster-ca");
    add(doc->value("certificates", json::array()), "cluster");
  }

  // "namespace name desired ready images," lines (daemonsets) or "namespace name replicas available images,".
  struct Workload {
    std::string ns, name;
    long want = 0, have = 0;
    std::vector<std::string> images;
  };
  static std::vector<Workload> workloads(const std::string& text)
  {
    std::vector<Workload> out;
    for (const auto& line : lines_of(text)) {
      const auto f = text::split(line, ' ');
      if (f.size() < 5) {
        continue;
      }
      Workload w;
      w.ns = f[0];
      w.name = f[1];
      try {
        w.want = f[2].empty() ? 0 : std::stol(f[2]);
        w.have = f[3].empty() ? 0 : std::stol(f[3]);
      } catch (const std::exception&) {
      }
      for (const auto& i : text::split(f[4], ',')) {
        if (!i.empty()) {
          w.images.push_back(i);
        }
      }
      out.push_back(w);
    }
    return out;
  }
  static const Workload* find(const std::vector<Workload>& all, const std::string& ns, const std::string& name)
  {
    for (const auto& w : all) {
      if (w.ns == ns && w.name == name) {
        return &w;
      }
    }
    return nullptr;
  }
  static std::string tag_of(const Workload& w, const std::string& path_suffix)
  {
    for (const auto& i : w.images) {
      const std::string p = image_path(i);
      if (p.size() >= path_suffix.size() && p.compare(p.size() - path_suffix.size(), path_suffix.size(), path_suffix) == 0) {
        return image_tag(i);
      }
    }
    return {};
  }

  Component component(const std::string& name, const std::string& row_component)
  {
    Component c;
    c.name = name;
    if (const auto* rc = m_row.component(row_component)) {
      c.expected = rc->version.str();
    }
    return c;
  }

  void judge_component(Component c, const std::string& row_component)
  {
    if (c.state == "ready" || c.state == "not-ready") {
      const auto* rc = m_row.component(row_component);
      if (rc != nullptr && !admits(*rc, c.version)) {
        drift("version", c.name + " (" + row_component + ")", rc->version.str(), c.version);
      }
    }
    if (c.state == "not-ready" || c.state == "absent") {
      degraded(c.name, c.state + (c.detail.empty() ? "" : ": " + c.detail));
    }
    m_r.components.push_back(std::move(c));
  }

  void unknown_components()
  {
    for (const char* name : {"cni", "storage", "pipelines", "gateway"}) {
      Component c;
      c.name = name;
      c.state = "unknown";
      c.detail = "the API server did not answer";
      m_r.components.push_back(c);
    }
  }

  static std::string rollout(const Workload& w) { return fmt::format("{}/{} ready", w.have, w.want); }

  void platform(const Sections& s)
  {
    const auto ds = workloads(value(s, "daemonsets"));
    const auto deploys = workloads(value(s, "deployments"));

    // CNI: the DaemonSet that runs on every node.
    const bool calico = m_cluster.network.cni == config::Cni::calico;
    Component cni = component("cni", calico ? "calico" : "flannel");
    const Workload* w = calico ? find(ds, "calico-system", "calico-node") : find(ds, "kube-flannel", "kube-flannel-ds");
    if (w == nullptr) {
      cni.state = "absent";
      cni.detail = calico ? "no DaemonSet calico-system/calico-node" : "no DaemonSet kube-flannel/kube-flannel-ds";
    } else {
      cni.version = bare_version(tag_of(*w, calico ? "calico/node" : "flannel-io/flannel"));
      cni.state = w->want > 0 && w->have == w->want ? "ready" : "not-ready";
      cni.detail = (calico ? "calico-node " : "kube-flannel-ds ") + rollout(*w);
    }
    judge_component(cni, calico ? "calico" : "flannel");

    // Storage: the only default StorageClass, and its provisioner.
    Component storage = component("storage", "openebs");
    std::vector<std::string> defaults;
    for (const auto& line : lines_of(value(s, "storageclasses"))) {
      const auto f = text::split(line, ' ');
      if (f.size() >= 2 && text::trim(f[1]) == "true") {
        defaults.push_back(f[0]);
      }
    }
    const Workload* prov = find(deploys, "openebs", "openebs-localpv-provisioner");
    if (defaults.empty()) {
      storage.state = "absent";
      storage.detail = "no default StorageClass";
    } else {
      storage.version = prov == nullptr ? std::string() : bare_version(tag_of(*prov, "openebs/provisioner-localpv"));
      storage.state = prov != nullptr && prov->want > 0 && prov->have >= prov->want ? "ready" : "not-ready";
      storage.detail = fmt::format("default StorageClass {}; provisioner {}", text::join(defaults, ","),
                                   prov == nullptr ? "absent" : rollout(*prov));
      if (defaults != std::vector<std::string>{"openebs-hostpath"}) {
        drift("config", "default StorageClass", "openebs-hostpath", text::join(defaults, ","));
      }
    }
    judge_component(storage, "openebs");

    // Pipelines and the gateway: left out with spec.pipelines.enabled false.
    if (!m_cluster.pipelines.enabled) {
      for (const char* name : {"pipelines", "gateway"}) {
        Component c;
        c.name = name;
        c.state = "disabled";
        c.detail = "spec.pipelines.enabled is false";
        m_r.components.push_back(c);
      }
      return;
    }
    const std::string ns = m_cluster.pipelines.name_space;
    Component pipelines = component("pipelines", "pipelines");
    std::vector<const Workload*> in_ns;
    for (const auto& d : deploys) {
      if (d.ns == ns) {
        in_ns.push_back(&d);
      }
    }
    if (in_ns.empty()) {
      pipelines.state = "absent";
      pipelines.detail = "no deployment in namespace " + ns;
    } else {
      std::vector<std::string> waiting;
      for (const auto* d : in_ns) {
        if (d->have < d->want) {
          waiting.push_back(d->name + " " + rollout(*d));
        }
        if (const std::string t = tag_of(*d, "kubeflow/kfp-api-server"); !t.empty()) {
          pipelines.version = bare_version(t);
        }
        images(*d);
      }
      pipelines.state = waiting.empty() ? "ready" : "not-ready";
      pipelines.detail = waiting.empty() ? fmt::format("{} deployments available in {}", in_ns.size(), ns) : text::join(waiting, "; ");
    }
    judge_component(pipelines, "pipelines");

    Component gateway = component("gateway", "istio");
    const Workload* gw = find(deploys, render::k_gateway_namespace, "istio-ingressgateway");
    const Workload* istiod = find(deploys, render::k_gateway_namespace, "istiod");
    if (gw == nullptr) {
      gateway.state = "absent";
      gateway.detail = "no deployment istio-system/istio-ingressgateway";
    } else {
      gateway.version = bare_version(tag_of(*gw, "istio/proxyv2"));
      const bool ok = gw->want > 0 && gw->have >= gw->want && istiod != nullptr && istiod->have >= istiod->want && istiod->want > 0;
      gateway.state = ok ? "ready" : "not-ready";
      gateway.detail = fmt::format("istio-ingressgateway {}; istiod {}", rollout(*gw), istiod == nullptr ? "absent" : rollout(*istiod));
    }
    judge_component(gateway, "istio");

    // The ingress certificate the gateway serves from its Secret.
    const std::string pem = value(s, "ingress-cert");
    if (pem.find("-----BEGIN CERTIFICATE-----") == std::string::npos) {
      m_r.certificates.push_back(certificate("ingress", "ingress", std::nullopt, m_in.now));
      degraded("ingress certificate", fmt::format("no certificate in Secret {}/{}", render::k_gateway_namespace, render::k_tls_secret));
    } else if (auto info = tls::inspect(pem)) {
      m_r.certificates.push_back(certificate("ingress", "ingress", info->not_after, m_in.now));
    } else {
      m_r.certificates.push_back(certificate("ingress", "ingress", std::nullopt, m_in.now));
      degraded("ingress certificate", "unreadable: " + info.error().message);
    }
  }

  // Each image of a Pipelines deployment whose repository the row names, with the row's tag.
  void images(const Workload& d)
  {
    for (const auto& image : d.images) {
      const std::string path = image_path(image);
      for (const auto& want : m_row.images) {
        if (image_path(want) == path && image_tag(want) != image_tag(image)) {
          drift("image", d.ns + "/" + d.name, want, image);
        }
      }
    }
  }
};

std::string or_dash(const std::string& s)
{
  return s.empty() ? "-" : s;
}

} // namespace

bool Report::degraded() const
{
  return std::any_of(problems.begin(), problems.end(), [](const Problem& p) { return p.severity == "degraded"; });
}

int Report::exit_code() const
{
  if (unreachable_exit != 0) {
    return unreachable_exit;
  }
  return degraded() ? k_exit_degraded : k_exit_ok;
}

std::string host_script()
{
  return "echo '@@ host'\n"
         "echo \"os=$( (. /etc/os-release 2>/dev/null && printf '%s' \"${PRETTY_NAME:-}\") )\"\n"
         "echo \"kernel=$(uname -r)\"\n"
         "echo \"kubeadm=$(kubeadm version -o short 2>/dev/null)\"\n"
         "echo \"kubelet=$(kubelet --version 2>/dev/null)\"\n"
         "echo \"containerd=$(containerd --version 2>/dev/null)\"\n" +
         workflow::identity_command().script;
}

std::string cluster_script()
{
  const std::string k = workflow::kubectl() + " --request-timeout=10s";
  std::string s;
  s += fmt::format("echo '@@ version'\n{} version -o json 2>/dev/null\n", k);
  s += fmt::format("echo '@@ nodes'\n{} get nodes -o json 2>/dev/null\n", k);
  s += fmt::format("echo '@@ pods'\n{} -n kube-system get pods -l tier=control-plane -o jsonpath='{{range .items[*]}}{{.metadata.name}}"
                   "{{\" \"}}{{.spec.nodeName}}{{\" \"}}{{.metadata.labels.component}}{{\" \"}}{{.status.phase}}{{\" \"}}"
                   "{{range .status.conditions[?(@.type==\"Ready\")]}}{{.status}}{{end}}{{\"\\n\"}}{{end}}' 2>/dev/null\n",
                   k);
  s += "echo '@@ certs'\ntimeout 30 kubeadm certs check-expiration -o json 2>/dev/null\n";
  s += fmt::format("echo '@@ etcd-members'\nmembers=$({} -X POST -d '{{}}' https://127.0.0.1:2379/v3/cluster/member/list 2>&1)\n"
                   "printf '%s\\n' \"$members\"\n",
                   k_etcd_curl);
  // Each member's client URL (etcd's JSON is one line: a member per '{'), asked for its health.
  s += fmt::format("echo '@@ etcd-health'\n"
                   "for u in $(printf '%s' \"$members\" | tr '{{' '\\n' | sed -n 's/.*\"clientURLs\":\\[\"\\([^\"]*\\)\".*/\\1/p'); do\n"
                   "  case $u in https://*) ;; *) continue ;; esac\n"
                   "  printf '%s %s\\n' \"$u\" \"$({} \"$u/health\" 2>&1 | tr '\\n' ' ')\"\n"
                   "done\n",
                   k_etcd_curl);
  const std::string workload = "{{range .items[*]}}{{.metadata.namespace}}{{\" \"}}{{.metadata.name}}{{\" \"}}{{{}}}{{\" \"}}{{{}}}{{\" \"}}"
                               "{{range .spec.template.spec.containers[*]}}{{.image}}{{\",\"}}{{end}}{{\"\\n\"}}{{end}}";
  s += fmt::format("echo '@@ daemonsets'\n{} get daemonsets -A -o jsonpath='{}' 2>/dev/null\n", k,
                   fmt::format(fmt::runtime(workload), ".status.desiredNumberScheduled", ".status.numberReady"));
  s += fmt::format("echo '@@ deployments'\n{} get deployments -A -o jsonpath='{}' 2>/dev/null\n", k,
                   fmt::format(fmt::runtime(workload), ".spec.replicas", ".status.availableReplicas"));
  s += fmt::format("echo '@@ storageclasses'\n{} get storageclass -o jsonpath='{{range .items[*]}}{{.metadata.name}}{{\" \"}}"
                   "{{.metadata.annotations.storageclass\\.kubernetes\\.io/is-default-class}}{{\"\\n\"}}{{end}}' 2>/dev/null\n",
                   k);
  // Only the certificate of the gateway's Secret (tls.crt), never its key.
  s += fmt::format("echo '@@ ingress-cert'\n{} -n {} get secret {} -o jsonpath='{{.data.tls\\.crt}}' 2>/dev/null | base64 -d 2>/dev/null\n", k,
                   render::k_gateway_namespace, render::k_tls_secret);
  return s + "exit 0\n";
}

Report judge(const Inputs& in, const std::vector<Result<std::string>>& outputs)
{
  Report r;
  r.cluster = in.cluster->name;
  r.row = in.row->id;
  Judge j(in, r);
  j.hosts(outputs);
  const size_t cp = in.cluster->first_control_plane();
  if (cp < outputs.size() && outputs[cp]) {
    j.cluster(split_sections(*outputs[cp]));
  } else {
    j.degraded(in.cluster->hosts[cp].name, "the first control plane could not be reached: the cluster was not read");
  }
  j.host_versions();
  j.identities();
  j.certificate_problems();
  j.last_run();
  std::vector<Error> failures;
  for (const auto& o : outputs) {
    if (!o) {
      failures.push_back(o.error());
    }
  }
  if (!failures.empty() && failures.size() == outputs.size()) {
    r.unreachable_exit = exit_code_for(aggregate_failures(std::move(failures), outputs.size()).error());
  }
  return r;
}

Report gather(transport::Fleet& fleet, const Inputs& in)
{
  const size_t cp = in.cluster->first_control_plane();
  const auto outputs = fleet.for_each<std::string>([&](size_t h) -> Result<std::string> {
    fleet.set_label(h, "status");
    auto c = workflow::read_only(h == cp ? "read the host's and the cluster's state" : "read the host's state",
                                 h == cp ? host_script() + cluster_script() : host_script());
    c.deadline = in.deadline;
    TRY_ASSIGN(const auto r, fleet.exec(h, c));
    if (!r.exit_status) {
      return fail(ErrorCode::failed, fmt::format("{}: the status script ended without an exit status ({})", fleet.endpoint(h).name, r.status_text()));
    }
    return r.out;
  });
  return judge(in, outputs);
}

json to_json(const Report& r)
{
  json j;
  j["apiVersion"] = "mlplat.dev/v1alpha1";
  j["kind"] = "StatusReport";
  j["cluster"] = r.cluster;
  j["row"] = r.row;
  j["kubernetes"] = r.kubernetes;
  j["apiServer"] = r.api_server;
  const int rc = r.exit_code();
  j["status"] = rc == k_exit_ok ? "healthy" : rc == k_exit_degraded ? "degraded" : "unreachable";
  j["exitCode"] = rc;
  j["nodes"] = json::array();
  for (const auto& n : r.nodes) {
    json o{{"name", n.name},        {"address", n.address},   {"role", n.role},       {"inClusterFile", n.in_cluster_file},
           {"registered", n.registered}, {"reachable", n.reachable}, {"ready", n.ready}, {"roles", n.roles},
           {"kubelet", n.kubelet},  {"kubeadm", n.kubeadm},   {"containerd", n.containerd}, {"os", n.os},
           {"kernel", n.kernel}};
    if (!n.error.empty()) {
      o["error"] = n.error;
    }
    j["nodes"].push_back(o);
  }
  j["controlPlane"] = json::array();
  for (const auto& p : r.control_plane) {
    j["controlPlane"].push_back({{"node", p.node}, {"component", p.component}, {"ready", p.ready}, {"detail", p.detail}});
  }
  j["etcd"] = json::array();
  for (const auto& e : r.etcd) {
    j["etcd"].push_back({{"name", e.name}, {"id", e.id}, {"clientURL", e.client_url}, {"healthy", e.healthy}, {"detail", e.detail}});
  }
  j["components"] = json::array();
  for (const auto& c : r.components) {
    j["components"].push_back({{"name", c.name}, {"state", c.state}, {"version", c.version}, {"expected", c.expected}, {"detail", c.detail}});
  }
  j["certificates"] = json::array();
  for (const auto& c : r.certificates) {
    json o{{"name", c.name}, {"kind", c.kind}, {"state", c.state}};
    if (c.state != "missing") {
      o["expires"] = c.expires;
      o["daysLeft"] = c.days_left;
    }
    j["certificates"].push_back(o);
  }
  j["drift"] = json::array();
  for (const auto& d : r.drift) {
    j["drift"].push_back({{"kind", d.kind}, {"subject", d.subject}, {"expected", d.expected}, {"actual", d.actual}});
  }
  if (r.last_run) {
    j["lastRun"] = {{"command", r.last_run->command}, {"started", r.last_run->started}, {"finished", r.last_run->finished},
                    {"exitCode", r.last_run->exit_code}, {"logFile", r.last_run->log_file}};
  } else {
    j["lastRun"] = nullptr;
  }
  j["problems"] = json::array();
  for (const auto& p : r.problems) {
    j["problems"].push_back({{"severity", p.severity}, {"subject", p.subject}, {"message", p.message}});
  }
  return j;
}

std::string render_text(const Report& r)
{
  std::string out;
  const int rc = r.exit_code();
  out += fmt::format("cluster {} (row {}, Kubernetes {}): {}\n\n", r.cluster, r.row, or_dash(r.kubernetes),
                     rc == k_exit_ok ? "healthy" : rc == k_exit_degraded ? "DEGRADED" : "UNREACHABLE");
  out += fmt::format("{:<18} {:<14} {:<8} {:<10} {:<10} {:<11} {:<24} {}\n", "NODE", "ROLE", "READY", "KUBELET", "KUBEADM", "CONTAINERD",
                     "OS", "KERNEL");
  for (const auto& n : r.nodes) {
    const std::string ready = !n.reachable && n.in_cluster_file ? "unreach" : or_dash(n.ready);
    out += fmt::format("{:<18} {:<14} {:<8} {:<10} {:<10} {:<11} {:<24} {}\n", n.name,
                       n.in_cluster_file ? n.role : "(not in file)", ready, or_dash(n.kubelet), or_dash(n.kubeadm), or_dash(n.containerd),
                       or_dash(n.os), or_dash(n.kernel));
  }
  if (!r.control_plane.empty()) {
    out += fmt::format("\n{:<18} {:<24} {:<6} {}\n", "CONTROL PLANE", "COMPONENT", "READY", "DETAIL");
    for (const auto& p : r.control_plane) {
      out += fmt::format("{:<18} {:<24} {:<6} {}\n", p.node, p.component, p.ready ? "yes" : "no", p.detail);
    }
  }
  if (!r.etcd.empty()) {
    out += fmt::format("\n{:<18} {:<30} {:<8} {}\n", "ETCD MEMBER", "CLIENT URL", "HEALTHY", "DETAIL");
    for (const auto& e : r.etcd) {
      out += fmt::format("{:<18} {:<30} {:<8} {}\n", or_dash(e.name), or_dash(e.client_url), e.healthy ? "yes" : "no", e.detail);
    }
  }
  if (!r.components.empty()) {
    out += fmt::format("\n{:<10} {:<10} {:<10} {:<10} {}\n", "COMPONENT", "STATE", "VERSION", "ROW", "DETAIL");
    for (const auto& c : r.components) {
      out += fmt::format("{:<10} {:<10} {:<10} {:<10} {}\n", c.name, c.state, or_dash(c.version), or_dash(c.expected), c.detail);
    }
  }
  if (!r.certificates.empty()) {
    out += fmt::format("\n{:<26} {:<11} {:<21} {:>9}  {}\n", "CERTIFICATE", "KIND", "EXPIRES", "DAYS LEFT", "STATE");
    for (const auto& c : r.certificates) {
      out += fmt::format("{:<26} {:<11} {:<21} {:>9}  {}\n", c.name, c.kind, or_dash(c.expires),
                         c.state == "missing" ? "-" : std::to_string(c.days_left), c.state);
    }
  }
  out += "\nDRIFT\n";
  if (r.drift.empty()) {
    out += r.api_server ? "  none: versions, nodes, labels, taints and host identities are as installed\n"
                        : "  not known: the cluster was not read\n";
  }
  for (const auto& d : r.drift) {
    out += fmt::format("  {:<12} {:<28} expected {}, found {}\n", d.kind, d.subject, d.expected.empty() ? "none" : d.expected,
                       d.actual.empty() ? "none" : d.actual);
  }
  out += "\nLAST RUN\n";
  out += r.last_run ? fmt::format("  {} from {} to {}: exit {}{}\n", r.last_run->command, r.last_run->started, r.last_run->finished,
                                  r.last_run->exit_code, r.last_run->log_file.empty() ? "" : ", log " + r.last_run->log_file)
                    : "  none recorded\n";
  if (!r.problems.empty()) {
    out += "\nPROBLEMS\n";
    for (const auto& p : r.problems) {
      out += fmt::format("  {:<8} {}: {}\n", p.severity, p.subject, p.message);
    }
  }
  return out;
}

} // namespace mlplat::commands::status
