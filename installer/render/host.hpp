// The hosts' containerd files rendered from data: the sandbox image into config.toml, and one
// certs.d hosts.toml per mirrored registry, both through the TOML writer (util/toml), so a value can
// never end its string or add a line of its own.
#pragma once

#include "compat/matrix.hpp"
#include "config/model.hpp"
#include "util/error.hpp"

#include <map>

#include <string>

namespace mlplat::render {

// --- Interface ---

// manifests/host/containerd-config.toml (`config_template`) with `sandbox = ""` set to `pause_image`.
Result<std::string> containerd_config(const std::string& config_template, const std::string& pause_image);

// /etc/containerd/certs.d/<registry>/hosts.toml: `registry`'s images pulled from `mirror` first,
// the registry itself the fallback (Docker Hub's API is registry-1.docker.io). A site registry
// (`site`) is the only host: no fallback to the public registry; its certificate verified against
// `ca_path` on the host and, with credentials, `authorization` sent as the Authorization header (the
// file is then a secret, 0600).
std::string registry_hosts(const std::string& registry, const std::string& mirror, bool site = false, const std::string& ca_path = {},
                           const std::string& authorization = {});

// Where the hosts keep the site registry's CA (spec.registry.site.caFile).
inline constexpr const char* k_site_ca_path = "/etc/containerd/certs.d/mlplat-site-ca.crt";

// The registry mirrors in effect: spec.registry.mirrors, and with a site registry every registry of
// the row's images pointed at it (it replaces the mirrors).
std::map<std::string, std::string> effective_mirrors(const config::Registry& registry, const compat::Row& row);

} // namespace mlplat::render
