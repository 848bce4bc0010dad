#include "phases/phases.hpp"
#include "phases/footprint.hpp"

#include "assets/assets.hpp"
#include "util/sha256.hpp"
#include "util/text.hpp"

#include <fmt/core.h>

namespace mlplat::phases {

using namespace workflow;

namespace {

using transport::Command;
using transport::Privilege;

// The remote paths the phase writes.
constexpr const char* k_sysctl_file = k_sysctl_dropin;
constexpr const char* k_modules_file = k_modules_dropin;

// "key = value" lines of a sysctl file, comments skipped.
Result<std::vector<std::pair<std::string, std::string>>> sysctl_pairs(const std::string& text)
{
  std::vector<std::pair<std::string, std::string>> out;
  std::istringstream in(text);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    const auto t = std::string(text::trim(line));
    if (t.empty() || t[0] == '#') {
      continue;
    }
    const auto eq = t.find('=');
    if (eq == std::string::npos) {
      return fail(ErrorCode::config_invalid, fmt::format("manifests/host/sysctl.conf:{}: '{}' is not 'key = value'", n, t));
    }
    out.emplace_back(std::string(text::trim(t.substr(0, eq))), std::string(text::trim(t.substr(eq + 1))));
  }
  return out;
}

std::vector<std::string> module_names(const std::string& text)
{
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    const auto t = std::string(text::trim(line));
    if (!t.empty() && t[0] != '#') {
      out.push_back(t);
    }
  }
  return out;
}

Step sysctl_step(transport::Fleet& fleet, const std::string& content, const std::vector<std::pair<std::string, std::string>>& pairs)
{
  // Converged when the drop-in file is ours and every value is live.
  std::string script = fmt::format("[ -f {0} ] && cmp -s - {0} || exit 1\n", k_sysctl_file);
  for (const auto& [key, value] : pairs) {
    script += fmt::format("[ \"$(sysctl -n {})\" = {} ] || exit 1\n", key, text::shell_quote(value));
  }
  script += "exit 0\n";
  Step s;
  s.name = "sysctl";
  s.digest = sha256_hex(content);
  // A fresh Command per call: its stdin (the wanted file) is consumed by each run.
  auto check = [script, content] { return read_only("check the sysctl drop-in and live values", script, content); };
  s.check = [&fleet, check](size_t h) { return converged(fleet, h, check()); };
  s.apply = [&fleet, content](size_t h) -> Status {
    TRY(fleet.upload_bytes(h, content, k_sysctl_file, 0644, Privilege::root));
    TRY(fleet.run(h, mutating("apply the sysctl drop-in", fmt::format("sysctl -q -p {}", k_sysctl_file))));
    return {};
  };
  s.verify = [&fleet, check](size_t h) -> Status {
    TRY_ASSIGN(const bool ok, converged(fleet, h, check()));
    return ok ? Status{} : fail(ErrorCode::failed, "the sysctl values did not take effect after sysctl -p");
  };
  return s;
}

Step modules_step(transport::Fleet& fleet, const std::string& content, const std::vector<std::string>& modules)
{
  // Loaded (in /proc/modules, or /sys/module: which also lists built-in ones with parameters) or built
  // into the kernel (modules.builtin).
  std::string script = fmt::format("[ -f {0} ] && cmp -s - {0} || exit 1\nb=/lib/modules/$(uname -r)/modules.builtin\n", k_modules_file);
  for (const auto& m : modules) {
    script += fmt::format("[ -d /sys/module/{0} ] || grep -q '^{0} ' /proc/modules 2>/dev/null || grep -q '/{0}\\.ko' \"$b\" 2>/dev/null || exit 1\n", m);
  }
  script += "exit 0\n";
  Step s;
  s.name = "kernel-modules";
  s.digest = sha256_hex(content);
  auto check = [script, content] { return read_only("check the kernel modules", script, content); };
  s.check = [&fleet, check](size_t h) { return converged(fleet, h, check()); };
  s.apply = [&fleet, content, modules](size_t h) -> Status {
    TRY(fleet.upload_bytes(h, content, k_modules_file, 0644, Privilege::root));
    TRY(fleet.run(h, mutating("load the kernel modules", "modprobe -a " + text::shell_join(modules))));
    return {};
  };
  s.verify = [&fleet, check](size_t h) -> Status {
    TRY_ASSIGN(const bool ok, converged(fleet, h, check()));
    return ok ? Status{} : fail(ErrorCode::failed, "a kernel module is still missing after modprobe");
  };
  return s;
}

Step swap_step(transport::Fleet& fleet)
{
  // Converged: no active swap, no swap line left active in /etc/fstab (it would return at boot).
  const std::string check_script =
    "[ \"$(awk 'NR > 1' /proc/swaps | wc -l)\" -eq 0 ] || exit 1\n"
    "[ -f /etc/fstab ] && grep -Eq '^[[:space:]]*[^#[:space:]]+[[:space:]]+[^[:space:]]+[[:space:]]+swap[[:space:]]' /etc/fstab && exit 1\n"
    "exit 0\n";
  Step s;
  s.name = "swap-off";
  s.digest = sha256_hex(check_script);
  auto check = [check_script] { return read_only("check that swap is off and stays off", check_script); };
  s.check = [&fleet, check](size_t h) { return converged(fleet, h, check()); };
  s.apply = [&fleet](size_t h) -> Status {
    TRY(fleet.run(h, mutating("turn swap off now and at boot (swapoff -a; comment out swap in /etc/fstab)",
                              "swapoff -a\n"
                              "if [ -f /etc/fstab ]; then\n"
                              "  sed -i.mlplat-backup -E 's@^([[:space:]]*[^#[:space:]]+[[:space:]]+[^[:space:]]+[[:space:]]+swap[[:space:]].*)$@# "
                              "swap off for the kubelet (mlplat): \\1@' /etc/fstab\n"
                              "fi\n")));
    return {};
  };
  s.verify = [&fleet, check](size_t h) -> Status {
    TRY_ASSIGN(const bool ok, converged(fleet, h, check()));
    return ok ? Status{} : fail(ErrorCode::failed, "swap is still on after swapoff -a");
  };
  return s;
}

// Converged when what the preflight reported as fixed-by-install passes now; never applies anything.
Step recheck_step(transport::Fleet& fleet, const Recheck& recheck)
{
  Step s;
  s.name = "preflight-recheck";
  s.digest = sha256_hex("preflight-recheck");
  s.check = [&fleet, recheck](size_t h) -> Result<bool> {
    if (!fleet.dry_run()) {
      TRY(recheck(h));
    }
    return true;
  };
  s.apply = [](size_t) -> Status { return {}; };
  return s;
}

Result<Phase> prepare_phase(transport::Fleet& fleet, const std::vector<size_t>& hosts, Recheck recheck)
{
  TRY_ASSIGN(const std::string sysctl, assets::read("manifests/host/sysctl.conf"));
  TRY_ASSIGN(const auto pairs, sysctl_pairs(sysctl));
  TRY_ASSIGN(const std::string modules, assets::read("manifests/host/modules.conf"));
  const auto names = module_names(modules);
  Phase p;
  p.name = "prepare";
  p.summary = "sysctls, kernel modules, swap off";
  p.hosts = hosts;
  p.deadline = std::chrono::seconds(300);
  p.steps = [&fleet, sysctl, pairs, modules, names, recheck](size_t) {
    // The modules first: the bridge sysctls exist only once br_netfilter is loaded.
    return std::vector<Step>{modules_step(fleet, modules, names), sysctl_step(fleet, sysctl, pairs), swap_step(fleet),
                             recheck_step(fleet, recheck)};
  };
  return p;
}

} // namespace

PhaseSpec prepare()
{
  PhaseSpec spec;
  spec.path = "host/prepare";
  spec.summary = "sysctls, kernel modules, swap off; the preflight findings it fixes judged again";
  spec.needs_bundle = false;
  spec.build = [](Context& ctx) -> Result<Phase> { return prepare_phase(ctx.fleet, ctx.all_hosts(), ctx.recheck); };
  return spec;
}

} // namespace mlplat::phases
