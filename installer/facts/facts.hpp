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
  std::string host;                           // the host's name in the cluster file
  std::map<std::string, std::string> values;  // "os.id" -> "debian", ... as the probe printed them

  // The value of `key`, or "" when the probe did not report it.
  std::string get(const std::string& key) const;
};

// Parses the probe's "key=value" lines. Lines without '=' are ignored.
HostFacts parse(const std::string& host, const std::string& probe_output);

// Gathers facts from every host of `fleet` in parallel (read-only). One Result per host.
std::vector<Result<HostFacts>> gather(transport::Fleet& fleet);

} // namespace mlplat::facts
