// mlplat doctor's engine: gathers facts from every host in parallel, strictly read-only, then judges
// every check of the catalogue that applies. `mlplat doctor` prints the result; `mlplat install`
// runs the same engine as its first gate.
#pragma once

#include "config/model.hpp"
#include "doctor/catalogue.hpp"
#include "doctor/probes.hpp"
#include "transport/fleet.hpp"
#include "util/progress.hpp"

#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace mlplat::doctor {

// --- Interface ---

struct Finding {
  std::string id;
  std::string title;
  std::string host;        // empty for a cluster-wide finding
  std::string status;      // pass | error | warning | info | fixed-by-install | skip
  std::string observed;
  std::string fix;         // set when the check did not pass
  bool ignored = false;    // an error lowered to a warning by --ignore
};

// A host as the report shows it (the report outlives the cluster file's model).
struct ReportHost {
  std::string name;
  std::string address;
  config::Role role = config::Role::worker;
  // Why mlplat could not reach or trust the host (connect_failed, auth_failed, host_key_*), if so.
  std::optional<ErrorCode> access_error;
};

struct Report {
  std::string cluster;
  std::string profile;
  std::string kubernetes;
  std::vector<ReportHost> hosts;
  std::vector<Finding> findings;

  // How many findings have `status`.
  size_t count(const std::string& status) const;
  size_t ignored() const;
  bool has_errors() const { return count("error") > 0; }
  // The exit code the report means (docs/exit-codes.md): 0 without errors; 5 when a host's key is not
  // trusted (a security stop wins), else 4 when a host could not be reached or refused the key, else 3.
  int exit_code() const;
};

struct Options {
  std::set<std::string> ignore;                  // ids whose errors become warnings ("all" for every id)
  std::chrono::seconds deadline{30};             // for the facts command on each host
  Terminal progress = Terminal::detect;          // per-host progress on stderr (Terminal::no: plain lines)
  // host -> check ids whose findings there are this cluster's own doing (install's journal says it
  // ran kubeadm init there, say): such a finding passes, saying why, instead of blocking a rerun.
  std::map<std::string, std::set<std::string>> own_state;
  // The command whose preflight this is ("install", "plan"): only the checks that run for it
  // (CheckSpec::runs_for). Empty: `mlplat doctor`, every check.
  std::string command;
  // The rendered platform's requests: PLT-001/PLT-002 judge the cluster's capacity against them (plus
  // Kubernetes' own, the checks' system figures) instead of their fixed figures.
  std::optional<PlatformDemand> platform;
};

// Checks `ignore` against the catalogue: unknown ids (with a suggestion) and ids that may never be
// ignored (SSH-002: a changed host key) are usage errors.
Status validate_ignore(const Catalogue& catalogue, const std::set<std::string>& ignore);

// The probe inputs the catalogue asks for (modules, disk paths) for `cluster`.
facts::ProbeInputs probe_inputs(const Catalogue& catalogue, const config::Cluster& cluster);

// Connects to every host of `fleet` (the cluster's hosts, in order), checks sudo, and runs the facts
// probe; never changes a host. Each host's state says what worked.
std::vector<HostState> gather(const config::Cluster& cluster, transport::Fleet& fleet, const Catalogue& catalogue,
                              const Options& options);

// Judges every applicable check. Pure: no host is contacted.
Report evaluate(const Context& ctx, const Catalogue& catalogue, const Options& options);

// After install's prepare on host `i` of `cluster`: gathers that host's facts again (read-only) and
// judges the checks whose findings prepare fixes (fixedBy: prepare; ids ignored in `options` left
// out). An error (preflight_failed) names every such check that still does not pass there, with what
// it saw and the fix.
Status recheck_fixed(const config::Cluster& cluster, const compat::Matrix& matrix, const compat::Row& row, transport::Fleet& fleet,
                     size_t i, const Catalogue& catalogue, const Options& options);

// gather() then evaluate(), judging versions against `row` of `matrix` (compat::select_row).
Report run(const config::Cluster& cluster, const compat::Matrix& matrix, const compat::Row& row, transport::Fleet& fleet,
           const Catalogue& catalogue, const Options& options);

} // namespace mlplat::doctor
