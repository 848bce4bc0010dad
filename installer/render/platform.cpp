#include "render/platform.hpp"

#include "render/references.hpp"

#include "assets/assets.hpp"
#include "bundle/kustomize.hpp"
#include "compat/gate.hpp"
#include "util/fs.hpp"
#include "util/log.hpp"
#include "util/net.hpp"
#include "util/process.hpp"
#include "util/text.hpp"
#include "yamlio/emit.hpp"

#include <fmt/core.h>
#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <set>

namespace mlplat::render {

namespace sfs = std::filesystem;

namespace {

Result<std::string> kustomize_build(const std::string& kubectl, const sfs::path& dir)
{
  TRY_ASSIGN(const ProcessResult r, run_process({kubectl, "kustomize", dir.string()}, std::chrono::minutes(2)));
  if (!r.ok()) {
    return fail(ErrorCode::failed, fmt::format("kubectl kustomize {} failed: {}", dir.string(), text::trim(r.err)),
                "the overlay is mlplat's (manifests/platform) over the bundle's upstream manifests: check --data-dir overrides, "
                "or recreate the bundle with this mlplat");
  }
  return r.out;
}

// The kubectl that renders: the bundle's (the row's version), or the one on PATH when the bundle's
// cannot run on this machine. Its kustomize version is read for the gate.
Result<std::pair<std::string, compat::Version>> local_kubectl(const Inputs& in, const sfs::path& work_dir)
{
  std::vector<std::string> candidates;
  if (const auto* a = in.bom->find("kubectl"); a != nullptr) {
    const sfs::path copy = work_dir / "bin" / "kubectl";
    std::error_code ec;
    sfs::create_directories(copy.parent_path(), ec);
    sfs::copy_file(in.bundle_dir / a->file, copy, sfs::copy_options::overwrite_existing, ec);
    if (!ec) {
      sfs::permissions(copy, sfs::perms::owner_all, ec);
      candidates.push_back(copy.string());
    }
  }
  candidates.emplace_back("kubectl");
  std::string tried;
  for (const auto& k : candidates) {
    auto r = run_process({k, "version", "--client", "-o", "json"}, std::chrono::seconds(30));
    if (!r || !r->ok()) {
      tried += fmt::format("{} ({}); ", k, r ? std::string(text::trim(r->err)) : r.error().message);
      continue;
    }
    try {
      const auto j = nlohmann::json::parse(r->out);
      auto v = compat::Version::parse(j.value("kustomizeVersion", ""));
      if (v) {
        return std::pair{k, *v};
      }
    } catch (const nlohmann::json::exception&) {
    }
    tried += k + " (no kustomizeVersion in its version output); ";
  }
  return fail(ErrorCode::failed, "no kubectl on this machine can build the Kubeflow Pipelines overlay: " + tried,
              "run mlplat on a linux/amd64 machine (the bundle's kubectl runs there) or put a kubectl on PATH");
}

// Every Deployment name and CRD name of rendered YAML.
Status scan(const std::string& yaml, std::vector<std::string>* crds, std::vector<std::string>* deployments)
{
  try {
    for (const auto& doc : YAML::LoadAll(yaml)) {
      if (!doc.IsMap()) {
        continue;
      }
      const std::string kind = doc["kind"] ? doc["kind"].as<std::string>() : "";
      const std::string name = doc["metadata"] && doc["metadata"]["name"] ? doc["metadata"]["name"].as<std::string>() : "";
      if (kind == "CustomResourceDefinition" && crds) {
        crds->push_back(name);
      }
      if (kind == "Deployment" && deployments) {
        deployments->push_back(name);
      }
    }
  } catch (const YAML::Exception& e) {
    return fail(ErrorCode::failed, fmt::format("the rendered overlay is not valid YAML: {}", e.what()));
  }
  return {};
}

// The requests of one pod template: max(sum of its containers, its largest init container), per
// resource, as the scheduler counts them.
std::pair<double, double> pod_requests(const YAML::Node& pod)
{
  auto of = [](const YAML::Node& c, const char* what) {
    const YAML::Node q = c["resources"] && c["resources"]["requests"] ? c["resources"]["requests"][what] : YAML::Node();
    return q && q.IsScalar() ? quantity(q.Scalar()).value_or(0) : 0.0;
  };
  double cpu = 0, memory = 0, init_cpu = 0, init_memory = 0;
  if (pod["containers"] && pod["containers"].IsSequence()) {
    for (const auto& c : pod["containers"]) {
      cpu += of(c, "cpu");
      memory += of(c, "memory");
    }
  }
  if (pod["initContainers"] && pod["initContainers"].IsSequence()) {
    for (const auto& c : pod["initContainers"]) {
      init_cpu = std::max(init_cpu, of(c, "cpu"));
      init_memory = std::max(init_memory, of(c, "memory"));
    }
  }
  return {std::max(cpu, init_cpu), std::max(memory, init_memory)};
}

// The rendered platform's requests: its Deployments and StatefulSets times their replicas, and the
// IstioOperator's istiod and ingress gateway (the requests its components' k8s.resources name).
void sum_requests(PlatformRender& r)
{
  constexpr double gib = 1024.0 * 1024.0 * 1024.0;
  for (const auto& doc : YAML::LoadAll(r.pipelines)) {
    const std::string kind = doc["kind"] ? doc["kind"].as<std::string>() : "";
    if ((kind != "Deployment" && kind != "StatefulSet") || !doc["spec"] || !doc["spec"]["template"]) {
      continue;
    }
    const double replicas = doc["spec"]["replicas"] ? doc["spec"]["replicas"].as<double>() : 1.0;
    const auto [cpu, memory] = pod_requests(doc["spec"]["template"]["spec"]);
    r.requested_cpus += replicas * cpu;
    r.requested_memory_gib += replicas * memory / gib;
  }
  const YAML::Node op = YAML::Load(r.istio_config);
  const YAML::Node components = op["spec"] ? op["spec"]["components"] : YAML::Node();
  auto add = [&](const YAML::Node& k8s) {
    if (!k8s || !k8s["resources"]) {
      return;
    }
    YAML::Node pod;
    YAML::Node c;
    c["resources"] = k8s["resources"];
    pod["containers"].push_back(c);
    const double replicas = k8s["replicaCount"] ? k8s["replicaCount"].as<double>() : 1.0;
    const auto [cpu, memory] = pod_requests(pod);
    r.requested_cpus += replicas * cpu;
    r.requested_memory_gib += replicas * memory / gib;
  };
  if (components && components["pilot"]) {
    add(components["pilot"]["k8s"]);
  }
  if (components && components["ingressGateways"]) {
    for (const auto& g : components["ingressGateways"]) {
      add(g["k8s"]);
    }
  }
}

// The namespace upstream's platform-agnostic environment puts Pipelines in ("kubeflow"): the one its
// addresses name before mlplat's namespace replaces it.
std::string upstream_namespace(const sfs::path& upstream_top)
{
  const sfs::path file = upstream_top / "manifests" / "kustomize" / "env" / "platform-agnostic" / "kustomization.yaml";
  try {
    const YAML::Node k = YAML::LoadFile(file.string());
    if (k["namespace"] && k["namespace"].IsScalar()) {
      return k["namespace"].Scalar();
    }
  } catch (const YAML::Exception&) {
  }
  return "kubeflow";
}

// Every image reference of the rendered platform (image fields, env values, arguments, ConfigMap
// data) to its mirror, every service address to the configured namespace; then the checks: a
// reference still naming a mirrored registry, an address still in upstream's namespace, or (with
// mirrors) an image the row does not list, so that neither its bundle nor a mirror stocked from it
// has it, is an error naming each.
Status rewrite_platform(const compat::Row& row, const std::map<std::string, std::string>& mirrors, const std::string& from_namespace,
                        PlatformRender& r)
{
  RewriteRules rules;
  rules.mirrors = mirrors;
  rules.registries = known_registries();
  std::set<std::string> listed;
  for (const auto& image : row.images) {
    if (const auto ref = parse_image(image)) {
      rules.registries.insert(ref->registry);
      listed.insert(ref->full());
    }
  }
  for (const auto& [registry, url] : mirrors) {
    rules.registries.insert(registry);
  }
  rules.from_namespace = from_namespace;
  rules.to_namespace = r.name_space;
  std::vector<FoundImage> found;
  std::vector<std::string> leftovers;
  for (auto* part : {&r.cluster_scoped, &r.pipelines, &r.gateway}) {
    TRY_ASSIGN(auto rewritten, rewrite_documents(*part, "the rendered platform", rules));
    *part = std::move(rewritten.yaml);
    found.insert(found.end(), rewritten.images.begin(), rewritten.images.end());
    leftovers.insert(leftovers.end(), rewritten.leftovers.begin(), rewritten.leftovers.end());
  }
  std::vector<std::string> unlisted;
  std::set<std::string> seen;
  for (const auto& f : found) {
    if (seen.insert(f.rendered).second) {
      r.images.push_back(f.rendered);
    }
    if (listed.count(f.original) == 0) {
      unlisted.push_back(fmt::format("{} ({})", f.original, f.where));
    }
  }
  if (const auto missed = unmirrored(found, mirrors); !missed.empty()) {
    return fail(ErrorCode::config_invalid,
                fmt::format("these image references would still be pulled from their registry, not the mirror: {}", text::join(missed, ", ")),
                "report it: mlplat rewrites every reference of a mirrored registry");
  }
  if (!leftovers.empty()) {
    return fail(ErrorCode::config_invalid,
                fmt::format("these addresses still name upstream's namespace {}, not {}: {}", from_namespace, r.name_space, text::join(leftovers, ", ")),
                "report it, or install into the namespace upstream uses (spec.pipelines.namespace: " + from_namespace + ")");
  }
  if (!unlisted.empty()) {
    if (!mirrors.empty()) {
      return fail(ErrorCode::config_invalid,
                  fmt::format("these images are not in row {}'s image list, so no bundle or mirror stocked from it has them: {}", row.id,
                              text::join(unlisted, ", ")),
                  "add them to the row's images in manifests/matrix.yaml (or the --matrix file)");
    }
    for (const auto& u : unlisted) {
      log::warn("image {} is not in row {}'s image list (manifests/matrix.yaml): an air-gapped site's mirror may not have it", u, row.id);
    }
  }
  return {};
}

Result<std::string> istio_config(const config::Cluster& cluster, const config::Effective& effective, const Inputs& in,
                                 size_t ingress_nodes)
{
  const char* file = effective.expose == config::Expose::hostnetwork    ? "manifests/istio/hostnetwork.yaml"
                     : effective.expose == config::Expose::loadbalancer ? "manifests/istio/loadbalancer.yaml"
                                                                        : "manifests/istio/nodeport.yaml";
  TRY_ASSIGN(const std::string tmpl, assets::read(file));
  const compat::Component* istio = in.row->component("istio");
  if (istio == nullptr) {
    return fail(ErrorCode::failed, fmt::format("row {} has no istio component", in.row->id), "add it to manifests/matrix.yaml");
  }
  std::string pilot = "docker.io/istio/pilot";
  for (const auto& image : in.row->images) {
    if (const auto ref = parse_image(image); ref && ref->path == "istio/pilot") {
      pilot = image.substr(0, image.rfind(':'));
    }
  }
  const std::string hub = mirrored_image(pilot, in.registry_mirrors);
  YAML::Node annotations(YAML::NodeType::Map);
  if (!cluster.ingress.load_balancer_ip.empty()) {
    annotations["metallb.io/loadBalancerIPs"] = yamlio::string_value(cluster.ingress.load_balancer_ip);
  }
  return yamlio::fill(tmpl, file,
                      {{"@HUB@", hub.substr(0, hub.rfind('/'))},
                       {"@TAG@", istio->version.str()},
                       {"@HTTP_NODE_PORT@", long(cluster.ingress.http_node_port)},
                       {"@HTTPS_NODE_PORT@", long(cluster.ingress.https_node_port)},
                       {"@REPLICAS@", long(ingress_nodes)},
                       {"@SERVICE_ANNOTATIONS@", annotations}});
}

} // namespace

std::vector<size_t> ingress_hosts(const config::Cluster& cluster, const config::Effective& effective, size_t first_cp)
{
  std::vector<size_t> out;
  if (effective.expose == config::Expose::hostnetwork) {
    for (const auto& name : cluster.ingress.nodes) {
      for (size_t i = 0; i < cluster.hosts.size(); ++i) {
        if (cluster.hosts[i].name == name) {
          out.push_back(i);
        }
      }
    }
    if (out.empty()) {
      for (size_t i = 0; i < cluster.hosts.size(); ++i) {
        if (cluster.hosts[i].role == config::Role::worker) {
          out.push_back(i);
        }
      }
    }
    if (out.empty()) {
      out.push_back(first_cp);
    }
    return out;
  }
  if (effective.expose == config::Expose::nodeport) {
    // NodePort answers on every node; the first control plane comes first (the smoke test's).
    out.push_back(first_cp);
    for (size_t i = 0; i < cluster.hosts.size(); ++i) {
      if (i != first_cp) {
        out.push_back(i);
      }
    }
  }
  return out;
}

Result<std::string> row_image(const compat::Row& row, const std::string& repository)
{
  for (const auto& image : row.images) {
    const auto colon = image.rfind(':');
    const std::string repo = image.substr(0, colon);
    if (repo.size() >= repository.size() && repo.compare(repo.size() - repository.size(), repository.size(), repository) == 0) {
      return image;
    }
  }
  return fail(ErrorCode::failed, fmt::format("row {} lists no image of {}", row.id, repository),
              "add it to the row's images in manifests/matrix.yaml");
}

std::string mirrored_image(const std::string& image, const std::map<std::string, std::string>& mirrors)
{
  const auto ref = parse_image(image);
  if (!ref) {
    return image;
  }
  const auto it = mirrors.find(ref->registry);
  if (it == mirrors.end()) {
    return image;
  }
  return mirror_host(it->second) + "/" + ref->path + ref->suffix;
}

PlatformRender ingress_endpoint(const config::Cluster& cluster, const config::Effective& effective, size_t first_control_plane)
{
  PlatformRender r;
  r.name_space = cluster.pipelines.name_space;
  r.domain = cluster.ingress.domain.empty() ? fmt::format("pipelines.{}.internal", cluster.name) : cluster.ingress.domain;
  r.hosts = {r.domain};
  for (const auto& n : cluster.ingress.alt_names) {
    (net::parse_ip(n) ? r.san_ips : r.hosts).push_back(n);
  }
  r.san_dns = r.hosts;
  const auto ingress = ingress_hosts(cluster, effective, first_control_plane);
  switch (effective.expose) {
    case config::Expose::nodeport:
      r.ingress_address = cluster.hosts[first_control_plane].address;
      r.https_port = cluster.ingress.https_node_port;
      r.http_port = cluster.ingress.http_node_port;
      break;
    case config::Expose::hostnetwork:
      r.ingress_address = cluster.hosts[ingress.front()].address;
      break;
    case config::Expose::loadbalancer:
      r.ingress_address = cluster.ingress.load_balancer_ip;
      if (!r.ingress_address.empty() && std::find(r.san_ips.begin(), r.san_ips.end(), r.ingress_address) == r.san_ips.end()) {
        r.san_ips.push_back(r.ingress_address);
      }
      break;
  }
  // Clients that connect by address send no server name: with an address in the certificate, the
  // gateway must answer any name.
  if (!r.san_ips.empty()) {
    r.hosts.push_back("*");
  }
  return r;
}

Result<PlatformRender> render_platform(const config::Cluster& cluster, const config::Effective& effective, const Inputs& in,
                                       const sfs::path& work_dir)
{
  PlatformRender r = ingress_endpoint(cluster, effective, in.first_control_plane);
  const auto ingress = ingress_hosts(cluster, effective, in.first_control_plane);

  // The work directory: the upstream source with its remote bases vendored, mlplat's overlays.
  std::error_code ec;
  sfs::remove_all(work_dir, ec);
  sfs::create_directories(work_dir, ec);
  if (ec) {
    return fail(ErrorCode::io, fmt::format("cannot create {}: {}", work_dir.string(), ec.message()));
  }
  sfs::permissions(work_dir, sfs::perms::owner_all, ec);
  TRY(bundle::extract_artifact(in.bundle_dir, *in.bom, "pipelines-source", work_dir / "upstream"));
  std::string top;
  for (const auto& e : sfs::directory_iterator(work_dir / "upstream")) {
    if (e.is_directory()) {
      top = e.path().filename().string();
    }
  }
  if (top.empty() || !sfs::is_directory(work_dir / "upstream" / top / "manifests" / "kustomize")) {
    return fail(ErrorCode::failed, "the bundle's pipelines-source has no manifests/kustomize directory",
                "recreate the bundle with this mlplat (mlplat bundle create)");
  }
  TRY(bundle::vendor_remote_bases(work_dir / "upstream", in.bundle_dir, *in.bom, work_dir / "vendor"));

  TRY_ASSIGN(const auto tool, local_kubectl(in, work_dir));
  r.kustomize_version = tool.second.str();
  compat::LiveVersions live;
  live.kustomize = tool.second;
  for (const auto& f : compat::check_live(*in.row, compat::Stage::pipelines, live).findings) {
    if (f.rule == "MAT-011" && f.level == compat::Level::error) {
      return fail(ErrorCode::preflight_failed, fmt::format("[MAT-011] {} ({})", f.reason, tool.first), f.supported);
    }
  }

  const std::string upstream = "../../upstream/" + top + "/manifests/kustomize";
  const yamlio::FillValues values{
    {"@UPSTREAM@", upstream},
    {"@NAMESPACE@", r.name_space},
    {"@STORAGE_CLASS@", std::string("openebs-hostpath")},
    {"@CPU@", effective.pipelines_cpu},
    {"@MEMORY@", effective.pipelines_memory},
    {"@HOSTS@", yamlio::string_list(r.hosts)},
    {"@SECRET@", std::string(k_tls_secret)},
    {"@GATEWAY_NAMESPACE@", std::string(k_gateway_namespace)}};
  for (const auto& [overlay, files] : std::vector<std::pair<std::string, std::vector<std::string>>>{
         {"cluster-scoped", {"kustomization.yaml"}},
         {"pipelines", {"kustomization.yaml", "kfp-launcher.yaml"}},
         {"gateway", {"kustomization.yaml", "gateway.yaml", "virtualservice.yaml"}}}) {
    sfs::create_directories(work_dir / "mlplat" / overlay, ec);
    for (const auto& f : files) {
      const std::string name = fmt::format("manifests/platform/{}/{}", overlay, f);
      TRY_ASSIGN(const std::string tmpl, assets::read(name));
      TRY_ASSIGN(const std::string filled, yamlio::fill(tmpl, name, values));
      TRY(fs::write_file_atomic(work_dir / "mlplat" / overlay / f, filled, 0600));
    }
  }
  TRY_ASSIGN(r.cluster_scoped, kustomize_build(tool.first, work_dir / "mlplat" / "cluster-scoped"));
  TRY_ASSIGN(r.pipelines, kustomize_build(tool.first, work_dir / "mlplat" / "pipelines"));
  TRY_ASSIGN(r.gateway, kustomize_build(tool.first, work_dir / "mlplat" / "gateway"));
  TRY(scan(r.cluster_scoped, &r.crds, nullptr));
  TRY(scan(r.pipelines, nullptr, &r.deployments));
  TRY(rewrite_platform(*in.row, in.registry_mirrors, upstream_namespace(work_dir / "upstream" / top), r));
  TRY_ASSIGN(r.istio_config, istio_config(cluster, effective, in, ingress.size()));
  try {
    sum_requests(r);
  } catch (const YAML::Exception& e) {
    return fail(ErrorCode::failed, fmt::format("the rendered platform's resource requests cannot be read: {}", e.what()));
  }
  return r;
}

std::optional<double> quantity(const std::string& text)
{
  static const std::vector<std::pair<std::string, double>> suffixes{
    {"Ki", 1024.0}, {"Mi", 1048576.0}, {"Gi", 1073741824.0}, {"Ti", 1099511627776.0},
    {"k", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12}, {"m", 1e-3}};
  if (text.empty()) {
    return std::nullopt;
  }
  double factor = 1.0;
  std::string number = text;
  for (const auto& [suffix, f] : suffixes) {
    if (number.size() > suffix.size() && number.compare(number.size() - suffix.size(), suffix.size(), suffix) == 0) {
      factor = f;
      number.resize(number.size() - suffix.size());
      break;
    }
  }
  if (number.empty() || !std::all_of(number.begin(), number.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0 || c == '.'; })) {
    return std::nullopt;
  }
  try {
    return std::stod(number) * factor;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::string ui_url(const PlatformRender& render)
{
  return render.https_port == 443 ? fmt::format("https://{}/", render.domain) : fmt::format("https://{}:{}/", render.domain, render.https_port);
}

fetch::ProbeRequest gateway_request(const PlatformRender& render, const std::string& address, const sfs::path& ca_file)
{
  fetch::ProbeRequest q;
  q.url = ui_url(render);
  q.ca_file = ca_file.string();
  q.resolve = {fmt::format("{}:{}:{}", render.domain, render.https_port, address), fmt::format("{}:{}:{}", render.domain, render.http_port, address)};
  return q;
}

} // namespace mlplat::render
