// `mlplat install`, `mlplat plan` and `mlplat certs rotate`: the command line mapped onto a
// workflow::Request and the command's spec run by workflow::run_command.
#include "app/commands.hpp"
#include "app/internal.hpp"

#include "commands/commands.hpp"
#include "util/text.hpp"

#include <fmt/core.h>

#include <unistd.h>

#include <iostream>

#include <filesystem>

namespace mlplat::app {

std::vector<std::string> global_args(const GlobalOptions& global)
{
  std::vector<std::string> out;
  std::error_code ec;
  if (!global.data_dir.empty()) {
    out.insert(out.end(), {"--data-dir", std::filesystem::absolute(global.data_dir, ec).lexically_normal().string()});
  }
  if (!global.matrix_file.empty()) {
    out.insert(out.end(), {"--matrix", std::filesystem::absolute(global.matrix_file, ec).lexically_normal().string()});
  }
  return out;
}

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
  r.global_args = global_args(global);
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
  r.global_args = global_args(global);
  return workflow::run_command(commands::certs_rotate(options.wait_seconds), r, ui_for(global));
}

namespace {

// reset's and remove-node's request: the hosts, the data, the drain's deadline.
workflow::Request removal_request(const GlobalOptions& global, const ResetOptions& options)
{
  workflow::Request r;
  r.config_file = global.config;
  r.state_dir = options.state_dir;
  r.concurrency = global.concurrency;
  r.global_args = global_args(global);
  r.hosts = options.hosts;
  r.purge_data = options.purge_data;
  r.drain_seconds = options.drain_seconds;
  return r;
}

} // namespace

int cmd_reset(const GlobalOptions& global, const ResetOptions& options)
{
  const auto r = removal_request(global, options);
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
  const auto r = removal_request(global, options);
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
