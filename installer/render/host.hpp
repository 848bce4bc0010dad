// The hosts' containerd files rendered from data: the sandbox image into config.toml, and one
// certs.d hosts.toml per mirrored registry, both through the TOML writer (util/toml), so a value can
// never end its string or add a line of its own.
#pragma once

#include "util/error.hpp"

#include <string>

namespace mlplat::render {

// --- Interface ---

// manifests/host/containerd-config.toml (`config_template`) with `sandbox = ""` set to `pause_image`.
Result<std::string> containerd_config(const std::string& config_template, const std::string& pause_image);

// /etc/containerd/certs.d/<registry>/hosts.toml: `registry`'s images pulled from `mirror` first,
// the registry itself the fallback (Docker Hub's API is registry-1.docker.io).
std::string registry_hosts(const std::string& registry, const std::string& mirror);

} // namespace mlplat::render
