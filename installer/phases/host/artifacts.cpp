#include "phases/phases.hpp"

#include "bundle/bundle.hpp"
#include "util/sha256.hpp"
#include "util/text.hpp"

#include <fmt/core.h>

namespace mlplat::phases {

using namespace workflow;

namespace {

std::set<std::string> wanted_on(size_t host, const Context& in)
{
  return host == in.first_control_plane ? std::set<std::string>{} : node_artifacts();
}

Phase artifacts_phase(transport::Fleet& fleet, const std::vector<size_t>& hosts, const Context& in)
{
  Phase p;
  p.name = "artifacts";
  p.summary = in.bundle_url.empty() ? fmt::format("the bundle of row {} on every host, verified there", in.bom->row)
                                     : fmt::format("the bundle of row {} fetched by every host from {}, verified there", in.bom->row, in.bundle_url);
  p.hosts = hosts;
  p.deadline = std::chrono::seconds(1800);
  p.steps = [&fleet, &in](size_t host) {
    const auto only = wanted_on(host, in);
    const std::string sums = bundle::sums_for(*in.bom, only);
    const std::string dir = remote_bundle_dir(in.bom->row);
    Step s;
    s.name = "bundle";
    s.digest = sha256_hex(sums);
    // Converged when the host's copy lists exactly these files and every one checks out.
    const std::string script = fmt::format("cd {} 2>/dev/null || exit 1\ncmp -s - SHA256SUMS || exit 1\n"
                                           "sha256sum --check --strict --quiet SHA256SUMS >/dev/null 2>&1 || exit 1\nexit 0\n",
                                           text::shell_quote(dir));
    s.check = [&fleet, script, sums](size_t h) { return converged(fleet, h, read_only("check the host's copy of the bundle", script, sums)); };
    s.apply = [&fleet, &in, only, dir](size_t h) {
      return in.bundle_url.empty() ? bundle::push_host(fleet, h, in.bundle_dir, *in.bom, dir, only)
                                   : bundle::fetch_host(fleet, h, *in.bom, in.bundle_url, dir, only);
    };
    s.verify = [&fleet, script, sums](size_t h) -> Status {
      TRY_ASSIGN(const bool ok, converged(fleet, h, read_only("check the host's copy of the bundle", script, sums)));
      return ok ? Status{} : fail(ErrorCode::failed, "the host's copy of the bundle does not check out after the upload");
    };
    return std::vector<Step>{s};
  };
  return p;
}

} // namespace

PhaseSpec artifacts()
{
  PhaseSpec spec;
  spec.path = "host/artifacts";
  spec.summary = "the bundle on every host, verified there";
  spec.build = [](Context& ctx) -> Result<Phase> { return artifacts_phase(ctx.fleet, ctx.all_hosts(), ctx); };
  return spec;
}

} // namespace mlplat::phases
