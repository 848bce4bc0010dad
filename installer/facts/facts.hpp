// Host facts: what a host is (OS, kernel, CPUs, memory, identity, addresses), gathered read-only with
// the embedded probe checks/facts.sh. Later phases decide from these facts, never from guesses.
#pragma once

#include "transport/fleet.hpp"
#include "util/error.hpp"

#include <map>
#include <string>
#include <vector>

namespace mlplat::facts {

// --- Interface ---

struct HostFacts {
  std::string host;                                        // the host's name in the cluster file
  std::map<std::string, std::vector<std::string>> values;  // "os.id" -> {"debian"}; repeated keys keep every line

  // The first value of `key`, or "" when the probe did not report it.
  std::string get(const std::string& key) const;
  // Every value of `key` (empty when none).
  const std::vector<std::string>& all(const std::string& key) const;
  // Whether the probe reported `key` at all.
  bool has(const std::string& key) const { return values.count(key) != 0; }
};

// What the probe script should look at besides the fixed facts.
struct ProbeInputs {
  std::vector<std::string> modules;     // kernel modules to look for
  std::vector<std::string> ports;       // ports whose owning process to name when taken
  std::vector<std::string> disk_paths;  // paths whose free space to report
  std::string profile = "onprem";       // cloud probes run only for their profile
};

// The probe script with `inputs` bound (as quoted shell variables in front of checks/facts.sh).
Result<std::string> probe_script(const ProbeInputs& inputs);

// Parses the probe's "key=value" lines. Lines without '=' are ignored.
HostFacts parse(const std::string& host, const std::string& probe_output);

// Gathers facts from every host of `fleet` in parallel (read-only). One Result per host.
std::vector<Result<HostFacts>> gather(transport::Fleet& fleet, const ProbeInputs& inputs = {});

} // namespace mlplat::facts
