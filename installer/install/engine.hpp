// The install engine: one ordered list of phases, each made of steps that are checked, applied and
// verified per host (k0sctl's action/apply.go shape). The journal makes it resumable: a step that
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

namespace mlplat::install {

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
  std::string name;     // the name --only and --skip take
  std::string summary;  // for progress and plan
  // The hosts the phase works on, in order; run in parallel (bounded by the Fleet's concurrency)
  // unless `serial` (joining control planes one at a time).
  std::vector<size_t> hosts;
  bool serial = false;
  // The steps for one host, built when the phase starts (so they can use what earlier phases found).
  std::function<std::vector<Step>(size_t host)> steps;
  std::chrono::seconds deadline{600};  // shown while waiting; each remote command has its own
};

struct RunOptions {
  std::set<std::string> only;  // when not empty: only these phases
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

struct Summary {
  std::vector<StepOutcome> steps;
  size_t applied() const;  // steps that changed something (or would, in dry-run)
};

// Checks --only/--skip against the phase names (unknown names are usage errors naming the phases).
Status validate_selection(const std::vector<Phase>& phases, const RunOptions& options);

// Runs the selected phases in order. The first phase with a failed host stops the run; the error
// names every failed host and step, and the journal keeps every step that finished, so running
// again continues there.
Result<Summary> run(const std::vector<Phase>& phases, state::Journal& journal, transport::Fleet& fleet,
                    const RunOptions& options);

} // namespace mlplat::install
