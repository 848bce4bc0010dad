// Image references and service addresses inside rendered manifests, wherever they sit: a container's
// image field, an environment value (V2_DRIVER_IMAGE), an argument (--executor-image), a ConfigMap's
// data (cacheImage, Argo's artifactRepository). The rendered platform is rewritten here in one pass,
// so an air-gapped site pulls every image from its mirror or site registry and a namespace other than
// upstream's is the one every address names; what is left over is reported, not guessed at.
#pragma once

#include "util/error.hpp"
#include "util/image_ref.hpp"

#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace mlplat::render {

// --- Interface ---

// An image reference and its parser are util/image_ref.hpp's (shared with the bundle's image copies).
using mlplat::ImageRef;
using mlplat::parse_image;

// The registry host of a mirror URL ("https://m.example:5000/" -> "m.example:5000").
std::string mirror_host(const std::string& url);

// Where every reference goes and which names count as references outside image fields.
struct RewriteRules {
  // registry host -> mirror URL; an image of a registry named here is rewritten to the mirror's host,
  // its repository path kept.
  std::map<std::string, std::string> mirrors;
  // Registries a reference outside an image field must start with to be taken for an image: the
  // registries of the row's images, the mirrored ones, and the public registries mlplat knows.
  std::set<std::string> registries;
  // Upstream's namespace and the one configured: "<service>.<from>" becomes "<service>.<to>" for every
  // Service of the rendered documents (and "<service>.<from>.svc...").
  std::string from_namespace;
  std::string to_namespace;
};

// The public registries an image reference outside an image field is recognised by, besides the
// row's own and the mirrored ones.
std::set<std::string> known_registries();

// One image reference found in the documents.
struct FoundImage {
  std::string original;  // fully qualified, as upstream wrote it (normalized)
  std::string rendered;  // as the documents hold it now
  std::string where;     // "Deployment/ml-pipeline: spec.template.spec.containers[0].env[12].value"
};

// What rewrite_documents changed and found.
struct Rewritten {
  std::string yaml;                 // the documents, emitted again
  std::vector<FoundImage> images;   // every reference, in document order
  std::vector<std::string> leftovers;  // addresses still naming from_namespace, with where they are
};

// Rewrites the multi-document `yaml` (named `name` in errors) by `rules`: every image reference to its
// mirror, every service address to the configured namespace. Fails only on YAML that does not parse.
Result<Rewritten> rewrite_documents(const std::string& yaml, const std::string& name, const RewriteRules& rules);

// The references of `found` that still name a registry `mirrors` has a mirror for (the rewrite missed
// them), each "reference (where)"; empty when none.
std::vector<std::string> unmirrored(const std::vector<FoundImage>& found, const std::map<std::string, std::string>& mirrors);

} // namespace mlplat::render
