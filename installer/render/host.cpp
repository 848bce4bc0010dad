#include "render/host.hpp"

#include "render/references.hpp"

#include "util/text.hpp"
#include "util/toml.hpp"

#include <fmt/core.h>

namespace mlplat::render {

Result<std::string> containerd_config(const std::string& config_template, const std::string& pause_image)
{
  const std::string slot = "sandbox = \"\"";
  const size_t at = config_template.find(slot);
  if (at == std::string::npos || config_template.find(slot, at + 1) != std::string::npos) {
    return fail(ErrorCode::internal, "manifests/host/containerd-config.toml must have exactly one line 'sandbox = \"\"'");
  }
  return config_template.substr(0, at) + "sandbox = " + toml::string(pause_image) + config_template.substr(at + slot.size());
}

std::string registry_hosts(const std::string& registry, const std::string& mirror, bool site, const std::string& ca_path,
                           const std::string& authorization)
{
  toml::Writer w;
  if (site) {
    w.comment(fmt::format("Written by mlplat from spec.registry.site (/etc/containerd/certs.d/{}/hosts.toml): containerd\n"
                          "pulls {} images from the site registry only; the public registry is never asked.",
                          registry, registry));
    // containerd's hosts.md: without `server`, the registry itself is still tried after the hosts;
    // pointing `server` at the site registry leaves it the only host.
    w.set("server", mirror);
  } else {
    w.comment(fmt::format("Written by mlplat from spec.registry.mirrors (/etc/containerd/certs.d/{}/hosts.toml): containerd\n"
                          "pulls {} images from the mirror first and falls back to the registry itself.",
                          registry, registry));
    w.set("server", registry == "docker.io" ? std::string("https://registry-1.docker.io") : "https://" + registry);
  }
  w.table({"host", mirror});
  w.set("capabilities", std::vector<std::string>{"pull", "resolve"});
  if (!ca_path.empty()) {
    w.set("ca", ca_path);
  }
  if (!authorization.empty()) {
    w.table({"host", mirror, "header"});
    w.set("Authorization", authorization);
  }
  return w.text();
}

std::map<std::string, std::string> effective_mirrors(const config::Registry& registry, const compat::Row& row)
{
  if (registry.site.url.empty()) {
    return registry.mirrors;
  }
  std::map<std::string, std::string> out;
  for (const auto& image : row.images) {
    if (const auto ref = parse_image(image)) {
      out[ref->registry] = registry.site.url;
    }
  }
  return out;
}

} // namespace mlplat::render
