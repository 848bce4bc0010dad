// Kustomize builds with no network: the remote bases a manifest tree names
// ("https://github.com/argoproj/argo-workflows/manifests/base?ref=v4.0.5") are rewritten to the
// copies a bundle carries (kustomizeSources in the matrix row), and a remote base the bundle does not
// carry is an error, so a build never quietly reaches for the internet.
#pragma once

#include "bundle/bundle.hpp"

#include <filesystem>
#include <string>

namespace mlplat::bundle {

// --- Interface ---

// A remote kustomize reference split into its parts; nullopt for a local path.
struct RemoteRef {
  std::string repo;  // github.com/argoproj/argo-workflows
  std::string path;  // manifests/base/workflow-controller
  std::string ref;   // v4.0.5 (empty when none)
};
std::optional<RemoteRef> parse_remote(const std::string& entry);

// Extracts an artifact archive of the bundle (a .tar.gz) into `dir`; returns `dir`.
Result<std::filesystem::path> extract_artifact(const std::filesystem::path& bundle_dir, const Bom& bom,
                                               const std::string& artifact, const std::filesystem::path& dir);

// Extracts the bundle's kustomize sources under `vendor_dir` and rewrites every remote entry of
// resources/bases/components in the kustomization files under `tree` to a relative path into them.
// Returns how many entries were rewritten. Error (naming file and entry) for a remote the bundle
// does not carry.
Result<int> vendor_remote_bases(const std::filesystem::path& tree, const std::filesystem::path& bundle_dir, const Bom& bom,
                                const std::filesystem::path& vendor_dir);

} // namespace mlplat::bundle
