#include "render/host.hpp"

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

std::string registry_hosts(const std::string& registry, const std::string& mirror)
{
  toml::Writer w;
  w.comment(fmt::format("Written by mlplat from spec.registry.mirrors (/etc/containerd/certs.d/{}/hosts.toml): containerd\n"
                        "pulls {} images from the mirror first and falls back to the registry itself.",
                        registry, registry));
  w.set("server", registry == "docker.io" ? std::string("https://registry-1.docker.io") : "https://" + registry);
  w.table({"host", mirror});
  w.set("capabilities", std::vector<std::string>{"pull", "resolve"});
  return w.text();
}

} // namespace mlplat::render
