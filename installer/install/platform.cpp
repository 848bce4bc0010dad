#include "install/platform.hpp"

#include "assets/assets.hpp"
#include "bundle/kustomize.hpp"
#include "fetch/probe.hpp"
#include "install/addons.hpp"
#include "install/steps.hpp"
#include "util/fs.hpp"
#include "util/log.hpp"
#include "util/net.hpp"
#include "util/process.hpp"
#include "util/sha256.hpp"
#include "util/text.hpp"

#include <fmt/core.h>
#include <nlohmann/json.hpp>
#include <openssl/evp.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <set>
#include <thread>

namespace mlplat::install {

namespace sfs = std::filesystem;

namespace {

constexpr const char* k_platform_dir = "/etc/kubernetes/mlplat/platform";

std::string yaml_flow_list(const std::vector<std::string>& items)
{
  std::vector<std::string> quoted;
  for (const auto& i : items) {
    quoted.push_back("\"" + i + "\"");
  }
  return "[" + text::join(quoted, ", ") + "]";
}

std::string base64(const std::string& data)
{
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), reinterpret_cast<const unsigned char*>(data.data()),
                                static_cast<int>(data.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

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
std::string images_block(const compat::Row& row, const std::map<std::string, std::string>& mirrors)
{
  std::string out;
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
      out += fmt::format("\n  - name: {}\n    newName: {}", n, new_name);
    }
  }
  return out.empty() ? "[]" : out;
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
Result<std::pair<std::string, compat::Version>> local_kubectl(const RuntimeInputs& in, const sfs::path& work_dir)
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

Result<std::string> istio_config(const config::Cluster& cluster, const config::Effective& effective, const RuntimeInputs& in,
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
  const std::string annotations = cluster.ingress.load_balancer_ip.empty()
                                    ? "{}"
                                    : fmt::format("{{metallb.io/loadBalancerIPs: \"{}\"}}", cluster.ingress.load_balancer_ip);
  return text::fill(tmpl, {{"@HUB@", hub.substr(0, hub.rfind('/'))},
                     {"@TAG@", istio->version.str()},
                     {"@HTTP_NODE_PORT@", std::to_string(cluster.ingress.http_node_port)},
                     {"@HTTPS_NODE_PORT@", std::to_string(cluster.ingress.https_node_port)},
                     {"@REPLICAS@", std::to_string(ingress_nodes)},
                     {"@SERVICE_ANNOTATIONS@", annotations}});
}

std::string deployments_condition(const std::string& ns, const std::vector<std::string>& names)
{
  std::vector<std::string> parts;
  for (const auto& d : names) {
    parts.push_back(fmt::format("{} -n {} rollout status deployment/{} --timeout=5s >/dev/null 2>&1", kubectl(), ns, d));
  }
  return parts.empty() ? "true" : text::join(parts, " && ");
}

// A wait for deployments whose error, at the deadline, lists the ones still not available.
Step deployments_step(transport::Fleet& fleet, std::string name, const std::string& ns, const std::vector<std::string>& names,
                      std::chrono::seconds deadline)
{
  std::string list;
  for (const auto& d : names) {
    list += fmt::format("{} -n {} rollout status deployment/{} --timeout=1s >/dev/null 2>&1 || printf '%s ' {}\n", kubectl(), ns, d, d);
  }
  return wait_step(fleet, std::move(name),
                   fmt::format("deployment{} {} in namespace {} to be available", names.size() == 1 ? "" : "s", text::join(names, ", "), ns),
                   deployments_condition(ns, names), deadline,
                   {"still not available", list,
                    fmt::format("look at their pods: kubectl -n {} get pods; kubectl -n {} describe deployment <name>", ns, ns)});
}

Result<IngressCertificate> from_files(const sfs::path& cert, const sfs::path& key, const sfs::path& ca)
{
  IngressCertificate c;
  TRY_ASSIGN(c.cert_pem, fs::read_file(cert));
  TRY_ASSIGN(c.key_pem, fs::read_file(key));
  c.ca_file = ca;
  TRY_ASSIGN(const auto info, tls::inspect(c.cert_pem));
  c.serial_hex = info.serial_hex;
  return c;
}

} // namespace

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

Result<PlatformRender> render_platform(const config::Cluster& cluster, const config::Effective& effective, const RuntimeInputs& in,
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
  const std::vector<std::pair<std::string, std::string>> values{
    {"@UPSTREAM@", upstream},
    {"@NAMESPACE@", r.name_space},
    {"@STORAGE_CLASS@", "openebs-hostpath"},
    {"@CPU@", effective.pipelines_cpu},
    {"@MEMORY@", effective.pipelines_memory},
    {"@IMAGES@", images_block(*in.row, in.registry_mirrors)},
    {"@HOSTS@", yaml_flow_list(r.hosts)},
    {"@SECRET@", k_tls_secret},
    {"@GATEWAY_NAMESPACE@", k_gateway_namespace}};
  for (const auto& [overlay, files] : std::vector<std::pair<std::string, std::vector<std::string>>>{
         {"cluster-scoped", {"kustomization.yaml"}},
         {"pipelines", {"kustomization.yaml"}},
         {"gateway", {"kustomization.yaml", "gateway.yaml", "virtualservice.yaml"}}}) {
    sfs::create_directories(work_dir / "mlplat" / overlay, ec);
    for (const auto& f : files) {
      TRY_ASSIGN(const std::string tmpl, assets::read(fmt::format("manifests/platform/{}/{}", overlay, f)));
      TRY(fs::write_file_atomic(work_dir / "mlplat" / overlay / f, text::fill(tmpl, values), 0600));
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

Result<IngressCertificate> ingress_certificate(const config::Cluster& cluster, const PlatformRender& render, const sfs::path& state_dir,
                                               bool write, bool reissue)
{
  const auto& t = cluster.ingress.tls;
  if (t.mode == config::TlsMode::acme) {
    Error e;
    e.code = ErrorCode::config_invalid;
    e.message = "spec.ingress.tls.mode 'acme' (cert-manager with an issuer you name) is accepted but not built in this version";
    e.where = cluster.where("spec.ingress.tls.mode");
    e.fix = "use 'self-signed' (mlplat's own CA issues the certificate) or 'provided' (certFile, keyFile, caFile from your CA)";
    return tl::unexpected(e);
  }
  if (t.mode == config::TlsMode::provided) {
    auto cert = fs::read_file(t.cert_file);
    auto key = fs::read_file(t.key_file);
    std::string ca;
    if (!t.ca_file.empty()) {
      TRY_ASSIGN(ca, fs::read_file(t.ca_file));
    }
    if (!cert || !key) {
      return tl::unexpected(!cert ? cert.error() : key.error());
    }
    if (auto valid = tls::validate_provided(*cert, *key, "", ca, render.domain); !valid) {
      Error e = valid.error();
      e.code = ErrorCode::config_invalid;
      e.message = fmt::format("the provided ingress certificate {} is refused: {}", t.cert_file, e.message);
      e.where = cluster.where("spec.ingress.tls.certFile");
      if (e.fix.empty()) {
        e.fix = "give a certificate, key and CA that pass, or use mode 'self-signed'";
      }
      return tl::unexpected(e);
    }
    IngressCertificate c;
    c.cert_pem = *cert;
    c.key_pem = *key;
    c.ca_file = t.ca_file;
    TRY_ASSIGN(const auto info, tls::inspect(*cert));
    c.serial_hex = info.serial_hex;
    return c;
  }

  // self-signed: mlplat's ingress CA, made once, and a server certificate from it.
  const sfs::path dir = state_dir / "tls";
  const sfs::path ca_crt = dir / "ca.crt", ca_key = dir / "ca.key", crt = dir / "server.crt", key = dir / "server.key";
  tls::KeyPair ca;
  if (sfs::exists(ca_crt) && sfs::exists(ca_key)) {
    TRY_ASSIGN(ca.cert_pem, fs::read_file(ca_crt));
    TRY_ASSIGN(ca.key_pem, fs::read_file(ca_key));
  } else {
    TRY_ASSIGN(ca, tls::issue_ca(fmt::format("mlplat ingress CA ({})", cluster.name)));
    if (write) {
      std::error_code ec;
      sfs::create_directories(dir, ec);
      sfs::permissions(dir, sfs::perms::owner_all, ec);
      TRY(fs::write_file_atomic(ca_key, ca.key_pem, 0600));
      TRY(fs::write_file_atomic(ca_crt, ca.cert_pem, 0644));
      log::info("issued the ingress CA {} (its key stays in {}, 0600)", ca_crt.string(), ca_key.string());
    }
  }
  // The current server certificate is kept while it covers every name, comes from this CA and has
  // more than 30 days left.
  if (!reissue && sfs::exists(crt) && sfs::exists(key)) {
    TRY_ASSIGN(auto current, from_files(crt, key, ca_crt));
    auto info = tls::inspect(current.cert_pem);
    bool keep = info && info->not_after - std::chrono::system_clock::now() > std::chrono::hours(24 * 30) &&
                tls::validate_provided(current.cert_pem, current.key_pem, "", ca.cert_pem, render.domain).has_value();
    for (const auto& n : render.san_dns) {
      keep = keep && std::find(info->dns_names.begin(), info->dns_names.end(), n) != info->dns_names.end();
    }
    for (const auto& n : render.san_ips) {
      keep = keep && std::find(info->ips.begin(), info->ips.end(), n) != info->ips.end();
    }
    if (keep) {
      return current;
    }
    log::info("the ingress certificate {} is reissued (a name is missing, it is not from the CA, or it expires within 30 days)", crt.string());
  }
  TRY_ASSIGN(const auto server, tls::issue_server(ca, render.san_dns, render.san_ips));
  IngressCertificate c;
  c.cert_pem = server.cert_pem;
  c.key_pem = server.key_pem;
  c.ca_file = ca_crt;
  TRY_ASSIGN(const auto info, tls::inspect(server.cert_pem));
  c.serial_hex = info.serial_hex;
  if (write) {
    TRY(fs::write_file_atomic(key, server.key_pem, 0600));
    TRY(fs::write_file_atomic(crt, server.cert_pem, 0644));
    log::info("issued the ingress certificate {} (serial {}, names {}{}{})", crt.string(), c.serial_hex, text::join(render.san_dns, ", "),
              render.san_ips.empty() ? "" : ", ", text::join(render.san_ips, ", "));
  }
  return c;
}

Step gate_step(transport::Fleet& fleet, const compat::Row& row, compat::Stage stage)
{
  const std::string k = kubectl();
  const std::string script = fmt::format("{0} version -o json 2>/dev/null || true\necho '---mlplat---'\n{0} get nodes -o json 2>/dev/null || true\n", k);
  // The live versions, or nullopt when the API server does not answer (a plan before init).
  auto read = [&fleet, script](size_t h) -> Result<std::optional<compat::LiveVersions>> {
    TRY_ASSIGN(const auto r, fleet.exec(h, read_only("read the API server's, kubelets' and kubectl's versions", script)));
    const auto cut = r.out.find("---mlplat---");
    compat::LiveVersions live;
    try {
      const auto version = nlohmann::json::parse(r.out.substr(0, cut));
      if (!version.contains("serverVersion")) {
        return std::optional<compat::LiveVersions>{};
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
      const auto nodes = nlohmann::json::parse(r.out.substr(cut + 12));
      for (const auto& n : nodes.value("items", nlohmann::json::array())) {
        if (auto v = compat::Version::parse(n["status"]["nodeInfo"].value("kubeletVersion", "")); v) {
          live.kubelets.emplace_back(n["metadata"].value("name", ""), *v);
        }
      }
    } catch (const nlohmann::json::exception&) {
      return std::optional<compat::LiveVersions>{};
    }
    return std::optional<compat::LiveVersions>{live};
  };
  auto gate = [&row, stage](const compat::LiveVersions& live) -> Status {
    auto result = compat::check_live(row, stage, live);
    if (stage == compat::Stage::pipelines) {
      // kustomize runs on the operator machine (render_platform checked it); the host's is unused.
      result.findings.erase(std::remove_if(result.findings.begin(), result.findings.end(), [](const auto& f) { return f.rule == "MAT-011"; }),
                            result.findings.end());
    }
    return result.to_status();
  };
  Step s;
  s.name = "versions";
  s.digest = row.id + "/" + compat::to_string(stage);
  s.check = [read, gate](size_t h) -> Result<bool> {
    TRY_ASSIGN(const auto live, read(h));
    if (!live) {
      return false;  // no cluster to check yet: only a plan gets here
    }
    TRY(gate(*live));
    return true;
  };
  s.apply = [&fleet, read, gate, stage, script](size_t h) -> Status {
    if (fleet.dry_run()) {
      TRY(fleet.run(h, mutating(fmt::format("the matrix gate before {}, once the API server answers", compat::to_string(stage)), script)));
      return {};
    }
    TRY_ASSIGN(const auto live, read(h));
    if (!live) {
      return fail(ErrorCode::preflight_failed, "the API server's version could not be read for the matrix gate",
                  "check that the control plane is up: kubectl --kubeconfig /etc/kubernetes/admin.conf version");
    }
    return gate(*live);
  };
  return s;
}

Phase pipelines_phase(transport::Fleet& fleet, const PlatformRender& render, const RuntimeInputs& in)
{
  Phase p;
  p.name = "pipelines";
  p.summary = fmt::format("Kubeflow Pipelines {} in namespace {}: {} CRDs, then {} deployments available",
                          in.row->component("pipelines") ? in.row->component("pipelines")->version.str() : "", render.name_space,
                          render.crds.size(), render.deployments.size());
  p.hosts = {in.first_control_plane};
  p.deadline = std::chrono::seconds(1200);
  std::vector<Step> steps;
  steps.push_back(gate_step(fleet, *in.row, compat::Stage::pipelines));
  steps.push_back(apply_step(fleet, "cluster-scoped", std::string(k_platform_dir) + "/pipelines-cluster-scoped.yaml", render.cluster_scoped));
  if (!render.crds.empty()) {
    std::string refs;
    for (const auto& c : render.crds) {
      refs += " crd/" + c;
    }
    steps.push_back(wait_step(fleet, "crds-established", fmt::format("the CRDs to be established ({})", text::join(render.crds, ", ")),
                              fmt::format("{} wait --for=condition=Established --timeout=5s{} >/dev/null 2>&1", kubectl(), refs),
                              std::chrono::seconds(120)));
  }
  steps.push_back(apply_step(fleet, "resources", std::string(k_platform_dir) + "/pipelines.yaml", render.pipelines));
  steps.push_back(deployments_step(fleet, "deployments-available", render.name_space, render.deployments, std::chrono::seconds(900)));
  p.steps = [steps](size_t) { return steps; };
  return p;
}

Result<Phase> istio_phase(transport::Fleet& fleet, const config::Cluster& cluster, const config::Effective& effective,
                          const PlatformRender& render, const RuntimeInputs& in)
{
  TRY_ASSIGN(const std::string archive, bundle_file_on_host(in, "istio"));
  const compat::Component* istio = in.row->component("istio");
  const std::string version = istio ? istio->version.str() : "";
  const std::string config_path = std::string(k_platform_dir) + "/istio.yaml";
  const std::string k = kubectl();
  const std::string istioctl = fmt::format("istioctl --kubeconfig {}", k_admin_kubeconfig);
  Phase p;
  p.name = "istio";
  p.summary = fmt::format("Istio {} (minimal control plane and the ingress gateway, {})", version,
                          effective.expose == config::Expose::nodeport      ? fmt::format("NodePort {} / {}", cluster.ingress.https_node_port, cluster.ingress.http_node_port)
                          : effective.expose == config::Expose::hostnetwork ? "hostNetwork on the ingress nodes"
                                                                            : "LoadBalancer");
  p.hosts = {in.first_control_plane};
  p.deadline = std::chrono::seconds(900);
  std::vector<Step> steps;
  steps.push_back(gate_step(fleet, *in.row, compat::Stage::ingress));
  steps.push_back(script_step(fleet, "istioctl", archive, fmt::format("check that istioctl {} is installed", version),
                              fmt::format("istioctl version --remote=false 2>/dev/null | grep -qw {} || exit 1\nexit 0\n", version),
                              "install istioctl from the bundle",
                              fmt::format("d=$(mktemp -d)\ntrap 'rm -rf \"$d\"' EXIT\ntar -C \"$d\" -xzf {}\n"
                                          "install -m 0755 \"$d\"/istio-*/bin/istioctl /usr/local/bin/istioctl\n",
                                          text::shell_quote(archive))));
  if (effective.expose == config::Expose::hostnetwork) {
    std::vector<std::string> names;
    for (const size_t h : ingress_hosts(cluster, effective, in.first_control_plane)) {
      names.push_back(cluster.hosts[h].name);
    }
    std::string check, apply;
    for (const auto& n : names) {
      check += fmt::format("[ \"$({} get node {} -o jsonpath='{{.metadata.labels.mlplat\\.dev/ingress}}')\" = true ] || exit 1\n", k, n);
      apply += fmt::format("{} label node {} mlplat.dev/ingress=true --overwrite\n", k, n);
    }
    steps.push_back(script_step(fleet, "ingress-nodes", text::join(names, ","), "check that the ingress nodes are labelled",
                                check + "exit 0\n", "label the ingress nodes mlplat.dev/ingress=true", apply));
  }
  steps.push_back(files_step(fleet, "config", {{config_path, render.istio_config, 0600}}, ""));
  ScriptOptions install_options;
  install_options.apply_deadline = std::chrono::seconds(900);
  steps.push_back(script_step(fleet, "install", sha256_hex(render.istio_config), "check that Istio is installed as configured",
                              fmt::format("{} manifest generate -f {} 2>/dev/null | {} diff --server-side --force-conflicts -f - >/dev/null 2>&1 || exit 1\nexit 0\n",
                                          istioctl, config_path, k),
                              "istioctl install", fmt::format("{} install -f {} --skip-confirmation", istioctl, config_path), install_options));
  steps.push_back(deployments_step(fleet, "available", k_gateway_namespace, {"istiod", "istio-ingressgateway"}, std::chrono::seconds(600)));
  p.steps = [steps](size_t) { return steps; };
  return p;
}

Step tls_secret_step(transport::Fleet& fleet, const IngressCertificate& cert)
{
  const std::string crt64 = base64(cert.cert_pem);
  const std::string key64 = base64(cert.key_pem);
  const std::string secret = fmt::format(
    "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {}\n  namespace: {}\n  labels:\n    app.kubernetes.io/managed-by: mlplat\n"
    "type: kubernetes.io/tls\ndata:\n  tls.crt: {}\n  tls.key: {}\n",
    k_tls_secret, k_gateway_namespace, crt64, key64);
  const std::string k = kubectl();
  // Compared by hashes: the key itself is never read back.
  const std::string check = fmt::format(
    "[ \"$({k} -n {ns} get secret {s} -o jsonpath='{{.data.tls\\.crt}}' 2>/dev/null | sha256sum | cut -d' ' -f1)\" = {c} ] || exit 1\n"
    "[ \"$({k} -n {ns} get secret {s} -o jsonpath='{{.data.tls\\.key}}' 2>/dev/null | sha256sum | cut -d' ' -f1)\" = {key} ] || exit 1\n"
    "exit 0\n",
    fmt::arg("k", k), fmt::arg("ns", k_gateway_namespace), fmt::arg("s", k_tls_secret), fmt::arg("c", sha256_hex(crt64)),
    fmt::arg("key", sha256_hex(key64)));
  Step s;
  s.name = "secret";
  s.digest = sha256_hex(cert.cert_pem);
  auto check_cmd = [check] { return read_only(fmt::format("check that Secret {}/{} holds the ingress certificate", k_gateway_namespace, k_tls_secret), check); };
  s.check = [&fleet, check_cmd](size_t h) { return converged(fleet, h, check_cmd()); };
  s.apply = [&fleet, secret, k, serial = cert.serial_hex](size_t h) -> Status {
    auto c = mutating(fmt::format("apply Secret {}/{} (kubernetes.io/tls, certificate serial {}; the key goes through stdin)",
                                  k_gateway_namespace, k_tls_secret, serial),
                      fmt::format("{} apply --server-side --force-conflicts -f -", k));
    c.input = transport::input_from_string(secret);
    c.sensitive = transport::Sensitive::yes;
    TRY(fleet.run(h, c));
    return {};
  };
  s.verify = [&fleet, check_cmd](size_t h) -> Status {
    TRY_ASSIGN(const bool ok, converged(fleet, h, check_cmd()));
    return ok ? Status{} : fail(ErrorCode::failed, fmt::format("Secret {}/{} does not hold the certificate just applied", k_gateway_namespace, k_tls_secret));
  };
  return s;
}

Phase tls_phase(transport::Fleet& fleet, const IngressCertificate& cert, const RuntimeInputs& in)
{
  Phase p;
  p.name = "tls";
  p.summary = fmt::format("the ingress certificate (serial {}) as Secret {}/{}", cert.serial_hex, k_gateway_namespace, k_tls_secret);
  p.hosts = {in.first_control_plane};
  p.deadline = std::chrono::seconds(120);
  const std::vector<Step> steps{tls_secret_step(fleet, cert)};
  p.steps = [steps](size_t) { return steps; };
  return p;
}

Phase gateway_phase(transport::Fleet& fleet, const PlatformRender& render, const RuntimeInputs& in)
{
  Phase p;
  p.name = "gateway";
  p.summary = fmt::format("Gateway mlplat-gateway (HTTPS 443, HTTP redirected) and VirtualService kubeflow-pipelines for {}", text::join(render.hosts, ", "));
  p.hosts = {in.first_control_plane};
  p.deadline = std::chrono::seconds(300);
  const std::vector<Step> steps{apply_step(fleet, "gateway", std::string(k_platform_dir) + "/gateway.yaml", render.gateway)};
  p.steps = [steps](size_t) { return steps; };
  return p;
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

Phase smoke_phase(transport::Fleet& fleet, const PlatformRender& render, const IngressCertificate& cert, const RuntimeInputs& in,
                  std::chrono::seconds deadline)
{
  // One round of probes; the error says which failed and how.
  auto probe = [&fleet, render, ca = cert.ca_file](size_t h) -> Status {
    std::string address = render.ingress_address;
    if (address.empty()) {
      TRY_ASSIGN(const auto r, fleet.exec(h, read_only("read the gateway's load balancer address",
                                                       fmt::format("{} -n {} get service istio-ingressgateway -o jsonpath='{{.status.loadBalancer.ingress[0].ip}}'",
                                                                   kubectl(), k_gateway_namespace))));
      address = std::string(text::trim(r.out));
      if (address.empty()) {
        return fail(ErrorCode::failed, "the gateway's Service has no load balancer address yet",
                    "check the site's load balancer (e.g. MetalLB's address pool): kubectl -n istio-system get service istio-ingressgateway");
      }
    }
    if (!ca.empty() && !sfs::exists(ca)) {
      return fail(ErrorCode::failed, fmt::format("the CA file {} does not exist yet", ca.string()));
    }
    auto q = gateway_request(render, address, ca);
    TRY_ASSIGN(const auto ui, fetch::get(q));
    if (ui.status != 200 || ui.body.find("Kubeflow Pipelines") == std::string::npos) {
      return fail(ErrorCode::failed, fmt::format("GET {} (at {}) answered {} without the Pipelines UI", q.url, address, ui.status));
    }
    q.url = ui_url(render) + "apis/v2beta1/healthz";
    TRY_ASSIGN(const auto api, fetch::get(q));
    if (api.status != 200 || api.body.find("\"tag_name\"") == std::string::npos) {
      return fail(ErrorCode::failed, fmt::format("GET {} (at {}) answered {} without the Pipelines API's health", q.url, address, api.status));
    }
    q.url = render.http_port == 80 ? fmt::format("http://{}/", render.domain) : fmt::format("http://{}:{}/", render.domain, render.http_port);
    TRY_ASSIGN(const auto plain, fetch::get(q));
    if ((plain.status != 301 && plain.status != 302 && plain.status != 308) || plain.location.rfind("https://", 0) != 0) {
      return fail(ErrorCode::failed, fmt::format("GET {} (at {}) answered {} instead of a redirect to HTTPS", q.url, address, plain.status));
    }
    return {};
  };
  Phase p;
  p.name = "smoke";
  p.summary = fmt::format("HTTPS through the gateway to the Pipelines UI and API ({}), verified against {}", ui_url(render),
                          cert.ca_file.empty() ? "the system's trust store" : cert.ca_file.string());
  p.hosts = {in.first_control_plane};
  p.deadline = deadline + std::chrono::seconds(30);
  Step s;
  s.name = "https";
  s.digest = sha256_hex(ui_url(render) + cert.serial_hex);
  s.check = [probe](size_t h) -> Result<bool> { return probe(h).has_value(); };
  s.apply = [&fleet, probe, deadline, url = ui_url(render)](size_t h) -> Status {
    if (fleet.dry_run()) {
      return {};
    }
    const auto end = std::chrono::steady_clock::now() + deadline;
    Status last;
    do {
      last = probe(h);
      if (last) {
        return {};
      }
      std::this_thread::sleep_for(std::chrono::seconds(2));
    } while (std::chrono::steady_clock::now() < end);
    Error e = last.error();
    e.message = fmt::format("waited {} s for {} through the gateway: {}", deadline.count(), url, e.message);
    e.fix = "check the gateway: kubectl -n istio-system get pods,svc,gateway; kubectl -n istio-system logs deployment/istio-ingressgateway; "
            "and that this machine reaches the ingress address (firewall); skip this check with --skip smoke";
    return tl::unexpected(e);
  };
  s.verify = [probe](size_t h) { return probe(h); };
  p.steps = [s](size_t) { return std::vector<Step>{s}; };
  return p;
}

} // namespace mlplat::install
