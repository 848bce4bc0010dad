// `mlplat install`: the phases from bare hosts to HTTPS Pipelines.
#include "commands/commands.hpp"

#include "phases/phases.hpp"
#include "util/log.hpp"
#include "util/text.hpp"

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <iostream>

namespace mlplat::commands {

namespace {

// Renders the platform overlays and settles the ingress certificate, on this machine, before any
// host is touched; a plan writes no certificate.
Status render_platform(workflow::Context& ctx);

// With a site registry, every image of the bundle goes there once, before any host is touched (those
// it serves at the bill of materials' digest already are skipped), so that the hosts, whose
// hosts.toml name only the site registry, find every image they pull. A plan pushes nothing.
Status push_to_site(const workflow::Context& ctx)
{
  const config::SiteRegistry& site = ctx.cluster.registry.site;
  if (site.url.empty() || ctx.bom == nullptr) {
    return {};
  }
  if (!ctx.bom->images_included) {
    return fail(ErrorCode::config_invalid,
                fmt::format("spec.registry.site ({}) is set, but bundle {} carries no images to push to it", site.url, ctx.bundle_dir.string()),
                "create the bundle with its images: mlplat bundle create --images (docs/bundle.md, \"Air-gapped installs\")");
  }
  if (ctx.dry_run) {
    log::info("site registry: install would push the bundle's {} images to {} (skipping those it serves at the same digest)",
              ctx.bom->images.size(), site.url);
    return {};
  }
  TRY_ASSIGN(const auto pushed, bundle::push_images(*ctx.bom, ctx.bundle_dir, {site.url, site.ca_file, site.credentials_file}));
  const auto skipped = std::count_if(pushed.begin(), pushed.end(), [](const bundle::PushedImage& p) { return p.skipped; });
  log::info("site registry {}: {} images pushed, {} already there at the same digest", site.url, pushed.size() - size_t(skipped), skipped);
  return {};
}

Status render_platform(workflow::Context& ctx)
{
  TRY(push_to_site(ctx));
  if (ctx.bom == nullptr || !ctx.cluster.pipelines.enabled) {
    return {};
  }
  render::Inputs in;
  in.row = ctx.row;
  in.bom = ctx.bom;
  in.bundle_dir = ctx.bundle_dir;
  in.first_control_plane = ctx.first_control_plane;
  in.registry_mirrors = ctx.registry_mirrors;
  TRY_ASSIGN(ctx.render, render::render_platform(ctx.cluster, ctx.effective, in, ctx.work_dir));
  TRY_ASSIGN(ctx.cert, tls::ingress_certificate(ctx.cluster, *ctx.render, ctx.state_dir, !ctx.dry_run));
  log::info("platform: Kubeflow Pipelines overlays rendered ({} CRDs, {} deployments, {} images; kustomize {}), ingress certificate serial {}",
            ctx.render->crds.size(), ctx.render->deployments.size(), ctx.render->images.size(), ctx.render->kustomize_version,
            ctx.cert->serial_hex);
  return {};
}

// The node table kubectl prints ("NAME STATUS ROLES AGE VERSION") as objects keyed by its header.
nlohmann::json node_rows(const std::string& table)
{
  nlohmann::json rows = nlohmann::json::array();
  const auto lines = text::split(std::string(text::trim(table)), '\n');
  if (lines.size() < 2) {
    return rows;
  }
  auto words = [](const std::string& line) {
    std::vector<std::string> out;
    for (const auto& w : text::split(line, ' ')) {
      if (!w.empty()) {
        out.push_back(w);
      }
    }
    return out;
  };
  const auto header = words(lines.front());
  for (size_t i = 1; i < lines.size(); ++i) {
    const auto cells = words(lines[i]);
    nlohmann::json row = nlohmann::json::object();
    for (size_t k = 0; k < header.size() && k < cells.size(); ++k) {
      std::string key = header[k];
      std::transform(key.begin(), key.end(), key.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      row[key] = cells[k];
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

// What the cluster looks like after a run: nodes as the API server reports them, versions, where the
// kubeconfig is, the UI's address. Read-only; a cluster not initialised yet gets no node table. With
// --output json one object (docs/schemas/install.schema.json).
int print_summary(workflow::Context& ctx, const workflow::Summary& summary, double seconds, const workflow::Ui& ui)
{
  nlohmann::json doc{{"cluster", ctx.cluster.name},
                     {"profile", ctx.cluster.profile},
                     {"applied", summary.applied()},
                     {"alreadyInPlace", summary.steps.size() - summary.applied()},
                     {"seconds", seconds},
                     {"stateDir", ctx.state_dir.string()}};
  if (!ui.json) {
    std::cout << fmt::format("cluster {}: {} step{} applied, {} already in place ({:.1f} s); state in {}\n", ctx.cluster.name, summary.applied(),
                             summary.applied() == 1 ? "" : "s", summary.steps.size() - summary.applied(), seconds, ctx.state_dir.string());
  }
  if (ctx.bom == nullptr) {
    if (ui.json) {
      std::cout << doc.dump(2) << "\n";
    }
    return k_exit_ok;
  }
  auto nodes = ctx.control_plane().exec(workflow::read_only("list the nodes", workflow::kubectl() + " get nodes 2>/dev/null || true"));
  const bool have_nodes = nodes && !text::trim(nodes->out).empty();
  const auto kubeconfig = ctx.state_dir / "kubeconfig";
  const bool have_kubeconfig = std::filesystem::exists(kubeconfig);
  const bool smoke_ran = std::any_of(summary.steps.begin(), summary.steps.end(), [](const auto& s) { return s.phase == "smoke"; });
  const bool platform = ctx.render && ctx.cert && smoke_ran;
  if (ui.json) {
    doc["row"] = ctx.row->id;
    doc["kubernetes"] = ctx.row->kubernetes.str();
    doc["nodes"] = have_nodes ? node_rows(nodes->out) : nlohmann::json::array();
    doc["kubeconfig"] = have_kubeconfig ? nlohmann::json(kubeconfig.string()) : nlohmann::json();
    doc["controlPlaneEndpoint"] = kube::control_plane_endpoint(ctx.cluster, ctx.first_control_plane);
    if (platform) {
      nlohmann::json p{{"url", render::ui_url(*ctx.render)}, {"domain", ctx.render->domain}};
      p["caFile"] = ctx.cert->ca_file.empty() ? nlohmann::json() : nlohmann::json(ctx.cert->ca_file.string());
      p["ingressAddress"] = ctx.render->ingress_address.empty() ? nlohmann::json() : nlohmann::json(ctx.render->ingress_address);
      doc["pipelines"] = p;
    }
    std::cout << doc.dump(2) << "\n";
    return k_exit_ok;
  }
  std::cout << fmt::format("\nsummary of cluster {} (profile {}, row {}: Kubernetes {})\n", ctx.cluster.name, ctx.cluster.profile, ctx.row->id,
                           ctx.row->kubernetes.str());
  if (have_nodes) {
    std::cout << text::indent(std::string(text::trim(nodes->out)), "  ") << "\n";
  } else {
    std::cout << "  no nodes yet (kubeadm init has not run)\n";
  }
  if (have_kubeconfig) {
    std::cout << fmt::format("kubeconfig: {} (0600; the administrator's credentials: keep it safe)\n"
                             "  kubectl --kubeconfig {} get nodes   (from a machine that reaches {})\n",
                             kubeconfig.string(), kubeconfig.string(), kube::control_plane_endpoint(ctx.cluster, ctx.first_control_plane));
  }
  std::cout << fmt::format("time: {:.1f} s\n", seconds);
  if (platform) {
    std::cout << fmt::format("Kubeflow Pipelines: {}\n", render::ui_url(*ctx.render));
    if (!ctx.cert->ca_file.empty()) {
      std::cout << fmt::format("  trust the ingress CA {} (e.g. curl --cacert {} ...)\n", ctx.cert->ca_file.string(), ctx.cert->ca_file.string());
    }
    if (!ctx.render->ingress_address.empty()) {
      std::cout << fmt::format("  {} must resolve to {} (DNS, or /etc/hosts: \"{} {}\")\n", ctx.render->domain, ctx.render->ingress_address,
                               ctx.render->ingress_address, ctx.render->domain);
    }
  }
  return k_exit_ok;
}

} // namespace

std::vector<workflow::PhaseSpec> install_phases()
{
  // install's tls installs the certificate settled with the rendered platform, which needs the bundle.
  auto tls = phases::tls();
  tls.needs_bundle = true;
  return {phases::prepare(),  phases::artifacts(),  phases::containerd(), phases::images(), phases::init(),    phases::join_control_planes(),
          phases::join_workers(), phases::kubeconfig(), phases::nodes(),   phases::cni(),     phases::storage(),
          phases::volumes(),  phases::cleanup(),  phases::pipelines(),  phases::istio(),      tls,               phases::gateway(),
          phases::smoke()};
}

workflow::CommandSpec install()
{
  workflow::CommandSpec spec;
  spec.name = "install";
  spec.phases = install_phases();
  spec.before_hosts = render_platform;
  spec.after = print_summary;
  return spec;
}

} // namespace mlplat::commands
