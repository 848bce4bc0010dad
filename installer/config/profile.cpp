#include "config/profile.hpp"

#include "assets/assets.hpp"
#include "config/grammar.hpp"
#include "yamlio/reader.hpp"

#include <fmt/core.h>

namespace mlplat::config {

Result<Profile> load_profile(const std::string& name)
{
  const std::string file = fmt::format("profiles/{}/profile.yaml", name);
  TRY_ASSIGN(const std::string text, assets::read(file));
  Profile p;
  p.name = name;
  p.source = file;
  yamlio::Problems problems{file, {}};
  yamlio::Positions positions;
  const YAML::Node root = yamlio::parse(text, problems, "restore the profile from the mlplat release");
  if (root) {
    yamlio::MapReader top(problems, positions, root, "");
    if (top.valid()) {
      yamlio::read_header(top, problems, positions, k_api_version, "Profile", "a profile");
      top.sub("metadata", [&](yamlio::MapReader& m) {
        std::string n;
        if (m.str("name", n, yamlio::Need::required) && n != name) {
          problems.add(positions["metadata.name"], fmt::format("the profile in {} is named '{}'", file, n),
                       fmt::format("name it '{}' (the directory's name)", name));
        }
      });
      top.sub("spec", [&](yamlio::MapReader& spec) {
        spec.sub("network", [&](yamlio::MapReader& n) {
          n.choice<Cni>("cni", p.cni, {{"calico", Cni::calico}, {"flannel", Cni::flannel}});
          n.integer("hostMTU", p.host_mtu, 576, 9216);
          n.sub("calico", [&](yamlio::MapReader& c) {
            c.choice<std::string>("encapsulation", p.calico_encapsulation,
                                  {{"VXLAN", "VXLAN"}, {"VXLANCrossSubnet", "VXLANCrossSubnet"}, {"IPIP", "IPIP"},
                                   {"IPIPCrossSubnet", "IPIPCrossSubnet"}, {"None", "None"}});
            c.integer("mtu", p.calico_mtu, 576, 9216);
          });
          n.sub("flannel", [&](yamlio::MapReader& f) {
            f.choice<std::string>("backend", p.flannel_backend, {{"vxlan", "vxlan"}, {"host-gw", "host-gw"}, {"wireguard", "wireguard"}});
            f.integer("mtu", p.flannel_mtu, 576, 9216);
          });
        });
        // Each value checked against its grammar where it was written: the base path is created and
        // probed on every host, the requests go into rendered Deployments.
        const auto require = [&](const std::string& path, const std::string& value, const Status& ok) {
          if (!ok) {
            problems.add(positions[path], fmt::format("{}: {} {}", path, grammar::quoted(value), ok.error().message), ok.error().fix);
          }
        };
        spec.sub("storage", [&](yamlio::MapReader& s) {
          if (s.str("basePath", p.base_path)) {
            require("spec.storage.basePath", p.base_path, grammar::base_path(p.base_path));
          }
        });
        spec.sub("ingress", [&](yamlio::MapReader& i) {
          i.choice<Expose>("expose", p.expose,
                           {{"nodeport", Expose::nodeport}, {"hostnetwork", Expose::hostnetwork}, {"loadbalancer", Expose::loadbalancer}});
        });
        spec.sub("pipelines", [&](yamlio::MapReader& pl) {
          pl.sub("requests", [&](yamlio::MapReader& r) {
            if (r.str("cpu", p.pipelines_cpu)) {
              require("spec.pipelines.requests.cpu", p.pipelines_cpu, grammar::quantity(p.pipelines_cpu));
            }
            if (r.str("memory", p.pipelines_memory)) {
              require("spec.pipelines.requests.memory", p.pipelines_memory, grammar::quantity(p.pipelines_memory));
            }
          });
        });
      }, yamlio::Need::required);
      top.finish();
    }
  }
  TRY(problems.to_status());
  return p;
}

Effective effective(const Cluster& cluster, const Profile& profile)
{
  const auto set = [&](const char* path) { return cluster.positions.count(path) != 0; };
  Effective e;
  e.cni = set("spec.network.cni") ? cluster.network.cni : profile.cni;
  const int profile_mtu = e.cni == Cni::calico ? profile.calico_mtu : profile.flannel_mtu;
  e.cni_mtu = cluster.network.mtu.value_or(profile_mtu);
  e.encapsulation = e.cni == Cni::calico ? profile.calico_encapsulation : profile.flannel_backend;
  e.base_path = set("spec.storage.basePath") ? cluster.storage.base_path : profile.base_path;
  e.expose = set("spec.ingress.expose") ? cluster.ingress.expose : profile.expose;
  e.pipelines_cpu = profile.pipelines_cpu;
  e.pipelines_memory = profile.pipelines_memory;
  return e;
}

} // namespace mlplat::config
