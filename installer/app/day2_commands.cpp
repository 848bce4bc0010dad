// `mlplat status` and `mlplat kubeconfig`: the read-only day-2 commands. Neither takes a lock or writes
// the journal; both use one SSH session per host (kubeconfig: the first control plane's only).
#include "app/commands.hpp"
#include "app/internal.hpp"

#include "commands/kubeconfig.hpp"
#include "commands/status.hpp"
#include "compat/gate.hpp"
#include "config/load.hpp"
#include "state/runs.hpp"
#include "state/state.hpp"
#include "util/log.hpp"
#include "util/text.hpp"

#include <fmt/chrono.h>
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <iostream>

namespace mlplat::app {

namespace {

struct Loaded {
  config::Cluster cluster;
  compat::Matrix matrix;
  const compat::Row* row = nullptr;
};

Result<Loaded> load(const GlobalOptions& global)
{
  Loaded l;
  TRY_ASSIGN(l.cluster, config::load_file(global.config));
  TRY_ASSIGN(l.matrix, compat::load_active_matrix());
  TRY_ASSIGN(l.row, compat::select_row(l.matrix, l.cluster));
  return l;
}

} // namespace

int cmd_status(const GlobalOptions& global, const StatusOptions& options)
{
  auto loaded = load(global);
  if (!loaded) {
    return report_error(global, loaded.error());
  }
  const auto& cluster = loaded->cluster;
  // The state directory is only read: its journal (the hosts' identities) and its record of runs.
  const std::filesystem::path dir = options.state_dir.empty() ? state::default_dir(cluster.name) : std::filesystem::path(options.state_dir);
  std::optional<state::Journal> journal;
  std::optional<state::RunRecord> last_run;
  std::error_code ec;
  if (std::filesystem::is_directory(dir, ec)) {
    if (auto j = state::Journal::open(dir, cluster.name)) {
      journal = std::move(*j);
    } else {
      log::warn("the journal in {} is not read ({}): host identities are not compared", dir.string(), j.error().message);
    }
    if (auto runs = state::read_runs(dir)) {
      if (!runs->empty()) {
        last_run = runs->back();
      }
    } else {
      log::warn("the record of runs in {} is not read: {}", dir.string(), runs.error().message);
    }
  } else {
    log::warn("no state directory {} (give --state-dir): no journal or runs to compare with", dir.string());
  }

  commands::status::Inputs in;
  in.cluster = &cluster;
  in.row = loaded->row;
  in.journal = journal ? &*journal : nullptr;
  in.last_run = last_run;
  in.deadline = std::chrono::seconds(options.deadline_seconds);
  transport::FleetOptions fleet_options;
  fleet_options.concurrency = global.concurrency;
  transport::SshFleet fleet(endpoints(cluster), fleet_options);
  log::info("reading {} host{} (read-only, at most {} at once)", fleet.size(), fleet.size() == 1 ? "" : "s",
            std::min(fleet.size(), global.concurrency));
  const auto report = commands::status::gather(fleet, in);
  if (global.output == Output::json) {
    std::cout << commands::status::to_json(report).dump(2) << "\n";
  } else {
    std::cout << commands::status::render_text(report);
  }
  std::cout.flush();
  const int rc = report.exit_code();
  if (rc == k_exit_degraded) {
    log::warn("the cluster is degraded (exit {}): see the problems above", rc);
  } else if (rc != k_exit_ok) {
    log::error("no host of {} could be reached", cluster.source_file);
  }
  return rc;
}

int cmd_kubeconfig(const GlobalOptions& global, const KubeconfigOptions& options)
{
  auto loaded = load(global);
  if (!loaded) {
    return report_error(global, loaded.error());
  }
  const auto& cluster = loaded->cluster;
  commands::UserRequest request;
  request.name = options.user;
  request.groups = options.groups;
  if (options.user.empty() && (!options.groups.empty() || options.ttl != "24h")) {
    Error e;
    e.code = ErrorCode::usage;
    e.message = "--group and --ttl are for a user's kubeconfig";
    e.fix = "add --user NAME, or leave them out for the admin kubeconfig";
    return report_error(global, e);
  }
  if (!options.user.empty()) {
    auto ttl = commands::parse_ttl(options.ttl);
    if (!ttl) {
      return report_error(global, ttl.error());
    }
    request.ttl = *ttl;
    if (auto ok = commands::check_user_request(request); !ok) {
      return report_error(global, ok.error());
    }
  }
  // Refused before any connection.
  std::error_code ec;
  if (!options.file.empty() && !options.force && std::filesystem::exists(options.file, ec)) {
    return report_error(global, commands::write_kubeconfig(options.file, "", commands::Overwrite::no).error());
  }

  const size_t cp = cluster.first_control_plane();
  transport::FleetOptions fleet_options;
  fleet_options.concurrency = 1;
  // The first control plane only: the one session this command opens.
  transport::SshFleet fleet({transport::endpoint_for(cluster.hosts[cp])}, fleet_options);
  config::Cluster one = cluster;
  one.hosts = {cluster.hosts[cp]};
  auto kubeconfig = commands::fetch_kubeconfig(fleet, one, *loaded->row, request);
  if (!kubeconfig) {
    return report_error(global, kubeconfig.error());
  }
  const std::string who = request.name.empty() ? "the cluster administrator" : "user " + request.name;
  if (options.file.empty()) {
    std::cout << *kubeconfig;
    std::cout.flush();
  } else {
    if (auto written = commands::write_kubeconfig(options.file, *kubeconfig, options.force ? commands::Overwrite::yes : commands::Overwrite::no);
        !written) {
      return report_error(global, written.error());
    }
    log::info("wrote the kubeconfig of {} to {} (0600)", who, options.file);
  }
  nlohmann::json summary{{"user", request.name.empty() ? nlohmann::json(nullptr) : nlohmann::json(request.name)},
                         {"file", options.file.empty() ? nlohmann::json(nullptr) : nlohmann::json(options.file)}};
  if (!request.name.empty()) {
    if (auto cert = commands::issued_cert(*kubeconfig)) {
      const auto until = fmt::format("{:%Y-%m-%dT%H:%M:%SZ}", fmt::gmtime(std::chrono::system_clock::to_time_t(cert->not_after)));
      summary["groups"] = cert->organizations;
      summary["expires"] = until;
      log::info("{}: groups [{}], valid until {} (its permissions are what RBAC binds to the user and groups)", who,
                text::join(cert->organizations, ", "), until);
    }
  }
  // JSON mode with a file: a summary on stdout (the kubeconfig itself is never in it).
  if (global.output == Output::json && !options.file.empty()) {
    std::cout << summary.dump(2) << "\n";
  }
  return k_exit_ok;
}

} // namespace mlplat::app
