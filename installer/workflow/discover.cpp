#include "workflow/discover.hpp"

#include "kube/kubeadm.hpp"
#include "workflow/steps.hpp"
#include "util/log.hpp"
#include "util/text.hpp"

#include <fmt/core.h>

namespace mlplat::workflow {

namespace {

transport::Command discovery_command()
{
  auto c = read_only("look for a cluster on the host (its CA, kubeadm init's files)",
                     fmt::format("if [ -f /etc/kubernetes/pki/ca.crt ]; then printf 'ca=%s\\n' \"$(sha256sum < /etc/kubernetes/pki/ca.crt | cut -c1-64)\"; "
                                 "else echo ca=; fi\n"
                                 "if {}; then echo initialized=yes; else echo initialized=no; fi\n",
                                 kube::k_initialized_test));
  c.deadline = std::chrono::seconds(20);
  return c;
}

struct HostView {
  std::string ca;
  bool initialized = false;
};

} // namespace

Result<Discovered> discover_cluster(Context& ctx)
{
  auto& fleet = ctx.fleet;
  const auto views = fleet.for_each<HostView>([&](size_t h) -> Result<HostView> {
    fleet.set_label(h, "discover");
    TRY_ASSIGN(const auto r, fleet.run(h, discovery_command()));
    HostView v;
    for (const auto& line : text::split(r.out, '\n')) {
      const auto l = std::string(text::trim(line));
      if (l.rfind("ca=", 0) == 0) {
        v.ca = l.substr(3);
      } else if (l == "initialized=yes") {
        v.initialized = true;
      }
    }
    return v;
  });
  Discovered found;
  auto runs_cluster = [&](size_t h) {
    return ctx.cluster.hosts[h].role == config::Role::control_plane && views[h] && views[h]->initialized && !views[h]->ca.empty();
  };
  if (runs_cluster(ctx.first_control_plane)) {
    found.control_plane = ctx.first_control_plane;
  } else {
    for (size_t h = 0; h < views.size(); ++h) {
      if (runs_cluster(h)) {
        found.control_plane = h;
        break;
      }
    }
  }
  if (!found.control_plane) {
    return found;
  }
  found.ca_sha256 = views[*found.control_plane]->ca;
  for (size_t h = 0; h < views.size(); ++h) {
    if (views[h] && views[h]->ca == found.ca_sha256) {
      found.members.insert(h);
      if (runs_cluster(h)) {
        found.control_planes.insert(h);
      }
    }
  }
  return found;
}

void adopt_discovered(Context& ctx, const Discovered& found)
{
  if (!found.control_plane) {
    return;
  }
  ctx.running_control_planes = found.control_planes;
  if (*found.control_plane != ctx.first_control_plane) {
    log::info("{} runs the cluster's control plane ({} has none yet): this run works from {}", ctx.cluster.hosts[*found.control_plane].name,
              ctx.cluster.hosts[ctx.first_control_plane].name, ctx.cluster.hosts[*found.control_plane].name);
    ctx.first_control_plane = *found.control_plane;
  }
  const bool self_signed = ctx.cluster.pipelines.enabled && ctx.cluster.ingress.tls.mode == config::TlsMode::self_signed;
  std::error_code ec;
  if (self_signed && !std::filesystem::exists(ctx.state_dir / "tls" / "ca.key", ec)) {
    log::warn("the cluster runs, but {} holds no ingress CA: its key is not kept in the cluster, so it cannot be recovered from there. "
              "A new CA is made and the gateway's certificate replaced: clients must then trust the new {}. To keep the old CA, "
              "copy ca.crt and ca.key from the state directory of the earlier runs into {} before installing",
              (ctx.state_dir / "tls").string(), (ctx.state_dir / "tls" / "ca.crt").string(), (ctx.state_dir / "tls").string());
  }
}

} // namespace mlplat::workflow
