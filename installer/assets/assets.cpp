#include "assets/assets.hpp"

#include "util/fs.hpp"

#include <fmt/core.h>

#include <filesystem>
#include <map>
#include <string_view>

namespace mlplat::assets {

namespace detail {
const std::map<std::string, std::string_view>& embedded_files();
}

namespace {
std::string& override_dir()
{
  static std::string dir;
  return dir;
}
} // namespace

void set_override_dir(std::string dir)
{
  override_dir() = std::move(dir);
}

Result<std::string> read(const std::string& path)
{
  if (!override_dir().empty()) {
    const auto candidate = std::filesystem::path(override_dir()) / path;
    if (std::filesystem::exists(candidate)) {
      return fs::read_file(candidate);
    }
  }
  const auto& files = detail::embedded_files();
  if (auto it = files.find(path); it != files.end()) {
    return std::string(it->second);
  }
  return fail(ErrorCode::internal, fmt::format("data file '{}' is neither embedded nor in the data directory", path));
}

std::vector<std::string> list(const std::string& prefix)
{
  std::vector<std::string> out;
  for (const auto& [path, data] : detail::embedded_files()) {
    if (path.rfind(prefix, 0) == 0) {
      out.push_back(path);
    }
  }
  return out;
}

} // namespace mlplat::assets
