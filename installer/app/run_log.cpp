#include "app/run_log.hpp"

#include "config/load.hpp"
#include "state/runs.hpp"
#include "state/state.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/interrupt.hpp"
#include "util/log.hpp"

#include <fmt/core.h>

#include <ctime>
#include <filesystem>

namespace mlplat::app {

namespace sfs = std::filesystem;

std::string run_log_name(const std::string& command, std::chrono::system_clock::time_point at)
{
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(at.time_since_epoch()).count();
  const std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%S", &tm);
  std::string name = command;
  for (char& c : name) {
    c = c == ' ' || c == '/' ? '-' : c;
  }
  return fmt::format("{}.{:03d}Z-{}.log", stamp, static_cast<int>(ms % 1000), name);
}

int with_run_log(const GlobalOptions& global, const std::string& command, const std::string& state_dir, const std::function<int()>& run)
{
  // The cluster's name only (the command loads and judges the file itself, and reports its problems).
  const auto cluster = config::load_file(global.config, config::KeyFiles::skip);
  if (!cluster) {
    return run();
  }
  const sfs::path dir = state_dir.empty() ? state::default_dir(cluster->name) : sfs::path(state_dir);
  std::string log_file;
  bool recordable = true;
  if (auto prepared = state::prepare_dir(dir); !prepared) {
    recordable = false; // the command reports the state directory's problem itself
  }
  if (!global.log_file.empty()) {
    std::error_code ec;
    log_file = sfs::absolute(global.log_file, ec).string();
  } else if (recordable) {
    const sfs::path logs = dir / "logs";
    std::string why;
    if (auto made = fs::ensure_private_dir(logs); !made) {
      log::warn("no log file for this run: {}", made.error().message);
    } else {
      // A name no earlier run has (two runs in the same millisecond get -2, -3, ...).
      const std::string name = run_log_name(command, std::chrono::system_clock::now());
      sfs::path file = logs / name;
      for (int n = 2; sfs::exists(file) && n < 100; ++n) {
        file = logs / (name.substr(0, name.size() - 4) + "-" + std::to_string(n) + ".log");
      }
      if (log::open_file(file.string(), why)) {
        log_file = file.string();
      } else {
        log::warn("no log file for this run: cannot open {}: {}", file.string(), why);
      }
    }
  }
  log::debug("mlplat {}: cluster {}, state directory {}", MLPLAT_VERSION, cluster->name, dir.string());
  const std::string started = state::utc_now();
  int rc = run();
  if (interrupt::requested()) {
    rc = interrupt::exit_code();
  }
  if (recordable) {
    if (auto recorded = state::append_run(dir, {command, started, state::utc_now(), rc, log_file}); !recorded) {
      log::warn("the run was not recorded in {}: {}", (dir / "runs.json").string(), recorded.error().message);
    }
  }
  if (!log_file.empty()) {
    log::info("log file: {}", log_file);
  }
  return rc;
}

} // namespace mlplat::app
