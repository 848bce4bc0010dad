// The doctor's check catalogue (checks/catalogue.yaml): which checks exist, what they judge with,
// how bad a failure is and how to fix it. Loaded with positions; a probe name or parameter that the
// code does not know is an error pointing at the file, so an edited catalogue cannot silently skip.
#pragma once

#include "config/model.hpp"
#include "util/error.hpp"

#include <map>
#include <string>
#include <vector>

namespace mlplat::doctor {

// --- Interface ---

enum class Severity { error, warning, info };

std::string to_string(Severity severity);

// A check's parameters, already checked against what its probe declares.
class Params {
public:
  // The number under `key` (declared as a number by the probe).
  double number(const std::string& key) const;
  // The text under `key`.
  std::string text(const std::string& key) const;
  // The list under `key`.
  const std::vector<std::string>& list(const std::string& key) const;

  std::map<std::string, std::vector<std::string>> values; // scalars are one-element lists
};

struct CheckSpec {
  std::string id;                         // e.g. "OS-007"; stable forever
  std::string title;
  std::string probe;                      // a name in the probe registry (probes.hpp)
  Severity severity = Severity::error;    // what a failure is
  // The phase of `mlplat install` that fixes what the probe reports as fixable ("prepare"), or empty.
  // Such a finding is reported as fixed-by-install: it does not block install, whose prepare judges
  // it again once it has run.
  std::string fixed_by;
  std::vector<config::Role> roles;        // where it applies (both roles when not given)
  std::vector<std::string> profiles;      // which profiles (all when empty)
  // The commands whose preflight runs the check (k_doctor_commands; all when empty). `mlplat doctor`
  // itself runs every check.
  std::vector<std::string> commands;
  Params params;
  std::string fix;
  Location where;                         // where it is written

  // Whether the check applies to a host of `role` in a cluster of `profile`.
  bool applies(config::Role role, const std::string& profile) const;
  // Whether the preflight of `command` runs the check (empty or "doctor": every check runs).
  bool runs_for(const std::string& command) const;
};

// The commands that run the doctor as their preflight, the names a check's `commands:` may list.
const std::vector<std::string>& doctor_commands();

struct Catalogue {
  std::vector<CheckSpec> checks;

  // The check with `id`, or nullptr.
  const CheckSpec* find(const std::string& id) const;
  // Every value of parameter `key` over the checks using `probe` (e.g. the modules to look for).
  std::vector<std::string> param_values(const std::string& probe, const std::string& key) const;
};

// Parses and validates a catalogue. Errors (exit 2) carry file:line:column: unknown keys, duplicate
// or malformed ids, unknown probes, parameters the probe does not declare or misses, wrong types.
Result<Catalogue> load_catalogue(const std::string& text, const std::string& file_name);

// The catalogue shipped in the binary (or from --data-dir).
Result<Catalogue> load_default_catalogue();

} // namespace mlplat::doctor
