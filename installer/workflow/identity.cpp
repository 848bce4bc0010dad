#include "workflow/identity.hpp"

#include "workflow/steps.hpp"
#include "util/log.hpp"
#include "util/text.hpp"

#include <fmt/core.h>

namespace mlplat::workflow {

transport::Command identity_command()
{
  auto c = read_only("read the host's identity (machine-id, host keys)",
                     "printf 'machine-id=%s host-keys=%s\\n' \"$(cat /etc/machine-id 2>/dev/null)\" "
                     "\"$(cat /etc/ssh/ssh_host_*_key.pub 2>/dev/null | cut -d' ' -f1,2 | sort | sha256sum | cut -c1-16)\"\n");
  c.deadline = std::chrono::seconds(20);
  return c;
}

std::string parse_identity(const std::string& output)
{
  for (const auto& line : text::split(output, '\n')) {
    if (line.rfind("machine-id=", 0) == 0) {
      return std::string(text::trim(line));
    }
  }
  return {};
}

Status adopt_host_identities(Context& ctx, bool tolerate_unreachable)
{
  auto& fleet = ctx.fleet;
  const auto read = fleet.for_each<std::string>([&](size_t h) -> Result<std::string> {
    fleet.set_label(h, "identity");
    TRY_ASSIGN(const auto r, fleet.run(h, identity_command()));
    const std::string id = parse_identity(r.out);
    if (id.empty()) {
      return fail(ErrorCode::failed, fmt::format("{}: the host's identity could not be read (it printed '{}')", fleet.endpoint(h).name,
                                                 text::trim(r.out)));
    }
    return id;
  });
  std::vector<Result<std::string>> failed;
  for (size_t h = 0; h < read.size(); ++h) {
    const std::string& name = ctx.cluster.hosts[h].name;
    if (!read[h]) {
      const auto code = read[h].error().code;
      const bool access = code == ErrorCode::connect_failed || code == ErrorCode::auth_failed || code == ErrorCode::host_key_changed ||
                          code == ErrorCode::host_key_unknown || code == ErrorCode::sudo_failed;
      if (!(tolerate_unreachable && access)) {
        failed.push_back(read[h]);
      }
      continue;
    }
    const std::string known = ctx.journal.identity(name);
    TRY_ASSIGN(const bool changed, ctx.journal.adopt_identity(name, *read[h], !ctx.dry_run));
    if (changed) {
      log::write(log::Level::warn, name,
                 fmt::format("this is not the machine the journal in {} knows ({}; now {}): reprovisioned or replaced, it is "
                             "installed as a new host, none of its earlier steps is trusted",
                             ctx.state_dir.string(), known, *read[h]));
    }
  }
  return failed.empty() ? Status{} : fleet.summarize(failed);
}

} // namespace mlplat::workflow
