#include "state/runs.hpp"

#include "util/fs.hpp"

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <ctime>

namespace mlplat::state {

namespace sfs = std::filesystem;

std::string utc_now()
{
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

Result<std::vector<RunRecord>> read_runs(const sfs::path& dir)
{
  const sfs::path file = dir / "runs.json";
  std::error_code ec;
  if (!sfs::exists(file, ec)) {
    return std::vector<RunRecord>{};
  }
  TRY_ASSIGN(const std::string text, fs::read_file(file));
  std::vector<RunRecord> runs;
  try {
    const auto doc = nlohmann::json::parse(text);
    for (const auto& r : doc.at("runs")) {
      runs.push_back({r.at("command").get<std::string>(), r.at("started").get<std::string>(), r.at("finished").get<std::string>(),
                      r.at("exit_code").get<int>(), r.value("log_file", std::string())});
    }
  } catch (const nlohmann::json::exception& e) {
    return fail(ErrorCode::config_invalid, fmt::format("{}: not a record of runs: {}", file.string(), e.what()),
                "move it away; the next run starts a new one");
  }
  return runs;
}

Status append_run(const sfs::path& dir, const RunRecord& run)
{
  TRY_ASSIGN(auto runs, read_runs(dir));
  runs.push_back(run);
  if (runs.size() > k_runs_kept) {
    runs.erase(runs.begin(), runs.begin() + static_cast<std::ptrdiff_t>(runs.size() - k_runs_kept));
  }
  nlohmann::json doc;
  doc["format"] = 1;
  doc["runs"] = nlohmann::json::array();
  for (const auto& r : runs) {
    doc["runs"].push_back({{"command", r.command}, {"started", r.started}, {"finished", r.finished}, {"exit_code", r.exit_code}, {"log_file", r.log_file}});
  }
  return fs::write_file_atomic(dir / "runs.json", doc.dump(2) + "\n", 0600);
}

} // namespace mlplat::state
