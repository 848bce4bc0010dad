// Benchmark driver: runs one command on the first N hosts of a cluster file through mlplat's Fleet
// (one libssh session per host, bounded fan-out) and prints the wall time of each repetition in ms.
// Used by scripts/bench-ssh.sh; connection setup is included, as it is for `ssh host cmd`.
#include "config/load.hpp"
#include "transport/fleet.hpp"

#include <libssh/libssh.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

using namespace mlplat;

int main(int argc, char** argv)
{
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s CLUSTER_FILE HOSTS COMMAND REPEATS\n", argv[0]);
    return 2;
  }
  ssh_init();
  auto cluster = config::load_file(argv[1]);
  if (!cluster) {
    std::fprintf(stderr, "%s\n", cluster.error().render().c_str());
    return 2;
  }
  const size_t hosts = std::strtoul(argv[2], nullptr, 10);
  const int repeats = std::atoi(argv[4]);
  std::vector<transport::Endpoint> endpoints;
  for (size_t i = 0; i < hosts && i < cluster->hosts.size(); ++i) {
    endpoints.push_back(transport::endpoint_for(cluster->hosts[i]));
  }
  transport::Command cmd;
  cmd.script = argv[3];
  cmd.description = "benchmark command";
  for (int r = 0; r < repeats; ++r) {
    const auto start = std::chrono::steady_clock::now();
    transport::SshFleet fleet(endpoints, transport::FleetOptions{});
    const auto results = fleet.for_each<transport::ExecResult>([&](size_t i) { return fleet.run(i, cmd); });
    const auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    if (auto summary = fleet.summarize(results); !summary) {
      std::fprintf(stderr, "%s\n", summary.error().render().c_str());
      return 1;
    }
    std::printf("%.1f\n", ms);
  }
  ssh_finalize();
  return 0;
}
