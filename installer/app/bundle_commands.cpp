// `mlplat bundle create|verify|list`: offline artifact bundles of a matrix row.
#include "app/commands.hpp"

#include <unistd.h>

#include "bundle/bundle.hpp"
#include "compat/matrix.hpp"
#include "util/log.hpp"

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <iostream>

namespace mlplat::app {

namespace {

void print_bom(const GlobalOptions& global, const bundle::Bom& bom, const std::string& bom_sha256 = {})
{
  if (global.output == Output::json) {
    nlohmann::json artifacts = nlohmann::json::array();
    for (const auto& a : bom.artifacts) {
      artifacts.push_back({{"name", a.name}, {"file", a.file}, {"url", a.url}, {"sha256", a.sha256}, {"size", a.size},
                           {"verification", a.verification}});
    }
    nlohmann::json images = nlohmann::json::array();
    for (const auto& i : bom.images) {
      nlohmann::json j{{"ref", i.ref}};
      if (i.carried()) {
        j.update({{"digest", i.digest}, {"sourceDigest", i.source_digest}, {"file", i.file}, {"sha256", i.sha256}, {"size", i.size},
                  {"fetchedFrom", i.fetched_from}});
      }
      images.push_back(j);
    }
    std::cout << nlohmann::json{{"row", bom.row},           {"kubernetes", bom.kubernetes}, {"created", bom.created},
                                {"mlplatVersion", bom.mlplat_version}, {"artifacts", artifacts}, {"images", images},
                                {"imagesIncluded", bom.images_included}, {"bomSha256", bom_sha256}}
                   .dump(2)
              << "\n";
    return;
  }
  std::cout << fmt::format("bundle for row {} (Kubernetes {}), created {} by mlplat {}\n\n", bom.row, bom.kubernetes,
                           bom.created, bom.mlplat_version);
  if (!bom_sha256.empty()) {
    std::cout << fmt::format("bill of materials (bundle.json) sha256 {}\n\n", bom_sha256);
  }
  std::cout << fmt::format("{:<24} {:>12}  {:<18} {}\n", "ARTIFACT", "BYTES", "VERIFIED BY", "SHA256");
  for (const auto& a : bom.artifacts) {
    std::cout << fmt::format("{:<24} {:>12}  {:<18} {}\n", a.name, a.size, a.verification, a.sha256);
  }
  if (bom.images_included) {
    std::cout << fmt::format("\nimages in the bundle ({}, OCI archives):\n", bom.images.size());
    std::cout << fmt::format("{:<56} {:>12}  {}\n", "IMAGE", "BYTES", "DIGEST");
    for (const auto& i : bom.images) {
      std::cout << fmt::format("{:<56} {:>12}  {}\n", i.ref, i.size, i.digest);
    }
    return;
  }
  std::cout << fmt::format("\nimages the row pulls ({}; not in the bundle: pre-load them into your registry mirror, or create it with --images):\n",
                           bom.images.size());
  for (const auto& i : bom.images) {
    std::cout << "  " << i.ref << "\n";
  }
}

} // namespace

int cmd_bundle_create(const GlobalOptions& global, const BundleOptions& options)
{
  auto matrix = compat::load_active_matrix();
  if (!matrix) {
    return report_error(global, matrix.error());
  }
  bundle::CreateOptions create;
  create.row = options.row;
  create.output = options.output;
  create.fetch.mirrors = options.mirrors;
  create.fetch.base_url = options.base_url;
  create.fetch.deadline = std::chrono::seconds(options.deadline_seconds);
  create.fetch.stall = std::chrono::seconds(options.stall_seconds);
  create.accept_unpinned = {options.accept_unpinned.begin(), options.accept_unpinned.end()};
  create.sign_key = options.sign_key;
  create.images.include = options.images;
  create.images.upstream = !options.no_upstream_images;
  create.images.mirror_ca = options.image_mirror_ca;
  create.images.deadline = std::chrono::seconds(options.deadline_seconds);
  create.images.auth_file = options.registry_auth;
  if (create.images.auth_file.empty()) {
    if (const char* env = std::getenv("MLPLAT_REGISTRY_AUTH"); env != nullptr && *env != '\0' && options.images) {
      create.images.auth_file = env;
    }
  }
  for (const auto& m : options.image_mirrors) {
    const auto eq = m.find('=');
    const std::string registry = eq == std::string::npos ? std::string() : m.substr(0, eq);
    if (registry.empty() || registry.find_first_of("/ ") != std::string::npos) {
      Error e;
      e.code = ErrorCode::usage;
      e.message = fmt::format("--image-mirror '{}' is not REGISTRY=URL", m);
      e.fix = "name the registry the row's images are from and its mirror, e.g. --image-mirror docker.io=https://10.0.0.5:5000";
      return report_error(global, e);
    }
    auto location = bundle::registry_location(m.substr(eq + 1), "--image-mirror " + registry);
    if (!location) {
      return report_error(global, location.error());
    }
    if (!create.images.mirrors.emplace(registry, *location).second) {
      Error e;
      e.code = ErrorCode::usage;
      e.message = fmt::format("--image-mirror names a mirror for {} twice", registry);
      e.fix = "give one mirror per registry";
      return report_error(global, e);
    }
  }
  if (options.no_upstream_images && options.image_mirrors.empty()) {
    Error e;
    e.code = ErrorCode::usage;
    e.message = "--no-upstream-images without an --image-mirror: there is nowhere to copy the images from";
    e.fix = "give --image-mirror REGISTRY=URL for each registry of the row's images";
    return report_error(global, e);
  }
  log::info("creating a bundle of row {} in {}", options.row.empty() ? matrix->default_row : options.row, options.output);
  auto bom = bundle::create(*matrix, create);
  if (!bom) {
    return report_error(global, bom.error());
  }
  auto sha = bundle::bom_sha256(options.output);
  log::info("bundle {} complete: {} artifacts verified{}; bill of materials sha256 {}, {}", options.output, bom->artifacts.size(),
            bom->images_included ? fmt::format(", {} images", bom->images.size()) : std::string(), sha ? *sha : std::string("?"),
            options.sign_key.empty() ? "not signed (--sign-key signs it)" : "signed");
  if (global.output == Output::json) {
    print_bom(global, *bom);
  }
  return k_exit_ok;
}

namespace {

// What makes a bundle trusted for verify and push: the matrix in use and the operator's signers (or
// acceptance of one bill of materials by its sha256).
bundle::Trust trust_of(const BundleOptions& options, const compat::Matrix& matrix)
{
  bundle::Trust trust;
  trust.matrix = &matrix;
  trust.allowed_signers = options.allowed_signers;
  trust.signer = options.signer;
  trust.accept_unsigned = options.accept_unsigned;
  return trust;
}

} // namespace

int cmd_bundle_verify(const GlobalOptions& global, const BundleOptions& options)
{
  if (options.allowed_signers.empty() != options.signer.empty()) {
    Error e;
    e.code = ErrorCode::usage;
    e.message = "--allowed-signers and --signer go together: the signature is checked for that identity in that file";
    e.fix = "give both, or neither (then the bundle must be accepted by name with --accept-unsigned-bundle)";
    return report_error(global, e);
  }
  auto matrix = compat::load_active_matrix();
  if (!matrix) {
    return report_error(global, matrix.error());
  }
  const bundle::Trust trust = trust_of(options, *matrix);
  auto bom = bundle::verify(options.path, trust);
  if (!bom) {
    return report_error(global, bom.error());
  }
  log::info("bundle {} (row {}): all {} files{} match the bill of materials, which the matrix in use ({}) agrees with", options.path, bom->row,
            bom->artifacts.size(), bom->images_included ? fmt::format(" and {} image archives (every blob)", bom->images.size()) : std::string(),
            matrix->source);
  return k_exit_ok;
}

int cmd_bundle_list(const GlobalOptions& global, const BundleOptions& options)
{
  auto bom = bundle::read_bom(options.path);
  if (!bom) {
    return report_error(global, bom.error());
  }
  auto sha = bundle::bom_sha256(options.path);
  if (!sha) {
    return report_error(global, sha.error());
  }
  print_bom(global, *bom, *sha);
  return k_exit_ok;
}

int cmd_bundle_push(const GlobalOptions& global, const BundleOptions& options)
{
  auto matrix = compat::load_active_matrix();
  if (!matrix) {
    return report_error(global, matrix.error());
  }
  const bundle::Trust trust = trust_of(options, *matrix);
  // An archive is opened in a private scratch directory, removed when done.
  std::error_code ec;
  const std::filesystem::path scratch = std::filesystem::temp_directory_path() / fmt::format("mlplat-push-{}", ::getpid());
  std::filesystem::create_directories(scratch, ec);
  std::filesystem::permissions(scratch, std::filesystem::perms::owner_all, ec);
  struct Remove {
    std::filesystem::path p;
    ~Remove() { std::error_code e; std::filesystem::remove_all(p, e); }
  } remove_scratch{scratch};
  auto dir = bundle::open_dir(options.path, scratch / "bundle");
  if (!dir) {
    return report_error(global, dir.error());
  }
  auto bom = bundle::verify(*dir, trust);
  if (!bom) {
    return report_error(global, bom.error());
  }
  auto pushed = bundle::push_images(*bom, *dir, {options.site, options.site_ca, options.site_credentials});
  if (!pushed) {
    return report_error(global, pushed.error());
  }
  const auto skipped = std::count_if(pushed->begin(), pushed->end(), [](const bundle::PushedImage& p) { return p.skipped; });
  log::info("site registry {}: {} images pushed, {} already there at the same digest", options.site, pushed->size() - size_t(skipped), skipped);
  return k_exit_ok;
}

} // namespace mlplat::app
