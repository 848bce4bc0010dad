// What the CLI-driving integration tests share: running a program (or mlplat) with a deadline, a
// substring test, and a private temporary directory per test.
#pragma once

#include "support/catch.hpp"
#include "util/process.hpp"

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include <unistd.h>

namespace mlplat::testing {

// --- Interface ---

// Runs `argv` (REQUIRE: it started) and returns what it printed and its exit status.
inline ProcessResult run(std::vector<std::string> argv, std::chrono::seconds deadline = std::chrono::seconds(300))
{
  auto r = run_process(argv, deadline);
  REQUIRE(r);
  return *r;
}

// Runs the mlplat under test with `args`.
inline ProcessResult mlplat_run(std::vector<std::string> args, std::chrono::seconds deadline = std::chrono::seconds(300))
{
  args.insert(args.begin(), MLPLAT_BINARY);
  return run(args, deadline);
}

inline bool contains(const std::string& haystack, const std::string& needle)
{
  return haystack.find(needle) != std::string::npos;
}

// /tmp/mlplat-<prefix>-<name>-<pid>, emptied, 0700.
inline std::string temp_dir(const std::string& prefix, const std::string& name)
{
  namespace sfs = std::filesystem;
  const sfs::path p = sfs::temp_directory_path() / ("mlplat-" + prefix + "-" + name + "-" + std::to_string(::getpid()));
  sfs::remove_all(p);
  sfs::create_directories(p);
  sfs::permissions(p, sfs::perms::owner_all);
  return p.string();
}

} // namespace mlplat::testing
