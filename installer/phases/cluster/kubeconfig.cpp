#include "phases/phases.hpp"

#include "util/fs.hpp"
#include "util/sha256.hpp"
#include "util/text.hpp"

#include <fmt/core.h>

namespace mlplat::phases {

using namespace workflow;

namespace {

Phase kubeconfig_phase(transport::Fleet& fleet, size_t first_control_plane, std::filesystem::path local)
{
  Phase p;
  p.name = "kubeconfig";
  p.summary = fmt::format("the cluster administrator's kubeconfig to {} (0600)", local.string());
  p.hosts = {first_control_plane};
  p.deadline = std::chrono::seconds(120);
  p.steps = [&fleet, local](size_t) {
    Step s;
    s.name = "admin-conf";
    s.digest = sha256_hex(local.string());
    // Converged when the local copy has the host's content (compared by hash) and mode 0600.
    auto same = [&fleet, local](size_t h) -> Result<bool> {
      TRY_ASSIGN(const auto r, fleet.exec(h, read_only("hash admin.conf", fmt::format("[ -f {0} ] || exit 1\nsha256sum < {0}", k_admin_kubeconfig))));
      if (!r.ok()) {
        return false;
      }
      std::error_code ec;
      if (!std::filesystem::exists(local, ec) ||
          (std::filesystem::status(local, ec).permissions() & std::filesystem::perms::all) != (std::filesystem::perms::owner_read | std::filesystem::perms::owner_write)) {
        return false;
      }
      TRY_ASSIGN(const std::string have, sha256_file_hex(local));
      return text::split(std::string(text::trim(r.out)), ' ').front() == have;
    };
    s.check = same;
    s.apply = [&fleet, local](size_t h) -> Status {
      auto c = read_only("read admin.conf (it holds the administrator's key: never logged)", fmt::format("cat {}", k_admin_kubeconfig));
      c.sensitive = transport::Sensitive::yes;
      if (fleet.dry_run()) {
        // A plan writes nothing on the operator machine either.
        auto planned = mutating(fmt::format("copy {} to {} (0600)", k_admin_kubeconfig, local.string()), "");
        planned.sensitive = transport::Sensitive::yes;
        TRY(fleet.exec(h, planned));
        return {};
      }
      TRY_ASSIGN(const auto r, fleet.run(h, c));
      TRY(fs::write_file_atomic(local, r.out, 0600));
      return {};
    };
    s.verify = [same](size_t h) -> Status {
      TRY_ASSIGN(const bool ok, same(h));
      return ok ? Status{} : fail(ErrorCode::failed, "the fetched kubeconfig differs from the control plane's admin.conf");
    };
    return std::vector<Step>{s};
  };
  return p;
}

} // namespace

PhaseSpec kubeconfig()
{
  PhaseSpec spec;
  spec.path = "cluster/kubeconfig";
  spec.summary = "the administrator's kubeconfig to the state directory (0600)";
  spec.build = [](Context& ctx) -> Result<Phase> { return kubeconfig_phase(ctx.fleet, ctx.first_control_plane, ctx.state_dir / "kubeconfig"); };
  return spec;
}

} // namespace mlplat::phases
