// `mlplat install`, `mlplat plan` and `mlplat certs rotate`: the command line mapped onto a
// workflow::Request and the command's spec run by workflow::run_command.
#include "app/commands.hpp"
#include "app/internal.hpp"

#include "commands/commands.hpp"
#include "util/text.hpp"

#include <fmt/core.h>

#include <unistd.h>

#include <iostream>

namespace mlplat::app {

workflow::Request request_for(const GlobalOptions& global, const DoctorOptions& options)
{
  workflow::Request r;
  r.config_file = global.config;
  r.profile = options.profile;
  r.state_dir = options.state_dir;
  r.bundle = options.bundle;
  r.bundle_url = options.bundle_url;
  r.accept_unsigned_bundle = options.accept_unsigned_bundle;
  r.only = options.only;
  r.skip = options.skip;
  r.ignore = options.ignore;
  r.deadline_seconds = options.deadline_seconds;
  r.allow_preview = options.allow_preview;
  r.concurrency = global.concurrency;
  r.worker_batch = options.worker_batch;
  return r;
}

workflow::Ui ui_for(const GlobalOptions& global)
{
  workflow::Ui ui;
  ui.error = [&global](const Error& e) { return report_error(global, e); };
  ui.report = [&global](const doctor::Report& r) { print_report(global, r); };
  ui.json = global.output == Output::json;
  return ui;
}

int cmd_install(const GlobalOptions& global, const DoctorOptions& options)
{
  return workflow::run_command(commands::install(), request_for(global, options), ui_for(global));
}

int cmd_plan(const GlobalOptions& global, const DoctorOptions& options)
{
  return workflow::run_command(commands::plan(), request_for(global, options), ui_for(global));
}

int cmd_certs_rotate(const GlobalOptions& global, const CertsOptions& options)
{
  workflow::Request r;
  r.config_file = global.config;
  r.state_dir = options.state_dir;
  r.concurrency = global.concurrency;
  return workflow::run_command(commands::certs_rotate(options.wait_seconds), r, ui_for(global));
}

Status confirm(const GlobalOptions& global, const std::string& question)
{
  if (global.yes) {
    return {};
  }
  if (::isatty(STDIN_FILENO) == 0 || ::isatty(STDERR_FILENO) == 0) {
    return fail(ErrorCode::usage, fmt::format("{}: no terminal to ask on", question), "pass --yes to answer yes");
  }
  std::cerr << question << " [y/N] " << std::flush;
  std::string answer;
  std::getline(std::cin, answer);
  answer = std::string(text::trim(answer));
  if (answer == "y" || answer == "Y" || answer == "yes") {
    return {};
  }
  return fail(ErrorCode::usage, "not confirmed: nothing was changed", "answer y, or pass --yes");
}

int cmd_reset(const GlobalOptions& global, const ResetOptions& options)
{
  workflow::Request r;
  r.config_file = global.config;
  r.state_dir = options.state_dir;
  r.concurrency = global.concurrency;
  r.hosts = options.hosts;
  r.purge_data = options.purge_data;
  if (!options.dry_run) {
    const std::string which = options.hosts.empty() ? std::string("every host of ") + global.config : text::join(options.hosts, ", ");
    const auto asked = confirm(global, fmt::format("reset {}: kubeadm reset and remove everything mlplat installed{}?", which,
                                                   options.purge_data ? ", and the volumes' data (--purge-data)" : " (the volumes' data is kept)"));
    if (!asked) {
      return report_error(global, asked.error());
    }
  }
  return workflow::run_command(commands::reset(options.dry_run), r, ui_for(global));
}

int cmd_remove_node(const GlobalOptions& global, const ResetOptions& options)
{
  workflow::Request r;
  r.config_file = global.config;
  r.state_dir = options.state_dir;
  r.concurrency = global.concurrency;
  r.hosts = options.hosts;
  r.purge_data = options.purge_data;
  r.drain_seconds = options.drain_seconds;
  if (!options.dry_run) {
    const auto asked = confirm(global, fmt::format("remove {} from the cluster: drain, remove from etcd, kubeadm reset and remove what mlplat "
                                                   "installed{}?", text::join(options.hosts, ", "),
                                                   options.purge_data ? ", and the volumes' data (--purge-data)" : " (their volumes' data is kept)"));
    if (!asked) {
      return report_error(global, asked.error());
    }
  }
  return workflow::run_command(commands::remove_node(options.dry_run), r, ui_for(global));
}

} // namespace mlplat::app
