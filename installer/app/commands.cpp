#include "app/commands.hpp"
#include "app/internal.hpp"

#include "assets/assets.hpp"
#include "compat/gate.hpp"
#include "config/load.hpp"
#include "doctor/engine.hpp"
#include "doctor/report.hpp"
#include "facts/facts.hpp"
#include "transport/fleet.hpp"
#include "util/fs.hpp"
#include "util/interrupt.hpp"
#include "util/log.hpp"

#include <fmt/core.h>
#include <libssh/libssh.h>
#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <optional>

namespace mlplat::app {

namespace {

nlohmann::json error_json(const Error& e)
{
  nlohmann::json j{{"message", e.message}, {"exitCode", exit_code_for(e)}};
  if (!e.fix.empty()) {
    j["fix"] = e.fix;
  }
  if (!e.host.empty()) {
    j["host"] = e.host;
  }
  if (e.where) {
    j["file"] = e.where->file;
    j["line"] = e.where->line;
    j["column"] = e.where->column;
  }
  if (!e.children.empty()) {
    j["errors"] = nlohmann::json::array();
    for (const auto& c : e.children) {
      j["errors"].push_back(error_json(c));
    }
  }
  return j;
}

std::vector<transport::Endpoint> endpoints_of(const config::Cluster& cluster)
{
  std::vector<transport::Endpoint> out;
  for (const auto& h : cluster.hosts) {
    out.push_back(transport::endpoint_for(h));
  }
  return out;
}

std::string human_kib(const std::string& kib)
{
  try {
    const double gib = std::stod(kib) / (1024.0 * 1024.0);
    return fmt::format("{:.1f} GiB", gib);
  } catch (const std::exception&) {
    return kib.empty() ? "?" : kib;
  }
}

} // namespace

int report_error(const GlobalOptions& global, const Error& error)
{
  if (global.output == Output::json) {
    std::cout << nlohmann::json{{"error", error_json(error)}}.dump(2) << "\n";
  }
  log::write(log::Level::error, {}, error.render());
  return exit_code_for(error);
}

int cmd_init(const GlobalOptions& global, const InitOptions& options)
{
  const auto starter = assets::read(fmt::format("profiles/{}/starter.yaml", options.profile));
  if (!starter) {
    return report_error(global, starter.error());
  }
  const std::filesystem::path target = global.config;
  if (std::filesystem::exists(target) && !options.force) {
    Error e;
    e.code = ErrorCode::usage;
    e.message = fmt::format("{} already exists; not overwriting it", target.string());
    e.fix = "pass --force to replace it, or -c <path> to write another file";
    return report_error(global, e);
  }
  if (auto written = fs::write_file_atomic(target, *starter, 0644); !written) {
    return report_error(global, written.error());
  }
  log::info("wrote {} for profile {}; edit the hosts and run 'mlplat facts' to check access", target.string(), options.profile);
  return k_exit_ok;
}

int cmd_facts(const GlobalOptions& global)
{
  auto cluster = config::load_file(global.config);
  if (!cluster) {
    return report_error(global, cluster.error());
  }
  transport::FleetOptions fleet_options;
  fleet_options.concurrency = global.concurrency;
  transport::SshFleet fleet(endpoints_of(*cluster), fleet_options);
  log::info("gathering facts from {} host{} (at most {} at once)", fleet.size(), fleet.size() == 1 ? "" : "s",
            std::min(fleet.size(), global.concurrency));
  const auto results = facts::gather(fleet);

  if (global.output == Output::json) {
    nlohmann::json hosts = nlohmann::json::array();
    for (size_t i = 0; i < results.size(); ++i) {
      nlohmann::json h{{"name", fleet.endpoint(i).name}, {"address", fleet.endpoint(i).address}};
      if (results[i]) {
        nlohmann::json facts = nlohmann::json::object();
        for (const auto& [key, values] : results[i]->values) {
          facts[key] = values.size() == 1 ? nlohmann::json(values.front()) : nlohmann::json(values);
        }
        h["facts"] = facts;
      } else {
        h["error"] = error_json(results[i].error());
      }
      hosts.push_back(h);
    }
    std::cout << nlohmann::json{{"hosts", hosts}}.dump(2) << "\n";
  } else {
    std::cout << fmt::format("{:<16} {:<15} {:<18} {:<22} {:<8} {:>5} {:>10} {:>9}\n", "HOST", "ADDRESS", "HOSTNAME",
                             "OS", "ARCH", "CPUS", "MEMORY", "SWAP");
    for (size_t i = 0; i < results.size(); ++i) {
      const auto& ep = fleet.endpoint(i);
      if (!results[i]) {
        std::cout << fmt::format("{:<16} {:<15} unreachable: {}\n", ep.name, ep.address, results[i].error().message);
        continue;
      }
      const auto& f = *results[i];
      std::cout << fmt::format("{:<16} {:<15} {:<18} {:<22} {:<8} {:>5} {:>10} {:>9}\n", ep.name, ep.address,
                               f.get("hostname"), f.get("os.id") + " " + f.get("os.version"), f.get("arch"),
                               f.get("cpus"), human_kib(f.get("memory.kib")), human_kib(f.get("swap.kib")));
    }
  }
  if (auto summary = fleet.summarize(results); !summary) {
    log::write(log::Level::error, {}, summary.error().render());
    return exit_code_for(summary.error());
  }
  return k_exit_ok;
}

// Runs the doctor engine on `cluster` through `fleet`; nullopt after reporting an error (whose exit
// code is in `rc`).
std::optional<doctor::Report> run_doctor(const GlobalOptions& global, const DoctorOptions& options,
                                         const config::Cluster& cluster, transport::Fleet& fleet, int& rc,
                                         const std::map<std::string, std::set<std::string>>& own_state)
{
  auto catalogue = doctor::load_default_catalogue();
  if (!catalogue) {
    rc = report_error(global, catalogue.error());
    return std::nullopt;
  }
  auto matrix = compat::load_active_matrix();
  if (!matrix) {
    rc = report_error(global, matrix.error());
    return std::nullopt;
  }
  auto row = compat::select_row(*matrix, cluster);
  if (!row) {
    rc = report_error(global, row.error());
    return std::nullopt;
  }
  doctor::Options doctor_options;
  doctor_options.ignore = {options.ignore.begin(), options.ignore.end()};
  doctor_options.deadline = std::chrono::seconds(options.deadline_seconds);
  doctor_options.own_state = own_state;
  if (auto valid = doctor::validate_ignore(*catalogue, doctor_options.ignore); !valid) {
    rc = report_error(global, valid.error());
    return std::nullopt;
  }
  log::info("checking {} host{} (read-only, at most {} at once, {} s deadline each)", fleet.size(),
            fleet.size() == 1 ? "" : "s", std::min(fleet.size(), global.concurrency), options.deadline_seconds);
  return doctor::run(cluster, *matrix, **row, fleet, *catalogue, doctor_options);
}

void print_report(const GlobalOptions& global, const doctor::Report& report)
{
  if (global.output == Output::json) {
    std::cout << doctor::render_json(report);
  } else {
    const bool colour = ::isatty(STDOUT_FILENO) == 1 && std::getenv("NO_COLOR") == nullptr;
    std::cout << doctor::render_text(report, colour ? doctor::Colour::yes : doctor::Colour::no);
  }
  std::cout.flush();
}

std::vector<transport::Endpoint> endpoints(const config::Cluster& cluster)
{
  return endpoints_of(cluster);
}

int cmd_doctor(const GlobalOptions& global, const DoctorOptions& options)
{
  auto cluster = config::load_file(global.config);
  if (!cluster) {
    return report_error(global, cluster.error());
  }
  transport::FleetOptions fleet_options;
  fleet_options.concurrency = global.concurrency;
  transport::SshFleet fleet(endpoints_of(*cluster), fleet_options);
  int rc = k_exit_ok;
  const auto report = run_doctor(global, options, *cluster, fleet, rc);
  if (!report) {
    return rc;
  }
  print_report(global, *report);
  return report->exit_code();
}

int cmd_version(const GlobalOptions& global)
{
  const std::string libssh = ssh_version(0);
  if (global.output == Output::json) {
    std::cout << nlohmann::json{{"version", MLPLAT_VERSION}, {"libssh", libssh}}.dump(2) << "\n";
  } else {
    std::cout << version_text() << "\n";
  }
  return k_exit_ok;
}

std::string version_text()
{
  return fmt::format("mlplat {}\nlibssh {}", MLPLAT_VERSION, ssh_version(0));
}

int cmd_not_built(const std::string& name)
{
  log::write(log::Level::error, {},
             fmt::format("'mlplat {}' is not built yet in this version; nothing was done (see docs/commands.md)", name));
  return k_exit_failed;
}

} // namespace mlplat::app
