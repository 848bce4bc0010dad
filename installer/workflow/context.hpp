// What every phase of every command works with: the run context (cluster file, effective settings,
// matrix row, bundle, state directory, fleet, journal, dry-run, what the operator rendered, the
// channel to the first control plane), and the spec a phase file exports: its path, when it is left
// out (run_if) and how it builds its steps from the context.
#pragma once

#include "bundle/bundle.hpp"
#include "compat/matrix.hpp"
#include "config/model.hpp"
#include "config/profile.hpp"
#include "doctor/engine.hpp"
#include "kube/kubeadm.hpp"
#include "render/platform.hpp"
#include "state/state.hpp"
#include "tls/ingress.hpp"
#include "transport/fleet.hpp"
#include "workflow/engine.hpp"
#include "workflow/steps.hpp"

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace mlplat::workflow {

// --- Interface ---

// Judges again, read-only, on one host what the preflight found that prepare fixes; an error names
// what still fails there.
using Recheck = std::function<Status(size_t host)>;

// One run of one command. Built by run_command before any phase; phases read it and keep references
// to it in their steps (it outlives the run).
struct Context {
  Context(transport::Fleet& fleet, const config::Cluster& cluster, state::Journal& journal);
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  transport::Fleet& fleet;
  const config::Cluster& cluster;
  state::Journal& journal;
  config::Effective effective;                          // the cluster file over its profile's defaults
  const compat::Matrix* matrix = nullptr;               // the active matrix (null for commands without the gate)
  const compat::Row* row = nullptr;                     // the row the cluster file selects
  const bundle::Bom* bom = nullptr;                     // the bundle's bill of materials (null: no bundle)
  std::filesystem::path bundle_dir;                     // the bundle on the operator machine (a directory)
  std::string bundle_url;                               // hosts fetch the bundle's files from here instead of an upload
  std::map<std::string, std::string> registry_mirrors;  // spec.registry.mirrors
  std::filesystem::path state_dir;                      // the cluster's state directory
  std::filesystem::path work_dir;                       // where the operator renders (a plan's scratch directory)
  size_t first_control_plane = 0;                       // init runs there, kubectl works from there, the cluster lock lives there
  size_t worker_batch = 0;                              // workers joined at most this many at a time (0: all)
  bool dry_run = false;                                 // plan: the fleet records mutating commands
  std::optional<render::PlatformRender> render;         // the rendered platform (or only the ingress's names)
  std::optional<tls::IngressCertificate> cert;          // the ingress certificate the run installs
  std::vector<doctor::Finding> ignored;                 // the preflight's errors --ignore let pass (plan lists them)
  Recheck recheck;                                      // prepare's last step; empty: nothing to judge again
  std::shared_ptr<kube::JoinMaterial> join;             // tokens and keys, shared by the join phases
  std::vector<size_t> targets;                          // the hosts reset or remove-node works on (empty: every host)
  bool purge_data = false;                              // reset, remove-node: the volumes' directories go too
  std::set<size_t> running_control_planes;              // the control planes that run the cluster now (workflow/discover)
  std::chrono::seconds drain_deadline{300};             // remove-node: how long a node's drain may take

  // The channel to the first control plane for steps running on another host.
  ControlPlane control_plane() { return ControlPlane(fleet, first_control_plane); }

  // Host indexes: all of them; the control planes other than the first; the workers (file order).
  std::vector<size_t> all_hosts() const;
  std::vector<size_t> other_control_planes() const;
  std::vector<size_t> workers() const;
  // The hosts reset or remove-node works on: `targets`, or every host when it is empty.
  std::vector<size_t> target_hosts() const;
};

// Where a host keeps the bundle of a row.
std::string remote_bundle_dir(const std::string& row);

// The artifacts every node needs (the rest only the first control plane needs).
const std::set<std::string>& node_artifacts();

// The remote path of `artifact`'s file in the host's copy of the bundle; an error names a bundle
// without it.
Result<std::string> bundle_file_on_host(const Context& ctx, const std::string& artifact);

// What a phase file exports: k0sctl's phase and kubeadm's workflow.Phase in one value.
struct PhaseSpec {
  std::string path;     // "cluster/init": group and name
  std::string summary;  // one line for `mlplat <command> --help`
  bool needs_bundle = true;  // builds from the bundle (run_command opens one when a phase that runs needs it)
  // run_if, inverted: why the phase is left out for this cluster ("spec.pipelines.enabled is false"),
  // or empty when it runs. Evaluated before anything is connected; a phase left out is listed as
  // skipped and never built.
  std::function<std::string(const Context&)> skip_if;
  // The phase's hosts and steps.
  std::function<Result<Phase>(Context&)> build;
  // Doctor findings that a finished step of this phase makes the cluster's own on that host: step
  // name -> check ids (kubeadm's leftovers after init ran there). Such findings pass on a rerun.
  std::map<std::string, std::vector<std::string>> owns;
};

} // namespace mlplat::workflow
