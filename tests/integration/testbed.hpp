// Test helpers for the testbed brought up by tests/testbed/testbed.sh (the CTest fixture "testbed").
// Host use is partitioned so tests can run in parallel: each test that changes a host owns it.
//   node-1 general exec     node-2 sudo         node-3 uploads, known_hosts policies
//   node-4 replaced key     node-5 killed sshd   node-6 bastion, node-7 behind it
//   node-8 wrong key        node-9 dropped port  node-10 agent
//   node-11..60 fan-out (the SSH tests', which also use node-11 for an interrupted join and node-12 for a
//   killed upload, after the fan-out and in the same binary; node-16 read-only connects of install's
//   exit-code test)     node-61..63 CLI tests   node-64 knobs (read-only CLI test too)
//   node-65 clean (doctor; read-only partner of the duplicate tests)   node-66..78 one doctor fault each
//   node-79 bundle push     node-80 bundle fetched from a mirror
//   node-81, 82 install (prepare, rerun audited)   node-83 plan (audited)   node-84 install with swap in fstab
//   node-99, 100 the real control plane without mlplat (test_kube.cpp)
//   node-101, 102 install's cluster layer on the real control plane (rerun audited)   node-103..105 HA on it   node-106, 107 kill -9 on it
//   node-108..110 reset and reinstall with the volumes kept   node-111..113 nodes added and removed   node-114, 115 status and kubeconfig
//   node-116, 117 the air-gapped installs (site registry on the bridge, images loaded from the bundle)
#pragma once

#include "transport/session.hpp"
#include "util/process.hpp"

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

namespace testbed {

inline std::string dir()
{
  const char* d = std::getenv("MLPLAT_TESTBED_DIR");
  return d != nullptr ? d : "/tmp/mlplat-testbed";
}

inline std::string net()
{
  const char* n = std::getenv("MLPLAT_TESTBED_NET");
  return n != nullptr ? n : "10.199.0";
}

inline std::string address(int n)
{
  return net() + "." + std::to_string(10 + n);
}

inline std::string key()
{
  return dir() + "/keys/id_ed25519";
}

inline std::string known_hosts()
{
  return dir() + "/known_hosts";
}

// Endpoint for node-n with the testbed's key and known_hosts (strict).
inline mlplat::transport::Endpoint endpoint(int n, const std::string& user = "root")
{
  mlplat::transport::Endpoint ep;
  ep.name = "node-" + std::to_string(n);
  ep.address = address(n);
  ep.user = user;
  ep.key_path = key();
  ep.known_hosts = known_hosts();
  ep.connect_timeout = std::chrono::seconds(5);
  return ep;
}

// Runs tests/testbed/testbed.sh with `args`; the test fails when it fails.
inline mlplat::ProcessResult script(const std::vector<std::string>& args)
{
  std::vector<std::string> argv{MLPLAT_TESTBED_SCRIPT};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = mlplat::run_process(argv, std::chrono::seconds(60));
  if (!r || !r->ok()) {
    throw std::runtime_error("testbed.sh failed: " + (r ? r->err : r.error().message));
  }
  return *r;
}

// A fresh temporary directory for one test.
inline std::string temp_dir(const std::string& name)
{
  // Under $TMPDIR: scripts/test.sh gives each run its own and removes it afterwards.
  const std::string path = std::filesystem::temp_directory_path().string() + "/mlplat-test-" + name + "-" + std::to_string(::getpid());
  mlplat::run_process({"rm", "-rf", path}, std::chrono::seconds(10));
  mlplat::run_process({"mkdir", "-p", "-m", "0700", path}, std::chrono::seconds(10));
  return path;
}

} // namespace testbed
