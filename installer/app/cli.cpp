#include "app/cli.hpp"

#include "commands/commands.hpp"

#include "app/cli_tree.hpp"
#include "app/commands.hpp"
#include "app/run_log.hpp"
#include "assets/assets.hpp"
#include "compat/matrix.hpp"
#include "config/model.hpp"
#include "util/interrupt.hpp"
#include "util/log.hpp"

#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <map>

namespace mlplat::app {

namespace {

struct Planned {
  const char* name;
  const char* summary;
};

// Listed in --help from the first version so that the shape of the tool is visible; each says it is
// not built yet until it is.
constexpr Planned k_not_built[] = {
  {"upgrade", "Upgrade the cluster and the platform one supported step"},
};

} // namespace

int run_cli(int argc, char** argv)
{
  CLI::App app{"mlplat: bare Linux VMs to a Kubernetes cluster with Kubeflow Pipelines over HTTPS", "mlplat"};
  app.require_subcommand(1);
  app.fallthrough(); // global options may follow the subcommand
  app.footer("Exit codes: 0 ok, 1 failed, 2 bad config or usage, 3 preflight failed, 4 connect/auth failed,\n"
             "5 host key not trusted, 6 locked by another run, 7 partial (resumable), 8 degraded (status),\n"
             "130/143 interrupted (SIGINT/SIGTERM).\n"
             "See docs/exit-codes.md.");

  app.set_version_flag("--version", [] { return version_text(); }, "Show the version (as the version command does)");

  GlobalOptions global;
  std::string output = "text";
  app.add_option("-c,--config", global.config, "Cluster file")->capture_default_str()->envname("MLPLAT_CONFIG");
  app.add_flag("-v,--verbose", global.verbose, "More output (debug lines on stderr)");
  app.add_option("--output", output, "Result format")->check(CLI::IsMember({"text", "json"}))->capture_default_str();
  app.add_option("--log-file", global.log_file, "Also write a debug log to this file (0600)");
  app.add_flag("--yes", global.yes, "Answer yes to confirmations");
  app.add_option("--concurrency", global.concurrency, "Hosts worked on at once")->check(CLI::Range(1, 1024))->capture_default_str();
  app.add_option("--data-dir", global.data_dir, "Read data files (profiles, checks, manifests) from this directory first")
    ->envname("MLPLAT_DATA_DIR")
    ->check(CLI::ExistingDirectory); // a mistyped directory must not silently mean "the built-in data"
  app.add_option("--matrix", global.matrix_file, "Use this compatibility matrix instead of the built-in one")
    ->envname("MLPLAT_MATRIX")
    ->check(CLI::ExistingFile);

  InitOptions init;
  auto* init_cmd = app.add_subcommand("init", "Write a commented starter cluster file");
  init_cmd->add_option("--profile", init.profile, "Infrastructure profile")
    ->check(CLI::IsMember(config::profiles()))
    ->capture_default_str();
  init_cmd->add_flag("--force", init.force, "Overwrite an existing file");

  auto* facts_cmd = app.add_subcommand("facts", "Connect to every host (read-only) and show its facts");

  // --accept-unsigned-bundle names one bill of materials: its sha256, 64 lowercase hex digits.
  const CLI::Validator sha256_arg(
    [](std::string& v) -> std::string {
      return v.size() == 64 && v.find_first_not_of("0123456789abcdef") == std::string::npos ? std::string()
                                                                                            : "not a sha256 (64 lowercase hex digits): " + v;
    },
    "SHA256");

  DoctorOptions doctor_options;
  auto add_doctor_flags = [&](CLI::App* sub) {
    sub->add_option("--ignore", doctor_options.ignore, "Check ids whose errors become warnings (comma-separated, or all)")
      ->delimiter(',');
    sub->add_option("--deadline", doctor_options.deadline_seconds, "Seconds each host has to answer the checks")
      ->check(CLI::Range(5, 3600))
      ->capture_default_str();
  };
  auto* doctor_cmd = app.add_subcommand("doctor", "Read-only preflight checks on every host, with fixes");
  add_doctor_flags(doctor_cmd);
  auto* install_cmd = app.add_subcommand("install", "Install the cluster and the ML platform (preflight gate built)");
  install_cmd->add_option("--profile", doctor_options.profile, "Must match spec.profile of the cluster file")
    ->check(CLI::IsMember(config::profiles()));
  auto* plan_cmd = app.add_subcommand("plan", "Show the commands install would run on each host, changing nothing");
  for (auto* sub : {install_cmd, plan_cmd}) {
    add_doctor_flags(sub);
    sub->add_flag("--allow-preview", doctor_options.allow_preview, "Accept a preview row of the compatibility matrix");
    sub->add_option("--only", doctor_options.only, "Only these phases: paths (cluster/init), last parts (init) or groups (platform), comma-separated")
      ->delimiter(',');
    sub->add_option("--skip", doctor_options.skip, "Not these phases (as --only)")->delimiter(',');
    sub->add_option("--worker-batch", doctor_options.worker_batch, "Join the workers at most N at a time (0: all at once)")
      ->capture_default_str();
    sub->footer(workflow::phase_help(commands::install()));
    sub->add_option("--bundle", doctor_options.bundle, "The bundle of the row (mlplat bundle create): directory or archive")
      ->check(CLI::ExistingPath);
    sub->add_option("--bundle-url", doctor_options.bundle_url,
                    "The same bundle's directory served over HTTP(S): each host fetches its files from there and checks them "
                    "against --bundle's bill of materials (for large clusters)");
    sub->add_option("--accept-unsigned-bundle", doctor_options.accept_unsigned_bundle,
                    "Take the bundle whose bundle.json has this sha256 without a good signature (the refusal prints it)")
      ->check(sha256_arg);
  }
  install_cmd->add_option("--state-dir", doctor_options.state_dir, "The cluster's state directory (journal, lock)");
  plan_cmd->add_option("--state-dir", doctor_options.state_dir, "The cluster's state directory (journal read only)");
  auto* version_cmd = app.add_subcommand("version", "Show the version");

  MatrixOptions matrix_options;
  auto* matrix_cmd = app.add_subcommand("matrix", "Show the compatibility matrix; 'matrix check' judges the config against it");
  matrix_cmd->add_option("--row", matrix_options.row, "Only this row");
  auto* matrix_check_cmd = matrix_cmd->add_subcommand("check", "Judge the cluster file's versions and profile against the matrix");
  matrix_check_cmd->add_flag("--allow-preview", matrix_options.allow_preview, "Accept a preview row (refusals become warnings)");

  BundleOptions bundle_options;
  auto* bundle_cmd = app.add_subcommand("bundle", "Create, verify and list offline artifact bundles");
  bundle_cmd->require_subcommand(1);
  auto* bundle_create_cmd = bundle_cmd->add_subcommand("create", "Download and verify every artifact of a matrix row");
  bundle_create_cmd->add_option("--row", bundle_options.row, "Matrix row (default: the matrix's default row)");
  bundle_create_cmd->add_option("-o,--output", bundle_options.output, "A directory, or a file ending .tar.gz or .tar.zst")->required();
  bundle_create_cmd->add_option("--mirror", bundle_options.mirrors, "Mirror base URL tried before upstream (repeatable)");
  bundle_create_cmd->add_option("--base-url", bundle_options.base_url, "Fetch everything from here instead of upstream");
  bundle_create_cmd->add_option("--accept-unpinned", bundle_options.accept_unpinned,
                                "Artifacts with no published checksum to take on first download (names, or all)")
    ->delimiter(',');
  bundle_create_cmd->add_option("--deadline", bundle_options.deadline_seconds, "Seconds each file may take")
    ->check(CLI::Range(5, 86400))->capture_default_str();
  bundle_create_cmd->add_option("--stall", bundle_options.stall_seconds, "Seconds without a byte before an attempt ends")
    ->check(CLI::Range(1, 3600))->capture_default_str();
  bundle_create_cmd->add_option("--sign-key", bundle_options.sign_key,
                                "Sign bundle.json with this SSH private key (ssh-keygen -Y sign; a key with a passphrase is not supported)")
    ->check(CLI::ExistingFile);
  auto* images_flag = bundle_create_cmd->add_flag("--images", bundle_options.images,
                                                 "Copy every image of the row into the bundle as an OCI archive (skopeo)");
  bundle_create_cmd->add_option("--image-mirror", bundle_options.image_mirrors,
                                "REGISTRY=URL: copy REGISTRY's images from this mirror first, which keeps the repository path "
                                "(e.g. docker.io=https://10.0.0.5:5000; repeatable)")
    ->needs(images_flag);
  bundle_create_cmd->add_option("--image-mirror-ca", bundle_options.image_mirror_ca, "PEM CA of the image mirrors' certificates")
    ->check(CLI::ExistingFile)
    ->needs(images_flag);
  bundle_create_cmd->add_option("--registry-auth", bundle_options.registry_auth,
                                "Registry credentials: a containers-auth.json (skopeo login --authfile FILE writes one; "
                                "default: the file $MLPLAT_REGISTRY_AUTH names)")
    ->check(CLI::ExistingFile)
    ->needs(images_flag);
  bundle_create_cmd->add_flag("--no-upstream-images", bundle_options.no_upstream_images,
                              "Copy images only from the --image-mirror mirrors, never from their upstream registries")
    ->needs(images_flag);
  auto* bundle_verify_cmd = bundle_cmd->add_subcommand("verify", "Re-check every file of a bundle against its bill of materials");
  bundle_verify_cmd->add_option("bundle", bundle_options.path, "Bundle directory or archive")->required();
  // What makes a bundle trusted, for the commands that check one (verify, push).
  const auto add_trust_options = [&](CLI::App* cmd) {
    cmd->add_option("--allowed-signers", bundle_options.allowed_signers, "ssh-keygen allowed signers file to check the signature against")
      ->check(CLI::ExistingFile);
    cmd->add_option("--signer", bundle_options.signer, "The identity in the allowed signers file that must have signed it");
    cmd->add_option("--accept-unsigned-bundle", bundle_options.accept_unsigned, "Accept the bundle whose bundle.json has this sha256 without a good signature")
      ->check(sha256_arg);
  };
  add_trust_options(bundle_verify_cmd);
  auto* bundle_list_cmd = bundle_cmd->add_subcommand("list", "Show a bundle's bill of materials");
  bundle_list_cmd->add_option("bundle", bundle_options.path, "Bundle directory or archive")->required();
  auto* bundle_push_cmd = bundle_cmd->add_subcommand("push", "Verify a bundle, then copy its images to a site registry (skipping those it has)");
  bundle_push_cmd->add_option("bundle", bundle_options.path, "Bundle directory or archive")->required();
  bundle_push_cmd->add_option("--site", bundle_options.site, "The site registry's https://HOST[:PORT]")->required();
  bundle_push_cmd->add_option("--site-ca", bundle_options.site_ca, "The CA its certificate chains to")->check(CLI::ExistingFile);
  bundle_push_cmd->add_option("--site-credentials", bundle_options.site_credentials,
                              "A file of 'username: U' and 'password: P' lines (default: $MLPLAT_SITE_REGISTRY_USERNAME/_PASSWORD)")
    ->check(CLI::ExistingFile);
  add_trust_options(bundle_push_cmd);

  CertsOptions certs_options;
  auto* certs_cmd = app.add_subcommand("certs", "Show or rotate the ingress certificate");
  certs_cmd->require_subcommand(1);
  auto* certs_show_cmd = certs_cmd->add_subcommand("show", "The ingress certificate and CA: subject, serial, names, expiry");
  certs_show_cmd->add_flag("--live", certs_options.live, "Also ask the gateway which certificate it serves");
  auto* certs_rotate_cmd = certs_cmd->add_subcommand("rotate", "Reissue the ingress certificate (or install the newly provided one) and update the Secret");
  certs_rotate_cmd->add_option("--wait", certs_options.wait_seconds, "Seconds to wait for the gateway to serve it (0: do not wait)")
    ->check(CLI::Range(0, 3600))->capture_default_str();
  for (auto* sub : {certs_show_cmd, certs_rotate_cmd}) {
    sub->add_option("--state-dir", certs_options.state_dir, "The cluster's state directory");
  }

  ResetOptions reset_options;
  auto* reset_cmd = app.add_subcommand("reset", "Remove what mlplat installed from the hosts (the volumes' data kept unless --purge-data)");
  auto* plan_reset_cmd = plan_cmd->add_subcommand("reset", "Show the commands reset would run on each host, changing nothing");
  for (auto* sub : {reset_cmd, plan_reset_cmd}) {
    sub->add_option("--hosts", reset_options.hosts, "Only these hosts, by name (comma-separated; default: all)")->delimiter(',');
    sub->add_flag("--purge-data", reset_options.purge_data, "Also remove the volumes' directories (the Pipelines data)");
    sub->add_option("--state-dir", reset_options.state_dir, "The cluster's state directory");
    sub->footer(workflow::phase_help(commands::reset(false)));
  }
  reset_cmd->add_flag("--dry-run", reset_options.dry_run, "Show the commands per host, change nothing");
  auto* remove_cmd = app.add_subcommand("remove-node", "Drain nodes, remove them (and a control plane's etcd member), reset their hosts");
  remove_cmd->add_option("names", reset_options.hosts, "The nodes to remove (hosts of the cluster file)")->required();
  remove_cmd->add_flag("--purge-data", reset_options.purge_data, "Also remove the volumes' directories on those hosts");
  remove_cmd->add_option("--state-dir", reset_options.state_dir, "The cluster's state directory");
  remove_cmd->add_option("--drain-timeout", reset_options.drain_seconds, "Seconds each node's drain may take")
    ->check(CLI::Range(10, 86400))->capture_default_str();
  remove_cmd->add_flag("--dry-run", reset_options.dry_run, "Show the commands per host, change nothing");
  remove_cmd->footer(workflow::phase_help(commands::remove_node(false)));

  StatusOptions status_options;
  auto* status_cmd = app.add_subcommand("status", "Show the state of the cluster and the platform (read-only; exit 8 when degraded)");
  status_cmd->add_option("--state-dir", status_options.state_dir, "The cluster's state directory (journal and runs, read only)");
  status_cmd->add_option("--deadline", status_options.deadline_seconds, "Seconds each host has to answer")
    ->check(CLI::Range(5, 3600))
    ->capture_default_str();

  KubeconfigOptions kubeconfig_options;
  auto* kubeconfig_cmd = app.add_subcommand("kubeconfig", "The admin kubeconfig, or one for a named user issued by the cluster CA (0600)");
  kubeconfig_cmd->add_option("--file", kubeconfig_options.file, "Write it to this file (0600) instead of stdout");
  kubeconfig_cmd->add_flag("--force", kubeconfig_options.force, "Overwrite an existing --file");
  kubeconfig_cmd->add_option("--user", kubeconfig_options.user, "Issue a kubeconfig for this user (the certificate's CN)");
  kubeconfig_cmd->add_option("--group", kubeconfig_options.groups, "The user's group (the certificate's O; repeatable)");
  kubeconfig_cmd->add_option("--ttl", kubeconfig_options.ttl, "The user's certificate lifetime: d, h, m (10m to 365d)")->capture_default_str();

  std::string shell;
  auto* completion_cmd = app.add_subcommand("completion", "Print a shell completion script (bash or zsh) for every command and flag");
  completion_cmd->add_option("shell", shell, "bash or zsh")->required()->check(CLI::IsMember({"bash", "zsh"}));

  std::map<CLI::App*, std::string> not_built;
  for (const auto& p : k_not_built) {
    auto* sub = app.add_subcommand(p.name, p.summary);
    sub->allow_extras(); // the options are not defined yet; the command refuses anyway
    not_built[sub] = p.name;
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    if (rc != 0) {
      if (const auto hint = did_you_mean(app, std::vector<std::string>(argv + std::min(argc, 1), argv + argc)); !hint.empty()) {
        log::write(log::Level::error, {}, hint);
      }
    }
    return rc == 0 ? k_exit_ok : k_exit_config;
  }

  global.output = output == "json" ? Output::json : Output::text;
  log::set_stderr_level(global.verbose > 0 ? log::Level::debug : log::Level::info);
  if (!global.log_file.empty()) {
    std::string why;
    if (!log::open_file(global.log_file, why)) {
      log::error("cannot open log file {}: {}", global.log_file, why);
      return k_exit_failed;
    }
  }
  assets::set_override_dir(global.data_dir);
  compat::set_matrix_file(global.matrix_file);

  int rc = k_exit_ok;
  if (init_cmd->parsed()) {
    rc = cmd_init(global, init);
  } else if (facts_cmd->parsed()) {
    rc = cmd_facts(global);
  } else if (doctor_cmd->parsed()) {
    rc = cmd_doctor(global, doctor_options);
  } else if (install_cmd->parsed()) {
    rc = with_run_log(global, "install", doctor_options.state_dir, [&] { return cmd_install(global, doctor_options); });
  } else if (plan_reset_cmd->parsed()) {
    reset_options.dry_run = true;  // a dry run writes nothing, no log either (as plan)
    rc = cmd_reset(global, reset_options);
  } else if (remove_cmd->parsed()) {
    rc = reset_options.dry_run ? cmd_remove_node(global, reset_options)
                               : with_run_log(global, "remove-node", reset_options.state_dir, [&] { return cmd_remove_node(global, reset_options); });
  } else if (reset_cmd->parsed()) {
    rc = reset_options.dry_run ? cmd_reset(global, reset_options)
                               : with_run_log(global, "reset", reset_options.state_dir, [&] { return cmd_reset(global, reset_options); });
  } else if (plan_cmd->parsed()) {
    rc = cmd_plan(global, doctor_options);
  } else if (bundle_create_cmd->parsed()) {
    rc = cmd_bundle_create(global, bundle_options);
  } else if (bundle_verify_cmd->parsed()) {
    rc = cmd_bundle_verify(global, bundle_options);
  } else if (bundle_list_cmd->parsed()) {
    rc = cmd_bundle_list(global, bundle_options);
  } else if (bundle_push_cmd->parsed()) {
    rc = cmd_bundle_push(global, bundle_options);
  } else if (matrix_check_cmd->parsed()) {
    rc = cmd_matrix_check(global, matrix_options);
  } else if (matrix_cmd->parsed()) {
    rc = cmd_matrix_show(global, matrix_options);
  } else if (certs_show_cmd->parsed()) {
    rc = cmd_certs_show(global, certs_options);
  } else if (certs_rotate_cmd->parsed()) {
    rc = with_run_log(global, "certs rotate", certs_options.state_dir, [&] { return cmd_certs_rotate(global, certs_options); });
  } else if (status_cmd->parsed()) {
    rc = cmd_status(global, status_options);
  } else if (kubeconfig_cmd->parsed()) {
    rc = cmd_kubeconfig(global, kubeconfig_options);
  } else if (completion_cmd->parsed()) {
    std::cout << completion_script(app, shell);
  } else if (version_cmd->parsed()) {
    rc = cmd_version(global);
  } else {
    for (const auto& [sub, name] : not_built) {
      if (sub->parsed()) {
        rc = cmd_not_built(name);
      }
    }
  }
  if (interrupt::requested()) {
    log::error("interrupted");
    return interrupt::exit_code();
  }
  return rc;
}

} // namespace mlplat::app
