// The record of a cluster's runs in its state directory (`<dir>/runs.json`): which command ran, when,
// how it ended and where its log is. `mlplat status` shows the last one; every command that works on
// the cluster's hosts appends one when it ends. The file keeps the last k_runs_kept runs and is
// replaced atomically (0600), so a run killed while writing it leaves the previous record.
#pragma once

#include "util/error.hpp"

#include <filesystem>
#include <string>
#include <vector>

namespace mlplat::state {

// --- Interface ---

struct RunRecord {
  std::string command;   // "install", "reset", "remove-node", ... (with its subcommand: "certs rotate")
  std::string started;   // UTC, ISO 8601 ("2026-12-02T05:10:00Z")
  std::string finished;  // UTC, ISO 8601
  int exit_code = 0;     // docs/exit-codes.md
  std::string log_file;  // the run's log file ("" when none was written)
};

inline constexpr size_t k_runs_kept = 50;

// Appends `run` to `<dir>/runs.json` (dropping the oldest beyond k_runs_kept); `dir` must exist.
Status append_run(const std::filesystem::path& dir, const RunRecord& run);

// The runs recorded in `<dir>/runs.json`, oldest first; none when the file does not exist. A file that
// cannot be read is an error naming it.
Result<std::vector<RunRecord>> read_runs(const std::filesystem::path& dir);

// Now, in UTC, as the records write it.
std::string utc_now();

} // namespace mlplat::state
