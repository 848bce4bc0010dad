#include "util/fs.hpp"

#include <fmt/core.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

namespace mlplat::fs {

namespace {

tl::unexpected<Error> io_error(std::string what, const std::filesystem::path& path, int err)
{
  return fail(ErrorCode::io, fmt::format("{} {}: {}", what, path.string(), std::strerror(err)));
}

} // namespace

Result<std::string> read_file(const std::filesystem::path& path)
{
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return io_error("cannot read", path, errno);
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) {
    return io_error("cannot read", path, errno);
  }
  return ss.str();
}

Status write_file_atomic(const std::filesystem::path& path, std::string_view data, unsigned mode)
{
  const auto dir = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
  std::string tmpl = (dir / ("." + path.filename().string() + ".tmp.XXXXXX")).string();
  const int fd = ::mkstemp(tmpl.data());
  if (fd < 0) {
    return io_error("cannot create a temporary file beside", path, errno);
  }
  auto cleanup = [&](int err) {
    ::close(fd);
    ::unlink(tmpl.c_str());
    return io_error("cannot write", path, err);
  };
  if (::fchmod(fd, mode) != 0) {
    return cleanup(errno);
  }
  std::string_view rest = data;
  while (!rest.empty()) {
    const ssize_t n = ::write(fd, rest.data(), rest.size());
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return cleanup(errno);
    }
    rest.remove_prefix(static_cast<size_t>(n));
  }
  if (::fsync(fd) != 0) {
    return cleanup(errno);
  }
  ::close(fd);
  if (::rename(tmpl.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmpl.c_str());
    return io_error("cannot rename into place", path, err);
  }
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return {};
}

Status ensure_private_dir(const std::filesystem::path& dir)
{
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return fail(ErrorCode::io, fmt::format("cannot create directory {}: {}", dir.string(), ec.message()));
  }
  if (::chmod(dir.c_str(), 0700) != 0) {
    return io_error("cannot set mode 0700 on", dir, errno);
  }
  return {};
}

std::string expand_home(std::string_view path)
{
  if (path == "~" || path.substr(0, 2) == "~/") {
    const char* home = std::getenv("HOME");
    if (home != nullptr) {
      return std::string(home) + std::string(path.substr(1));
    }
  }
  return std::string(path);
}

} // namespace mlplat::fs
