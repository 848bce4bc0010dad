// The doctor's probes: small functions that judge what a check looks at. Host probes judge one host
// from its facts (or, for access checks, from how connecting went); cluster probes compare hosts.
// A probe never talks to a host: the engine gathered everything before.
#pragma once

#include "compat/gate.hpp"
#include "config/model.hpp"
#include "doctor/catalogue.hpp"
#include "facts/facts.hpp"

#include <optional>
#include <string>
#include <vector>

namespace mlplat::doctor {

// --- Interface ---

enum class Verdict {
  pass,  // fine
  fail,  // fails at the check's severity
  warn,  // a softer failure: reported as a warning whatever the check's severity
  skip,  // could not be judged (the host was not reached, or the check does not apply)
};

struct Outcome {
  Verdict verdict = Verdict::pass;
  std::string observed;  // what was seen, in words ("swap is on: /swapfile, 2.0 GiB")
  // A failure install's prepare fixes (a sysctl at the kernel's default, a loadable module not
  // loaded, swap on): reported as fixed-by-install where the check names the phase (fixedBy).
  bool fixable = false;
};

// Everything known about one host when the checks are judged.
struct HostState {
  const config::Host* host = nullptr;
  std::optional<Error> connect_error;   // connecting, host key or authentication failed
  std::optional<Error> sudo_error;      // sudo -n failed (password or TTY)
  std::optional<Error> facts_error;     // the probe script failed or ran past its deadline
  std::optional<facts::HostFacts> facts;
  double local_mid_epoch = 0;           // operator clock halfway through the facts command

  bool connected() const { return !connect_error.has_value(); }
};

// What the rendered platform requests (the sum of its pods' resource requests), when doctor runs as
// install's or plan's preflight after the platform was rendered.
struct PlatformDemand {
  double cpus = 0;
  double memory_gib = 0;
  std::string source;  // what was summed ("Kubeflow Pipelines and Istio, as rendered for profile gcp")
};

struct Context {
  const config::Cluster* cluster = nullptr;
  std::optional<PlatformDemand> platform;  // empty: the checks' own figures (`mlplat doctor`)
  const compat::Matrix* matrix = nullptr;  // supported OS, kernel floor
  const compat::Row* row = nullptr;        // the row the cluster file selects
  std::string kubernetes;                  // the row's Kubernetes minor, e.g. "1.36"
  std::vector<HostState> hosts;
};

enum class ParamKind { number, text, list };

struct ParamSpec {
  std::string name;
  ParamKind kind;
};

// Judges one host.
using HostProbe = Outcome (*)(const Context& ctx, size_t host, const Params& params);
// Compares hosts: one Outcome per host, in host order.
using CompareProbe = std::vector<Outcome> (*)(const Context& ctx, const Params& params);
// Judges the cluster as a whole: one Outcome, reported without a host.
using TotalProbe = Outcome (*)(const Context& ctx, const Params& params);

struct ProbeInfo {
  std::string name;
  HostProbe host = nullptr;       // exactly one of host / compare / total is set
  CompareProbe compare = nullptr;
  TotalProbe total = nullptr;
  bool needs_facts = true;        // false for the access probes
  std::vector<ParamSpec> params;
  bool fixable = false;           // may report a failure as fixable (host probes only)
};

// The probe named `name`, or nullptr.
const ProbeInfo* find_probe(const std::string& name);

// Every probe name (for messages).
std::vector<std::string> probe_names();

// Compares dotted versions numerically ("1.35" < "1.36.1"; leading digits of each part count, so
// kernel "6.18.44-fc" works). Returns <0, 0 or >0.
int compare_versions(const std::string& a, const std::string& b);

} // namespace mlplat::doctor
