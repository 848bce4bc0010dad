// The engine every command runs on: one ordered list of phases, each made of steps that are checked,
// applied and verified per host (k0sctl's action/apply.go shape). The journal makes it resumable: a step that
// finished with the same inputs is not applied again, and a step marked `once` (kubeadm init) is
// never applied twice however the run ended. In dry-run the same path runs: checks read the real
// hosts, applies are recorded by the Fleet instead of run, so `plan` shows the real commands.
#pragma once

#include "state/state.hpp"
#include "transport/fleet.hpp"
#include "util/progress.hpp"

#include <chrono>
#include <functional>
#include <set>
#include <string>
#include <vector>

namespace mlplat::workflow {

// --- Interface ---

// One step on one host. `check` is read-only: true when the host already is as the step wants it.
struct Step {
  std::string name;
  std::string digest;                      // of the step's non-secret inputs (state::Journal)
  bool once = false;                       // never applied again once the journal has it
  std::function<Result<bool>(size_t host)> check;
  std::function<Status(size_t host)> apply;
  std::function<Status(size_t host)> verify;  // after apply; not run in dry-run
};

struct Phase {
  std::string name;     // the leaf of its path ("init"): the journal's and the plan's name for it
  std::string summary;  // for progress and plan
  // The hosts the phase works on, in order; run in parallel (bounded by the Fleet's concurrency)
  // unless `serial` (joining control planes one at a time).
  std::vector<size_t> hosts;
  bool serial = false;
  // The steps for one host, built when the phase starts (so they can use what earlier phases found).
  std::function<std::vector<Step>(size_t host)> steps;
  std::chrono::seconds deadline{600};  // shown while waiting; each remote command has its own
  // Parallel phases only: at most this many hosts at a time, a batch finished before the next starts
  // (0: all hosts, bounded by the Fleet's concurrency). A failed batch stops the phase.
  size_t batch = 0;
  // Non-empty: the phase is left out of this run for this reason (its run_if said so); it is listed
  // as skipped, never built or run, and --only/--skip still accept its path.
  std::string skipped;
  std::string group;    // the first part of its path ("cluster"); empty for a top-level phase

  // "cluster/init": what --only and --skip take (the leaf name and the group alone are accepted too).
  std::string path() const { return group.empty() ? name : group + "/" + name; }
};

struct RunOptions {
  std::set<std::string> only;  // when not empty: only these phases (paths, leaf names or groups)
  std::set<std::string> skip;  // these phases not
  bool dry_run = false;        // the Fleet must be in dry-run too
  Terminal progress = Terminal::detect;
};

struct StepOutcome {
  std::string phase;
  std::string step;
  std::string host;
  enum class What { applied, already, journal, planned } what;
};

// A phase that did not run, and why ("spec.pipelines.enabled is false", "--skip").
struct Skipped {
  std::string path;
  std::string reason;
};

struct Summary {
  std::vector<StepOutcome> steps;
  std::vector<Skipped> skipped;
  size_t applied() const;  // steps that changed something (or would, in dry-run)
};

// Checks --only/--skip against the phases' paths (unknown names are usage errors naming the paths).
Status validate_selection(const std::vector<Phase>& phases, const RunOptions& options);

// Whether `name` (a path, a leaf name or a group) names `phase`.
bool names_phase(const std::string& name, const Phase& phase);

// Why `phase` is not run under `options` (--only, --skip), or empty when it is selected.
std::string deselected(const Phase& phase, const RunOptions& options);

// Runs the selected phases in order; one left out (skipped, --only, --skip) is listed in the
// summary with its reason. The first phase with a failed host stops the run; the error names every
// failed host and step (several hosts: their exit code per docs/exit-codes.md, 7 when they differ),
// and the journal keeps every step that finished, so running again continues there.
Result<Summary> run(const std::vector<Phase>& phases, state::Journal& journal, transport::Fleet& fleet,
                    const RunOptions& options);

} // namespace mlplat::workflow
