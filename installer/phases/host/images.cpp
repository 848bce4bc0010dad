// host/images: with a bundle that carries its images and no site registry, each host gets the images
// it runs loaded into containerd by the bundle's ctr, so that it pulls nothing from a registry. An
// image containerd already has at the bill of materials' digest is skipped; each archive arrives with
// its sha256 checked by the transport, is imported, removed, and the image's digest then checked.
#include "phases/phases.hpp"

#include "render/references.hpp"
#include "util/sha256.hpp"
#include "util/text.hpp"

#include <fmt/core.h>

#include <set>

namespace mlplat::phases {

using namespace workflow;

namespace {

using transport::Privilege;

// Where archives wait on a host between their upload and their import.
constexpr const char* k_image_dir = "/var/lib/mlplat/images";

// The control plane's own images (kubeadm's static pods): loaded on control planes only.
bool control_plane_only(const std::string& ref)
{
  const auto r = render::parse_image(ref);
  if (!r) {
    return false;
  }
  const std::string repo = r->path.substr(r->path.rfind('/') + 1);
  return repo == "kube-apiserver" || repo == "kube-controller-manager" || repo == "kube-scheduler" || repo == "etcd";
}

// "ref digest" per line, the images host `h` needs.
std::vector<const bundle::BomImage*> needed(const Context& ctx, size_t h)
{
  std::vector<const bundle::BomImage*> out;
  for (const auto& image : ctx.bom->images) {
    if (image.carried() && (ctx.cluster.hosts[h].role == config::Role::control_plane || !control_plane_only(image.ref))) {
      out.push_back(&image);
    }
  }
  return out;
}

std::string expected_lines(const std::vector<const bundle::BomImage*>& images)
{
  std::string out;
  for (const auto* i : images) {
    out += render::parse_image(i->ref) ? render::parse_image(i->ref)->full() : i->ref;
    out += " " + i->digest + "\n";
  }
  return out;
}

// Lists "ref digest" of containerd's k8s.io images (ctr's REF and DIGEST columns).
const char* k_list = "/usr/local/bin/ctr -n k8s.io images ls 2>/dev/null | awk 'NR > 1 {print $1\" \"$3}'\n";

// Exit 0 when every line of stdin ("ref digest") is among containerd's images, 1 otherwise.
std::string check_script()
{
  return fmt::format("have=$({}) || exit 2\n"
                     "while read -r ref digest; do\n"
                     "  printf '%s\\n' \"$have\" | grep -qxF \"$ref $digest\" || exit 1\n"
                     "done\nexit 0\n",
                     text::trim(k_list));
}

Result<Phase> images_phase(transport::Fleet& fleet, const Context& in)
{
  Phase p;
  p.name = "images";
  const bool carried = std::any_of(in.bom->images.begin(), in.bom->images.end(), [](const bundle::BomImage& i) { return i.carried(); });
  p.summary = carried ? "the bundle's container images loaded into containerd (ctr import, digests checked)"
                      : "none: the bundle carries no images (hosts pull from their registries or mirrors)";
  p.hosts = in.all_hosts();
  p.deadline = std::chrono::seconds(1800);
  p.steps = [&fleet, &in, carried](size_t host) {
    std::vector<Step> steps;
    if (!carried) {
      return steps;
    }
    const auto images = needed(in, host);
    const std::string expected = expected_lines(images);
    Step s;
    s.name = "load";
    s.digest = sha256_hex(expected);
    s.check = [&fleet, expected](size_t h) {
      return converged(fleet, h, read_only("check containerd's images against the bundle's digests", check_script(), expected));
    };
    s.apply = [&fleet, &in, images](size_t h) -> Status {
      TRY_ASSIGN(const auto listed, fleet.run(h, read_only("list containerd's images", k_list)));
      std::set<std::string> have;
      for (const auto& line : text::split(listed.out, '\n')) {
        have.insert(std::string(text::trim(line)));
      }
      for (const auto* image : images) {
        const auto ref = render::parse_image(image->ref);
        const std::string full = ref ? ref->full() : image->ref;
        if (have.count(full + " " + image->digest) != 0) {
          continue;
        }
        const std::string remote = fmt::format("{}/{}", k_image_dir, image->file.substr(image->file.rfind('/') + 1));
        TRY(fleet.run(h, mutating("make the images directory", fmt::format("install -d -m 0700 {}", k_image_dir))));
        TRY(fleet.upload_file(h, in.bundle_dir / image->file, remote, 0600, Privilege::root));
        TRY(fleet.run(h, mutating(fmt::format("import {} into containerd", image->ref),
                                  fmt::format("set -e\n/usr/local/bin/ctr -n k8s.io images import {q}\nrm -f {q}\n", fmt::arg("q", text::shell_quote(remote))))));
      }
      return {};
    };
    s.verify = [&fleet, expected](size_t h) -> Status {
      TRY_ASSIGN(const bool ok, converged(fleet, h, read_only("check containerd's images against the bundle's digests", check_script(), expected)));
      return ok ? Status{}
                : fail(ErrorCode::failed, "after the import, containerd does not have every image of the bundle at its digest",
                       "look at `ctr -n k8s.io images ls` on the host; recreate the bundle if its archives do not match (mlplat bundle verify)");
    };
    steps.push_back(s);
    return steps;
  };
  return p;
}

} // namespace

PhaseSpec images()
{
  PhaseSpec spec;
  spec.path = "host/images";
  spec.summary = "the bundle's container images loaded into containerd on every host (when it carries them and no site registry is set)";
  spec.skip_if = [](const Context& ctx) -> std::string {
    return ctx.cluster.registry.site.url.empty() ? std::string() : "spec.registry.site is set: the hosts pull every image from it";
  };
  spec.build = [](Context& ctx) -> Result<Phase> { return images_phase(ctx.fleet, ctx); };
  return spec;
}

} // namespace mlplat::phases
