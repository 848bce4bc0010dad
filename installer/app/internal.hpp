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

// The global flags a command printed for the operator repeats (--data-dir, --matrix; absolute paths).
std::vector<std::string> global_args(const GlobalOptions& global);

// Asks the operator to confirm a destructive step (reset, remove-node). With --yes: ok without asking.
// On a terminal (stdin and stderr are ttys): "<question> [y/N] " on stderr and one line read from
// stdin; ok only for y or yes (any case), otherwise an error (ErrorCode::failed, exit 1: "not
// confirmed; nothing was changed"). Without a terminal and without --yes: an error (ErrorCode::usage,
// exit 2) saying to pass --yes; nothing is read.
Status confirm(const GlobalOptions& global, const std::string& question);

// As confirm, reading the answer from `in` and asking on `out` (file descriptors), for tests.
Status confirm(const GlobalOptions& global, const std::string& question, int in, int out);

} // namespace mlplat::app
