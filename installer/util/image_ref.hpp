// Container image references as a registry and containerd resolve them: one parser for the whole
// installer (the platform's rewriting, the bundle's image copies and archive names).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace mlplat {

// --- Interface ---

// An image reference split as containerd resolves it: registry ("docker.io" for Docker Hub short
// names), repository path ("library/mysql" for "mysql", "library/alpine" for "docker.io/alpine") and
// the tag (":8.4", ":latest" when none) or digest ("@sha256:...").
struct ImageRef {
  std::string registry;
  std::string path;
  std::string suffix;
  bool tag_written = true;  // false: no tag nor digest was written (":latest" implied)

  // registry/path:tag, the fully qualified name ("docker.io/library/mysql:8.4").
  std::string full() const;
};

// `text` parsed as an image reference (an image field's value: short names allowed); nothing when it
// is not one (spaces, a scheme, an empty name, upper case in the repository).
std::optional<ImageRef> parse_image(std::string_view text);

} // namespace mlplat
