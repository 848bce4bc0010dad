#include "workflow/command.hpp"

#include "render/host.hpp"

#include "compat/gate.hpp"
#include "config/load.hpp"
#include "config/topology.hpp"
#include "doctor/catalogue.hpp"
#include "doctor/engine.hpp"
#include "workflow/discover.hpp"
#include "workflow/identity.hpp"
#include "workflow/remote_lock.hpp"
#include "util/fs.hpp"
#include "util/log.hpp"
#include "util/text.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <iostream>

namespace mlplat::workflow {

namespace sfs = std::filesystem;

namespace {

// A directory of its own for what a plan extracts and renders, removed when the plan ends.
class Scratch {
public:
  ~Scratch()
  {
    std::error_code ec;
    if (!m_path.empty()) {
      sfs::remove_all(m_path, ec);
    }
  }
  Status create()
  {
    std::string pattern = (sfs::temp_directory_path() / "mlplat-plan.XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      return fail(ErrorCode::io, "cannot create a temporary directory for the plan: " + std::string(std::strerror(errno)),
                  "set TMPDIR to a writable directory");
    }
    m_path = pattern;
    return {};
  }
  const sfs::path& path() const { return m_path; }

private:
  sfs::path m_path;
};

// The matrix gate on the cluster file, before any connection. Prints refusals (exit 3).
Result<const compat::Row*> config_gate(const compat::Matrix& matrix, const config::Cluster& cluster, bool allow_preview, bool json)
{
  const auto gate = compat::check_config(matrix, cluster, compat::GateOptions{allow_preview});
  if (!gate.passed()) {
    if (!json) {
      std::cout << compat::render(gate, false); // with --output json the error's children carry the verdicts
    }
    return tl::unexpected(gate.to_status().error());
  }
  for (const auto& f : gate.findings) {
    if (f.level == compat::Level::warning) {
      log::warn("[{}] row {}: {}", f.rule, f.row, f.reason);
    }
  }
  log::info("versions: row {} (Kubernetes {}) of {}", gate.row->id, gate.row->kubernetes.str(), matrix.source);
  return gate.row;
}

// The `mlplat bundle create` command line for `row`, runnable as printed: the row, this run's data
// flags, the artifacts the row has no checksum for named in --accept-unpinned, an archive named after the row.
std::string bundle_create_command(const Request& request, const compat::Row& row)
{
  std::vector<std::string> argv{"mlplat"};
  argv.insert(argv.end(), request.global_args.begin(), request.global_args.end());
  argv.insert(argv.end(), {"bundle", "create", "--row", row.id});
  std::vector<std::string> unpinned;
  for (const auto& a : row.artifacts) {
    if (a.verification == compat::Verification::unpinned) {
      unpinned.push_back(a.name);
    }
  }
  if (!unpinned.empty()) {
    argv.insert(argv.end(), {"--accept-unpinned", text::join(unpinned, ",")});
  }
  argv.insert(argv.end(), {"-o", row.id + ".tar.zst"});
  return text::shell_join(argv);
}

// The bundle given with --bundle, checked against the row: opened (an archive is extracted into
// `extract_to`), its bill of materials checked against the matrix and its signature against the
// cluster file's spec.bundle, every file re-hashed. Before any connection.
Result<bundle::Bom> open_bundle(const Request& request, const config::Cluster& cluster, const compat::Matrix& matrix,
                                const compat::Row& row, const sfs::path& extract_to, sfs::path& dir, const std::string& needed_by)
{
  log::debug("the bundle is needed by {}", needed_by);
  if (request.bundle.empty()) {
    return fail(ErrorCode::usage, fmt::format("the phases after 'prepare' install from a bundle of row {}, and none was given", row.id),
                fmt::format("create one with mlplat bundle create where the internet is reachable (--accept-unpinned takes the "
                            "first download of the artifacts the matrix has no checksum for: docs/bundle.md), then pass it "
                            "with --bundle {}.tar.zst; or run only the first phase (--only prepare):\n  {}",
                            row.id, bundle_create_command(request, row)));
  }
  TRY_ASSIGN(dir, bundle::open_dir(request.bundle, extract_to / "bundle"));
  // Trusted only as the matrix in use, the cluster file's allowed signers (or the operator's
  // acceptance of this very bill of materials) say; then every file re-hashed.
  bundle::Trust trust;
  trust.matrix = &matrix;
  trust.allowed_signers = cluster.bundle.allowed_signers.empty() ? std::string() : fs::expand_home(cluster.bundle.allowed_signers);
  trust.signer = cluster.bundle.signer;
  trust.accept_unsigned = request.accept_unsigned_bundle;
  TRY_ASSIGN(const bundle::Bom bom, bundle::verify(dir, trust));
  if (bom.row != row.id) {
    return fail(ErrorCode::usage, fmt::format("--bundle {} is for row {}, the cluster file selects row {}", request.bundle, bom.row, row.id),
                fmt::format("create the bundle of row {}:\n  {}", row.id, bundle_create_command(request, row)));
  }
  log::info("bundle {}: row {}, {} artifacts verified", request.bundle, bom.row, bom.artifacts.size());
  return bom;
}

Status check_bundle_url(const Request& request)
{
  if (request.bundle_url.empty()) {
    return {};
  }
  if (request.bundle.empty()) {
    return fail(ErrorCode::usage, "--bundle-url needs --bundle too: the hosts check what they fetch against its bill of materials",
                "give the bundle with --bundle and the URL its directory is served at with --bundle-url http(s)://...");
  }
  if (request.bundle_url.rfind("http://", 0) != 0 && request.bundle_url.rfind("https://", 0) != 0) {
    return fail(ErrorCode::usage, fmt::format("--bundle-url {} is not an http(s) URL", request.bundle_url),
                "give the bundle with --bundle and the URL its directory is served at with --bundle-url http(s)://...");
  }
  return {};
}

std::vector<transport::Endpoint> endpoints_of(const config::Cluster& cluster)
{
  std::vector<transport::Endpoint> out;
  for (const auto& h : cluster.hosts) {
    out.push_back(transport::endpoint_for(h));
  }
  return out;
}

// A phase with only the names of `spec` (its group and last part of the path) and its summary.
Phase named(const PhaseSpec& spec)
{
  Phase p;
  const auto slash = spec.path.find('/');
  p.group = slash == std::string::npos ? std::string() : spec.path.substr(0, slash);
  p.name = slash == std::string::npos ? spec.path : spec.path.substr(slash + 1);
  p.summary = spec.summary;
  return p;
}

// The paths of the phases that will run and need the bundle.
std::vector<std::string> needing_bundle(const CommandSpec& spec, const Context& ctx, const RunOptions& selection)
{
  std::vector<std::string> out;
  for (const auto& p : spec.phases) {
    const Phase probe = named(p);
    const bool left_out = p.skip_if && !p.skip_if(ctx).empty();
    if (p.needs_bundle && !left_out && deselected(probe, selection).empty()) {
      out.push_back(p.path);
    }
  }
  return out;
}

// Doctor on every host: nullopt-like error when it could not run; the report otherwise.
Result<doctor::Report> preflight(const CommandSpec& spec, const Request& request, Context& ctx, const doctor::Catalogue& catalogue,
                                 const Discovered& found)
{
  doctor::Options options;
  options.ignore = {request.ignore.begin(), request.ignore.end()};
  options.deadline = std::chrono::seconds(request.deadline_seconds);
  options.own_state = own_state(spec.phases, ctx.journal);
  // The nodes of the cluster that runs (another operator machine's, or a lost journal's): what
  // kubeadm left on them is the cluster's own, as it is for the hosts the journal knows.
  for (size_t h : found.members) {
    for (const auto& p : spec.phases) {
      for (const auto& [step, ids] : p.owns) {
        options.own_state[ctx.cluster.hosts[h].name].insert(ids.begin(), ids.end());
      }
    }
  }
  options.command = spec.name;
  if (ctx.render && ctx.render->requested_cpus > 0) {
    options.platform = doctor::PlatformDemand{ctx.render->requested_cpus, ctx.render->requested_memory_gib,
                                              fmt::format("Kubeflow Pipelines and Istio as rendered for profile {}", ctx.cluster.profile)};
  }
  TRY(doctor::validate_ignore(catalogue, options.ignore));
  log::info("checking {} host{} (read-only, at most {} at once, {} s deadline each)", ctx.fleet.size(), ctx.fleet.size() == 1 ? "" : "s",
            std::min(ctx.fleet.size(), request.concurrency), request.deadline_seconds);
  return doctor::run(ctx.cluster, *ctx.matrix, *ctx.row, ctx.fleet, catalogue, options);
}

// The cluster lock on the first control plane while this value holds it: released by release(), or
// when the run ends early however it ends (an error after it was taken).
class RemoteLock {
public:
  RemoteLock(transport::Fleet& fleet, std::string cluster, std::string holder, bool only_if_present)
    : m_fleet(fleet), m_cluster(std::move(cluster)), m_holder(std::move(holder)), m_only_if_present(only_if_present)
  {
  }
  ~RemoteLock() { release(); }
  RemoteLock(const RemoteLock&) = delete;
  RemoteLock& operator=(const RemoteLock&) = delete;

  // Takes it on `host` (the first control plane the run works from, known once discovery ran);
  // with only_if_present, a host without mlplat's directory is left alone (held() stays false).
  Status acquire(size_t host)
  {
    m_host = host;
    m_host_name = m_fleet.endpoint(host).name;
    TRY_ASSIGN(m_held, acquire_remote_lock(m_fleet, m_host, m_cluster, m_holder, {}, m_only_if_present));
    m_tried = true;
    return {};
  }
  bool held() const { return m_held; }
  bool tried() const { return m_tried; }
  void release()
  {
    if (!m_held) {
      return;
    }
    m_held = false;
    if (auto released = release_remote_lock(m_fleet, m_host, m_cluster, m_holder, m_only_if_present); !released) {
      log::warn("the cluster lock on {} was not released ({}); the next run takes it over once its heartbeat is 30 s old", m_host_name,
                released.error().message);
    }
  }

private:
  transport::Fleet& m_fleet;
  size_t m_host = 0;
  std::string m_cluster, m_holder, m_host_name;
  bool m_only_if_present = false;
  bool m_held = false;
  bool m_tried = false;
};

} // namespace

// The phases as the engine takes them: a phase left out by its run_if or by the selection is
// a placeholder with its path (never built); the others are built from `ctx`.
Result<std::vector<Phase>> build_phases(const std::vector<PhaseSpec>& specs, Context& ctx, const RunOptions& selection)
{
  std::vector<Phase> out;
  for (const auto& p : specs) {
    Phase placeholder = named(p);
    placeholder.skipped = p.skip_if ? p.skip_if(ctx) : std::string();
    if (!placeholder.skipped.empty() || !deselected(placeholder, selection).empty()) {
      out.push_back(std::move(placeholder));
      continue;
    }
    TRY_ASSIGN(Phase built, p.build(ctx));
    built.group = placeholder.group;
    built.name = placeholder.name;
    out.push_back(std::move(built));
  }
  return out;
}

std::map<std::string, std::set<std::string>> own_state(const std::vector<PhaseSpec>& phases, const state::Journal& journal)
{
  std::map<std::string, std::set<std::string>> out;
  for (const auto& step : journal.steps()) {
    for (const auto& p : phases) {
      const auto leaf = p.path.substr(p.path.find('/') + 1);
      const auto it = p.owns.find(step.name);
      if (leaf == step.phase && it != p.owns.end()) {
        out[step.host].insert(it->second.begin(), it->second.end());
      }
    }
  }
  return out;
}

std::string phase_help(const CommandSpec& spec)
{
  size_t width = 0;
  for (const auto& p : spec.phases) {
    width = std::max(width, p.path.size());
  }
  std::string out = "Phases, in order (--only and --skip take a path, its last part or its group):\n";
  for (const auto& p : spec.phases) {
    out += fmt::format("  {:<{}}  {}\n", p.path, width, p.summary);
  }
  return out;
}

int run_command(const CommandSpec& spec, const Request& request, const Ui& ui)
{
  const auto started = std::chrono::steady_clock::now();
  auto cluster = config::load_file(request.config_file);
  if (!cluster) {
    return ui.error(cluster.error());
  }
  if (!request.profile.empty() && request.profile != cluster->profile) {
    Error e;
    e.code = ErrorCode::usage;
    e.message = fmt::format("--profile={} but {} says spec.profile: {}", request.profile, cluster->source_file, cluster->profile);
    e.where = cluster->where("spec.profile");
    e.fix = "use the profile the cluster file was written for, or change spec.profile";
    return ui.error(e);
  }
  std::optional<compat::Matrix> matrix;
  const compat::Row* row = nullptr;
  if (spec.matrix_gate) {
    for (const auto& advice : config::topology_warnings(*cluster)) {
      log::warn("{}:{}:{}: {}\n  fix: {}", advice.where.file, advice.where.line, advice.where.column, advice.message, advice.fix);
    }
    auto loaded = compat::load_active_matrix();
    if (!loaded) {
      return ui.error(loaded.error());
    }
    matrix = std::move(*loaded);
    auto gated = config_gate(*matrix, *cluster, request.allow_preview, ui.json);
    if (!gated) {
      return ui.error(gated.error()); // exit 3
    }
    row = *gated;
  }
  // Local state: directory, lock (a dry run changes nothing, so it takes none), journal.
  const auto dir = request.state_dir.empty() ? state::default_dir(cluster->name) : sfs::path(request.state_dir);
  std::optional<state::Lock> lock, dir_lock;
  if (!spec.dry_run) {
    if (auto prepared = state::prepare_dir(dir); !prepared) {
      return ui.error(prepared.error());
    }
    // The cluster's lock on this machine first (whichever state directory), then the directory's.
    auto cluster_lock = state::Lock::acquire_cluster(cluster->name, cluster->hosts[cluster->first_control_plane()].address, dir, spec.name);
    if (!cluster_lock) {
      return ui.error(cluster_lock.error());
    }
    lock.emplace(std::move(*cluster_lock));
    auto taken = state::Lock::acquire(dir, spec.name);
    if (!taken) {
      return ui.error(taken.error());
    }
    dir_lock.emplace(std::move(*taken));
  }
  auto journal = state::Journal::open(dir, cluster->name);
  if (!journal) {
    return ui.error(journal.error());
  }
  if (auto valid = check_bundle_url(request); !valid) {
    return ui.error(valid.error());
  }
  auto profile = config::load_profile(cluster->profile);
  if (!profile) {
    return ui.error(profile.error());
  }

  transport::FleetOptions fleet_options;
  fleet_options.concurrency = request.concurrency;
  fleet_options.dry_run = spec.dry_run ? transport::DryRun::yes : transport::DryRun::no;
  transport::SshFleet fleet(endpoints_of(*cluster), fleet_options);
  Context ctx(fleet, *cluster, *journal);
  ctx.effective = config::effective(*cluster, *profile);
  ctx.matrix = matrix ? &*matrix : nullptr;
  ctx.row = row;
  ctx.state_dir = dir;
  ctx.first_control_plane = cluster->first_control_plane();
  ctx.registry_mirrors = row != nullptr ? render::effective_mirrors(cluster->registry, *row) : cluster->registry.mirrors;
  ctx.bundle_url = request.bundle_url;
  ctx.worker_batch = request.worker_batch;
  ctx.dry_run = spec.dry_run;
  ctx.purge_data = request.purge_data;
  ctx.drain_deadline = std::chrono::seconds(request.drain_seconds);
  for (const auto& name : request.hosts) {
    const auto it = std::find_if(cluster->hosts.begin(), cluster->hosts.end(), [&](const config::Host& h) { return h.name == name; });
    if (it == cluster->hosts.end()) {
      std::vector<std::string> names;
      for (const auto& h : cluster->hosts) {
        names.push_back(h.name);
      }
      Error e;
      e.code = ErrorCode::usage;
      e.message = fmt::format("{} has no host named '{}'", cluster->source_file, name);
      e.fix = "name hosts of spec.hosts: " + text::join(names, ", ");
      return ui.error(e);
    }
    const size_t index = static_cast<size_t>(it - cluster->hosts.begin());
    if (std::find(ctx.targets.begin(), ctx.targets.end(), index) == ctx.targets.end()) {
      ctx.targets.push_back(index);
    }
  }

  RunOptions selection;
  selection.only = {request.only.begin(), request.only.end()};
  selection.skip = {request.skip.begin(), request.skip.end()};
  selection.dry_run = spec.dry_run;
  // The bundle, when a phase that runs needs it; a plan extracts and renders in a scratch directory.
  Scratch scratch;
  if (spec.dry_run) {
    if (auto made = scratch.create(); !made) {
      return ui.error(made.error());
    }
  }
  const sfs::path work_root = spec.dry_run ? scratch.path() : dir;
  ctx.work_dir = work_root / "platform";
  std::optional<bundle::Bom> bom;
  if (const auto needing = needing_bundle(spec, ctx, selection); !needing.empty() && row != nullptr) {
    auto opened = open_bundle(request, *cluster, *matrix, *row, work_root, ctx.bundle_dir, text::join(needing, ", "));
    if (!opened) {
      return ui.error(opened.error());
    }
    bom = std::move(*opened);
    ctx.bom = &*bom;
  }
  // Whether a cluster runs on the hosts already, whatever this state directory knows.
  Discovered found;
  if (spec.discover) {
    auto discovered = discover_cluster(ctx);
    if (!discovered) {
      return ui.error(discovered.error());
    }
    found = *discovered;
    adopt_discovered(ctx, found);
  }
  // The cluster lock on the first control plane (runs from other operator machines), held until the
  // phases end however they end; a dry run takes none. A command whose operator-side work must not
  // happen while another run holds the cluster (certs rotate issues a certificate) takes it first.
  const bool remote_lock = spec.cluster_lock && !spec.dry_run;
  const std::string holder = remote_lock ? lock->holder() + " on machine " + machine_id() : std::string();
  RemoteLock cluster_lock(fleet, cluster->name, holder, spec.lock_if_present);
  if (spec.before_hosts_under_lock && remote_lock) {
    if (auto locked = cluster_lock.acquire(ctx.first_control_plane); !locked) {
      return ui.error(locked.error());
    }
  }
  if (spec.before_hosts) {
    if (auto done = spec.before_hosts(ctx); !done) {
      return ui.error(done.error());
    }
  }

  // The doctor's catalogue, loaded once: the preflight and prepare's recheck judge with it.
  std::optional<doctor::Catalogue> catalogue;
  doctor::Options recheck_options;
  if (spec.doctor) {
    auto loaded = doctor::load_default_catalogue();
    if (!loaded) {
      return ui.error(loaded.error());
    }
    catalogue = std::move(*loaded);
    recheck_options.ignore = {request.ignore.begin(), request.ignore.end()};
    recheck_options.deadline = std::chrono::seconds(request.deadline_seconds);
    recheck_options.command = spec.name;
    ctx.recheck = [&](size_t h) { return doctor::recheck_fixed(*cluster, *matrix, *row, fleet, h, *catalogue, recheck_options); };
  }
  {
    // Checked against every phase, also those a run_if leaves out: --skip smoke is always valid.
    std::vector<Phase> all;
    for (const auto& p : spec.phases) {
      all.push_back(named(p));
    }
    if (auto valid = validate_selection(all, selection); !valid) {
      return ui.error(valid.error());
    }
  }

  auto phases = build_phases(spec.phases, ctx, selection);
  if (!phases) {
    return ui.error(phases.error());
  }

  // A host that is not the machine the journal knows loses its journal steps before anything reads
  // them (the preflight's own-state findings included). Unreachable hosts are the preflight's, or the
  // phase's that needs them, to report.
  if (auto adopted = adopt_host_identities(ctx, true); !adopted) {
    return ui.error(adopted.error());
  }
  if (spec.doctor) {
    auto report = preflight(spec, request, ctx, *catalogue, found);
    if (!report) {
      return ui.error(report.error());
    }
    if (report->has_errors()) {
      ui.report(*report);
      log::error("{} refused: preflight found {} error{}; nothing was changed on any host", spec.name, report->count("error"),
                 report->count("error") == 1 ? "" : "s");
      return report->exit_code();
    }
    std::set<std::string> fixed_ids;
    for (const auto& f : report->findings) {
      if (f.ignored) {
        ctx.ignored.push_back(f);
      }
      if (f.status == "fixed-by-install") {
        fixed_ids.insert(f.id);
      }
    }
    const size_t fixed = report->count("fixed-by-install");
    log::info("preflight passed on {} host{} ({} warning{}{})", report->hosts.size(), report->hosts.size() == 1 ? "" : "s",
              report->count("warning"), report->count("warning") == 1 ? "" : "s",
              fixed == 0 ? std::string()
                         : fmt::format(", {} finding{} prepare fixes: {}", fixed, fixed == 1 ? "" : "s",
                                       text::join(std::vector<std::string>(fixed_ids.begin(), fixed_ids.end()), ", ")));
  }

  if (remote_lock && !cluster_lock.tried()) {
    if (auto locked = cluster_lock.acquire(ctx.first_control_plane); !locked) {
      return ui.error(locked.error());
    }
  }
  auto summary = run(*phases, *journal, fleet, selection);
  cluster_lock.release();
  if (!summary) {
    const int rc = ui.error(summary.error());
    log::info("the journal in {} keeps every finished step: run the command again to continue", dir.string());
    return rc;
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return spec.after ? spec.after(ctx, *summary, seconds, ui) : k_exit_ok;
}

} // namespace mlplat::workflow
