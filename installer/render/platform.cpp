#include "render/platform.hpp"

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
#include <set>

namespace mlplat::render {

namespace sfs = std::filesystem;

namespace {

// registry and path of an image reference without its tag ("docker.io", "library/mysql").
std::pair<std::string, std::string> split_image(const std::string& image)
{
  std::string name = image;
  if (const auto at = name.find('@'); at != std::string::npos) {
    name = name.substr(0, at);
  }
  const auto slash = name.find('/');
  const auto colon = name.rfind(':');
  if (colon != std::string::npos && (slash == std::string::npos || colon > name.rfind('/'))) {
    name = name.substr(0, colon);
  }
  const std::string first = slash == std::string::npos ? std::string() : name.substr(0, slash);
  if (!first.empty() && (first.find('.') != std::string::npos || first.find(':') != std::string::npos || first == "localhost")) {
    return {first, name.substr(slash + 1)};
  }
  return {"docker.io", slash == std::string::npos ? "library/" + name : name};
}

std::string mirror_host(const std::string& url)
{
  std::string host = url;
  if (const auto scheme = host.find("://"); scheme != std::string::npos) {
    host = host.substr(scheme + 3);
  }
  while (!host.empty() && host.back() == '/') {
    host.pop_back();
  }
  return host;
}

// The images: block of the Pipelines overlay: every image of the row whose registry has a mirror,
// under each name a manifest may spell it with.
// kustomize's `images:` list: each mirrored image of the row under every name the upstream
// manifests may write it with, renamed to the mirror.
YAML::Node images_block(const compat::Row& row, const std::map<std::string, std::string>& mirrors)
{
  YAML::Node out(YAML::NodeType::Sequence);
  for (const auto& image : row.images) {
    const auto [registry, path] = split_image(image);
    const auto it = mirrors.find(registry);
    if (it == mirrors.end()) {
      continue;
    }
    const std::string new_name = mirror_host(it->second) + "/" + path;
    std::vector<std::string> names{registry + "/" + path};
    if (registry == "docker.io") {
      names.push_back(path);
      if (path.rfind("library/", 0) == 0) {
        names.push_back(path.substr(8));
      }
    }
    for (const auto& n : names) {
      YAML::Node entry;
      entry["name"] = yamlio::string_value(n);
      entry["newName"] = yamlio::string_value(new_name);
      out.push_back(entry);
    }
  }
  return out;
}

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

// Every Deployment name, CRD name and container image of rendered YAML.
Status scan(const std::string& yaml, std::vector<std::string>* crds, std::vector<std::string>* deployments, std::vector<std::string>* images)
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
      const auto pod = doc["spec"] && doc["spec"]["template"] ? doc["spec"]["template"]["spec"] : YAML::Node();
      if (images && pod && pod.IsMap()) {
        for (const char* list : {"initContainers", "containers"}) {
          if (pod[list] && pod[list].IsSequence()) {
            for (const auto& c : pod[list]) {
              if (c["image"]) {
                images->push_back(c["image"].as<std::string>());
              }
            }
          }
        }
      }
    }
  } catch (const YAML::Exception& e) {
    return fail(ErrorCode::failed, fmt::format("the rendered overlay is not valid YAML: {}", e.what()));
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
    if (split_image(image).second == "istio/pilot") {
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
  const auto [registry, path] = split_image(image);
  const auto it = mirrors.find(registry);
  if (it == mirrors.end()) {
    return image;
  }
  std::string suffix;  // ":tag" or "@digest"
  if (const auto at = image.find('@'); at != std::string::npos) {
    suffix = image.substr(at);
  } else if (const auto colon = image.rfind(':'); colon != std::string::npos && (image.rfind('/') == std::string::npos || colon > image.rfind('/'))) {
    suffix = image.substr(colon);
  }
  return mirror_host(it->second) + "/" + path + suffix;
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
    {"@IMAGES@", images_block(*in.row, in.registry_mirrors)},
    {"@HOSTS@", yamlio::string_list(r.hosts)},
    {"@SECRET@", std::string(k_tls_secret)},
    {"@GATEWAY_NAMESPACE@", std::string(k_gateway_namespace)}};
  for (const auto& [overlay, files] : std::vector<std::pair<std::string, std::vector<std::string>>>{
         {"cluster-scoped", {"kustomization.yaml"}},
         {"pipelines", {"kustomization.yaml"}},
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
  TRY(scan(r.cluster_scoped, &r.crds, nullptr, nullptr));
  TRY(scan(r.pipelines, nullptr, &r.deployments, &r.images));

  // With mirrors, no image may still name a mirrored registry: it would not be pulled on an
  // air-gapped site. Images the row does not list are not in the bundle's bill of materials.
  std::vector<std::string> unrewritten;
  std::set<std::pair<std::string, std::string>> listed;
  for (const auto& image : in.row->images) {
    listed.insert(split_image(image));
  }
  for (const auto& image : r.images) {
    if (mirrored_image(image, in.registry_mirrors) != image) {
      unrewritten.push_back(image);
    }
    if (in.registry_mirrors.empty() && listed.count(split_image(image)) == 0) {
      log::warn("Kubeflow Pipelines image {} is not in row {}'s image list (manifests/matrix.yaml): an air-gapped site's mirror "
                "may not have it", image, in.row->id);
    }
  }
  if (!unrewritten.empty()) {
    return fail(ErrorCode::config_invalid,
                fmt::format("these Kubeflow Pipelines images would still be pulled from their registry, not the mirror: {}",
                            text::join(unrewritten, ", ")),
                "add them to the row's images in manifests/matrix.yaml (mlplat rewrites the images the row lists)");
  }
  TRY_ASSIGN(r.istio_config, istio_config(cluster, effective, in, ingress.size()));
  return r;
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
