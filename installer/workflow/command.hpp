// One prelude for every command that changes hosts (install, plan, certs rotate, and the day-2
// commands after them): a command is a CommandSpec (which gates, which locks, which doctor checks,
// its ordered phases, what it does on the operator machine first and what it prints at the end), and
// run_command does the rest, in this order:
//   cluster file (and --profile) -> matrix gate, before any connection -> state directory, local
//   lock, journal -> --only/--skip checked against the phases' paths, run_if evaluated -> bundle
//   opened and re-hashed when a phase that runs needs it -> the command's operator-side work (render,
//   certificates) -> fleet -> doctor on every host (errors refuse, nothing changed) -> the cluster
//   lock on the first control plane -> the phases (workflow::run) -> lock released -> the report.
// A spec with before_hosts_under_lock takes the cluster lock on the first control plane before its
// operator-side work instead (the local locks are always taken before it).
#pragma once

#include "doctor/report.hpp"
#include "workflow/context.hpp"

#include <functional>
#include <string>
#include <vector>

namespace mlplat::workflow {

// --- Interface ---

// What the command line asked for.
struct Request {
  std::string config_file = "mlplat.yaml";
  std::string profile;                 // --profile: must be the cluster file's spec.profile
  std::string state_dir;               // default: state::default_dir(cluster name)
  std::string bundle;                  // the bundle (directory or archive) of the row
  std::string bundle_url;              // hosts fetch the bundle's files from here
  std::string accept_unsigned_bundle;  // the sha256 of a bundle.json taken without a good signature
  std::vector<std::string> only, skip; // phase paths, leaf names or groups
  std::vector<std::string> ignore;     // doctor: check ids whose errors become warnings
  int deadline_seconds = 30;           // doctor: per host, for gathering facts
  bool allow_preview = false;          // accept a preview matrix row
  size_t concurrency = 32;             // hosts worked on at once
  size_t worker_batch = 0;             // workers joined at most this many at a time (0: all)
  std::vector<std::string> hosts;      // reset --hosts, remove-node: the hosts worked on, by name (empty: all)
  bool purge_data = false;             // reset, remove-node: the volumes' directories go too
  int drain_seconds = 300;             // remove-node: how long each drain may take
  // The global flags a command printed for the operator must repeat to mean the same data
  // (--data-dir DIR, --matrix FILE, absolute), e.g. the `bundle create` of a missing bundle.
  std::vector<std::string> global_args;
};

// How the command talks to the user (the CLI's: text or JSON).
struct Ui {
  std::function<int(const Error&)> error;             // prints an error; returns its exit code
  std::function<void(const doctor::Report&)> report;  // prints a doctor report
  bool json = false;                                  // --output json: stdout carries JSON only
};

struct CommandSpec {
  std::string name;           // "install": the local lock's purpose and the doctor's check set
  bool dry_run = false;       // plan: mutating commands recorded, no lock, nothing written
  bool matrix_gate = true;    // the cluster file judged against the matrix before any connection
  bool doctor = true;         // preflight on every host first; what prepare fixes judged again after it
  bool cluster_lock = true;   // the lock on the first control plane (never in dry-run)
  bool discover = true;       // ask the hosts whether a cluster runs already (workflow/discover.hpp) before the rest
  bool lock_if_present = false;  // reset: only where mlplat's directory is, which goes with the lock (a reset host keeps nothing)
  // before_hosts runs only once the cluster lock on the first control plane is held too (certs
  // rotate: no certificate is issued while another run holds the cluster); otherwise it runs before
  // any connection and the lock is taken after the preflight (install).
  bool before_hosts_under_lock = false;
  std::vector<PhaseSpec> phases;
  // Work on the operator machine once the bundle is open, before any host: rendering, certificates.
  std::function<Status(Context&)> before_hosts;
  // What the command prints once the phases succeeded (errors through the Ui); returns the exit code.
  std::function<int(Context&, const Summary&, double seconds, const Ui&)> after;
};

// Runs `spec` for `request`; returns the exit code (docs/exit-codes.md), every error reported
// through `ui`.
int run_command(const CommandSpec& spec, const Request& request, const Ui& ui);

// `specs` as the engine runs them for `ctx`: a phase its run_if leaves out, or the selection does
// not take, is a placeholder with its path and the reason (never built); the others are built.
Result<std::vector<Phase>> build_phases(const std::vector<PhaseSpec>& specs, Context& ctx, const RunOptions& selection);

// The phases of `spec` as `mlplat <command> --help` lists them: "  path  summary" lines.
std::string phase_help(const CommandSpec& spec);

// The doctor findings each host's earlier runs made the cluster's own: from the journal's finished
// steps and the phases' `owns` (host -> check ids).
std::map<std::string, std::set<std::string>> own_state(const std::vector<PhaseSpec>& phases, const state::Journal& journal);

} // namespace mlplat::workflow
