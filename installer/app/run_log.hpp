// The per-run log file and the run record, in one place for every command that works on a cluster's
// hosts with a state directory (install, certs rotate; the day-2 commands register the same way).
// docs/commands.md says which commands have them and why plan, doctor and facts do not.
#pragma once

#include "app/options.hpp"

#include <chrono>
#include <functional>
#include <string>

namespace mlplat::app {

// --- Interface ---

// Runs `run`, the command `command` ("install", "certs rotate"), with its log and its record. Without
// --log-file it first opens `<state>/logs/<UTC time>-<command>.log` (0600, in a 0700 directory; every
// level, ISO 8601 UTC timestamps, secrets redacted by util/log) as the log file; --log-file replaces
// it. Once `run` returns, it appends the run to `<state>/runs.json` (state::append_run: command,
// started, finished, exit code, log file) and prints the log file's path on stderr. `state_dir` is the
// command's --state-dir ("" for state::default_dir of the cluster's name). A cluster file that cannot
// be read: `run` alone (it reports the problem; there is no cluster to record it for). A log or record
// that cannot be written is a warning, never the command's failure. Returns the command's exit code
// (the interruption's, 130/143, when it was interrupted).
int with_run_log(const GlobalOptions& global, const std::string& command, const std::string& state_dir, const std::function<int()>& run);

// The default log file's name for `command` started at `at`: its UTC time (ISO 8601 basic format, to
// the millisecond) and the command with '-' for spaces: "20261202T051000.123Z-certs-rotate.log".
std::string run_log_name(const std::string& command, std::chrono::system_clock::time_point at);

} // namespace mlplat::app
