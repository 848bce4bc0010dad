// `mlplat install` and `mlplat plan`: gates, lock, journal, then the phases of the install engine.
#include "app/commands.hpp"
#include "app/internal.hpp"

#include "compat/gate.hpp"
#include "config/load.hpp"
#include "config/profile.hpp"
#include "config/topology.hpp"
#include "doctor/catalogue.hpp"
#include "doctor/engine.hpp"
#include "install/addons.hpp"
#include "install/engine.hpp"
#include "install/prepare.hpp"
#include "install/join.hpp"
#include "install/kubeadm.hpp"
#include "install/nodes.hpp"
#include "install/platform.hpp"
#include "install/remote_lock.hpp"
#include "install/steps.hpp"
#include "install/runtime.hpp"
#include "state/state.hpp"
#include "util/log.hpp"
#include "util/text.hpp"

#include <fmt/core.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <iostream>

namespace mlplat::app {

namespace {

// What the cluster looks like after a run: nodes as the API server reports them, versions, where the
// kubeconfig is. Read-only; a cluster not initialised yet (--only prepare) gets no node table.
void print_summary(transport::Fleet& fleet, const config::Cluster& cluster, const install::RuntimeInputs& in,
                   const std::filesystem::path& dir, double seconds)
{
  auto nodes = fleet.exec(in.first_control_plane,
                          install::read_only("list the nodes", install::kubectl() + " get nodes 2>/dev/null || true"));
  std::cout << fmt::format("\nsummary of cluster {} (profile {}, row {}: Kubernetes {})\n", cluster.name, cluster.profile, in.row->id,
                           in.row->kubernetes.str());
  if (nodes && !text::trim(nodes->out).empty()) {
    std::cout << text::indent(std::string(text::trim(nodes->out)), "  ") << "\n";
  } else {
    std::cout << "  no nodes yet (kubeadm init has not run)\n";
  }
  const auto kubeconfig = dir / "kubeconfig";
  if (std::filesystem::exists(kubeconfig)) {
    std::cout << fmt::format("kubeconfig: {} (0600; the administrator's credentials: keep it safe)\n"
                             "  kubectl --kubeconfig {} get nodes   (from a machine that reaches {})\n",
                             kubeconfig.string(), kubeconfig.string(), install::control_plane_endpoint(cluster, in.first_control_plane));
  }
  std::cout << fmt::format("time: {:.1f} s\n", seconds);
}

// The matrix gate on the cluster file, before any connection. Prints refusals; false when refused.
bool config_gate(const config::Cluster& cluster, const DoctorOptions& options, int& rc, const GlobalOptions& global,
                 std::optional<compat::Matrix>& matrix_out, const compat::Row*& row_out)
{
  auto matrix = compat::load_active_matrix();
  if (!matrix) {
    rc = report_error(global, matrix.error());
    return false;
  }
  matrix_out = std::move(*matrix);
  const auto gate = compat::check_config(*matrix_out, cluster, compat::GateOptions{options.allow_preview});
  if (!gate.passed()) {
    std::cout << compat::render(gate, false);
    log::write(log::Level::error, {}, gate.to_status().error().render());
    rc = k_exit_preflight;
    return false;
  }
  for (const auto& f : gate.findings) {
    if (f.level == compat::Level::warning) {
      log::warn("[{}] row {}: {}", f.rule, f.row, f.reason);
    }
  }
  log::info("versions: row {} (Kubernetes {}) of {}", gate.row->id, gate.row->kubernetes.str(), matrix_out->source);
  row_out = gate.row;
  return true;
}

// The bundle given with --bundle, checked against the row: opened (an archive is extracted into the
// state directory), re-hashed against its bill of materials. Before any connection.
Result<bundle::Bom> open_bundle(const DoctorOptions& options, const compat::Row& row, const std::filesystem::path& state_dir,
                                std::filesystem::path& dir)
{
  if (options.bundle.empty()) {
    return fail(ErrorCode::usage,
                fmt::format("the phases after 'prepare' install from a bundle of row {}, and none was given", row.id),
                fmt::format("create one where the internet is reachable (mlplat bundle create --row {} -o {}.tar.zst) and "
                            "pass it with --bundle; or run only the first phase (--only prepare)", row.id, row.id));
  }
  TRY_ASSIGN(dir, bundle::open_dir(options.bundle, state_dir / "bundle"));
  TRY_ASSIGN(const bundle::Bom bom, bundle::verify(dir));
  if (bom.row != row.id) {
    return fail(ErrorCode::usage, fmt::format("--bundle {} is for row {}, the cluster file selects row {}", options.bundle, bom.row, row.id),
                fmt::format("mlplat bundle create --row {}", row.id));
  }
  log::info("bundle {}: row {}, {} artifacts verified", options.bundle, bom.row, bom.artifacts.size());
  return bom;
}

// What the platform phases were built from: the rendered overlays and the ingress certificate.
struct Platform {
  install::PlatformRender render;
  install::IngressCertificate cert;
};

// Renders the platform overlays and settles the ingress certificate, on this machine, before any
// host is touched. `work` is where the overlays are built; `dry_run` writes no certificate.
Result<std::optional<Platform>> prepare_platform(const config::Cluster& cluster, const std::optional<install::RuntimeInputs>& runtime,
                                                 const std::filesystem::path& state_dir, const std::filesystem::path& work, bool dry_run)
{
  if (!runtime || !cluster.pipelines.enabled) {
    return std::optional<Platform>{};
  }
  TRY_ASSIGN(const auto profile, config::load_profile(cluster.profile));
  const auto effective = config::effective(cluster, profile);
  Platform p;
  TRY_ASSIGN(p.render, install::render_platform(cluster, effective, *runtime, work));
  TRY_ASSIGN(p.cert, install::ingress_certificate(cluster, p.render, state_dir, !dry_run));
  log::info("platform: Kubeflow Pipelines overlays rendered ({} CRDs, {} deployments, {} images; kustomize {}), ingress certificate serial {}",
            p.render.crds.size(), p.render.deployments.size(), p.render.images.size(), p.render.kustomize_version, p.cert.serial_hex);
  return std::optional<Platform>{std::move(p)};
}

// Every phase, in order. `runtime` is empty when no bundle is used (only "prepare" then); `platform`
// empty when Kubeflow Pipelines is disabled.
Result<std::vector<install::Phase>> build_phases(transport::Fleet& fleet, const config::Cluster& cluster,
                                                 const std::optional<install::RuntimeInputs>& runtime,
                                                 const std::filesystem::path& state_dir, const std::optional<Platform>& platform,
                                                 const install::Recheck& recheck)
{
  std::vector<size_t> all(fleet.size());
  for (size_t i = 0; i < all.size(); ++i) {
    all[i] = i;
  }
  std::vector<install::Phase> phases;
  TRY_ASSIGN(auto prepare, install::prepare_phase(fleet, all, recheck));
  phases.push_back(std::move(prepare));
  if (runtime) {
    phases.push_back(install::artifacts_phase(fleet, all, *runtime));
    TRY_ASSIGN(auto containerd, install::containerd_phase(fleet, all, *runtime));
    phases.push_back(std::move(containerd));
    TRY_ASSIGN(auto init, install::init_phase(fleet, cluster, *runtime->row, runtime->first_control_plane));
    phases.push_back(std::move(init));
    auto material = std::make_shared<install::JoinMaterial>(fleet, runtime->first_control_plane);
    for (auto& p : install::join_phases(fleet, cluster, runtime->first_control_plane, material)) {
      phases.push_back(std::move(p));
    }
    TRY_ASSIGN(const auto profile, config::load_profile(cluster.profile));
    const auto effective = config::effective(cluster, profile);
    phases.push_back(install::kubeconfig_phase(fleet, runtime->first_control_plane, state_dir / "kubeconfig"));
    phases.push_back(install::nodes_phase(fleet, cluster, runtime->first_control_plane));
    TRY_ASSIGN(auto cni, install::cni_phase(fleet, cluster, effective, *runtime));
    phases.push_back(std::move(cni));
    TRY_ASSIGN(auto storage, install::storage_phase(fleet, effective, *runtime));
    phases.push_back(std::move(storage));
    phases.push_back(install::cleanup_phase(fleet, runtime->first_control_plane));
    if (platform) {
      phases.push_back(install::pipelines_phase(fleet, platform->render, *runtime));
      TRY_ASSIGN(auto istio, install::istio_phase(fleet, cluster, effective, platform->render, *runtime));
      phases.push_back(std::move(istio));
      phases.push_back(install::tls_phase(fleet, platform->cert, *runtime));
      phases.push_back(install::gateway_phase(fleet, platform->render, *runtime));
      phases.push_back(install::smoke_phase(fleet, platform->render, platform->cert, *runtime));
    }
  }
  return phases;
}

// Whether the selection runs any phase after "prepare".
bool needs_bundle(const DoctorOptions& options)
{
  if (!options.only.empty()) {
    return std::any_of(options.only.begin(), options.only.end(), [](const std::string& p) { return p != "prepare"; });
  }
  return true;
}

install::RunOptions run_options(const DoctorOptions& options, bool dry_run)
{
  install::RunOptions o;
  o.only = {options.only.begin(), options.only.end()};
  o.skip = {options.skip.begin(), options.skip.end()};
  o.dry_run = dry_run;
  return o;
}

// Shared by install and plan: gates, then the phases. `dry_run` for plan.
int install_or_plan(const GlobalOptions& global, const DoctorOptions& options, bool dry_run)
{
  const auto started = std::chrono::steady_clock::now();
  auto cluster = config::load_file(global.config);
  if (!cluster) {
    return report_error(global, cluster.error());
  }
  if (!options.profile.empty() && options.profile != cluster->profile) {
    Error e;
    e.code = ErrorCode::usage;
    e.message = fmt::format("--profile={} but {} says spec.profile: {}", options.profile, cluster->source_file, cluster->profile);
    e.where = cluster->where("spec.profile");
    e.fix = "use the profile the cluster file was written for, or change spec.profile";
    return report_error(global, e);
  }
  for (const auto& advice : config::topology_warnings(*cluster)) {
    log::warn("{}:{}:{}: {}\n  fix: {}", advice.where.file, advice.where.line, advice.where.column, advice.message, advice.fix);
  }
  int rc = k_exit_ok;
  std::optional<compat::Matrix> matrix;
  const compat::Row* row = nullptr;
  if (!config_gate(*cluster, options, rc, global, matrix, row)) {
    return rc;
  }
  // Local state: directory, lock (install only: plan changes nothing), journal.
  const auto dir = options.state_dir.empty() ? state::default_dir(cluster->name) : std::filesystem::path(options.state_dir);
  std::optional<state::Lock> lock;
  if (!dry_run) {
    if (auto prepared = state::prepare_dir(dir); !prepared) {
      return report_error(global, prepared.error());
    }
    auto taken = state::Lock::acquire(dir, "install");
    if (!taken) {
      return report_error(global, taken.error());
    }
    lock.emplace(std::move(*taken));
  }
  auto journal = state::Journal::open(dir, cluster->name);
  if (!journal) {
    return report_error(global, journal.error());
  }
  if (!options.bundle_url.empty() && (options.bundle.empty() ||
                                      (options.bundle_url.rfind("http://", 0) != 0 && options.bundle_url.rfind("https://", 0) != 0))) {
    Error e;
    e.code = ErrorCode::usage;
    e.message = options.bundle.empty() ? "--bundle-url needs --bundle too: the hosts check what they fetch against its bill of materials"
                                       : fmt::format("--bundle-url {} is not an http(s) URL", options.bundle_url);
    e.fix = "give the bundle with --bundle and the URL its directory is served at with --bundle-url http(s)://...";
    return report_error(global, e);
  }
  // The first control plane: init runs there, kubectl works from there, the cluster lock lives there.
  const size_t first_cp = cluster->first_control_plane();
  std::optional<bundle::Bom> bom;
  std::optional<install::RuntimeInputs> runtime;
  std::filesystem::path plan_scratch;
  struct RemoveScratch {
    std::filesystem::path& path;
    ~RemoveScratch()
    {
      std::error_code ec;
      if (!path.empty()) {
        std::filesystem::remove_all(path, ec);
      }
    }
  } remove_scratch{plan_scratch};
  std::filesystem::path bundle_dir;
  if (needs_bundle(options)) {
    // A plan extracts an archive into a directory of its own, removed when it ends.
    if (dry_run) {
      std::string pattern = (std::filesystem::temp_directory_path() / "mlplat-plan.XXXXXX").string();
      if (::mkdtemp(pattern.data()) == nullptr) {
        Error e;
        e.message = "cannot create a temporary directory for the plan: " + std::string(std::strerror(errno));
        e.fix = "set TMPDIR to a writable directory";
        return report_error(global, e);
      }
      plan_scratch = pattern;
    }
    auto opened = open_bundle(options, *row, dry_run ? plan_scratch : dir, bundle_dir);
    if (!opened) {
      return report_error(global, opened.error());
    }
    bom = std::move(*opened);
    install::RuntimeInputs in;
    in.row = row;
    in.bom = &*bom;
    in.bundle_dir = bundle_dir;
    in.registry_mirrors = cluster->registry.mirrors;
    in.bundle_url = options.bundle_url;
    in.first_control_plane = first_cp;
    runtime = in;
  }
  transport::FleetOptions fleet_options;
  fleet_options.concurrency = global.concurrency;
  fleet_options.dry_run = dry_run ? transport::DryRun::yes : transport::DryRun::no;
  auto platform = prepare_platform(*cluster, runtime, dir, (dry_run ? plan_scratch : dir) / "platform", dry_run);
  if (!platform) {
    return report_error(global, platform.error());
  }
  transport::Fleet fleet(endpoints(*cluster), fleet_options);
  // What the preflight reports as fixed-by-install is judged again once prepare has run on a host.
  auto catalogue = doctor::load_default_catalogue();
  if (!catalogue) {
    return report_error(global, catalogue.error());
  }
  doctor::Options recheck_options;
  recheck_options.ignore = {options.ignore.begin(), options.ignore.end()};
  recheck_options.deadline = std::chrono::seconds(options.deadline_seconds);
  const install::Recheck recheck = [&](size_t h) {
    return doctor::recheck_fixed(*cluster, *matrix, *row, fleet, h, *catalogue, recheck_options);
  };
  auto phases = build_phases(fleet, *cluster, runtime, dir, *platform, recheck);
  if (!phases) {
    return report_error(global, phases.error());
  }
  const auto selection = run_options(options, dry_run);
  if (auto valid = install::validate_selection(*phases, selection); !valid) {
    return report_error(global, valid.error());
  }

  // What this cluster's own earlier runs left on a host (a control plane's API server on 6443, its
  // /etc/kubernetes) is not a leftover from another cluster: doctor lets it pass there.
  std::map<std::string, std::set<std::string>> own_state;
  for (const auto& step : journal->steps()) {
    // mlplat put the kubelet there (containerd/services) or wrote kubeadm's config: what kubeadm left
    // on that host since, even in a run killed before it could journal the init or join, is ours.
    if ((step.phase == "containerd" && step.name == "services") || (step.phase == "init" && step.name == "kubeadm-config")) {
      own_state[step.host] = {"OS-021", "NET-004"};
    }
  }
  const auto report = run_doctor(global, options, *cluster, fleet, rc, own_state);
  if (!report) {
    return rc;
  }
  if (report->has_errors()) {
    print_report(global, *report);
    log::error("{} refused: preflight found {} error{}; nothing was changed on any host", dry_run ? "plan" : "install",
               report->count("error"), report->count("error") == 1 ? "" : "s");
    return k_exit_preflight;
  }
  std::set<std::string> fixed_ids;
  for (const auto& f : report->findings) {
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

  // The cluster lock on the first control plane (runs from other operator machines), held until the
  // phases end however they end; plan takes none.
  const std::string remote_holder = dry_run ? std::string() : lock->holder() + " on machine " + install::machine_id();
  if (!dry_run) {
    if (auto locked = install::acquire_remote_lock(fleet, first_cp, cluster->name, remote_holder); !locked) {
      return report_error(global, locked.error());
    }
  }
  auto summary = install::run(*phases, *journal, fleet, selection);
  if (!dry_run) {
    if (auto released = install::release_remote_lock(fleet, first_cp, cluster->name, remote_holder); !released) {
      log::warn("the cluster lock on {} was not released ({}); the next run takes it over once its heartbeat is 30 s old",
                cluster->hosts[first_cp].name, released.error().message);
    }
  }
  if (!summary) {
    log::write(log::Level::error, {}, summary.error().render());
    log::info("the journal in {} keeps every finished step: run the command again to continue", dir.string());
    return exit_code_for(summary.error());
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (dry_run) {
    std::cout << fmt::format("plan for cluster {} ({} hosts): {} step{} would change something\n", cluster->name,
                             fleet.size(), summary->applied(), summary->applied() == 1 ? "" : "s");
    // Per host, in the order install would run them: phase/step, what, and the command itself.
    const auto planned = fleet.plan();
    for (size_t h = 0; h < fleet.size(); ++h) {
      const std::string& host = fleet.endpoint(h).name;
      std::cout << fmt::format("\n{} ({})\n", host, fleet.endpoint(h).address);
      size_t n = 0;
      for (const auto& c : planned) {
        if (c.host != host) {
          continue;
        }
        ++n;
        std::cout << fmt::format("  {}: {}\n", c.step, c.description);
        if (c.sensitive) {
          std::cout << "      (command withheld: it carries a secret)\n";
        } else if (!c.script.empty()) {
          std::cout << text::indent(c.script, "      ") << "\n";
        }
      }
      if (n == 0) {
        std::cout << "  nothing to change\n";
      }
    }
    return k_exit_ok;
  }
  std::cout << fmt::format("cluster {}: {} step{} applied, {} already in place ({:.1f} s); state in {}\n", cluster->name,
                           summary->applied(), summary->applied() == 1 ? "" : "s", summary->steps.size() - summary->applied(),
                           seconds, dir.string());
  if (runtime) {
    print_summary(fleet, *cluster, *runtime, dir, seconds);
  }
  if (*platform && summary->steps.end() != std::find_if(summary->steps.begin(), summary->steps.end(), [](const auto& s) { return s.phase == "smoke"; })) {
    const auto& p = **platform;
    std::cout << fmt::format("Kubeflow Pipelines: {}\n", install::ui_url(p.render));
    if (!p.cert.ca_file.empty()) {
      std::cout << fmt::format("  trust the ingress CA {} (e.g. curl --cacert {} ...)\n", p.cert.ca_file.string(), p.cert.ca_file.string());
    }
    if (!p.render.ingress_address.empty()) {
      std::cout << fmt::format("  {} must resolve to {} (DNS, or /etc/hosts: \"{} {}\")\n", p.render.domain, p.render.ingress_address,
                               p.render.ingress_address, p.render.domain);
    }
  }
  return k_exit_ok;
}

} // namespace

int cmd_install(const GlobalOptions& global, const DoctorOptions& options)
{
  return install_or_plan(global, options, false);
}

int cmd_plan(const GlobalOptions& global, const DoctorOptions& options)
{
  return install_or_plan(global, options, true);
}

} // namespace mlplat::app
