#include "doctor/engine.hpp"

#include "util/log.hpp"
#include "util/text.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <chrono>

namespace mlplat::doctor {

namespace {

double now_epoch()
{
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string status_for(Verdict verdict, Severity severity)
{
  switch (verdict) {
  case Verdict::pass: return "pass";
  case Verdict::skip: return "skip";
  case Verdict::warn: return "warning";
  case Verdict::fail: return to_string(severity);
  }
  return "?";
}

// Why a host's fact-based checks could not run.
std::string not_checked_reason(const HostState& h)
{
  if (h.connect_error) {
    return "not checked: host not connected";
  }
  if (h.facts_error) {
    return "not checked: facts not gathered (SSH-007)";
  }
  return "not checked";
}

} // namespace

size_t Report::count(const std::string& status) const
{
  return static_cast<size_t>(std::count_if(findings.begin(), findings.end(), [&](const Finding& f) { return f.status == status; }));
}

int Report::exit_code() const
{
  if (!has_errors()) {
    return k_exit_ok;
  }
  int code = k_exit_preflight;
  for (const auto& h : hosts) {
    if (h.access_error) {
      Error e;
      e.code = *h.access_error;
      const int host_code = exit_code_for(e);
      if (host_code == k_exit_host_key || (host_code == k_exit_connect && code != k_exit_host_key)) {
        code = host_code;
      }
    }
  }
  return code;
}

size_t Report::ignored() const
{
  return static_cast<size_t>(std::count_if(findings.begin(), findings.end(), [](const Finding& f) { return f.ignored; }));
}

Status validate_ignore(const Catalogue& catalogue, const std::set<std::string>& ignore)
{
  std::vector<std::string> ids;
  for (const auto& c : catalogue.checks) {
    ids.push_back(c.id);
  }
  for (const auto& id : ignore) {
    if (id == "all") {
      continue;
    }
    if (id == "SSH-002") {
      return fail(ErrorCode::usage, "SSH-002 (host key trusted) cannot be ignored: a changed or unverified host key is a security stop",
                  "verify the host's key and fix known_hosts");
    }
    if (catalogue.find(id) == nullptr) {
      const auto guess = text::did_you_mean(id, ids);
      return fail(ErrorCode::usage, fmt::format("--ignore: no check with id '{}'", id),
                  guess ? fmt::format("did you mean {}?", *guess) : "see docs/doctor.md for the ids");
    }
  }
  return {};
}

facts::ProbeInputs probe_inputs(const Catalogue& catalogue, const config::Cluster& cluster)
{
  facts::ProbeInputs inputs;
  inputs.modules = catalogue.param_values("modules_available", "modules");
  if (std::find(inputs.modules.begin(), inputs.modules.end(), "br_netfilter") == inputs.modules.end()) {
    inputs.modules.push_back("br_netfilter"); // bridge_netfilter judges it
  }
  inputs.ports = catalogue.param_values("ports_free", "controlPlane");
  for (const auto& port : catalogue.param_values("ports_free", "worker")) {
    if (std::find(inputs.ports.begin(), inputs.ports.end(), port) == inputs.ports.end()) {
      inputs.ports.push_back(port);
    }
  }
  inputs.disk_paths = catalogue.param_values("disk_free", "paths");
  inputs.disk_paths.push_back(cluster.storage.base_path);
  inputs.profile = cluster.profile;
  return inputs;
}

namespace {

// Connects to host `i`, checks sudo and runs the probe, recording in `st` what worked. Read-only.
void gather_one(transport::Fleet& fleet, size_t i, HostState& st, const Result<std::string>& script, const Options& options)
{
  if (auto s = fleet.connect(i); !s) {
    st.connect_error = s.error();
    return;
  }
  bool root = st.host->ssh.user == "root";
  if (!root) {
    transport::Command sudo;
    sudo.script = "true";
    sudo.description = "check passwordless sudo (sudo -n true)";
    sudo.privilege = transport::Privilege::root;
    sudo.deadline = std::chrono::seconds(15);
    auto r = fleet.exec(i, sudo);
    if (!r) {
      if (r.error().code == ErrorCode::connect_failed) {
        st.connect_error = r.error();
        return;
      }
      st.sudo_error = r.error();
    } else {
      root = r->ok();
    }
  }
  if (!script) {
    st.facts_error = script.error();
    return;
  }
  transport::Command probe;
  probe.script = *script;
  probe.description = "gather host facts (read-only)";
  probe.privilege = root ? transport::Privilege::root : transport::Privilege::user;
  probe.deadline = options.deadline;
  const double start = now_epoch();
  auto r = fleet.run(i, probe);
  const double end = now_epoch();
  if (!r) {
    st.facts_error = r.error();
    return;
  }
  st.facts = facts::parse(st.host->name, r->out);
  st.local_mid_epoch = (start + end) / 2;
}

} // namespace

std::vector<HostState> gather(const config::Cluster& cluster, transport::Fleet& fleet, const Catalogue& catalogue,
                              const Options& options)
{
  std::vector<HostState> states(cluster.hosts.size());
  for (size_t i = 0; i < states.size(); ++i) {
    states[i].host = &cluster.hosts[i];
  }
  const auto script = facts::probe_script(probe_inputs(catalogue, cluster));
  std::vector<std::string> names;
  for (const auto& h : cluster.hosts) {
    names.push_back(h.name);
  }
  Progress progress("doctor", names, options.deadline, options.progress);
  fleet.for_each<bool>([&](size_t i) -> Result<bool> {
    HostState& st = states[i];
    gather_one(fleet, i, st, script, options);
    progress.done(i, st.connect_error ? "not connected" : st.facts_error ? "facts not gathered" : "checked");
    return true;
  });
  return states;
}

Report evaluate(const Context& ctx, const Catalogue& catalogue, const Options& options)
{
  Report report;
  report.cluster = ctx.cluster->name;
  report.profile = ctx.cluster->profile;
  report.kubernetes = ctx.kubernetes;
  for (const auto& h : ctx.hosts) {
    ReportHost rh{h.host->name, h.host->address, h.host->role, {}};
    if (h.connect_error) {
      rh.access_error = h.connect_error->code;
    }
    report.hosts.push_back(std::move(rh));
  }
  const bool ignore_all = options.ignore.count("all") != 0;
  auto add = [&](const CheckSpec& spec, const std::string& host, const Outcome& outcome) {
    const bool fixed_by_install = outcome.fixable && !spec.fixed_by.empty() && outcome.verdict != Verdict::pass &&
                                  outcome.verdict != Verdict::skip;
    Finding f{spec.id, spec.title, host, fixed_by_install ? "fixed-by-install" : status_for(outcome.verdict, spec.severity),
              outcome.observed, {}, false};
    if (f.status != "pass" && f.status != "skip") {
      f.fix = spec.fix;
    }
    if ((f.status == "error" || f.status == "warning") && options.own_state.count(host) != 0 &&
        options.own_state.at(host).count(spec.id) != 0) {
      f.status = "pass";
      f.observed += " (this cluster's own state: install's journal records it)";
      f.fix.clear();
    }
    if (f.status == "error" && spec.id != "SSH-002" && (ignore_all || options.ignore.count(spec.id) != 0)) {
      f.status = "warning";
      f.ignored = true;
    }
    report.findings.push_back(std::move(f));
  };
  for (const auto& spec : catalogue.checks) {
    if (!spec.runs_for(options.command)) {
      continue;
    }
    const ProbeInfo* probe = find_probe(spec.probe);
    if (probe->total != nullptr) {
      if (spec.profiles.empty() || std::find(spec.profiles.begin(), spec.profiles.end(), ctx.cluster->profile) != spec.profiles.end()) {
        add(spec, "", probe->total(ctx, spec.params));
      }
      continue;
    }
    const std::vector<Outcome> compared = probe->compare != nullptr ? probe->compare(ctx, spec.params) : std::vector<Outcome>();
    for (size_t i = 0; i < ctx.hosts.size(); ++i) {
      const HostState& h = ctx.hosts[i];
      if (!spec.applies(h.host->role, ctx.cluster->profile)) {
        continue;
      }
      if (probe->needs_facts && !h.facts) {
        add(spec, h.host->name, Outcome{Verdict::skip, not_checked_reason(h)});
        continue;
      }
      add(spec, h.host->name, probe->host != nullptr ? probe->host(ctx, i, spec.params) : compared.at(i));
    }
  }
  return report;
}

namespace {

// The context checks are judged in, without hosts yet.
Context context_for(const config::Cluster& cluster, const compat::Matrix& matrix, const compat::Row& row)
{
  Context ctx;
  ctx.cluster = &cluster;
  ctx.matrix = &matrix;
  ctx.row = &row;
  ctx.kubernetes = fmt::format("{}.{}", row.kubernetes.major, row.kubernetes.minor);
  return ctx;
}

} // namespace

Status recheck_fixed(const config::Cluster& cluster, const compat::Matrix& matrix, const compat::Row& row, transport::Fleet& fleet,
                     size_t i, const Catalogue& catalogue, const Options& options)
{
  Context ctx = context_for(cluster, matrix, row);
  ctx.hosts.resize(cluster.hosts.size());
  for (size_t k = 0; k < cluster.hosts.size(); ++k) {
    ctx.hosts[k].host = &cluster.hosts[k];
  }
  HostState& st = ctx.hosts[i];
  gather_one(fleet, i, st, facts::probe_script(probe_inputs(catalogue, cluster)), options);
  const std::string& name = cluster.hosts[i].name;
  for (const auto& e : {st.connect_error, st.sudo_error, st.facts_error}) {
    if (e) {
      return fail(e->code, fmt::format("{}: the checks install fixes could not be judged again after prepare: {}", name, e->message), e->fix);
    }
  }
  const bool ignore_all = options.ignore.count("all") != 0;
  std::vector<std::string> still;
  std::vector<std::string> fixes;
  for (const auto& spec : catalogue.checks) {
    const ProbeInfo* probe = find_probe(spec.probe);
    if (spec.fixed_by.empty() || probe->host == nullptr || !spec.runs_for(options.command) || !spec.applies(cluster.hosts[i].role, cluster.profile) || ignore_all ||
        options.ignore.count(spec.id) != 0) {
      continue;
    }
    const Outcome outcome = probe->host(ctx, i, spec.params);
    if (outcome.verdict == Verdict::fail || outcome.verdict == Verdict::warn) {
      still.push_back(fmt::format("{} ({}): {}", spec.id, spec.title, outcome.observed));
      fixes.push_back(fmt::format("{}: {}", spec.id, spec.fix));
    }
  }
  if (still.empty()) {
    return {};
  }
  return fail(ErrorCode::preflight_failed,
              fmt::format("{}: after prepare, {} still fail{}: {}", name, still.size() == 1 ? "a check install fixes" : "checks install fixes",
                          still.size() == 1 ? "s" : "", text::join(still, "; ")),
              text::join(fixes, "; ") + " (then run install again)");
}

Report run(const config::Cluster& cluster, const compat::Matrix& matrix, const compat::Row& row, transport::Fleet& fleet,
           const Catalogue& catalogue, const Options& options)
{
  Context ctx = context_for(cluster, matrix, row);
  ctx.platform = options.platform;
  ctx.hosts = gather(cluster, fleet, catalogue, options);
  return evaluate(ctx, catalogue, options);
}

} // namespace mlplat::doctor
