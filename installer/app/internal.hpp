// Helpers the command files share (not part of the CLI surface).
#pragma once

#include "app/options.hpp"
#include "config/model.hpp"
#include "doctor/report.hpp"
#include "transport/fleet.hpp"
#include "workflow/command.hpp"

#include <map>
#include <optional>
#include <set>
#include <vector>

namespace mlplat::app {

// --- Interface ---

// The SSH endpoints of the cluster's hosts, in file order.
std::vector<transport::Endpoint> endpoints(const config::Cluster& cluster);

// Runs doctor on `cluster` through `fleet` (read-only); nullopt after reporting an error, whose exit
// code is then in `rc`.
std::optional<doctor::Report> run_doctor(const GlobalOptions& global, const DoctorOptions& options,
                                         const config::Cluster& cluster, transport::Fleet& fleet, int& rc,
                                         const std::map<std::string, std::set<std::string>>& own_state = {});

// Prints a doctor report (text with colour on a terminal, or JSON) on stdout.
void print_report(const GlobalOptions& global, const doctor::Report& report);

// The command line of install and plan as a workflow request, and the CLI's way of reporting.
workflow::Request request_for(const GlobalOptions& global, const DoctorOptions& options);
workflow::Ui ui_for(const GlobalOptions& global);

// A confirmation: ok at once with --yes; on a terminal, `question` asked on stderr and ok only for
// "y" or "yes"; without a terminal and without --yes, an error (exit 2) saying to pass --yes.
Status confirm(const GlobalOptions& global, const std::string& question);

} // namespace mlplat::app
